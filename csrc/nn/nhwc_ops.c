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

/* the address of pixel (b, y, x) of v */
static inline float *at(const mm_view *v, int64_t b, int64_t y, int64_t x) {
  return v->p + b * v->is + y * v->rs + x * v->ps;
}

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
    int64_t iy = oy - j->pt;
    for (int64_t ox = 0; ox < y->w; ox++) {
      int64_t ix = ox - j->pl;
      float *o = at(y, b, oy, ox);
      if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
        memset(o, 0, (size_t)y->c * sizeof(float));
      else
        memcpy(o, at(x, b, iy, ix), (size_t)y->c * sizeof(float));
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
      const float *a = at(x, b, oy, ox);
      float *o = at(y, b, oy, ox);
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
      float *o = at(y, b, oy, ox);
      const float *a = at(&j->xs[0], b, oy, ox);
      if (o != a) memmove(o, a, (size_t)y->c * sizeof(float));
      for (int i = 1; i < j->k; i++) {
        const float *s = at(&j->xs[i], b, oy, ox);
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

/* the rows [*a, *b) of the input that output row o's window covers (clipped) */
static inline void span(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t n, int64_t *a, int64_t *b) {
  *a = o * stride - pad;
  *b = *a + k;
  if (*a < 0) *a = 0;
  if (*b > n) *b = n;
}

/* pools: the window of output (oy, ox) clipped to the input, the window's
 * pixels in (iy, ix) order; an empty window (only padding) gives 0, as
 * TensorFlow's average does. One output pixel, 64 channels at a time: */
typedef void (*pool_fn)(const mm_view *x, const float *x0, int64_t iy0, int64_t iy1, int64_t ix0, int64_t ix1,
                        int64_t c, float *o, int avg);

/* ... summed (or maxed) in a local block the compiler keeps in registers */
#define PB 64
BODY pool_pixel(const mm_view *x, const float *x0, int64_t iy0, int64_t iy1, int64_t ix0, int64_t ix1, int64_t C,
                float *o, int avg) {
  float inv = 1.0f / (float)((iy1 - iy0) * (ix1 - ix0));
  for (int64_t c0 = 0; c0 < C; c0 += PB) {
    int64_t nc = C - c0 < PB ? C - c0 : PB;
    float acc[PB];
    const float *f = x0 + iy0 * x->rs + ix0 * x->ps + c0;
    for (int64_t c = 0; c < PB; c++) acc[c] = c < nc ? f[c] : 0.0f;
    for (int64_t iy = iy0; iy < iy1; iy++)
      for (int64_t ix = iy == iy0 ? ix0 + 1 : ix0; ix < ix1; ix++) {
        const float *sp = x0 + iy * x->rs + ix * x->ps + c0;
        if (avg)
          for (int64_t c = 0; c < nc; c++) acc[c] += sp[c];
        else
          for (int64_t c = 0; c < nc; c++) acc[c] = sp[c] > acc[c] ? sp[c] : acc[c];
      }
    for (int64_t c = 0; c < nc; c++) o[c0 + c] = avg ? acc[c] * inv : acc[c];
  }
}

static void pool_pixel_c(const mm_view *x, const float *x0, int64_t iy0, int64_t iy1, int64_t ix0, int64_t ix1,
                         int64_t C, float *o, int avg) {
  pool_pixel(x, x0, iy0, iy1, ix0, ix1, C, o, avg);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void pool_pixel_avx2(const mm_view *x, const float *x0, int64_t iy0,
                                                             int64_t iy1, int64_t ix0, int64_t ix1, int64_t C,
                                                             float *o, int avg) {
  pool_pixel(x, x0, iy0, iy1, ix0, ix1, C, o, avg);
}

/* ... AVX-512: the block in four zmm registers (the same adds / maxes in
 * the same order as pool_pixel) */
__attribute__((target("avx512f"))) static void pool_pixel_avx512(const mm_view *x, const float *x0, int64_t iy0,
                                                                  int64_t iy1, int64_t ix0, int64_t ix1, int64_t C,
                                                                  float *o, int avg) {
  __m512 inv = _mm512_set1_ps(1.0f / (float)((iy1 - iy0) * (ix1 - ix0)));
  for (int64_t c0 = 0; c0 < C; c0 += PB) {
    __mmask16 m[4];
    for (int q = 0; q < 4; q++) {
      int64_t n = C - c0 - 16 * q;
      m[q] = n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
    }
    const float *f = x0 + iy0 * x->rs + ix0 * x->ps + c0;
    __m512 a[4];
    for (int q = 0; q < 4; q++) a[q] = _mm512_maskz_loadu_ps(m[q], f + 16 * q);
    for (int64_t iy = iy0; iy < iy1; iy++)
      for (int64_t ix = iy == iy0 ? ix0 + 1 : ix0; ix < ix1; ix++) {
        const float *sp = x0 + iy * x->rs + ix * x->ps + c0;
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
          __m512 v = _mm512_maskz_loadu_ps(m[q], sp + 16 * q);
          /* max: v where v > a, as pool_pixel takes it */
          a[q] = avg ? _mm512_add_ps(a[q], v) : _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, a[q], _CMP_GT_OQ), a[q], v);
        }
      }
    for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(o + c0 + 16 * q, m[q], avg ? _mm512_mul_ps(a[q], inv) : a[q]);
  }
}
#endif

static void pool_rows(const opjob *j, int64_t r0, int64_t r1, int avg) {
  pool_fn px = pool_pixel_c;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  int l = mm_isa();
  px = l == MM_ISA_AVX512 ? pool_pixel_avx512 : l == MM_ISA_AVX2 ? pool_pixel_avx2 : pool_pixel_c;
#endif
  const mm_view *x = j->x, *y = j->y;
  for (int64_t r = r0; r < r1; r++) {
    ROW(y, r, b, oy);
    int64_t iy0, iy1, ix0, ix1;
    span(oy, j->sh, j->pt, j->kh, x->h, &iy0, &iy1);
    for (int64_t ox = 0; ox < y->w; ox++) {
      span(ox, j->sw, j->pl, j->kw, x->w, &ix0, &ix1);
      float *o = at(y, b, oy, ox);
      if (iy1 <= iy0 || ix1 <= ix0)
        memset(o, 0, (size_t)y->c * sizeof(float));
      else
        px(x, x->p + b * x->is, iy0, iy1, ix0, ix1, y->c, o, avg);
    }
  }
}

static void maxpool_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  pool_rows(ctx, r0, r1, 0);
}

static void avgpool_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
  pool_rows(ctx, r0, r1, 1);
}

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
      const float *a = at(x, b, oy, ox);
      float *o = at(y, b, oy, ox);
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
