/* conv2d.h - 2-d convolution: NCHW by im2col + mm_sgemm, and the
 * channel-major path the model's CNN trains with.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_CONV2D_H
#define MM_NN_CONV2D_H

#include <stdint.h>

#include "../core/error.h"
#include "pool2d.h"

/* NCHW, weight [o, c/groups, kh, kw], im2col + sgemm */
typedef struct mm_conv2d_shape {
  int64_t n, c, h, w;     /* input */
  int64_t o, kh, kw;      /* output channels, kernel */
  int64_t sh, sw, ph, pw; /* stride, padding */
  int64_t groups;
  int64_t oh, ow; /* output spatial size (filled by init) */
} mm_conv2d_shape;
int mm_conv2d_shape_init(mm_conv2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                         int64_t kw, int64_t stride, int64_t pad, int64_t groups, mm_err *e);
/* floats of scratch space the col buffer needs */
int64_t mm_conv2d_col_size(const mm_conv2d_shape *s);
void mm_conv2d_forward(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
                       float *col);
void mm_conv2d_backward(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                        float *gw, float *gb, float *col);

/* The channel-major path for a CNN over a whole batch (groups 1).
 * Activations are channel-major ("CN"): [c, n, h, w], so one GEMM per layer
 * covers the batch and its output needs no reorder. The input x is NCHW when
 * x_nchw (an image batch), else channel-major; y, gy, gx are channel-major.
 * col holds mm_conv2d_cn_col_size(s) floats: the im2col of the batch.
 * Forward: y = conv(x) + b, then max(y, 0) when relu; col keeps the im2col
 * of x. With col NULL (inference: nothing to keep) the forward allocates a
 * chunk-sized im2col per thread instead; it returns MM_ENOMEM (nothing
 * computed) when that fails, else MM_OK. With ps (a pool shape over y, its n = s->n, c = s->o): also
 * py = mm_max_pool2d_forward(ps, y) (channel-major too) with its argmax in
 * parg (NULL: not wanted), done a chunk of samples at a time while y is in
 * cache. Backward: col_has_x != 0 when col still holds what the forward left
 * there (it is not rebuilt); col is overwritten when gx is wanted. gx is
 * overwritten, gw and gb accumulated, NULL ones skipped. Every thread count
 * gives the same bits. */
int64_t mm_conv2d_cn_col_size(const mm_conv2d_shape *s);
int mm_conv2d_cn_forward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *b,
                         float *y, float *col, int relu, const mm_pool2d_shape *ps, float *py, int32_t *parg);
void mm_conv2d_cn_backward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *gy,
                           float *gx, float *gw, float *gb, float *col, int col_has_x);

#endif
