/* ranking.c - the common-space auxiliary hinge loss (see nn.h). */
#include <math.h>
#include <string.h>

#include "../core/gemm.h"
#include "ranking.h"

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

/* the per-pair form: the fallback when the matrix scratch cannot be allocated */
static void ranking_pairs(const float *v, const float *t, const int64_t *labels, const uint8_t *vmask,
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

/* Matrix form (used when the scratch fits in memory): with the row norms
 * computed once, one sgemm gives every v_i.t_j, so C[i,j] = cos(v_i, t_j) and
 * the hinge terms are O(n^2). The gradient of cos(v_i,t_j) = D_ij / den_ij
 * (den_ij = max(|v_i||t_j|, eps)) is
 *   dv_i = t_j / den_ij - [den not clamped] * C_ij v_i / |v_i|^2   (t likewise),
 * so with K[i,j] the weight of every (anchor, text) pair, A = K / den and
 * r_i = sum_j K_ij C_ij / |v_i|^2 (unclamped only):
 *   gv = A T - diag(r) V,   gt = A^T V - diag(c) T   (two more sgemms). */
/* bytes of scratch ranking_matrix needs: doubles first (alignment), then
 * floats, then the anchor flags */
static size_t matrix_bytes(int64_t n, int64_t d, int masked) {
  size_t nn = (size_t)(n * n), nd = (size_t)(n * d);
  return 4 * (size_t)n * sizeof(double) + (3 * nn + (masked ? 2 * nd : 0)) * sizeof(float) + (size_t)n;
}

int64_t mm_ranking_scratch(int64_t n, int64_t d) {
  if (n <= 0 || d <= 0) return 1;
  return (int64_t)((matrix_bytes(n, d, 1) + sizeof(float) - 1) / sizeof(float));
}

/* the gradient of one side: g = op(A) . other, then row r minus coef[r]
 * times its own normalised row (op(A) = A for v, A^T for t) */
static void side_grad(int ta, const float *A, const float *other, const float *own, const double *coef, int64_t n,
                      int64_t d, float *g) {
  mm_sgemm(ta, 0, n, d, n, 1.0f, A, n, other, d, 0.0f, g, d);
  for (int64_t r = 0; r < n; r++)
    if (coef[r] != 0.0) {
      float c = (float)coef[r];
      for (int64_t j = 0; j < d; j++) g[r * d + j] -= c * own[r * d + j];
    }
}

/* the matrix form's work: norms and r / c in doubles, the n x n matrices C
 * (cosines), K (pair weights), A (den, then K / den), the anchor flags */
typedef struct {
  int64_t n, d;
  const int64_t *labels;
  const uint8_t *vmask, *tmask;
  double *nv, *nt, *rr, *cc;
  float *C, *K, *A;
  uint8_t *anc;
} rmat;

/* j is a negative of anchor i: another label, its text present */
static inline int negative(const rmat *m, int64_t i, int64_t j) {
  return j != i && m->labels[j] != m->labels[i] && !(m->tmask && !m->tmask[j]);
}

/* copies of v and t whose rows that never take part are zeroed, so NaN/Inf
 * there cannot leak through 0 * x */
static void masked_rows(const rmat *m, const float *v, const float *t, float *vm, float *tm) {
  int64_t d = m->d;
  for (int64_t i = 0; i < m->n; i++) {
    int tv = !m->tmask || m->tmask[i], vv = tv && (!m->vmask || m->vmask[i]);
    if (vv) memcpy(vm + i * d, v + i * d, (size_t)d * sizeof(float));
    else memset(vm + i * d, 0, (size_t)d * sizeof(float));
    if (tv) memcpy(tm + i * d, t + i * d, (size_t)d * sizeof(float));
    else memset(tm + i * d, 0, (size_t)d * sizeof(float));
  }
}

/* the row norms, the anchors with at least one negative (their count), and
 * when there are any C = the cosines and A = their denominators */
static int64_t cosines(rmat *m, const float *V, const float *T) {
  int64_t n = m->n, d = m->d, na_used = 0;
  for (int64_t i = 0; i < n; i++) {
    double sv = 0, st = 0;
    const float *vi = V + i * d, *ti = T + i * d;
    for (int64_t j = 0; j < d; j++) {
      sv += (double)vi[j] * vi[j];
      st += (double)ti[j] * ti[j];
    }
    m->nv[i] = sqrt(sv);
    m->nt[i] = sqrt(st);
  }
  for (int64_t i = 0; i < n; i++) {
    m->anc[i] = 0;
    if ((m->vmask && !m->vmask[i]) || (m->tmask && !m->tmask[i])) continue;
    for (int64_t j = 0; j < n; j++)
      if (negative(m, i, j)) {
        m->anc[i] = 1;
        na_used++;
        break;
      }
  }
  if (na_used == 0) return 0;
  mm_sgemm(0, 1, n, n, d, 1.0f, V, d, T, d, 0.0f, m->C, n);
  for (int64_t i = 0; i < n; i++) {
    const double nvi = m->nv[i];
    float *restrict ai = m->A + i * n, *restrict ci = m->C + i * n;
    for (int64_t j = 0; j < n; j++) {
      double den = nvi * m->nt[j];
      den = den < COS_EPS ? COS_EPS : den;
      ai[j] = (float)den; /* A holds den for now */
      ci[j] = (float)((double)ci[j] / den);
    }
  }
  return na_used;
}

/* anchor i's hinge terms: returns its loss and, with want_grad, puts the
 * weights base / (its negatives) of its active pairs in row i of K */
static double anchor_hinge(rmat *m, int64_t i, float margin, int hardest, double base, int want_grad) {
  int64_t n = m->n;
  const float *ci = m->C + i * n;
  float *ki = m->K + i * n;
  double cpos = ci[i];
  int64_t nneg = 0, best = -1, active = 0;
  double sum = 0.0, bestl = -INFINITY;
  for (int64_t j = 0; j < n; j++) {
    if (!negative(m, i, j)) continue;
    double l = margin - cpos + (double)ci[j];
    nneg++;
    if (!(l <= 0)) {
      sum += l; /* NaN propagates into the loss */
      active++;
    }
    if (l > bestl || (isnan(l) && !isnan(bestl))) {
      bestl = l;
      best = j;
    }
  }
  if (hardest) {
    if (bestl <= 0) return 0.0;
    if (want_grad) {
      ki[best] += (float)base;
      ki[i] -= (float)base;
    }
    return bestl;
  }
  if (want_grad && active) {
    double w = base / (double)nneg;
    for (int64_t j = 0; j < n; j++) {
      if (!negative(m, i, j)) continue;
      if (margin - cpos + (double)ci[j] <= 0) continue;
      ki[j] = (float)w;
    }
    ki[i] = (float)(-w * (double)active);
  }
  return sum / (double)nneg;
}

/* A = K / den; r (rows, for v) and c (columns, for t) of K*C/|.|^2 where den
 * is not clamped */
static void pair_weights(rmat *m) {
  int64_t n = m->n;
  memset(m->rr, 0, 2 * (size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      float k = m->K[i * n + j];
      double den = m->A[i * n + j];
      if (k == 0.0f) {
        m->A[i * n + j] = 0.0f;
        continue;
      }
      m->A[i * n + j] = (float)(k / den);
      if (m->nv[i] * m->nt[j] >= COS_EPS) {
        double kc = (double)k * m->C[i * n + j];
        m->rr[i] += kc / (m->nv[i] * m->nv[i]);
        m->cc[j] += kc / (m->nt[j] * m->nt[j]);
      }
    }
}

/* scratch: matrix_bytes(n, d, masked) bytes, 8-byte aligned */
static void ranking_matrix(const float *v, const float *t, const int64_t *labels, const uint8_t *vmask,
                           const uint8_t *tmask, int64_t n, int64_t d, float margin, int hardest, float gloss,
                           double *loss, float *gv, float *gt, int64_t *anchors, void *scratch) {
  size_t nn = (size_t)(n * n), nd = (size_t)(n * d);
  int masked = vmask || tmask;
  double *buf = scratch;
  rmat m = {n, d, labels, vmask, tmask, buf, buf + n, buf + 2 * n, buf + 3 * n, NULL, NULL, NULL, NULL};
  m.C = (float *)(void *)(buf + 4 * n), m.K = m.C + nn, m.A = m.K + nn;
  m.anc = (uint8_t *)(m.C + 3 * nn + (masked ? 2 * nd : 0));
  const float *V = v, *T = t;
  if (masked) {
    float *vm = m.A + nn, *tm = vm + nd;
    masked_rows(&m, v, t, vm, tm);
    V = vm, T = tm;
  }
  int64_t na_used = cosines(&m, V, T);
  if (anchors) *anchors = na_used;
  if (loss) *loss = 0.0;
  if (na_used == 0) return;
  memset(m.K, 0, nn * sizeof(float));
  int want_grad = gv || gt;
  double total = 0.0, base = (double)gloss / (double)na_used;
  for (int64_t i = 0; i < n; i++)
    if (m.anc[i]) total += anchor_hinge(&m, i, margin, hardest, base, want_grad);
  if (loss) *loss = total / (double)na_used;
  if (!want_grad) return;
  pair_weights(&m);
  if (gv) side_grad(0, m.A, T, V, m.rr, n, d, gv);
  if (gt) side_grad(1, m.A, V, T, m.cc, n, d, gt);
}

void mm_ranking_loss(const float *v, const float *t, const int64_t *labels, const uint8_t *vmask,
                     const uint8_t *tmask, int64_t n, int64_t d, float margin, int hardest, float gloss,
                     double *loss, float *gv, float *gt, int64_t *anchors, float *scratch) {
  if (gv) memset(gv, 0, (size_t)(n * d) * sizeof(float));
  if (gt) memset(gt, 0, (size_t)(n * d) * sizeof(float));
  if (n > 0 && d > 0 && scratch) {
    ranking_matrix(v, t, labels, vmask, tmask, n, d, margin, hardest, gloss, loss, gv, gt, anchors, scratch);
    return;
  }
  ranking_pairs(v, t, labels, vmask, tmask, n, d, margin, hardest, gloss, loss, gv, gt, anchors);
}
