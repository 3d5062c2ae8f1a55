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

/* ---- conv2d.c, whole-batch path: one im2col of the whole batch and ONE sgemm
 * per layer (instead of one per sample). col must hold
 * mm_conv2d_col_size_batch(s) floats (>= mm_conv2d_col_size(s)). Shapes the
 * batch path does not cover (groups > 1, 1x1 stride-1 unpadded, n <= 1) run
 * the per-sample kernels with the same col. */
#include "nn.h"
int64_t mm_conv2d_col_size_batch(const mm_conv2d_shape *s);
void mm_conv2d_forward_batch(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
                             float *col);
/* col_has_x != 0: col still holds what mm_conv2d_forward_batch(s, x, ...) left
 * there (the im2col of x), so it is not rebuilt. col is overwritten. */
void mm_conv2d_backward_batch(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                              float *gw, float *gb, float *col, int col_has_x);

#endif
