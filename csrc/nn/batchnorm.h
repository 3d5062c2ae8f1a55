/* batchnorm.h - batch normalisation, inference form.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_BATCHNORM_H
#define MM_NN_BATCHNORM_H

#include <stdint.h>

/* inference form (backbones), x[n,c,hw] */
void mm_batchnorm_infer(const float *x, float *y, int64_t n, int64_t c, int64_t hw, const float *mean,
                        const float *var, const float *gamma, const float *beta, float eps);

#endif
