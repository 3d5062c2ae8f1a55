/* nhwc_conv.c - NHWC convolution as an implicit GEMM (see nhwc.h).
 *
 * Rows of the product are output pixels, columns output channels, and the
 * K index runs over (ky, kx, ci). No im2col matrix is built: a tile of up to
 * 16 output pixels - consecutive in raster order, across rows and images -
 * reads each pixel's input where it lies: for kernel tap (ky, kx) the K
 * values of output pixel (b, oy, ox) are the cin floats at x + b * is +
 * (oy * sh + ky) * rs + (ox * sw + kx) * ps, so a K block is a short list of
 * such segments (taps whose inputs follow each other in memory, as the kx
 * taps of a dense input do, make one segment) and the register tile
 * broadcasts each input value straight from memory, with one pointer per
 * pixel. The weights were packed once into panels of 16 output channels
 * (wp[panel][k][16]), so a tile streams them with plain vector loads.
 *
 * Register tiles (mr pixels x nv panels of accumulators): AVX-512 nv = 1..4
 * panels of one zmm each with mr up to 16 / 12 / 9 / 6 (accumulators,
 * weights and a broadcast fill the 32 registers, the row offsets the
 * general registers, without a spill); AVX2 a panel is two ymm, nv = 1..2
 * with mr up to 6 / 3;
 * portable C the same sums in plain loops (a multiply and an add, rounded
 * apart: within float rounding of the fused tiles, not equal to them). Per
 * layer the panel group nv and the tile width are chosen to fill the most
 * accumulators. Bias, the residual add and the clamp are applied when a
 * tile's last K block is stored.
 *
 * Cache blocking, as a GEMM does: the panels go in N blocks whose weights
 * fit in L2 (NC_BYTES), the tiles in chunks whose outputs in one N block fit
 * in L2 (C_BYTES: the partial sums stored between K blocks come back from
 * L2), and K in blocks whose weights for one panel group stay in L2 while
 * the chunk's tiles pass (KB_BYTES; measured on Zen 5 with blocks sized for
 * L1 (24 to 96 KB): up to 15 % slower, the partial sums' round trips costing
 * more than the weights' reloads from L2). Threads split the tiles; each
 * runs every block of its tiles. The sum of an output is taken over k in the same order
 * for every tiling, block size and thread count (block boundaries store and
 * reload the partial sum exactly), so results do not depend on the thread
 * count. */
#include "nhwc.h"

#include "../core/cpu.h"
#include "../core/parallel.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_NHWC_X86 1
#include <immintrin.h>

#endif

#define CT_FIRST 1
#define CT_LAST 2
#define CT_LO 4
#define CT_HI 8

#define KB_BYTES (384 * 1024) /* weights of a panel group in one K block */
#define NC_BYTES (256 * 1024) /* weights of the panel groups of one N block */
#define C_BYTES (128 * 1024)  /* outputs of a chunk of tiles in one N block */
#define CHUNK_MAX 64          /* tiles in a chunk at most */

int64_t mm_conv_nhwc_packed_size(int64_t kh, int64_t kw, int64_t cin, int64_t cout) {
  return (cout + 15) / 16 * kh * kw * cin * 16;
}

void mm_conv_nhwc_pack(const float *w, int64_t kh, int64_t kw, int64_t cin, int64_t cout, float *wp) {
  int64_t K = kh * kw * cin, P = (cout + 15) / 16;
  for (int64_t p = 0; p < P; p++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < 16; j++) {
        int64_t o = p * 16 + j;
        wp[(p * K + k) * 16 + j] = o < cout ? w[k * cout + o] : 0.0f;
      }
}

typedef void (*ctile_fn)(int nseg, const int64_t *soff, const int64_t *slen, const float *const *a, const float *b,
                         int64_t bps, float *const *c, int64_t wv, const float *bias, const float *const *r,
                         int flags, const float *lohi);

/* ---- portable C -------------------------------------------------------------------- */
/* (the inner loop over 16 channels is left to the compiler's vectoriser) */

