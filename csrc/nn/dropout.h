/* dropout.h - inverted dropout.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_DROPOUT_H
#define MM_NN_DROPOUT_H

#include <stdint.h>

#include "../core/rng.h"

/* mask[i] = 0 or 1/(1-p) (drawn from rng); y = x*mask */
void mm_dropout_forward(const float *x, float *y, float *mask, int64_t count, float p, mm_rng *rng);
void mm_dropout_backward(const float *mask, const float *gy, float *gx, int64_t count);

#endif
