/* graph.h - a feed-forward graph of NHWC layers, for inference.
 *
 * The readers of pretrained networks (TensorFlow.js / Keras layers models in
 * csrc/io/tfjs.c, the torchvision backbones in csrc/image/backbone.c) build
 * one of these node by node; every node has a unique name and a kind (the
 * layer class a reader names in its errors: "layer 'conv2d_5' (Conv2D)").
 * Inputs of a node are nodes built before it, so the graph is acyclic by
 * construction and its node order is an execution order.
 *
 * mm_graph_finish folds the graph once for inference:
 *   - a per-channel affine map (BatchNormalization) is folded into the
 *     convolution / dense layer before it (W' = W s, b' = b s + t),
 *   - a clamp (ReLU, ReLU6) into the layer before it,
 *   - a zero padding into the convolution after it,
 *   - a sum of two tensors into the convolution that produces one of them
 *     (added before the clamp, as a residual),
 * never through a node that was marked with mm_graph_keep (its value must
 * stay observable); then the convolution weights are packed for
 * nhwc_conv.c. Only kept nodes can be forward outputs.
 *
 * The forward runs the images one at a time through the whole graph (their
 * activations then stay in cache); with several threads each thread takes
 * whole images, and the images left after an even split (a batch of one)
 * run with the threads inside each layer. Memory is planned once per
 * (height, width, outputs) for one image: every tensor gets a place in one
 * arena, reused when its last reader has run (liveness intervals, largest
 * first, lowest free offset); the branches of a concatenation are written
 * straight into their slice of it. Each thread's arena stays allocated for
 * the next call with the same plan. A graph is not for concurrent calls
 * (the plan and the arenas are its own). */
#ifndef MM_GRAPH_H
#define MM_GRAPH_H

#include <stdint.h>

#include "../core/error.h"

typedef struct mm_graph mm_graph;

/* padding of a window: "same" (TensorFlow's rule: out = ceil(in / stride),
 * the extra row / column at the bottom / right), or explicit sizes
 * ("valid" is all zeros) */
typedef struct mm_gpad {
  int same;
  int64_t t, b, l, r;
} mm_gpad;

#define MM_GRAPH_MAXNODES 100000

int mm_graph_new(mm_graph **out, mm_err *e);
void mm_graph_free(mm_graph *g);

/* Builders: return the new node's index (>= 0), or -1 with e set. Weights
 * are copied. lo / hi: the clamp applied to the output (-INFINITY / INFINITY:
 * none). */
/* the input: h x w x c images; h, w <= 0: any size */
int mm_graph_input(mm_graph *g, const char *name, const char *kind, int64_t h, int64_t w, int64_t c, mm_err *e);
/* w [kh, kw, cin, cout], bias [cout] or NULL */
int mm_graph_conv(mm_graph *g, const char *name, const char *kind, int in, int64_t kh, int64_t kw, int64_t cin,
                  int64_t cout, int64_t sh, int64_t sw, mm_gpad pad, const float *w, const float *bias, float lo,
                  float hi, mm_err *e);
/* w [kh, kw, c], bias [c] or NULL */
int mm_graph_dwconv(mm_graph *g, const char *name, const char *kind, int in, int64_t kh, int64_t kw, int64_t c,
                    int64_t sh, int64_t sw, mm_gpad pad, const float *w, const float *bias, float lo, float hi,
                    mm_err *e);
/* on the last axis: w [cin, units], bias [units] or NULL */
int mm_graph_dense(mm_graph *g, const char *name, const char *kind, int in, int64_t cin, int64_t units,
                   const float *w, const float *bias, float lo, float hi, mm_err *e);
/* y = clamp(x * scale[c] + shift[c]); scale / shift NULL: 1 / 0 */
int mm_graph_affine(mm_graph *g, const char *name, const char *kind, int in, int64_t c, const float *scale,
                    const float *shift, float lo, float hi, mm_err *e);
int mm_graph_clamp(mm_graph *g, const char *name, const char *kind, int in, float lo, float hi, mm_err *e);
int mm_graph_pad(mm_graph *g, const char *name, const char *kind, int in, int64_t t, int64_t b, int64_t l,
                 int64_t r, mm_err *e);
