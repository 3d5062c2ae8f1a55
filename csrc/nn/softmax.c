/* softmax.c - softmax and log-softmax over the last dimension (max-shifted). */
#include <math.h>

#include "softmax.h"

static float row_max(const float *x, int64_t cols) {
  float m = -INFINITY;
  for (int64_t j = 0; j < cols; j++)
    if (x[j] > m || isnan(x[j])) m = x[j];
  return m;
}

void mm_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++) {
    const float *xr = x + i * cols;
    float *yr = y + i * cols;
    float m = row_max(xr, cols);
    if (m == -INFINITY) m = 0.0f; /* a row of -inf: keep NaN-free arithmetic below */
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) {
      float e = expf(xr[j] - m);
      yr[j] = e;
      s += e;
    }
    float inv = (float)(1.0 / s);
    for (int64_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

void mm_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols) {
  if (!gx) return;
  for (int64_t i = 0; i < rows; i++) {
    const float *yr = y + i * cols, *gr = gy + i * cols;
    float *xr = gx + i * cols;
    double dot = 0.0;
    for (int64_t j = 0; j < cols; j++) dot += (double)yr[j] * gr[j];
    float d = (float)dot;
    for (int64_t j = 0; j < cols; j++) xr[j] = yr[j] * (gr[j] - d);
  }
}

void mm_log_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++) {
    const float *xr = x + i * cols;
    float *yr = y + i * cols;
    float m = row_max(xr, cols);
    if (m == -INFINITY) m = 0.0f;
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += exp((double)(xr[j] - m));
    float ls = (float)log(s);
    for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - m) - ls;
  }
}

void mm_log_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols) {
  if (!gx) return;
  for (int64_t i = 0; i < rows; i++) {
    const float *yr = y + i * cols, *gr = gy + i * cols;
    float *xr = gx + i * cols;
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += gr[j];
    float sf = (float)s;
    for (int64_t j = 0; j < cols; j++) xr[j] = gr[j] - expf(yr[j]) * sf;
  }
}
