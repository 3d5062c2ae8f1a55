/* nn.h - the layer kernels: one forward/backward pair per layer kind.
 *
 * Contract for every kernel here:
 *  - raw float32 buffers, row-major, contiguous; sizes are int64_t;
 *  - shapes are validated by the caller (binding or model code): kernels
 *    trust their arguments and never allocate, print or fail, except where a
 *    signature returns int (those take an mm_err);
 *  - gradients of INPUTS (gx, ...) are overwritten (=);
 *    gradients of PARAMETERS (gw, gb) are accumulated (+=), so several
 *    batches or several uses of one weight add up;
 *  - any gradient pointer may be NULL: that gradient is not computed;
 *  - labels are 0-based int64 in C (the Lua face is 1-based);
 *  - modality masks are uint8 (1 = present, 0 = missing).
 * Each kernel lives in its own file (linear.c, conv2d.c, pool2d.c, ...).
 */
#ifndef MM_NN_H
#define MM_NN_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"

/* ---- linear.c: y[n,out] = x[n,in] . w[out,in]^T + b[out] (PyTorch layout) */
void mm_linear_forward(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t in,
                       int64_t out);
void mm_linear_backward(const float *x, const float *w, const float *gy, float *gx, float *gw, float *gb,
                        int64_t n, int64_t in, int64_t out);

/* ---- embedding_bag.c: y[b,:] = mean of w[ids[k],:] for k in [offsets[b], offsets[b+1])
 * offsets has nbags+1 entries (CSR); an empty bag gives a zero row. */
void mm_embedding_bag_forward(const float *w, int64_t dim, const int64_t *ids, const int64_t *offsets,
                              int64_t nbags, float *y);
/* dense accumulate into gw[nrows,dim] */
void mm_embedding_bag_backward(const int64_t *ids, const int64_t *offsets, int64_t nbags, int64_t dim,
                               const float *gy, float *gw);

/* ---- conv2d.c: NCHW, weight [o, c/groups, kh, kw], im2col + sgemm */
typedef struct mm_conv2d_shape {
  int64_t n, c, h, w;     /* input */
  int64_t o, kh, kw;      /* output channels, kernel */
  int64_t sh, sw, ph, pw; /* stride, padding */
  int64_t groups;
  int64_t oh, ow; /* output spatial size (filled by init) */
} mm_conv2d_shape;
int mm_conv2d_shape_init(mm_conv2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                         int64_t kw, int64_t stride, int64_t pad, int64_t groups, mm_err *e);
/* floats of scratch space the col buffer needs */
int64_t mm_conv2d_col_size(const mm_conv2d_shape *s);
void mm_conv2d_forward(const mm_conv2d_shape *s, const float *x, const float *w, const float *b, float *y,
                       float *col);
void mm_conv2d_backward(const mm_conv2d_shape *s, const float *x, const float *w, const float *gy, float *gx,
                        float *gw, float *gb, float *col);

/* ---- pool2d.c: max/avg pooling with padding (avg counts padding, as PyTorch's default) */
typedef struct mm_pool2d_shape {
  int64_t n, c, h, w;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t oh, ow;
} mm_pool2d_shape;
int mm_pool2d_shape_init(mm_pool2d_shape *s, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                         int64_t stride, int64_t pad, mm_err *e);
/* arg (nullable) receives, per output, the flat h*w index of the max inside its plane */
void mm_max_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y, int32_t *arg);
void mm_max_pool2d_backward(const mm_pool2d_shape *s, const int32_t *arg, const float *gy, float *gx);
void mm_avg_pool2d_forward(const mm_pool2d_shape *s, const float *x, float *y);
void mm_avg_pool2d_backward(const mm_pool2d_shape *s, const float *gy, float *gx);
/* x[n,c,h,w] -> y[n,c] */
void mm_global_avg_pool_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw);
void mm_global_avg_pool_backward(const float *gy, float *gx, int64_t n, int64_t c, int64_t hw);

/* ---- activation.c: elementwise over count floats (y may alias x) */
void mm_relu_forward(const float *x, float *y, int64_t count);
void mm_relu_backward(const float *x, const float *gy, float *gx, int64_t count);
void mm_relu6_forward(const float *x, float *y, int64_t count);
void mm_relu6_backward(const float *x, const float *gy, float *gx, int64_t count);
void mm_tanh_forward(const float *x, float *y, int64_t count);
void mm_tanh_backward(const float *y, const float *gy, float *gx, int64_t count); /* uses the output */
void mm_sigmoid_forward(const float *x, float *y, int64_t count);
void mm_sigmoid_backward(const float *y, const float *gy, float *gx, int64_t count);

/* ---- dropout.c: mask[i] = 0 or 1/(1-p) (drawn from rng); y = x*mask */
void mm_dropout_forward(const float *x, float *y, float *mask, int64_t count, float p, mm_rng *rng);
void mm_dropout_backward(const float *mask, const float *gy, float *gx, int64_t count);

