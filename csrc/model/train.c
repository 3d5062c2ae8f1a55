/* train.c - training: one step (a batch's forward and backward, the finite
 * tests, clipping, the optimiser step) and one epoch (shuffle, the steps in
 * order, running statistics, the progress callback). With more than one
 * thread a text-only model trains Hogwild (hogwild.c); everything else runs
 * one step after the other, so one seed gives the same bits every time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "../core/parallel.h"
#include "model_internal.h"

double mm_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int64_t mm_argmax(const float *p, int64_t C) {
  int64_t best = 0;
  for (int64_t c = 1; c < C; c++)
    if (p[c] > p[best]) best = c;
  return best;
}

/* Subnormal floats in the optimiser pass: flushed to zero (x86: MXCSR FTZ +
 * DAZ for this thread, restored right after). Adam's moments of weights
 * whose gradient stays 0 for a while decay geometrically (m *= b1) into the
 * subnormal range, and squares of tiny gradients land there too; every
 * multiplication that reads or produces a subnormal then takes a microcode
 * assist of ~150 cycles (the Adam loop runs 15x slower with 1 value in 13
 * subnormal, and a fusion-head epoch twice as long). Flushing changes values
 * only below FLT_MIN (1.2e-38), far under the rounding of any weight or
 * moment that matters, is the same on every run, and stays inside one
 * thread's update (forward and backward, which may run on worker threads,
 * are untouched). PyTorch offers the same switch: torch.set_flush_denormal. */
#if defined(__x86_64__) || defined(__i386__)
static unsigned ftz_begin(void) {
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return csr;
}
static void ftz_end(unsigned csr) { _mm_setcsr(csr); }
#else
static unsigned ftz_begin(void) { return 0; }
static void ftz_end(unsigned csr) { (void)csr; }
#endif

/* One training step on rows (s: their offset in the shuffled epoch, nb:
 * batches done). The gradients are complete and tested when the optimiser
 * step begins: the place where gradients from other processes would be
 * summed in before the update. */
int mm_train_step(mm_model *M, mm_dataset *ds, ws *w, const mm_train_opts *o, const int64_t *rows, int64_t n,
                  int64_t s, int64_t nb, double *loss_out, mm_err *e) {
  double loss = 0;
  int rc = mm_run_batch(M, ds, w, rows, n, 1, o->class_w, &loss, e);
  if (rc) return rc;
  if (!isfinite(loss)) {
    rc = mm_errorf(e, MM_ENUM, "fit: loss is %s in batch %lld (rows %lld..%lld of the shuffled epoch); weights "
                               "kept from the batch before",
                   isnan(loss) ? "NaN" : "Inf", (long long)nb + 1, (long long)s + 1, (long long)(s + n));
    mm_params_zero_grads(M);
    return rc;
  }
  /* the global norm only when clipping; otherwise a cheap finite test (a
   * non-finite gradient must not reach the optimiser state m / v) */
  double ss = o->clip > 0 ? mm_update_grad_sumsq(M) : 0.0;
  if (o->clip > 0 ? !isfinite(ss) : !mm_update_grads_finite(M)) {
    rc = mm_errorf(e, MM_ENUM, "fit: gradient is not finite in batch %lld; weights kept from the batch before",
                   (long long)nb + 1);
    mm_params_zero_grads(M);
    return rc;
  }
  double scale = 1.0, norm = sqrt(ss);
  if (o->clip > 0 && norm > o->clip) scale = o->clip / norm;
  unsigned csr = ftz_begin();
  rc = mm_update_apply(M, o, scale, e);
  ftz_end(csr);
  if (rc) {
    mm_err_prefix(e, "batch %lld: ", (long long)nb + 1);
    return rc;
  }
  *loss_out = loss;
  return MM_OK;
}

static int check_epoch(const mm_model *M, const mm_dataset *ds, const mm_train_opts *o, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built (fit builds it)");
  if (ds->nclasses != M->nclasses)
    return mm_errorf(e, MM_EINVAL, "model: data has %lld classes, the model %lld", (long long)ds->nclasses,
                     (long long)M->nclasses);
  int rc = mm_train_opts_check(o, M->nclasses, e);
  if (rc) return rc;
  if (ds->n < 1) return mm_errorf(e, MM_EINVAL, "fit: the training data has no rows");
  for (int64_t r = 0; r < ds->n; r++)
    if (ds->labels[r] < 0) return mm_errorf(e, MM_EINVAL, "fit: training row %lld has no label", (long long)r + 1);
  return MM_OK;
}

/* the steps of one epoch in order, one thread */
static int train_sequential(mm_model *M, mm_dataset *ds, ws *w, const mm_train_opts *o, const int64_t *order,
                            int64_t B, mm_epoch_stats *st, double t0, mm_err *e) {
  double lsum = 0, last = t0;
  int64_t correct = 0, seen = 0, nb = 0;
  int rc = MM_OK;
  mm_params_zero_grads(M);
  for (int64_t s = 0; s < ds->n; s += B) {
    int64_t n = ds->n - s < B ? ds->n - s : B;
    double loss = 0;
    rc = mm_train_step(M, ds, w, o, order + s, n, s, nb, &loss, e);
    if (rc) break;
    lsum += loss * n;
    for (int64_t b = 0; b < n; b++) correct += mm_argmax(w->probs + b * M->nclasses, M->nclasses) == w->y[b];
    seen += n;
    nb++;
    if (!o->progress) continue;
    double t = mm_now_seconds();
    if (t - last < o->progress_interval && s + n < ds->n) continue;
    last = t;
    mm_progress pr = {nb, (ds->n + B - 1) / B, seen, lsum / seen, (double)correct / seen, t - t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) {
      rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
      break;
    }
    if (r == 2) {
      st->stopped = 1;
      break;
    }
  }
  st->loss = seen ? lsum / seen : 0;
  st->accuracy = seen ? (double)correct / seen : 0;
  st->batches = nb;
  st->samples = seen;
  return rc;
}

int mm_model_train_epoch(mm_model *M, mm_dataset *ds, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  M->wgen++; /* every step (and Hogwild thread) writes weights */
  memset(st, 0, sizeof *st);
  int rc = check_epoch(M, ds, o, e);
  if (rc) return rc;
  double t0 = mm_now_seconds();
  int64_t B = o->batch < ds->n ? o->batch : ds->n;
  ws *w = mm_ws_acquire(M, B, 1, e);
  if (!w) return e->code;
  M->opt_dirty = 1; /* gradients (and the optimiser state) get written from here on */
  rc = mm_batch_bind(M, ds, w, 1, e);
  int64_t *order = malloc((size_t)ds->n * sizeof *order);
  if (!rc && !order) rc = mm_errorf(e, MM_ENOMEM, "fit: out of memory");
  if (!rc) {
    for (int64_t r = 0; r < ds->n; r++) order[r] = r;
    if (o->shuffle) mm_rng_shuffle(&M->rng, order, ds->n);
    int nt = mm_parallel_threads(ds->n);
    if (nt > 1 && mm_hogwild_ok(M) && ds->n >= (int64_t)nt * B) {
      mm_params_zero_grads(M);
      rc = mm_train_hogwild(M, ds, o, order, B, nt, st, t0, e);
    } else {
      rc = train_sequential(M, ds, w, o, order, B, st, t0, e);
    }
  }
  free(order);
  mm_ws_release(M, w);
  st->seconds = mm_now_seconds() - t0;
  return rc;
}
