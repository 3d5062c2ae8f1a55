/* stream_rows.c - a stream's reader thread (stream.h): the files in the
 * epoch's order, every row parsed (io/table.h), filtered (split parts,
 * ranks, unlabelled rows) and checked (label, row number, feature columns),
 * then through the shuffle buffer into the chunk of raw rows it hands to the
 * ring (mm_stream_publish). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_internal.h"

enum { ROW_KEEP = 0, ROW_OTHER, ROW_UNLABELLED, ROW_BAD };

void mm_stream_rows_free(st_rows *r) {
  free(r->label), free(r->line), free(r->npyrow), free(r->file);
  free(r->toff), free(r->ioff), free(r->tbuf), free(r->ibuf), free(r->vals);
  memset(r, 0, sizeof *r);
}

void mm_stream_count_bad(st_counts *c, const mm_err *e) {
  c->bad++;
  if (!c->first_bad[0]) snprintf(c->first_bad, sizeof c->first_bad, "%s", e->msg);
}

static int grow_bytes(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  char *p = realloc(*buf, c);
  if (!p) return -1;
  *buf = p;
  *cap = c;
  return 0;
}

/* room for one more row */
static int rows_reserve(st_rows *r, int64_t nvals) {
  if (r->n + 1 <= r->cap && r->toff) return 0;
  int64_t cap = r->cap ? r->cap * 2 : 256;
  int64_t *a = realloc(r->label, (size_t)cap * sizeof *a);
  if (!a) return -1;
  r->label = a;
  if (!(a = realloc(r->line, (size_t)cap * sizeof *a))) return -1;
  r->line = a;
  if (!(a = realloc(r->npyrow, (size_t)cap * sizeof *a))) return -1;
  r->npyrow = a;
  int32_t *f = realloc(r->file, (size_t)cap * sizeof *f);
  if (!f) return -1;
  r->file = f;
  if (!(a = realloc(r->toff, (size_t)(cap + 1) * sizeof *a))) return -1;
  r->toff = a;
  if (!(a = realloc(r->ioff, (size_t)(cap + 1) * sizeof *a))) return -1;
  r->ioff = a;
  if (nvals) {
    float *v = realloc(r->vals, (size_t)(cap * nvals) * sizeof *v);
    if (!v) return -1;
    r->vals = v;
  }
  r->cap = cap;
  return 0;
}

static int rows_append(st_rows *r, const st_row *x, int64_t nvals) {
  if (rows_reserve(r, nvals)) return -1;
  int64_t i = r->n;
  if (i == 0) r->toff[0] = r->ioff[0] = 0;
  if (grow_bytes(&r->tbuf, &r->tcap, (size_t)r->toff[i] + x->tlen + 1) ||
      grow_bytes(&r->ibuf, &r->icap, (size_t)r->ioff[i] + x->ilen + 1))
    return -1;
  memcpy(r->tbuf + r->toff[i], x->text, x->tlen);
  memcpy(r->ibuf + r->ioff[i], x->img, x->ilen);
  r->toff[i + 1] = r->toff[i] + (int64_t)x->tlen;
  r->ioff[i + 1] = r->ioff[i] + (int64_t)x->ilen;
  r->label[i] = x->label;
  r->line[i] = x->line;
  r->npyrow[i] = x->npyrow;
  r->file[i] = x->file;
  if (nvals) memcpy(r->vals + i * nvals, x->vals, (size_t)nvals * sizeof *x->vals);
  r->n++;
  return 0;
}

/* a row waiting in the shuffle buffer: this header, the numbers, the text, the image path */
typedef struct blob {
  int64_t label, line, npyrow;
  int32_t file;
  uint32_t tlen, ilen, pad;
} blob;

static blob *blob_pack(const st_row *x, int64_t nvals) {
  size_t nv = (size_t)nvals * sizeof(float);
  blob *b = malloc(sizeof *b + nv + x->tlen + x->ilen);
  if (!b) return NULL;
  *b = (blob){x->label, x->line, x->npyrow, x->file, (uint32_t)x->tlen, (uint32_t)x->ilen, 0};
  char *p = (char *)(b + 1);
  memcpy(p, x->vals, nv);
  memcpy(p + nv, x->text, x->tlen);
  memcpy(p + nv + x->tlen, x->img, x->ilen);
  return b;
}

static void blob_view(const blob *b, st_row *x, int64_t nvals) {
  size_t nv = (size_t)nvals * sizeof(float);
  const char *p = (const char *)(b + 1);
  x->label = b->label, x->line = b->line, x->npyrow = b->npyrow, x->file = b->file;
  memcpy(x->vals, p, nv);
  x->text = p + nv, x->tlen = b->tlen;
  x->img = p + nv + b->tlen, x->ilen = b->ilen;
}

