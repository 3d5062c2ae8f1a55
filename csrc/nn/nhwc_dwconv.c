/* nhwc_dwconv.c - depthwise convolution on NHWC views (see nhwc.h).
 *
 * Channels are the vector lanes: an output pixel's 16 channels take one
 * FMA per kernel tap, each with its own weight vector. Threads split the
 * output rows. A row runs channel block by channel block, so a 3 x 3
 * kernel's nine weight vectors stay in registers across the row; with stride
 * 1 each input vector is loaded once per (row, kernel row) and feeds the
 * three outputs whose windows hold it (a sliding window of accumulators).
 * Taps outside the input are skipped (the zero padding is never copied).
 * Every output sums its taps in (ky, kx) order on every path (fused
 * multiply-adds with AVX-512, a multiply and an add elsewhere). */
#include "nhwc.h"

#include "../core/cpu.h"
#include "../core/parallel.h"

#include <math.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_DW_X86 1
#include <immintrin.h>
#endif

typedef struct {
  const mm_dwconv_nhwc *dw;
  const mm_view *x, *y;
  int lo, hi; /* clamp sides in use */
} dwjob;

/* the taps of window start i0 (= o * s - p) that fall in [0, n): [*a, *b) */
static void valid(int64_t i0, int64_t k, int64_t n, int64_t *a, int64_t *b) {
  *a = i0 < 0 ? -i0 : 0;
  *b = n - i0 < k ? n - i0 : k;
  if (*b < *a) *b = *a;
}

/* output row oy of image b: its kernel rows inside the input [*ky0, *ky1),
 * the input row its window starts at (may lie above the input: only rows
 * from ky0 on are read) and the output row */
static void row_at(const dwjob *j, int64_t b, int64_t oy, int64_t *ky0, int64_t *ky1, const float **xr, float **yr) {
  const mm_dwconv_nhwc *dw = j->dw;
  int64_t iy = oy * dw->sh - dw->pt;
  valid(iy, dw->kh, j->x->h, ky0, ky1);
  *xr = j->x->p + b * j->x->is + iy * j->x->rs;
  *yr = j->y->p + b * j->y->is + oy * j->y->rs;
}

/* portable C: the same taps in the same order, a multiply and an add
 * rounded apart (the compiler vectorises the loops over channels; with
 * AVX2 the same code is compiled for 8 lanes) */
__attribute__((always_inline)) static inline void row_c_body(const dwjob *j, int64_t b, int64_t oy) {
  const mm_dwconv_nhwc *dw = j->dw;
  const mm_view *x = j->x, *y = j->y;
  int64_t C = dw->c, ky0, ky1;
  const float *xr;
  float *yr;
  row_at(j, b, oy, &ky0, &ky1, &xr, &yr);
  for (int64_t ox = 0; ox < y->w; ox++) {
    int64_t ix0 = ox * dw->sw - dw->pl, kx0, kx1;
    valid(ix0, dw->kw, x->w, &kx0, &kx1);
    float *o = yr + ox * y->ps;
    for (int64_t c = 0; c < C; c++) o[c] = dw->bias ? dw->bias[c] : 0.0f;
    for (int64_t ky = ky0; ky < ky1; ky++)
      for (int64_t kx = kx0; kx < kx1; kx++) {
        const float *xp = xr + ky * x->rs + (ix0 + kx) * x->ps, *wp = dw->w + (ky * dw->kw + kx) * C;
        for (int64_t c = 0; c < C; c++) o[c] += wp[c] * xp[c];
      }
    for (int64_t c = 0; c < C; c++) {
      float v = o[c];
      if (j->lo && !(v >= dw->lo)) v = dw->lo;
      if (j->hi && v > dw->hi) v = dw->hi;
      o[c] = v;
    }
  }
}

static void row_c(const dwjob *j, int64_t b, int64_t oy) { row_c_body(j, b, oy); }

#ifdef MM_DW_X86
__attribute__((target("avx2"))) static void row_avx2(const dwjob *j, int64_t b, int64_t oy) { row_c_body(j, b, oy); }

#define A512 __attribute__((target("avx512f,fma")))

A512 static inline __m512 clamp512(__m512 v, const dwjob *j, __m512 lo, __m512 hi) {
  if (j->lo) v = _mm512_max_ps(v, lo);
  if (j->hi) v = _mm512_min_ps(v, hi);
  return v;
}