static void tile_c(int mr, int nv, int nseg, const int64_t *soff, const int64_t *slen, const float *const *a,
                   const float *b, int64_t bps, float *const *c, int64_t wv, const float *bias,
                   const float *const *r, int flags, const float *lohi) {
  float acc[16][64], lo = lohi[0], hi = lohi[1];
  int nc = nv * 16;
  for (int i = 0; i < mr; i++)
    for (int o = 0; o < nc; o++)
      acc[i][o] = o >= wv ? 0.0f : (flags & CT_FIRST) ? (bias ? bias[o] : 0.0f) : c[i][o];
  for (int s = 0; s < nseg; s++)
    for (int64_t k = 0; k < slen[s]; k++, b += 16)
      for (int i = 0; i < mr; i++) {
        float av = a[i][soff[s] + k];
        for (int q = 0; q < nv; q++) {
          const float *bq = b + q * bps;
          for (int j = 0; j < 16; j++) acc[i][q * 16 + j] += av * bq[j];
        }
      }
  for (int i = 0; i < mr; i++)
    for (int o = 0; o < wv && o < nc; o++) {
      float v = acc[i][o];
      if (flags & CT_LAST) {
        if (r) v += r[i][o];
        if ((flags & CT_LO) && !(v >= lo)) v = lo;
        if ((flags & CT_HI) && v > hi) v = hi;
      }
      c[i][o] = v;
    }
}

#ifdef MM_NHWC_X86
/* ---- AVX-512 ----------------------------------------------------------------------- */
#define CT_NAME ctile512
#define CT_ATTR __attribute__((target("avx512f,fma"), always_inline)) static inline
#define CT_MR 16
#define CT_NV 4
#define VEC __m512
#define VW 16
#define VPP 1
#define MASK __mmask16
#define MKMASK(n) ((__mmask16)((1u << (n)) - 1u))
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADM(m, p) _mm512_maskz_loadu_ps(m, p)
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#include "nhwc_conv_tile.h"

/* ---- AVX2 -------------------------------------------------------------------------- */
__attribute__((target("avx2"), always_inline)) static inline __m256i ymask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define CT_NAME ctile256
#define CT_ATTR __attribute__((target("avx2,fma"), always_inline)) static inline
#define CT_MR 6
#define CT_NV 2
#define VEC __m256
#define VW 8
#define VPP 2
#define MASK __m256i
#define MKMASK(n) ymask(n)
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADM(m, p) _mm256_maskload_ps(p, m)
#define VSTOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#include "nhwc_conv_tile.h"

#define CT_ARGS                                                                                                        \
  int nseg, const int64_t *soff, const int64_t *slen, const float *const *a, const float *b, int64_t bps,             \
      float *const *c, int64_t wv, const float *bias, const float *const *r, int flags, const float *lohi
#define CT_PASS nseg, soff, slen, a, b, bps, c, wv, bias, r, flags, lohi
#define I512(nv, mr)                                                                                                   \
  __attribute__((target("avx512f,fma"), noinline)) static void t512_##nv##_##mr(CT_ARGS) {                            \
    ctile512(mr, nv, CT_PASS);                                                                                         \
  }
#define I256(nv, mr)                                                                                                   \
  __attribute__((target("avx2,fma"), noinline)) static void t256_##nv##_##mr(CT_ARGS) { ctile256(mr, nv, CT_PASS); }
#define R7(M, nv) M(nv, 1) M(nv, 2) M(nv, 3) M(nv, 4) M(nv, 5) M(nv, 6) M(nv, 7)
#define R9(M, nv) R7(M, nv) M(nv, 8) M(nv, 9)
#define R14(M, nv) R9(M, nv) M(nv, 10) M(nv, 11) M(nv, 12) M(nv, 13) M(nv, 14)
#define R16(M, nv) R14(M, nv) M(nv, 15) M(nv, 16)
R16(I512, 1)
R14(I512, 2)
R9(I512, 3)
R7(I512, 4)
I256(1, 1) I256(1, 2) I256(1, 3) I256(1, 4) I256(1, 5) I256(1, 6)
I256(2, 1) I256(2, 2) I256(2, 3)
#define L7(nv) t512_##nv##_1, t512_##nv##_2, t512_##nv##_3, t512_##nv##_4, t512_##nv##_5, t512_##nv##_6, t512_##nv##_7
#define L9(nv) L7(nv), t512_##nv##_8, t512_##nv##_9
#define L14(nv) L9(nv), t512_##nv##_10, t512_##nv##_11, t512_##nv##_12, t512_##nv##_13, t512_##nv##_14
#define L16(nv) L14(nv), t512_##nv##_15, t512_##nv##_16
static const ctile_fn tiles512[5][17] = {{NULL}, {NULL, L16(1)}, {NULL, L14(2)}, {NULL, L9(3)}, {NULL, L7(4)}};
static const ctile_fn tiles256[3][17] = {
    {NULL},
    {NULL, t256_1_1, t256_1_2, t256_1_3, t256_1_4, t256_1_5, t256_1_6},
    {NULL, t256_2_1, t256_2_2, t256_2_3}};

