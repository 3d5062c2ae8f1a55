/* pool2d.c - max and average pooling over NCHW with zero padding.
 * Average pooling divides by the window clipped to the padded image
 * (count_include_pad = True, PyTorch's default); output size uses floor. */
#include <math.h>
#include <string.h>

#include "../core/parallel.h"
#include "pool2d.h"

int mm_pool2d_shape_init(mm_pool2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                         int64_t stride, int64_t pad, mm_err *e) {
  if (n < 0 || c < 0 || h < 1 || w < 1)
    return mm_errorf(e, MM_EINVAL, "pool2d: input %lldx%lldx%lldx%lld must have positive sizes", (long long)n,
                     (long long)c, (long long)h, (long long)w);
  if (k < 1) return mm_errorf(e, MM_EINVAL, "pool2d: kernel size %lld must be >= 1", (long long)k);
  if (stride < 1) return mm_errorf(e, MM_EINVAL, "pool2d: stride %lld must be >= 1", (long long)stride);
  if (pad < 0 || pad > k / 2)
    return mm_errorf(e, MM_EINVAL, "pool2d: padding %lld must be in 0..%lld (half the kernel %lld)",
                     (long long)pad, (long long)(k / 2), (long long)k);
  if (h + 2 * pad < k || w + 2 * pad < k)
    return mm_errorf(e, MM_EINVAL, "pool2d: kernel %lldx%lld is larger than the padded input %lldx%lld",
                     (long long)k, (long long)k, (long long)(h + 2 * pad), (long long)(w + 2 * pad));
  s->n = n;
  s->c = c;
  s->h = h;
  s->w = w;
  s->kh = s->kw = k;
  s->sh = s->sw = stride;
  s->ph = s->pw = pad;
  s->oh = (h + 2 * pad - k) / stride + 1;
  s->ow = (w + 2 * pad - k) / stride + 1;
  return MM_OK;
}

/* take v over the running best as the general loop does: strictly greater, or
 * the first NaN (a NaN best is never replaced) */
#define TAKE(v, best) ((v) > (best) || ((v) != (v) && (best) == (best)))

/* 2x2 windows, stride 2, no padding: branch-free selects the compiler can
 * vectorise; the same value and argmax as the general loop, NaN included */
static void max_pool_2x2(const mm_pool2d_shape *s, const float *restrict x, float *restrict y,
                         int32_t *restrict arg) {
  int64_t planes = s->n * s->c, w = s->w, hw = s->h * s->w, oh = s->oh, ow = s->ow, ohw = oh * ow;
  for (int64_t p = 0; p < planes; p++) {
    for (int64_t oy = 0; oy < oh; oy++) {
      const float *r0 = x + p * hw + 2 * oy * w, *r1 = r0 + w;
      float *yr = y + p * ohw + oy * ow;
      if (arg) {
        int32_t *ar = arg + p * ohw + oy * ow;
        int32_t base = (int32_t)(2 * oy * w);
        for (int64_t ox = 0; ox < ow; ox++) {
          float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
          int32_t i0 = base + (int32_t)(2 * ox);
          float m = a;
          int32_t bi = i0;
          int tb = TAKE(b, m);
          m = tb ? b : m;
          bi = tb ? i0 + 1 : bi;
          int tc = TAKE(c, m);
          m = tc ? c : m;
          bi = tc ? i0 + (int32_t)w : bi;
          int td = TAKE(d, m);
          m = td ? d : m;
          bi = td ? i0 + (int32_t)w + 1 : bi;
          yr[ox] = m;
          ar[ox] = bi;
        }
      } else {
        for (int64_t ox = 0; ox < ow; ox++) {
          float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
          float m = a;
          m = TAKE(b, m) ? b : m;
          m = TAKE(c, m) ? c : m;
          m = TAKE(d, m) ? d : m;
          yr[ox] = m;
        }
      }
    }
  }
}

void mm_max_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y, int32_t *arg) {
  if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0) {
    max_pool_2x2(s, x, y, arg);
    return;
  }
  int64_t planes = s->n * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
  for (int64_t p = 0; p < planes; p++) {
    const float *xp = x + p * hw;
    float *yp = y + p * ohw;
    int32_t *ap = arg ? arg + p * ohw : NULL;
    for (int64_t oy = 0; oy < s->oh; oy++) {
      int64_t y0 = oy * s->sh - s->ph, y1 = y0 + s->kh;
      if (y0 < 0) y0 = 0;
      if (y1 > s->h) y1 = s->h;
      for (int64_t ox = 0; ox < s->ow; ox++) {
        int64_t x0 = ox * s->sw - s->pw, x1 = x0 + s->kw;
        if (x0 < 0) x0 = 0;
        if (x1 > s->w) x1 = s->w;
        float best = -INFINITY;
        int64_t bi = y0 * s->w + x0;
        for (int64_t iy = y0; iy < y1; iy++) {
          const float *row = xp + iy * s->w;
          for (int64_t ix = x0; ix < x1; ix++) {
            float v = row[ix];
            if (v > best || isnan(v)) {
              best = v;
              bi = iy * s->w + ix;
              if (isnan(v)) goto done;
            }
          }
        }
      done:
        yp[oy * s->ow + ox] = best;
        if (ap) ap[oy * s->ow + ox] = (int32_t)bi;
      }
    }
  }
}