/* any kernel: per output pixel and channel block, the valid taps in order */
A512 static void row512(const dwjob *j, int64_t b, int64_t oy) {
  const mm_dwconv_nhwc *dw = j->dw;
  const mm_view *x = j->x, *y = j->y;
  int64_t C = dw->c, ky0, ky1;
  const float *xr;
  float *yr;
  row_at(j, b, oy, &ky0, &ky1, &xr, &yr);
  __m512 lo = _mm512_set1_ps(dw->lo), hi = _mm512_set1_ps(dw->hi);
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    __mmask16 m = C - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c0)) - 1u);
    __m512 bv = dw->bias ? _mm512_maskz_loadu_ps(m, dw->bias + c0) : _mm512_setzero_ps();
    for (int64_t ox = 0; ox < y->w; ox++) {
      int64_t ix0 = ox * dw->sw - dw->pl, kx0, kx1;
      valid(ix0, dw->kw, x->w, &kx0, &kx1);
      __m512 acc = bv;
      for (int64_t ky = ky0; ky < ky1; ky++)
        for (int64_t kx = kx0; kx < kx1; kx++)
          acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dw->w + (ky * dw->kw + kx) * C + c0),
                                _mm512_maskz_loadu_ps(m, xr + ky * x->rs + (ix0 + kx) * x->ps + c0), acc);
      _mm512_mask_storeu_ps(yr + ox * y->ps + c0, m, clamp512(acc, j, lo, hi));
    }
  }
}

/* 3 x 3: the weights in registers; stride 1 slides a window of three
 * accumulators along the row so that each input vector is loaded once per
 * kernel row. Border columns (and rows, by the valid range) skip their
 * missing taps; the taps that remain are added in (ky, kx) order. */
