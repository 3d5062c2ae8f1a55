/* train_dist.h - the steps of a data-parallel training epoch (train_dist.c),
 * shared by the epoch over a dataset every process holds (train_dist.c) and
 * the epoch over each process's part of a stream (train_dist_stream.c).
 *
 * A step: each process runs the forward and backward of its rows (none at
 * the end of its data), mm_sync_step sums the gradients and the statistics,
 * and every process applies the same update. The running state below is the
 * job's (the summed statistics); an error or a stop request of one process
 * is carried to the next sum, so every process ends at the same step. */
#ifndef MM_TRAIN_DIST_H
#define MM_TRAIN_DIST_H

#include "sync.h"

typedef struct mm_dist_epoch {
  mm_model *M;
  const mm_train_opts *o;
  mm_epoch_stats *st;
  mm_sync sy;
  int have_sync, forked;
  mm_rng shared;   /* the model's rng as every process holds it (mm_dist_fork) */
  double t0, last, lsum;
  int64_t correct, seen, nb, reported;
  int pend_rc, pend_stop; /* this process's error / stop request, for the next sum */
  mm_err pend_e;
} mm_dist_epoch;

/* the state of an epoch starting now (the sync buffers: mm_dist_sync_init);
 * fails when o->comm is not a communicator the core can call */
int mm_dist_init(mm_dist_epoch *d, mm_model *M, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e);
int mm_dist_sync_init(mm_dist_epoch *d, mm_err *e);
/* The start of an epoch on every process: the local outcome (lrc, message in
 * le) agreed, then the same data (data[0..ndata), e.g. fingerprints; differ:
 * the message when they differ) and the same weights everywhere. */
int mm_dist_check_start(mm_dist_epoch *d, int lrc, const mm_err *le, const int64_t *data, int ndata,
                        const char *differ, mm_err *e);
/* From here every process draws its own random numbers (dropout,
 * augmentation), forked from the shared rng; mm_dist_end puts it back. */
void mm_dist_fork(mm_dist_epoch *d);
/* This process's part of a step: rows of ds (n may be 0) run forward and
 * backward into l (first: the rows' place, for messages). */
void mm_dist_local(mm_dist_epoch *d, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int64_t first,
                   mm_sync_local *l);
/* The step summed and applied, the statistics counted and the progress
 * reported (steps: the epoch's steps as far as known; last: this is the last
 * one). *done: the epoch ends here (a stop request, or no process had rows:
 * then nothing is applied). */
int mm_dist_step(mm_dist_epoch *d, mm_sync_local *l, int64_t steps, int last, int *done, mm_err *e);
/* the progress callback with the job's running numbers (force: whatever the interval) */
void mm_dist_progress(mm_dist_epoch *d, int64_t steps, int force);
/* The end of the epoch (rc: the steps' outcome): the pending errors agreed,
 * the same weights checked, the statistics filled, the rng put back and the
 * sync buffers freed. */
int mm_dist_end(mm_dist_epoch *d, int rc, mm_err *e);

#endif
