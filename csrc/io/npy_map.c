/* npy_map.c - memory-mapped .npy rows (npy_map.h). */
#include "npy_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "npy.h"

int mm_npy_map_open(const char *path, mm_npy_map *m, mm_err *e) {
  memset(m, 0, sizeof *m);
  int fd;
  int64_t fsize;
  if (mm_file_open(path, 0, &fd, &fsize, NULL, e)) return e->code; /* a FIFO, device or folder: refused unread */
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return mm_errorf(e, MM_EIO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (st.st_size == 0) {
    close(fd);
    return mm_errorf(e, MM_EFORMAT, "%s: empty file (0 bytes)", path);
  }
  size_t size = (size_t)st.st_size;
  void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (base == MAP_FAILED) return mm_errorf(e, MM_EIO, "%s: cannot map: %s", path, strerror(err));
  int isz = 0, nd = 0;
  int64_t shape[MM_MAXDIM];
  size_t off = 0;
  int rc = mm_npy_parse_header(base, size, path, &isz, &nd, shape, &off, e);
  if (!rc && nd != 2)
    rc = mm_errorf(e, MM_EFORMAT, "%s: must hold a 2-D array (rows x features), got %d dimensions", path, nd);
  if (!rc && shape[1] < 1) rc = mm_errorf(e, MM_EFORMAT, "%s: rows of 0 features", path);
  if (!rc) {
    uint64_t need = (uint64_t)shape[0] * (uint64_t)shape[1] * (uint64_t)isz, have = size - off;
    if (have != need)
      rc = mm_errorf(e, MM_EFORMAT, "%s: %s: the shape needs %llu data bytes, the file has %llu", path,
                     have < need ? "truncated" : "trailing bytes", (unsigned long long)need, (unsigned long long)have);
  }
  if (!rc && !(m->path = strdup(path))) rc = mm_errorf(e, MM_ENOMEM, "%s: out of memory", path);
  if (rc) {
    munmap(base, size);
    memset(m, 0, sizeof *m);
    return rc;
  }
  m->base = base;
  m->size = size;
  m->data = (const uint8_t *)base + off;
  m->itemsize = isz;
  m->rows = shape[0];
  m->cols = shape[1];
  return MM_OK;
}

void mm_npy_map_row(const mm_npy_map *m, int64_t r, float *dst) {
  const uint8_t *p = m->data + (size_t)r * (size_t)m->cols * (size_t)m->itemsize;
  if (m->itemsize == 4) {
    memcpy(dst, p, (size_t)m->cols * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < m->cols; j++) {
    double d;
    memcpy(&d, p + j * 8, 8);
    dst[j] = (float)d;
  }
}

void mm_npy_map_release(const mm_npy_map *m, int64_t r0, int64_t r1) {
  if (!m->base || r1 <= r0) return;
  size_t row = (size_t)m->cols * (size_t)m->itemsize, page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = (uintptr_t)(m->data + (size_t)r0 * row), hi = (uintptr_t)(m->data + (size_t)r1 * row);
  lo &= ~(uintptr_t)(page - 1);
  hi = (hi + page - 1) & ~(uintptr_t)(page - 1);
  uintptr_t top = ((uintptr_t)m->base + m->size + page - 1) & ~(uintptr_t)(page - 1);
  if (hi > top) hi = top;
  /* a read-only shared file mapping: the pages are dropped from this process
   * only; their content stays in the file and the page cache */
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void mm_npy_map_close(mm_npy_map *m) {
  if (m->base) munmap(m->base, m->size);
  free(m->path);
  memset(m, 0, sizeof *m);
}
