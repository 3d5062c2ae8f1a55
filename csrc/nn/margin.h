/* margin.h - margin ranking loss.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_MARGIN_H
#define MM_NN_MARGIN_H

#include <stdint.h>

/* torch.nn.functional.margin_ranking_loss, mean reduction:
 * loss = mean_i max(0, -y_i (x1_i - x2_i) + margin), y_i in {1, -1}.
 * g1, g2 (nullable) receive d(loss)/dx1, d(loss)/dx2 times gloss (overwritten).
 * Returns the loss. */
double mm_margin_ranking_loss(const float *x1, const float *x2, const float *y, int64_t n, float margin, float gloss,
                              float *g1, float *g2);

#endif
