/* train_dist.c - an epoch of data-parallel training over o->comm (sync.h).
 *
 * Every process holds the same model and the same rows. The epoch's order
 * is shuffled from the model's rng, whose state is the same everywhere, so
 * every process knows every global batch: step s takes rows
 * [s G, (s + 1) G) of the order (G = batch x processes) and process r the
 * slice [s G + r batch, s G + (r + 1) batch) of it (empty at the end of an
 * epoch when the rows run out). The gradients are summed (sync.c) and every
 * process applies the same update, so a run on P processes with batch b
 * takes the steps of one process with batch P b, up to the order of the
 * float sums. What each process draws at random inside a step (modality
 * dropout, augmentation) comes from a stream of its own, forked from the
 * shared rng; the shared state is put back at the end of the epoch.
 *
 * Errors are agreed: at the start (the checks, the same data, the same
 * weights), at every step (sync.c carries a flag per process) and at the
 * end (the last step's update, the progress callback, the same weights), so
 * every process ends the epoch with the error of the lowest failing rank.
 * A progress callback's request to stop travels with the next step's sum,
 * and the epoch ends before that step's update on every process. Hogwild
 * (hogwild.c) is not used: the steps are synchronous, and threads split the
 * work inside each step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

/* the loss weight of rows: their class weights, 1 each without */
static double rows_weight(const mm_dataset *ds, const int64_t *rows, int64_t n, const float *cw) {
  if (!cw) return (double)n;
  double s = 0;
  for (int64_t b = 0; b < n; b++) s += cw[ds->labels[rows[b]]];
  return s;
}

/* the same data and the same weights on every process (the start of an epoch) */
static int check_same(const mm_comm *c, const mm_model *M, const mm_dataset *ds, mm_err *e) {
  int64_t v[3] = {ds->n, mm_dataset_fingerprint(ds), mm_weights_fingerprint(M)};
  int same_data, same_w;
  int rc = mm_agree_same_i64(c, v, 2, &same_data, e);
  if (!rc) rc = mm_agree_same_i64(c, v + 2, 1, &same_w, e);
  if (rc) return rc;
  if (!same_data)
    return mm_errorf(e, MM_EINVAL,
                     "fit: the processes hold different training data (here %lld rows): distributed training "
                     "needs the same dataset on every process",
                     (long long)ds->n);
  if (!same_w)
    return mm_errorf(e, MM_EINVAL,
                     "fit: the processes start from different weights (the same seed and the same training "
                     "data build the same model on every process)");
  return MM_OK;
}

typedef struct epoch_run {
  mm_model *M;
  mm_dataset *ds;
  const mm_train_opts *o;
  ws *w;
  const int64_t *order;
  mm_sync *sy;
  mm_epoch_stats *st;
  double t0;
} epoch_run;

