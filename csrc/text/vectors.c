/* vectors.c - streaming readers for GloVe / word2vec (text, binary) / .vec. */
#include "vectors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/file.h"
#include "utf8.h"

#define MAX_DIM 100000
#define MAX_WORD (64 * 1024)
#define MAX_LINE ((size_t)16 * 1024 * 1024)

const char *const mm_vec_format_names[] = {"auto", "glove", "word2vec", "word2vec-bin", "vec", NULL};

int mm_vec_format_parse(const char *name) {
  for (int i = 0; mm_vec_format_names[i]; i++)
    if (strcmp(name, mm_vec_format_names[i]) == 0) return i;
  return -1;
}

const char *mm_vec_format_name(mm_vec_format f) {
  return (f >= MM_VEC_AUTO && f <= MM_VEC_VEC) ? mm_vec_format_names[f] : "?";
}

typedef struct reader {
  FILE *f;
  const char *path;
  mm_vec_format fmt;
  int64_t dim;
  int64_t count; /* declared by the header; -1 for GloVe */
  int64_t line;  /* number of the line last read (1-based) */
  char *buf;
  size_t len, cap;
  char **fields;
  int64_t nfields, fcap;
} reader;

static void rd_close(reader *r) {
  if (r->f) fclose(r->f);
  free(r->buf);
  free(r->fields);
  memset(r, 0, sizeof *r);
}

/* read one line (without its '\n' / "\r\n"); 1 = got a line, 0 = EOF, -1 = error */
static int rd_line(reader *r, mm_err *e) {
  r->len = 0;
  int c, any = 0;
  while ((c = getc_unlocked(r->f)) != EOF) {
    any = 1;
    if (c == '\n') break;
    if (r->len + 2 > r->cap) {
      size_t cap = r->cap ? r->cap * 2 : 4096;
      if (cap > MAX_LINE) {
        mm_errorf(e, MM_EFORMAT, "%s:%lld: line longer than %zu bytes", r->path, (long long)r->line + 1, MAX_LINE);
        return -1;
      }
      char *b = realloc(r->buf, cap);
      if (!b) {
        mm_errorf(e, MM_ENOMEM, "%s:%lld: out of memory", r->path, (long long)r->line + 1);
        return -1;
      }
      r->buf = b;
      r->cap = cap;
    }
    r->buf[r->len++] = (char)c;
  }
  if (ferror(r->f)) {
    mm_errorf(e, MM_EIO, "%s:%lld: read error (%s)", r->path, (long long)r->line + 1, strerror(errno));
    return -1;
  }
  if (!any) return 0;
  r->line++;
  if (!r->buf) { /* an empty first line */
    r->buf = malloc(16);
    if (!r->buf) {
      mm_errorf(e, MM_ENOMEM, "%s: out of memory", r->path);
      return -1;
    }
    r->cap = 16;
  }
  if (r->len && r->buf[r->len - 1] == '\r') r->len--;
  r->buf[r->len] = 0;
  return 1;
}

