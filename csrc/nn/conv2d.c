/* conv2d.c - 2-D convolution over NCHW with groups: im2col + cblas_sgemm.
 * Weight layout [o, c/groups, kh, kw] (PyTorch). Per sample and group the
 * input patch matrix col[(c/g)*kh*kw, oh*ow] is built once and multiplied by
 * the group's weight matrix [o/g, (c/g)*kh*kw]. A 1x1 kernel with stride 1
 * and no padding skips im2col (the input plane is already the col matrix). */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "nn.h"

int mm_conv2d_shape_init(mm_conv2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                         int64_t kw, int64_t stride, int64_t pad, int64_t groups, mm_err *e) {
  if (n < 0 || c < 1 || h < 1 || w < 1)
    return mm_errorf(e, MM_EINVAL, "conv2d: input %lldx%lldx%lldx%lld must have positive sizes", (long long)n,
                     (long long)c, (long long)h, (long long)w);
  if (o < 1 || kh < 1 || kw < 1)
    return mm_errorf(e, MM_EINVAL, "conv2d: weight with %lld output channels and kernel %lldx%lld: sizes must be >= 1",
                     (long long)o, (long long)kh, (long long)kw);
  if (stride < 1) return mm_errorf(e, MM_EINVAL, "conv2d: stride %lld must be >= 1", (long long)stride);
  if (pad < 0) return mm_errorf(e, MM_EINVAL, "conv2d: padding %lld must be >= 0", (long long)pad);
  if (groups < 1 || c % groups != 0 || o % groups != 0)
    return mm_errorf(e, MM_EINVAL, "conv2d: groups %lld must divide the input channels %lld and output channels %lld",
                     (long long)groups, (long long)c, (long long)o);
  if (h + 2 * pad < kh || w + 2 * pad < kw)
    return mm_errorf(e, MM_EINVAL, "conv2d: kernel %lldx%lld is larger than the padded input %lldx%lld",
                     (long long)kh, (long long)kw, (long long)(h + 2 * pad), (long long)(w + 2 * pad));
  s->n = n;
  s->c = c;
  s->h = h;
  s->w = w;
  s->o = o;
  s->kh = kh;
  s->kw = kw;
  s->sh = s->sw = stride;
  s->ph = s->pw = pad;
  s->groups = groups;
  s->oh = (h + 2 * pad - kh) / stride + 1;
  s->ow = (w + 2 * pad - kw) / stride + 1;
  int64_t k = (c / groups) * kh * kw, ohw = s->oh * s->ow;
  if (ohw > INT_MAX || k > INT_MAX || h * w > INT_MAX || (ohw > 0 && k > INT64_MAX / ohw) ||
      k * ohw > ((int64_t)1 << 34))
    return mm_errorf(e, MM_EINVAL, "conv2d: input %lldx%lldx%lldx%lld with kernel %lldx%lld is too large",
                     (long long)n, (long long)c, (long long)h, (long long)w, (long long)kh, (long long)kw);
  return MM_OK;
}

