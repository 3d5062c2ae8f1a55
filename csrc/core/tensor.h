/* tensor.h - float32, n-d, row-major, always contiguous.
 *
 * A tensor owns its data (zeroed at allocation). There are no views: reshape and
 * row slicing through the Lua face copy or share nothing, which keeps every
 * kernel a plain loop over `data[0 .. numel)`.
 */
#ifndef MM_TENSOR_H
#define MM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MM_MAXDIM 8
/* hard cap on elements in one tensor (2^34 floats = 64 GiB): catches
 * overflowing or absurd shapes before malloc is asked */
#define MM_MAXNUMEL ((int64_t)1 << 34)

typedef struct mm_tensor {
  int ndim;
  int64_t shape[MM_MAXDIM];
  int64_t numel;
  float *data;
} mm_tensor;

/* Check a shape and compute its element count; error names `what`. */
int mm_shape_numel(int ndim, const int64_t *shape, int64_t *numel, const char *what, mm_err *e);

/* Allocate (zeroed) data for `t` with the given shape. t->data must be NULL. */
int mm_tensor_alloc(mm_tensor *t, int ndim, const int64_t *shape, mm_err *e);
void mm_tensor_free(mm_tensor *t);

/* Zeroed float buffers (data of tensors, kernels' scratch space); free with mm_ffree. */
float *mm_falloc(int64_t n);  /* zeroed, NULL on failure */
/* not zeroed: only for outputs a kernel overwrites in full (saves the
 * zero-fill, or the page faults of fresh zero pages, on every call) */
float *mm_falloc_uninit(int64_t n);
void mm_ffree(float *p);

/* "2x3x4" into buf; returns buf */
const char *mm_shape_str(const mm_tensor *t, char *buf, size_t n);

int mm_same_shape(const mm_tensor *a, const mm_tensor *b);

#endif
