/* optim.c - parameter updates with PyTorch's semantics (torch.optim.SGD with
 * dampening 0, torch.optim.Adam with L2 weight decay added to the gradient). */
#include <math.h>
#include <stdint.h>

#include "../core/cpu.h"
#include "optim.h"

void mm_sgd_step(float *p, const float *g, float *vel, int64_t count, float lr, float momentum, float wd) {
  if (momentum != 0.0f && vel) {
    for (int64_t i = 0; i < count; i++) {
      float d = g[i] + wd * p[i];
      vel[i] = momentum * vel[i] + d;
      p[i] -= lr * vel[i];
    }
  } else {
    for (int64_t i = 0; i < count; i++) p[i] -= lr * (g[i] + wd * p[i]);
  }
}

/* one division per element, bias corrections precomputed:
 *   p -= step_size * m / (sqrt(v) * inv_sbc2 + eps)
 * No restrict: Lua may pass one tensor twice, and gcc vectorises the loop
 * behind its own runtime overlap check (restrict measured no faster: the
 * loop is memory-bound). */
static void adam_loop(float *p, const float *g, float *m, float *v, int64_t count, float step_size, float inv_sbc2,
                      float b1, float b2, float eps, float wd) {
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
  for (int64_t i = 0; i < count; i++) {
    float d = g[i] + wd * p[i];
    float mi = b1 * m[i] + c1 * d;
    float vi = b2 * v[i] + c2 * d * d;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (sqrtf(vi) * inv_sbc2 + eps);
  }
}

void mm_adam_step(float *p, const float *g, float *m, float *v, int64_t count, float lr, float b1, float b2,
                  float eps, float wd, int64_t step) {
  if (step < 1) step = 1;
  double bc1 = 1.0 - pow((double)b1, (double)step);
  double bc2 = 1.0 - pow((double)b2, (double)step);
  float step_size = (float)(lr / bc1);
  float inv_sbc2 = (float)(1.0 / sqrt(bc2));
  if (count <= 0) return;
  adam_loop(p, g, m, v, count, step_size, inv_sbc2, b1, b2, eps, wd);
}

double mm_sumsq(const float *g, int64_t count) {
  double s = 0.0;
  for (int64_t i = 0; i < count; i++) s += (double)g[i] * g[i];
  return s;
}

/* ---- the fused pass of the training loop (optim.h) ----------------------------- */

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_OPTIM_X86 1
#include <immintrin.h>
#endif

void mm_optim_step_init(mm_optim_step *s, int adam, float lr, float b1, float b2, float eps, float wd, float momentum,
                        int64_t t) {
  memset(s, 0, sizeof *s);
  s->adam = adam;
  s->lr = lr, s->b1 = b1, s->b2 = b2, s->eps = eps, s->wd = wd, s->momentum = momentum;
  s->scale = 1.0f;
  if (t < 1) t = 1;
  /* as mm_adam_step */
  double bc1 = 1.0 - pow((double)b1, (double)t);
  double bc2 = 1.0 - pow((double)b2, (double)t);
  s->step_size = (float)(lr / bc1);
  s->inv_sbc2 = (float)(1.0 / sqrt(bc2));
}

/* 1 when no x[i] has an all-ones exponent (the step's finite test: csrc/model/update.c) */
static uint32_t nonfinite_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return (u & 0x7f800000u) + 0x00800000u;
}

static int adam_fused_c(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict m,
                        float *restrict v, float *restrict bak, int64_t count) {
  const float b1 = s->b1, b2 = s->b2, c1 = 1.0f - b1, c2 = 1.0f - b2, wd = s->wd, eps = s->eps, sc = s->scale;
  const float step_size = s->step_size, inv_sbc2 = s->inv_sbc2;
  uint32_t acc = 0;
  for (int64_t i = 0; i < count; i++) {
    float pi = p[i], gi = g[i] * sc; /* x * 1.0f == x: no branch in the loop */
    bak[i] = pi;
    float d = gi + wd * pi;
    float mi = b1 * m[i] + c1 * d;
    float vi = b2 * v[i] + c2 * d * d;
    m[i] = mi;
    v[i] = vi;
    pi -= step_size * mi / (sqrtf(vi) * inv_sbc2 + eps);
    p[i] = pi;
    g[i] = 0.0f;
    acc |= nonfinite_bits(pi);
  }
  return !(acc & 0x80000000u);
}

#ifdef MM_OPTIM_X86
/* AVX-512: the same operations in the same order, 16 lanes (mul and add kept
 * apart: no FMA, so the bits equal the scalar loop's) */