static int filter_part(const st_filter *f, const char *v, size_t len) {
  if (f->kind == ST_BY_HASH) return mm_stream_hash_part(v, len, f->ratios);
  for (int i = 0; i < f->ntest; i++)
    if (strlen(f->test[i]) == len && memcmp(f->test[i], v, len) == 0) return 2;
  for (int i = 0; i < f->nvalid; i++)
    if (strlen(f->valid[i]) == len && memcmp(f->valid[i], v, len) == 0) return 1;
  return 0;
}

static int bad(mm_err *e, const mm_table *t, const char *fmt, const char *col, const char *v, size_t len) {
  char what[300];
  snprintf(what, sizeof what, fmt, col, (int)(len > 200 ? 200 : len), v);
  mm_errorf(e, MM_EINVAL, "%s:%lld: %s", mm_table_path(t), (long long)mm_table_line(t), what);
  return ROW_BAD;
}

/* a number with nothing else but white space around it */
static int parse_number(const char *v, size_t len, double *out) {
  char buf[80];
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, v, len);
  buf[len] = 0;
  char *end;
  *out = strtod(buf, &end);
  if (end == buf) return -1;
  while (*end == ' ' || *end == '\t') end++;
  return *end || !isfinite(*out) ? -1 : 0;
}

static int unknown_label(const mm_stream *s, const mm_table *t, const char *v, size_t len, mm_err *e) {
  const st_shared *sh = s->sh;
  char list[240];
  size_t o = 0;
  list[0] = 0;
  for (int64_t c = 0; c < sh->nclasses && o < sizeof list - 8; c++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", c ? ", " : "", sh->classes[c]);
  if (o >= sizeof list - 8) snprintf(list + sizeof list - 8, 8, ", ...");
  mm_errorf(e, MM_EINVAL, "%s:%lld: unknown label '%.*s' (classes: %s)", mm_table_path(t),
            (long long)mm_table_line(t), (int)(len > 200 ? 200 : len), v, list);
  return ROW_BAD;
}

/* the current row of t (file f, its rowno-th row) into x */
static int parse_row(mm_stream *s, mm_table *t, int f, int64_t rowno, st_row *x, mm_err *e) {
  const st_shared *sh = s->sh;
  size_t len;
  for (int i = 0; i < s->nfilt; i++) {
    const char *v = mm_table_value(t, s->filt[i].col, &len);
    if (filter_part(&s->filt[i], v, len) != s->filt[i].keep) return ROW_OTHER;
  }
  size_t llen;
  const char *lab = mm_table_value(t, 0, &llen);
  if (llen == 0 && !sh->keep_unlabelled) return ROW_UNLABELLED;
  if (s->ranks > 1 && !s->by_files && s->kept++ / s->block % s->ranks != s->rank) return ROW_OTHER;
  x->label = -1;
  if (llen > 0 && (x->label = mm_stream_class_find(s, lab, llen)) < 0) return unknown_label(s, t, lab, llen, e);
  x->file = f;
  x->line = mm_table_line(t);
  x->text = "", x->tlen = 0, x->img = "", x->ilen = 0;
  if (s->c_text >= 0) x->text = mm_table_value(t, s->c_text, &x->tlen);
  if (s->c_image >= 0) x->img = mm_table_value(t, s->c_image, &x->ilen);
  x->npyrow = rowno;
  if (s->c_row >= 0) {
    const char *v = mm_table_value(t, s->c_row, &len);
    int64_t r = 0;
    size_t k = 0;
    for (; k < len && v[k] >= '0' && v[k] <= '9' && r < ((int64_t)1 << 50); k++) r = r * 10 + (v[k] - '0');
    if (len == 0 || k != len) return bad(e, t, "column '%s' is not a row number ('%.*s')", sh->row, v, len);
    x->npyrow = r;
  }
  for (int fi = 0; fi < sh->nfeat; fi++) {
    const st_feature *ft = &sh->feat[fi];
    for (int c = 0; c < ft->ncols; c++) {
      const char *v = mm_table_value(t, ft->col0 + c, &len);
      double d;
      if (parse_number(v, len, &d)) return bad(e, t, "column '%s' is not a finite number ('%.*s')", ft->colnames[c], v, len);
      x->vals[ft->val0 + c] = (float)d;
      if (!isfinite(x->vals[ft->val0 + c]))
        return bad(e, t, "column '%s' is not a finite number ('%.*s')", ft->colnames[c], v, len);
    }
  }
  return ROW_KEEP;
}

typedef struct reader {
  mm_stream *s;
  blob **buf; /* the shuffle buffer */
  int64_t nbuf, cap;
  int stopped, oom;
} reader;

/* a row into the current chunk; the chunk to the ring when full */
static void take_row(reader *rd, const st_row *x) {
  mm_stream *s = rd->s;
  if (rows_append(&s->cur, x, s->sh->nvals)) {
    rd->oom = 1;
    return;
  }
  if (s->cur.n >= s->sh->chunk && mm_stream_publish(s, 0, 0, NULL)) rd->stopped = 1;
}

/* a kept row, through the shuffle buffer when there is one */
static void emit(reader *rd, const st_row *x) {
  mm_stream *s = rd->s;
  if (!rd->buf) {
    take_row(rd, x);
    return;
  }
  blob *b = blob_pack(x, s->sh->nvals);
  if (!b) {
    rd->oom = 1;
    return;
  }
  if (rd->nbuf < rd->cap) {
    rd->buf[rd->nbuf++] = b;
    return;
  }
  int64_t j = (int64_t)mm_rng_below(&s->rng, (uint64_t)rd->cap);
  st_row out;
  blob_view(rd->buf[j], &out, s->sh->nvals);
  take_row(rd, &out);
  free(rd->buf[j]);
  rd->buf[j] = b;
}

/* the rows of file f; returns an error to stop the stream with, or MM_OK */
static int read_file(reader *rd, int f, mm_err *err) {
  mm_stream *s = rd->s;
  const st_shared *sh = s->sh;
  mm_table *t = mm_table_open(sh->files[f].path, sh->files[f].format, s->cols, s->ncols, err);
  if (!t) return err->code;
  int rc = MM_OK;
  int64_t base = sh->files[f].base;
  for (int64_t k = 0; !rd->stopped && !rd->oom; k++) {
    if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
      rd->stopped = 1;
      break;
    }
    int got = 0;
    mm_err re = {0};
    int r = mm_table_next(t, &got, &re);
    if (r) {
      if (mm_table_broken(t) || !sh->skip_bad) {
        *err = re;
        rc = r;
        break;
      }
      mm_stream_count_bad(&s->rcounts, &re);
      continue;
    }
    if (!got) break;
    st_row x;
    int what = parse_row(s, t, f, base + k, &x, &re);
    if (what == ROW_KEEP)
      emit(rd, &x);
    else if (what == ROW_OTHER)
      s->rcounts.other++;
    else if (what == ROW_UNLABELLED)
      s->rcounts.unlabelled++;
    else if (sh->skip_bad)
      mm_stream_count_bad(&s->rcounts, &re);
    else {
      *err = re;
      rc = re.code ? re.code : MM_EINVAL;
      break;
    }
  }
  mm_table_close(t);
  return rc;
}

