/* conv2d.c - 2-D convolution over NCHW with groups: im2col + mm_sgemm.
 * Weight layout [o, c/groups, kh, kw] (PyTorch). Per sample and group the
 * input patch matrix col[(c/g)*kh*kw, oh*ow] is built once and multiplied by
 * the group's weight matrix [o/g, (c/g)*kh*kw]. A 1x1 kernel with stride 1
 * and no padding skips im2col (the input plane is already the col matrix).
 * The channel-major path at the end (conv2d.h) serves the model's CNN. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/parallel.h"

#include "cnn_direct.h"
#include "conv2d.h"

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

/* ---- stride 1, "same" padding (oh == h, ow == w): output position q of a
 * plane reads input position q + (ki - ph)*w + (kj - pw), so a col row is one
 * shifted copy of the plane, with the positions whose input falls outside
 * (whole rows at the top or bottom, columns at the sides) set to zero. */
static int same1(const mm_conv2d_shape *s) {
  return s->sh == 1 && s->sw == 1 && s->oh == s->h && s->ow == s->w;
}

/* zero the positions of np consecutive h x w planes d whose shifted input
 * (dy, dx) lies outside the plane */
static void zero_outside(float *d, int64_t np, int64_t h, int64_t w, int64_t dy, int64_t dx) {
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

/* [*q0, *q1): the plane positions q whose q + sft lies in [0, hw) */
static void shift_range(int64_t sft, int64_t hw, int64_t *q0, int64_t *q1) {
  *q0 = sft < 0 ? -sft : 0;
  *q1 = sft > 0 ? hw - sft : hw;
  if (*q0 > hw) *q0 = hw;
  if (*q1 < *q0) *q1 = *q0;
}

static void im2col_same(const mm_conv2d_shape *s, const float *x, int64_t cst, int64_t cg, float *col, int64_t ld) {
  int64_t h = s->h, w = s->w, hw = h * w;
  for (int64_t ci = 0; ci < cg; ci++)
    for (int64_t ki = 0; ki < s->kh; ki++)
      for (int64_t kj = 0; kj < s->kw; kj++) {
        float *d = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
        int64_t dy = ki - s->ph, dx = kj - s->pw, sft = dy * w + dx, q0, q1;
        shift_range(sft, hw, &q0, &q1);
        memcpy(d + q0, x + ci * cst + q0 + sft, (size_t)(q1 - q0) * sizeof(float));
        zero_outside(d, 1, h, w, dy, dx);
      }
}

static void add_to(float *restrict d, const float *restrict a, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] += a[i];
}

