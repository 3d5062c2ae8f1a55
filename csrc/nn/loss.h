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
/* the same over the rows with mask[i] != 0 (mask NULL: every row); the other
 * rows get probs but no loss and a zero gradient. Returns the loss, 0 when the
 * kept rows' weights sum to 0 (nothing to learn from: gx is then all zero);
 * probs (nullable in the forward) receives the softmax of every row. */
double mm_cross_entropy_masked_forward(const float *logits, const int64_t *labels, const uint8_t *mask,
                                       const float *weight, int64_t n, int64_t c, float *probs);
void mm_cross_entropy_masked_backward(const float *probs, const int64_t *labels, const uint8_t *mask,
                                      const float *weight, int64_t n, int64_t c, float gloss, float *gx);

#endif
