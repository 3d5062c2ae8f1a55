/* linear.c - fully connected layer, PyTorch layout: y = x . w^T + b. */
#include <cblas.h>
#include <string.h>

#include "nn.h"

void mm_linear_forward(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                       int64_t out) {
  if (n <= 0 || out <= 0) return;
  if (b) {
    for (int64_t i = 0; i < n; i++) memcpy(y + i * out, b, (size_t)out * sizeof(float));
  } else {
    memset(y, 0, (size_t)(n * out) * sizeof(float));
  }
  if (in <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, x, (int)in, w, (int)in,
              1.0f, y, (int)out);
}

void mm_linear_backward(const float *x, const float *w, const float *gy, float *gx, float *gw, float *gb,
                        int64_t n, int64_t in, int64_t out) {
  if (gx && n > 0 && in > 0) {
    if (out > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, 1.0f, gy, (int)out, w,
                  (int)in, 0.0f, gx, (int)in);
    else
      memset(gx, 0, (size_t)(n * in) * sizeof(float));
  }
  if (n <= 0 || out <= 0) return;
  if (gw && in > 0)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, 1.0f, gy, (int)out, x, (int)in,
                1.0f, gw, (int)in);
  if (gb) {
    for (int64_t i = 0; i < n; i++) {
      const float *g = gy + i * out;
      for (int64_t j = 0; j < out; j++) gb[j] += g[j];
    }
  }
}
