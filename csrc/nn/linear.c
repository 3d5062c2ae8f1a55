/* linear.c - fully connected layer, PyTorch layout: y = x . w^T + b. */
#include <string.h>

#include "../core/gemm.h"
#include "../core/parallel.h"
#include "linear.h"

/* y^T = W x^T block by block, then y = b + (y^T)^T. The sgemm kernels pack
 * their B operand: in y = x W^T that is W (out x in, all of it, every call),
 * here only the n x in rows of x. Used when out >= 2n (a small batch through
 * a wide layer, e.g. 32 rows of 512 features projected to 128, where packing
 * W would cost more than the product). The tile lives on the stack (no
 * allocation in kernels). */
#define LIN_TILE 4096
/* samples per block, and rows of w per block for them */
static int64_t lin_nb(int64_t n) { return n < 64 ? n : 64; }
static int64_t lin_ob(int64_t n) { return LIN_TILE / lin_nb(n); }

static void linear_forward_t(const float *x, const float *w, const float *b, float *y, int64_t ldy, int64_t n,
                             int64_t in, int64_t out) {
  float t[LIN_TILE];
  int64_t nb = lin_nb(n), ob = lin_ob(n);
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    int64_t ni = n - i0 < nb ? n - i0 : nb;
    for (int64_t o0 = 0; o0 < out; o0 += ob) {
      int64_t no = out - o0 < ob ? out - o0 : ob;
      mm_sgemm(0, 1, no, ni, in, 1.0f, w + o0 * in, in, x + i0 * in, in, 0.0f, t, ni);
      for (int64_t i = 0; i < ni; i++) {
        float *yr = y + (i0 + i) * ldy + o0;
        for (int64_t o = 0; o < no; o++) yr[o] = (b ? b[o0 + o] : 0.0f) + t[o * ni + i];
      }
    }
  }
}

/* Over threads, a layer splits its output rows (rows of w) in units of
 * LIN_ROWS: a thread keeps the same rows of w, of its gradient and of the
 * optimiser state from step to step (mm_optim_fused_mt splits the same way
 * for 512 inputs), so they stay in that core's cache. Every output element is
 * the same sum as unsplit: the weight gradient's products (A transposed) sum
 * each element alike whatever the row count (gemm.c), the forward checks its
 * blocks (fwd_split_ok). From about 1M multiply-adds. */
#define LIN_ROWS 8
typedef struct {
  const float *x, *w, *b;
  float *y;
  const float *gy;
  int64_t n, in, out;
} lin_job;

/* units of LIN_ROWS rows for out rows, and the rows [*o0, *o1) of units [u0, u1):
 * the one definition of which rows a thread owns */
static int64_t row_units(int64_t out) { return (out + LIN_ROWS - 1) / LIN_ROWS; }
static void unit_rows(int64_t u0, int64_t u1, int64_t out, int64_t *o0, int64_t *o1) {
  *o0 = u0 * LIN_ROWS;
  *o1 = u1 * LIN_ROWS < out ? u1 * LIN_ROWS : out;
}

static int split_rows(int64_t n, int64_t in, int64_t out, int64_t units) {
  return (double)n * (double)in * (double)out >= 1048576.0 && mm_parallel_threads(units) > 1;
}

/* linear_forward_t runs rows in blocks of ob; mm_sgemm takes a block of
 * fewer than 32 rows to its dot-product path, which sums in another order
 * than the tiles. The forward splits only when no block, split or not, is
 * that short: then every element is the same sum. */
static int tile_blocks(int64_t rows, int64_t ob) { return rows % ob == 0 || rows % ob >= 32; }
static int fwd_split_ok(int64_t n, int64_t out, int64_t units) {
  int64_t ob = lin_ob(n);
  if (!tile_blocks(out, ob)) return 0;
  int nt = mm_parallel_threads(units);
  for (int t = 0; t < nt; t++) {
    int64_t o0, o1;
    unit_rows(units * t / nt, units * (t + 1) / nt, out, &o0, &o1);
    if (!tile_blocks(o1 - o0, ob)) return 0;
  }
  return 1;
}

static void fwd_rows(void *ctx, int64_t u0, int64_t u1, int tid) {
  const lin_job *j = ctx;
  (void)tid;
  int64_t o0, o1;
  unit_rows(u0, u1, j->out, &o0, &o1);
  linear_forward_t(j->x, j->w + o0 * j->in, j->b ? j->b + o0 : NULL, j->y + o0, j->out, j->n, j->in, o1 - o0);
}

/* gw[o0:o1] += gy[:, o0:o1]^T x */
static void gw_rows(void *ctx, int64_t u0, int64_t u1, int tid) {
  const lin_job *j = ctx;
  (void)tid;
  int64_t o0, o1;
  unit_rows(u0, u1, j->out, &o0, &o1);
  mm_sgemm(1, 0, o1 - o0, j->in, j->n, 1.0f, j->gy + o0, j->out, j->x, j->in, 1.0f, j->y + o0 * j->in, j->in);
}

void mm_linear_forward(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                       int64_t out) {
  if (n <= 0 || out <= 0) return;
  if (in > 0 && out >= 2 * n) {
    lin_job j = {x, w, b, y, NULL, n, in, out};
    int64_t units = row_units(out);
    if (split_rows(n, in, out, units) && fwd_split_ok(n, out, units))
      mm_parallel_for(units, fwd_rows, &j);
    else
      linear_forward_t(x, w, b, y, out, n, in, out);
    return;
  }
  if (b) {
    for (int64_t i = 0; i < n; i++) memcpy(y + i * out, b, (size_t)out * sizeof(float));
  } else {
    memset(y, 0, (size_t)(n * out) * sizeof(float));
  }
  if (in <= 0) return;
  mm_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
}

void mm_linear_backward(const float *x, const float *w, const float *gy, float *gx, float *gw, float *gb,
                        int64_t n, int64_t in, int64_t out) {
  if (gx && n > 0 && in > 0) {
    if (out > 0)
      mm_sgemm(0, 0, n, in, out, 1.0f, gy, out, w, in, 0.0f, gx, in);
    else
      memset(gx, 0, (size_t)(n * in) * sizeof(float));
  }
  if (n <= 0 || out <= 0) return;
  if (gw && in > 0) {
    lin_job j = {x, NULL, NULL, gw, gy, n, in, out};
    int64_t units = row_units(out);
    if (split_rows(n, in, out, units))
      mm_parallel_for(units, gw_rows, &j);
    else
      mm_sgemm(1, 0, out, in, n, 1.0f, gy, out, x, in, 1.0f, gw, in);
  }
  if (gb) {
    for (int64_t i = 0; i < n; i++) {
      const float *g = gy + i * out;
      for (int64_t j = 0; j < out; j++) gb[j] += g[j];
    }
  }
}
