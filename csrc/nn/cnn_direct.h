/* cnn_direct.h - inference of a small CNN (conv k x k, stride 1, "same"
 * padding, bias, ReLU, optional 2 x 2 max pool; then a global average pool),
 * one sample at a time, without im2col. Every activation of a sample stays in
 * cache; the samples are split over mm_threads().
 *
 * A block's input lives in zero-bordered planes [cin][(h + k - 1) x (w + k - 1)].
 * Three ways to run a block (AVX-512; AVX2 and portable C use the first):
 *  - channel vectors: output position p = (y, x) of a row segment is
 *      sum over (ky, kx, ci) of W[ky, kx, ci, :] * X[ci, y + ky, x + kx],
 *    a GEMM whose B rows are the planes shifted by fixed offsets, in register
 *    tiles of (1 or 2 vectors of output channels) x (up to 28 positions);
 *  - position vectors, for pooled blocks with at most 16 outputs (a first
 *    layer): 2 conv rows x 32 positions x 4 channels per tile, pooled in
 *    registers and stored straight into the next block's planes (or, for
 *    mm_cnn_direct_conv2d, unpooled into its NCHW output);
 *  - Winograd F(4 x 4, 3 x 3) for 3 x 3 blocks with at least 8 input
 *    channels: 36 products per 4 x 4 outputs instead of 144; its input is
 *    kept channels-last ([h + 2][w + 2][cin up to 16], zero border).
 * The same sums as mm_conv2d_cn_forward + ReLU + max pool + global average
 * pool in other orders: results agree to rounding, not to the bit. Each
 * sample's arithmetic is the same whatever the thread count or batch. */
#ifndef MM_CNN_DIRECT_H
#define MM_CNN_DIRECT_H

#include <stdint.h>

#define MM_CNN_MAXBLOCKS 8 /* blocks per call */

typedef struct mm_cnn_block {
  int64_t cout, k;      /* output channels, odd kernel size (padding k / 2) */
  const float *w, *b;   /* weights [cout, cin, k, k], bias [cout] (nullable) */
  int pool;             /* a 2 x 2, stride 2 max pool after the ReLU */
} mm_cnn_block;

/* 1 when the mm_sgemm kernel in use has a direct-convolution twin */
int mm_cnn_direct_ok(void);

/* floats of scratch mm_cnn_direct_forward needs for n samples of cin x h x w
 * (on mm_parallel_threads(n) threads); -1 when a shape is invalid.
 * wino = 1: with the AVX-512 kernel, 3 x 3 blocks with at least 8 input
 * channels run as Winograd F(4 x 4, 3 x 3) (36 products per 4 x 4
 * outputs instead of 144; equal to the direct sums to float rounding, about
 * 1e-6 of the outputs' scale); 0: every block by direct convolution. */
int64_t mm_cnn_direct_scratch(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                              int wino);

/* x: n samples [cin, h, w] (planar); y: [n, bl[nb-1].cout], the global
 * average of the last block's (pooled) output. scratch: at least
 * mm_cnn_direct_scratch(..., wino) floats. packed = 1: scratch still holds
 * the kernels packed by an earlier call with the same blocks, weights, cin, h,
 * w, wino and mm_sgemm kernel (its first part is not rewritten); else any
 * content. */
void mm_cnn_direct_forward(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                           const float *x, float *y, float *scratch, int packed, int wino);

/* the same from n RGB images of bytes [n, h, w, 3] (cin = 3): the input is
 * byte * scale[c] + shift[c], as mm_image_prep_rgb8 computes it, written
 * straight into the first block's planes (no float image in between) */
void mm_cnn_direct_forward_rgb8(const mm_cnn_block *bl, int nb, int64_t n, int64_t h, int64_t w, const uint8_t *rgb8,
                                const float scale[3], const float shift[3], float *y, float *scratch, int packed,
                                int wino);

/* y [n, cout, h, w] = conv2d(x [n, cin, h, w], wt [cout, cin, k, k], b) with
 * stride 1 and padding k / 2, no ReLU: one block of mm_cnn_direct_forward's
 * paths (Winograd for 3 x 3 with >= 8 inputs, position vectors for <= 16
 * outputs, else the channel-vector tiles), for mm_conv2d_forward. Returns 0, or -1 (shape out of range, no memory: y
 * untouched, the caller computes it another way). */
int mm_cnn_direct_conv2d(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t k, const float *x,
                         const float *wt, const float *b, float *y);

#endif
