/* nhwc_ops.c - the memory-bound layers on NHWC views (see nhwc.h): padding,
 * copies, per-channel affine maps, sums, pooling, softmax and the layout
 * change from planar images.
 *
 * Each runs over rows of its output split across mm_parallel_for's threads;
 * the inner loops run along the channels of a pixel (contiguous), which the
 * compiler vectorises: each loop body is compiled three times, for the
 * instruction-set levels of core/cpu.h (portable, AVX2, AVX-512), and the
 * level in use picks one; the three do the same float operations in the same
 * order (adds, multiplies, comparisons: no fused multiply-add), so they give
 * the same bits. Each output is computed the same way whatever the thread
 * count. */
#include "nhwc.h"

#include "../core/cpu.h"
#include "../core/parallel.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

mm_view mm_view_dense(float *p, int64_t n, int64_t h, int64_t w, int64_t c) {
  mm_view v = {p, n, h, w, c, c, w * c, h * w * c};
  return v;
}

typedef struct {
  const mm_view *x, *y;
  const mm_view *xs; /* add: k inputs */
  int k;
  int64_t kh, kw, sh, sw, pt, pl;
  const float *scale, *shift;
  float lo, hi;
  int clo, chi;
  const float *src; /* from_nchw */
} opjob;

static inline float clampf(float v, const opjob *j) {
  if (j->clo && !(v >= j->lo)) v = j->lo;
  if (j->chi && v > j->hi) v = j->hi;
  return v;
}

/* fn_c, fn_avx2, fn_avx512: the body fn (always inline) compiled per level,
 * and fn_rows, the mm_parallel_for range function that calls the one in use */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PER_ISA(fn)                                                                                                    \
  static void fn##_c(void *ctx, int64_t r0, int64_t r1) { fn(ctx, r0, r1); }                                           \
  __attribute__((target("avx2"))) static void fn##_avx2(void *ctx, int64_t r0, int64_t r1) { fn(ctx, r0, r1); }       \
  __attribute__((target("avx512f,prefer-vector-width=512"))) static void fn##_avx512(void *ctx, int64_t r0, int64_t r1) { fn(ctx, r0, r1); }  \
  static void fn##_rows(void *ctx, int64_t r0, int64_t r1, int tid) {                                                  \
    (void)tid;                                                                                                         \
    int l = mm_isa();                                                                                                  \
    if (l == MM_ISA_AVX512)                                                                                            \
      fn##_avx512(ctx, r0, r1);                                                                                        \
    else if (l == MM_ISA_AVX2)                                                                                         \
      fn##_avx2(ctx, r0, r1);                                                                                          \
    else                                                                                                               \
      fn##_c(ctx, r0, r1);                                                                                             \
  }
#else
#define PER_ISA(fn)                                                                                                    \
  static void fn##_rows(void *ctx, int64_t r0, int64_t r1, int tid) {                                                  \
    (void)tid;                                                                                                         \
    fn(ctx, r0, r1);                                                                                                   \
  }
#endif
#define BODY __attribute__((always_inline)) static inline void

/* row r of the output: image b, row y */
#define ROW(v, r, b, y)                                                                                                \
  int64_t b = (r) / (v)->h, y = (r) - b * (v)->h;                                                                      \
  (void)b;                                                                                                             \
  (void)y

BODY pad(void *ctx, int64_t r0, int64_t r1) {
  const opjob *j = ctx;
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    float *yr = y->p + b * y->is + oy * y->rs;
    int64_t iy = oy - j->pt;
    for (int64_t ox = 0; ox < y->w; ox++) {
      int64_t ix = ox - j->pl;
      float *o = yr + ox * y->ps;
      if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
        memset(o, 0, (size_t)y->c * sizeof(float));
      else
        memcpy(o, x->p + b * x->is + iy * x->rs + ix * x->ps, (size_t)y->c * sizeof(float));
    }
  }
}

PER_ISA(pad)

void mm_nhwc_pad(const mm_view *x, int64_t pt, int64_t pl, const mm_view *y) {
  opjob j = {.x = x, .y = y, .pt = pt, .pl = pl};
  mm_parallel_for(y->n * y->h, pad_rows, &j);
}

void mm_nhwc_copy(const mm_view *x, const mm_view *y) {
  opjob j = {.x = x, .y = y};
  mm_parallel_for(y->n * y->h, pad_rows, &j);
}

