/* im2col.c - the patch ("col") matrices of a convolution and their scatter
 * back (see im2col.h). */
#include "im2col.h"

#include <string.h>

/* stride 1, "same" padding: each col row is one shifted copy of the plane (im2col.h) */
void mm_zero_outside(float *d, int64_t np, int64_t h, int64_t w, int64_t dy, int64_t dx) {
  int64_t ylo = dy < 0 ? -dy : 0, yhi = dy > 0 ? h - dy : h, xlo = dx < 0 ? -dx : 0, xhi = dx > 0 ? w - dx : w;
  if (ylo > h) ylo = h;
  if (yhi < ylo) yhi = ylo;
  if (xlo > w) xlo = w;
  if (xhi < xlo) xhi = xlo;
  int64_t hw = h * w;
  if (ylo > 0 || yhi < h)
    for (int64_t p = 0; p < np; p++) {
      float *dp = d + p * hw;
      for (int64_t q = 0; q < ylo * w; q++) dp[q] = 0.0f;
      for (int64_t q = yhi * w; q < hw; q++) dp[q] = 0.0f;
    }
  /* columns outer: a strided loop, not one tiny memset call per row */
  for (int64_t x = 0; x < w; x++) {
    if (x == xlo && xhi > xlo) x = xhi;
    if (x >= w) break;
    for (int64_t r = 0; r < np * h; r++) d[r * w + x] = 0.0f;
  }
}

static void im2col_same(const mm_conv2d_shape *s, const float *x, int64_t cst, int64_t cg, float *col, int64_t ld) {
  int64_t h = s->h, w = s->w, hw = h * w;
  for (int64_t ci = 0; ci < cg; ci++)
    for (int64_t ki = 0; ki < s->kh; ki++)
      for (int64_t kj = 0; kj < s->kw; kj++) {
        float *d = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
        int64_t dy = ki - s->ph, dx = kj - s->pw, sft = dy * w + dx, q0, q1;
        mm_shift_range(sft, hw, &q0, &q1);
        memcpy(d + q0, x + ci * cst + q0 + sft, (size_t)(q1 - q0) * sizeof(float));
        mm_zero_outside(d, 1, h, w, dy, dx);
      }
}

void mm_im2col(const mm_conv2d_shape *s, const float *x, int64_t cst, int64_t cg, float *col, int64_t ld) {
  if (mm_conv_same1(s)) {
    im2col_same(s, x, cst, cg, col, ld);
    return;
  }
  int64_t oh = s->oh, ow = s->ow;
  for (int64_t ci = 0; ci < cg; ci++) {
    const float *xp = x + ci * cst;
    for (int64_t ki = 0; ki < s->kh; ki++) {
      for (int64_t kj = 0; kj < s->kw; kj++) {
        float *row = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
        int64_t lo, hi;
        mm_valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
        int64_t off = kj - s->pw;
        for (int64_t oy = 0; oy < oh; oy++) {
          float *dst = row + oy * ow;
          int64_t iy = oy * s->sh - s->ph + ki;
          if (iy < 0 || iy >= s->h) {
            memset(dst, 0, (size_t)ow * sizeof(float));
            continue;
          }
          const float *src = xp + iy * s->w;
          for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
          if (s->sw == 1) {
            if (hi > lo) memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
          } else {
            for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * s->sw + off];
          }
          for (int64_t ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
        }
      }
    }
  }
}

void mm_col2im(const mm_conv2d_shape *s, const float *col, int64_t cst, int64_t cg, float *gx, int64_t ld) {
  int64_t oh = s->oh, ow = s->ow;
  for (int64_t ci = 0; ci < cg; ci++) {
    float *gp = gx + ci * cst;
    for (int64_t ki = 0; ki < s->kh; ki++) {
      for (int64_t kj = 0; kj < s->kw; kj++) {
        const float *row = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
        int64_t lo, hi;
        mm_valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
        int64_t off = kj - s->pw;
        for (int64_t oy = 0; oy < oh; oy++) {
          int64_t iy = oy * s->sh - s->ph + ki;
          if (iy < 0 || iy >= s->h) continue;
          const float *src = row + oy * ow;
          float *dst = gp + iy * s->w;
          if (s->sw == 1) {
            float *d1 = dst + off;
            for (int64_t ox = lo; ox < hi; ox++) d1[ox] += src[ox];
          } else {
            for (int64_t ox = lo; ox < hi; ox++) dst[ox * s->sw + off] += src[ox];
          }
        }
      }
    }
  }
}
