/* optim.h - optimiser steps: SGD and Adam per parameter, and the fused
 * pass of the training loop.
 * (conventions of every kernel: nn.h) */
#ifndef MM_NN_OPTIM_H
#define MM_NN_OPTIM_H

#include <stdint.h>

/* parameter updates over count floats */
void mm_sgd_step(float *p, const float *g, float *vel, int64_t count, float lr, float momentum, float wd);
void mm_adam_step(float *p, const float *g, float *m, float *v, int64_t count, float lr, float b1, float b2,
                  float eps, float wd, int64_t step);
/* sum of squares of g (for global-norm clipping) */
double mm_sumsq(const float *g, int64_t count);

/* ---- the training loop's fused pass ---------------------------------------------
 * Step constants of one optimiser step (computed once per step, shared by
 * every parameter segment). */
typedef struct mm_optim_step {
  int adam;        /* 1: Adam, 0: SGD (momentum when momentum != 0) */
  float lr, b1, b2, eps, wd, momentum;
  float step_size; /* Adam: lr / (1 - b1^t) */
  float inv_sbc2;  /* Adam: 1 / sqrt(1 - b2^t) */
  float scale;     /* the gradient is multiplied by this first (clipping); 1 = off */
} mm_optim_step;

/* fills the Adam constants of step t (t >= 1) */
void mm_optim_step_init(mm_optim_step *s, int adam, float lr, float b1, float b2, float eps, float wd, float momentum,
                        int64_t t);

/* One fused pass over count floats of a parameter: bak = p (the weights
 * before the step), the update of p (and m, v; SGD: m is the velocity,
 * unused when momentum == 0), then g = 0. Element for element the same
 * arithmetic as g *= scale then mm_adam_step / mm_sgd_step (no contraction into
 * FMA, IEEE sqrt and division: same bits on every code path).
 * p, g, m, v, bak must not overlap. Returns 1 when every updated p is finite. */
int mm_optim_fused(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict m, float *restrict v,
                   float *restrict bak, int64_t count);

/* mm_optim_fused split over mm_parallel_for's threads (big segments only),
 * each thread under the caller's MXCSR (flush-to-zero): the same bits as one
 * call. */
int mm_optim_fused_mt(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict m,
                      float *restrict v, float *restrict bak, int64_t count);

/* 1 when no x[i] is Inf or NaN (a test of the exponent bits: no float
 * compare, SIMD where the CPU has it) */
int mm_all_finite(const float *x, int64_t n);

/* mm_all_finite over the ranges mm_optim_fused_mt gives each thread (a
 * thread reads the gradient rows its own products wrote) */
int mm_all_finite_mt(const float *x, int64_t n);

#endif
