/* dropout.c - inverted dropout: kept units are scaled by 1/(1-p). */
#include "dropout.h"

void mm_dropout_forward(const float *x, float *y, float *mask, int64_t count, float p, mm_rng *rng) {
  if (p <= 0.0f) {
    for (int64_t i = 0; i < count; i++) {
      mask[i] = 1.0f;
      y[i] = x[i];
    }
    return;
  }
  if (p >= 1.0f) {
    for (int64_t i = 0; i < count; i++) {
      mask[i] = 0.0f;
      y[i] = 0.0f;
    }
    return;
  }
  float keep = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < count; i++) {
    float m = mm_rng_uniform(rng) < p ? 0.0f : keep;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

void mm_dropout_backward(const float *mask, const float *gy, float *gx, int64_t count) {
  if (!gx) return;
  for (int64_t i = 0; i < count; i++) gx[i] = gy[i] * mask[i];
}
