#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void mm_rng_seed(mm_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  r->has_spare = 0;
  r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mm_rng_u64(mm_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float mm_rng_uniform(mm_rng *r) { return (float)(mm_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double mm_rng_double(mm_rng *r) { return (double)(mm_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double mm_rng_normal(mm_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1, u2;
  do {
    u1 = mm_rng_double(r);
  } while (u1 <= 0.0);
  u2 = mm_rng_double(r);
  double rad = sqrt(-2.0 * log(u1));
  double th = 6.283185307179586 * u2;
  r->spare = rad * sin(th);
  r->has_spare = 1;
  return rad * cos(th);
}

uint64_t mm_rng_below(mm_rng *r, uint64_t n) {
  /* rejection sampling: no modulo bias */
  uint64_t lim = UINT64_MAX - (UINT64_MAX % n);
  uint64_t x;
  do {
    x = mm_rng_u64(r);
  } while (x >= lim);
  return x % n;
}

void mm_rng_shuffle(mm_rng *r, int64_t *a, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)mm_rng_below(r, (uint64_t)i + 1);
    int64_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

static mm_rng global_rng = {{0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL, 1}, 0, 0.0};

mm_rng *mm_rng_global(void) { return &global_rng; }

void mm_rng_fill_uniform(mm_rng *r, float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = mm_rng_uniform(r);
}

void mm_rng_fill_normal(mm_rng *r, float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)mm_rng_normal(r);
}
