/* ranking.c - the common-space auxiliary hinge loss (see nn.h). */
#include <math.h>
#include <string.h>

#include "nn.h"

#define COS_EPS 1e-8

static double dot(const float *a, const float *b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += (double)a[j] * b[j];
  return s;
}

/* cos(a, b) with norms na, nb; adds k * d cos/da to ga and k * d cos/db to gb */
static double cosine(const float *a, const float *b, double na, double nb, int64_t d) {
  double den = na * nb;
  if (den < COS_EPS) den = COS_EPS;
  return dot(a, b, d) / den;
}

static void cosine_grad(const float *a, const float *b, double na, double nb, double c, int64_t d, double k,
                        float *ga, float *gb) {
  double den = na * nb;
  if (den < COS_EPS) {
    if (ga)
      for (int64_t j = 0; j < d; j++) ga[j] += (float)(k * b[j] / COS_EPS);
    if (gb)
      for (int64_t j = 0; j < d; j++) gb[j] += (float)(k * a[j] / COS_EPS);
    return;
  }
  double k1 = k / den;
  if (ga) {
    double k2 = k * c / (na * na);
    for (int64_t j = 0; j < d; j++) ga[j] += (float)(k1 * b[j] - k2 * a[j]);
  }
  if (gb) {
    double k2 = k * c / (nb * nb);
    for (int64_t j = 0; j < d; j++) gb[j] += (float)(k1 * a[j] - k2 * b[j]);
  }
}

void mm_ranking_loss(const float *v, const float *t, const int64_t *labels, const uint8_t *vmask,
                     const uint8_t *tmask, int64_t n, int64_t d, float margin, int hardest, float gloss,
                     double *loss, float *gv, float *gt, int64_t *anchors) {
  if (gv) memset(gv, 0, (size_t)(n * d) * sizeof(float));
  if (gt) memset(gt, 0, (size_t)(n * d) * sizeof(float));
  /* pass 1: count anchors that have at least one negative */
  int64_t na_used = 0;
  for (int64_t i = 0; i < n; i++) {
    if ((vmask && !vmask[i]) || (tmask && !tmask[i])) continue;
    for (int64_t j = 0; j < n; j++) {
      if (j == i || labels[j] == labels[i] || (tmask && !tmask[j])) continue;
      na_used++;
      break;
    }
  }
  if (anchors) *anchors = na_used;
  if (loss) *loss = 0.0;
  if (na_used == 0) return;
  double total = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if ((vmask && !vmask[i]) || (tmask && !tmask[i])) continue;
    const float *vi = v + i * d, *ti = t + i * d;
    double nv = sqrt(dot(vi, vi, d)), nt = sqrt(dot(ti, ti, d));
    double cpos = cosine(vi, ti, nv, nt, d);
    int64_t nneg = 0, best = -1;
    double sum = 0.0, bestl = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
      if (j == i || labels[j] == labels[i] || (tmask && !tmask[j])) continue;
      const float *tj = t + j * d;
      double l = margin - cpos + cosine(vi, tj, nv, sqrt(dot(tj, tj, d)), d);
      nneg++;
      if (!(l <= 0)) sum += l; /* NaN propagates into the loss */
      if (l > bestl || (isnan(l) && !isnan(bestl))) {
        bestl = l;
        best = j;
      }
    }
    if (nneg == 0) continue;
    if (hardest) {
      if (!(bestl <= 0)) total += bestl;
    } else {
      total += sum / (double)nneg;
    }
    if (!gv && !gt) continue;
    /* gradient: each active hinge term l_ij adds w * (-dcos(vi,ti) + dcos(vi,tj)) */
    double base = (double)gloss / (double)na_used;
    if (hardest) {
      if (bestl <= 0) continue;
      const float *tj = t + best * d;
      double ntj = sqrt(dot(tj, tj, d));
      cosine_grad(vi, ti, nv, nt, cpos, d, -base, gv ? gv + i * d : NULL, gt ? gt + i * d : NULL);
      cosine_grad(vi, tj, nv, ntj, cosine(vi, tj, nv, ntj, d), d, base, gv ? gv + i * d : NULL,
                  gt ? gt + best * d : NULL);
    } else {
      double w = base / (double)nneg;
      int64_t active = 0;
      for (int64_t j = 0; j < n; j++) {
        if (j == i || labels[j] == labels[i] || (tmask && !tmask[j])) continue;
        const float *tj = t + j * d;
        double ntj = sqrt(dot(tj, tj, d));
        double cneg = cosine(vi, tj, nv, ntj, d);
        if (margin - cpos + cneg <= 0) continue;
        active++;
        cosine_grad(vi, tj, nv, ntj, cneg, d, w, gv ? gv + i * d : NULL, gt ? gt + j * d : NULL);
      }
      if (active)
        cosine_grad(vi, ti, nv, nt, cpos, d, -w * (double)active, gv ? gv + i * d : NULL, gt ? gt + i * d : NULL);
    }
  }
  if (loss) *loss = total / (double)na_used;
}
