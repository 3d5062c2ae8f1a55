/* cosine.c - row-wise cosine similarity, s = a.b / max(|a||b|, eps). */
#include <math.h>

#include "cosine.h"

#define COS_EPS 1e-8

void mm_cosine_forward(const float *a, const float *b, float *s, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; i++) {
    const float *ar = a + i * d, *br = b + i * d;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < d; j++) {
      ab += (double)ar[j] * br[j];
      aa += (double)ar[j] * ar[j];
      bb += (double)br[j] * br[j];
    }
    double den = sqrt(aa) * sqrt(bb);
    if (den < COS_EPS) den = COS_EPS;
    s[i] = (float)(ab / den);
  }
}

void mm_cosine_backward(const float *a, const float *b, const float *gs, float *ga, float *gb, int64_t n,
                        int64_t d) {
  for (int64_t i = 0; i < n; i++) {
    const float *ar = a + i * d, *br = b + i * d;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < d; j++) {
      ab += (double)ar[j] * br[j];
      aa += (double)ar[j] * ar[j];
      bb += (double)br[j] * br[j];
    }
    double na = sqrt(aa), nb = sqrt(bb), den = na * nb;
    double g = gs[i];
    if (den < COS_EPS) {
      /* clamped denominator: s = a.b / eps is linear in a and in b */
      if (ga)
        for (int64_t j = 0; j < d; j++) ga[i * d + j] = (float)(g * br[j] / COS_EPS);
      if (gb)
        for (int64_t j = 0; j < d; j++) gb[i * d + j] = (float)(g * ar[j] / COS_EPS);
      continue;
    }
    double s = ab / den;
    if (ga) {
      double k1 = g / den, k2 = g * s / aa;
      for (int64_t j = 0; j < d; j++) ga[i * d + j] = (float)(k1 * br[j] - k2 * ar[j]);
    }
    if (gb) {
      double k1 = g / den, k2 = g * s / bb;
      for (int64_t j = 0; j < d; j++) gb[i * d + j] = (float)(k1 * ar[j] - k2 * br[j]);
    }
  }
}
