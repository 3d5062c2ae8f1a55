/* gemm.c - see gemm.h.
 *
 * The SIMD kernels follow the usual register-blocking scheme: C is cut into
 * MR x NR tiles held in vector registers while a panel of K runs through
 * them. B is copied ("packed") per (KC x NC) block into NR-wide strips,
 * zero-padded past n, so the inner loop reads one contiguous vector row of
 * B per k and broadcasts one element of A per tile row. A is not packed:
 * its elements are broadcast straight from memory (row stride lda when A is
 * m x k, column stride lda when it is stored transposed), and the MR rows
 * of a tile stay in L1 while the strips of the B block go by. The packed B
 * block (KC x NC floats, 128 KiB) lives on the caller's stack.
 *
 * Every element of C is summed over k in the same order whatever the
 * blocking in m and n, so results do not depend on the tile an element
 * falls in (but they do differ from OpenBLAS in the last bits). */
#include "gemm.h"

#include "cpu.h"
#include "parallel.h"

#include <cblas.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_GEMM_X86 1
#include <immintrin.h>

#include "tr16.h"
#endif

enum { K_BLAS = MM_ISA_GENERIC, K_AVX2 = MM_ISA_AVX2, K_AVX512 = MM_ISA_AVX512 };

#define KC 256
#define NC 128

static int kernel(void) { return mm_isa(); }

const char *mm_gemm_kernel(void) { return mm_isa_name(mm_isa()); }

/* C = beta * C for an m x n block (beta == 0 writes zeros, never reads C) */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    float *r = c + i * ldc;
    if (beta == 0.0f)
      memset(r, 0, (size_t)n * sizeof(float));
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; j++) r[j] *= beta;
  }
}

/* Copies op(B)[pc:pc+kc, jc:jc+nc] into strips of nr columns: strip s holds
 * kc rows of nr floats at bp + s*kc*nr; columns past nc are zero. */
static void pack_b(int tb, const float *b, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc, int nr,
                   float *bp) {
  for (int64_t s = 0; s * nr < nc; s++) {
    int64_t j0 = jc + s * nr, w = nc - s * nr < nr ? nc - s * nr : nr;
    float *dst = bp + s * kc * nr;
    if (!tb) {
      const float *src = b + pc * ldb + j0;
      for (int64_t p = 0; p < kc; p++) {
        memcpy(dst + p * nr, src + p * ldb, (size_t)w * sizeof(float));
        for (int64_t j = w; j < nr; j++) dst[p * nr + j] = 0.0f;
      }
    } else {
      /* op(B)[p][j] = b[j*ldb + p] */
      for (int64_t j = 0; j < w; j++) {
        const float *src = b + (j0 + j) * ldb + pc;
        for (int64_t p = 0; p < kc; p++) dst[p * nr + j] = src[p];
      }
      for (int64_t j = w; j < nr; j++)
        for (int64_t p = 0; p < kc; p++) dst[p * nr + j] = 0.0f;
    }
  }
}

#ifdef MM_GEMM_X86

/* ---- AVX-512: MR = 8 rows x NR = 32 columns (16 zmm accumulators) ---- */
#define MR5 8
#define NR5 32

#define T512 __attribute__((target("avx512f,fma"), always_inline)) static inline
#define F512 __attribute__((target("avx512f,fma"), noinline)) static

#define TILE tile512
#define TILE_ATTR T512
#define TILE_MR MR5
#define VEC __m512
#define VMASK __mmask16
#define VW 16
#define VMASKS(w, m0, m1)                                                                                              \
  do {                                                                                                                 \
    m0 = (w) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (w)) - 1u);                                              \
    m1 = (w) >= 32 ? (__mmask16)0xFFFF : (w) <= 16 ? (__mmask16)0 : (__mmask16)((1u << ((w)-16)) - 1u);              \
  } while (0)
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VLOADB(m, p) _mm512_maskz_loadu_ps(m, p)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VLOADM(m, p) _mm512_maskz_loadu_ps(m, p)
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#include "gemm_tile.h"

/* pack_b for op(B) = B^T, AVX-512: 16 columns of k from each of B's 32 rows
 * of the strip (one cache line per row; reading B column-wise instead would
 * hit one L1 set per column when ldb is a multiple of 1024), turned into 16
 * rows of the strip by two in-register 16 x 16 transposes (48 shuffles each,
 * cheaper than the 32 gathers that would read the columns directly) */
