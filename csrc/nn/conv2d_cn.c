/* conv2d_cn.c - the channel-major convolution (conv2d.h: mm_conv2d_cn_*), which
 * the model's CNN trains with: groups == 1, activations [c, n*h*w].
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
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/parallel.h"
#include "conv2d.h"
#include "im2col.h"

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
  if (!j->x_nchw && mm_conv_same1(s)) {
    int64_t lo = i0 * hw, hi = i1 * hw;
    for (int64_t ci = 0; ci < s->c; ci++)
      for (int64_t ki = 0; ki < s->kh; ki++)
        for (int64_t kj = 0; kj < s->kw; kj++) {
          float *d = col + ((ci * s->kh + ki) * s->kw + kj) * ld;
          int64_t dy = ki - s->ph, dx = kj - s->pw, sft = dy * s->w + dx, q0, q1;
          mm_shift_range(sft, nohw, &q0, &q1);
          if (q0 < lo) q0 = lo;
          if (q1 > hi) q1 = hi;
          if (q1 > q0) memcpy(d + (q0 - cb), j->x + ci * nohw + q0 + sft, (size_t)(q1 - q0) * sizeof(float));
          mm_zero_outside(d + (lo - cb), i1 - i0, s->h, s->w, dy, dx);
        }
    return;
  }
  int64_t xs = j->x_nchw ? s->c * hw : hw, cst = j->x_nchw ? hw : s->n * hw;
  for (int64_t i = i0; i < i1; i++) mm_im2col(s, j->x + i * xs, cst, s->c, col + (i - ibase) * ohw, ld);
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
        mm_zero_outside(r + lo, 1, s->h, s->w, dy, dx);
        /* gp[p] += r[p - sft] for p and p - sft both in [lo, hi) */
        int64_t p0 = lo + (sft > 0 ? sft : 0), p1 = hi + (sft < 0 ? sft : 0);
        if (p1 > p0) mm_add_to(gp + p0, r + p0 - sft, p1 - p0);
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
    if (mm_conv_same1(s)) {
      for (int64_t i = a; i < b; i++) col2im_cn_same(j, i);
      continue;
    }
    for (int64_t ci = 0; ci < s->c; ci++) memset(j->gx + (ci * s->n + a) * hw, 0, (size_t)((b - a) * hw) * sizeof(float));
    for (int64_t i = a; i < b; i++) mm_col2im(s, j->col + i * ohw, s->n * hw, s->c, j->gx + i * hw, nohw);
  }
}

void mm_conv2d_cn_backward(const mm_conv2d_shape *s, const float *x, int x_nchw, const float *w, const float *gy,
                           float *gx, float *gw, float *gb, float *col, int col_has_x) {
  cn_job j = {.s = s, .x = x, .w = w, .gy = gy, .gx = gx, .gw = gw, .gb = gb, .col = col, .x_nchw = x_nchw};
  if (gw && !col_has_x) mm_parallel_for(s->n, cn_im2col_range, &j);
  if (gw || gb) mm_parallel_for(s->o, cnw_range, &j);
  if (gx) mm_parallel_for(s->n, cnx_range, &j);
}