static int is_sp(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

/* split the current line at blanks, NUL-terminating each field */
static int rd_split(reader *r, mm_err *e) {
  r->nfields = 0;
  char *p = r->buf, *end = r->buf + r->len;
  while (p < end) {
    while (p < end && is_sp(*p)) *p++ = 0;
    if (p >= end) break;
    if (r->nfields == r->fcap) {
      int64_t cap = r->fcap ? r->fcap * 2 : 512;
      char **f = realloc(r->fields, (size_t)cap * sizeof *f);
      if (!f) return mm_errorf(e, MM_ENOMEM, "%s:%lld: out of memory", r->path, (long long)r->line);
      r->fields = f;
      r->fcap = cap;
    }
    r->fields[r->nfields++] = p;
    while (p < end && !is_sp(*p)) p++;
  }
  if (p <= end) *end = 0;
  return MM_OK;
}

static int parse_int(const char *s, int64_t *v) {
  if (!*s) return 0;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (*end || errno || x < 0) return 0;
  *v = x;
  return 1;
}

static int parse_float(const char *s, float *v) {
  char *end;
  errno = 0;
  float x = strtof(s, &end);
  if (end == s || *end) return 0;
  *v = x;
  return 1;
}

/* open, detect format, read the header; leaves the stream at the first vector */
static int rd_open(reader *r, const char *path, mm_vec_format fmt, mm_err *e) {
  memset(r, 0, sizeof *r);
  r->path = path;
  r->fmt = fmt;
  r->count = -1;
  if (fmt < MM_VEC_AUTO || fmt > MM_VEC_VEC) return mm_errorf(e, MM_EINVAL, "%s: unknown vector format %d", path, fmt);
  r->f = mm_file_fopen(path, 0, NULL, NULL, e); /* a regular file, or refused unread */
  if (!r->f) return e ? e->code : MM_EIO;
  int got = rd_line(r, e);
  if (got < 0) return e ? e->code : MM_EFORMAT;
  if (got == 0) return mm_errorf(e, MM_EFORMAT, "%s: empty file", path);
  if (rd_split(r, e)) return e->code;
  int64_t a = 0, b = 0;
  int header = r->nfields == 2 && parse_int(r->fields[0], &a) && parse_int(r->fields[1], &b);
  if (fmt == MM_VEC_AUTO) {
    size_t pl = strlen(path);
    if (pl >= 4 && strcmp(path + pl - 4, ".bin") == 0) {
      fmt = MM_VEC_W2V_BIN;
    } else if (header) {
      unsigned char peek[1024];
      long pos = ftell(r->f);
      size_t np = fread(peek, 1, sizeof peek, r->f);
      int bin = 0;
      for (size_t i = 0; i < np; i++)
        if (peek[i] < 0x09 || (peek[i] >= 0x0E && peek[i] < 0x20)) bin = 1;
      if (pos < 0 || fseek(r->f, pos, SEEK_SET) != 0)
        return mm_errorf(e, MM_EIO, "%s: cannot seek (%s)", path, strerror(errno));
      fmt = bin ? MM_VEC_W2V_BIN : MM_VEC_W2V_TEXT;
    } else {
      fmt = MM_VEC_GLOVE;
    }
  }
  r->fmt = fmt;
  if (fmt == MM_VEC_GLOVE) {
    if (r->nfields < 2)
      return mm_errorf(e, MM_EFORMAT, "%s:1: expected a word followed by its values, got %lld field(s)", path,
                       (long long)r->nfields);
    r->dim = r->nfields - 1;
    if (r->dim > MAX_DIM) return mm_errorf(e, MM_EFORMAT, "%s:1: dimension %lld > %d", path, (long long)r->dim, MAX_DIM);
    if (fseek(r->f, 0, SEEK_SET) != 0) return mm_errorf(e, MM_EIO, "%s: cannot seek (%s)", path, strerror(errno));
    r->line = 0;
    return MM_OK;
  }
  if (!header)
    return mm_errorf(e, MM_EFORMAT, "%s:1: expected a header \"<count> <dim>\" (%s format), got \"%.60s\"", path,
                     mm_vec_format_name(fmt), r->nfields ? r->fields[0] : "");
  if (b < 1 || b > MAX_DIM)
    return mm_errorf(e, MM_EFORMAT, "%s:1: dimension %lld in the header is not in 1..%d", path, (long long)b, MAX_DIM);
  r->count = a;
  r->dim = b;
  return MM_OK;
}

int mm_vectors_probe(const char *path, mm_vec_format fmt, mm_vec_stats *st, mm_err *e) {
  reader r;
  int rc = rd_open(&r, path, fmt, e);
  if (rc == MM_OK) {
    memset(st, 0, sizeof *st);
    st->format = r.fmt;
    st->dim = r.dim;
  }
  rd_close(&r);
  return rc;
}

/* -- matching ---------------------------------------------------------------- */
typedef struct matcher {
  const mm_vocab *v;
  uint8_t *state; /* 0 none, 1 filled by a folded match, 2 by an exact match */
  char *fold;
  size_t fcap;
  mm_tensor *out;
  int64_t dim;
} matcher;

/* row to fill for word w, or -1 */
static int64_t match(matcher *m, const char *w, size_t n, int *exact) {
  const mm_vocab *v = m->v;
  int unk = mm_vocab_options(v)->unk;
  int64_t id = mm_vocab_find(v, w, n);
  if (id >= 0 && !(unk && id == 0)) {
    *exact = 1;
    return m->state[id] < 2 ? id : -1;
  }
  /* case-folded (and variation selectors removed), as the tokenizer writes it */
  if (m->fcap < 4 * n + 1) {
    char *f = realloc(m->fold, 4 * n + 1);
    if (!f) return -1;
    m->fold = f;
    m->fcap = 4 * n + 1;
  }
  size_t o = 0, p = 0;
  while (p < n) {
    uint32_t cp;
    p += mm_utf8_decode((const unsigned char *)w + p, n - p, &cp);
    if (cp == 0xFE0E || cp == 0xFE0F) continue;
    o += mm_utf8_encode(mm_utf8_fold(cp), (unsigned char *)m->fold + o);
  }
  id = mm_vocab_find(v, m->fold, o);
  if (id < 0 || (unk && id == 0)) return -1;
  *exact = 0;
  return m->state[id] == 0 ? id : -1;
}

static void fill(matcher *m, int64_t id, int exact, const float *x) {
  memcpy(m->out->data + id * m->dim, x, (size_t)m->dim * sizeof(float));
  m->state[id] = exact ? 2 : 1;
}

static int load_text(reader *r, matcher *m, mm_vec_stats *st, mm_err *e) {
  int64_t d = r->dim;
  float *x = malloc((size_t)d * sizeof *x);
  if (!x) return mm_errorf(e, MM_ENOMEM, "%s: out of memory", r->path);
  int rc = MM_OK;
  for (;;) {
    int got = rd_line(r, e);
    if (got < 0) {
      rc = e ? e->code : MM_EFORMAT;
      break;
    }
    if (got == 0) break;
    if ((rc = rd_split(r, e))) break;
    if (r->nfields == 0) continue; /* blank line */
    int64_t nf = r->nfields;
    if (nf < d + 1 || (nf > d + 1 && parse_float(r->fields[1], &x[0]))) {
      rc = mm_errorf(e, MM_EFORMAT, "%s:%lld: expected a word and %lld values, got %lld value(s) after \"%.40s\"",
                     r->path, (long long)r->line, (long long)d, (long long)nf - 1, r->fields[0]);
      break;
    }
    for (int64_t j = 0; j < d; j++) {
      const char *s = r->fields[nf - d + j];
      if (!parse_float(s, &x[j]) || !isfinite(x[j])) {
        rc = mm_errorf(e, MM_EFORMAT, "%s:%lld: value %lld (\"%.30s\") is not a finite number", r->path,
                       (long long)r->line, (long long)j + 1, s);
        break;
      }
    }
    if (rc) break;
    /* the word: fields[0 .. nf-d) joined by single spaces */
    char *w = r->fields[0];
    for (int64_t j = 1; j < nf - d; j++) r->fields[j][-1] = ' ';
    size_t wn = strlen(w);
    if (wn > MAX_WORD) {
      rc = mm_errorf(e, MM_EFORMAT, "%s:%lld: word longer than %d bytes", r->path, (long long)r->line, MAX_WORD);
      break;
    }
    st->file_words++;
    if (r->count >= 0 && st->file_words > r->count) {
      rc = mm_errorf(e, MM_EFORMAT, "%s:%lld: more vectors than the %lld the header declares", r->path,
                     (long long)r->line, (long long)r->count);
      break;
    }
    int exact;
    int64_t id = match(m, w, wn, &exact);
    if (id >= 0) fill(m, id, exact, x);
  }
  if (!rc && r->count >= 0 && st->file_words != r->count)
    rc = mm_errorf(e, MM_EFORMAT, "%s:%lld: the header declares %lld vectors but the file has %lld (truncated?)",
                   r->path, (long long)r->line, (long long)r->count, (long long)st->file_words);
  if (!rc && st->file_words == 0) rc = mm_errorf(e, MM_EFORMAT, "%s: no vectors in the file", r->path);
  free(x);
  return rc;
}

static int load_bin(reader *r, matcher *m, mm_vec_stats *st, mm_err *e) {
  int64_t d = r->dim;
  float *x = malloc((size_t)d * sizeof *x);
  char *w = malloc(MAX_WORD + 1);
  int rc = MM_OK;
  if (!x || !w) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", r->path);
  for (int64_t k = 0; k < r->count && !rc; k++) {
    long at = ftell(r->f);
    int c;
    size_t wn = 0;
    while ((c = getc_unlocked(r->f)) == '\n' || c == ' ' || c == '\r') {
    }
    while (c != EOF && c != ' ') {
      if (wn == MAX_WORD) {
        rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): word longer than %d bytes", r->path,
                       (long long)k + 1, at, MAX_WORD);
        break;
      }
      w[wn++] = (char)c;
      c = getc_unlocked(r->f);
    }
    if (rc) break;
    if (c == EOF) {
      rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): truncated (end of file in the word); the header declares %lld vectors",
                     r->path, (long long)k + 1, at, (long long)r->count);
      break;
    }
    if (wn == 0) {
      rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): empty word", r->path, (long long)k + 1, at);
      break;
    }
    size_t got = fread(x, sizeof(float), (size_t)d, r->f);
    if (got != (size_t)d) {
      rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): truncated (%zu of %lld values); the header declares %lld vectors",
                     r->path, (long long)k + 1, at, got, (long long)d, (long long)r->count);
      break;
    }
    for (int64_t j = 0; j < d; j++)
      if (!isfinite(x[j])) {
        rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): value %lld is not finite", r->path,
                       (long long)k + 1, at, (long long)j + 1);
        break;
      }
    if (rc) break;
    st->file_words++;
    int exact;
    int64_t id = match(m, w, wn, &exact);
    if (id >= 0) fill(m, id, exact, x);
  }
  if (!rc && r->count == 0) rc = mm_errorf(e, MM_EFORMAT, "%s: no vectors in the file", r->path);
  if (!rc) { /* only blanks may follow the last record */
    long at = ftell(r->f);
    int c;
    while ((c = getc_unlocked(r->f)) == '\n' || c == ' ' || c == '\r') {
    }
    if (c != EOF)
      rc = mm_errorf(e, MM_EFORMAT, "%s: record %lld (byte %ld): data after the %lld vectors the header declares (not a word2vec binary file?)",
                     r->path, (long long)r->count + 1, at, (long long)r->count);
  }
  free(x);
  free(w);
  return rc;
}

