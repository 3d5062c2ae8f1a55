/* nhwc.h - inference kernels on channels-last (NHWC) float32 activations,
 * for the layer graphs of csrc/nn/graph.h (TensorFlow.js / Keras models and
 * the torchvision backbones).
 *
 * An activation is a view: n images of h x w pixels of c channels, element
 * (b, y, x, ch) at p[b*is + y*rs + x*ps + ch]. A dense tensor has ps = c,
 * rs = w*c, is = h*w*c; a slice of a wider tensor (the channels of one branch
 * of a concatenation) has ps > c. Every kernel reads and writes views, so a
 * branch writes straight into its part of the concatenated tensor.
 *
 * Activations after a layer are a clamp: y = min(max(v, lo), hi) (linear:
 * -inf..inf, ReLU: 0..inf, ReLU6: 0..6).
 *
 * Every kernel runs on mm_parallel_for's threads and dispatches on mm_isa():
 * AVX-512 and AVX2 tiles, and portable C that computes the same sums. */
#ifndef MM_NHWC_H
#define MM_NHWC_H

#include <stdint.h>

typedef struct mm_view {
  float *p;
  int64_t n, h, w, c;
  int64_t ps, rs, is; /* pixel, row and image strides (floats) */
} mm_view;

/* a dense view of n x h x w x c at p */
mm_view mm_view_dense(float *p, int64_t n, int64_t h, int64_t w, int64_t c);

/* ---- convolution (nhwc_conv.c) ----------------------------------------------------
 * y = clamp(conv(x, W) + bias [+ r]) with x already padded (a "valid"
 * convolution: oh = (x.h - kh) / sh + 1). Computed as a GEMM whose rows are
 * output pixels and whose K index runs over (ky, kx, ci) - the order of a
 * Keras kernel [kh, kw, cin, cout] - with the weights packed once into panels
 * of 16 output channels: wp[panel][k][16], zero past cout. */
#define MM_NHWC_MAXTAPS 1024 /* kh * kw of a convolution at most */

typedef struct mm_conv_nhwc {
  int64_t cin, cout, kh, kw, sh, sw;
  const float *wp;   /* packed weights: mm_conv_nhwc_packed_size floats */
  const float *bias; /* cout floats, or NULL */
  float lo, hi;      /* the clamp */
} mm_conv_nhwc;

/* floats of packed weights for (kh, kw, cin, cout) */
int64_t mm_conv_nhwc_packed_size(int64_t kh, int64_t kw, int64_t cin, int64_t cout);
/* pack w [kh, kw, cin, cout] (Keras HWIO order) into wp */
void mm_conv_nhwc_pack(const float *w, int64_t kh, int64_t kw, int64_t cin, int64_t cout, float *wp);
/* r (nullable): a view shaped like y added before the clamp (a residual) */
void mm_conv_nhwc_forward(const mm_conv_nhwc *cv, const mm_view *x, const mm_view *r, const mm_view *y);

/* ---- depthwise convolution (nhwc_dwconv.c) ----------------------------------------
 * y[b, oy, ox, c] = clamp(bias[c] + sum W[ky, kx, c] x[b, oy*sh + ky - pt, ox*sw + kx - pl, c])
 * with zeros outside x (the padding is applied here, not copied). */
typedef struct mm_dwconv_nhwc {
  int64_t c, kh, kw, sh, sw, pt, pl;
  const float *w;    /* [kh, kw, c] */
  const float *bias; /* [c] or NULL */
  float lo, hi;
} mm_dwconv_nhwc;
void mm_dwconv_nhwc_forward(const mm_dwconv_nhwc *dw, const mm_view *x, const mm_view *y);

/* ---- elementwise and pooling (nhwc_ops.c) ------------------------------------------ */
/* y = x with a zero border: y.h = x.h + pt + pb, y.w = x.w + pl + pr */
void mm_nhwc_pad(const mm_view *x, int64_t pt, int64_t pl, const mm_view *y);
/* y = x (same shape; the two may be different slices) */
void mm_nhwc_copy(const mm_view *x, const mm_view *y);
/* y = clamp(x * scale[c] + shift[c]); scale / shift NULL: 1 / 0 */
void mm_nhwc_affine(const mm_view *x, const float *scale, const float *shift, float lo, float hi, const mm_view *y);
/* y = clamp(sum of the k inputs) */
void mm_nhwc_add(int k, const mm_view *xs, float lo, float hi, const mm_view *y);
/* max / average pools over kh x kw windows at strides sh, sw, the window's
 * top left corner at (oy*sh - pt, ox*sw - pl); positions outside x are left
 * out (of the max, and of the average's count, as TensorFlow does) */
void mm_nhwc_maxpool(const mm_view *x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                     const mm_view *y);
void mm_nhwc_avgpool(const mm_view *x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                     const mm_view *y);
/* y[b, 0, 0, c] = mean over the pixels of x[b] */
void mm_nhwc_global_avgpool(const mm_view *x, const mm_view *y);
/* softmax over the channels of every pixel */
void mm_nhwc_softmax(const mm_view *x, const mm_view *y);
/* y (NHWC view) = x [n, c, h, w] (planar) */
void mm_nhwc_from_nchw(const float *x, const mm_view *y);

#endif
