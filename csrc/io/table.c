/* table.c - manifests row by row (table.h): one read buffer, rows parsed in
 * place; values are offsets into the buffer, or into a scratch buffer for
 * the values that need unescaping (CSV quotes, JSON strings and numbers). */
#include "table.h"

#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *const mm_table_format_names[] = {"tsv", "csv", NULL};

#define FIRST_CAP ((size_t)1 << 20)

/* a growing byte buffer */
typedef struct mm_scratch {
  char *p;
  size_t n, cap;
} mm_scratch;

struct mm_table {
  char *path;
  int fmt, fd;
  char *buf;
  size_t cap, beg, end; /* unread bytes: buf[beg, end) */
  int eof, broken, skip_line;
  int64_t line, row_line; /* the line of buf[beg]; the line where the current row starts */
  int ncols;              /* wanted columns */
  char **cols;
  int nhead; /* TSV / CSV: header fields */
  int *slot; /* [nhead]: header field -> wanted column, or -1 */
  size_t *voff, *vlen;
  uint8_t *vscr; /* value i lives in scr */
  mm_scratch scr;
};

int mm_table_format_of(const char *path) {
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) return MM_TABLE_TSV;
  if (strcasecmp(dot, ".csv") == 0) return MM_TABLE_CSV;
  return MM_TABLE_TSV;
}

const char *mm_table_path(const mm_table *t) { return t->path; }
const char *const *mm_table_columns(const mm_table *t, int *n) {
  *n = t->ncols;
  return (const char *const *)t->cols;
}
int64_t mm_table_line(const mm_table *t) { return t->row_line; }
int mm_table_broken(const mm_table *t) { return t->broken; }

const char *mm_table_value(const mm_table *t, int i, size_t *len) {
  *len = t->vlen[i];
  if (!t->vlen[i]) return "";
  return t->vscr[i] ? t->scr.p + t->voff[i] : t->buf + t->voff[i];
}

void mm_table_close(mm_table *t) {
  if (!t) return;
  if (t->fd >= 0) close(t->fd);
  for (int i = 0; t->cols && i < t->ncols; i++) free(t->cols[i]);
  free(t->cols);
  free(t->path);
  free(t->buf);
  free(t->slot);
  free(t->voff);
  free(t->vlen);
  free(t->vscr);
  free(t->scr.p);
  free(t);
}

/* a failure after which no further row can be read */
static int broken(mm_table *t, int code, mm_err *e, const char *fmt, const char *detail) {
  t->broken = 1;
  return mm_errorf(e, code, fmt, t->path, (long long)t->row_line, detail);
}

/* move the unread bytes to the front, grow when the buffer is full, read more */
static int fill(mm_table *t, mm_err *e) {
  if (t->beg > 0) {
    memmove(t->buf, t->buf + t->beg, t->end - t->beg);
    t->end -= t->beg;
    t->beg = 0;
  }
  if (t->end == t->cap) {
    if (t->cap >= MM_TABLE_MAX_ROW)
      return broken(t, MM_EFORMAT, e, "%s:%lld: a row longer than %s", "64 MB");
    char *nb = realloc(t->buf, t->cap * 2);
    if (!nb) return broken(t, MM_ENOMEM, e, "%s:%lld: out of memory %s", "for a long row");
    t->buf = nb;
    t->cap *= 2;
  }
  for (;;) {
    ssize_t n = read(t->fd, t->buf + t->end, t->cap - t->end);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return broken(t, MM_EIO, e, "%s:%lld: read error: %s", strerror(errno));
    if (n == 0) t->eof = 1;
    t->end += (size_t)n;
    return MM_OK;
  }
}

static void set_value(mm_table *t, int i, size_t off, size_t len, int in_scr) {
  t->voff[i] = off;
  t->vlen[i] = len;
  t->vscr[i] = (uint8_t)in_scr;
}

/* the next line: buf[*off, *off + *len) without its \n and a \r before it;
 * *got = 0 at the end of the file */
static int next_line(mm_table *t, size_t *off, size_t *len, int *got, mm_err *e) {
  for (;;) {
    char *p = t->buf + t->beg;
    size_t avail = t->end - t->beg;
    char *nl = memchr(p, '\n', avail);
    if (!nl && !t->eof) {
      int rc = fill(t, e);
      if (rc) return rc;
      continue;
    }
    if (!nl && avail == 0) {
      *got = 0;
      return MM_OK;
    }
    size_t l = nl ? (size_t)(nl - p) : avail;
    *off = t->beg;
    t->beg += l + (nl != NULL);
    t->row_line = t->line++;
    if (l && p[l - 1] == '\r') l--;
    *len = l;
    *got = 1;
    return MM_OK;
  }
}