BODY affine(void *ctx, int64_t r0, int64_t r1) {
  const opjob *j = ctx;
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    for (int64_t ox = 0; ox < y->w; ox++) {
      const float *a = x->p + b * x->is + oy * x->rs + ox * x->ps;
      float *o = y->p + b * y->is + oy * y->rs + ox * y->ps;
      for (int64_t c = 0; c < y->c; c++) {
        float v = a[c];
        if (j->scale) v *= j->scale[c];
        if (j->shift) v += j->shift[c];
        o[c] = clampf(v, j);
      }
    }
  }
}

PER_ISA(affine)

void mm_nhwc_affine(const mm_view *x, const float *scale, const float *shift, float lo, float hi, const mm_view *y) {
  opjob j = {.x = x, .y = y, .scale = scale, .shift = shift, .lo = lo, .hi = hi, .clo = lo > -INFINITY, .chi = hi < INFINITY};
  mm_parallel_for(y->n * y->h, affine_rows, &j);
}

BODY add(void *ctx, int64_t r0, int64_t r1) {
  const opjob *j = ctx;
  const mm_view *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    for (int64_t ox = 0; ox < y->w; ox++) {
      float *o = y->p + b * y->is + oy * y->rs + ox * y->ps;
      const mm_view *x0 = &j->xs[0];
      const float *a = x0->p + b * x0->is + oy * x0->rs + ox * x0->ps;
      if (o != a) memmove(o, a, (size_t)y->c * sizeof(float));
      for (int i = 1; i < j->k; i++) {
        const mm_view *xi = &j->xs[i];
        const float *s = xi->p + b * xi->is + oy * xi->rs + ox * xi->ps;
        for (int64_t c = 0; c < y->c; c++) o[c] += s[c];
      }
      if (j->clo || j->chi)
        for (int64_t c = 0; c < y->c; c++) o[c] = clampf(o[c], j);
    }
  }
}

PER_ISA(add)

void mm_nhwc_add(int k, const mm_view *xs, float lo, float hi, const mm_view *y) {
  opjob j = {.xs = xs, .k = k, .y = y, .lo = lo, .hi = hi, .clo = lo > -INFINITY, .chi = hi < INFINITY};
  mm_parallel_for(y->n * y->h, add_rows, &j);
}

/* pools: the window of output (oy, ox) clipped to the input; 64 channels at
 * a time summed (or maxed) in a local block the compiler keeps in registers,
 * the window's pixels in (iy, ix) order */