static int direct(const mm_conv2d_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

int64_t mm_conv2d_col_size(const mm_conv2d_shape *s) {
  if (direct(s)) return 0;
  return (s->c / s->groups) * s->kh * s->kw * s->oh * s->ow;
}

/* output columns ox whose input column ix = ox*sw - pw + kj lies in [0, w) */
static void valid_range(int64_t kj, int64_t sw, int64_t pw, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
  int64_t off = kj - pw; /* ix = ox*sw + off */
  int64_t a = off >= 0 ? 0 : (-off + sw - 1) / sw;
  int64_t b = (w - 1 - off) >= 0 ? (w - 1 - off) / sw + 1 : 0;
  if (b > ow) b = ow;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

static void im2col(const mm_conv2d_shape *s, const float *x, int64_t cg, float *col) {
  int64_t oh = s->oh, ow = s->ow, ohw = oh * ow;
  for (int64_t ci = 0; ci < cg; ci++) {
    const float *xp = x + ci * s->h * s->w;
    for (int64_t ki = 0; ki < s->kh; ki++) {
      for (int64_t kj = 0; kj < s->kw; kj++) {
        float *row = col + ((ci * s->kh + ki) * s->kw + kj) * ohw;
        int64_t lo, hi;
        valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
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

/* gx += col scattered back (gx must be zeroed by the caller) */
static void col2im(const mm_conv2d_shape *s, const float *col, int64_t cg, float *gx) {
  int64_t oh = s->oh, ow = s->ow, ohw = oh * ow;
  for (int64_t ci = 0; ci < cg; ci++) {
    float *gp = gx + ci * s->h * s->w;
    for (int64_t ki = 0; ki < s->kh; ki++) {
      for (int64_t kj = 0; kj < s->kw; kj++) {
        const float *row = col + ((ci * s->kh + ki) * s->kw + kj) * ohw;
        int64_t lo, hi;
        valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
        int64_t off = kj - s->pw;
        for (int64_t oy = 0; oy < oh; oy++) {
          int64_t iy = oy * s->sh - s->ph + ki;
          if (iy < 0 || iy >= s->h) continue;
          const float *src = row + oy * ow;
          float *dst = gp + iy * s->w;
          for (int64_t ox = lo; ox < hi; ox++) dst[ox * s->sw + off] += src[ox];
        }
      }
    }
  }
}

void mm_conv2d_forward(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
                       float *col) {
  int64_t g = s->groups, cg = s->c / g, og = s->o / g, ohw = s->oh * s->ow, hw = s->h * s->w;
  int64_t k = cg * s->kh * s->kw;
  int dir = direct(s);
  for (int64_t i = 0; i < s->n; i++) {
    for (int64_t gi = 0; gi < g; gi++) {
      const float *xg = x + (i * s->c + gi * cg) * hw;
      const float *cm = xg;
      if (!dir) {
        im2col(s, xg, cg, col);
        cm = col;
      }
      float *yg = y + (i * s->o + gi * og) * ohw;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)og, (int)ohw, (int)k, 1.0f, w + gi * og * k,
                  (int)k, cm, (int)ohw, 0.0f, yg, (int)ohw);
      if (b) {
        for (int64_t oc = 0; oc < og; oc++) {
          float bv = b[gi * og + oc];
          float *yr = yg + oc * ohw;
          for (int64_t j = 0; j < ohw; j++) yr[j] += bv;
        }
      }
    }
  }
}

void mm_conv2d_backward(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                        float *gw, float *gb, float *col) {
  int64_t g = s->groups, cg = s->c / g, og = s->o / g, ohw = s->oh * s->ow, hw = s->h * s->w;
  int64_t k = cg * s->kh * s->kw;
  int dir = direct(s);
  if (gb) {
    for (int64_t i = 0; i < s->n; i++)
      for (int64_t oc = 0; oc < s->o; oc++) {
        const float *gr = gy + (i * s->o + oc) * ohw;
        double acc = 0.0;
        for (int64_t j = 0; j < ohw; j++) acc += gr[j];
        gb[oc] += (float)acc;
      }
  }
  if (gx && !dir) memset(gx, 0, (size_t)(s->n * s->c * hw) * sizeof(float));
  for (int64_t i = 0; i < s->n; i++) {
    for (int64_t gi = 0; gi < g; gi++) {
      const float *xg = x + (i * s->c + gi * cg) * hw;
      const float *gyg = gy + (i * s->o + gi * og) * ohw;
      const float *wg = w + gi * og * k;
      if (gw) {
        const float *cm = xg;
        if (!dir) {
          im2col(s, xg, cg, col);
          cm = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)og, (int)k, (int)ohw, 1.0f, gyg, (int)ohw, cm,
                    (int)ohw, 1.0f, gw + gi * og * k, (int)k);
      }
      if (gx) {
        float *gxg = gx + (i * s->c + gi * cg) * hw;
        if (dir) {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)ohw, (int)og, 1.0f, wg, (int)k, gyg,
                      (int)ohw, 0.0f, gxg, (int)ohw);
        } else {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)ohw, (int)og, 1.0f, wg, (int)k, gyg,
                      (int)ohw, 0.0f, col, (int)ohw);
          col2im(s, col, cg, gxg);
        }
      }
    }
  }
}
