/* model_stream.h - a model built, trained, run and evaluated on a stream
 * (stream.h) instead of a dataset in memory.
 *
 * Every call runs one epoch of the stream: the stream's threads read and
 * build chunks ahead while the caller's thread runs the batches. The
 * batches are B consecutive rows of the stream's order, so the same rows in
 * the same order train and predict with the same operations as
 * mm_model_train_epoch / mm_model_predict on those rows in memory.
 */
#ifndef MM_MODEL_STREAM_H
#define MM_MODEL_STREAM_H

#include "metrics.h"
#include "model.h"
#include "stream.h"

/* Build M (when it is not built) from the stream's modalities; a text
 * encoder's vocabulary comes from one pass over the text column, its count
 * kept to a bounded number of distinct tokens (4 x max_vocab when max_vocab
 * is set: the most frequent are kept each time it runs over). */
int mm_model_build_stream(mm_model *M, mm_stream *s, uint64_t seed, mm_err *e);

/* One training epoch over the stream. With o->shuffle the stream's order is
 * seeded by one draw of the model's rng (so the model's seed fixes it). */
int mm_model_train_stream(mm_model *M, mm_stream *s, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e);

/* Predict every row of the stream, batches of 256 rows. probs: when not
 * NULL, *probs gets a malloc'd [*n, C] array (the caller's to free); m: when
 * not NULL, the metrics against the stream's labels (mm_metrics_free). */
int mm_model_run_stream(mm_model *M, mm_stream *s, float **probs, int64_t *n, mm_metrics *m, mm_err *e);

/* ---- across the processes of a job (comm.h) ---- */

/* One training epoch of data-parallel training over o->comm
 * (train_dist_stream.c): every process passes its own part of the same
 * stream (mm_stream_part(s, rank, size, ...)) and the same model. Every step
 * each process trains on the next `batch` rows of its part (none once its
 * part has run out), the gradients are summed and every process applies the
 * same update; the epoch ends when every part has run out. The shuffle seed
 * is drawn from the model's rng, the same on every process. */
struct mm_comm;
int mm_model_train_stream_dist(mm_model *M, mm_stream *s, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e);

/* mm_model_run_stream over the processes of c (eval_dist.c): every process
 * passes the same whole stream and predicts its part (blocks of
 * MM_PREDICT_BATCH rows, k, k + size, ...: every row in the batch one
 * process alone computes it in). m: the metrics summed over the processes;
 * probs: every row's probabilities on every process, in the stream's order. */
int mm_model_run_stream_comm(mm_model *M, mm_stream *s, const struct mm_comm *c, float **probs, int64_t *n,
                             mm_metrics *m, mm_err *e);

/* ---- what the stream loops share ---- */

/* the epoch a model reads s with: the modalities it reads, its text tokenised by the workers */
mm_stream_epoch mm_model_stream_epoch(const mm_model *M, const mm_stream *s, int shuffle, uint64_t seed);
/* the stream's classes are the model's */
int mm_model_stream_check(const mm_model *M, const mm_stream *s, const char *what, mm_err *e);
/* every row of a training batch has a label */
int mm_model_stream_labelled(const mm_stream_batch *b, mm_err *e);

#endif