#define PB 64
BODY pool_rows(void *ctx, int64_t r0, int64_t r1, int avg) {
  const opjob *j = ctx;
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    int64_t iy0 = oy * j->sh - j->pt, iy1 = iy0 + j->kh;
    if (iy0 < 0) iy0 = 0;
    if (iy1 > x->h) iy1 = x->h;
    for (int64_t ox = 0; ox < y->w; ox++) {
      int64_t ix0 = ox * j->sw - j->pl, ix1 = ix0 + j->kw;
      if (ix0 < 0) ix0 = 0;
      if (ix1 > x->w) ix1 = x->w;
      float *o = y->p + b * y->is + oy * y->rs + ox * y->ps;
      const float *x0 = x->p + b * x->is;
      if (iy1 <= iy0 || ix1 <= ix0) { /* an empty window (only padding): 0, as TensorFlow gives for an average */
        memset(o, 0, (size_t)y->c * sizeof(float));
        continue;
      }
      float inv = 1.0f / (float)((iy1 - iy0) * (ix1 - ix0));
      for (int64_t c0 = 0; c0 < y->c; c0 += PB) {
        int64_t nc = y->c - c0 < PB ? y->c - c0 : PB;
        float acc[PB];
        const float *f = x0 + iy0 * x->rs + ix0 * x->ps + c0;
        for (int64_t c = 0; c < PB; c++) acc[c] = c < nc ? f[c] : 0.0f;
        for (int64_t iy = iy0; iy < iy1; iy++)
          for (int64_t ix = iy == iy0 ? ix0 + 1 : ix0; ix < ix1; ix++) {
            const float *sp = x0 + iy * x->rs + ix * x->ps + c0;
            if (nc == PB) {
              if (avg)
                for (int64_t c = 0; c < PB; c++) acc[c] += sp[c];
              else
                for (int64_t c = 0; c < PB; c++) acc[c] = sp[c] > acc[c] ? sp[c] : acc[c];
            } else {
              if (avg)
                for (int64_t c = 0; c < nc; c++) acc[c] += sp[c];
              else
                for (int64_t c = 0; c < nc; c++) acc[c] = sp[c] > acc[c] ? sp[c] : acc[c];
            }
          }
        if (avg)
          for (int64_t c = 0; c < nc; c++) o[c0 + c] = acc[c] * inv;
        else
          for (int64_t c = 0; c < nc; c++) o[c0 + c] = acc[c];
      }
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* AVX-512: the 64-channel block in four zmm registers through the window
 * (the same adds / maxes in the same order as pool_rows) */
__attribute__((target("avx512f"))) static void pool512(const opjob *j, int64_t r0, int64_t r1, int avg) {
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    int64_t iy0 = oy * j->sh - j->pt, iy1 = iy0 + j->kh;
    if (iy0 < 0) iy0 = 0;
    if (iy1 > x->h) iy1 = x->h;
    for (int64_t ox = 0; ox < y->w; ox++) {
      int64_t ix0 = ox * j->sw - j->pl, ix1 = ix0 + j->kw;
      if (ix0 < 0) ix0 = 0;
      if (ix1 > x->w) ix1 = x->w;
      float *o = y->p + b * y->is + oy * y->rs + ox * y->ps;
      const float *x0 = x->p + b * x->is;
      if (iy1 <= iy0 || ix1 <= ix0) {
        memset(o, 0, (size_t)y->c * sizeof(float));
        continue;
      }
      __m512 inv = _mm512_set1_ps(1.0f / (float)((iy1 - iy0) * (ix1 - ix0)));
      for (int64_t c0 = 0; c0 < y->c; c0 += PB) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++) {
          int64_t n = y->c - c0 - 16 * q;
          m[q] = n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
        }
        const float *f = x0 + iy0 * x->rs + ix0 * x->ps + c0;
        __m512 a0 = _mm512_maskz_loadu_ps(m[0], f), a1 = _mm512_maskz_loadu_ps(m[1], f + 16),
               a2 = _mm512_maskz_loadu_ps(m[2], f + 32), a3 = _mm512_maskz_loadu_ps(m[3], f + 48);
        for (int64_t iy = iy0; iy < iy1; iy++)
          for (int64_t ix = iy == iy0 ? ix0 + 1 : ix0; ix < ix1; ix++) {
            const float *sp = x0 + iy * x->rs + ix * x->ps + c0;
            __m512 s0 = _mm512_maskz_loadu_ps(m[0], sp), s1 = _mm512_maskz_loadu_ps(m[1], sp + 16),
                   s2 = _mm512_maskz_loadu_ps(m[2], sp + 32), s3 = _mm512_maskz_loadu_ps(m[3], sp + 48);
            if (avg) {
              a0 = _mm512_add_ps(a0, s0), a1 = _mm512_add_ps(a1, s1), a2 = _mm512_add_ps(a2, s2),
              a3 = _mm512_add_ps(a3, s3);
            } else { /* max(s, a): s when s > a, as pool_rows takes it */
              a0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s0, a0, _CMP_GT_OQ), a0, s0);
              a1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s1, a1, _CMP_GT_OQ), a1, s1);
              a2 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s2, a2, _CMP_GT_OQ), a2, s2);
              a3 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(s3, a3, _CMP_GT_OQ), a3, s3);
            }
          }
        if (avg) a0 = _mm512_mul_ps(a0, inv), a1 = _mm512_mul_ps(a1, inv), a2 = _mm512_mul_ps(a2, inv), a3 = _mm512_mul_ps(a3, inv);
        _mm512_mask_storeu_ps(o + c0, m[0], a0);
        _mm512_mask_storeu_ps(o + c0 + 16, m[1], a1);
        _mm512_mask_storeu_ps(o + c0 + 32, m[2], a2);
        _mm512_mask_storeu_ps(o + c0 + 48, m[3], a3);
      }
    }
  }
}
#endif