/* max = 1: max pool, else average pool (positions outside the input are
 * left out of both, and of the average's count) */
int mm_graph_pool(mm_graph *g, const char *name, const char *kind, int in, int max, int64_t kh, int64_t kw,
                  int64_t sh, int64_t sw, mm_gpad pad, mm_err *e);
/* -> 1 x 1 x c */
int mm_graph_global_avgpool(mm_graph *g, const char *name, const char *kind, int in, mm_err *e);
int mm_graph_add(mm_graph *g, const char *name, const char *kind, int k, const int *in, float lo, float hi,
                 mm_err *e);
/* along the channels */
int mm_graph_concat(mm_graph *g, const char *name, const char *kind, int k, const int *in, mm_err *e);
/* over the channels */
int mm_graph_softmax(mm_graph *g, const char *name, const char *kind, int in, mm_err *e);
/* h x w x c -> 1 x 1 x (h w c), in NHWC order */
int mm_graph_flatten(mm_graph *g, const char *name, const char *kind, int in, mm_err *e);
/* y = x (dropout at inference) */
int mm_graph_identity(mm_graph *g, const char *name, const char *kind, int in, mm_err *e);

/* node n's value stays observable (a possible forward output) */
int mm_graph_keep(mm_graph *g, int node, mm_err *e);
/* fold and pack (see above); no node can be added afterwards */
int mm_graph_finish(mm_graph *g, mm_err *e);

int mm_graph_size(const mm_graph *g);
int mm_graph_find(const mm_graph *g, const char *name); /* -1 when none */
const char *mm_graph_name(const mm_graph *g, int node);
const char *mm_graph_kind(const mm_graph *g, int node);
int mm_graph_input_node(const mm_graph *g); /* -1 before mm_graph_input */
/* the input's declared h, w (0: any) and c */
void mm_graph_input_shape(const mm_graph *g, int64_t *h, int64_t *w, int64_t *c);
/* weights of the layers as built (before folding) */
int64_t mm_graph_params(const mm_graph *g);

/* node's output shape for an h x w input; MM_EINVAL naming the layer whose
 * shapes do not fit */
int mm_graph_shape(mm_graph *g, int node, int64_t h, int64_t w, int64_t shape[3], mm_err *e);

/* Run n images x (NCHW planar [n, c, h, w] when nchw, else NHWC) and write
 * the value of each kept node outs[i] to ys[i]: n rows of oh * ow * oc
 * floats in NHWC order. Works after mm_graph_finish (called here when not
 * yet). */
int mm_graph_forward(mm_graph *g, const float *x, int nchw, int64_t n, int64_t h, int64_t w, int k, const int *outs,
                     float *const *ys, mm_err *e);

/* images per pass through the graph (0: automatic) */
void mm_graph_set_group(mm_graph *g, int64_t images);

/* the arena of the current plan (bytes, one image, per thread), 0 before a forward */
int64_t mm_graph_arena_bytes(const mm_graph *g);
/* multiply-adds of the computing steps for n images of h x w up to node out,
 * and the bytes of one thread's arena (a planning pass, no compute) */
int mm_graph_cost(mm_graph *g, int64_t n, int64_t h, int64_t w, int out, double *macs, int64_t *arena_bytes,
                  mm_err *e);

/* Per-step timing for the benchmarks: while on, every forward adds each
 * executed step's seconds (CPU time of the calling thread: with one thread,
 * the step's cost even on a machine busy with other work) and multiply-adds
 * to its node's counters (with several threads: the calling thread's images). */
void mm_graph_profile(mm_graph *g, int on);
/* node's accumulated seconds and multiply-adds (0 when never run); the op
 * it ran as after folding ("conv", "dwconv", "dense", "pool", ...) and its
 * window (kh x kw; 0 x 0 for ops without one) */
void mm_graph_profile_get(const mm_graph *g, int node, double *secs, double *macs, const char **op, int *kh,
                          int *kw);

#endif
