/* ranking.h - the common-space auxiliary ranking loss.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_RANKING_H
#define MM_NN_RANKING_H

#include <stdint.h>

/* the common-space auxiliary loss.
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

#endif