F512 void pack_bt512(const float *b, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float *bp) {
  for (int64_t s = 0; s * NR5 < nc; s++) {
    int64_t j0 = jc + s * NR5, w = nc - s * NR5 < NR5 ? nc - s * NR5 : NR5;
    float *dst = bp + s * kc * NR5;
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      int64_t pl = kc - p0 < 16 ? kc - p0 : 16;
      __mmask16 mp = pl >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << pl) - 1u);
      for (int h = 0; h < 2; h++) { /* columns 16 h .. 16 h + 15 of the strip */
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
          r[j] = 16 * h + j < w ? _mm512_maskz_loadu_ps(mp, b + (j0 + 16 * h + j) * ldb + pc + p0)
                                : _mm512_setzero_ps();
        mm_tr16(r);
        for (int64_t q = 0; q < pl; q++) _mm512_store_ps(dst + (p0 + q) * NR5 + 16 * h, r[q]);
      }
    }
  }
}

/* pack_b for op(B) = B, AVX-512: two (masked) vector copies per row */
F512 void pack_bn512(const float *b, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float *bp) {
  for (int64_t s = 0; s * NR5 < nc; s++) {
    int64_t j0 = jc + s * NR5, w = nc - s * NR5 < NR5 ? nc - s * NR5 : NR5;
    __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1u);
    __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w <= 16 ? (__mmask16)0 : (__mmask16)((1u << (w - 16)) - 1u);
    const float *src = b + pc * ldb + j0;
    float *dst = bp + s * kc * NR5;
    for (int64_t p = 0; p < kc; p++) {
      _mm512_store_ps(dst + p * NR5, _mm512_maskz_loadu_ps(m0, src + p * ldb));
      _mm512_store_ps(dst + p * NR5 + 16, _mm512_maskz_loadu_ps(m1, src + p * ldb + 16));
    }
  }
}

/* one non-inline copy of a tile kernel per row count R (the row loops then
 * unroll to exactly R rows of accumulators) */
#define TILE_ROWS(ATTR, KERNEL, R)                                                                                     \
  ATTR void KERNEL##_##R(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *bp, int64_t bs, float *c, \
                         int64_t ldc, int64_t w, float alpha, float beta) {                                            \
    KERNEL(R, kc, a, ars, acs, bp, bs, c, ldc, w, alpha, beta);                                                        \
  }
TILE_ROWS(F512, tile512, 1)
TILE_ROWS(F512, tile512, 2)
TILE_ROWS(F512, tile512, 3)
TILE_ROWS(F512, tile512, 4)
TILE_ROWS(F512, tile512, 5)
TILE_ROWS(F512, tile512, 6)
TILE_ROWS(F512, tile512, 7)
TILE_ROWS(F512, tile512, 8)

typedef void (*tile_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int64_t,
                        float, float);
static const tile_fn tiles512[MR5 + 1] = {NULL,       tile512_1, tile512_2, tile512_3, tile512_4,
                                          tile512_5, tile512_6, tile512_7, tile512_8};

/* ---- AVX2 + FMA: MR = 6 rows x NR = 16 columns (12 ymm accumulators) ---- */
#define MR2 6
#define NR2 16

#define T256 __attribute__((target("avx2,fma"), always_inline)) static inline
#define F256 __attribute__((target("avx2,fma"), noinline)) static

T256 __m256i mask8(int64_t w) {
  /* lane j active when j < w (w in [0, 8]) */
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), idx);
}

/* full strips only: an edge strip comes packed and zero-padded, so the B
 * loads need no mask (AVX2 masked loads are slow) */
