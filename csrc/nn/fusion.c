/* fusion.c - masked pooling of k modality vectors per sample. */
#include <string.h>

#include "fusion.h"

void mm_pool_row_add(int mode, int first, int32_t i, const float *restrict x, float *restrict y, int32_t *restrict ar,
                     int64_t d) {
  if (first) {
    memcpy(y, x, (size_t)d * sizeof(float));
    if (ar)
      for (int64_t j = 0; j < d; j++) ar[j] = i;
  } else if (mode == MM_POOL_MAX) { /* selects, not branches: which input wins is a coin toss */
    if (ar)
      for (int64_t j = 0; j < d; j++) { /* bit masks: the compiler keeps them branch-free */
        uint32_t xb, yb, msk = (uint32_t)0 - (uint32_t)(x[j] > y[j]);
        memcpy(&xb, x + j, sizeof xb);
        memcpy(&yb, y + j, sizeof yb);
        yb = (yb & ~msk) | (xb & msk);
        memcpy(y + j, &yb, sizeof yb);
        ar[j] = (int32_t)(((uint32_t)ar[j] & ~msk) | ((uint32_t)i & msk));
      }
    else
      for (int64_t j = 0; j < d; j++) y[j] = x[j] > y[j] ? x[j] : y[j];
  } else {
    for (int64_t j = 0; j < d; j++) y[j] += x[j];
  }
}

void mm_pool_row_finish(int mode, int64_t cnt, float *y, int64_t d) {
  if (mode == MM_POOL_MEAN && cnt > 1) {
    float s = 1.0f / (float)cnt;
    for (int64_t j = 0; j < d; j++) y[j] *= s;
  }
}

int mm_modality_pool_forward(const float *x, const uint8_t *mask, int64_t n, int64_t k, int64_t d, int mode,
                             float *y, int32_t *arg, mm_err *e) {
  if (mode != MM_POOL_MAX && mode != MM_POOL_MEAN && mode != MM_POOL_SUM)
    return mm_errorf(e, MM_EINVAL, "modality_pool: unknown pooling mode %d", mode);
  for (int64_t i = 0; i < n; i++) {
    int64_t cnt = 0;
    for (int64_t m = 0; m < k; m++) cnt += mask[i * k + m] != 0;
    if (cnt == 0)
      return mm_errorf(e, MM_EINVAL,
                       "modality_pool: sample %lld has no modality present (mask row %lld of %lldx%lld is all 0)",
                       (long long)i + 1, (long long)i + 1, (long long)n, (long long)k);
  }
  for (int64_t i = 0; i < n; i++) {
    float *yr = y + i * d;
    int32_t *ar = arg ? arg + i * d : NULL;
    const float *xs = x + i * k * d;
    const uint8_t *ms = mask + i * k;
    int first = 1;
    int64_t cnt = 0;
    for (int64_t m = 0; m < k; m++) {
      if (!ms[m]) continue;
      cnt++;
      mm_pool_row_add(mode, first, (int32_t)m, xs + m * d, yr, ar, d);
      first = 0;
    }
    mm_pool_row_finish(mode, cnt, yr, d);
  }
  return MM_OK;
}

void mm_modality_pool_backward(const uint8_t *mask, const int32_t *arg, const float *gy, int64_t n, int64_t k,
                               int64_t d, int mode, float *gx) {
  if (!gx) return;
  memset(gx, 0, (size_t)(n * k * d) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    const float *g = gy + i * d;
    float *gs = gx + i * k * d;
    const uint8_t *ms = mask + i * k;
    if (mode == MM_POOL_MAX) {
      const int32_t *ar = arg + i * d;
      for (int64_t j = 0; j < d; j++) gs[(int64_t)ar[j] * d + j] = g[j];
      continue;
    }
    int64_t cnt = 0;
    for (int64_t m = 0; m < k; m++) cnt += ms[m] != 0;
    if (cnt == 0) continue;
    float s = mode == MM_POOL_MEAN ? 1.0f / (float)cnt : 1.0f;
    for (int64_t m = 0; m < k; m++) {
      if (!ms[m]) continue;
      float *gr = gs + m * d;
      for (int64_t j = 0; j < d; j++) gr[j] = s * g[j];
    }
  }
}
