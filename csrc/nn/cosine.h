/* cosine.h - row-wise cosine similarity.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_COSINE_H
#define MM_NN_COSINE_H

#include <stdint.h>

/* s[i] = a_i.b_i / max(|a_i||b_i|, eps) (eps = 1e-8 as PyTorch) */
void mm_cosine_forward(const float *a, const float *b, float *s, int64_t n, int64_t d);
void mm_cosine_backward(const float *a, const float *b, const float *gs, float *ga, float *gb, int64_t n,
                        int64_t d);

#endif
