/* train_dist.c - the steps of data-parallel training over o->comm
 * (train_dist.h), and the epoch over a dataset every process holds.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_dist.h"

/* the loss weight of rows: their class weights, 1 each without */
static double rows_weight(const mm_dataset *ds, const int64_t *rows, int64_t n, const float *cw) {
  if (!cw) return (double)n;
  double s = 0;
  for (int64_t b = 0; b < n; b++) s += cw[ds->labels[rows[b]]];
  return s;
}

int mm_dist_init(mm_dist_epoch *d, mm_model *M, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  M->wgen++;
  memset(d, 0, sizeof *d);
  memset(st, 0, sizeof *st);
  d->M = M, d->o = o, d->st = st;
  d->t0 = d->last = mm_now_seconds();
  d->reported = -1;
  return mm_comm_check(o->comm, e);
}

int mm_dist_sync_init(mm_dist_epoch *d, mm_err *e) {
  int rc = mm_sync_init(&d->sy, d->o->comm, d->o->sparse_sync, e);
  d->have_sync = !rc;
  return rc;
}

int mm_dist_check_start(mm_dist_epoch *d, int lrc, const mm_err *le, const int64_t *data, int ndata,
                        const char *differ, mm_err *e) {
  const mm_comm *c = d->o->comm;
  int rc = mm_agree(c, lrc, le, e);
  if (rc) return rc;
  int64_t h = mm_weights_fingerprint(d->M);
  int same_data, same_w;
  rc = mm_agree_same_i64(c, data, ndata, &same_data, e);
  if (!rc) rc = mm_agree_same_i64(c, &h, 1, &same_w, e);
  if (rc) return rc;
  if (!same_data) return mm_errorf(e, MM_EINVAL, "%s", differ);
  if (!same_w)
    return mm_errorf(e, MM_EINVAL,
                     "fit: the processes start from different weights (the same seed and the same training "
                     "data build the same model on every process)");
  return MM_OK;
}

void mm_dist_fork(mm_dist_epoch *d) {
  mm_model *M = d->M;
  mm_rng fork = M->rng;
  d->shared = M->rng;
  d->forked = 1;
  mm_rng_seed(&M->rng, mm_rng_u64(&fork) ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(d->o->comm->rank + 1)));
}

void mm_dist_local(mm_dist_epoch *d, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int64_t first,
                   mm_sync_local *l) {
  mm_model *M = d->M;
  const mm_train_opts *o = d->o;
  const int64_t C = M->nclasses;
  memset(l, 0, sizeof *l);
  l->stop = d->pend_stop;
  if (d->pend_rc) {
    l->rc = d->pend_rc;
    l->e = d->pend_e;
    return;
  }
  if (n == 0) return;
  double loss = 0;
  l->rc = mm_run_batch(M, ds, w, rows, n, 1, o->class_w, &loss, &l->e);
  if (!l->rc && !isfinite(loss)) l->rc = mm_train_loss_error(loss, first, n, d->nb, &l->e);
  /* tested here too, so that the process whose rows made it is named */
  if (!l->rc && !mm_update_grads_finite(M))
    l->rc = mm_errorf(&l->e, MM_ENUM, "fit: gradient is not finite in batch %lld (rows %lld..%lld of the shuffled "
                                      "epoch); weights kept from the batch before",
                      (long long)d->nb + 1, (long long)first + 1, (long long)(first + n));
  if (l->rc) return;
  l->loss = loss;
  l->wsum = rows_weight(ds, rows, n, o->class_w);
  l->rows = n;
  for (int64_t b = 0; b < n; b++) l->correct += mm_argmax(w->probs + b * C, C) == w->y[b];
}

void mm_dist_progress(mm_dist_epoch *d, int64_t steps, int force) {
  const mm_train_opts *o = d->o;
  if (!o->progress || d->pend_rc) return;
  double now = mm_now_seconds();
  if (!force && now - d->last < o->progress_interval) return;
  d->last = now;
  d->reported = d->nb;
  const int64_t seen = d->seen;
  mm_progress pr = {d->nb, steps > d->nb ? steps : d->nb, seen, seen ? d->lsum / seen : 0,
                    seen ? (double)d->correct / seen : 0, now - d->t0};
  int r = o->progress(o->progress_ud, &pr);
  if (r == 1) d->pend_rc = mm_errorf(&d->pend_e, MM_EINVAL, "fit: the progress callback failed");
  if (r == 2) d->pend_stop = 1;
}

