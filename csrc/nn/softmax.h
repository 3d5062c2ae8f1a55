/* softmax.h - softmax and log-softmax.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_SOFTMAX_H
#define MM_NN_SOFTMAX_H

#include <stdint.h>

/* over the last dimension of x[rows, cols], numerically stable */
void mm_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void mm_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols);
void mm_log_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void mm_log_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols);

#endif
