/* rng.h - seedable pseudo-random numbers (xoshiro256**, seeded by splitmix64).
 *
 * Every random choice in mmfuse (init, dropout, shuffling, augmentation) draws
 * from an explicit mm_rng, so one seed reproduces a run bit for bit.
 * mm_rng_global() is the generator behind mm.seed(n) and mm.rand/randn.
 */
#ifndef MM_RNG_H
#define MM_RNG_H

#include <stdint.h>

typedef struct mm_rng {
  uint64_t s[4];
  int has_spare;   /* Box-Muller produces pairs */
  double spare;
} mm_rng;

void mm_rng_seed(mm_rng *r, uint64_t seed);
uint64_t mm_rng_u64(mm_rng *r);
/* uniform in [0, 1) with 24 random bits (exactly representable in float) */
float mm_rng_uniform(mm_rng *r);
/* uniform double in [0, 1) with 53 random bits */
double mm_rng_double(mm_rng *r);
/* standard normal */
double mm_rng_normal(mm_rng *r);
/* uniform integer in [0, n), unbiased; n > 0 */
uint64_t mm_rng_below(mm_rng *r, uint64_t n);
/* x[0..n) = mm_rng_uniform / (float)mm_rng_normal draws, in order */
void mm_rng_fill_uniform(mm_rng *r, float *x, int64_t n);
void mm_rng_fill_normal(mm_rng *r, float *x, int64_t n);
/* Fisher-Yates shuffle of an int64 array */
void mm_rng_shuffle(mm_rng *r, int64_t *a, int64_t n);

mm_rng *mm_rng_global(void);

#endif
