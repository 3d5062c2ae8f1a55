/* im2col.h - the patch ("col") matrices of a 2-d convolution, shared by the
 * per-sample path (conv2d.c) and the channel-major one (conv2d_cn.c); private
 * to csrc/nn.
 *
 * col[(ci, ki, kj), q] = the input pixel output position q of channel ci
 * reads at kernel tap (ki, kj) (0 in the padding), so the convolution is
 * weight [o, c*kh*kw] . col. With stride 1 and "same" padding (oh == h,
 * ow == w) output position q of a plane reads input position
 * q + (ki - ph)*w + (kj - pw): a col row is one shifted copy of the plane,
 * with the positions whose input falls outside (whole rows at the top or
 * bottom, columns at the sides) set to zero. */
#ifndef MM_NN_IM2COL_H
#define MM_NN_IM2COL_H

#include <stdint.h>

#include "conv2d.h"

/* output columns ox whose input column ix = ox*sw - pw + kj lies in [0, w) */
static inline void mm_valid_range(int64_t kj, int64_t sw, int64_t pw, int64_t w, int64_t ow, int64_t *lo,
                                  int64_t *hi) {
  int64_t off = kj - pw; /* ix = ox*sw + off */
  int64_t a = off >= 0 ? 0 : (-off + sw - 1) / sw;
  int64_t b = (w - 1 - off) >= 0 ? (w - 1 - off) / sw + 1 : 0;
  if (b > ow) b = ow;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

/* stride 1 and "same" padding: col rows are shifted planes */
static inline int mm_conv_same1(const mm_conv2d_shape *s) {
  return s->sh == 1 && s->sw == 1 && s->oh == s->h && s->ow == s->w;
}

/* [*q0, *q1): the plane positions q whose q + sft lies in [0, hw) */
static inline void mm_shift_range(int64_t sft, int64_t hw, int64_t *q0, int64_t *q1) {
  *q0 = sft < 0 ? -sft : 0;
  *q1 = sft > 0 ? hw - sft : hw;
  if (*q0 > hw) *q0 = hw;
  if (*q1 < *q0) *q1 = *q0;
}

/* d[0..n) += a[0..n) */
static inline void mm_add_to(float *restrict d, const float *restrict a, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] += a[i];
}

/* zero the positions of np consecutive h x w planes d whose shifted input
 * (dy, dx) lies outside the plane */
void mm_zero_outside(float *d, int64_t np, int64_t h, int64_t w, int64_t dy, int64_t dx);

/* col[(ci, ki, kj), :] with row stride ld for cg input channels, channel ci
 * at x + ci*cst */
void mm_im2col(const mm_conv2d_shape *s, const float *x, int64_t cst, int64_t cg, float *col, int64_t ld);

/* gx += col scattered back (gx zeroed by the caller); channel ci at gx + ci*cst */
void mm_col2im(const mm_conv2d_shape *s, const float *col, int64_t cst, int64_t cg, float *gx, int64_t ld);

#endif