BODY maxpool(void *ctx, int64_t r0, int64_t r1) { pool_rows(ctx, r0, r1, 0); }
BODY avgpool(void *ctx, int64_t r0, int64_t r1) { pool_rows(ctx, r0, r1, 1); }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* maxpool_rows / avgpool_rows: pool512 with AVX-512, else the compiled loops */
static void maxpool_c(void *ctx, int64_t r0, int64_t r1) { maxpool(ctx, r0, r1); }
__attribute__((target("avx2"))) static void maxpool_avx2(void *ctx, int64_t r0, int64_t r1) { maxpool(ctx, r0, r1); }
static void avgpool_c(void *ctx, int64_t r0, int64_t r1) { avgpool(ctx, r0, r1); }
__attribute__((target("avx2"))) static void avgpool_avx2(void *ctx, int64_t r0, int64_t r1) { avgpool(ctx, r0, r1); }
static void pool_dispatch(void *ctx, int64_t r0, int64_t r1, int avg) {
  int l = mm_isa();
  if (l == MM_ISA_AVX512)
    pool512(ctx, r0, r1, avg);
  else if (l == MM_ISA_AVX2)
    (avg ? avgpool_avx2 : maxpool_avx2)(ctx, r0, r1);
  else
    (avg ? avgpool_c : maxpool_c)(ctx, r0, r1);
}
static void maxpool_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  pool_dispatch(ctx, r0, r1, 0);
}
static void avgpool_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  pool_dispatch(ctx, r0, r1, 1);
}
#else
PER_ISA(maxpool)
PER_ISA(avgpool)
#endif

void mm_nhwc_maxpool(const mm_view *x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                     const mm_view *y) {
  opjob j = {.x = x, .y = y, .kh = kh, .kw = kw, .sh = sh, .sw = sw, .pt = pt, .pl = pl};
  mm_parallel_for(y->n * y->h, maxpool_rows, &j);
}

void mm_nhwc_avgpool(const mm_view *x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                     const mm_view *y) {
  opjob j = {.x = x, .y = y, .kh = kh, .kw = kw, .sh = sh, .sw = sw, .pt = pt, .pl = pl};
  mm_parallel_for(y->n * y->h, avgpool_rows, &j);
}

BODY gap(void *ctx, int64_t b0, int64_t b1) {
  const opjob *j = ctx;
  const mm_view *x = j->x, *y = j->y;
  for (int64_t b = b0; b < b1; b++) {
    float *o = y->p + b * y->is;
    memset(o, 0, (size_t)y->c * sizeof(float));
    for (int64_t iy = 0; iy < x->h; iy++)
      for (int64_t ix = 0; ix < x->w; ix++) {
        const float *s = x->p + b * x->is + iy * x->rs + ix * x->ps;
        for (int64_t c = 0; c < y->c; c++) o[c] += s[c];
      }
    float inv = 1.0f / (float)(x->h * x->w);
    for (int64_t c = 0; c < y->c; c++) o[c] *= inv;
  }
}

PER_ISA(gap)

void mm_nhwc_global_avgpool(const mm_view *x, const mm_view *y) {
  opjob j = {.x = x, .y = y};
  mm_parallel_for(y->n, gap_rows, &j);
}

static void softmax_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  const opjob *j = ctx;
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    for (int64_t ox = 0; ox < y->w; ox++) {
      const float *a = x->p + b * x->is + oy * x->rs + ox * x->ps;
      float *o = y->p + b * y->is + oy * y->rs + ox * y->ps;
      float mx = a[0];
      for (int64_t c = 1; c < y->c; c++) mx = a[c] > mx ? a[c] : mx;
      double s = 0.0;
      for (int64_t c = 0; c < y->c; c++) {
        o[c] = expf(a[c] - mx);
        s += o[c];
      }
      float inv = (float)(1.0 / s);
      for (int64_t c = 0; c < y->c; c++) o[c] *= inv;
    }
  }
}

void mm_nhwc_softmax(const mm_view *x, const mm_view *y) {
  opjob j = {.x = x, .y = y};
  mm_parallel_for(y->n * y->h, softmax_rows, &j);
}

BODY nchw(void *ctx, int64_t r0, int64_t r1) {
  const opjob *j = ctx;
  const mm_view *y = j->y;
  int64_t C = y->c, H = y->h, W = y->w;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, iy);
    float *yr = y->p + b * y->is + iy * y->rs;
    for (int64_t c = 0; c < C; c++) {
      const float *s = j->src + ((b * C + c) * H + iy) * W;
      for (int64_t ix = 0; ix < W; ix++) yr[ix * y->ps + c] = s[ix];
    }
  }
}

PER_ISA(nchw)

void mm_nhwc_from_nchw(const float *x, const mm_view *y) {
  opjob j = {.y = y, .src = x};
  mm_parallel_for(y->n * y->h, nchw_rows, &j);
}
