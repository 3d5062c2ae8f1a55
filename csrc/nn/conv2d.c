/* conv2d.c - 2-D convolution over NCHW with groups: im2col + mm_sgemm.
 * Weight layout [o, c/groups, kh, kw] (PyTorch). Per sample and group the
 * input patch matrix col[(c/g)*kh*kw, oh*ow] is built once and multiplied by
 * the group's weight matrix [o/g, (c/g)*kh*kw]. A 1x1 kernel with stride 1
 * and no padding skips im2col (the input plane is already the col matrix).
 * The patch matrices are built by im2col.c; the channel-major path
 * (conv2d.h) that the model's CNN trains with is conv2d_cn.c. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/parallel.h"

#include "cnn_direct.h"
#include "conv2d.h"
#include "im2col.h"

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

static void im2col(const mm_conv2d_shape *s, const float *x, int64_t cg, float *col) {
  mm_im2col(s, x, s->h * s->w, cg, col, s->oh * s->ow);
}

static void col2im(const mm_conv2d_shape *s, const float *col, int64_t cg, float *gx) {
  mm_col2im(s, col, s->h * s->w, cg, gx, s->oh * s->ow);
}

/* ---- depthwise: one input channel per group (c == groups), o/groups outputs
 * each. A direct loop beats one tiny sgemm per sample and group. */
static int depthwise(const mm_conv2d_shape *s) { return s->groups > 1 && s->c == s->groups; }

/* valid output rows oy whose input row iy = oy*sh - ph + ki lies in [0, h) */
static void valid_rows(const mm_conv2d_shape *s, int64_t ki, int64_t *lo, int64_t *hi) {
  mm_valid_range(ki, s->sh, s->ph, s->h, s->oh, lo, hi);
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
          mm_valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
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
          mm_valid_range(kj, s->sw, s->pw, s->w, ow, &lo, &hi);
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
