/* activation.c - elementwise activations (y may alias x). */
#include <math.h>

#include "activation.h"

void mm_relu_forward(const float *x, float *y, int64_t count) {
  for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void mm_relu_backward(const float *x, const float *gy, float *gx, int64_t count) {
  if (!gx) return;
  for (int64_t i = 0; i < count; i++) gx[i] = x[i] > 0.0f ? gy[i] : 0.0f;
}

void mm_relu6_forward(const float *x, float *y, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    float v = x[i];
    y[i] = v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
  }
}

void mm_relu6_backward(const float *x, const float *gy, float *gx, int64_t count) {
  if (!gx) return;
  for (int64_t i = 0; i < count; i++) gx[i] = (x[i] > 0.0f && x[i] < 6.0f) ? gy[i] : 0.0f;
}

void mm_tanh_forward(const float *x, float *y, int64_t count) {
  for (int64_t i = 0; i < count; i++) y[i] = tanhf(x[i]);
}

void mm_tanh_backward(const float *y, const float *gy, float *gx, int64_t count) {
  if (!gx) return;
  for (int64_t i = 0; i < count; i++) gx[i] = gy[i] * (1.0f - y[i] * y[i]);
}

void mm_sigmoid_forward(const float *x, float *y, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    float v = x[i];
    if (v >= 0.0f) {
      y[i] = 1.0f / (1.0f + expf(-v));
    } else {
      float e = expf(v);
      y[i] = e / (1.0f + e);
    }
  }
}

void mm_sigmoid_backward(const float *y, const float *gy, float *gx, int64_t count) {
  if (!gx) return;
  for (int64_t i = 0; i < count; i++) gx[i] = gy[i] * y[i] * (1.0f - y[i]);
}
