/* winograd.h - 3x3, stride-1 convolution by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016): every 2x2 block of outputs costs 16 multiplies per
 * (input, output) channel pair instead of 36, done as 16 GEMMs
 * [o x c] . [c x tiles] through mm_sgemm.
 *
 * Layouts are given by strides, so one kernel serves NCHW and channel-major
 * ([c, n, h, w]) tensors: element (n, c, r, col) of x is
 *   x[n * xs_n + c * xs_c + r * w + col]   (rows of a plane contiguous)
 * and likewise for y with ys_n, ys_c (planes oh x ow).
 *
 * With flip the same kernel gives a layer's data gradient (a convolution of
 * the output gradient with the transposed, rotated weights). */
#ifndef MM_WINOGRAD_H
#define MM_WINOGRAD_H

#include <stdint.h>

#include "nn.h"

/* 1 when s is a 3x3, stride-1, ungrouped convolution with padding <= 2 */
int mm_wino_ok(const mm_conv2d_shape *s);

/* floats of scratch mm_wino_forward needs for s */
int64_t mm_wino_scratch(const mm_conv2d_shape *s);

/* y = conv(x, w) + b (b may be NULL), then max(y, 0) when relu.
 * Shapes from s (n, c, h, w -> o, oh, ow). w is [o, c, 3, 3] when flip == 0;
 * when flip != 0, w is stored [c, o, 3, 3] and used rotated by 180 degrees
 * (w'[o][c][ky][kx] = w[c][o][2-ky][2-kx]): the data gradient of a layer
 * with c and o swapped, computed as a convolution of its output gradient.
 * y is overwritten. Single-threaded; scratch holds mm_wino_scratch(s). */
void mm_wino_forward(const mm_conv2d_shape *s, const float *x, int64_t xs_n, int64_t xs_c, const float *w, int flip,
                     const float *b, int relu, float *y, int64_t ys_n, int64_t ys_c, float *scratch);

#endif