int mm_vectors_load(const char *path, mm_vec_format fmt, const mm_vocab *v, mm_tensor *out, uint8_t *found_mask,
                    mm_vec_stats *st, mm_err *e) {
  reader r;
  mm_vec_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof *st);
  int rc = rd_open(&r, path, fmt, e);
  if (rc) {
    rd_close(&r);
    return rc;
  }
  st->format = r.fmt;
  st->dim = r.dim;
  int64_t V = mm_vocab_size(v);
  if (out->ndim != 2 || out->shape[0] < V || out->shape[1] != r.dim) {
    char buf[64];
    rc = mm_errorf(e, MM_EINVAL, "%s: vectors have dimension %lld; the output tensor must be 2-D with >= %lld rows and %lld columns, got %s",
                   path, (long long)r.dim, (long long)V, (long long)r.dim, mm_shape_str(out, buf, sizeof buf));
    rd_close(&r);
    return rc;
  }
  matcher m = {v, calloc((size_t)(V ? V : 1), 1), NULL, 0, out, r.dim};
  if (!m.state) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  if (!rc) rc = (r.fmt == MM_VEC_W2V_BIN) ? load_bin(&r, &m, st, e) : load_text(&r, &m, st, e);
  if (!rc) {
    int unk = mm_vocab_options(v)->unk;
    st->total = V - (unk ? 1 : 0);
    for (int64_t i = 0; i < V; i++) {
      if (m.state[i]) st->found++;
      if (found_mask) found_mask[i] = m.state[i] ? 1 : 0;
    }
  }
  free(m.state);
  free(m.fold);
  rd_close(&r);
  return rc;
}
