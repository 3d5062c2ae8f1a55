/* fusion.h - masked pooling of modality vectors.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_FUSION_H
#define MM_NN_FUSION_H

#include <stdint.h>

#include "../core/error.h"

/* masked pooling of k modality vectors per sample.
 * x[n,k,d]; y[n,d]; arg[n,d] (max only) holds the winning modality index.
 * A sample with no modality present is an error (MM_EINVAL naming the row). */
enum { MM_POOL_MAX = 0, MM_POOL_MEAN = 1, MM_POOL_SUM = 2 };
int mm_modality_pool_forward(const float *x, const uint8_t *mask, int64_t n, int64_t k, int64_t d, int mode,
                             float *y, int32_t *arg, mm_err *e);
void mm_modality_pool_backward(const uint8_t *mask, const int32_t *arg, const float *gy, int64_t n, int64_t k,
                               int64_t d, int mode, float *gx);

/* the pooling of one row (mm_modality_pool_forward's inner step, which the
 * training loop calls per row): pool input x (modality i, d floats)
 * into y; first: y = x (and ar = i), else max (ar: the winner's index, no
 * branches) or sum. mm_pool_row_finish then divides by cnt for the mean. */
void mm_pool_row_add(int mode, int first, int32_t i, const float *restrict x, float *restrict y, int32_t *restrict ar,
                     int64_t d);
void mm_pool_row_finish(int mode, int64_t cnt, float *y, int64_t d);

#endif
