/* head_late.c - late fusion: one linear classifier per modality. Training
 * sums their cross entropies, each over the labelled rows where its modality
 * is present; the prediction averages the probabilities of the present
 * modalities (uniform when none is). */
#include <string.h>

#include "model_internal.h"

static void late_forward(mm_model *M, ws *w, int64_t n, int train) {
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    mm_linear_forward(m->h, M->params[c->p_lw].w, M->params[c->p_lb].w, m->logits, n, c->out_dim, M->nclasses);
  }
}

static double late_loss(mm_model *M, ws *w, int64_t n, const float *cw, int train) {
  const int64_t C = M->nclasses;
  double loss = 0;
  memset(w->probs, 0, (size_t)(n * C) * sizeof(float));
  for (int i = 0; i < M->k; i++) {
    modws *m = &w->m[i];
    for (int64_t b = 0; b < n; b++) w->okm[b] = w->ok[b] && w->mm[i][b];
    loss += mm_cross_entropy_masked_forward(m->logits, w->y, w->okm, cw, n, C, m->probs);
    if (train) mm_cross_entropy_masked_backward(m->probs, w->y, w->okm, cw, n, C, 1.0f, m->glog);
    for (int64_t b = 0; b < n; b++)
      if (w->mm[i][b])
        for (int64_t j = 0; j < C; j++) w->probs[b * C + j] += m->probs[b * C + j];
  }
  for (int64_t b = 0; b < n; b++) {
    int cnt = 0;
    for (int i = 0; i < M->k; i++) cnt += w->mm[i][b];
    for (int64_t j = 0; j < C; j++) w->probs[b * C + j] = cnt ? w->probs[b * C + j] / cnt : 1.0f / (float)C;
  }
  return loss;
}

static void late_backward(mm_model *M, ws *w, int64_t n) {
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    mm_linear_backward(m->h, M->params[c->p_lw].w, m->glog, m->gh, M->params[c->p_lw].g, M->params[c->p_lb].g, n,
                       c->out_dim, M->nclasses);
  }
}

const mm_head mm_head_late = {late_forward, late_loss, late_backward};
