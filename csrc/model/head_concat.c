/* head_concat.c - unimodal and early fusion: z = concat over the modalities
 * of h_m where present, else the learned missing vector of m (early, missing
 * = "learned") or zeros; logits = linear(z). A unimodal model (fusion text or
 * image) is this head over its one modality, with zeros for a missing one. */
#include <string.h>

#include "model_internal.h"

static int64_t width(const mm_model *M) {
  int64_t Z = 0;
  for (int i = 0; i < M->k; i++) Z += M->mod[i].out_dim;
  return Z;
}

static void concat_forward(mm_model *M, ws *w, int64_t n, int train) {
  const int64_t Z = width(M);
  int64_t off = 0;
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    const modws *m = &w->m[i];
    const int64_t E = c->out_dim;
    for (int64_t b = 0; b < n; b++) {
      float *dst = w->z + b * Z + off;
      if (w->mm[i][b])
        memcpy(dst, m->h + b * E, (size_t)E * sizeof(float));
      else if (c->p_miss >= 0)
        memcpy(dst, M->params[c->p_miss].w, (size_t)E * sizeof(float));
      else
        memset(dst, 0, (size_t)E * sizeof(float));
    }
    off += E;
  }
  mm_classifier_forward(M, w, n, Z);
}

/* gz split back: gh of a present modality, the missing vector's gradient of an absent one */
static void concat_backward(mm_model *M, ws *w, int64_t n) {
  const int64_t Z = width(M);
  mm_classifier_backward(M, w, n, Z);
  int64_t off = 0;
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    const int64_t E = c->out_dim;
    for (int64_t b = 0; b < n; b++) {
      const float *g = w->gz + b * Z + off;
      if (w->mm[i][b]) {
        if (m->gh) memcpy(m->gh + b * E, g, (size_t)E * sizeof(float));
      } else {
        if (m->gh) memset(m->gh + b * E, 0, (size_t)E * sizeof(float));
        if (c->p_miss >= 0) {
          float *gm = M->params[c->p_miss].g;
          for (int64_t j = 0; j < E; j++) gm[j] += g[j];
        }
      }
    }
    off += E;
  }
}

const mm_head mm_head_concat = {concat_forward, mm_classifier_loss, concat_backward};
