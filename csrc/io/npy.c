/* npy.c - read/write NumPy .npy files (float32 / float64, C order).
 *
 * Reading streams from the file: the header is parsed and checked against
 * the file size before the tensor is allocated, so a header that declares a
 * huge shape costs nothing. Writing is atomic (mm_npy_write_atomic).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "npy.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1 << 20) /* numpy itself caps headers far below this */

static const char *nm(const char *name) { return name ? name : "<npy>"; }

/* ---- header dict parser: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
typedef struct {
  const char *s, *end;
} cur;

static void skip_ws(cur *c) {
  while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r')) c->s++;
}

static int eat(cur *c, char ch) {
  skip_ws(c);
  if (c->s < c->end && *c->s == ch) {
    c->s++;
    return 1;
  }
  return 0;
}

/* a quoted string into buf (truncated to n-1); returns 0 if none */
static int read_str(cur *c, char *buf, size_t n) {
  skip_ws(c);
  if (c->s >= c->end || (*c->s != '\'' && *c->s != '"')) return 0;
  char q = *c->s++;
  size_t k = 0;
  while (c->s < c->end && *c->s != q) {
    if (k + 1 < n) buf[k++] = *c->s;
    c->s++;
  }
  if (c->s >= c->end) return 0;
  c->s++;
  buf[k] = '\0';
  return 1;
}

static int read_word(cur *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->s) >= n && memcmp(c->s, w, n) == 0) {
    c->s += n;
    return 1;
  }
  return 0;
}

static int parse_header(const char *h, size_t hlen, const char *name, int *itemsize, int *ndim, int64_t *shape,
                        mm_err *e) {
  cur c = {h, h + hlen};
  int have_descr = 0, have_fo = 0, have_shape = 0;
  if (!eat(&c, '{')) return mm_errorf(e, MM_EFORMAT, "%s: .npy header is not a dict", nm(name));
  for (;;) {
    if (eat(&c, '}')) break;
    char key[32];
    if (!read_str(&c, key, sizeof key) || !eat(&c, ':'))
      return mm_errorf(e, MM_EFORMAT, "%s: .npy header: malformed dict", nm(name));
    if (strcmp(key, "descr") == 0) {
      char d[64];
      if (!read_str(&c, d, sizeof d)) {
        /* structured dtypes are lists */
        return mm_errorf(e, MM_EFORMAT, "%s: .npy dtype is structured or malformed (float32 or float64 only)",
                         nm(name));
      }
      if (strcmp(d, "<f4") == 0)
        *itemsize = 4;
      else if (strcmp(d, "<f8") == 0)
        *itemsize = 8;
      else
        return mm_errorf(e, MM_EFORMAT, "%s: .npy dtype '%s' not supported (little-endian float32 '<f4' or float64 '<f8' only)",
                         nm(name), d);
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (read_word(&c, "False"))
        ;
      else if (read_word(&c, "True"))
        return mm_errorf(e, MM_EFORMAT, "%s: .npy array in fortran_order is not supported (save it C-contiguous)",
                         nm(name));
      else
        return mm_errorf(e, MM_EFORMAT, "%s: .npy header: fortran_order must be True or False", nm(name));
      have_fo = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!eat(&c, '(')) return mm_errorf(e, MM_EFORMAT, "%s: .npy header: shape is not a tuple", nm(name));
      int n = 0;
      for (;;) {
        if (eat(&c, ')')) break;
        skip_ws(&c);
        if (c.s >= c.end || *c.s < '0' || *c.s > '9')
          return mm_errorf(e, MM_EFORMAT, "%s: .npy header: bad shape entry", nm(name));
        int64_t v = 0;
        while (c.s < c.end && *c.s >= '0' && *c.s <= '9') {
          if (v > (INT64_MAX - 9) / 10) return mm_errorf(e, MM_EFORMAT, "%s: .npy header: shape entry too large", nm(name));
          v = v * 10 + (*c.s++ - '0');
        }
        if (c.s < c.end && *c.s == 'L') c.s++; /* Python 2 longs */
        if (n >= MM_MAXDIM)
          return mm_errorf(e, MM_EFORMAT, "%s: .npy array has more than %d dimensions", nm(name), MM_MAXDIM);
        shape[n++] = v;
        if (eat(&c, ')')) break;
        if (!eat(&c, ',')) return mm_errorf(e, MM_EFORMAT, "%s: .npy header: malformed shape tuple", nm(name));
      }
      *ndim = n;
      have_shape = 1;
    } else {
      return mm_errorf(e, MM_EFORMAT, "%s: .npy header: unknown key '%s'", nm(name), key);
    }
    if (eat(&c, '}')) break;
    if (!eat(&c, ',')) return mm_errorf(e, MM_EFORMAT, "%s: .npy header: malformed dict", nm(name));
  }
  if (!have_descr || !have_fo || !have_shape)
    return mm_errorf(e, MM_EFORMAT, "%s: .npy header lacks '%s'", nm(name),
                     !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
  int64_t numel;
  int rc = mm_shape_numel(*ndim, shape, &numel, nm(name), e);
  if (rc) {
    if (e) e->code = MM_EFORMAT;
    return MM_EFORMAT;
  }
  return MM_OK;
}