int mm_dist_step(mm_dist_epoch *d, mm_sync_local *l, int64_t steps, int last, int *done, mm_err *e) {
  mm_sync_total t;
  *done = 0;
  int rc = mm_sync_step(&d->sy, d->M, l, &t, e);
  if (rc) return rc;
  if (t.stop) {
    d->st->stopped = 1;
    *done = 1;
    return MM_OK;
  }
  if (t.rows == 0) { /* every process's data has run out */
    *done = 1;
    return MM_OK;
  }
  /* the same sums give the same outcome everywhere; a failure of this
   * process alone (out of memory) is agreed at the next sum */
  d->pend_rc = mm_train_apply(d->M, d->o, d->nb, &d->pend_e);
  d->lsum += t.loss * (double)t.rows;
  d->correct += t.correct;
  d->seen += t.rows;
  d->nb++;
  mm_dist_progress(d, steps, last);
  return MM_OK;
}

int mm_dist_end(mm_dist_epoch *d, int rc, mm_err *e) {
  const mm_comm *c = d->o->comm;
  mm_epoch_stats *st = d->st;
  if (!rc) rc = mm_agree(c, d->pend_rc, &d->pend_e, e);
  if (!rc) { /* the same weights at the end, and a stop the last callback asked for */
    int64_t h = mm_weights_fingerprint(d->M), v[3] = {h, -h, d->pend_stop};
    rc = c->allreduce(c->ud, v, 3, MM_COMM_I64, MM_COMM_MAX, e);
    if (!rc && v[0] != -v[1])
      rc = mm_errorf(e, MM_ENUM,
                     "fit: the processes' weights differ after the epoch (every process must run the same build "
                     "at the same kernel level: MMFUSE_KERNEL)");
    if (!rc && v[2]) st->stopped = 1;
  }
  if (d->forked) d->M->rng = d->shared;
  if (d->have_sync) mm_sync_free(&d->sy);
  d->have_sync = d->forked = 0;
  st->loss = d->seen ? d->lsum / d->seen : 0;
  st->accuracy = d->seen ? (double)d->correct / d->seen : 0;
  st->batches = d->nb;
  st->samples = d->seen;
  st->seconds = mm_now_seconds() - d->t0;
  return rc;
}

/* ---- the epoch over a dataset every process holds ------------------------------------ */

int mm_train_dist_epoch(mm_model *M, mm_dataset *ds, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  const mm_comm *c = o->comm;
  mm_dist_epoch d;
  int rc = mm_dist_init(&d, M, o, st, e);
  if (rc) return rc;
  mm_err le = {0};
  ws *w = NULL;
  int64_t *order = NULL;
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
  if (!lrc) lrc = mm_dist_sync_init(&d, &le);
  int64_t data[2] = {ds->n, mm_dataset_fingerprint(ds)};
  char differ[MM_ERRLEN];
  snprintf(differ, sizeof differ,
           "fit: the processes hold different training data (here %lld rows): distributed training needs the same "
           "dataset on every process",
           (long long)ds->n);
  rc = mm_dist_check_start(&d, lrc, &le, data, 2, differ, e);
  if (!rc) {
    /* every process shuffles alike (the shared rng), so every process knows
     * every global batch: step s takes rows [s G, (s + 1) G) of the order
     * and this process the slice [s G + rank B, s G + (rank + 1) B) */
    for (int64_t r = 0; r < ds->n; r++) order[r] = r;
    mm_rng_shuffle(&M->rng, order, ds->n);
    mm_dist_fork(&d);
    const int64_t n = ds->n, B = o->batch, G = B * c->size, steps = (n + G - 1) / G;
    mm_params_zero_grads(M);
    for (int64_t s = 0; s < steps && !rc; s++) {
      const int64_t first = s * G + c->rank * B;
      const int64_t nr = first >= n ? 0 : (n - first < B ? n - first : B);
      mm_sync_local l;
      mm_dist_local(&d, ds, w, order + first, nr, first, &l);
      int done;
      rc = mm_dist_step(&d, &l, steps, s + 1 == steps, &done, e);
      if (done) break;
    }
  }
  rc = mm_dist_end(&d, rc, e);
  free(order);
  if (w) mm_ws_release(M, w);
  return rc;
}
