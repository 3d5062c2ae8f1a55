/* pool_stress.c - the thread pool of csrc/core/parallel.c under ThreadSanitizer
 * (`make tsan`, run by CI). Checks, for 1 to 6 threads (more than the CPUs:
 * the sleeping path) and for two callers at once (the second one gets
 * threads of its own): every range runs exactly once, with the bounds and
 * tid the contract gives, nested calls run serially, and a forked child has
 * a working pool. Exit status 0 when all held. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/parallel.h"

typedef struct {
  atomic_int *hits;
  int64_t n;
  int nt;
  atomic_int bad;
} job;

static void range(void *ctx, int64_t b, int64_t e, int tid) {
  job *j = ctx;
  if (tid < 0 || tid >= j->nt || b != j->n * tid / j->nt || e != j->n * (tid + 1) / j->nt) atomic_store(&j->bad, 1);
  for (int64_t i = b; i < e; i++) atomic_fetch_add(&j->hits[i], 1);
  if (j->nt > 1 && mm_parallel_threads(100) != 1) atomic_store(&j->bad, 2); /* nested: serial */
}

/* one call over n items; 1 when it held */
static int one_call(int64_t n) {
  job j;
  j.hits = calloc((size_t)n, sizeof *j.hits);
  if (!j.hits) return 0;
  j.n = n;
  j.nt = mm_parallel_threads(n);
  atomic_init(&j.bad, 0);
  int ok = mm_parallel_for(n, range, &j) == j.nt && atomic_load(&j.bad) == 0;
  for (int64_t i = 0; i < n; i++) ok &= atomic_load(&j.hits[i]) == 1;
  free(j.hits);
  return ok;
}

static void *caller(void *arg) {
  long fails = 0;
  for (int i = 0; i < 10000; i++) fails += !one_call(1 + (i * 7 + (int)(intptr_t)arg) % 50);
  return (void *)fails;
}

int main(void) {
  long fails = 0;
  for (int t = 1; t <= 6; t++) {
    mm_set_threads(t, NULL);
    for (int i = 0; i < 2000; i++) fails += !one_call(1 + i % 37);
  }
  printf("pool_stress: 1-6 threads, 12000 calls: %ld failed\n", fails);
  mm_set_threads(2, NULL);
  pthread_t a, b;
  void *ra = NULL, *rb = NULL;
  if (pthread_create(&a, NULL, caller, (void *)1) || pthread_create(&b, NULL, caller, (void *)2)) return 2;
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  printf("pool_stress: two callers at once, 20000 calls: %ld failed\n", (long)ra + (long)rb);
  fails += (long)ra + (long)rb;
  pid_t pid = fork();
  if (pid == 0) {
    long f = 0;
    for (int i = 0; i < 1000; i++) f += !one_call(1 + i % 20);
    _exit(f ? 1 : 0);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return 2;
  printf("pool_stress: forked child, 1000 calls: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "FAILED");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails++;
  return fails ? 1 : 0;
}
