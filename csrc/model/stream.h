/* stream.h - a dataset read from disk while a model trains on it.
 *
 * A stream reads manifests (TSV / CSV, io/table.h; one file or several
 * shards) of any size, ahead of its consumer, in C threads:
 *  - a reader thread parses the rows, keeps those of its split part and
 *    rank, maps labels to classes, parses feature columns, and passes the
 *    rows through a shuffle buffer (when the epoch shuffles) into chunks of
 *    raw rows;
 *  - worker threads build every chunk as a small mm_dataset: images
 *    decoded at the stream's size, feature rows copied from memory-mapped
 *    .npy files (io/npy_map.h; their pages given back once copied), then the
 *    consumer's own preparation (the model tokenises the text);
 *  - the chunks wait in a ring of `queue` slots and reach the consumer in
 *    the reader's order, whatever thread finished first.
 * What the consumer sees therefore depends on the files, the settings and
 * the epoch's seed only. Memory is bounded by about (queue + 2) chunks, the
 * shuffle buffer's rows and the read buffer, whatever the size of the files.
 *
 * Order: without shuffling, the files in the order given and their rows in
 * file order. With shuffling (seeded per epoch): the files in a random
 * order, and every row through a buffer of `shuffle_buffer` rows from which
 * a random one leaves as each new row enters (the rest in random order at
 * the end).
 *
 * Rows: a row whose label is empty is left out (kept as unlabelled with
 * keep_unlabelled); the label must be one of the classes (given, or every
 * label of the files, sorted, found by one pass when the stream opens). A
 * bad row (malformed, unknown label, an image that does not decode, a
 * feature that is not a finite number, an .npy row outside the file) is an
 * error naming the file and the line, or with skip_bad is left out and
 * counted (mm_stream_stats).
 *
 * The consumer takes either whole chunks (mm_stream_next_chunk) or batches
 * of B consecutive rows of the stream's order (mm_stream_next_batch: a batch
 * that runs across chunks is gathered into one small dataset), so training
 * on a stream runs the same batches as on the same rows in memory.
 * Distributed training (one process per rank) gives every rank its own part
 * (mm_stream_part): rows r, r + ranks, ... of the rows kept (or blocks of
 * rows: prediction splits whole batches), or whole files.
 */
#ifndef MM_STREAM_H
#define MM_STREAM_H

#include <stdint.h>

#include "../core/error.h"
#include "dataset.h"

#define MM_STREAM_MAXFEAT 8   /* feature modalities (.npy files or columns) */
#define MM_STREAM_MAXFILTER 4 /* splits of splits */
#define MM_STREAM_MAXCOLS 64  /* feature columns in all */

typedef struct mm_stream mm_stream; /* opaque */

/* a feature modality: rows of an .npy file (one row per manifest row, at
 * the row the `row` column names or in row order), or numbers from columns */
typedef struct mm_stream_feature {
  const char *name;
  const char *npy;                /* or NULL */
  const char *const *cols;        /* or the ncols columns holding the numbers */
  int ncols;
  const int64_t *missing;         /* .npy rows that are absent (0-based, sorted; may be NULL) */
  int64_t nmissing;
} mm_stream_feature;

typedef struct mm_stream_spec {
  const char *const *paths; /* the files, in order (patterns are the caller's to expand) */
  int npaths;
  int format;               /* MM_TABLE_*, or -1: from each file's extension */
  const char *label;        /* the class column (required) */
  const char *text, *image; /* the text column and the image-path column (NULL: none) */
  const char *row;          /* the column with each row's .npy row (NULL: the row's place in the files) */
  int64_t image_size;       /* images are decoded to image_size x image_size */
  int image_fit;            /* MM_FIT_* */
  const mm_stream_feature *features;
  int nfeatures;
  const char *const *classes; /* NULL: every label of the files, sorted (one pass) */
  int64_t nclasses;
  int keep_unlabelled, skip_bad;
  int64_t chunk;          /* rows per chunk; 0: 2048, fewer for big rows (16 MB of pixels and features) */
  int64_t queue;          /* chunks made ahead (slots of the ring) */
  int64_t shuffle_buffer; /* rows */
  int workers;            /* threads building chunks (0: the reader builds them) */
} mm_stream_spec;

void mm_stream_spec_init(mm_stream_spec *s); /* zeros and the defaults */

mm_stream *mm_stream_open(const mm_stream_spec *spec, mm_err *e);
void mm_stream_free(mm_stream *s); /* ends a running epoch first */

/* ---- streams derived from one: the same files and settings ---- */

/* Three streams (train, valid, test) of s's rows, by the value of the
 * column `by` (in test / in valid / else train, as mm.data's ds:split), or
 * by a hash of the column `hash` (mm_stream_hash_part). */