/* prefix: magic(6) major minor hlen(2 or 4) -> header length and its start */
static int parse_prefix(const uint8_t *p, size_t avail, const char *name, size_t *hstart, size_t *hlen, mm_err *e) {
  if (avail < 10 || memcmp(p, NPY_MAGIC, 6) != 0)
    return mm_errorf(e, MM_EFORMAT, "%s: not a .npy file (bad magic)", nm(name));
  int major = p[6];
  if (major == 1) {
    *hlen = (size_t)p[8] | ((size_t)p[9] << 8);
    *hstart = 10;
  } else if (major == 2 || major == 3) {
    if (avail < 12) return mm_errorf(e, MM_EFORMAT, "%s: truncated .npy header", nm(name));
    *hlen = (size_t)p[8] | ((size_t)p[9] << 8) | ((size_t)p[10] << 16) | ((size_t)p[11] << 24);
    *hstart = 12;
  } else {
    return mm_errorf(e, MM_EFORMAT, "%s: .npy format version %d.%d not supported", nm(name), major, p[7]);
  }
  if (*hlen > NPY_MAX_HEADER) return mm_errorf(e, MM_EFORMAT, "%s: .npy header length %zu too large", nm(name), *hlen);
  return MM_OK;
}

int mm_npy_parse_header(const void *buf, size_t len, const char *name, int *itemsize, int *ndim, int64_t *shape,
                        size_t *data_offset, mm_err *e) {
  size_t hs = 0, hl = 0;
  int rc = parse_prefix(buf, len, name, &hs, &hl, e);
  if (rc) return rc;
  if (len < hs + hl)
    return mm_errorf(e, MM_EFORMAT, "%s: truncated .npy header (%zu of %zu bytes)", nm(name), len - hs, hl);
  rc = parse_header((const char *)buf + hs, hl, name, itemsize, ndim, shape, e);
  if (rc) return rc;
  *data_offset = hs + hl;
  return MM_OK;
}

static void f64_to_f32(const uint8_t *src, float *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double d;
    memcpy(&d, src + i * 8, 8);
    dst[i] = (float)d;
  }
}

static int alloc_for(mm_tensor *t, int ndim, const int64_t *shape, const char *name, mm_err *e) {
  t->data = NULL;
  int rc = mm_tensor_alloc(t, ndim, shape, e);
  if (rc) mm_err_prefix(e, "%s: ", nm(name));
  return rc;
}

int mm_npy_load_mem(const void *buf, size_t len, const char *name, mm_tensor *t, mm_err *e) {
  int isz = 0, nd = 0;
  int64_t shape[MM_MAXDIM];
  size_t off;
  int rc = mm_npy_parse_header(buf, len, name, &isz, &nd, shape, &off, e);
  if (rc) return rc;
  int64_t numel;
  mm_shape_numel(nd, shape, &numel, "npy", NULL);
  uint64_t need = (uint64_t)numel * (uint64_t)isz, have = len - off;
  if (have != need)
    return mm_errorf(e, MM_EFORMAT, "%s: %s: the shape needs %llu data bytes, the file has %llu", nm(name),
                     have < need ? "truncated" : "trailing bytes", (unsigned long long)need, (unsigned long long)have);
  rc = alloc_for(t, nd, shape, name, e);
  if (rc) return rc;
  const uint8_t *d = (const uint8_t *)buf + off;
  if (isz == 4)
    memcpy(t->data, d, (size_t)need);
  else
    f64_to_f32(d, t->data, numel);
  return MM_OK;
}

