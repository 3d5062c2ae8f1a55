/* head_joint.c - joint and common-space fusion: u_m = W_m h_m + b_m (a text
 * bag of size dim is used as it is: u_m = h_m), pooled element-wise over the
 * present modalities (max, mean or sum; a row with nothing present pools a
 * zero vector), logits = linear(pooled). Common space adds lambda times the
 * ranking loss (nn/ranking.c) of every present pair a < b (anchors u_b,
 * positives and negatives u_a).
 *
 * The pooling is the arithmetic of mm_modality_pool_forward / _backward
 * (nn/fusion.c) on x[b, i] = u_i[b], read straight from the modality vectors:
 * an unprojected u_i is h_i, and its gradient goes straight to gh_i. */
#include <string.h>

#include "../nn/nn.h"
#include "model_internal.h"

static float *joint_u(const mm_model *M, ws *w, int i) { return M->mod[i].project ? w->m[i].u : w->m[i].h; }
static float *joint_gu(const mm_model *M, ws *w, int i) {
  return M->mod[i].project || !w->m[i].gh ? w->m[i].gu : w->m[i].gh;
}

static void pool_forward(const mm_model *M, ws *w, int64_t n, int train) {
  const int64_t d = M->dim, k = M->k;
  const int mode = M->pool;
  int32_t *parg = train ? w->parg : NULL;
  for (int64_t b = 0; b < n; b++) {
    float *restrict y = w->z + b * d;
    int32_t *restrict ar = parg ? parg + b * d : NULL;
    if (w->none[b]) { /* nothing present: modality 0 as a zero vector */
      memset(y, 0, (size_t)d * sizeof(float));
      if (ar) memset(ar, 0, (size_t)d * sizeof(int32_t));
      continue;
    }
    int first = 1, cnt = 0;
    for (int i = 0; i < k; i++) {
      if (!w->mm[i][b]) continue;
      cnt++;
      mm_pool_row_add(mode, first, i, joint_u(M, w, i) + b * d, y, ar, d);
      first = 0;
    }
    mm_pool_row_finish(mode, cnt, y, d);
  }
}

/* gu_i = d(loss)/d(u_i) from gz (overwritten; rows with nothing present get 0) */
static void pool_backward(const mm_model *M, ws *w, int64_t n) {
  const int64_t d = M->dim, k = M->k;
  for (int i = 0; i < k; i++) {
    float *gu = joint_gu(M, w, i);
    for (int64_t b = 0; b < n; b++) {
      float *restrict g = gu + b * d;
      const float *restrict gz = w->gz + b * d;
      if (w->none[b] || (M->pool != MM_POOL_MAX && !w->mm[i][b])) {
        memset(g, 0, (size_t)d * sizeof(float));
        continue;
      }
      if (M->pool == MM_POOL_MAX) {
        const int32_t *restrict ar = w->parg + b * d;
        for (int64_t j = 0; j < d; j++) { /* bit mask, no branch: the winner is a coin toss */
          uint32_t gb, msk = (uint32_t)0 - (uint32_t)(ar[j] == i);
          memcpy(&gb, gz + j, sizeof gb);
          gb &= msk;
          memcpy(g + j, &gb, sizeof gb);
        }
        continue;
      }
      int cnt = 0;
      for (int q = 0; q < k; q++) cnt += w->mm[q][b] != 0;
      float s = M->pool == MM_POOL_MEAN ? 1.0f / (float)cnt : 1.0f;
      for (int64_t j = 0; j < d; j++) g[j] = s * gz[j];
    }
  }
}

static void joint_forward(mm_model *M, ws *w, int64_t n, int train) {
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    if (c->project) mm_linear_forward(m->h, M->params[c->p_pw].w, M->params[c->p_pb].w, m->u, n, c->out_dim, M->dim);
  }
  pool_forward(M, w, n, train);
  mm_classifier_forward(M, w, n, M->dim);
}

static int ranks(const mm_model *M, int train) { return train && M->fusion == MM_FUSION_COMMON && M->lambda > 0; }

/* the classifier's loss, plus lambda times the ranking loss of each pair
 * (a, b); the pair's gradients wait in tv/tt (pair p at p * n * dim) */
static double joint_loss(mm_model *M, ws *w, int64_t n, const float *cw, int train) {
  double loss = mm_classifier_loss(M, w, n, cw, train);
  if (!ranks(M, train)) return loss;
  const int64_t d = M->dim;
  int64_t pair = 0;
  for (int a = 0; a < M->k; a++)
    for (int bb = a + 1; bb < M->k; bb++, pair++) {
      double rl = 0;
      int64_t anchors = 0;
      mm_ranking_loss(joint_u(M, w, bb), joint_u(M, w, a), w->y, w->mm[bb], w->mm[a], n, d, M->margin, M->hardest,
                      M->lambda, &rl, w->tv + pair * n * d, w->tt + pair * n * d, &anchors, w->rk);
      loss += M->lambda * rl;
    }
  return loss;
}

static void joint_backward(mm_model *M, ws *w, int64_t n) {
  const int64_t d = M->dim;
  mm_classifier_backward(M, w, n, d);
  pool_backward(M, w, n);
  if (ranks(M, 1)) {
    int64_t pair = 0;
    for (int a = 0; a < M->k; a++)
      for (int bb = a + 1; bb < M->k; bb++, pair++) {
        float *restrict gb = joint_gu(M, w, bb), *restrict ga = joint_gu(M, w, a);
        const float *restrict tv = w->tv + pair * n * d, *restrict tt = w->tt + pair * n * d;
        for (int64_t q = 0; q < n * d; q++) {
          gb[q] += tv[q];
          ga[q] += tt[q];
        }
      }
  }
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    if (c->project)
      mm_linear_backward(m->h, M->params[c->p_pw].w, m->gu, m->gh, M->params[c->p_pw].g, M->params[c->p_pb].g, n,
                         c->out_dim, d);
  }
}

const mm_head mm_head_joint = {joint_forward, joint_loss, joint_backward};