/* col[(ci, ki, kj), :] with row stride ld; input channel ci at x + ci*cst */
static void im2col_ld(const mm_conv2d_shape *s, const float *x, int64_t cst, int64_t cg, float *col, int64_t ld) {
  if (same1(s)) {
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

/* gx += col scattered back (gx must be zeroed by the caller); input channel
 * ci at gx + ci*cst */
static void col2im_ld(const mm_conv2d_shape *s, const float *col, int64_t cst, int64_t cg, float *gx, int64_t ld) {
  int64_t oh = s->oh, ow = s->ow;
  for (int64_t ci = 0; ci < cg; ci++) {
    float *gp = gx + ci * cst;
    for (int64_t ki = 0; ki < s->kh; ki++) {
      for (int64_t kj = 0; kj < s->kw; kj++) {
        const float *row = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
        int64_t lo, hi;
        valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
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

static void im2col(const mm_conv2d_shape *s, const float *x, int64_t cg, float *col) {
  im2col_ld(s, x, s->h * s->w, cg, col, s->oh * s->ow);
}

static void col2im(const mm_conv2d_shape *s, const float *col, int64_t cg, float *gx) {
  col2im_ld(s, col, s->h * s->w, cg, gx, s->oh * s->ow);
}

/* ---- depthwise: one input channel per group (c == groups), o/groups outputs
 * each. A direct loop beats one tiny sgemm per sample and group. */
static int depthwise(const mm_conv2d_shape *s) { return s->groups > 1 && s->c == s->groups; }

/* valid output rows oy whose input row iy = oy*sh - ph + ki lies in [0, h) */
static void valid_rows(const mm_conv2d_shape *s, int64_t ki, int64_t *lo, int64_t *hi) {
  valid_range(ki, s->sh, s->ph, s->h, s->oh, lo, hi);
}

static void dw_forward(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y, int64_t i0,
                       int64_t i1) {
  int64_t og = s->o / s->groups, ohw = s->oh * s->ow, hw = s->h * s->w, ow = s->ow, kk = s->kh * s->kw;
  for (int64_t i = i0; i < i1; i++)
    for (int64_t oc = 0; oc < s->o; oc++) {
      const float *xp = x + (i * s->c + oc / og) * hw;
      const float *wp = w + oc * kk;
      float *yp = y + (i * s->o + oc) * ohw;
      float bv = b ? b[oc] : 0.0f;
      for (int64_t j = 0; j < ohw; j++) yp[j] = bv;
      for (int64_t ki = 0; ki < s->kh; ki++) {
        int64_t ylo, yhi;
        valid_rows(s, ki, &ylo, &yhi);
        for (int64_t kj = 0; kj < s->kw; kj++) {
          int64_t lo, hi, off = kj - s->pw;
          valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
          float wv = wp[ki * s->kw + kj];
          for (int64_t oy = ylo; oy < yhi; oy++) {
            const float *xr = xp + (oy * s->sh - s->ph + ki) * s->w + off;
            float *yr = yp + oy * ow;
            if (s->sw == 1)
              for (int64_t ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox];
            else
              for (int64_t ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * s->sw];
          }
        }
      }
    }
}

/* groups [g0, g1): every oc of a group touches only that group's input
 * channel, so groups are independent; per oc the samples are still summed in
 * order i = 0..n-1 (the same sums as a sample-major loop) */
static void dw_backward(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                        float *gw, int64_t g0, int64_t g1) {
  int64_t og = s->o / s->groups, ohw = s->oh * s->ow, hw = s->h * s->w, ow = s->ow, kk = s->kh * s->kw;
  if (gx)
    for (int64_t i = 0; i < s->n; i++) memset(gx + (i * s->c + g0) * hw, 0, (size_t)((g1 - g0) * hw) * sizeof(float));
  for (int64_t gi = g0; gi < g1; gi++)
  for (int64_t i = 0; i < s->n; i++)
    for (int64_t oc = gi * og; oc < (gi + 1) * og; oc++) {
      const float *xp = x + (i * s->c + oc / og) * hw;
      float *gxp = gx ? gx + (i * s->c + oc / og) * hw : NULL;
      const float *wp = w + oc * kk;
      const float *gp = gy + (i * s->o + oc) * ohw;
      for (int64_t ki = 0; ki < s->kh; ki++) {
        int64_t ylo, yhi;
        valid_rows(s, ki, &ylo, &yhi);
        for (int64_t kj = 0; kj < s->kw; kj++) {
          int64_t lo, hi, off = kj - s->pw;
          valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
          float wv = wp[ki * s->kw + kj];
          float acc = 0.0f;
          for (int64_t oy = ylo; oy < yhi; oy++) {
            int64_t ro = (oy * s->sh - s->ph + ki) * s->w + off;
            const float *gr = gp + oy * ow;
            const float *xr = xp + ro;
            for (int64_t ox = lo; ox < hi; ox++) acc += gr[ox] * xr[ox * s->sw];
            if (gxp) {
              float *gxr = gxp + ro;
              for (int64_t ox = lo; ox < hi; ox++) gxr[ox * s->sw] += wv * gr[ox];
            }
          }
          if (gw) gw[oc * kk + ki * s->kw + kj] += acc;
        }
      }
    }
}

/* ---- per-sample path, threaded over the batch (mm_parallel_for). Thread 0
 * uses the caller's col; threads 1.. get their own col (and, backward, their
 * own weight-gradient partial) from one scratch block allocated before the
 * parallel section. If that allocation fails the kernel runs on one thread. */
typedef struct {
  const mm_conv2d_shape *s;
  const float *x, *w, *b, *gy;
  float *y, *gx, *gw, *gb, *col, *scratch;
  int64_t cs, gws; /* floats per thread: col, weight-gradient partial */
} conv_job;

static float *job_col(const conv_job *j, int tid) {
  return tid == 0 ? j->col : j->scratch + (int64_t)(tid - 1) * (j->cs + j->gws);
}

static void fwd_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  const conv_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  if (depthwise(s)) {
    dw_forward(s, j->x, j->w, j->b, j->y, i0, i1);
    return;
  }
  int64_t g = s->groups, cg = s->c / g, og = s->o / g, ohw = s->oh * s->ow, hw = s->h * s->w;
  int64_t k = cg * s->kh * s->kw;
  int dir = direct(s);
  float *col = job_col(j, tid);
  for (int64_t i = i0; i < i1; i++) {
    for (int64_t gi = 0; gi < g; gi++) {
      const float *xg = j->x + (i * s->c + gi * cg) * hw;
      const float *cm = xg;
      if (!dir) {
        im2col(s, xg, cg, col);
        cm = col;
      }
      float *yg = j->y + (i * s->o + gi * og) * ohw;
      mm_sgemm(0, 0, og, ohw, k, 1.0f, j->w + gi * og * k, k, cm, ohw, 0.0f, yg, ohw);
      if (j->b) {
        for (int64_t oc = 0; oc < og; oc++) {
          float bv = j->b[gi * og + oc];
          float *yr = yg + oc * ohw;
          for (int64_t jj = 0; jj < ohw; jj++) yr[jj] += bv;
        }
      }
    }
  }
}

/* threads 1.. of the per-sample path need this many scratch floats each */
static int64_t scratch_per_thread(const mm_conv2d_shape *s, int with_gw) {
  if (depthwise(s)) return 0;
  int64_t k = (s->c / s->groups) * s->kh * s->kw;
  return mm_conv2d_col_size(s) + (with_gw ? s->o * k : 0);
}

/* nt threads over n items with per-thread scratch: returns the thread count
 * to use (1 if the scratch cannot be had) and sets *scratch (NULL if none) */
static int alloc_scratch(int64_t n, int64_t per, float **scratch) {
  int nt = mm_parallel_threads(n);
  *scratch = NULL;
  if (nt <= 1 || per == 0) return nt;
  *scratch = malloc((size_t)(nt - 1) * (size_t)per * sizeof(float));
  return *scratch ? nt : 1;
}

void mm_conv2d_forward(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
                       float *col) {
  /* stride 1, "same" padding, a square kernel: cnn_direct.c (direct tiles,
   * position vectors or Winograd; no im2col) where the CPU has them;
   * kernels they do not take (even, larger than 11) come back here */
  if (s->groups == 1 && s->sh == 1 && s->sw == 1 && s->kh == s->kw && s->ph == s->kh / 2 && s->pw == s->kw / 2 &&
      mm_cnn_direct_ok() && mm_cnn_direct_conv2d(s->n, s->c, s->h, s->w, s->o, s->kh, x, w, b, y) == 0)
    return;
  conv_job j = {.s = s, .x = x, .w = w, .b = b, .y = y, .col = col};
  j.cs = scratch_per_thread(s, 0);
  int nt = alloc_scratch(s->n, j.cs, &j.scratch);
  if (nt <= 1)
    fwd_range(&j, 0, s->n, 0);
  else
    mm_parallel_for(s->n, fwd_range, &j);
  free(j.scratch);
}

/* bias gradient for output channels [o0, o1): per channel the samples are
 * summed in order, so any split over channels gives the serial result */
static void gb_range(void *ctx, int64_t o0, int64_t o1, int tid) {
  const conv_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  int64_t ohw = s->oh * s->ow;
  for (int64_t oc = o0; oc < o1; oc++)
    for (int64_t i = 0; i < s->n; i++) {
      const float *gr = j->gy + (i * s->o + oc) * ohw;
      double acc = 0.0;
      for (int64_t jj = 0; jj < ohw; jj++) acc += gr[jj];
      j->gb[oc] += (float)acc;
    }
}

static void dw_bwd_range(void *ctx, int64_t g0, int64_t g1, int tid) {
  const conv_job *j = ctx;
  dw_backward(j->s, j->x, j->w, j->gy, j->gx, j->gw, g0, g1);
}

/* samples [i0, i1): gx per sample; the weight gradient of thread 0 goes
 * straight into gw (as the serial loop does), threads 1.. sum theirs into a
 * zeroed partial that is added to gw in thread order after the join */
static void bwd_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  const conv_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  int64_t g = s->groups, cg = s->c / g, og = s->o / g, ohw = s->oh * s->ow, hw = s->h * s->w;
  int64_t k = cg * s->kh * s->kw;
  int dir = direct(s);
  float *col = job_col(j, tid);
  float *gw = j->gw;
  if (gw && tid > 0) {
    gw = col + j->cs;
    memset(gw, 0, (size_t)j->gws * sizeof(float));
  }
  if (j->gx && !dir) memset(j->gx + i0 * s->c * hw, 0, (size_t)((i1 - i0) * s->c * hw) * sizeof(float));
  for (int64_t i = i0; i < i1; i++) {
    for (int64_t gi = 0; gi < g; gi++) {
      const float *xg = j->x + (i * s->c + gi * cg) * hw;
      const float *gyg = j->gy + (i * s->o + gi * og) * ohw;
      const float *wg = j->w + gi * og * k;
      if (gw) {
        const float *cm = xg;
        if (!dir) {
          im2col(s, xg, cg, col);
          cm = col;
        }
        mm_sgemm(0, 1, og, k, ohw, 1.0f, gyg, ohw, cm, ohw, 1.0f, gw + gi * og * k, k);
      }
      if (j->gx) {
        float *gxg = j->gx + (i * s->c + gi * cg) * hw;
        if (dir) {
          mm_sgemm(1, 0, k, ohw, og, 1.0f, wg, k, gyg, ohw, 0.0f, gxg, ohw);
        } else {
          mm_sgemm(1, 0, k, ohw, og, 1.0f, wg, k, gyg, ohw, 0.0f, col, ohw);
          col2im(s, col, cg, gxg);
        }
      }
    }
  }
}

void mm_conv2d_backward(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                        float *gw, float *gb, float *col) {
  conv_job j = {.s = s, .x = x, .w = w, .gy = gy, .gx = gx, .gw = gw, .gb = gb, .col = col};
  if (gb) mm_parallel_for(s->o, gb_range, &j);
  if (depthwise(s)) {
    mm_parallel_for(s->groups, dw_bwd_range, &j);
    return;
  }
  int64_t k = (s->c / s->groups) * s->kh * s->kw;
  j.cs = mm_conv2d_col_size(s);
  j.gws = gw ? s->o * k : 0;
  int nt = alloc_scratch(s->n, j.cs + j.gws, &j.scratch);
  if (nt <= 1) {
    bwd_range(&j, 0, s->n, 0);
    free(j.scratch);
    return;
  }
  mm_parallel_for(s->n, bwd_range, &j);
  if (gw)
    for (int t = 1; t < nt; t++) {
      const float *part = job_col(&j, t) + j.cs;
      for (int64_t q = 0; q < j.gws; q++) gw[q] += part[q];
    }
  free(j.scratch);
}


/* ---- channel-major path (conv2d.h): groups == 1, activations [c, n*h*w].
 * col = [K, n*oh*ow] with K = c*kh*kw: sample i's im2col in columns
 * [i*ohw, (i+1)*ohw). The GEMM [o, K] . [K, n*ohw] gives the output already
 * channel-major, so no reorder is needed; backward reads grad_out in place.
 * The forward and the input gradient run it a chunk of samples (about
 * CN_COLS columns) at a time, so that the chunk's im2col is still in cache
 * (measured: faster than one GEMM over the whole batch, and than one per
 * sample); bias, ReLU and the max pool are applied to each chunk right after.
 * Threads split the columns (forward, input gradient) or the output channels
 * (weight and bias gradients); mm_sgemm sums every element over k in the same
 * order whatever the split, so every thread count gives the same bits. */
typedef struct {
  const mm_conv2d_shape *s;
  const float *x, *w, *b, *gy;
  float *y, *col, *gx, *gw, *gb, *scratch;
  int x_nchw, relu;
  const mm_pool2d_shape *ps; /* forward: max pool after the conv (NULL: none) */
  float *py;
  int32_t *parg;
} cn_job;

int64_t mm_conv2d_cn_col_size(const mm_conv2d_shape *s) { return s->c * s->kh * s->kw * s->n * s->oh * s->ow; }

/* samples [i0, i1) of the whole-batch im2col. Channel-major input with
 * stride 1 and same padding: a col row (ci, ki, kj) over the batch is one
 * shifted copy of channel ci's n planes (positions that cross a plane's
 * border are set to zero afterwards), so one copy serves all the samples. */
static void cn_im2col(const cn_job *j, int64_t i0, int64_t i1, float *col, int64_t ld, int64_t ibase) {
  const mm_conv2d_shape *s = j->s;
  int64_t hw = s->h * s->w, ohw = s->oh * s->ow, nohw = s->n * ohw, cb = ibase * ohw;
  /* sample i goes to the columns [(i - ibase)*ohw, ...) of col (row stride ld) */
  if (!j->x_nchw && same1(s)) {
    int64_t lo = i0 * hw, hi = i1 * hw;
    for (int64_t ci = 0; ci < s->c; ci++)
      for (int64_t ki = 0; ki < s->kh; ki++)
        for (int64_t kj = 0; kj < s->kw; kj++) {
          float *d = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
          int64_t dy = ki - s->ph, dx = kj - s->pw, sft = dy * s->w + dx, q0, q1;
          shift_range(sft, nohw, &q0, &q1);
          if (q0 < lo) q0 = lo;
          if (q1 > hi) q1 = hi;
          if (q1 > q0) memcpy(d + (q0 - cb), j->x + ci * nohw + q0 + sft, (size_t)(q1 - q0) * sizeof(float));
          zero_outside(d + (lo - cb), i1 - i0, s->h, s->w, dy, dx);
        }
    return;
  }
  int64_t xs = j->x_nchw ? s->c * hw : hw, cst = j->x_nchw ? hw : s->n * hw;
  for (int64_t i = i0; i < i1; i++) im2col_ld(s, j->x + i * xs, cst, s->c, col + (i - ibase) * ohw, ld);
}

/* samples per GEMM: enough columns for the kernel, few enough that the
 * chunk's im2col is still in cache when the GEMM reads it */
#ifndef CN_COLS
#define CN_COLS 1024
#endif
static int64_t cn_chunk(const mm_conv2d_shape *s) {
  int64_t ohw = s->oh * s->ow, cs = ohw >= CN_COLS ? 1 : (CN_COLS + ohw - 1) / ohw;
  return cs < s->n ? cs : s->n > 0 ? s->n : 1;
}

/* col: the whole batch's im2col (ld n*ohw), or with tcol a chunk's own
 * (ld = its columns) */
static void cnf_chunk(const cn_job *j, int64_t i0, int64_t i1, float *tcol) {
  const mm_conv2d_shape *s = j->s;
  int64_t k = s->c * s->kh * s->kw, ohw = s->oh * s->ow, nohw = s->n * ohw, c0 = i0 * ohw, nc = (i1 - i0) * ohw;
  if (tcol) {
    cn_im2col(j, i0, i1, tcol, nc, i0);
    mm_sgemm(0, 0, s->o, nc, k, 1.0f, j->w, k, tcol, nc, 0.0f, j->y + c0, nohw);
  } else {
    cn_im2col(j, i0, i1, j->col, nohw, 0);
    mm_sgemm(0, 0, s->o, nc, k, 1.0f, j->w, k, j->col + c0, nohw, 0.0f, j->y + c0, nohw);
  }
  for (int64_t oc = 0; oc < s->o; oc++) {
    float bv = j->b ? j->b[oc] : 0.0f, *yr = j->y + oc * nohw + c0;
    if (j->relu)
      for (int64_t q = 0; q < nc; q++) {
        float v = yr[q] + bv;
        yr[q] = v > 0.0f ? v : 0.0f;
      }
    else if (j->b)
      for (int64_t q = 0; q < nc; q++) yr[q] += bv;
  }
  if (j->ps) { /* pool the chunk while it is in cache: channel oc's planes of samples [i0, i1) */
    mm_pool2d_shape sub = *j->ps;
    int64_t pohw = sub.oh * sub.ow;
    sub.n = i1 - i0;
    sub.c = 1;
    for (int64_t oc = 0; oc < s->o; oc++) {
      int64_t at = oc * s->n + i0;
      mm_max_pool2d_forward(&sub, j->y + at * ohw, j->py + at * pohw, j->parg ? j->parg + at * pohw : NULL);
    }
  }
}

static void cnf_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  const cn_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  int64_t cs = cn_chunk(s);
  float *tcol = j->scratch ? j->scratch + (int64_t)tid * s->c * s->kh * s->kw * cs * s->oh * s->ow : NULL;
  for (int64_t c = i0; c < i1; c += cs) cnf_chunk(j, c, i1 - c < cs ? i1 : c + cs, tcol);
}

int mm_conv2d_cn_forward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *b,
                         float *y, float *col, int relu, const mm_pool2d_shape *ps, float *py, int32_t *parg) {
  cn_job j = {.s = s, .x = x, .w = w, .b = b, .y = y, .col = col, .x_nchw = x_nchw, .relu = relu,
              .ps = ps, .py = py, .parg = parg};
  if (!col) { /* a chunk's im2col per thread */
    int64_t per = s->c * s->kh * s->kw * cn_chunk(s) * s->oh * s->ow;
    j.scratch = malloc((size_t)mm_parallel_threads(s->n) * (size_t)per * sizeof(float));
    if (!j.scratch) return MM_ENOMEM;
  }
  mm_parallel_for(s->n, cnf_range, &j);
  free(j.scratch);
  return MM_OK;
}

static void cn_im2col_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  const cn_job *j = ctx;
  cn_im2col(j, i0, i1, j->col, j->s->n * j->s->oh * j->s->ow, 0);
}

/* bias gradient (row sums of grad_out, 16 float lanes then double per row)
 * and weight gradient for output channels [o0, o1) */
static void cnw_range(void *ctx, int64_t o0, int64_t o1, int tid) {
  const cn_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  int64_t k = s->c * s->kh * s->kw, nohw = s->n * s->oh * s->ow;
  if (j->gb)
    for (int64_t oc = o0; oc < o1; oc++) {
      const float *g = j->gy + oc * nohw;
      float lane[16] = {0};
      int64_t q = 0;
      for (; q + 16 <= nohw; q += 16)
        for (int l = 0; l < 16; l++) lane[l] += g[q + l];
      double acc = 0.0;
      for (int l = 0; l < 16; l++) acc += lane[l];
      for (; q < nohw; q++) acc += g[q];
      j->gb[oc] += (float)acc;
    }
  if (j->gw)
    mm_sgemm(0, 1, o1 - o0, k, nohw, 1.0f, j->gy + o0 * nohw, nohw, j->col, nohw, 1.0f, j->gw + o0 * k, k);
}

/* stride 1, same padding, sample i: gx = the centre tap's col row, plus every
 * other tap's row shifted (its positions outside the plane zeroed first);
 * clipped to the sample's own plane, so a plane border is never crossed.
 * Each input position sums the centre, then the other taps in (ki, kj) order. */
static void col2im_cn_same(const cn_job *j, int64_t i) {
  const mm_conv2d_shape *s = j->s;
  int64_t hw = s->h * s->w, nohw = s->n * hw, lo = i * hw, hi = lo + hw;
  for (int64_t ci = 0; ci < s->c; ci++) {
    float *gp = j->gx + ci * nohw;
    float *base = j->col + ci * s->kh * s->kw * nohw;
    memcpy(gp + lo, base + (s->ph * s->kw + s->pw) * nohw + lo, (size_t)hw * sizeof(float));
    for (int64_t ki = 0; ki < s->kh; ki++)
      for (int64_t kj = 0; kj < s->kw; kj++) {
        if (ki == s->ph && kj == s->pw) continue;
        float *r = base + (ki * s->kw + kj) * nohw;
        int64_t dy = ki - s->ph, dx = kj - s->pw, sft = dy * s->w + dx;
        zero_outside(r + lo, 1, s->h, s->w, dy, dx);
        /* gp[p] += r[p - sft] for p and p - sft both in [lo, hi) */
        int64_t p0 = lo + (sft > 0 ? sft : 0), p1 = hi + (sft < 0 ? sft : 0);
        if (p1 > p0) add_to(gp + p0, r + p0 - sft, p1 - p0);
      }
  }
}

/* input gradient for samples [i0, i1), a chunk at a time: col columns <-
 * W^T . grad_out, then scattered into gx (channel-major) */
static void cnx_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  const cn_job *j = ctx;
  const mm_conv2d_shape *s = j->s;
  int64_t k = s->c * s->kh * s->kw, hw = s->h * s->w, ohw = s->oh * s->ow, nohw = s->n * ohw, cs = cn_chunk(s);
  for (int64_t a = i0; a < i1; a += cs) {
    int64_t b = i1 - a < cs ? i1 : a + cs, c0 = a * ohw;
    mm_sgemm(1, 0, k, (b - a) * ohw, s->o, 1.0f, j->w, k, j->gy + c0, nohw, 0.0f, j->col + c0, nohw);
    if (same1(s)) {
      for (int64_t i = a; i < b; i++) col2im_cn_same(j, i);
      continue;
    }
    for (int64_t ci = 0; ci < s->c; ci++) memset(j->gx + (ci * s->n + a) * hw, 0, (size_t)((b - a) * hw) * sizeof(float));
    for (int64_t i = a; i < b; i++) col2im_ld(s, j->col + i * ohw, s->n * hw, s->c, j->gx + i * hw, nohw);
  }
}

void mm_conv2d_cn_backward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *gy,
                           float *gx, float *gw, float *gb, float *col, int col_has_x) {
  cn_job j = {.s = s, .x = x, .w = w, .gy = gy, .gx = gx, .gw = gw, .gb = gb, .col = col, .x_nchw = x_nchw};
  if (gw && !col_has_x) mm_parallel_for(s->n, cn_im2col_range, &j);
  if (gw || gb) mm_parallel_for(s->o, cnw_range, &j);
  if (gx) mm_parallel_for(s->n, cnx_range, &j);
}
