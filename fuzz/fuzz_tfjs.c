/* fuzz_tfjs: arbitrary bytes as a TF.js layers model - model.json text, a NUL, then the
 * bytes of its one shard (named "group1-shard1of1"; a model that lists other shards is
 * refused as missing them) - through mm_tfjs_parse. A model that loads and costs little
 * (at most 2M multiply-adds and 16 MB of activations for one image) is run once on a ramp
 * image, asking for its features and head, so that the planner and the kernels see what
 * the reader lets through. Every failure must come with a message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/tfjs.h"
#include "nn/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t jl = nul ? (size_t)(nul - data) : size;
  /* private copies of exactly their sizes: reads past them are caught */
  char *json = malloc(jl ? jl : 1);
  size_t sl = nul ? size - jl - 1 : 0;
  uint8_t *shard = malloc(sl ? sl : 1);
  if (!json || !shard) {
    free(json);
    free(shard);
    return 0;
  }
  memcpy(json, data, jl);
  if (sl) memcpy(shard, nul + 1, sl);
  mm_tfjs_shard s = {"group1-shard1of1", shard, sl};
  mm_graph *g = NULL;
  mm_tfjs_info info;
  mm_err e;
  if (mm_tfjs_parse(json, jl, "fuzz/model.json", &s, nul ? 1 : 0, NULL, &g, &info, &e) == MM_OK) {
    int64_t h = info.h > 0 ? info.h : 8, w = info.w > 0 ? info.w : 8;
    double macs = 0;
    int64_t arena = 0;
    if (mm_graph_cost(g, 1, h, w, info.head, &macs, &arena, &e) == MM_OK && macs <= 2e6 && arena <= (16 << 20) &&
        h * w * info.c <= (1 << 20)) {
      float *x = malloc((size_t)(h * w * info.c) * sizeof(float));
      int64_t sf[3], sh[3];
      if (x && mm_graph_shape(g, info.feature, h, w, sf, &e) == MM_OK &&
          mm_graph_shape(g, info.head, h, w, sh, &e) == MM_OK) {
        for (int64_t i = 0; i < h * w * info.c; i++) x[i] = (float)(i % 255) / 255.0f;
        float *yf = malloc((size_t)(sf[0] * sf[1] * sf[2]) * sizeof(float));
        float *yh = malloc((size_t)(sh[0] * sh[1] * sh[2]) * sizeof(float));
        int outs[2] = {info.feature, info.head};
        float *ys[2] = {yf, yh};
        if (yf && yh && mm_graph_forward(g, x, 1, 1, h, w, 2, outs, ys, &e) != MM_OK && e.msg[0] == '\0') abort();
        free(yf);
        free(yh);
      }
      free(x);
    }
    mm_graph_free(g);
  } else if (e.msg[0] == '\0') {
    abort(); /* every failure names the problem */
  }
  free(json);
  free(shard);
  return 0;
}