/* ---- softmax.c: over the last dimension of x[rows, cols], numerically stable */
void mm_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void mm_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols);
void mm_log_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void mm_log_softmax_backward(const float *y, const float *gy, float *gx, int64_t rows, int64_t cols);

/* ---- loss.c: mean over the batch (weighted as PyTorch: sum w[y_i]*l_i / sum w[y_i]).
 * weight (nullable) is per class. Returns MM_ENUM if the loss is not finite. */
int mm_nll_loss_forward(const float *logp, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                        double *loss, mm_err *e);
/* gx = d(loss)/d(logp) * gloss */
void mm_nll_loss_backward(const int64_t *labels, const float *weight, int64_t n, int64_t c, float gloss,
                          float *gx);
/* cross entropy on logits; probs[n,c] (nullable) receives the softmax */
int mm_cross_entropy_forward(const float *logits, const int64_t *labels, const float *weight, int64_t n, int64_t c,
                             float *probs, double *loss, mm_err *e);
/* needs the probs of the forward */
void mm_cross_entropy_backward(const float *probs, const int64_t *labels, const float *weight, int64_t n,
                               int64_t c, float gloss, float *gx);
/* the same over the rows with mask[i] != 0 (mask NULL: every row); the other
 * rows get probs but no loss and a zero gradient. Returns the loss, 0 when the
 * kept rows' weights sum to 0 (nothing to learn from: gx is then all zero);
 * probs (nullable in the forward) receives the softmax of every row. */
double mm_cross_entropy_masked_forward(const float *logits, const int64_t *labels, const uint8_t *mask,
                                       const float *weight, int64_t n, int64_t c, float *probs);
void mm_cross_entropy_masked_backward(const float *probs, const int64_t *labels, const uint8_t *mask,
                                      const float *weight, int64_t n, int64_t c, float gloss, float *gx);

/* ---- fusion.c: masked pooling of k modality vectors per sample.
 * x[n,k,d]; y[n,d]; arg[n,d] (max only) holds the winning modality index.
 * A sample with no modality present is an error (MM_EINVAL naming the row). */
enum { MM_POOL_MAX = 0, MM_POOL_MEAN = 1, MM_POOL_SUM = 2 };
int mm_modality_pool_forward(const float *x, const uint8_t *mask, int64_t n, int64_t k, int64_t d, int mode,
                             float *y, int32_t *arg, mm_err *e);
void mm_modality_pool_backward(const uint8_t *mask, const int32_t *arg, const float *gy, int64_t n, int64_t k,
                               int64_t d, int mode, float *gx);

/* ---- cosine.c: s[i] = a_i.b_i / max(|a_i||b_i|, eps) (eps = 1e-8 as PyTorch) */
void mm_cosine_forward(const float *a, const float *b, float *s, int64_t n, int64_t d);
void mm_cosine_backward(const float *a, const float *b, const float *gs, float *ga, float *gb, int64_t n,
                        int64_t d);

/* ---- ranking.c: the common-space auxiliary loss.
 * For anchor i with v_i and t_i present, negatives j with t_j present and
 * labels[j] != labels[i]:  l_ij = max(0, margin - cos(v_i,t_i) + cos(v_i,t_j)).
 * Per anchor: mean over its negatives (hardest != 0: the max only).
 * loss = mean over anchors that have >= 1 negative (0 if none).
 * gv, gt (nullable) receive d(loss)/dv, d(loss)/dt times gloss (overwritten).
 * Returns the number of anchors used in *anchors (nullable).
 * scratch: mm_ranking_scratch(n, d) floats (8-byte aligned) for the
 * matrix form (three sgemms over normalised rows, O(n^2) memory); NULL runs
 * the per-pair form (no extra memory, O(n^2 d) scalar work). */
int64_t mm_ranking_scratch(int64_t n, int64_t d);
void mm_ranking_loss(const float *v, const float *t, const int64_t *labels, const uint8_t *vmask,
                     const uint8_t *tmask, int64_t n, int64_t d, float margin, int hardest, float gloss,
                     double *loss, float *gv, float *gt, int64_t *anchors, float *scratch);

/* ---- batchnorm.c: inference form (backbones), x[n,c,hw] */
void mm_batchnorm_infer(const float *x, float *y, int64_t n, int64_t c, int64_t hw, const float *mean,
                        const float *var, const float *gamma, const float *beta, float eps);

/* ---- optim.c: parameter updates over count floats */
void mm_sgd_step(float *p, const float *g, float *vel, int64_t count, float lr, float momentum, float wd);
void mm_adam_step(float *p, const float *g, float *m, float *v, int64_t count, float lr, float b1, float b2,
                  float eps, float wd, int64_t step);
/* sum of squares of g (for global-norm clipping) */
double mm_sumsq(const float *g, int64_t count);
void mm_scale(float *g, int64_t count, float s);

#endif
