/* parallel.c - see parallel.h */
#include "parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MM_PAR_MAX MM_THREADS_MAX

/* relaxed: a count read while another thread sets it is either value */
static atomic_int thread_count = 1;

int mm_threads(void) { return atomic_load_explicit(&thread_count, memory_order_relaxed); }

int mm_set_threads(int64_t n, mm_err *e) {
  if (n < 1 || n > MM_THREADS_MAX)
    return mm_errorf(e, MM_EINVAL, "thread count must be in 1..%d, got %lld", MM_THREADS_MAX, (long long)n);
  atomic_store_explicit(&thread_count, (int)n, memory_order_relaxed);
  openblas_set_num_threads((int)n);
  return MM_OK;
}

/* set while this thread runs a range of mm_parallel_for: a kernel called
 * from inside one (mm_sgemm under conv2d's batch split) runs serially.
 * Static TLS (initial-exec), though the module is dlopen'ed: one int fits in
 * glibc's reserve for that, every read skips __tls_get_addr, and the module
 * has no dynamically allocated TLS block, whose tracking by LeakSanitizer
 * (GCC 12's, with glibc 2.36) crashes at exit in some runs of `make asan`. */
static _Thread_local int in_region __attribute__((tls_model("initial-exec")));

static void run_range(mm_parallel_fn fn, void *ctx, int64_t n, int nt, int tid) {
  int outer = in_region;
  in_region = 1;
  fn(ctx, n * tid / nt, n * (tid + 1) / nt, tid);
  in_region = outer;
}

int mm_parallel_threads(int64_t n) {
  if (in_region) return 1;
  int t = mm_threads();
  if (t < 1) t = 1;
  if (t > MM_PAR_MAX) t = MM_PAR_MAX;
  if (n < (int64_t)t) t = n < 1 ? 1 : (int)n;
  return t;
}

/* ---- the pool ----------------------------------------------------------------------
 * Worker w (1 .. nworkers) runs range w of each job that gives it one. The
 * caller writes the job, then publishes ticket = (sequence << 9) | pooled:
 * workers 1..pooled take part. A worker reads the job only when it takes
 * part, and the caller writes the next job only after every part is done
 * (pending == 0), so the job needs no lock. Workers wait for the next ticket
 * spinning for about SPIN_NS (a training loop calls mm_parallel_for every
 * few tens of microseconds), then sleep on cv; the caller runs range 0 and
 * any range whose worker could not be created, then waits for pending to
 * reach 0 the same way (spin, then done_cv). Sleepers are counted so that a
 * job costs no lock while everyone spins (seq_cst on both sides: whoever
 * goes to sleep sees the other side's store, or is woken). Spinning is
 * skipped when there are more threads than CPUs. One caller at a time owns
 * the pool (busy); another caller meanwhile (a Lua state on another thread)
 * creates threads for its call and joins them. */
#define SPIN_NS 200000
#define TICKET_BITS 9

static struct {
  pthread_mutex_t mu, busy;
  pthread_cond_t cv, done_cv;
  pthread_t th[MM_PAR_MAX];
  unsigned long seen0[MM_PAR_MAX]; /* the ticket when worker w was created */
  int nworkers;                    /* written by the owner of busy only */
  atomic_int spin, shutdown, sleepers, caller_sleeps, pending;
  atomic_ulong ticket;
  /* the job: written before its ticket, read by the workers taking part */
  mm_parallel_fn fn;
  void *ctx;
  int64_t n;
  int nt;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .busy = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* spins for about SPIN_NS until the ticket differs from old (tk) or pending
 * is 0 (!tk); 1 when it did */
static int spin_until(int tk, unsigned long old) {
  if (!atomic_load_explicit(&P.spin, memory_order_relaxed)) return 0;
  uint64_t t0 = now_ns();
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (tk ? atomic_load_explicit(&P.ticket, memory_order_acquire) != old
             : atomic_load_explicit(&P.pending, memory_order_acquire) == 0)
        return 1;
      cpu_relax();
    }
    if (now_ns() - t0 > SPIN_NS || atomic_load_explicit(&P.shutdown, memory_order_relaxed)) return 0;
  }
}

static void *worker(void *arg) {
  const int w = (int)(intptr_t)arg;
  unsigned long seen = P.seen0[w];
  for (;;) {
    if (!spin_until(1, seen)) {
      pthread_mutex_lock(&P.mu);
      atomic_fetch_add(&P.sleepers, 1);
      while (atomic_load(&P.ticket) == seen && !atomic_load(&P.shutdown)) pthread_cond_wait(&P.cv, &P.mu);
      atomic_fetch_sub(&P.sleepers, 1);
      pthread_mutex_unlock(&P.mu);
    }
    if (atomic_load(&P.shutdown)) break;
    seen = atomic_load(&P.ticket);
    if (w > (int)(seen & ((1u << TICKET_BITS) - 1))) continue; /* no part in this job */
    run_range(P.fn, P.ctx, P.n, P.nt, w);
    if (atomic_fetch_sub(&P.pending, 1) == 1 && atomic_load(&P.caller_sleeps)) {
      pthread_mutex_lock(&P.mu);
      pthread_cond_broadcast(&P.done_cv);
      pthread_mutex_unlock(&P.mu);
    }
  }
  return NULL;
}