#define TILE tile256
#define TILE_ATTR T256
#define TILE_MR MR2
#define VEC __m256
#define VMASK __m256i
#define VW 8
#define VMASKS(w, m0, m1)                                                                                              \
  do {                                                                                                                 \
    m0 = mask8((w) >= 8 ? 8 : (w));                                                                                    \
    m1 = mask8((w) >= 16 ? 8 : (w) <= 8 ? 0 : (w)-8);                                                                  \
  } while (0)
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VLOADB(m, p) _mm256_loadu_ps(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VLOADM(m, p) _mm256_maskload_ps(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#include "gemm_tile.h"

TILE_ROWS(F256, tile256, 1)
TILE_ROWS(F256, tile256, 2)
TILE_ROWS(F256, tile256, 3)
TILE_ROWS(F256, tile256, 4)
TILE_ROWS(F256, tile256, 5)
TILE_ROWS(F256, tile256, 6)
static const tile_fn tiles256[MR2 + 1] = {NULL, tile256_1, tile256_2, tile256_3, tile256_4, tile256_5, tile256_6};

static void blocked(const tile_fn *tiles, int mr_max, int nr, int ta, int tb, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                    int64_t ldc) {
  int x512 = tiles == tiles512;
  /* KC x NC packed block, NC a multiple of both NR */
  _Alignas(64) float bp[KC * NC];
  int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1;
  for (int64_t jc = 0; jc < n; jc += NC) {
    int64_t nc = n - jc < NC ? n - jc : NC;
    for (int64_t pc = 0; pc < k; pc += KC) {
      int64_t kc = k - pc < KC ? k - pc : KC;
      float be = pc == 0 ? beta : 1.0f;
      if (x512 && tb)
        pack_bt512(b, ldb, pc, kc, jc, nc, bp);
      else if (x512)
        pack_bn512(b, ldb, pc, kc, jc, nc, bp);
      else
        pack_b(tb, b, ldb, pc, kc, jc, nc, nr, bp);
      for (int64_t ic = 0; ic < m; ic += mr_max) {
        int mr = m - ic < mr_max ? (int)(m - ic) : mr_max;
        const float *ab = a + ic * ars + pc * acs;
        for (int64_t s = 0; s * nr < nc; s++) {
          int64_t w = nc - s * nr < nr ? nc - s * nr : nr;
          tiles[mr](kc, ab, ars, acs, bp + s * kc * nr, nr, c + ic * ldc + jc + s * nr, ldc, w, alpha, be);
        }
      }
    }
  }
}

/* op(B) = B (not transposed): the tiles read B's rows in place, no packing.
 * Blocks: KC rows of k, MC rows of m (the A block stays in L2), then NR-wide
 * strips of B (a KC x NR slice stays in L1 while the row tiles go by). An
 * edge strip narrower than NR is copied zero-padded when the kernel cannot
 * mask its loads (AVX2). */
#define MC 256
static void direct(const tile_fn *tiles, int mr_max, int nr, int masked, int ta, int64_t m, int64_t n, int64_t k,
                   float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc) {
  _Alignas(64) float edge[KC * NR2];
  int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1;
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    float be = pc == 0 ? beta : 1.0f;
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
      int64_t mc = m - i0 < MC ? m - i0 : MC;
      for (int64_t j = 0; j < n; j += nr) {
        int64_t w = n - j < nr ? n - j : nr;
        const float *bs = b + pc * ldb + j;
        int64_t bst = ldb;
        if (w < nr && !masked) {
          pack_b(0, b, ldb, pc, kc, j, w, nr, edge);
          bs = edge;
          bst = nr;
        }
        for (int64_t ic = i0; ic < i0 + mc; ic += mr_max) {
          int mr = i0 + mc - ic < mr_max ? (int)(i0 + mc - ic) : mr_max;
          tiles[mr](kc, a + ic * ars + pc * acs, ars, acs, bs, bst, c + ic * ldc + j, ldc, w, alpha, be);
        }
      }
    }
  }
}

/* op(B) = B^T with A not transposed (x . W^T in linear layers): every C
 * element is a dot product of two contiguous rows, so nothing is packed.
 * 4 x 4 blocks of C accumulate in 16 zmm registers over k, 16 lanes at a
 * time (masked tail), then each is summed across its lanes. Past the edge
 * of m or n the last valid row is read again and its result dropped. */