__attribute__((target("avx512f"))) static int adam_fused_512(const mm_optim_step *s, float *restrict p,
                                                             float *restrict g, float *restrict m, float *restrict v,
                                                             float *restrict bak, int64_t count) {
  const __m512 b1 = _mm512_set1_ps(s->b1), b2 = _mm512_set1_ps(s->b2), c1 = _mm512_set1_ps(1.0f - s->b1),
               c2 = _mm512_set1_ps(1.0f - s->b2), wd = _mm512_set1_ps(s->wd), eps = _mm512_set1_ps(s->eps),
               sc = _mm512_set1_ps(s->scale), ss = _mm512_set1_ps(s->step_size), ib = _mm512_set1_ps(s->inv_sbc2);
  const __m512i expm = _mm512_set1_epi32(0x7f800000), one = _mm512_set1_epi32(0x00800000);
  __m512i acc = _mm512_setzero_si512();
  const __m512 zero = _mm512_setzero_ps();
  /* bak is only read back after a failed step: big aligned blocks of it go
   * out with streaming stores (no read-for-ownership, no cache pollution) */
  const int stream = count >= 1024 && ((uintptr_t)bak & 63) == 0;
  for (int64_t i = 0; i < count; i += 16) {
    __mmask16 k = count - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - i)) - 1u);
    __m512 pi = _mm512_maskz_loadu_ps(k, p + i), gi = _mm512_maskz_loadu_ps(k, g + i);
    __m512 mi = _mm512_maskz_loadu_ps(k, m + i), vi = _mm512_maskz_loadu_ps(k, v + i);
    gi = _mm512_mul_ps(gi, sc);
    if (stream && k == 0xffff)
      _mm512_stream_ps(bak + i, pi);
    else
      _mm512_mask_storeu_ps(bak + i, k, pi);
    __m512 d = _mm512_add_ps(gi, _mm512_mul_ps(wd, pi));
    mi = _mm512_add_ps(_mm512_mul_ps(b1, mi), _mm512_mul_ps(c1, d));
    vi = _mm512_add_ps(_mm512_mul_ps(b2, vi), _mm512_mul_ps(_mm512_mul_ps(c2, d), d));
    __m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), ib), eps);
    pi = _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(ss, mi), den));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    _mm512_mask_storeu_ps(p + i, k, pi);
    _mm512_mask_storeu_ps(g + i, k, zero);
    acc = _mm512_or_epi32(acc, _mm512_add_epi32(_mm512_and_epi32(_mm512_castps_si512(pi), expm), one));
  }
  if (stream) _mm_sfence();
  return _mm512_test_epi32_mask(acc, _mm512_set1_epi32((int)0x80000000u)) == 0;
}

static int have_avx512(void) { return mm_isa() == MM_ISA_AVX512; }
#endif

static int sgd_fused_c(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict vel,
                       float *restrict bak, int64_t count) {
  const float lr = s->lr, wd = s->wd, mom = s->momentum, sc = s->scale;
  uint32_t acc = 0;
  if (mom != 0.0f && vel) {
    for (int64_t i = 0; i < count; i++) {
      float pi = p[i], gi = g[i] * sc;
      bak[i] = pi;
      float d = gi + wd * pi;
      float ve = mom * vel[i] + d;
      vel[i] = ve;
      pi -= lr * ve;
      p[i] = pi;
      g[i] = 0.0f;
      acc |= nonfinite_bits(pi);
    }
  } else {
    for (int64_t i = 0; i < count; i++) {
      float pi = p[i], gi = g[i] * sc;
      bak[i] = pi;
      pi -= lr * (gi + wd * pi);
      p[i] = pi;
      g[i] = 0.0f;
      acc |= nonfinite_bits(pi);
    }
  }
  return !(acc & 0x80000000u);
}

int mm_optim_fused(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict m, float *restrict v,
                   float *restrict bak, int64_t count) {
  if (count <= 0) return 1;
  if (!s->adam) return sgd_fused_c(s, p, g, m, bak, count);
#ifdef MM_OPTIM_X86
  if (have_avx512()) return adam_fused_512(s, p, g, m, v, bak, count);
#endif
  return adam_fused_c(s, p, g, m, v, bak, count);
}

/* ---- the fused pass over threads ------------------------------------------------------ */

#include <stdatomic.h>

#include "../core/parallel.h"

/* ranges of whole chunks: every range's bak starts 64-byte aligned when bak does */
#define FUSED_CHUNK 4096

/* the chunks to split count floats into over the threads, or 0 when one
 * thread does it (the fused pass and the finite test split alike: a thread
 * reads the gradient rows its products wrote) */
static int64_t split_chunks(int64_t count) {
  int64_t nchunks = (count + FUSED_CHUNK - 1) / FUSED_CHUNK;
  return count >= 4 * FUSED_CHUNK && mm_parallel_threads(nchunks) >= 2 ? nchunks : 0;
}

