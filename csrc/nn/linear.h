/* linear.h - fully connected layer.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_LINEAR_H
#define MM_NN_LINEAR_H

#include <stdint.h>

/* y[n,out] = x[n,in] . w[out,in]^T + b[out] (PyTorch layout) */
void mm_linear_forward(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                       int64_t out);
void mm_linear_backward(const float *x, const float *w, const float *gy, float *gx, float *gw, float *gb,
                        int64_t n, int64_t in, int64_t out);

#endif
