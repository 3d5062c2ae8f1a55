/* batchnorm.c - batch normalisation in inference form (running statistics). */
#include <math.h>

#include "batchnorm.h"

void mm_batchnorm_infer(const float *x, float *y, int64_t n, int64_t c, int64_t hw, const float *mean,
                        const float *var, const float *gamma, const float *beta, float eps) {
  for (int64_t ch = 0; ch < c; ch++) {
    float sc = (gamma ? gamma[ch] : 1.0f) / sqrtf(var[ch] + eps);
    float sh = (beta ? beta[ch] : 0.0f) - mean[ch] * sc;
    for (int64_t i = 0; i < n; i++) {
      const float *xr = x + (i * c + ch) * hw;
      float *yr = y + (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; j++) yr[j] = xr[j] * sc + sh;
    }
  }
}
