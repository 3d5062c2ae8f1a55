/* nhwc_ops.c - the memory-bound layers on NHWC views (see nhwc.h): padding,
 * copies, per-channel affine maps, sums, pooling, softmax and the layout
 * change from planar images.
 *
 * Each runs over rows of its output split across mm_parallel_for's threads;
 * the inner loops run along the channels of a pixel (contiguous), which the
 * compiler vectorises. Each output is computed the same way whatever the
 * thread count. */
#include "nhwc.h"

#include "../core/parallel.h"

#include <math.h>
#include <string.h>

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

/* row r of the output: image b, row y */
#define ROW(v, r, b, y)                                                                                                \
  int64_t b = (r) / (v)->h, y = (r) - b * (v)->h;                                                                      \
  (void)b;                                                                                                             \
  (void)y

static void pad_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
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

void mm_nhwc_pad(const mm_view *x, int64_t pt, int64_t pl, const mm_view *y) {
  opjob j = {.x = x, .y = y, .pt = pt, .pl = pl};
  mm_parallel_for(y->n * y->h, pad_rows, &j);
}

void mm_nhwc_copy(const mm_view *x, const mm_view *y) {
  opjob j = {.x = x, .y = y};
  mm_parallel_for(y->n * y->h, pad_rows, &j);
}

static void affine_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
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

void mm_nhwc_affine(const mm_view *x, const float *scale, const float *shift, float lo, float hi, const mm_view *y) {
  opjob j = {.x = x, .y = y, .scale = scale, .shift = shift, .lo = lo, .hi = hi, .clo = lo > -INFINITY, .chi = hi < INFINITY};
  mm_parallel_for(y->n * y->h, affine_rows, &j);
}

static void add_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
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

void mm_nhwc_add(int k, const mm_view *xs, float lo, float hi, const mm_view *y) {
  opjob j = {.xs = xs, .k = k, .y = y, .lo = lo, .hi = hi, .clo = lo > -INFINITY, .chi = hi < INFINITY};
  mm_parallel_for(y->n * y->h, add_rows, &j);
}

/* pools: the window of output (oy, ox) clipped to the input */
static void pool_rows(void *ctx, int64_t r0, int64_t r1, int avg) {
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
      int first = 1;
      for (int64_t iy = iy0; iy < iy1; iy++)
        for (int64_t ix = ix0; ix < ix1; ix++) {
          const float *s = x->p + b * x->is + iy * x->rs + ix * x->ps;
          if (first)
            memcpy(o, s, (size_t)y->c * sizeof(float));
          else if (avg)
            for (int64_t c = 0; c < y->c; c++) o[c] += s[c];
          else
            for (int64_t c = 0; c < y->c; c++) o[c] = s[c] > o[c] ? s[c] : o[c];
          first = 0;
        }
      if (first) { /* an empty window (only padding): 0, as TensorFlow gives for an average */
        memset(o, 0, (size_t)y->c * sizeof(float));
      } else if (avg) {
        float inv = 1.0f / (float)((iy1 - iy0) * (ix1 - ix0));
        for (int64_t c = 0; c < y->c; c++) o[c] *= inv;
      }
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

static void gap_images(void *ctx, int64_t b0, int64_t b1, int tid) {
  (void)tid;
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

void mm_nhwc_global_avgpool(const mm_view *x, const mm_view *y) {
  opjob j = {.x = x, .y = y};
  mm_parallel_for(y->n, gap_images, &j);
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

static void nchw_rows(void *ctx, int64_t r0, int64_t r1, int tid) {
  (void)tid;
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

void mm_nhwc_from_nchw(const float *x, const mm_view *y) {
  opjob j = {.y = y, .src = x};
  mm_parallel_for(y->n * y->h, nchw_rows, &j);
}