/* the fields of a TSV line; header: count them only */
static int tsv_fields(mm_table *t, size_t off, size_t len, int *nf) {
  const char *p = t->buf + off, *end = p + len;
  int j = 0;
  for (;;) {
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    const char *fe = tab ? tab : end;
    if (j < t->nhead && t->slot && t->slot[j] >= 0) set_value(t, t->slot[j], (size_t)(p - t->buf), (size_t)(fe - p), 0);
    j++;
    if (!tab) break;
    p = tab + 1;
  }
  *nf = j;
  return MM_OK;
}

/* CSV: one record from buf[beg]. *need: the buffer ended inside it (read
 * more and parse it again). Values of the header (hdr) go into hv. */
typedef struct csv_field {
  size_t off, len;
  int scr;
} csv_field;

static int scr_put(mm_scratch *s, const char *p, size_t n) {
  if (s->n + n + 1 > s->cap) {
    size_t c = s->cap ? s->cap : 4096;
    while (c < s->n + n + 1) c *= 2;
    char *q = realloc(s->p, c);
    if (!q) return MM_ENOMEM;
    s->p = q;
    s->cap = c;
  }
  memcpy(s->p + s->n, p, n);
  s->n += n;
  return MM_OK;
}

/* the place of a row-level error: skip the rest of its line on the next call */
static int row_error(mm_table *t, size_t at, int64_t line, mm_err *e, const char *what) {
  t->beg = at;
  t->line = line;
  t->skip_line = 1;
  return mm_errorf(e, MM_EFORMAT, "%s:%lld: %s", t->path, (long long)line, what);
}

/* record one field j of the current CSV row */
static void csv_keep(mm_table *t, int j, size_t off, size_t len, int scr, csv_field *hdr, int nhdr) {
  if (hdr) {
    if (j < nhdr) hdr[j] = (csv_field){off, len, scr};
  } else if (j < t->nhead && t->slot[j] >= 0) {
    set_value(t, t->slot[j], off, len, scr);
  }
}

static int csv_record(mm_table *t, int *need, int *nf, int *blank, csv_field *hdr, int nhdr, mm_err *e) {
  size_t i = t->beg;
  int64_t ln = t->line;
  const char *b = t->buf;
  int j = 0;
  size_t lastlen = 0;
  t->row_line = t->line;
  t->scr.n = 0;
  *need = 0;
  if (i == t->end) { /* nothing left: the end of the file, or more to read */
    *need = !t->eof;
    *nf = 0;
    return MM_OK;
  }
  for (;;) {
    size_t fo, fl;
    int scr = 0;
    if (i < t->end && b[i] == '"') {
      size_t s0 = t->scr.n, k = i + 1;
      for (;;) {
        const char *q = memchr(b + k, '"', t->end - k);
        if (!q) {
          if (!t->eof) return *need = 1, MM_OK;
          return broken(t, MM_EFORMAT, e, "%s:%lld: unterminated quoted field%s", "");
        }
        size_t qi = (size_t)(q - b);
        for (size_t x = k; x < qi; x++) ln += b[x] == '\n';
        if (scr_put(&t->scr, b + k, qi - k)) return broken(t, MM_ENOMEM, e, "%s:%lld: out of memory%s", "");
        if (qi + 1 == t->end && !t->eof) return *need = 1, MM_OK;
        if (qi + 1 < t->end && b[qi + 1] == '"') {
          if (scr_put(&t->scr, "\"", 1)) return broken(t, MM_ENOMEM, e, "%s:%lld: out of memory%s", "");
          k = qi + 2;
          continue;
        }
        i = qi + 1;
        break;
      }
      if (i < t->end && b[i] != ',' && b[i] != '\n' && b[i] != '\r')
        return row_error(t, i, ln, e, "unexpected character after a closing quote");
      fo = s0, fl = t->scr.n - s0, scr = 1;
    } else {
      size_t k = i;
      while (k < t->end && b[k] != ',' && b[k] != '\n' && b[k] != '\r' && b[k] != '"') k++;
      if (k == t->end && !t->eof) return *need = 1, MM_OK;
      if (k < t->end && b[k] == '"') return row_error(t, k, ln, e, "a quote inside an unquoted field");
      fo = i, fl = k - i;
      i = k;
    }
    csv_keep(t, j, fo, fl, scr, hdr, nhdr);
    lastlen = fl;
    j++;
    if (i == t->end) break; /* the end of the file ends the row */
    if (b[i] == ',') {
      i++;
      continue;
    }
    if (b[i] == '\r') {
      if (i + 1 == t->end && !t->eof) return *need = 1, MM_OK;
      if (i + 1 < t->end && b[i + 1] == '\n') i++;
    }
    i++;
    ln++;
    break;
  }
  t->beg = i;
  t->line = ln;
  *nf = j;
  *blank = j == 1 && lastlen == 0;
  return MM_OK;
}