void *mm_stream_reader_main(void *arg) {
  reader rd = {arg, NULL, 0, 0, 0, 0};
  mm_stream *s = rd.s;
  const st_shared *sh = s->sh;
  mm_err err = {0};
  int rc = MM_OK;
  int *order = malloc((size_t)sh->nfiles * sizeof *order);
  int nf = 0;
  if (s->ep.shuffle && sh->shuffle_buffer > 0) {
    rd.cap = sh->shuffle_buffer;
    rd.buf = malloc((size_t)rd.cap * sizeof *rd.buf);
  }
  if (!order || (s->ep.shuffle && sh->shuffle_buffer > 0 && !rd.buf)) rd.oom = 1;
  for (int f = 0; order && f < sh->nfiles; f++)
    if (!s->by_files || f % s->ranks == s->rank) order[nf++] = f;
  if (order && s->ep.shuffle)
    for (int i = nf - 1; i > 0; i--) { /* Fisher-Yates over the files */
      int j = (int)mm_rng_below(&s->rng, (uint64_t)i + 1), tmp = order[i];
      order[i] = order[j], order[j] = tmp;
    }
  for (int i = 0; i < nf && !rc && !rd.stopped && !rd.oom; i++) rc = read_file(&rd, order[i], &err);
  /* what is left in the shuffle buffer leaves in random order */
  for (int64_t n = rd.nbuf; !rc && n > 0 && !rd.stopped && !rd.oom; n--) {
    int64_t j = (int64_t)mm_rng_below(&s->rng, (uint64_t)n);
    st_row out;
    blob_view(rd.buf[j], &out, sh->nvals);
    take_row(&rd, &out);
    free(rd.buf[j]);
    rd.buf[j] = rd.buf[n - 1];
    rd.nbuf = n - 1;
  }
  for (int64_t i = 0; i < rd.nbuf; i++) free(rd.buf[i]);
  free(rd.buf);
  free(order);
  if (rd.oom && !rc) rc = mm_errorf(&err, MM_ENOMEM, "stream: out of memory reading rows");
  if (!rd.stopped) mm_stream_publish(s, 1, rc, &err);
  return NULL;
}
