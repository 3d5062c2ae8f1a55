/* stream_internal.h - what the files of a stream share: stream.c (the
 * object, its threads and the ring of chunks), stream_rows.c (the reader:
 * rows, filters, shuffle buffer) and stream_chunk.c (a worker: raw rows ->
 * mm_dataset). */
#ifndef MM_STREAM_INTERNAL_H
#define MM_STREAM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/rng.h"
#include "../io/npy_map.h"
#include "../io/table.h"
#include "stream.h"

typedef struct st_file {
  char *path, *dir; /* dir: where relative image paths start */
  int format;
  int64_t rows; /* rows of the file (-1: not counted) */
  int64_t base; /* rows of the files before it (row order of the .npy files) */
} st_file;

typedef struct st_feature {
  char name[MM_MODNAME];
  char *npy; /* or NULL: columns */
  mm_npy_map map;
  int64_t dim;
  char **colnames; /* or columns: ncols of them, at table columns col0.., the row's numbers val0.. */
  int col0, ncols;
  int64_t val0;
  int64_t *missing, nmissing;
} st_feature;

enum { ST_BY_VALUE = 1, ST_BY_HASH = 2 };
typedef struct st_filter {
  int kind;
  char *name;              /* the column */
  int col;                 /* its place in the stream's table columns */
  char **test, **valid;    /* BY_VALUE */
  int ntest, nvalid;
  double ratios[3];        /* BY_HASH */
  int keep;                /* 0 train, 1 valid, 2 test */
} st_filter;

/* raw rows of one chunk, as the reader parsed them */
typedef struct st_rows {
  int64_t n, cap;
  int64_t *label, *line, *npyrow;
  int32_t *file;
  int64_t *toff, *ioff; /* [n + 1] into tbuf / ibuf */
  char *tbuf, *ibuf;
  size_t tcap, icap;
  float *vals; /* [n, nvals] numbers of feature columns */
} st_rows;

/* one parsed row: views into the table's buffer until the next row */
typedef struct st_row {
  int64_t label, line, npyrow;
  int32_t file;
  const char *text, *img;
  size_t tlen, ilen;
  float vals[MM_STREAM_MAXCOLS];
} st_row;

/* counts that travel with a chunk to the consumer, so the totals and the
 * first bad row follow the stream's order */
typedef struct st_counts {
  int64_t bad, unlabelled, other;
  char first_bad[MM_ERRLEN];
} st_counts;

enum { SLOT_FREE = 0, SLOT_RAW, SLOT_BUSY, SLOT_READY };
typedef struct st_slot {
  int state;
  int64_t seq;
  int last; /* the reader's last chunk */
  st_rows raw;
  mm_dataset *ds;
  int rc; /* an error at this place of the stream */
  mm_err err;
  st_counts counts;
} st_slot;

/* the settings of a stream, fixed when it opens and shared with the streams
 * derived from it (split, drop, part): all on the caller's thread */
typedef struct st_shared {
  int refs;
  st_file *files;
  int nfiles;
  char *label, *text, *image, *row; /* column names (NULL: none) */
  int64_t image_size;
  int image_fit;
  st_feature feat[MM_STREAM_MAXFEAT];
  int nfeat;
  int64_t nvals; /* feature-column numbers per row */
  char **classes;
  int64_t nclasses;
  int32_t *chash; /* open addressing on the names: class index + 1, 0 empty */
  uint64_t nchash;
  int keep_unlabelled, skip_bad;
  int64_t chunk, queue, shuffle_buffer;
  int workers;
  mm_stream_modality mods[MM_MAXMOD];
  int nmods;
} st_shared;

struct mm_stream {
  st_shared *sh;
  /* the table columns read: label, text, image, row, the feature columns, then the filters' */
  const char *cols[4 + MM_STREAM_MAXCOLS + MM_STREAM_MAXFILTER];
  int ncols;
  int c_text, c_image, c_row; /* -1: none (the label is column 0) */
  st_filter filt[MM_STREAM_MAXFILTER];
  int nfilt;
  int64_t rank, ranks, block; /* a part's rank, the parts, its rows' blocks (mm_stream_part) */
  int by_files;
  uint32_t dropped; /* modalities absent on every row */

  /* the epoch */
  mm_stream_epoch ep;
  int running;
  atomic_int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv_free, cv_raw, cv_ready;
  pthread_t reader, worker[16];
  int nworker, reader_started, reader_done;
  st_slot *slots;
  int64_t nslots;
  int64_t take; /* the consumer's next chunk */
  int failed, ended;
  mm_err fail;
  mm_stream_stats stats;
  int64_t last_rows;
  /* the reader's (its thread only while it runs) */
  st_rows cur;
  st_counts rcounts;
  int64_t seq, kept;
  mm_rng rng;
  /* the batch cursor (the consumer's) */
  mm_dataset *bcur, *bjoin;
  int64_t bpos, bfirst;
  int64_t *iota, niota;
};

/* stream_rows.c: the reader thread */
void *mm_stream_reader_main(void *arg);
int mm_stream_class_find(const mm_stream *s, const char *name, size_t len);
void mm_stream_rows_free(st_rows *r);
/* stream.c: hand the reader's chunk to the ring (0, or -1 when stopped) */
int mm_stream_publish(mm_stream *s, int last, int rc, const mm_err *err);
/* stream_chunk.c: build slot->raw into slot->ds (or slot->rc / err) */
void mm_stream_build(mm_stream *s, st_slot *slot);
/* a bad row: counted (skip_bad) or the error of its place */
void mm_stream_count_bad(st_counts *c, const mm_err *e);

#endif