/* floats [*lo, *hi) of chunks [b, e) */
static void chunk_span(int64_t b, int64_t e, int64_t count, int64_t *lo, int64_t *hi) {
  *lo = b * FUSED_CHUNK;
  *hi = e * FUSED_CHUNK < count ? e * FUSED_CHUNK : count;
}

/* fn(ctx, lo, hi) over floats [lo, hi) of count, split by chunks over the
 * threads when split_chunks says so, each thread under the caller's MXCSR
 * (the flush-to-zero / denormals-are-zero of csrc/model/train.c); 1 when every call
 * returned 1. Every chunk runs even after one failed: the fused pass must
 * leave every weight with its backup. */
typedef int (*chunk_fn)(void *ctx, int64_t lo, int64_t hi);
typedef struct {
  chunk_fn fn;
  void *ctx;
  int64_t count;
  unsigned csr;
  atomic_int bad;
} chunk_job;

static void chunk_range(void *c, int64_t b, int64_t e, int tid) {
  chunk_job *j = c;
  (void)tid;
  int64_t lo, hi;
  chunk_span(b, e, j->count, &lo, &hi);
#ifdef MM_OPTIM_X86
  unsigned old = _mm_getcsr();
  _mm_setcsr(j->csr);
#endif
  if (!j->fn(j->ctx, lo, hi)) atomic_store(&j->bad, 1);
#ifdef MM_OPTIM_X86
  _mm_setcsr(old);
#endif
}

static int run_chunks(int64_t count, chunk_fn fn, void *ctx) {
  int64_t nchunks = split_chunks(count);
  if (!nchunks) return fn(ctx, 0, count);
  chunk_job j = {fn, ctx, count, 0, 0};
#ifdef MM_OPTIM_X86
  j.csr = _mm_getcsr();
#endif
  mm_parallel_for(nchunks, chunk_range, &j);
  return !atomic_load(&j.bad);
}

typedef struct {
  const mm_optim_step *s;
  float *p, *g, *m, *v, *bak;
} fused_args;

static int fused_part(void *ctx, int64_t lo, int64_t hi) {
  const fused_args *a = ctx;
  return mm_optim_fused(a->s, a->p + lo, a->g + lo, a->m ? a->m + lo : NULL, a->v ? a->v + lo : NULL, a->bak + lo,
                        hi - lo);
}

int mm_optim_fused_mt(const mm_optim_step *s, float *restrict p, float *restrict g, float *restrict m,
                      float *restrict v, float *restrict bak, int64_t count) {
  fused_args a = {s, p, g, m, v, bak};
  return run_chunks(count, fused_part, &a);
}

/* ---- finite test (optim.h) ------------------------------------------------------ */

static int all_finite_c(const float *x, int64_t n) {
  uint32_t acc = 0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) { /* blocks: early exit without hurting the vector loop */
    uint32_t a = 0;
    for (int j = 0; j < 64; j++) a |= nonfinite_bits(x[i + j]);
    if (a & 0x80000000u) return 0;
  }
  for (; i < n; i++) acc |= nonfinite_bits(x[i]);
  return !(acc & 0x80000000u);
}

#ifdef MM_OPTIM_X86
__attribute__((target("avx512f"))) static int all_finite_512(const float *x, int64_t n) {
  const __m512i expm = _mm512_set1_epi32(0x7f800000);
  __mmask16 bad = 0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    /* an all-ones exponent: (bits & exp) == exp */
    __m512i a0 = _mm512_and_epi32(_mm512_loadu_si512((const void *)(x + i)), expm);
    __m512i a1 = _mm512_and_epi32(_mm512_loadu_si512((const void *)(x + i + 16)), expm);
    __m512i a2 = _mm512_and_epi32(_mm512_loadu_si512((const void *)(x + i + 32)), expm);
    __m512i a3 = _mm512_and_epi32(_mm512_loadu_si512((const void *)(x + i + 48)), expm);
    bad = _mm512_cmpeq_epi32_mask(a0, expm) | _mm512_cmpeq_epi32_mask(a1, expm) | _mm512_cmpeq_epi32_mask(a2, expm) |
          _mm512_cmpeq_epi32_mask(a3, expm);
    if (bad) return 0;
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    __m512i a = _mm512_and_epi32(_mm512_maskz_loadu_epi32(k, (const void *)(x + i)), expm);
    if (_mm512_mask_cmpeq_epi32_mask(k, a, expm)) return 0;
  }
  return 1;
}
#endif

int mm_all_finite(const float *x, int64_t n) {
  if (n <= 0) return 1;
#ifdef MM_OPTIM_X86
  if (have_avx512()) return all_finite_512(x, n);
#endif
  return all_finite_c(x, n);
}

static int finite_part(void *ctx, int64_t lo, int64_t hi) { return mm_all_finite((const float *)ctx + lo, hi - lo); }

int mm_all_finite_mt(const float *x, int64_t n) { return run_chunks(n, finite_part, (void *)x); }
