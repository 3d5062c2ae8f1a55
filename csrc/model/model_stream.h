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

#endif
