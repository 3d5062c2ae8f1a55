/* pool2d.h - max, average and global average pooling.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_POOL2D_H
#define MM_NN_POOL2D_H

#include <stdint.h>

#include "../core/error.h"

/* max/avg pooling with padding (avg counts padding, as PyTorch's default) */
typedef struct mm_pool2d_shape {
  int64_t n, c, h, w;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t oh, ow;
} mm_pool2d_shape;
int mm_pool2d_shape_init(mm_pool2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                         int64_t stride, int64_t pad, mm_err *e);
/* arg (nullable) receives, per output, the flat h*w index of the max inside its plane */
void mm_max_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y, int32_t *arg);
void mm_max_pool2d_backward(const mm_pool2d_shape *s, const int32_t *arg, const float *gy, float *gx);
void mm_avg_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y);
void mm_avg_pool2d_backward(const mm_pool2d_shape *s, const float *gy, float *gx);
/* x[n,c,h,w] -> y[n,c] */
void mm_global_avg_pool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw);
void mm_global_avg_pool_backward(const float *gy, float *gx, int64_t n, int64_t c, int64_t hw);

/* gx = (x > 0) * max_pool2d_backward(gy): the max-pool backward followed by
 * the backward of a ReLU in front of the pool (x its output, or input: the
 * mask is the same). y is the pool's output, y[o] = x[arg[o]], so the mask is
 * read as y > 0. gx is overwritten. */
void mm_max_pool2d_relu_backward(const mm_pool2d_shape *s, const int32_t *arg, const float *y, const float *gy,
                                 float *gx);
/* global average pool over channel-major x [c, n, hw] -> y [n, c], and back */
void mm_global_avg_pool_cn_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw);
void mm_global_avg_pool_cn_backward(const float *gy, float *gx, int64_t n, int64_t c, int64_t hw);

#endif
