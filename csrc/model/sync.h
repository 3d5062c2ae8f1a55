/* sync.h - what the files of data-parallel training share (csrc/model only):
 * the agreements of the processes (agree.c) and the gradient sum of a step
 * (sync.c), over the functions of an mm_comm (comm.h).
 *
 * Data parallelism as mmfuse runs it: every process holds the same model
 * (the same seed builds the same weights) and, for an in-memory dataset, the
 * same rows; each step's global batch of batch x size rows is cut into one
 * slice per process, every process computes the gradient of its slice, the
 * gradients are summed (sync.c) and every process applies the same update,
 * so the weights stay identical. Errors are agreed at fixed points (every
 * step and the ends of an epoch), so a process that fails inside a
 * collective phase makes every process fail with its message.
 */
#ifndef MM_SYNC_H
#define MM_SYNC_H

#include "comm.h"
#include "model_internal.h"
#include "stream.h"

/* ---- agreements (agree.c) ------------------------------------------------------------ */

/* Every process passes its own outcome (local_rc, with its message in
 * local_e when non-zero). When any failed, every process returns the code of
 * the lowest failing rank with "rank r of n: <its message>" in e; MM_OK when
 * none did. An error of the collective itself is returned as it is. */
int mm_agree(const mm_comm *c, int local_rc, const mm_err *local_e, mm_err *e);
/* the lowest rank whose flag is set in flags[0..size) (any non-zero), or -1 */
int mm_agree_failed(const mm_comm *c, const float *flags);
/* every process: the message of process `who` (its code in code) as e */
int mm_agree_message(const mm_comm *c, int who, int code, const mm_err *local_e, mm_err *e);
/* the same value on every process? (*same = 1 / 0) */
int mm_agree_same_i64(const mm_comm *c, const int64_t *v, int nv, int *same, mm_err *e);
/* a 62-bit fingerprint of n, the classes and the labels of ds (the data check) */
int64_t mm_dataset_fingerprint(const mm_dataset *ds);
/* a 62-bit fingerprint of every weight of M (the weights check) */
int64_t mm_weights_fingerprint(const mm_model *M);
/* a 62-bit fingerprint of what a stream's rows are: its classes and its
 * modalities (the files and their rows are read by each process, and may be
 * each host's own copy) */
int64_t mm_stream_fingerprint(const mm_stream *s);

/* ---- the gradient sum of a step (sync.c) --------------------------------------------- */

/* This process's part of a step: its rows' loss and counts, and what went wrong. */
typedef struct mm_sync_local {
  double wsum;     /* the rows' loss weight (class weights, 1 per row without) */
  double loss;     /* the rows' mean loss (weighted as the loss is) */
  int64_t correct, rows;
  int stop;        /* this process asks to end the epoch here */
  int rc;          /* non-zero: this process failed (message in e) */
  mm_err e;
} mm_sync_local;

/* The step summed over processes. */
typedef struct mm_sync_total {
  double wsum, loss; /* loss: the global weighted mean */
  int64_t correct, rows;
  int stop;
} mm_sync_total;

/* Buffers kept from step to step (sync.c), freed by mm_sync_free. */
typedef struct mm_sync {
  const mm_comm *c;
  int mode;
  float *buf;
  int64_t bufcap;
  uint8_t *mine, *all;
  int64_t minecap, allcap;
  int64_t *bytes_of, *counts, *sl; /* [size], [tables * size], slot scratch */
  int64_t slcap, countscap;
  float *table;
  int64_t tablecap;
} mm_sync;

/* mode: MM_SYNC_AUTO, or always MM_SYNC_ROWS / MM_SYNC_TABLE (config.h) */
int mm_sync_init(mm_sync *s, const mm_comm *c, int mode, mm_err *e);
void mm_sync_free(mm_sync *s);
/* After the backward of this process's rows, before the optimiser step:
 * every dense gradient and every sparse table's touched rows become the sum
 * over processes, each process's share weighted by its rows' loss weight
 * (the gradient of the global batch's weighted mean loss); the statistics
 * are summed into t. When any process failed, every process gets the error
 * (mm_agree) and the gradients are cleared; when any asked to stop, t->stop
 * is set and the gradients are cleared. */
int mm_sync_step(mm_sync *s, mm_model *M, const mm_sync_local *l, mm_sync_total *t, mm_err *e);

#endif