int mm_npy_load(const char *path, mm_tensor *t, mm_err *e) {
  t->data = NULL;
  int64_t size;
  FILE *f = mm_file_fopen(path, 0, &size, NULL, e); /* a regular file, or refused unread */
  if (!f) return e ? e->code : MM_EIO;
  uint64_t fsize = (uint64_t)size;
  if (fsize == 0) {
    fclose(f);
    return mm_errorf(e, MM_EFORMAT, "%s: empty file (0 bytes)", path);
  }
  uint8_t pre[12];
  size_t got = fread(pre, 1, sizeof pre, f);
  size_t hs = 0, hl = 0;
  int rc = parse_prefix(pre, got, path, &hs, &hl, e);
  if (rc) {
    fclose(f);
    return rc;
  }
  char *h = malloc(hl + 1);
  if (!h) {
    fclose(f);
    return mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  }
  if (fseek(f, (long)hs, SEEK_SET) != 0 || fread(h, 1, hl, f) != hl) {
    free(h);
    fclose(f);
    return mm_errorf(e, MM_EFORMAT, "%s: truncated .npy header", path);
  }
  int isz = 0, nd = 0;
  int64_t shape[MM_MAXDIM];
  rc = parse_header(h, hl, path, &isz, &nd, shape, e);
  free(h);
  if (rc) {
    fclose(f);
    return rc;
  }
  int64_t numel;
  mm_shape_numel(nd, shape, &numel, "npy", NULL);
  uint64_t need = (uint64_t)numel * (uint64_t)isz, have = fsize - (hs + hl);
  if (have != need) {
    fclose(f);
    return mm_errorf(e, MM_EFORMAT, "%s: %s: the shape needs %llu data bytes, the file has %llu", path,
                     have < need ? "truncated" : "trailing bytes", (unsigned long long)need, (unsigned long long)have);
  }
  rc = alloc_for(t, nd, shape, path, e);
  if (rc) {
    fclose(f);
    return rc;
  }
  if (isz == 4) {
    if (fread(t->data, 4, (size_t)numel, f) != (size_t)numel) rc = 1;
  } else {
    enum { CH = 8192 };
    uint8_t tmp[CH * 8];
    for (int64_t i = 0; i < numel && !rc; i += CH) {
      int64_t k = numel - i < CH ? numel - i : CH;
      if (fread(tmp, 8, (size_t)k, f) != (size_t)k)
        rc = 1;
      else
        f64_to_f32(tmp, t->data + i, k);
    }
  }
  fclose(f);
  if (rc) {
    mm_tensor_free(t);
    return mm_errorf(e, MM_EIO, "%s: read error in the data (file changed while reading?)", path);
  }
  return MM_OK;
}

/* ---- writing ----------------------------------------------------------------------- */

int mm_npy_write_atomic(const char *path, const void *const *chunks, const size_t *lens, int n, mm_err *e) {
  size_t pl = strlen(path);
  char *tmp = malloc(pl + 16);
  char *dirbuf = malloc(pl + 1);
  if (!tmp || !dirbuf) {
    free(tmp);
    free(dirbuf);
    return mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  }
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp.XXXXXX", 12);
  memcpy(dirbuf, path, pl + 1);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int rc = mm_errorf(e, MM_EIO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    free(tmp);
    free(dirbuf);
    return rc;
  }
  const char *what = NULL;
  int err = 0;
  if (fchmod(fd, 0644) != 0) {
    what = "chmod";
    err = errno;
  }
  for (int i = 0; i < n && !what; i++) {
    const uint8_t *p = chunks[i];
    size_t left = lens[i];
    while (left > 0) {
      ssize_t w = write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        what = "write";
        err = errno;
        break;
      }
      p += w;
      left -= (size_t)w;
    }
  }
  if (!what && fsync(fd) != 0) {
    what = "fsync";
    err = errno;
  }
  if (close(fd) != 0 && !what) {
    what = "close";
    err = errno;
  }
  if (!what && rename(tmp, path) != 0) {
    what = "rename";
    err = errno;
  }
  if (what) {
    unlink(tmp);
    int rc = mm_errorf(e, MM_EIO, "%s: %s failed: %s (the old file, if any, is untouched)", path, what, strerror(err));
    free(tmp);
    free(dirbuf);
    return rc;
  }
  /* make the rename itself durable */
  int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  free(tmp);
  free(dirbuf);
  return MM_OK;
}

int mm_npy_save_f32(const char *path, int ndim, const int64_t *shape, const float *data, mm_err *e) {
  int64_t numel;
  int rc = mm_shape_numel(ndim, shape, &numel, path, e);
  if (rc) return rc;
  char dict[64 + MM_MAXDIM * 24];
  int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int i = 0; i < ndim; i++)
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
  if (ndim > 1) k--; /* numpy writes (2, 3) but (2,) */
  k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
  /* pad with spaces + '\n' so that magic(6)+ver(2)+len(2)+header is a multiple of 64 */
  size_t total = 10 + (size_t)k + 1;
  size_t padded = (total + 63) & ~(size_t)63;
  uint8_t head[sizeof dict + 80];
  memcpy(head, NPY_MAGIC, 6);
  head[6] = 1;
  head[7] = 0;
  size_t hlen = padded - 10;
  head[8] = (uint8_t)(hlen & 0xff);
  head[9] = (uint8_t)(hlen >> 8);
  memcpy(head + 10, dict, (size_t)k);
  memset(head + 10 + k, ' ', padded - 10 - (size_t)k - 1);
  head[padded - 1] = '\n';
  const void *chunks[2] = {head, data};
  size_t lens[2] = {padded, (size_t)numel * sizeof(float)};
  return mm_npy_write_atomic(path, chunks, lens, numel > 0 ? 2 : 1, e);
}

int mm_npy_save(const char *path, const mm_tensor *t, mm_err *e) {
  return mm_npy_save_f32(path, t->ndim, t->shape, t->data, e);
}