/* after a row-level CSV error: the rest of that line */
static int skip_rest_of_line(mm_table *t, mm_err *e) {
  for (;;) {
    char *p = t->buf + t->beg;
    char *nl = memchr(p, '\n', t->end - t->beg);
    if (nl) {
      t->beg += (size_t)(nl - p) + 1;
      t->line++;
      t->skip_line = 0;
      return MM_OK;
    }
    t->beg = t->end;
    if (t->eof) {
      t->skip_line = 0;
      return MM_OK;
    }
    int rc = fill(t, e);
    if (rc) return rc;
  }
}

/* the next CSV record that is not blank; hdr: the header's fields */
static int csv_next(mm_table *t, int *got, int *nf, csv_field *hdr, int nhdr, mm_err *e) {
  if (t->skip_line) {
    int rc = skip_rest_of_line(t, e);
    if (rc) return rc;
  }
  for (;;) {
    int need = 0, blank = 0;
    for (int i = 0; i < t->ncols; i++) t->vlen[i] = 0;
    int rc = csv_record(t, &need, nf, &blank, hdr, nhdr, e);
    if (rc) return rc;
    if (need) {
      rc = fill(t, e);
      if (rc) return rc;
      continue;
    }
    if (*nf == 0) {
      *got = 0;
      return MM_OK;
    }
    if (blank) continue;
    *got = 1;
    return MM_OK;
  }
}

static int add_header_name(char ***names, int *n, int *cap, const char *p, size_t len) {
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 16;
    char **q = realloc(*names, (size_t)c * sizeof *q);
    if (!q) return MM_ENOMEM;
    *names = q;
    *cap = c;
  }
  char *s = malloc(len + 1);
  if (!s) return MM_ENOMEM;
  memcpy(s, p, len);
  s[len] = 0;
  (*names)[(*n)++] = s;
  return MM_OK;
}

/* the wanted columns: copies of their names and room for their values */
static int want(mm_table *t, const char *const *cols, int ncols, mm_err *e) {
  size_t nc = (size_t)(ncols ? ncols : 1);
  t->ncols = ncols;
  t->cols = calloc(nc, sizeof *t->cols);
  t->voff = calloc(nc, sizeof *t->voff);
  t->vlen = calloc(nc, sizeof *t->vlen);
  t->vscr = calloc(nc, 1);
  if (!t->cols || !t->voff || !t->vlen || !t->vscr) return mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
  for (int i = 0; i < ncols; i++)
    if (!(t->cols[i] = strdup(cols[i]))) return mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
  return MM_OK;
}

