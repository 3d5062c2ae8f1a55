#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mm_shape_numel(int ndim, const int64_t *shape, int64_t *numel, const char *what, mm_err *e) {
  if (ndim < 0 || ndim > MM_MAXDIM)
    return mm_errorf(e, MM_EINVAL, "%s: %d dimensions (supported: 0 to %d)", what, ndim, MM_MAXDIM);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return mm_errorf(e, MM_EINVAL, "%s: negative size %lld in dimension %d", what, (long long)shape[i], i + 1);
    if (shape[i] != 0 && n > MM_MAXNUMEL / shape[i])
      return mm_errorf(e, MM_EINVAL, "%s: shape too large (more than 2^34 elements)", what);
    n *= shape[i];
  }
  *numel = n;
  return MM_OK;
}

/* calloc, not aligned_alloc + memset: a large block comes straight from
 * mmap as zero pages, so memory that is never written (gradients of
 * embedding rows no batch touched, Adam moments of frozen rows) is never
 * made resident. 16-byte alignment is all the kernels need. */
float *mm_falloc(int64_t n) {
  if (n < 0 || n > MM_MAXNUMEL) return NULL;
  return calloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

float *mm_falloc_uninit(int64_t n) {
  if (n < 0 || n > MM_MAXNUMEL) return NULL;
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
#ifdef MM_POISON_UNINIT
  /* sanitizer builds: NaN everywhere, so an element a kernel forgets to
   * write shows up in the specs instead of reading as a lucky zero */
  if (p)
    for (int64_t i = 0; i < n; i++) p[i] = __builtin_nanf("");
#endif
  return p;
}

void mm_ffree(float *p) { free(p); }

int mm_tensor_alloc(mm_tensor *t, int ndim, const int64_t *shape, mm_err *e) {
  int64_t n;
  int rc = mm_shape_numel(ndim, shape, &n, "tensor", e);
  if (rc) return rc;
  float *d = mm_falloc(n);
  if (!d) return mm_errorf(e, MM_ENOMEM, "tensor: out of memory allocating %lld floats", (long long)n);
  t->ndim = ndim;
  for (int i = 0; i < MM_MAXDIM; i++) t->shape[i] = i < ndim ? shape[i] : 0;
  t->numel = n;
  t->data = d;
  return MM_OK;
}

void mm_tensor_free(mm_tensor *t) {
  if (t && t->data) {
    mm_ffree(t->data);
    t->data = NULL;
  }
}

const char *mm_shape_str(const mm_tensor *t, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = '\0';
  if (t->ndim == 0) {
    snprintf(buf, n, "scalar");
    return buf;
  }
  for (int i = 0; i < t->ndim && off < n; i++)
    off += (size_t)snprintf(buf + off, n - off, i ? "x%lld" : "%lld", (long long)t->shape[i]);
  return buf;
}

int mm_same_shape(const mm_tensor *a, const mm_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}
