/* train_dist_stream.c - an epoch of data-parallel training over o->comm on
 * a stream (model_stream.h), the steps of train_dist.h.
 *
 * Every process reads its own part of the same stream (mm_stream_part: rows
 * r, r + P, ... or whole files), so no process holds, or reads, the whole
 * corpus. The model is the same everywhere (checked at the start), and so is
 * the shuffle seed, drawn from the shared rng: with parts by rows every
 * process keeps the same rows of the same file order, and the parts stay a
 * partition of the stream's rows. Every step each process takes the next
 * `batch` rows of its part, or none once its part has run out (the parts'
 * lengths may differ by a row, or by whole files); the rows of the step are
 * summed with the gradients (sync.c), and the step whose sum holds no row
 * ends the epoch on every process at once. Without shuffling, step s trains
 * on the rows [s P batch, (s + 1) P batch) of the stream's order, the batch
 * of one process with batch P x batch.
 *
 * A bad row is an error of the process whose part holds it (its message
 * names the file and the line); it travels with the next sum, so every
 * process ends the epoch with it. */
#include <stdlib.h>
#include <string.h>

#include "model_stream.h"
#include "train_dist.h"

/* this process's setup: the checks, a workspace and the sync buffers (*w) */
static int setup(mm_dist_epoch *d, mm_stream *s, ws **w, mm_err *e) {
  mm_model *M = d->M;
  const mm_train_opts *o = d->o;
  const mm_comm *c = o->comm;
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built (fit builds it)");
  int rc = mm_model_stream_check(M, s, "fit", e);
  if (!rc) rc = mm_train_opts_check(o, M->nclasses, e);
  if (rc) return rc;
  int64_t rank, ranks, block;
  int by_files;
  mm_stream_part_of(s, &rank, &ranks, &by_files, &block);
  if (ranks != c->size || rank != c->rank)
    return mm_errorf(e, MM_EINVAL,
                     "fit: process %d of %d trains on its part of the stream (stream:part(%d, %d)), not on part "
                     "%lld of %lld",
                     c->rank + 1, c->size, c->rank + 1, c->size, (long long)rank + 1, (long long)ranks);
  if (!(*w = mm_ws_acquire(M, o->batch, 1, e))) return e->code;
  M->opt_dirty = 1;
  return mm_dist_sync_init(d, e);
}

/* this process's next batch into *b (n 0 once its part has run out, or when
 * it failed: the error is then pending in d) */
static void next_rows(mm_dist_epoch *d, mm_stream *s, ws *w, int *exhausted, mm_stream_batch *b) {
  memset(b, 0, sizeof *b);
  if (d->pend_rc || *exhausted) return;
  int rc = mm_stream_next_batch(s, d->o->batch, b, &d->pend_e);
  if (!rc && b->n == 0) *exhausted = 1;
  if (!rc && b->n > 0) rc = mm_model_stream_labelled(b, &d->pend_e);
  if (!rc && b->n > 0) rc = mm_batch_bind(d->M, b->ds, w, 1, &d->pend_e);
  if (rc) {
    d->pend_rc = rc;
    b->n = 0;
  }
}

int mm_model_train_stream_dist(mm_model *M, mm_stream *s, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  mm_dist_epoch d;
  int rc = mm_dist_init(&d, M, o, st, e);
  if (rc) return rc;
  const mm_comm *c = o->comm;
  ws *w = NULL;
  mm_err le = {0};
  int lrc = setup(&d, s, &w, &le);
  int64_t rank, ranks, block;
  int by_files;
  mm_stream_part_of(s, &rank, &ranks, &by_files, &block);
  int64_t data[3] = {mm_stream_fingerprint(s), by_files, block};
  rc = mm_dist_check_start(&d, lrc, &le, data, 3,
                           "fit: the processes read different streams (every process needs the same classes and "
                           "modalities, and its part of the same files)",
                           e);
  /* the epoch's steps for the progress: the longest part's batches last epoch (0: not known yet) */
  mm_stream_stats ss;
  mm_stream_stats_get(s, &ss);
  int64_t steps = ss.last_rows >= 0 ? (ss.last_rows + o->batch - 1) / o->batch : 0;
  if (!rc) rc = c->allreduce(c->ud, &steps, 1, MM_COMM_I64, MM_COMM_MAX, e);
  if (!rc) {
    mm_stream_epoch ep = mm_model_stream_epoch(M, s, o->shuffle, o->shuffle ? mm_rng_u64(&M->rng) : 0);
    mm_dist_fork(&d);
    d.pend_rc = mm_stream_begin(s, &ep, &d.pend_e); /* a failure here is agreed at the first sum */
    int exhausted = 0, done = 0;
    mm_params_zero_grads(M);
    while (!rc && !done) {
      mm_stream_batch b;
      next_rows(&d, s, w, &exhausted, &b);
      mm_sync_local l;
      mm_dist_local(&d, b.ds, w, b.rows, b.n, b.first, &l);
      rc = mm_dist_step(&d, &l, steps, 0, &done, e);
    }
    /* the last step is always reported, as for data in memory */
    if (!rc && !st->stopped && d.seen > 0 && d.reported != d.nb) mm_dist_progress(&d, d.nb, 1);
    if (!rc && !st->stopped && d.seen == 0) rc = mm_errorf(e, MM_EINVAL, "fit: the training stream has no rows");
    mm_stream_end(s);
  }
  rc = mm_dist_end(&d, rc, e);
  if (w) mm_ws_release(M, w);
  return rc;
}
