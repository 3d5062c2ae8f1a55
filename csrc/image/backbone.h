/* backbone.h - ImageNet CNN backbones, forward only (inference): resnet18 and
 * mobilenet_v2 exactly as torchvision builds them, up to the global average
 * pool (the classifier head is not part of the backbone).
 *
 * Parameters are named as in torchvision's state_dict ("conv1.weight",
 * "layer2.0.downsample.1.running_var", "features.3.conv.1.0.weight", ...),
 * float32, shapes as PyTorch lays them. A new backbone holds zeros (and BN
 * running_var = 1); fill it with mm_backbone_param (from a safetensors file
 * written by tools/export_torchvision.py, see lua/mmfuse/image.lua).
 * Heads and bookkeeping tensors of the state_dict (fc.*, classifier.*,
 * *.num_batches_tracked) are not parameters here; loaders skip them.
 *
 * BatchNorm uses running statistics (eps 1e-5), as model.eval() does.
 */
#ifndef MM_BACKBONE_H
#define MM_BACKBONE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct mm_backbone mm_backbone;

/* arch: "resnet18" or "mobilenet_v2". */
int mm_backbone_new(const char *arch, mm_backbone **out, mm_err *e);
void mm_backbone_free(mm_backbone *b);

const char *mm_backbone_arch(const mm_backbone *b);
int64_t mm_backbone_dim(const mm_backbone *b); /* 512 (resnet18), 1280 (mobilenet_v2) */

/* parameters, in state_dict order */
int mm_backbone_nparams(const mm_backbone *b);
const char *mm_backbone_param_name(const mm_backbone *b, int i);
/* returns ndim, fills shape[0..ndim) (ndim <= 4) */
int mm_backbone_param_shape(const mm_backbone *b, int i, int64_t *shape);
int64_t mm_backbone_param_numel(const mm_backbone *b, int i);
/* a writable pointer (the next forward rebuilds its graph from the parameters) */
float *mm_backbone_param_data(mm_backbone *b, int i);
/* the same for reading only */
const float *mm_backbone_param_peek(const mm_backbone *b, int i);
/* parameter i = src (numel floats; MM_ENUM naming the first NaN or Inf,
 * the parameter then unchanged) */
int mm_backbone_set(mm_backbone *b, int i, const float *src, mm_err *e);
/* the same from little-endian float32 bytes at offset off of data[0..len)
 * (MM_EINVAL when they do not hold the parameter; MM_ENUM, the parameter
 * then holding the bytes) */
int mm_backbone_set_raw(mm_backbone *b, int i, const void *data, size_t len, int64_t off, mm_err *e);
/* index of a parameter by name, -1 if none */
int mm_backbone_find(const mm_backbone *b, const char *name);
int64_t mm_backbone_total_params(const mm_backbone *b);

/* x: [n, 3, h, w] (normalised as the weights expect, e.g. ImageNet mean/std),
 * h and w in 16..4096 (resnet18 >= 32 is sensible); y: [n, dim].
 * Runs on the NHWC graph executor (csrc/nn/graph.h), which keeps its
 * activation memory for the next call of the same size; not for concurrent
 * calls on one backbone. */
int mm_backbone_forward(const mm_backbone *b, const float *x, int64_t n, int64_t h, int64_t w, float *y, mm_err *e);

/* the graph the last forward ran (NULL before the first): for profiling */
struct mm_graph;
struct mm_graph *mm_backbone_graph(mm_backbone *b);

#endif
