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

int mm_embedding_bag_csr(const int64_t *offsets, int64_t no, int64_t nids, int include_last, int64_t *csr,
                         int64_t *nbags, mm_err *e) {
  if (no < 1) return mm_errorf(e, MM_EINVAL, "offsets is empty (ids has %lld entries)", (long long)nids);
  int64_t base = offsets[0];
  if (base != 0 && base != 1)
    return mm_errorf(e, MM_EINVAL,
                     "offsets[1] = %lld: the first bag must start at 0 (0-based counts) or 1 (1-based positions)",
                     (long long)base);
  int last_ends = include_last >= 0 ? include_last : (no >= 2 && offsets[no - 1] - base == nids);
  if (last_ends && no < 2)
    return mm_errorf(e, MM_EINVAL, "include_last_offset needs at least 2 offsets, got %lld", (long long)no);
  *nbags = last_ends ? no - 1 : no;
  for (int64_t i = 0; i < no; i++) csr[i] = offsets[i] - base;
  if (!last_ends) csr[no] = nids;
  for (int64_t i = 0; i <= *nbags; i++) {
    int64_t o = csr[i];
    if (o < 0 || o > nids)
      return mm_errorf(e, MM_EINVAL, "offsets[%lld] = %lld is out of range %lld..%lld (ids has %lld entries)",
                       (long long)i + 1, (long long)(o + base), (long long)base, (long long)(nids + base),
                       (long long)nids);
    if (i > 0 && o < csr[i - 1])
      return mm_errorf(e, MM_EINVAL, "offsets must be non-decreasing: offsets[%lld] = %lld < offsets[%lld] = %lld",
                       (long long)i + 1, (long long)(o + base), (long long)i, (long long)(csr[i - 1] + base));
  }
  return MM_OK;
}
