/* embedding_bag.h - mean of embedding rows per bag.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_EMBEDDING_BAG_H
#define MM_NN_EMBEDDING_BAG_H

#include <stdint.h>

/* y[b,:] = mean of w[ids[k],:] for k in [offsets[b], offsets[b+1])
 * offsets has nbags+1 entries (CSR); an empty bag gives a zero row. */
void mm_embedding_bag_forward(const float *w, int64_t dim, const int64_t *ids, const int64_t *offsets,
                              int64_t nbags, float *y);
/* dense accumulate into gw[nrows,dim] */
void mm_embedding_bag_backward(const int64_t *ids, const int64_t *offsets, int64_t nbags, int64_t dim,
                               const float *gy, float *gw);

#endif
