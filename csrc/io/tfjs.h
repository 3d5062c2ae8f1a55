/* tfjs.h - TensorFlow.js / Keras *layers* models: model.json + weight shards.
 *
 * model.json holds the Keras model (modelTopology: a functional graph
 * "Model" / "Functional", or a "Sequential" list) and a weightsManifest:
 * groups of weights, each group's binary data split over shard files beside
 * model.json (concatenated in the listed order); inside a group the weights
 * follow each other in manifest order. A weight is float32, or quantized:
 * float16, or uint8 / uint16 with value = q * scale + min (computed in
 * double and rounded to float, as TensorFlow.js does).
 *
 * The reader builds an mm_graph (csrc/nn/graph.h) in channels-last order
 * and finishes it (BatchNormalization folded into the convolutions). Layers:
 * InputLayer, Conv2D, DepthwiseConv2D (depth_multiplier 1), Dense,
 * BatchNormalization, ReLU (max_value, no slope or threshold), Activation
 * (linear, relu, relu6, softmax), Softmax, ZeroPadding2D, Add, Concatenate
 * (channels), MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
 * Flatten, Dropout. Every other layer class, option or value is an error that
 * names the file, the layer, its class and the option, e.g.
 *   m/model.json: layer 'conv2d_5' (Conv2D): dilation_rate [2,2] is not supported
 * Shard paths are relative to model.json's folder; absolute paths and ".."
 * are refused. The shards' sizes are checked against the manifest before
 * anything is read, and every weight must belong to a layer (and every
 * layer's weights must be there) with the shape it needs.
 *
 * Kept outputs (mm_graph_keep): the feature layer and the model's outputs. */
#ifndef MM_TFJS_H
#define MM_TFJS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../nn/graph.h"

#define MM_TFJS_MAXSHARDS 4096
#define MM_TFJS_MAXWEIGHTS 100000

typedef struct mm_tfjs_info {
  int64_t h, w, c;   /* the input's declared size (h, w: 0 when not declared) */
  int input;         /* graph node of the input */
  int feature;       /* graph node of the feature layer */
  int head;          /* graph node of the model's first output */
  int nlayers;       /* Keras layers */
  char model_name[128];
  char format[32];   /* "layers-model" (or "" when model.json does not say) */
} mm_tfjs_info;

/* A shard in memory, named as the manifest names it. */
typedef struct mm_tfjs_shard {
  const char *name;
  const uint8_t *data;
  size_t len;
} mm_tfjs_shard;

/* Read path (a model.json) and its shards. feature: the name of the layer
 * whose output is the feature vector, or NULL for the default: the last
 * GlobalAveragePooling2D, else the last AveragePooling2D whose output is
 * 1 x 1 at the declared input size. On success *g is a finished graph. */
int mm_tfjs_load(const char *path, const char *feature, mm_graph **g, mm_tfjs_info *info, mm_err *e);

/* The same from model.json text and shards in memory (name: the file name
 * used in messages). */
int mm_tfjs_parse(const char *json, size_t len, const char *name, const mm_tfjs_shard *shards, int nshards,
                  const char *feature, mm_graph **g, mm_tfjs_info *info, mm_err *e);

#endif