F512 void dots512(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc) {
  /* k in slices of KD, so that the slice of B's rows (n x KD floats, about
   * 1 MiB) stays in L2 while the blocks of 4 rows of A pass over it; each
   * slice adds its lane sums to C (the first one applies beta) */
  int64_t KD = (int64_t)262144 / n;
  KD = KD < 256 ? 256 : KD > 8192 ? 8192 : KD - KD % 16;
  for (int64_t p0 = 0; p0 < k; p0 += KD) {
    int64_t pk = k - p0 < KD ? k - p0 : KD;
    float be = p0 == 0 ? beta : 1.0f;
    for (int64_t i = 0; i < m; i += 4) {
      const float *ar[4];
      int ni = m - i < 4 ? (int)(m - i) : 4;
      for (int r = 0; r < 4; r++) ar[r] = a + (i + (r < ni ? r : ni - 1)) * lda + p0;
      for (int64_t j = 0; j < n; j += 4) {
        const float *br[4];
        int nj = n - j < 4 ? (int)(n - j) : 4;
        for (int q = 0; q < 4; q++) br[q] = b + (j + (q < nj ? q : nj - 1)) * ldb + p0;
        __m512 acc[4][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
          for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
        for (int64_t p = 0; p < pk; p += 16) {
          __mmask16 mk = pk - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (pk - p)) - 1u);
          __m512 av[4], bv[4];
#pragma GCC unroll 4
          for (int r = 0; r < 4; r++) av[r] = _mm512_maskz_loadu_ps(mk, ar[r] + p);
#pragma GCC unroll 4
          for (int q = 0; q < 4; q++) bv[q] = _mm512_maskz_loadu_ps(mk, br[q] + p);
#pragma GCC unroll 4
          for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(av[r], bv[q], acc[r][q]);
        }
        float sum[4][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
          for (int q = 0; q < 4; q++) sum[r][q] = _mm512_reduce_add_ps(acc[r][q]);
        for (int r = 0; r < ni; r++) {
          float *cr = c + (i + r) * ldc + j;
          for (int q = 0; q < nj; q++) {
            float v = alpha * sum[r][q];
            cr[q] = be == 0.0f ? v : v + be * cr[q];
          }
        }
      }
    }
  }
}

#endif /* MM_GEMM_X86 */

/* one thread: the kernel for this shape (the choice depends on m, ta and tb
 * only, never on n, so a split over columns sums every element alike) */
static void run(int kern, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  switch (kern) {
#ifdef MM_GEMM_X86
  case K_AVX512:
    /* B^T: packing costs ~n*k, the dot tiles' lane sums ~m*n, and the
     * tiles run faster per flop: dots only below 16 rows, or below 32
     * rows against a long k (measured: from 32 rows packing wins even at
     * k = 32768) */
    if (tb && !ta && (m < 16 || (m < 32 && k >= 8 * m)))
      dots512(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (!tb && m < 128) /* packing B pays once enough rows of A reuse it */
      direct(tiles512, MR5, NR5, 1, ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
      blocked(tiles512, MR5, NR5, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  case K_AVX2:
    if (!tb && m < 128)
      direct(tiles256, MR2, NR2, 0, ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
      blocked(tiles256, MR2, NR2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
#endif
  default:
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
  }
}

typedef struct {
  int kern, ta, tb;
  int64_t m, n, k, lda, ldb, ldc, chunk;
  float alpha, beta;
  const float *a, *b;
  float *c;
} split_job;

static void run_cols(void *ctx, int64_t begin, int64_t end, int tid) {
  const split_job *j = ctx;
  int64_t c0 = begin * j->chunk, c1 = end * j->chunk < j->n ? end * j->chunk : j->n;
  if (c1 <= c0) return;
  run(j->kern, j->ta, j->tb, j->m, c1 - c0, j->k, j->alpha, j->a, j->lda, j->tb ? j->b + c0 * j->ldb : j->b + c0,
      j->ldb, j->beta, j->c + c0, j->ldc);
}

void mm_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  int kern = kernel();
  /* big products split their columns over mm.threads() threads (OpenBLAS
   * threads on its own); from about 1M multiply-adds (~7 us on one core)
   * the halves beat handing one to the pool's thread (~1-2 us) */
  if (kern != K_BLAS && (double)m * (double)n * (double)k >= 1048576.0 && n >= 128) {
    int64_t chunk = 64, nchunks = (n + chunk - 1) / chunk;
    if (mm_parallel_threads(nchunks) > 1) {
      split_job j = {kern, ta, tb, m, n, k, lda, ldb, ldc, chunk, alpha, beta, a, b, c};
      mm_parallel_for(nchunks, run_cols, &j);
      return;
    }
  }
  run(kern, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
