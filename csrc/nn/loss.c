/* loss.c - negative log-likelihood and cross entropy, mean over the batch
 * (with class weights: sum_i w[y_i] l_i / sum_i w[y_i], as PyTorch). The
 * masked cross entropy is the one implementation; the unmasked pair is it
 * with every row kept. */
#include <math.h>
#include <string.h>

#include "nn.h"

static int not_finite(mm_err *e, const char *fn, const char *what, const float *x, int64_t n, int64_t c,
                      double loss) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < c; j++)
      if (!isfinite(x[i * c + j]))
        return mm_errorf(e, MM_ENUM, "%s: loss is %s: %s (%lldx%lld) holds %s at row %lld, column %lld", fn,
                         isnan(loss) ? "NaN" : "infinite", what, (long long)n, (long long)c,
                         isnan(x[i * c + j]) ? "NaN" : "Inf", (long long)i + 1, (long long)j + 1);
  return mm_errorf(e, MM_ENUM, "%s: loss is %s (%s is %lldx%lld; class weights of the batch sum to 0?)", fn,
                   isnan(loss) ? "NaN" : "infinite", what, (long long)n, (long long)c);
}

static double weight_sum(const int64_t *labels, const float *weight, int64_t n) {
  if (!weight) return (double)n;
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += weight[labels[i]];
  return s;
}

int mm_nll_loss_forward(const float *logp, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                        double *loss, mm_err *e) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double w = weight ? weight[labels[i]] : 1.0;
    s -= w * logp[i * c + labels[i]];
  }
  double l = s / weight_sum(labels, weight, n);
  *loss = l;
  if (!isfinite(l)) return not_finite(e, "nll_loss", "logp", logp, n, c, l);
  return MM_OK;
}

void mm_nll_loss_backward(const int64_t *labels, const float *weight, int64_t n, int64_t c, float gloss,
                          float *gx) {
  if (!gx) return;
  memset(gx, 0, (size_t)(n * c) * sizeof(float));
  double ws = weight_sum(labels, weight, n);
  for (int64_t i = 0; i < n; i++) {
    double w = weight ? weight[labels[i]] : 1.0;
    gx[i * c + labels[i]] = (float)(-w / ws * gloss);
  }
}

/* One pass per row: the max (NaN wins, so a NaN logit gives a NaN loss), the
 * log-sum-exp in double, the probabilities, and the weighted loss of the rows
 * the mask keeps. */
double mm_cross_entropy_masked_forward(const float *logits, const int64_t *labels, const uint8_t *mask,
                                       const float *weight, int64_t n, int64_t c, float *probs) {
  double s = 0.0, ws = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float *x = logits + i * c;
    float m = -INFINITY;
    for (int64_t j = 0; j < c; j++)
      if (x[j] > m || isnan(x[j])) m = x[j];
    double z = 0.0;
    for (int64_t j = 0; j < c; j++) z += exp((double)x[j] - m);
    double lz = log(z);
    if (probs) {
      float *p = probs + i * c;
      for (int64_t j = 0; j < c; j++) p[j] = (float)exp((double)x[j] - m - lz);
    }
    if (mask && !mask[i]) continue;
    double w = weight ? weight[labels[i]] : 1.0;
    ws += w;
    s -= w * ((double)x[labels[i]] - m - lz);
  }
  return ws > 0 ? s / ws : 0.0;
}

void mm_cross_entropy_masked_backward(const float *probs, const int64_t *labels, const uint8_t *mask,
                                      const float *weight, int64_t n, int64_t c, float gloss, float *gx) {
  if (!gx) return;
  double ws = 0.0;
  for (int64_t i = 0; i < n; i++)
    if (!mask || mask[i]) ws += weight ? weight[labels[i]] : 1.0;
  for (int64_t i = 0; i < n; i++) {
    float *g = gx + i * c;
    if ((mask && !mask[i]) || ws <= 0) {
      memset(g, 0, (size_t)c * sizeof *g);
      continue;
    }
    double k = (weight ? weight[labels[i]] : 1.0) / ws * gloss;
    const float *p = probs + i * c;
    for (int64_t j = 0; j < c; j++) g[j] = (float)(k * p[j]);
    g[labels[i]] -= (float)k;
  }
}

int mm_cross_entropy_forward(const float *logits, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                             float *probs, double *loss, mm_err *e) {
  double ws = weight_sum(labels, weight, n);
  double l = ws > 0 ? mm_cross_entropy_masked_forward(logits, labels, NULL, weight, n, c, probs) : NAN;
  *loss = l;
  if (!isfinite(l)) return not_finite(e, "cross_entropy", "logits", logits, n, c, l);
  return MM_OK;
}

void mm_cross_entropy_backward(const float *probs, const int64_t *labels, const float *weight, int64_t n,
                               int64_t c, float gloss, float *gx) {
  mm_cross_entropy_masked_backward(probs, labels, NULL, weight, n, c, gloss, gx);
}