#endif /* MM_NHWC_X86 */

/* ---- the layer ---------------------------------------------------------------------- */

enum { ISA_C = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

typedef struct {
  const mm_conv_nhwc *cv;
  const mm_view *x, *r, *y;
  int isa, nv, clamp;
  int64_t mr, ntiles, npix, K, KC, NCP, P, chunk;
  int64_t tapoff[MM_NHWC_MAXTAPS]; /* offsets in x of the kernel's taps */
} cjob;

/* largest mr for nv panels on this ISA */
static int64_t mr_max(int isa, int nv) {
  static const int m512[5] = {0, 16, 12, 9, 6}, m256[3] = {0, 6, 3};
  if (isa == ISA_AVX512) return nv <= 4 ? m512[nv] : 0;
  if (isa == ISA_AVX2) return nv <= 2 ? m256[nv] : 0;
  return nv == 1 ? 16 : 0;
}

static int nv_max(int isa) { return isa == ISA_AVX512 ? 4 : isa == ISA_AVX2 ? 2 : 1; }

/* the segments of K block [k0, k1): runs of one tap's channels, joined when
 * one starts where the last ended */
static int segments(const cjob *j, int64_t k0, int64_t k1, int64_t *soff, int64_t *slen) {
  int n = 0;
  for (int64_t k = k0; k < k1;) {
    int64_t t = k / j->cv->cin, ci = k - t * j->cv->cin;
    int64_t len = j->cv->cin - ci < k1 - k ? j->cv->cin - ci : k1 - k, off = j->tapoff[t] + ci;
    if (n > 0 && soff[n - 1] + slen[n - 1] == off) {
      slen[n - 1] += len;
    } else {
      soff[n] = off;
      slen[n] = len;
      n++;
    }
    k += len;
  }
  return n;
}

/* pointers of output pixels [p0, p0 + m) (raster order over images, rows,
 * columns) to their input window's origin, their output and residual */
static void pixels(const cjob *j, int64_t p0, int m, const float **a, float **c, const float **r) {
  const mm_view *x = j->x, *y = j->y, *rv = j->r;
  int64_t hw = y->h * y->w, b = p0 / hw, rem = p0 - b * hw, oy = rem / y->w, ox = rem - oy * y->w;
  for (int i = 0; i < m; i++) {
    a[i] = x->p + b * x->is + oy * j->cv->sh * x->rs + ox * j->cv->sw * x->ps;
    c[i] = y->p + b * y->is + oy * y->rs + ox * y->ps;
    if (rv) r[i] = rv->p + b * rv->is + oy * rv->rs + ox * rv->ps;
    if (++ox == y->w) {
      ox = 0;
      if (++oy == y->h) oy = 0, b++;
    }
  }
}

static void conv_range(void *ctx, int64_t t0, int64_t t1, int tid) {
  (void)tid;
  const cjob *j = ctx;
  const mm_conv_nhwc *cv = j->cv;
  int64_t soff[MM_NHWC_MAXTAPS + 1], slen[MM_NHWC_MAXTAPS + 1];
  const float lohi[2] = {cv->lo, cv->hi};
  /* the pointers of a chunk's pixels, computed once for its K blocks and groups */
  const float *ap[CHUNK_MAX][16], *rp[CHUNK_MAX][16], *rg[16];
  float *cp[CHUNK_MAX][16], *cg[16];
  int mt[CHUNK_MAX];
  int64_t K = j->K;
  for (int64_t p0 = 0; p0 < j->P; p0 += j->NCP) {
    int64_t p1 = p0 + j->NCP < j->P ? p0 + j->NCP : j->P;
    /* the N block's weights stay in L2; tiles go in chunks whose outputs
     * (and inputs) stay in L2 through the K blocks; a panel group's weights
     * of one K block stay in L1 while the chunk's tiles pass */
    for (int64_t ta = t0; ta < t1; ta += j->chunk) {
    int64_t tb = ta + j->chunk < t1 ? ta + j->chunk : t1;
    for (int64_t t = ta; t < tb; t++) {
      int64_t q0 = t * j->mr;
      mt[t - ta] = (int)(j->npix - q0 < j->mr ? j->npix - q0 : j->mr);
      pixels(j, q0, mt[t - ta], ap[t - ta], cp[t - ta], rp[t - ta]);
    }
    for (int64_t k0 = 0; k0 < K; k0 += j->KC) {
      int64_t k1 = k0 + j->KC < K ? k0 + j->KC : K;
      int flags = (k0 == 0 ? CT_FIRST : 0) | (k1 == K ? CT_LAST | j->clamp : 0);
      int nseg = segments(j, k0, k1, soff, slen);
      for (int64_t g = p0; g < p1; g += j->nv)
      for (int64_t t = ta; t < tb; t++) {
        int m = mt[t - ta];
        int gn = (int)(p1 - g < j->nv ? p1 - g : j->nv);
        int64_t wv = cv->cout - g * 16 < gn * 16 ? cv->cout - g * 16 : gn * 16;
        const float *bp = cv->wp + g * K * 16 + k0 * 16;
        const float *const *a = ap[t - ta];
        for (int i = 0; i < m; i++) {
          cg[i] = cp[t - ta][i] + g * 16;
          if (j->r) rg[i] = rp[t - ta][i] + g * 16;
        }
        const float *bias = cv->bias ? cv->bias + g * 16 : NULL;
        const float *const *rr = j->r ? rg : NULL;
#ifdef MM_NHWC_X86
        if (j->isa == ISA_AVX512) {
          tiles512[gn][m](nseg, soff, slen, a, bp, K * 16, cg, wv, bias, rr, flags, lohi);
          continue;
        }
        if (j->isa == ISA_AVX2) {
          tiles256[gn][m](nseg, soff, slen, a, bp, K * 16, cg, wv, bias, rr, flags, lohi);
          continue;
        }
#endif
        tile_c(m, gn, nseg, soff, slen, a, bp, K * 16, cg, wv, bias, rr, flags, lohi);
      }
    }
    }
  }
}

void mm_conv_nhwc_forward(const mm_conv_nhwc *cv, const mm_view *x, const mm_view *r, const mm_view *y) {
  int64_t taps = cv->kh * cv->kw;
  if (y->n <= 0 || y->h <= 0 || y->w <= 0) return;
  if (taps > MM_NHWC_MAXTAPS) return; /* refused when the layer is built */
  cjob job, *j = &job;
  memset(j, 0, offsetof(cjob, tapoff));
  j->cv = cv, j->x = x, j->r = r, j->y = y;
  int lvl = mm_isa();
  j->isa = lvl == MM_ISA_AVX512 ? ISA_AVX512 : lvl == MM_ISA_AVX2 ? ISA_AVX2 : ISA_C;
#ifndef MM_NHWC_X86
  j->isa = ISA_C;
#endif
  for (int64_t t = 0; t < taps; t++) j->tapoff[t] = (t / cv->kw) * x->rs + (t % cv->kw) * x->ps;
  j->K = taps * cv->cin;
  j->P = (cv->cout + 15) / 16;
  j->clamp = (cv->lo > -INFINITY ? CT_LO : 0) | (cv->hi < INFINITY ? CT_HI : 0);
  j->npix = y->n * y->h * y->w;
  /* the panel group: the most useful multiply-adds per cycle of a tile, a
   * tile taking max(FMAs, loads) / 2 cycles per k; the last group of a
   * layer may be narrower */
  double best = -1;
  for (int nv = nv_max(j->isa); nv >= 1; nv--) {
    int64_t mr = mr_max(j->isa, nv), groups = (j->P + nv - 1) / nv, full = j->P / nv, last = j->P - full * nv;
    double cyc = 0;
    for (int64_t q = 0; q < groups; q++) {
      int64_t gn = q < full ? nv : last;
      double f = (double)(mr * gn) / 2, l = (double)(mr + gn) / 2;
      cyc += f > l ? f : l;
    }
    double eff = (double)(mr * j->P) / cyc;
    if (eff > best + 1e-9) best = eff, j->nv = nv, j->mr = mr;
  }
  j->ntiles = (j->npix + j->mr - 1) / j->mr;
  /* K blocks: a panel group's weights of one block (nv * 64 bytes per k) fit in KB_BYTES */
  int64_t kc = KB_BYTES / (j->nv * 64), nblk = (j->K + kc - 1) / kc;
  j->KC = (j->K + nblk - 1) / nblk;
  j->NCP = NC_BYTES / (j->KC * 64);
  j->NCP -= j->NCP % j->nv;
  if (j->NCP < j->nv) j->NCP = j->nv;
  /* tile chunks: their outputs in one N block fit in C_BYTES */
  j->chunk = C_BYTES / (j->mr * (j->NCP < j->P ? j->NCP : j->P) * 64);
  if (j->chunk < 1) j->chunk = 1;
  if (j->chunk > CHUNK_MAX) j->chunk = CHUNK_MAX;
  mm_parallel_for(j->ntiles, conv_range, j);
}
