/* parallel.c - see parallel.h */
#include "parallel.h"

#include <cblas.h>
#include <pthread.h>

#define MM_PAR_MAX 256

typedef struct {
  mm_parallel_fn fn;
  void *ctx;
  int64_t begin, end;
  int tid;
} par_job;

/* set while this thread runs a range of mm_parallel_for: a kernel called
 * from inside one (mm_sgemm under conv2d's batch split) runs serially */
static _Thread_local int in_region;

static void *par_run(void *arg) {
  par_job *j = arg;
  int outer = in_region;
  in_region = 1;
  j->fn(j->ctx, j->begin, j->end, j->tid);
  in_region = outer;
  return NULL;
}

int mm_parallel_threads(int64_t n) {
  if (in_region) return 1;
  int t = mm_threads();
  if (t < 1) t = 1;
  if (t > MM_PAR_MAX) t = MM_PAR_MAX;
  if (n < (int64_t)t) t = n < 1 ? 1 : (int)n;
  return t;
}

int mm_parallel_for(int64_t n, mm_parallel_fn fn, void *ctx) {
  if (n <= 0) return 0;
  int nt = mm_parallel_threads(n);
  if (nt <= 1) {
    fn(ctx, 0, n, 0);
    return 1;
  }
  par_job jobs[MM_PAR_MAX];
  pthread_t th[MM_PAR_MAX];
  int started[MM_PAR_MAX];
  int blas = openblas_get_num_threads();
  if (blas != 1) openblas_set_num_threads(1);
  for (int t = 0; t < nt; t++) {
    jobs[t].fn = fn;
    jobs[t].ctx = ctx;
    jobs[t].begin = n * t / nt;
    jobs[t].end = n * (t + 1) / nt;
    jobs[t].tid = t;
  }
  for (int t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, par_run, &jobs[t]) == 0;
  par_run(&jobs[0]);
  for (int t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      par_run(&jobs[t]);
  }
  if (blas != 1) openblas_set_num_threads(blas);
  return nt;
}
