/* head.c - the fusion heads by fusion (one table, one entry per fusion) and
 * the linear classifier with its softmax cross entropy that the concat and
 * joint heads end in. */
#include "model_internal.h"

static const mm_head *const heads[] = {
    [MM_FUSION_TEXT] = &mm_head_concat,  [MM_FUSION_IMAGE] = &mm_head_concat, [MM_FUSION_EARLY] = &mm_head_concat,
    [MM_FUSION_LATE] = &mm_head_late,    [MM_FUSION_JOINT] = &mm_head_joint,  [MM_FUSION_COMMON] = &mm_head_joint,
};
_Static_assert(sizeof heads / sizeof *heads == MM_FUSION_COUNT, "a head for every fusion");

const mm_head *mm_head_of(int fusion) { return heads[fusion]; }

void mm_classifier_forward(mm_model *M, ws *w, int64_t n, int64_t Z) {
  mm_linear_forward(w->z, M->params[M->p_cw].w, M->params[M->p_cb].w, w->logits, n, Z, M->nclasses);
}

double mm_classifier_loss(mm_model *M, ws *w, int64_t n, const float *cw, int train) {
  const int64_t C = M->nclasses;
  double loss = mm_cross_entropy_masked_forward(w->logits, w->y, w->ok, cw, n, C, w->probs);
  if (train) mm_cross_entropy_masked_backward(w->probs, w->y, w->ok, cw, n, C, 1.0f, w->glog);
  return loss;
}

void mm_classifier_backward(mm_model *M, ws *w, int64_t n, int64_t Z) {
  mm_linear_backward(w->z, M->params[M->p_cw].w, w->glog, w->gz, M->params[M->p_cw].g, M->params[M->p_cb].g, n, Z,
                     M->nclasses);
}