void mm_max_pool2d_backward(const mm_pool2d_shape *s, const int32_t *arg, const float *gy, float *gx) {
  if (!gx) return;
  int64_t planes = s->n * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
  memset(gx, 0, (size_t)(planes * hw) * sizeof(float));
  for (int64_t p = 0; p < planes; p++) {
    float *gp = gx + p * hw;
    const float *g = gy + p * ohw;
    const int32_t *a = arg + p * ohw;
    for (int64_t o = 0; o < ohw; o++) gp[a[o]] += g[o];
  }
}

/* 2x2 windows, stride 2, no padding: every input position lies in at most
 * one window, so gx is written densely, without a zero pass and scatter */
static void max_pool_2x2_relu_backward(const mm_pool2d_shape *s, const int32_t *restrict arg,
                                       const float *restrict y, const float *restrict gy, float *restrict gx,
                                       int64_t p0, int64_t p1) {
  int64_t w = s->w, h = s->h, hw = h * w, oh = s->oh, ow = s->ow, ohw = oh * ow;
  for (int64_t p = p0; p < p1; p++) {
    float *gp = gx + p * hw;
    for (int64_t oy = 0; oy < oh; oy++) {
      float *r0 = gp + 2 * oy * w, *r1 = r0 + w;
      const float *yr = y + p * ohw + oy * ow, *gr = gy + p * ohw + oy * ow;
      const int32_t *ar = arg + p * ohw + oy * ow;
      int32_t base = (int32_t)(2 * oy * w), wi = (int32_t)w;
      /* bit masks instead of branches: the signs are random, so branches
       * mispredict (measured: 3x slower) */
      uint32_t *u0 = (uint32_t *)r0, *u1 = (uint32_t *)r1;
      for (int64_t ox = 0; ox < ow; ox++) {
        uint32_t g;
        memcpy(&g, gr + ox, sizeof g);
        g &= -(uint32_t)(yr[ox] > 0.0f);
        int32_t rel = ar[ox] - base - (int32_t)(2 * ox);
        u0[2 * ox] = g & -(uint32_t)(rel == 0);
        u0[2 * ox + 1] = g & -(uint32_t)(rel == 1);
        u1[2 * ox] = g & -(uint32_t)(rel == wi);
        u1[2 * ox + 1] = g & -(uint32_t)(rel == wi + 1);
      }
      if (w > 2 * ow) { /* odd width: the last column is in no window */
        for (int64_t x = 2 * ow; x < w; x++) r0[x] = r1[x] = 0.0f;
      }
    }
    if (h > 2 * oh) memset(gp + 2 * oh * w, 0, (size_t)((h - 2 * oh) * w) * sizeof(float));
  }
}

typedef struct {
  const mm_pool2d_shape *s;
  const int32_t *arg;
  const float *y, *gy;
  float *gx;
} prb_job;

/* planes [p0, p1): planes are independent, so any split gives the same bits */
static void prb_range(void *ctx, int64_t p0, int64_t p1, int tid) {
  const prb_job *j = ctx;
  const mm_pool2d_shape *s = j->s;
  if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0) {
    max_pool_2x2_relu_backward(s, j->arg, j->y, j->gy, j->gx, p0, p1);
    return;
  }
  const int32_t *arg = j->arg;
  const float *y = j->y, *gy = j->gy;
  float *gx = j->gx;
  int64_t hw = s->h * s->w, ohw = s->oh * s->ow;
  memset(gx + p0 * hw, 0, (size_t)((p1 - p0) * hw) * sizeof(float));
  for (int64_t p = p0; p < p1; p++) {
    float *gp = gx + p * hw;
    const float *yp = y + p * ohw, *g = gy + p * ohw;
    const int32_t *a = arg + p * ohw;
    for (int64_t o = 0; o < ohw; o++)
      if (yp[o] > 0.0f) gp[a[o]] += g[o];
  }
}