/* read the header line and map its fields to the wanted columns */
static int read_header(mm_table *t, mm_err *e) {
  char **names = NULL;
  int n = 0, cap = 0, rc = MM_OK, got = 0;
  if (t->fmt == MM_TABLE_TSV) {
    size_t off = 0, len = 0;
    do rc = next_line(t, &off, &len, &got, e);
    while (!rc && got && len == 0);
    const char *p = t->buf + off, *end = p + len;
    while (!rc && got) {
      const char *tab = memchr(p, '\t', (size_t)(end - p));
      const char *fe = tab ? tab : end;
      if (add_header_name(&names, &n, &cap, p, (size_t)(fe - p))) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
      if (!tab) break;
      p = tab + 1;
    }
  } else {
    enum { MAXH = 4096 };
    csv_field *hdr = malloc(MAXH * sizeof *hdr);
    int nf = 0;
    if (!hdr) return mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
    rc = csv_next(t, &got, &nf, hdr, MAXH, e);
    if (!rc && got && nf > MAXH) rc = mm_errorf(e, MM_EFORMAT, "%s: more than %d columns", t->path, MAXH);
    for (int j = 0; !rc && got && j < nf; j++) {
      const char *p = hdr[j].scr ? t->scr.p + hdr[j].off : t->buf + hdr[j].off;
      if (add_header_name(&names, &n, &cap, p, hdr[j].len)) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
    }
    free(hdr);
  }
  if (!rc && !got) rc = mm_errorf(e, MM_EFORMAT, "%s: empty file (a header line is needed)", t->path);
  if (!rc && t->ncols < 0) { /* every column, in header order */
    rc = want(t, (const char *const *)names, n, e);
  }
  if (!rc) {
    t->nhead = n;
    t->slot = malloc((size_t)(n ? n : 1) * sizeof *t->slot);
    if (!t->slot) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", t->path);
    for (int j = 0; !rc && j < n; j++) {
      t->slot[j] = -1;
      for (int i = 0; i < t->ncols; i++)
        if (strcmp(names[j], t->cols[i]) == 0 && t->slot[j] < 0) t->slot[j] = i;
    }
    for (int i = 0; !rc && i < t->ncols; i++) {
      int found = 0;
      for (int j = 0; j < n && !found; j++) found = t->slot[j] == i;
      if (found) continue;
      char list[300];
      size_t o = 0;
      list[0] = 0;
      for (int j = 0; j < n && o < sizeof list; j++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "", names[j]);
      rc = mm_errorf(e, MM_EINVAL, "%s: no column '%s' (columns: %s)", t->path, t->cols[i], list);
    }
  }
  for (int j = 0; j < n; j++) free(names[j]);
  free(names);
  return rc;
}

mm_table *mm_table_open(const char *path, int format, const char *const *cols, int ncols, mm_err *e) {
  if (format < 0 || format >= MM_TABLE_FORMATS) {
    mm_errorf(e, MM_EINVAL, "%s: unknown table format %d", path, format);
    return NULL;
  }
  mm_table *t = calloc(1, sizeof *t);
  if (!t) goto oom;
  t->fd = -1;
  t->fmt = format;
  t->line = 1;
  t->path = strdup(path);
  t->buf = malloc(FIRST_CAP);
  t->cap = FIRST_CAP;
  t->ncols = -1;
  if (!t->path || !t->buf) goto oom;
  if (cols && want(t, cols, ncols, e)) {
    mm_table_close(t);
    return NULL;
  }
  int64_t size;
  if (mm_file_open(path, 0, &t->fd, &size, NULL, e)) { /* a FIFO, device or folder: refused unread */
    mm_table_close(t);
    return NULL;
  }
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(t->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  int rc = fill(t, e);
  if (!rc && t->end - t->beg >= 3 && memcmp(t->buf, "\xEF\xBB\xBF", 3) == 0) t->beg += 3;
  if (!rc) rc = read_header(t, e);
  if (rc) {
    mm_table_close(t);
    return NULL;
  }
  return t;
oom:
  mm_table_close(t);
  mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  return NULL;
}

int mm_table_next(mm_table *t, int *got, mm_err *e) {
  *got = 0;
  if (t->broken) return mm_errorf(e, MM_EFORMAT, "%s: the file cannot be read further", t->path);
  for (int i = 0; i < t->ncols; i++) t->vlen[i] = 0;
  if (t->fmt == MM_TABLE_CSV) {
    int nf = 0;
    int rc = csv_next(t, got, &nf, NULL, 0, e);
    if (rc || !*got) return rc;
    if (nf != t->nhead)
      return mm_errorf(e, MM_EFORMAT, "%s:%lld: expected %d fields, got %d", t->path, (long long)t->row_line, t->nhead,
                       nf);
    return MM_OK;
  }
  for (;;) {
    size_t off = 0, len = 0;
    int rc = next_line(t, &off, &len, got, e);
    if (rc || !*got) return rc;
    if (len == 0) continue;
    int nf = 0;
    tsv_fields(t, off, len, &nf);
    if (nf != t->nhead)
      return mm_errorf(e, MM_EFORMAT, "%s:%lld: expected %d fields, got %d", t->path, (long long)t->row_line,
                       t->nhead, nf);
    return MM_OK;
  }
}
