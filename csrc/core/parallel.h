/* parallel.h - the thread count, and a tiny pthread fork/join helper for the
 * kernels.
 * mm_set_threads(n) sets how many threads mmfuse's kernels use (1 at load)
 * and OpenBLAS's thread count with it (one knob for both).
 * mm_parallel_for(n, fn, ctx) splits [0, n) into mm_parallel_threads(n)
 * contiguous, static ranges (thread tid gets [tid*n/nt, (tid+1)*n/nt)) and
 * runs fn(ctx, begin, end, tid) on each, the caller's thread taking tid 0,
 * and returns when every range is done. The other ranges run on a pool of
 * worker threads, started on first use and kept (they spin briefly between
 * calls, then sleep; they end when the library is unloaded). A caller that
 * finds the pool busy (another thread's call) gets threads created for its
 * call. While several threads run, OpenBLAS is set to one thread
 * so that concurrent cblas_sgemm calls do not oversubscribe the cores; its
 * previous count is restored afterwards. With one thread (mm_threads() == 1
 * or n < 2) fn(ctx, 0, n, 0) is called directly. Inside a range (on any of
 * the threads) mm_parallel_threads() is 1: nested calls run serially. */
#ifndef MM_PARALLEL_H
#define MM_PARALLEL_H

#include <stdint.h>

#include "error.h"

#define MM_THREADS_MAX 256

/* the thread count (1 until mm_set_threads changes it) */
int mm_threads(void);
/* set the thread count to n (1..MM_THREADS_MAX, else MM_EINVAL and no
 * change) and OpenBLAS's to the same n */
int mm_set_threads(int64_t n, mm_err *e);

typedef void (*mm_parallel_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* how many threads mm_parallel_for(n, ...) will use: min(mm_threads(), n), >= 1 */
int mm_parallel_threads(int64_t n);

/* returns the number of ranges run (>= 1 when n > 0; 0 when n <= 0). If a
 * thread cannot be created its range runs on the caller's thread, so every
 * range always runs exactly once with the tid it was assigned. */
int mm_parallel_for(int64_t n, mm_parallel_fn fn, void *ctx);

#endif