/* the workers end before the library is unmapped (Lua's dlclose at
 * lua_close) and at exit */
__attribute__((destructor)) static void pool_stop(void) {
  if (!P.nworkers) return;
  pthread_mutex_lock(&P.mu);
  atomic_store(&P.shutdown, 1);
  pthread_cond_broadcast(&P.cv);
  pthread_mutex_unlock(&P.mu);
  for (int w = 1; w <= P.nworkers; w++) pthread_join(P.th[w], NULL);
  P.nworkers = 0;
  atomic_store(&P.shutdown, 0);
}

/* a forked child has only the forking thread: it starts a pool of its own */
static void pool_child(void) {
  pthread_mutex_init(&P.mu, NULL);
  pthread_mutex_init(&P.busy, NULL);
  pthread_cond_init(&P.cv, NULL);
  pthread_cond_init(&P.done_cv, NULL);
  atomic_store(&P.sleepers, 0);
  atomic_store(&P.caller_sleeps, 0);
  P.nworkers = 0;
}
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static long ncpus; /* online CPUs (sysconf reads a file: once) */
static void pool_init(void) {
  ncpus = sysconf(_SC_NPROCESSORS_ONLN);
  pthread_atfork(NULL, NULL, pool_child);
}

static void run_pooled(int64_t n, int nt, mm_parallel_fn fn, void *ctx) {
  while (P.nworkers < nt - 1) {
    int w = P.nworkers + 1;
    P.seen0[w] = atomic_load(&P.ticket);
    if (pthread_create(&P.th[w], NULL, worker, (void *)(intptr_t)w) != 0) break;
    P.nworkers = w;
  }
  atomic_store(&P.spin, ncpus > 0 && nt <= ncpus);
  int pooled = nt - 1 < P.nworkers ? nt - 1 : P.nworkers; /* ranges 1..pooled go to the workers */
  P.fn = fn, P.ctx = ctx, P.n = n, P.nt = nt;
  atomic_store(&P.pending, pooled);
  unsigned long seq = (atomic_load(&P.ticket) >> TICKET_BITS) + 1;
  atomic_store(&P.ticket, (seq << TICKET_BITS) | (unsigned long)pooled);
  if (atomic_load(&P.sleepers) > 0) {
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
  }
  run_range(fn, ctx, n, nt, 0);
  for (int t = pooled + 1; t < nt; t++) run_range(fn, ctx, n, nt, t); /* no thread for these */
  if (pooled > 0 && !spin_until(0, 0)) {
    pthread_mutex_lock(&P.mu);
    atomic_store(&P.caller_sleeps, 1);
    while (atomic_load(&P.pending) > 0) pthread_cond_wait(&P.done_cv, &P.mu);
    atomic_store(&P.caller_sleeps, 0);
    pthread_mutex_unlock(&P.mu);
  }
}

/* fallback: threads created for this call and joined before it returns */
typedef struct {
  mm_parallel_fn fn;
  void *ctx;
  int64_t n;
  int nt, tid;
} par_job;

static void *par_run(void *arg) {
  par_job *j = arg;
  run_range(j->fn, j->ctx, j->n, j->nt, j->tid);
  return NULL;
}

static void run_unpooled(int64_t n, int nt, mm_parallel_fn fn, void *ctx) {
  par_job jobs[MM_PAR_MAX];
  pthread_t th[MM_PAR_MAX];
  int started[MM_PAR_MAX];
  for (int t = 0; t < nt; t++) jobs[t] = (par_job){fn, ctx, n, nt, t};
  for (int t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, par_run, &jobs[t]) == 0;
  par_run(&jobs[0]);
  for (int t = 1; t < nt; t++) {
    if (started[t])
      pthread_join(th[t], NULL);
    else
      par_run(&jobs[t]);
  }
}

int mm_parallel_for(int64_t n, mm_parallel_fn fn, void *ctx) {
  if (n <= 0) return 0;
  int nt = mm_parallel_threads(n);
  if (nt <= 1) {
    fn(ctx, 0, n, 0);
    return 1;
  }
  int blas = openblas_get_num_threads();
  if (blas != 1) openblas_set_num_threads(1);
  pthread_once(&init_once, pool_init);
  if (pthread_mutex_trylock(&P.busy) == 0) {
    run_pooled(n, nt, fn, ctx);
    pthread_mutex_unlock(&P.busy);
  } else {
    run_unpooled(n, nt, fn, ctx);
  }
  if (blas != 1) openblas_set_num_threads(blas);
  return nt;
}