static int run_steps(epoch_run *er, mm_err *e) {
  mm_model *M = er->M;
  const mm_dataset *ds = er->ds;
  const mm_train_opts *o = er->o;
  const mm_comm *c = o->comm;
  const int64_t n = ds->n, B = o->batch, G = B * c->size, steps = (n + G - 1) / G, C = M->nclasses;
  double lsum = 0, last = er->t0;
  int64_t correct = 0, seen = 0, nb = 0;
  int rc = MM_OK, pend_rc = 0, pend_stop = 0;
  mm_err pend_e = {0};
  mm_sync_local l;
  mm_params_zero_grads(M);
  for (int64_t s = 0; s < steps; s++) {
    const int64_t first = s * G + c->rank * B;
    const int64_t nr = first >= n ? 0 : (n - first < B ? n - first : B);
    memset(&l, 0, sizeof l);
    if (pend_rc) {
      l.rc = pend_rc;
      l.e = pend_e;
    } else if (nr > 0) {
      double loss = 0;
      l.rc = mm_run_batch(M, ds, er->w, er->order + first, nr, 1, o->class_w, &loss, &l.e);
      if (!l.rc && !isfinite(loss)) l.rc = mm_train_loss_error(loss, first, nr, nb, &l.e);
      /* tested here too, so that the process whose rows made it is named */
      if (!l.rc && !mm_update_grads_finite(M))
        l.rc = mm_errorf(&l.e, MM_ENUM, "fit: gradient is not finite in batch %lld (rows %lld..%lld of the shuffled "
                                        "epoch); weights kept from the batch before",
                         (long long)nb + 1, (long long)first + 1, (long long)(first + nr));
      if (!l.rc) {
        l.loss = loss;
        l.wsum = rows_weight(ds, er->order + first, nr, o->class_w);
        l.rows = nr;
        for (int64_t b = 0; b < nr; b++) l.correct += mm_argmax(er->w->probs + b * C, C) == er->w->y[b];
      }
    }
    l.stop = pend_stop;
    mm_sync_total t;
    rc = mm_sync_step(er->sy, M, &l, &t, e);
    if (rc) break;
    if (t.stop) {
      er->st->stopped = 1;
      break;
    }
    /* the same sums give the same outcome everywhere; a failure of this
     * process alone (out of memory) is agreed at the next sum */
    pend_rc = mm_train_apply(M, o, nb, &pend_e);
    lsum += t.loss * (double)t.rows;
    correct += t.correct;
    seen += t.rows;
    nb++;
    if (!o->progress || pend_rc) continue;
    double now = mm_now_seconds();
    if (now - last < o->progress_interval && s + 1 < steps) continue;
    last = now;
    mm_progress pr = {nb, steps, seen, seen ? lsum / seen : 0, seen ? (double)correct / seen : 0, now - er->t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) pend_rc = mm_errorf(&pend_e, MM_EINVAL, "fit: the progress callback failed");
    if (r == 2) pend_stop = 1;
  }
  if (!rc) rc = mm_agree(c, pend_rc, &pend_e, e);
  if (!rc) { /* the same weights at the end, and a stop the last callback asked for */
    int64_t h = mm_weights_fingerprint(M), v[3] = {h, -h, pend_stop};
    rc = c->allreduce(c->ud, v, 3, MM_COMM_I64, MM_COMM_MAX, e);
    if (!rc && v[0] != -v[1])
      rc = mm_errorf(e, MM_ENUM,
                     "fit: the processes' weights differ after the epoch (every process must run the same build "
                     "at the same kernel level: MMFUSE_KERNEL)");
    if (!rc && v[2]) er->st->stopped = 1;
  }
  er->st->loss = seen ? lsum / seen : 0;
  er->st->accuracy = seen ? (double)correct / seen : 0;
  er->st->batches = nb;
  er->st->samples = seen;
  return rc;
}

int mm_train_dist_epoch(mm_model *M, mm_dataset *ds, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  const mm_comm *c = o->comm;
  M->wgen++;
  memset(st, 0, sizeof *st);
  int rc = mm_comm_check(c, e);
  if (rc) return rc;
  double t0 = mm_now_seconds();
  mm_err le = {0};
  ws *w = NULL;
  int64_t *order = NULL;
  mm_sync sy;
  int have_sync = 0;
  int lrc = mm_train_check_epoch(M, ds, o, &le);
  if (!lrc) {
    w = mm_ws_acquire(M, o->batch < ds->n ? o->batch : ds->n, 1, &le);
    if (!w) lrc = le.code;
  }
  if (!lrc) {
    M->opt_dirty = 1;
    lrc = mm_batch_bind(M, ds, w, 1, &le);
  }
  if (!lrc && !(order = malloc((size_t)ds->n * sizeof *order))) lrc = mm_errorf(&le, MM_ENOMEM, "fit: out of memory");
  if (!lrc) {
    lrc = mm_sync_init(&sy, c, o->sparse_sync, &le);
    have_sync = !lrc;
  }
  rc = mm_agree(c, lrc, &le, e);
  if (!rc) rc = check_same(c, M, ds, e);
  if (!rc) {
    for (int64_t r = 0; r < ds->n; r++) order[r] = r;
    mm_rng_shuffle(&M->rng, order, ds->n);
    mm_rng shared = M->rng, fork = M->rng;
    mm_rng_seed(&M->rng, mm_rng_u64(&fork) ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(c->rank + 1)));
    epoch_run er = {M, ds, o, w, order, &sy, st, t0};
    rc = run_steps(&er, e);
    M->rng = shared;
  }
  if (have_sync) mm_sync_free(&sy);
  free(order);
  if (w) mm_ws_release(M, w);
  st->seconds = mm_now_seconds() - t0;
  return rc;
}
