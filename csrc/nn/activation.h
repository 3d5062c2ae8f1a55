/* activation.h - elementwise activations.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_ACTIVATION_H
#define MM_NN_ACTIVATION_H

#include <stdint.h>

/* elementwise over count floats (y may alias x) */
void mm_relu_forward(const float *x, float *y, int64_t count);
void mm_relu_backward(const float *x, const float *gy, float *gx, int64_t count);
void mm_relu6_forward(const float *x, float *y, int64_t count);
void mm_relu6_backward(const float *x, const float *gy, float *gx, int64_t count);
void mm_tanh_forward(const float *x, float *y, int64_t count);
void mm_tanh_backward(const float *y, const float *gy, float *gx, int64_t count); /* uses the output */
void mm_sigmoid_forward(const float *x, float *y, int64_t count);
void mm_sigmoid_backward(const float *y, const float *gy, float *gx, int64_t count);

#endif
