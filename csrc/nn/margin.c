/* margin.c - margin ranking loss on scalar scores (torch's margin_ranking_loss). */
#include "margin.h"

double mm_margin_ranking_loss(const float *x1, const float *x2, const float *y, int64_t n, float margin, float gloss,
                              float *g1, float *g2) {
  if (n <= 0) return 0.0;
  double s = 0.0;
  float k = gloss / (float)n;
  for (int64_t i = 0; i < n; i++) {
    double l = -(double)y[i] * ((double)x1[i] - x2[i]) + margin;
    int active = l > 0.0;
    if (active) s += l;
    if (g1) g1[i] = active ? -y[i] * k : 0.0f;
    if (g2) g2[i] = active ? y[i] * k : 0.0f;
  }
  return s / (double)n;
}
