/* linear.c - fully connected layer, PyTorch layout: y = x . w^T + b. */
#include <string.h>

#include "../core/gemm.h"
#include "nn.h"

/* y^T = W x^T block by block, then y = b + (y^T)^T. The sgemm kernels pack
 * their B operand: in y = x W^T that is W (out x in, all of it, every call),
 * here only the n x in rows of x. Used when out >= 2n (a small batch through
 * a wide layer: P1's 32 x 512 -> 128 projection, 2x faster). The tile lives
 * on the stack (no allocation in kernels). */
#define LIN_TILE 4096
static void linear_forward_t(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                             int64_t out) {
  float t[LIN_TILE];
  int64_t nb = n < 64 ? n : 64, ob = LIN_TILE / nb;
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    int64_t ni = n - i0 < nb ? n - i0 : nb;
    for (int64_t o0 = 0; o0 < out; o0 += ob) {
      int64_t no = out - o0 < ob ? out - o0 : ob;
      mm_sgemm(0, 1, no, ni, in, 1.0f, w + o0 * in, in, x + i0 * in, in, 0.0f, t, ni);
      for (int64_t i = 0; i < ni; i++) {
        float *yr = y + (i0 + i) * out + o0;
        for (int64_t o = 0; o < no; o++) yr[o] = (b ? b[o0 + o] : 0.0f) + t[o * ni + i];
      }
    }
  }
}

void mm_linear_forward(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                       int64_t out) {
  if (n <= 0 || out <= 0) return;
  if (in > 0 && out >= 2 * n) {
    linear_forward_t(x, w, b, y, n, in, out);
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
  if (gw && in > 0)
    mm_sgemm(1, 0, out, in, n, 1.0f, gy, out, x, in, 1.0f, gw, in);
  if (gb) {
    for (int64_t i = 0; i < n; i++) {
      const float *g = gy + i * out;
      for (int64_t j = 0; j < out; j++) gb[j] += g[j];
    }
  }
}