typedef struct mm_stream_split {
  const char *by;
  const char *const *test, *const *valid;
  int ntest, nvalid;
  const char *hash;
  double ratios[3];
} mm_stream_split;
int mm_stream_split_parts(const mm_stream *s, const mm_stream_split *sp, mm_stream *out[3], mm_err *e);
/* the part (0 train, 1 valid, 2 test) of an id: FNV-1a 64 of its bytes,
 * mixed by murmur3's 64-bit finaliser, as a fraction u in [0, 1), then the
 * share of ratios (normalised) u falls in */
int mm_stream_hash_part(const char *id, size_t len, const double ratios[3]);
/* s with the named modalities absent on every row */
mm_stream *mm_stream_drop(const mm_stream *s, const char *const *names, int n, mm_err *e);
/* rank's part of s (0 <= rank < ranks): by_files, the files i with
 * i % ranks == rank; else blocks k, k + ranks, ... of `block` rows each of
 * the rows s keeps (before shuffling; block 1: rows k, k + ranks, ...), so
 * every rank's count is within one block of the others'. */
mm_stream *mm_stream_part(const mm_stream *s, int64_t rank, int64_t ranks, int by_files, int64_t block, mm_err *e);
/* what part s is (ranks 1: the whole stream) */
void mm_stream_part_of(const mm_stream *s, int64_t *rank, int64_t *ranks, int *by_files, int64_t *block);

/* ---- what a stream holds ---- */

int64_t mm_stream_nclasses(const mm_stream *s);
const char *mm_stream_class(const mm_stream *s, int64_t i);
int mm_stream_nfiles(const mm_stream *s);
const char *mm_stream_file(const mm_stream *s, int i);
/* the modalities of its chunks, in order (text, pixels, then the features) */
typedef struct mm_stream_modality {
  const char *name;
  int kind;     /* MM_MOD_* */
  int64_t dim;  /* DENSE: features per row; IMAGE: the side */
} mm_stream_modality;
int mm_stream_modalities(const mm_stream *s, mm_stream_modality out[MM_MAXMOD]);
/* a dataset of 0 rows with the chunks' modalities (for building a model) */
mm_dataset *mm_stream_template(const mm_stream *s, mm_err *e);

/* ---- an epoch ---- */

typedef struct mm_stream_epoch {
  int shuffle;
  uint64_t seed;
  uint32_t want; /* bit i: build modality i of mm_stream_modalities; 0: all */
  /* run by a worker on every chunk it built (e.g. tokenising with the
   * model's vocabulary); must only read what the consumer may be writing */
  int (*prepare)(void *ud, mm_dataset *chunk, mm_err *e);
  void *prepare_ud;
} mm_stream_epoch;

typedef struct mm_stream_stats {
  int64_t rows;       /* rows the consumer took */
  int64_t chunks;
  int64_t bad;        /* bad rows left out (skip_bad) */
  int64_t unlabelled; /* rows without a label left out */
  int64_t other;      /* rows of other split parts or ranks */
  double wait;        /* seconds the consumer waited for a chunk */
  int64_t last_rows;  /* rows of the last epoch read to its end (-1: none yet) */
  char first_bad[MM_ERRLEN]; /* the first bad row's message ("" when none) */
} mm_stream_stats;

/* Start the threads of an epoch (ending one that runs). */
int mm_stream_begin(mm_stream *s, const mm_stream_epoch *ep, mm_err *e);
/* The next chunk, in order: *chunk is the caller's to free, NULL after the
 * last one. An error (a bad row without skip_bad, a file that cannot be
 * read) is returned once the consumer reaches its place, and again on
 * every later call of the epoch. */
int mm_stream_next_chunk(mm_stream *s, mm_dataset **chunk, mm_err *e);
/* The next batch: n = B rows (fewer at the end, 0 after the last row), rows
 * ds's rows, valid until the next call; first = the batch's first row in
 * the epoch. Not to be mixed with next_chunk in one epoch. */
typedef struct mm_stream_batch {
  mm_dataset *ds;
  const int64_t *rows;
  int64_t n, first;
} mm_stream_batch;
int mm_stream_next_batch(mm_stream *s, int64_t B, mm_stream_batch *b, mm_err *e);
/* Stop the threads and free what the epoch holds (also mid-epoch). */
void mm_stream_end(mm_stream *s);
/* One epoch's rows gathered into one dataset in memory (small streams:
 * tests, a validation part); the epoch is ended when it returns. */
mm_dataset *mm_stream_collect(mm_stream *s, const mm_stream_epoch *ep, mm_err *e);
/* the counts of the current (or last) epoch */
void mm_stream_stats_get(const mm_stream *s, mm_stream_stats *st);

#endif