A512 static void row512_3x3(const dwjob *j, int64_t b, int64_t oy) {
  const mm_dwconv_nhwc *dw = j->dw;
  const mm_view *x = j->x, *y = j->y;
  int64_t C = dw->c, ky0, ky1, W = y->w, sw = dw->sw;
  const float *xr;
  float *yr;
  row_at(j, b, oy, &ky0, &ky1, &xr, &yr);
  __m512 lo = _mm512_set1_ps(dw->lo), hi = _mm512_set1_ps(dw->hi);
  /* outputs whose window lies inside the input's columns: [oxa, oxb) */
  int64_t oxa = (dw->pl + sw - 1) / sw, oxb = (x->w - 3 + dw->pl) / sw + 1;
  if (x->w - 3 + dw->pl < 0) oxb = 0;
  if (oxb > W) oxb = W;
  if (oxa > oxb) oxa = oxb;
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    __mmask16 m = C - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c0)) - 1u);
    __m512 bv = dw->bias ? _mm512_maskz_loadu_ps(m, dw->bias + c0) : _mm512_setzero_ps();
    __m512 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_maskz_loadu_ps(m, dw->w + t * C + c0);
    /* border outputs: the general way */
    for (int64_t ox = 0; ox < W; ox++) {
      if (ox == oxa) ox = oxb;
      if (ox >= W) break;
      int64_t ix0 = ox * sw - dw->pl, kx0, kx1;
      valid(ix0, 3, x->w, &kx0, &kx1);
      __m512 acc = bv;
      for (int64_t ky = ky0; ky < ky1; ky++)
        for (int64_t kx = kx0; kx < kx1; kx++)
          acc = _mm512_fmadd_ps(wv[ky * 3 + kx], _mm512_maskz_loadu_ps(m, xr + ky * x->rs + (ix0 + kx) * x->ps + c0),
                                acc);
      _mm512_mask_storeu_ps(yr + ox * y->ps + c0, m, clamp512(acc, j, lo, hi));
    }
    if (oxa >= oxb) continue;
    if (ky1 - ky0 == 3 && sw == 1) {
      /* interior, stride 1: acc[ox] gets x[ox + kx] * w[ky][kx]; 4 outputs
       * at a time, each input vector of a kernel row loaded once */
      const int64_t ps = x->ps;
      int64_t ox = oxa;
      for (; ox + 4 <= oxb; ox += 4) {
        __m512 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
        const float *xp = xr + (ox - dw->pl) * ps + c0;
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++, xp += x->rs) {
          __m512 v0 = _mm512_maskz_loadu_ps(m, xp), v1 = _mm512_maskz_loadu_ps(m, xp + ps),
                 v2 = _mm512_maskz_loadu_ps(m, xp + 2 * ps), v3 = _mm512_maskz_loadu_ps(m, xp + 3 * ps),
                 v4 = _mm512_maskz_loadu_ps(m, xp + 4 * ps), v5 = _mm512_maskz_loadu_ps(m, xp + 5 * ps);
          __m512 w0 = wv[3 * ky], w1 = wv[3 * ky + 1], w2 = wv[3 * ky + 2];
          a0 = _mm512_fmadd_ps(w0, v0, a0);
          a1 = _mm512_fmadd_ps(w0, v1, a1);
          a2 = _mm512_fmadd_ps(w0, v2, a2);
          a3 = _mm512_fmadd_ps(w0, v3, a3);
          a0 = _mm512_fmadd_ps(w1, v1, a0);
          a1 = _mm512_fmadd_ps(w1, v2, a1);
          a2 = _mm512_fmadd_ps(w1, v3, a2);
          a3 = _mm512_fmadd_ps(w1, v4, a3);
          a0 = _mm512_fmadd_ps(w2, v2, a0);
          a1 = _mm512_fmadd_ps(w2, v3, a1);
          a2 = _mm512_fmadd_ps(w2, v4, a2);
          a3 = _mm512_fmadd_ps(w2, v5, a3);
        }
        float *o = yr + ox * y->ps + c0;
        _mm512_mask_storeu_ps(o, m, clamp512(a0, j, lo, hi));
        _mm512_mask_storeu_ps(o + y->ps, m, clamp512(a1, j, lo, hi));
        _mm512_mask_storeu_ps(o + 2 * y->ps, m, clamp512(a2, j, lo, hi));
        _mm512_mask_storeu_ps(o + 3 * y->ps, m, clamp512(a3, j, lo, hi));
      }
      for (; ox < oxb; ox++) {
        __m512 acc = bv;
        const float *xp = xr + (ox - dw->pl) * ps + c0;
        for (int ky = 0; ky < 3; ky++, xp += x->rs)
          for (int kx = 0; kx < 3; kx++) acc = _mm512_fmadd_ps(wv[ky * 3 + kx], _mm512_maskz_loadu_ps(m, xp + kx * ps), acc);
        _mm512_mask_storeu_ps(yr + ox * y->ps + c0, m, clamp512(acc, j, lo, hi));
      }
    } else {
      for (int64_t ox = oxa; ox < oxb; ox++) {
        int64_t ix0 = ox * sw - dw->pl;
        __m512 acc = bv;
        for (int64_t ky = ky0; ky < ky1; ky++) {
          const float *xp = xr + ky * x->rs + ix0 * x->ps + c0;
          acc = _mm512_fmadd_ps(wv[ky * 3], _mm512_maskz_loadu_ps(m, xp), acc);
          acc = _mm512_fmadd_ps(wv[ky * 3 + 1], _mm512_maskz_loadu_ps(m, xp + x->ps), acc);
          acc = _mm512_fmadd_ps(wv[ky * 3 + 2], _mm512_maskz_loadu_ps(m, xp + 2 * x->ps), acc);
        }
        _mm512_mask_storeu_ps(yr + ox * y->ps + c0, m, clamp512(acc, j, lo, hi));
      }
    }
  }
}
#endif

static void dw_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  const dwjob *j = ctx;
  int isa = mm_isa();
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = r / j->y->h, oy = r - b * j->y->h;
#ifdef MM_DW_X86
    if (isa == MM_ISA_AVX512) {
      if (j->dw->kh == 3 && j->dw->kw == 3)
        row512_3x3(j, b, oy);
      else
        row512(j, b, oy);
      continue;
    }
    if (isa == MM_ISA_AVX2) {
      row_avx2(j, b, oy);
      continue;
    }
#endif
    (void)isa;
    row_c(j, b, oy);
  }
}

void mm_dwconv_nhwc_forward(const mm_dwconv_nhwc *dw, const mm_view *x, const mm_view *y) {
  dwjob j = {dw, x, y, dw->lo > -INFINITY, dw->hi < INFINITY};
  mm_parallel_for(y->n * y->h, dw_rows, &j);
}
