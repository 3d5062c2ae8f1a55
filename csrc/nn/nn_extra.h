/* nn_extra.h - kernels of the nn area beyond the lead's nn.h contract
 * (same conventions as nn.h; candidates to move into nn.h). */
#ifndef MM_NN_EXTRA_H
#define MM_NN_EXTRA_H

#include <stdint.h>

/* ---- margin.c: torch.nn.functional.margin_ranking_loss, mean reduction:
 * loss = mean_i max(0, -y_i (x1_i - x2_i) + margin), y_i in {1, -1}.
 * g1, g2 (nullable) receive d(loss)/dx1, d(loss)/dx2 times gloss (overwritten).
 * Returns the loss. */
double mm_margin_ranking_loss(const float *x1, const float *x2, const float *y, int64_t n, float margin, float gloss,
                              float *g1, float *g2);

/* ---- conv2d.c, channel-major path for a CNN over a whole batch (groups 1).
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
#include "nn.h"
int64_t mm_conv2d_cn_col_size(const mm_conv2d_shape *s);
int mm_conv2d_cn_forward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *b,
                         float *y, float *col, int relu, const mm_pool2d_shape *ps, float *py, int32_t *parg);
void mm_conv2d_cn_backward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *gy,
                           float *gx, float *gw, float *gb, float *col, int col_has_x);

/* ---- pool2d.c */
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
