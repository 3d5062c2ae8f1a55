/* cnn_direct.h - inference of a small CNN (conv k x k, stride 1, "same"
 * padding, bias, ReLU, optional 2 x 2 max pool; then a global average pool)
 * by direct convolution, one sample at a time, without im2col.
 *
 * Per sample, every activation lives in a padded channels-last buffer
 * [(h + k - 1) x (w + k - 1)] x cs whose border is zero. Output position
 * p = y * wp + x (wp the padded width) of a k x k convolution is then
 *   sum over (ky, kx, ci) of W[ky, kx, ci, :] * X[p + ky * wp + kx, ci]
 * for every p in one flat range: a GEMM whose B rows are the input shifted by
 * a fixed offset, computed in register tiles of output channels x positions
 * (the two columns per row that fall on the padding are computed and thrown
 * away). The conv result stays in cache for the ReLU / pool / next layer.
 *
 * The same sums as mm_conv2d_cn_forward + ReLU + max pool + global average
 * pool, in a different order: results agree to rounding, not to the bit.
 * Samples are split over mm_threads(); each sample's arithmetic is the same
 * on any thread count. Register tiles for the "avx512" and "avx2" mm_sgemm
 * kernels, and portable C (slow) with "blas": mm_cnn_direct_ok() says
 * whether the kernel in use has fast tiles. */
#ifndef MM_CNN_DIRECT_H
#define MM_CNN_DIRECT_H

#include <stdint.h>

typedef struct mm_cnn_block {
  int64_t cout, k;      /* output channels, odd kernel size (padding k / 2) */
  const float *w, *b;   /* weights [cout, cin, k, k], bias [cout] (nullable) */
  int pool;             /* a 2 x 2, stride 2 max pool after the ReLU */
} mm_cnn_block;

/* 1 when the mm_sgemm kernel in use has a direct-convolution twin */
int mm_cnn_direct_ok(void);

/* floats of scratch mm_cnn_direct_forward needs for n samples of cin x h x w
 * (on mm_parallel_threads(n) threads); -1 when a shape is invalid.
 * wino = 1: with the AVX-512 kernel, 3 x 3 blocks with a pool, even sizes and
 * at least 8 input channels run as Winograd F(2 x 2, 3 x 3) (16 products per
 * 2 x 2 outputs instead of 36; equal to the direct sums to float rounding);
 * 0: every block by direct convolution. */
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

#endif
