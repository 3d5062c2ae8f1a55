/* embedding_bag.h - mean of embedding rows per bag.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_EMBEDDING_BAG_H
#define MM_NN_EMBEDDING_BAG_H

#include <stdint.h>

#include "../core/error.h"

/* y[b,:] = mean of w[ids[k],:] for k in [offsets[b], offsets[b+1])
 * offsets has nbags+1 entries (CSR); an empty bag gives a zero row. */
void mm_embedding_bag_forward(const float *w, int64_t dim, const int64_t *ids, const int64_t *offsets,
                              int64_t nbags, float *y);
/* dense accumulate into gw[nrows,dim] */
void mm_embedding_bag_backward(const int64_t *ids, const int64_t *offsets, int64_t nbags, int64_t dim,
                               const float *gy, float *gw);

/* The CSR bounds of bags given as torch.nn.functional.embedding_bag takes
 * them: `no` offsets into nids ids, counted from offsets[0], which must be 0
 * (counts) or 1 (positions). With include_last = 0 each offset starts a bag
 * and the last bag runs to the end of the ids (nbags = no); with 1 the last
 * offset ends the last bag (nbags = no - 1, at least 2 offsets); with -1 the
 * second reading is taken when there are at least 2 offsets and the last one
 * is nids. csr (room for no + 1) receives nbags + 1 0-based bounds. MM_EINVAL
 * naming the offset (1-based, as given) when one is out of range or smaller
 * than the one before. */
int mm_embedding_bag_csr(const int64_t *offsets, int64_t no, int64_t nids, int include_last, int64_t *csr,
                         int64_t *nbags, mm_err *e);

#endif