void mm_max_pool2d_relu_backward(const mm_pool2d_shape *s, const int32_t *arg, const float *y, const float *gy,
                                 float *gx) {
  if (!gx) return;
  prb_job j = {s, arg, y, gy, gx};
  mm_parallel_for(s->n * s->c, prb_range, &j);
}

/* The window of output position o along one axis (input size n, kernel k,
 * stride st, padding pd): [*lo, *hi) clipped to the input, and the divisor
 * PyTorch's avg pool uses by default (padding counts, the far edge is
 * clipped to n + pd). */
static inline int64_t avg_window(int64_t o, int64_t n, int64_t k, int64_t st, int64_t pd, int64_t *lo, int64_t *hi) {
  int64_t a = o * st - pd, b = a + k;
  if (b > n + pd) b = n + pd;
  int64_t div = b - a;
  *lo = a < 0 ? 0 : a;
  *hi = b > n ? n : b;
  return div;
}

void mm_avg_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y) {
  int64_t planes = s->n * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
  for (int64_t p = 0; p < planes; p++) {
    const float *xp = x + p * hw;
    float *yp = y + p * ohw;
    for (int64_t oy = 0; oy < s->oh; oy++) {
      int64_t y0, y1, dy = avg_window(oy, s->h, s->kh, s->sh, s->ph, &y0, &y1);
      for (int64_t ox = 0; ox < s->ow; ox++) {
        int64_t x0, x1, dx = avg_window(ox, s->w, s->kw, s->sw, s->pw, &x0, &x1);
        float sum = 0.0f;
        for (int64_t iy = y0; iy < y1; iy++) {
          const float *row = xp + iy * s->w;
          for (int64_t ix = x0; ix < x1; ix++) sum += row[ix];
        }
        yp[oy * s->ow + ox] = sum / (float)(dy * dx);
      }
    }
  }
}

void mm_avg_pool2d_backward(const mm_pool2d_shape *s, const float *gy, float *gx) {
  if (!gx) return;
  int64_t planes = s->n * s->c, hw = s->h * s->w, ohw = s->oh * s->ow;
  memset(gx, 0, (size_t)(planes * hw) * sizeof(float));
  for (int64_t p = 0; p < planes; p++) {
    float *gp = gx + p * hw;
    const float *g = gy + p * ohw;
    for (int64_t oy = 0; oy < s->oh; oy++) {
      int64_t y0, y1, dy = avg_window(oy, s->h, s->kh, s->sh, s->ph, &y0, &y1);
      for (int64_t ox = 0; ox < s->ow; ox++) {
        int64_t x0, x1, dx = avg_window(ox, s->w, s->kw, s->sw, s->pw, &x0, &x1);
        float v = g[oy * s->ow + ox] / (float)(dy * dx);
        for (int64_t iy = y0; iy < y1; iy++) {
          float *row = gp + iy * s->w;
          for (int64_t ix = x0; ix < x1; ix++) row[ix] += v;
        }
      }
    }
  }
}

void mm_global_avg_pool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw) {
  for (int64_t p = 0; p < n * c; p++) {
    const float *xp = x + p * hw;
    double s = 0.0;
    for (int64_t j = 0; j < hw; j++) s += xp[j];
    y[p] = hw > 0 ? (float)(s / (double)hw) : 0.0f;
  }
}

void mm_global_avg_pool_backward(const float *gy, float *gx, int64_t n, int64_t c, int64_t hw) {
  if (!gx || hw <= 0) return;
  float inv = 1.0f / (float)hw;
  for (int64_t p = 0; p < n * c; p++) {
    float v = gy[p] * inv;
    float *gp = gx + p * hw;
    for (int64_t j = 0; j < hw; j++) gp[j] = v;
  }
}

void mm_global_avg_pool_cn_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw) {
  for (int64_t ch = 0; ch < c; ch++)
    for (int64_t i = 0; i < n; i++) {
      const float *xp = x + (ch * n + i) * hw;
      double s = 0.0;
      for (int64_t j = 0; j < hw; j++) s += xp[j];
      y[i * c + ch] = hw > 0 ? (float)(s / (double)hw) : 0.0f;
    }
}

void mm_global_avg_pool_cn_backward(const float *gy, float *gx, int64_t n, int64_t c, int64_t hw) {
  if (!gx || hw <= 0) return;
  float inv = 1.0f / (float)hw;
  for (int64_t ch = 0; ch < c; ch++)
    for (int64_t i = 0; i < n; i++) {
      float v = gy[i * c + ch] * inv;
      float *gp = gx + (ch * n + i) * hw;
      for (int64_t j = 0; j < hw; j++) gp[j] = v;
    }
}
