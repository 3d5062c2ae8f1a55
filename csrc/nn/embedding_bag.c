/* embedding_bag.c - mean of embedding rows per bag (CSR offsets). */
#include <string.h>

#include "embedding_bag.h"

/* rows of a big table are cache (and TLB) misses: ask for the row PF ids
 * ahead while summing the current one */
#define PF 4
static void prefetch_row(const float *r, int64_t dim) {
  for (int64_t j = 0; j < dim; j += 16) __builtin_prefetch(r + j, 0, 3);
}

void mm_embedding_bag_forward(const float *w, int64_t dim, const int64_t *ids, const int64_t *offsets,
                              int64_t nbags, float *y) {
  int64_t end = nbags > 0 ? offsets[nbags] : 0;
  for (int64_t k = offsets[0]; k < end && k < offsets[0] + PF; k++) prefetch_row(w + ids[k] * dim, dim);
  for (int64_t b = 0; b < nbags; b++) {
    float *yr = y + b * dim;
    memset(yr, 0, (size_t)dim * sizeof(float));
    int64_t lo = offsets[b], hi = offsets[b + 1];
    if (hi <= lo) continue;
    for (int64_t k = lo; k < hi; k++) {
      if (k + PF < end) prefetch_row(w + ids[k + PF] * dim, dim);
      const float *wr = w + ids[k] * dim;
      for (int64_t j = 0; j < dim; j++) yr[j] += wr[j];
    }
    float s = 1.0f / (float)(hi - lo);
    for (int64_t j = 0; j < dim; j++) yr[j] *= s;
  }
}

void mm_embedding_bag_backward(const int64_t *ids, const int64_t *offsets, int64_t nbags, int64_t dim,
                               const float *gy, float *gw) {
  if (!gw) return;
  for (int64_t b = 0; b < nbags; b++) {
    int64_t lo = offsets[b], hi = offsets[b + 1];
    if (hi <= lo) continue;
    float s = 1.0f / (float)(hi - lo);
    const float *g = gy + b * dim;
    for (int64_t k = lo; k < hi; k++) {
      float *wr = gw + ids[k] * dim;
      for (int64_t j = 0; j < dim; j++) wr[j] += s * g[j];
    }
  }
}
