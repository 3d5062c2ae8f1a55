/* loss.h - classification losses: negative log-likelihood and cross
 * entropy.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_LOSS_H
#define MM_NN_LOSS_H

#include <stdint.h>

#include "../core/error.h"

/* mean over the batch (weighted as PyTorch: sum w[y_i]*l_i / sum w[y_i]).
 * weight (nullable) is per class. Returns MM_ENUM if the loss is not finite. */
int mm_nll_loss_forward(const float *logp, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                        double *loss, mm_err *e);
/* gx = d(loss)/d(logp) * gloss */
void mm_nll_loss_backward(const int64_t *labels, const float *weight, int64_t n, int64_t c, float gloss,
                          float *gx);
/* cross entropy on logits; probs[n,c] (nullable) receives the softmax */
int mm_cross_entropy_forward(const float *logits, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                             float *probs, double *loss, mm_err *e);
/* needs the probs of the forward */
void mm_cross_entropy_backward(const float *probs, const int64_t *labels, const float *weight, int64_t n,
                               int64_t c, float gloss, float *gx);

#endif
