/* safetensors.c - framing of safetensors files (see safetensors.h). */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "npy.h"

int mm_st_write(const char *path, const char *header, size_t hlen, const void *const *chunks, const size_t *lens,
                int n, mm_err *e) {
  if (hlen > MM_ST_MAX_HEADER) return mm_errorf(e, MM_EINVAL, "%s: header too large (%zu bytes)", path, hlen);
  size_t padded = (hlen + 7) & ~(size_t)7;
  uint8_t *head = malloc(8 + padded);
  const void **all = malloc((size_t)(n + 1) * sizeof *all);
  size_t *alen = malloc((size_t)(n + 1) * sizeof *alen);
  if (!head || !all || !alen) {
    free(head);
    free(all);
    free(alen);
    return mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  }
  uint64_t L = padded;
  for (int i = 0; i < 8; i++) head[i] = (uint8_t)(L >> (8 * i));
  memcpy(head + 8, header, hlen);
  memset(head + 8 + hlen, ' ', padded - hlen);
  all[0] = head;
  alen[0] = 8 + padded;
  for (int i = 0; i < n; i++) all[i + 1] = chunks[i], alen[i + 1] = lens[i];
  int rc = mm_npy_write_atomic(path, all, alen, n + 1, e);
  free(head);
  free(all);
  free(alen);
  return rc;
}

void mm_st_free(mm_st_file *f) {
  free(f->buf);
  memset(f, 0, sizeof *f);
}

int mm_st_parse(const uint8_t *buf, size_t len, const char *name, mm_st_file *f, mm_err *e) {
  memset(f, 0, sizeof *f);
  if (!name) name = "<bytes>";
  if (len < 8)
    return mm_errorf(e, MM_EFORMAT, "%s: truncated: %zu bytes, a model file has at least 8", name, len);
  uint64_t L = 0;
  for (int i = 0; i < 8; i++) L |= (uint64_t)buf[i] << (8 * i);
  if (L > MM_ST_MAX_HEADER || L > len - 8)
    return mm_errorf(e, MM_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", name,
                     (unsigned long long)L, len);
  if (L < 2 || buf[8] != '{')
    return mm_errorf(e, MM_EFORMAT, "%s: not a safetensors file (header does not start with '{')", name);
  f->size = len;
  f->header = (const char *)buf + 8;
  f->hlen = (size_t)L;
  f->data = buf + 8 + L;
  f->dlen = len - 8 - (size_t)L;
  return MM_OK;
}

int mm_st_read(const char *path, mm_st_file *f, mm_err *e) {
  memset(f, 0, sizeof *f);
  uint8_t *buf;
  size_t sz;
  int rc = mm_file_read_all(path, 0, &buf, &sz, NULL, e); /* a regular file, or refused unread */
  if (rc) return rc;
  if (sz < 8) {
    free(buf);
    return mm_errorf(e, MM_EFORMAT, "%s: truncated: %zu bytes, a model file has at least 8", path, sz);
  }
  if (mm_st_parse(buf, sz, path, f, e)) {
    free(buf);
    memset(f, 0, sizeof *f);
    return e->code;
  }
  f->buf = buf;
  return MM_OK;
}
