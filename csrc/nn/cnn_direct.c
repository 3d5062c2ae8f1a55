/* cnn_direct.c - direct-convolution CNN inference (see cnn_direct.h).
 * A hand-tuned kernel, kept in one file of about 1,000 lines (more than the
 * ~600 of the others) on purpose: the plan, the register tiles of each
 * instruction set, the Winograd transforms and the per-image driver inline
 * into each other (always_inline tiles with constant sizes), which they
 * would stop doing across files. */
#include "cnn_direct.h"

#include "../core/cpu.h"
#include "../core/gemm.h"
#include "../core/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_DIRECT_X86 1
#include <immintrin.h>

#include "../core/tr16.h"
#endif

#define MAXKK 121 /* k <= 11 */
#define WINO_MIN_CIN 8 /* below this the Winograd products are too short to pay */
#define WINO_SEG 16    /* tiles per Winograd segment (measured: 16 beats 2, 4, 6 and 8) */
#define WINO_GMAX 8    /* images per group at most (see dplan) */

typedef struct {
  int64_t cin, cout, h, w, k, wp, plane, cp, oh, ow;
  int pool;
  const float *w_in, *b_in;
  /* shared: packed weights (direct [k*k*cin, cp]; Winograd [36, cin, cp]; planar [cin*k*k, cout up to 4]),
   * padded bias [cp], the direct tiles' step offsets [k*k*cin] */
  int64_t woff, boff, ooff;
  int64_t xoff;       /* per image of a group: the input planes [cin, plane], zero border */
  int wino;           /* Winograd F(4x4, 3x3) (see wino_layer) */
  int planar;         /* vectors over positions, into the next planes or the NCHW output (see planar512) */
  int64_t th, tw, nt; /* its 4 x 4 output tiles: th x tw = nt */
  int64_t cinp, hc;   /* its input channels-last: [4 th + 2][hc = 4 tw + 2][cinp = cin up to 16], zero border */
  int64_t hoff;       /* ... per image of a group */
  int64_t sn;         /* tiles per Winograd segment */
  int64_t voff, moff; /* per thread: transformed input [36, sn, cinp], products [36, sn, cp] */
  int64_t vps, vts, mps, mts; /* ... their point and tile strides */
} dlayer;

typedef struct {
  int nb, isa, vw, npmax;
  int64_t shared, per_thread;
  int64_t yoff, soff; /* per thread: the conv output [h, w, cp], sums [cp] */
  /* a thread runs its images in groups of g: each block for the whole group
   * before the next (a Winograd block's products then take the tiles of g
   * images at once and read its weights once for them); image j of a group
   * has its own inputs at ibase + j * pim of the thread's part */
  int64_t g, ibase, pim;
  int64_t qoff; /* per image: a Winograd block's output [oh, ow, cp], or a pooled one */
  dlayer L[MM_CNN_MAXBLOCKS];
} dplan;

static int64_t up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* the tile kernels in use: 16 (avx512), 8 (avx2) or -16 (portable C, 16 lanes) */
static int isa(void) {
#ifdef MM_DIRECT_X86
  int k = mm_isa();
  if (k == MM_ISA_AVX512) return 16;
  if (k == MM_ISA_AVX2) return 8;
#endif
  return -16;
}

int mm_cnn_direct_ok(void) { return isa() > 0; }

#define PLAN_WINO 1 /* Winograd where it applies */
#define PLAN_NCHW 2 /* mm_cnn_direct_conv2d: one block, its output NCHW without ReLU */

/* n: the samples of the call (groups hold no more); flags: PLAN_* */
static int plan(dplan *P, const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w, int isa_,
                int flags) {
  const int wino_on = flags & PLAN_WINO, nchw = (flags & PLAN_NCHW) != 0;
  int vw = isa_ < 0 ? -isa_ : isa_;
  if (nb < 1 || nb > MM_CNN_MAXBLOCKS || cin < 1 || h < 1 || w < 1 || n < 1) return -1;
  P->nb = nb;
  P->isa = isa_;
  P->vw = vw;
  P->npmax = vw == 16 ? 28 : 12; /* positions per tile with one vector of channels (two vectors: half) */
  int64_t shared = 0, per = 0, pim = 0, ymax = 0, qmax = 0, g = 1;
  for (int l = 0; l < nb; l++) {
    dlayer *L = &P->L[l];
    *L = (dlayer){0}; /* the Winograd fields stay 0 for other blocks */
    int64_t k = bl[l].k;
    if (k < 1 || k % 2 == 0 || k * k > MAXKK || bl[l].cout < 1 || !bl[l].w) return -1;
    L->cin = cin, L->cout = bl[l].cout, L->h = h, L->w = w, L->k = k, L->pool = bl[l].pool;
    L->w_in = bl[l].w, L->b_in = bl[l].b;
    L->wp = w + k - 1;
    L->plane = up((h + k - 1) * L->wp, 16); /* a tile reads at most up to (h+k-1)*wp - 1 */
    L->cp = up(L->cout, vw);
    /* Winograd where it pays: 3 x 3, enough input channels for its products
     * (AVX-512 only); a pool is fused into the output transform */
    L->wino = isa_ == 16 && k == 3 && cin >= WINO_MIN_CIN && wino_on;
    /* few output channels (one vector or less): vectors over positions instead */
    L->planar = isa_ == 16 && !L->wino && L->cout <= 16 &&
                (nchw ? !L->pool : L->pool && l + 1 < nb && h >= 2 && w >= 2);
    int64_t nk = L->wino || L->planar ? 0 : k * k * cin; /* steps of the direct tiles */
    L->woff = shared;
    shared += up((L->wino ? 36 * cin : k * k * cin) * L->cp, 16);
    L->boff = shared;
    shared += up(L->cp, 16);
    L->ooff = shared; /* int64 offsets: two floats each */
    shared += up(2 * nk, 16);
    L->xoff = pim;
    pim += cin * L->plane + 64; /* a row segment of planar512 may read up to 30 floats past the last row */
    if (L->wino) {
      L->th = (h + 3) / 4, L->tw = (w + 3) / 4, L->nt = L->th * L->tw;
      L->cinp = up(cin, 16), L->hc = 4 * L->tw + 2;
      L->hoff = pim;
      pim += (4 * L->th + 2) * L->hc * L->cinp;
      int64_t want = (WINO_SEG + L->nt - 1) / L->nt; /* images for a segment of tiles */
      if (want > g) g = want;
    }
    if (!L->wino && !L->planar && h * w * L->cp > ymax) ymax = h * w * L->cp; /* conv_layer's output */
    if (L->pool) {
      if (h < 2 || w < 2) return -1;
      L->oh = h / 2, L->ow = w / 2;
      if (L->oh * L->ow * L->cp > qmax) qmax = L->oh * L->ow * L->cp;
    } else {
      L->oh = h, L->ow = w;
      if (L->wino && h * w * L->cp > qmax) qmax = h * w * L->cp; /* its output goes to Q */
    }
    cin = L->cout, h = L->oh, w = L->ow;
  }
  /* group size: enough images for a segment of tiles in every Winograd block */
  if (g > WINO_GMAX) g = WINO_GMAX;
  if (g > n) g = n;
  P->g = g;
  for (int l = 0; l < nb; l++) {
    dlayer *L = &P->L[l];
    if (!L->wino) continue;
    L->sn = g * L->nt < WINO_SEG ? g * L->nt : WINO_SEG;
    /* point-major (tile-major measured the same); point strides padded off multiples of 4 KB */
    L->vps = L->sn * L->cinp + 16, L->vts = L->cinp;
    L->mps = L->sn * L->cp + 16, L->mts = L->cp;
    L->voff = per;
    per += 36 * L->vps + L->sn * L->vts;
    L->moff = per;
    per += 36 * L->mps + L->sn * L->mts;
  }
  P->yoff = per;
  per += up(ymax, 16);
  P->soff = per;
  per += up(P->L[nb - 1].cp, 16);
  P->qoff = pim;
  pim += up(qmax, 16);
  P->ibase = per;
  P->pim = pim;
  P->shared = shared;
  P->per_thread = per + g * pim;
  return 0;
}

static int64_t scratch_of(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w, int flags) {
  dplan P;
  if (plan(&P, bl, nb, n, cin, h, w, isa(), flags)) return -1;
  return P.shared + (int64_t)mm_parallel_threads(n) * P.per_thread;
}

int64_t mm_cnn_direct_scratch(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                              int wino) {
  return scratch_of(bl, nb, n, cin, h, w, wino ? PLAN_WINO : 0);
}

/* ---- register tiles -------------------------------------------------------------- */

typedef void (*tile_fn)(int64_t nk, const int64_t *off, const float *x, const float *w, int64_t cp, const float *bias,
                        float *y, int relu);

#ifdef MM_DIRECT_X86
#define DT_NAME dtile512
#define DT_ATTR __attribute__((target("avx512f,fma"), always_inline)) static inline
#define DT_NV 2
#define DT_NP 28
#define VEC __m512
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VRELU(v) _mm512_max_ps(v, _mm512_setzero_ps())
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#include "cnn_direct_tile.h"

#define DT_NAME dtile256
#define DT_ATTR __attribute__((target("avx2,fma"), always_inline)) static inline
#define DT_NV 2
#define DT_NP 12
#define VEC __m256
#define VW 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VRELU(v) _mm256_max_ps(v, _mm256_setzero_ps())
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#include "cnn_direct_tile.h"

#define DT_INST(name, tile, attr, nv, np)                                                                              \
  __attribute__((target(attr), noinline)) static void name(int64_t nk, const int64_t *off, const float *x,          \
                                                          const float *w, int64_t cp, const float *bias, float *y,   \
                                                          int relu) {                                              \
    tile(nv, np, nk, off, x, w, cp, bias, y, relu);                                                                  \
  }
/* one function per (vectors, positions): a tile is a segment of one output row */
#define A1(np) DT_INST(d512_1_##np, dtile512, "avx512f,fma", 1, np)
#define A2(np) DT_INST(d512_2_##np, dtile512, "avx512f,fma", 2, np)
#define B1(np) DT_INST(d256_1_##np, dtile256, "avx2,fma", 1, np)
#define B2(np) DT_INST(d256_2_##np, dtile256, "avx2,fma", 2, np)
#define L6(M) M(1) M(2) M(3) M(4) M(5) M(6)
#define L12(M) L6(M) M(7) M(8) M(9) M(10) M(11) M(12)
#define L14(M) L12(M) M(13) M(14)
#define L28(M) L14(M) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28)
L28(A1)
L14(A2)
L12(B1)
L6(B2)
#define R(pre) pre##_1, pre##_2, pre##_3, pre##_4, pre##_5, pre##_6
#define R12(pre) R(pre), pre##_7, pre##_8, pre##_9, pre##_10, pre##_11, pre##_12
#define R14(pre) R12(pre), pre##_13, pre##_14
#define R28(pre) R14(pre), pre##_15, pre##_16, pre##_17, pre##_18, pre##_19, pre##_20, pre##_21, pre##_22, pre##_23, \
                 pre##_24, pre##_25, pre##_26, pre##_27, pre##_28
static const tile_fn t512_1[29] = {NULL, R28(d512_1)}, t512_2[15] = {NULL, R14(d512_2)};
static const tile_fn t256_1[13] = {NULL, R12(d256_1)}, t256_2[7] = {NULL, R(d256_2)};
#endif

/* portable C (any CPU; used when the gemm kernel is "blas"): the same tile
 * with 16 channels per vector, nv and np at run time */
static void dport(int nv, int np, int64_t nk, const int64_t *off, const float *x, const float *w, int64_t cp,
                  const float *bias, float *y, int relu) {
  float acc[28][32];
  int no = 16 * nv;
  for (int j = 0; j < np; j++)
    for (int o = 0; o < no; o++) acc[j][o] = bias[o];
  for (int64_t q = 0; q < nk; q++, w += cp) {
    const float *xb = x + off[q];
    for (int j = 0; j < np; j++) {
      float xv = xb[j];
      for (int o = 0; o < no; o++) acc[j][o] = fmaf(w[o], xv, acc[j][o]);
    }
  }
  for (int j = 0; j < np; j++)
    for (int o = 0; o < no; o++) y[j * cp + o] = relu && !(acc[j][o] > 0.0f) ? 0.0f : acc[j][o];
}

/* ---- the forward ------------------------------------------------------------------ */

typedef struct {
  const dplan *P;
  int64_t n;
  const float *x;
  const uint8_t *rgb8; /* instead of x: [n, h, w, 3] bytes, x = byte * scale[c] + shift[c] */
  float scale[3], shift[3];
  int nchw; /* mm_cnn_direct_conv2d: one block, its output [n, cout, h, w] without ReLU */
  float *y, *scratch;
} djob;

/* the register tiles for the output channels from ob on (left = cp - ob):
 * two channel vectors while there are that many, else one; *npm: the most
 * positions such a tile takes. NULL: the portable dport. */
static const tile_fn *pick_tiles(const dplan *P, int64_t left, int *nv, int64_t *npm) {
  *nv = left >= 2 * P->vw ? 2 : 1;
  *npm = *nv == 2 ? P->npmax / 2 : P->npmax;
#ifdef MM_DIRECT_X86
  if (P->isa == 16) return *nv == 2 ? t512_2 : t512_1;
  if (P->isa == 8) return *nv == 2 ? t256_2 : t256_1;
#endif
  return NULL;
}

/* the conv + bias + ReLU of layer L for one sample: X planes -> Y [h, w, cp].
 * Tiles are segments of one output row (nothing computed is thrown away):
 * a row splits into the fewest segments of at most np positions, of equal
 * length to within one. */
static void conv_layer(const dplan *P, const dlayer *L, const float *X, const float *Wk, const float *bias,
                       const int64_t *off, float *Y, int relu) {
  int64_t nk = L->k * L->k * L->cin;
  for (int64_t ob = 0; ob < L->cp;) {
    int nv;
    int64_t npm;
    const tile_fn *tab = pick_tiles(P, L->cp - ob, &nv, &npm);
    int64_t nseg = (L->w + npm - 1) / npm;
    for (int64_t y = 0; y < L->h; y++)
      for (int64_t sg = 0, x0 = 0; sg < nseg; sg++) {
        int np = (int)(L->w / nseg + (sg < L->w % nseg));
        const float *xs = X + y * L->wp + x0;
        float *ys = Y + (y * L->w + x0) * L->cp + ob;
        if (tab)
          tab[np](nk, off, xs, Wk + ob, L->cp, bias + ob, ys, relu);
        else
          dport(nv, np, nk, off, xs, Wk + ob, L->cp, bias + ob, ys, relu);
        x0 += np;
      }
    ob += nv * P->vw;
  }
}

/* 2 x 2 max pool of y [h, w, cp] (rows w positions apart) into q [oh, ow, cp]
 * (rows qw positions apart) */
static void pool_hwc(const float *restrict y, int64_t w, int64_t oh, int64_t ow, int64_t cp, float *restrict q,
                     int64_t qw) {
  for (int64_t py = 0; py < oh; py++)
    for (int64_t px = 0; px < ow; px++) {
      const float *a = y + ((2 * py) * w + 2 * px) * cp, *b = a + cp, *c = a + w * cp, *d = c + cp;
      float *o = q + (py * qw + px) * cp;
      for (int64_t k = 0; k < cp; k++) {
        float m = a[k] > b[k] ? a[k] : b[k], m2 = c[k] > d[k] ? c[k] : d[k];
        o[k] = m > m2 ? m : m2;
      }
    }
}

/* out[0:co] = mean over the n positions of q [n, cp]; s: cp floats of scratch */
static void avg_hwc(const float *restrict q, int64_t n, int64_t cp, int64_t co, float *restrict out, float *restrict s) {
  for (int64_t k = 0; k < cp; k++) s[k] = 0.0f;
  for (int64_t p = 0; p < n; p++)
    for (int64_t k = 0; k < cp; k++) s[k] += q[p * cp + k];
  float inv = 1.0f / (float)n;
  for (int64_t k = 0; k < co; k++) out[k] = s[k] * inv;
}

#ifdef MM_DIRECT_X86
#define A512 __attribute__((target("avx512f"), always_inline)) static inline

/* y [*, yw, cp] of layer L (2 x 2 max pooled when pool) into the next layer's
 * planes: 16 positions x 16 channels at a time, transposed in registers */
__attribute__((target("avx512f"), noinline)) static void to_planes512(const dlayer *L, const float *y, int64_t yw,
                                                                      int pool, const dlayer *N, float *xn) {
  int64_t cp = L->cp, w = yw, npad = N->k / 2;
  for (int64_t py = 0; py < L->oh; py++)
    for (int64_t px0 = 0; px0 < L->ow; px0 += 16) {
      int cnt = L->ow - px0 < 16 ? (int)(L->ow - px0) : 16;
      __mmask16 m = (__mmask16)((1u << cnt) - 1u);
      float *d = xn + (py + npad) * N->wp + npad + px0;
      for (int64_t cb = 0; cb < cp; cb += 16) {
        __m512 r[16];
        const float *a = y + (pool ? (2 * py * w + 2 * px0) : (py * w + px0)) * cp + cb;
        int64_t step = pool ? 2 * cp : cp, wc = w * cp;
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++, a += step) {
          if (t >= cnt)
            r[t] = _mm512_setzero_ps();
          else if (pool)
            r[t] = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(a + cp)),
                                 _mm512_max_ps(_mm512_loadu_ps(a + wc), _mm512_loadu_ps(a + wc + cp)));
          else
            r[t] = _mm512_loadu_ps(a);
        }
        mm_tr16(r);
        int nc = L->cout - cb < 16 ? (int)(L->cout - cb) : 16;
        float *dc = d + cb * N->plane;
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++, dc += N->plane)
          if (c < nc) _mm512_mask_storeu_ps(dc, m, r[c]);
      }
    }
}
#endif

/* ---- Winograd F(4 x 4, 3 x 3) -----------------------------------------------------
 * (Lavin & Gray 2016.) Output tile (ty, tx) covers outputs (4ty..4ty+3,
 * 4tx..4tx+3) and reads the 6 x 6 patch d at (4ty, 4tx) of the zero-bordered
 * input. With the interpolation points 0, 1, -1, 2, -2 and infinity,
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]:
 * out = A^T [ sum over ci of (G g G^T) .* (B^T d B) ] A, 36 products per channel
 * pair for 16 outputs instead of 144 (F(2 x 2, 3 x 3): 16 for 4). The block's
 * input is kept channels-last, [rows][columns][cinp] with a zero border, so
 * both transforms work on vectors of 16 channels of one tile (adds and FMAs,
 * no shuffles). The sum over ci is, for each of the 36 points xi, a product
 * V[xi] [tiles x cin] . U[xi] [cin x cp] in register tiles (wtile); the output
 * transform then adds the bias, takes the 2 x 2 max pools of the tile's 16
 * outputs (pooled blocks) and the ReLU, and stores the outputs channels-last
 * (the next Winograd block's input, or Q). Tiles past the edge (h or w not a
 * multiple of 4) read zeros and their outputs past the block's edge are not
 * stored. (wtile is the twin of cnn_direct_tile.h's tile with the positions
 * xs floats apart instead of consecutive, up to 4 channel vectors, no bias.) */
/* G of F(4x4, 3x3) at the points 0, +-1, +-2, infinity: U = G g G^T */
static const double wino_G[6][3] = {{0.25, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};

static void wino_pack(const dlayer *L, float *U) {
  const double(*G)[3] = wino_G;
  for (int64_t ci = 0; ci < L->cin; ci++)
    for (int64_t oc = 0; oc < L->cp; oc++) {
      double u[6][6] = {{0}};
      if (oc < L->cout) {
        const float *g = L->w_in + (oc * L->cin + ci) * 9;
        double t[6][3]; /* G g */
        for (int i = 0; i < 6; i++)
          for (int c = 0; c < 3; c++) t[i][c] = G[i][0] * g[c] + G[i][1] * g[3 + c] + G[i][2] * g[6 + c];
        for (int i = 0; i < 6; i++) /* (G g) G^T */
          for (int k = 0; k < 6; k++) u[i][k] = t[i][0] * G[k][0] + t[i][1] * G[k][1] + t[i][2] * G[k][2];
      }
      for (int xi = 0; xi < 36; xi++) U[(xi * L->cin + ci) * L->cp + oc] = (float)u[xi / 6][xi % 6];
    }
}

#ifdef MM_DIRECT_X86
/* wino_pack for 8 output channels at a time: the same double operations in
 * the same order (separate mul and add: target avx512f alone has no FMA to
 * contract into), so the same floats, stored 8 at a time instead of one
 * scattered float per (xi, ci, oc). cp is a multiple of 16 for Winograd
 * layers. Channels past cout get +0 as in wino_pack. */
__attribute__((target("avx512f"))) static void wino_pack512(const dlayer *L, float *U) {
  __m512d gv[6][3];
  for (int i = 0; i < 6; i++)
    for (int c = 0; c < 3; c++) gv[i][c] = _mm512_set1_pd(wino_G[i][c]);
  const int64_t cin = L->cin, cp = L->cp;
  for (int64_t ci = 0; ci < cin; ci++)
    for (int64_t oc0 = 0; oc0 < cp; oc0 += 8) {
      double gb[9][8];
      int valid = 0;
      for (int l = 0; l < 8; l++) {
        int64_t oc = oc0 + l;
        const float *g = oc < L->cout ? L->w_in + (oc * cin + ci) * 9 : NULL;
        if (g) valid |= 1 << l;
        for (int e = 0; e < 9; e++) gb[e][l] = g ? (double)g[e] : 0.0;
      }
      const __mmask8 keep = (__mmask8)valid;
      __m512d g9[9], t[6][3];
      for (int e = 0; e < 9; e++) g9[e] = _mm512_loadu_pd(gb[e]);
      for (int i = 0; i < 6; i++) /* G g */
        for (int c = 0; c < 3; c++)
          t[i][c] = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(gv[i][0], g9[c]), _mm512_mul_pd(gv[i][1], g9[3 + c])),
                                  _mm512_mul_pd(gv[i][2], g9[6 + c]));
      for (int i = 0; i < 6; i++) /* (G g) G^T */
        for (int k = 0; k < 6; k++) {
          __m512d u = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(t[i][0], gv[k][0]), _mm512_mul_pd(t[i][1], gv[k][1])),
                                    _mm512_mul_pd(t[i][2], gv[k][2]));
          u = _mm512_maskz_mov_pd(keep, u);
          _mm256_storeu_ps(U + ((i * 6 + k) * cin + ci) * cp + oc0, _mm512_cvtpd_ps(u));
        }
    }
}

#define WT_NP 12
/* y[j * ys + 0:16 nv] = sum over q < nk of x[j * xs + q] * w[q * cp + 0:16 nv]
 * for the np tiles j */
__attribute__((target("avx512f,fma"), always_inline)) static inline void wtile(const int nv, const int np, int64_t nk,
                                                                               const float *x, int64_t xs,
                                                                               const float *w, int64_t cp, float *y,
                                                                               int64_t ys) {
  __m512 acc[WT_NP][4];
#pragma GCC unroll 12
  for (int j = 0; j < WT_NP; j++)
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      if (j < np && v < nv) acc[j][v] = _mm512_setzero_ps();
  for (int64_t q = 0; q < nk; q++, w += cp, x++) {
    __m512 wv[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      if (v < nv) wv[v] = _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 12
    for (int j = 0; j < WT_NP; j++) {
      if (j < np) {
        __m512 xv = _mm512_set1_ps(x[j * xs]);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
          if (v < nv) acc[j][v] = _mm512_fmadd_ps(wv[v], xv, acc[j][v]);
      }
    }
  }
#pragma GCC unroll 12
  for (int j = 0; j < WT_NP; j++)
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      if (j < np && v < nv) _mm512_storeu_ps(y + j * ys + 16 * v, acc[j][v]);
}

typedef void (*wt_fn)(int64_t nk, const float *x, int64_t xs, const float *w, int64_t cp, float *y, int64_t ys);
#define WT_INST(nv, np)                                                                                                \
  __attribute__((target("avx512f,fma"), noinline)) static void wt##nv##_##np(int64_t nk, const float *x, int64_t xs, \
                                                                              const float *w, int64_t cp, float *y,   \
                                                                              int64_t ys) {                            \
    wtile(nv, np, nk, x, xs, w, cp, y, ys);                                                                            \
  }
#define WT6(nv) WT_INST(nv, 1) WT_INST(nv, 2) WT_INST(nv, 3) WT_INST(nv, 4) WT_INST(nv, 5) WT_INST(nv, 6)
#define WT8(nv) WT6(nv) WT_INST(nv, 7) WT_INST(nv, 8)
#define WT12(nv) WT8(nv) WT_INST(nv, 9) WT_INST(nv, 10) WT_INST(nv, 11) WT_INST(nv, 12)
WT12(1)
WT12(2)
WT8(3)
WT6(4)
#define WR6(nv) wt##nv##_1, wt##nv##_2, wt##nv##_3, wt##nv##_4, wt##nv##_5, wt##nv##_6
#define WR8(nv) WR6(nv), wt##nv##_7, wt##nv##_8
#define WR12(nv) WR8(nv), wt##nv##_9, wt##nv##_10, wt##nv##_11, wt##nv##_12
/* wt512[nv][np]: at most 24 accumulators (with nv weight vectors and a broadcast: 29 of 32 registers) */
static const wt_fn wt512[5][WT_NP + 1] = {{NULL}, {NULL, WR12(1)}, {NULL, WR12(2)}, {NULL, WR8(3)}, {NULL, WR6(4)}};
static const int wt_npmax[5] = {0, 12, 12, 8, 6};

/* z[i] = the 16 floats at p + i * s */
A512 void load6(__m512 z[6], const float *p, int64_t s) {
#pragma GCC unroll 6
  for (int i = 0; i < 6; i++, p += s) z[i] = _mm512_loadu_ps(p);
}

/* r = B^T z for six vectors */
A512 void bt6(const __m512 z[6], __m512 r[6]) {
  const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f);
  __m512 s12 = _mm512_add_ps(z[1], z[2]), d12 = _mm512_sub_ps(z[1], z[2]);
  __m512 s34 = _mm512_add_ps(z[3], z[4]), d43 = _mm512_sub_ps(z[4], z[3]);
  __m512 d31 = _mm512_sub_ps(z[3], z[1]), d42 = _mm512_sub_ps(z[4], z[2]);
  r[0] = _mm512_fmadd_ps(c4, z[0], _mm512_fnmadd_ps(c5, z[2], z[4]));
  r[1] = _mm512_fnmadd_ps(c4, s12, s34);
  r[2] = _mm512_fmadd_ps(c4, d12, d43);
  r[3] = _mm512_fmadd_ps(c2, d31, d42);
  r[4] = _mm512_fnmadd_ps(c2, d31, d42);
  r[5] = _mm512_fmadd_ps(c4, z[1], _mm512_fnmadd_ps(c5, z[3], z[5]));
}

/* r = A^T z: four vectors from six */
A512 void at6(const __m512 z[6], __m512 r[4]) {
  const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f);
  __m512 s12 = _mm512_add_ps(z[1], z[2]), d12 = _mm512_sub_ps(z[1], z[2]);
  __m512 s34 = _mm512_add_ps(z[3], z[4]), d34 = _mm512_sub_ps(z[3], z[4]);
  r[0] = _mm512_add_ps(_mm512_add_ps(z[0], s12), s34);
  r[1] = _mm512_fmadd_ps(c2, d34, d12);
  r[2] = _mm512_fmadd_ps(c4, s34, s12);
  r[3] = _mm512_add_ps(_mm512_fmadd_ps(c8, d34, d12), z[5]);
}

/* the lines of a tile's 36 points (xs floats apart, cp channels each) in V or
 * M, for the next tile: 36 streams, which the hardware does not follow, and
 * the products pushed them out of L1 (measured: 1-2 us of a 32 px CNN's 23) */
static inline void prefetch36(const float *p, int64_t xs, int64_t cp, int write) {
  for (int64_t cb = 0; cb < cp; cb += 16)
    for (int xi = 0; xi < 36; xi++) {
      if (write)
        __builtin_prefetch(p + xi * xs + cb, 1, 3);
      else
        __builtin_prefetch(p + xi * xs + cb, 0, 3);
    }
}

/* V[xi, t - t0, :] = (B^T d B)[xi] for the tiles t0 <= t < t1 of a group's
 * channels-last inputs (cinp channels, rows hc positions long): tile t is
 * tile t % nt of image t / nt, whose input is at Xh + (t / nt) * is */
__attribute__((target("avx512f,fma"), noinline)) static void wino_in512(const dlayer *L, const float *Xh, int64_t is,
                                                                        float *V, int64_t t0, int64_t t1) {
  const int64_t cp = L->cinp, rs = L->hc * cp, xs = L->vps;
  for (int64_t t = t0; t < t1; t++) {
    int64_t tl = t % L->nt;
    const float *p = Xh + (t / L->nt) * is + (tl / L->tw) * 4 * rs + (tl % L->tw) * 4 * cp;
    float *v = V + (t - t0) * L->vts;
    if (t + 1 < t1) prefetch36(v + L->vts, xs, cp, 1);
    for (int64_t cb = 0; cb < cp; cb += 16) {
      __m512 f[6][6]; /* f[i][c] = (B^T d)[i][c]; the loops over c and i stay loops (36 pointers would not fit) */
      const float *pc = p + cb;
#pragma GCC unroll 1
      for (int c = 0; c < 6; c++, pc += cp) {
        __m512 z[6], r[6];
        load6(z, pc, rs);
        bt6(z, r);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) f[i][c] = r[i];
      }
      float *vp = v + cb; /* point xi = 6 i + k, one after the other */
#pragma GCC unroll 1
      for (int i = 0; i < 6; i++) {
        __m512 r[6];
        bt6(f[i], r);
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++, vp += xs) _mm512_storeu_ps(vp, r[k]);
      }
    }
  }
}

/* for the tiles t0 <= t < t1: relu(bias + the 2 x 2 max pools of A^T M A),
 * stored at dst + (t / nt) * is + (py * drs + px) * cp for the pooled
 * positions (py, px) < (oh, ow); a block without a pool stores bias + A^T M A
 * (with the ReLU when relu) at its positions (y, x) < (h, w) the same way */
__attribute__((target("avx512f,fma"), noinline)) static void wino_out512(const dlayer *L, const float *M,
                                                                         const float *bias, int64_t t0, int64_t t1,
                                                                         float *dst, int64_t is, int64_t drs,
                                                                         int relu) {
  const int64_t cp = L->cp, xs = L->mps;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t t = t0; t < t1; t++) {
    int64_t tl = t % L->nt, py = 2 * (tl / L->tw), px = 2 * (tl % L->tw);
    float *d = dst + (t / L->nt) * is;
    const float *m = M + (t - t0) * L->mts;
    if (t + 1 < t1) prefetch36(m + L->mts, xs, cp, 0);
    for (int64_t cb = 0; cb < cp; cb += 16) {
      __m512 g[4][6]; /* g[a][k] = (A^T M)[a][k] */
      const float *mk = m + cb;
#pragma GCC unroll 1
      for (int k = 0; k < 6; k++, mk += xs) {
        __m512 z[6], r[4];
        load6(z, mk, 6 * xs);
        at6(z, r);
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++) g[a][k] = r[a];
      }
      __m512 o[4][4], b = _mm512_loadu_ps(bias + cb);
#pragma GCC unroll 4
      for (int a = 0; a < 4; a++) at6(g[a], o[a]);
      if (!L->pool) {
        for (int a = 0; a < 4; a++)
          for (int c = 0; c < 4; c++) {
            if (2 * py + a >= L->h || 2 * px + c >= L->w) continue;
            __m512 y = _mm512_add_ps(o[a][c], b);
            _mm512_storeu_ps(d + ((2 * py + a) * drs + 2 * px + c) * cp + cb, relu ? _mm512_max_ps(y, zero) : y);
          }
        continue;
      }
#pragma GCC unroll 2
      for (int pa = 0; pa < 2; pa++)
#pragma GCC unroll 2
        for (int pb = 0; pb < 2; pb++) {
          if (py + pa >= L->oh || px + pb >= L->ow) continue;
          __m512 mx = _mm512_max_ps(_mm512_max_ps(o[2 * pa][2 * pb], o[2 * pa][2 * pb + 1]),
                                    _mm512_max_ps(o[2 * pa + 1][2 * pb], o[2 * pa + 1][2 * pb + 1]));
          _mm512_storeu_ps(d + ((py + pa) * drs + px + pb) * cp + cb, _mm512_max_ps(_mm512_add_ps(mx, b), zero));
        }
    }
  }
}

/* the planes of block N (zero border 1) -> its channels-last input Xh */
__attribute__((target("avx512f"), noinline)) static void planes_to_hwc512(const dlayer *N, const float *X,
                                                                          float *Xh) {
  const int64_t cp = N->cinp;
  for (int64_t r = 0; r < N->h; r++)
    for (int64_t x0 = 0; x0 < N->w; x0 += 16) {
      int cnt = N->w - x0 < 16 ? (int)(N->w - x0) : 16;
      __mmask16 m = (__mmask16)((1u << cnt) - 1u);
      const float *s = X + (r + 1) * N->wp + 1 + x0;
      float *d = Xh + ((r + 1) * N->hc + 1 + x0) * cp;
      for (int64_t cb = 0; cb < cp; cb += 16) {
        __m512 v[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
          v[c] = cb + c < N->cin ? _mm512_maskz_loadu_ps(m, s + (cb + c) * N->plane) : _mm512_setzero_ps();
        mm_tr16(v);
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++)
          if (q < cnt) _mm512_storeu_ps(d + q * cp + cb, v[q]);
      }
    }
}

/* block L by Winograd for the ng images of a group: their channels-last
 * inputs (Xh + j * is for image j) -> their (pooled) outputs at dst + j * is
 * (rows drs positions apart, cp channels each), L->sn tiles at a time */
static void wino_layer(const dlayer *L, int64_t ng, const float *Xh, int64_t is, const float *U, const float *bias,
                       float *V, float *M, float *dst, int64_t drs, int relu) {
  const int64_t cp = L->cp, cin = L->cin, all = ng * L->nt;
  for (int64_t t0 = 0; t0 < all; t0 += L->sn) {
    int64_t t1 = t0 + L->sn < all ? t0 + L->sn : all, nt = t1 - t0;
    wino_in512(L, Xh, is, V, t0, t1);
    for (int64_t ob = 0; ob < cp;) {
      int nv = (int)((cp - ob) / 16 < 4 ? (cp - ob) / 16 : 4), npm = wt_npmax[nv];
      int64_t nseg = (nt + npm - 1) / npm;
      for (int xi = 0; xi < 36; xi++)
        for (int64_t sg = 0, j0 = 0; sg < nseg; sg++) {
          int np = (int)(nt / nseg + (sg < nt % nseg));
          wt512[nv][np](cin, V + xi * L->vps + j0 * L->vts, L->vts, U + xi * cin * cp + ob, cp,
                        M + xi * L->mps + j0 * L->mts + ob, L->mts);
          j0 += np;
        }
      ob += 16 * nv;
    }
    wino_out512(L, M, bias, t0, t1, dst, is, drs, relu);
  }
}

/* A block with few output channels (layer 1 of a small CNN), for one sample:
 * vectors of 16 output positions of a row, two conv rows (the pool's) x two
 * vectors x 4 output channels per register tile; the 2 x 2 max pool and ReLU
 * in registers, then one contiguous store per pooled row and channel into the
 * next layer's planes (no transpose). Without a pool (mm_cnn_direct_conv2d)
 * both rows are stored as they are, with the ReLU when relu. out: the first
 * output position of channel 0; rows owp and channels oplane floats apart. */
__attribute__((target("avx512f"), noinline)) static void planar512(const dlayer *L, const float *X, const float *Wt,
                                                                   const float *bias, float *out, int64_t owp,
                                                                   int64_t oplane, int relu) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 zero = _mm512_setzero_ps();
  const int64_t k = L->k, wp = L->wp, co = L->cout, c4 = (co + 3) / 4 * 4;
  const int pool = L->pool;
  /* py: a pooled row (conv rows 2 py, 2 py + 1), or without a pool the pair of rows from 2 py */
  for (int64_t py = 0; py < (pool ? L->oh : (L->h + 1) / 2); py++)
    for (int64_t x0 = 0; x0 < (pool ? 2 * L->ow : L->w); x0 += 32) {
      int64_t pc = L->ow - x0 / 2 < 16 ? L->ow - x0 / 2 : 16; /* pooled outputs of this chunk */
      __mmask16 m = (__mmask16)((1u << pc) - 1u);
      for (int64_t ob = 0; ob < co; ob += 4) {
        int nob = co - ob < 4 ? (int)(co - ob) : 4;
        __m512 acc[2][4][2];
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) { /* channels past cout: zero weights and bias (packing), not stored */
          __m512 b = _mm512_set1_ps(bias[ob + o]);
          acc[0][o][0] = acc[0][o][1] = acc[1][o][0] = acc[1][o][1] = b;
        }
        const float *wq = Wt + ob;
        for (int64_t ci = 0; ci < L->cin; ci++)
          for (int64_t ky = 0; ky < k; ky++) {
            /* without a pool and h odd, the last pair has one row: its second is computed from the
             * first again (not stored), so nothing is read past the planes */
            const float *r0 = X + ci * L->plane + (2 * py + ky) * wp + x0, *r1 = 2 * py + 1 < L->h ? r0 + wp : r0;
            for (int64_t kx = 0; kx < k; kx++, wq += c4) {
              __m512 a00 = _mm512_loadu_ps(r0 + kx), a01 = _mm512_loadu_ps(r0 + kx + 16);
              __m512 a10 = _mm512_loadu_ps(r1 + kx), a11 = _mm512_loadu_ps(r1 + kx + 16);
#pragma GCC unroll 4
              for (int o = 0; o < 4; o++) {
                __m512 wv = _mm512_set1_ps(wq[o]);
                acc[0][o][0] = _mm512_fmadd_ps(wv, a00, acc[0][o][0]);
                acc[0][o][1] = _mm512_fmadd_ps(wv, a01, acc[0][o][1]);
                acc[1][o][0] = _mm512_fmadd_ps(wv, a10, acc[1][o][0]);
                acc[1][o][1] = _mm512_fmadd_ps(wv, a11, acc[1][o][1]);
              }
            }
          }
        if (!pool) { /* both rows (the second when it exists), up to w positions */
          int64_t n0 = L->w - x0 < 16 ? L->w - x0 : 16, n1 = L->w - x0 - 16 < 0 ? 0 : L->w - x0 - 16 < 16 ? L->w - x0 - 16 : 16;
          __mmask16 m0 = (__mmask16)((1u << n0) - 1u), m1 = (__mmask16)((1u << n1) - 1u);
          for (int r = 0; r < 2 && 2 * py + r < L->h; r++)
            for (int o = 0; o < nob; o++) {
              float *d = out + (ob + o) * oplane + (2 * py + r) * owp + x0;
              __m512 v0 = acc[r][o][0], v1 = acc[r][o][1];
              if (relu) v0 = _mm512_max_ps(v0, zero), v1 = _mm512_max_ps(v1, zero);
              _mm512_mask_storeu_ps(d, m0, v0);
              _mm512_mask_storeu_ps(d + 16, m1, v1);
            }
          continue;
        }
        float *d = out + py * owp + x0 / 2;
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
          if (o < nob) {
            __m512 v0 = _mm512_max_ps(acc[0][o][0], acc[1][o][0]), v1 = _mm512_max_ps(acc[0][o][1], acc[1][o][1]);
            __m512 p = _mm512_max_ps(_mm512_permutex2var_ps(v0, ev, v1), _mm512_permutex2var_ps(v0, od, v1));
            _mm512_mask_storeu_ps(d + (ob + o) * oplane, m, _mm512_max_ps(p, zero));
          }
        }
      }
    }
}
#endif

#ifdef MM_DIRECT_X86
/* one row of w RGB pixels -> d[c * plane + x] = byte * scale[c] + shift[c] (mul,
 * then add: the bits of the scalar loop), 16 pixels at a time: the 48 bytes
 * widened to floats, each channel gathered with two lane permutes. Returns
 * the pixels done (the rest is left to the caller). */
__attribute__((target("avx512f"), noinline)) static int64_t rgb_row512(const uint8_t *s, int64_t w, const float *scale,
                                                                       const float *shift, float *d, int64_t plane) {
  /* channel c of pixel p is float 3p + c of a (0..15), b (16..31), cc (32..47):
   * i0 = (3p + c) & 31 picks from a and b, i1 = (3p + c - 32) & 15 from cc for the lanes in hi */
  static const int32_t i0[3][16] = {{0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 1, 4, 7, 10, 13},
                                    {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 2, 5, 8, 11, 14},
                                    {2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0, 3, 6, 9, 12, 15}};
  static const int32_t i1[3][16] = {{0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14, 1, 4, 7, 10, 13},
                                    {1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14},
                                    {2, 5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15}};
  static const __mmask16 hi[3] = {0xf800, 0xf800, 0xfc00};
  __m512i ia[3], ib[3];
  __m512 sc[3], sh[3];
  for (int c = 0; c < 3; c++) {
    ia[c] = _mm512_loadu_si512((const void *)i0[c]);
    ib[c] = _mm512_loadu_si512((const void *)i1[c]);
    sc[c] = _mm512_set1_ps(scale[c]);
    sh[c] = _mm512_set1_ps(shift[c]);
  }
  int64_t x = 0;
  for (; x + 16 <= w; x += 16, s += 48) {
    __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)s)));
    __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(s + 16))));
    __m512 cc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(s + 32))));
#pragma GCC unroll 3
    for (int c = 0; c < 3; c++) {
      __m512 v = _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(a, ia[c], b), hi[c], ib[c], cc);
      _mm512_storeu_ps(d + c * plane + x, _mm512_add_ps(_mm512_mul_ps(v, sc[c]), sh[c]));
    }
  }
  return x;
}
#endif

/* the output y [*, yw, cp] of block L (2 x 2 max pooled when pool) into the
 * planes of N: the next block's (zero border k / 2), or an NCHW output (k = 1).
 * q: room for the pooled output on the portable path. */
static void to_planes(const dplan *P, const dlayer *L, const float *y, int64_t yw, int pool, const dlayer *N,
                      float *xn, float *q) {
#ifdef MM_DIRECT_X86
  if (P->isa == 16) {
    to_planes512(L, y, yw, pool, N, xn);
    return;
  }
#endif
  if (pool) {
    pool_hwc(y, yw, L->oh, L->ow, L->cp, q, L->ow);
    y = q, yw = L->ow;
  }
  int64_t npad = N->k / 2;
  for (int64_t c = 0; c < L->cout; c++)
    for (int64_t py = 0; py < L->oh; py++) {
      float *restrict d = xn + c * N->plane + (py + npad) * N->wp + npad;
      const float *restrict r = y + py * yw * L->cp + c;
      for (int64_t px = 0; px < L->ow; px++) d[px] = r[px * L->cp];
    }
}

/* the output y [*, yw, cp] of block L (2 x 2 max pooled when pool) into the
 * channels-last input of the Winograd block N (cinp = cp) */
static void to_hwc(const dlayer *L, const float *y, int64_t yw, int pool, const dlayer *N, float *xh) {
  float *d = xh + (N->hc + 1) * L->cp; /* the interior starts one row and one position in */
  if (pool) {
    pool_hwc(y, yw, L->oh, L->ow, L->cp, d, N->hc);
    return;
  }
  for (int64_t py = 0; py < L->oh; py++)
    memcpy(d + py * N->hc * L->cp, y + py * yw * L->cp, (size_t)(L->ow * L->cp) * sizeof(float));
}

/* sample i's input into the first block's planes X0 (and its channels-last
 * input when it runs by Winograd) */
static void load_input(const djob *j, int64_t i, float *X0, float *Xh0) {
  const dplan *P = j->P;
  const dlayer *L0 = &P->L[0];
  int64_t pad = L0->k / 2;
  if (j->rgb8) { /* the same arithmetic as mm_image_prep_rgb8 (byte * scale + shift), into the planes */
    const uint8_t *px = j->rgb8 + i * L0->h * L0->w * 3;
    for (int64_t r = 0; r < L0->h; r++) {
      int64_t x0 = 0;
#ifdef MM_DIRECT_X86
      if (P->isa == 16) x0 = rgb_row512(px + r * L0->w * 3, L0->w, j->scale, j->shift, X0 + (r + pad) * L0->wp + pad,
                                        L0->plane);
#endif
      for (int64_t c = 0; c < 3; c++) {
        float sc = j->scale[c], sh = j->shift[c], *d = X0 + c * L0->plane + (r + pad) * L0->wp + pad;
        const uint8_t *sr = px + r * L0->w * 3 + c;
        for (int64_t x = x0; x < L0->w; x++) d[x] = sr[3 * x] * sc + sh;
      }
    }
  } else {
    const float *xi = j->x + i * L0->cin * L0->h * L0->w;
    for (int64_t c = 0; c < L0->cin; c++)
      for (int64_t r = 0; r < L0->h; r++)
        memcpy(X0 + c * L0->plane + (r + pad) * L0->wp + pad, xi + (c * L0->h + r) * L0->w,
               (size_t)L0->w * sizeof(float));
  }
#ifdef MM_DIRECT_X86
  if (L0->wino) planes_to_hwc512(L0, X0, Xh0);
#else
  (void)Xh0;
#endif
}

/* the output Q [*, qw, cp] of block l for sample i (2 x 2 pooled after it
 * when pool): into the next block's input (I: the sample's inputs), or the
 * global average of the last block into y */
static void block_out(const djob *j, int l, int64_t i, const float *Q, int64_t qw, int pool, float *I, float *T) {
  const dplan *P = j->P;
  const dlayer *L = &P->L[l], *N = l + 1 < P->nb ? &P->L[l + 1] : NULL;
  float *pq = I + P->qoff;
  if (j->nchw) { /* mm_cnn_direct_conv2d: the block's output, NCHW, no ReLU */
    dlayer F = {0};
    F.k = 1, F.wp = L->w, F.plane = L->h * L->w;
    to_planes(P, L, Q, qw, 0, &F, j->y + i * L->cout * F.plane, pq);
    return;
  }
  if (N) {
    if (N->wino)
      to_hwc(L, Q, qw, pool, N, I + N->hoff);
    else
      to_planes(P, L, Q, qw, pool, N, I + N->xoff, pq);
    return;
  }
  if (pool) { /* the last block: the global average of its (pooled) output */
    pool_hwc(Q, qw, L->oh, L->ow, L->cp, pq, L->ow);
    Q = pq;
  }
  avg_hwc(Q, L->oh * L->ow, L->cp, L->cout, j->y + i * L->cout, T + P->soff);
}

static void drange(void *ctx, int64_t i0, int64_t i1, int tid) {
  const djob *j = ctx;
  const dplan *P = j->P;
  float *T = j->scratch + P->shared + (int64_t)tid * P->per_thread, *Y = T + P->yoff, *I0 = T + P->ibase;
  int64_t gmax = i1 - i0 < P->g ? i1 - i0 : P->g;
  for (int64_t g = 0; g < gmax; g++) /* the borders of planes and channels-last inputs stay zero */
    for (int l = 0; l < P->nb; l++) {
      const dlayer *L = &P->L[l];
      float *I = I0 + g * P->pim;
      memset(I + L->xoff, 0, (size_t)(L->cin * L->plane + 64) * sizeof(float));
      if (L->wino) memset(I + L->hoff, 0, (size_t)((4 * L->th + 2) * L->hc * L->cinp) * sizeof(float));
    }
  for (int64_t s = i0; s < i1; s += P->g) { /* a group: samples s .. s + ng - 1, block by block */
    int64_t ng = i1 - s < P->g ? i1 - s : P->g;
    for (int64_t g = 0; g < ng; g++) {
      float *I = I0 + g * P->pim;
      load_input(j, s + g, I + P->L[0].xoff, I + P->L[0].hoff);
    }
    for (int l = 0; l < P->nb; l++) {
      const dlayer *L = &P->L[l];
      const dlayer *N = l + 1 < P->nb ? &P->L[l + 1] : NULL;
      const float *bias = j->scratch + L->boff, *Wk = j->scratch + L->woff;
      const int64_t *off = (const int64_t *)(j->scratch + L->ooff);
#ifdef MM_DIRECT_X86
      if (L->wino) { /* pooled in the transform: straight into the next Winograd block's inputs, or each Q */
        float *V = T + L->voff, *M = T + L->moff;
        if (N && N->wino) {
          wino_layer(L, ng, I0 + L->hoff, P->pim, Wk, bias, V, M, I0 + N->hoff + (N->hc + 1) * N->cinp, N->hc, 1);
          continue;
        }
        wino_layer(L, ng, I0 + L->hoff, P->pim, Wk, bias, V, M, I0 + P->qoff, L->ow, !j->nchw);
        for (int64_t g = 0; g < ng; g++) {
          float *I = I0 + g * P->pim;
          block_out(j, l, s + g, I + P->qoff, L->ow, 0, I, T);
        }
        continue;
      }
#endif
      for (int64_t g = 0; g < ng; g++) {
        float *I = I0 + g * P->pim;
#ifdef MM_DIRECT_X86
        if (L->planar) {
          if (j->nchw) { /* the block's output, NCHW, no ReLU */
            planar512(L, I + L->xoff, Wk, bias, j->y + (s + g) * L->cout * L->h * L->w, L->w, L->h * L->w, 0);
            continue;
          }
          int64_t npad = N->k / 2;
          planar512(L, I + L->xoff, Wk, bias, I + N->xoff + npad * N->wp + npad, N->wp, N->plane, 1);
          if (N->wino) planes_to_hwc512(N, I + N->xoff, I + N->hoff);
          continue;
        }
#endif
        conv_layer(P, L, I + L->xoff, Wk, bias, off, Y, !j->nchw);
        block_out(j, l, s + g, Y, L->w, L->pool, I, T);
      }
    }
  }
}

static void forward(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w, djob *j,
                    int packed, int wino) {
  dplan P;
  float *scratch = j->scratch;
  if (n <= 0 || plan(&P, bl, nb, n, cin, h, w, isa(), (wino ? PLAN_WINO : 0) | (j->nchw ? PLAN_NCHW : 0))) return;
  for (int l = 0; l < P.nb && !packed; l++) { /* pack: W[(ky*k + kx)*cin + ci, oc], zero past cout */
    const dlayer *L = &P.L[l];
    float *Wk = scratch + L->woff, *bp = scratch + L->boff;
    int64_t kk2 = L->k * L->k;
    for (int64_t oc = 0; oc < L->cp; oc++) bp[oc] = oc < L->cout && L->b_in ? L->b_in[oc] : 0.0f;
    if (L->wino) {
#ifdef MM_DIRECT_X86
      if (L->cp % 8 == 0) {
        wino_pack512(L, Wk);
        continue;
      }
#endif
      wino_pack(L, Wk);
      continue;
    }
    if (L->planar) { /* Wt[(ci*k*k + kk)*c4 + oc]: the weights transposed, zero up to a multiple of 4 */
      int64_t nk = L->cin * kk2, c4 = (L->cout + 3) / 4 * 4;
      for (int64_t q = 0; q < nk; q++)
        for (int64_t oc = 0; oc < c4; oc++) Wk[q * c4 + oc] = oc < L->cout ? L->w_in[oc * nk + q] : 0.0f;
      continue;
    }
    for (int64_t kk = 0; kk < kk2; kk++)
      for (int64_t ci = 0; ci < L->cin; ci++) {
        float *d = Wk + (kk * L->cin + ci) * L->cp;
        const float *s = L->w_in + ci * kk2 + kk;
        for (int64_t oc = 0; oc < L->cout; oc++) d[oc] = s[oc * L->cin * kk2];
        for (int64_t oc = L->cout; oc < L->cp; oc++) d[oc] = 0.0f;
      }
    int64_t *off = (int64_t *)(scratch + L->ooff); /* step (kk, ci) reads plane ci shifted by (ky, kx) */
    for (int64_t kk = 0; kk < kk2; kk++)
      for (int64_t ci = 0; ci < L->cin; ci++) off[kk * L->cin + ci] = ci * L->plane + (kk / L->k) * L->wp + kk % L->k;
  }
  j->P = &P;
  j->n = n;
  mm_parallel_for(n, drange, j);
}

void mm_cnn_direct_forward(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                           const float *x, float *y, float *scratch, int packed, int wino) {
  djob j = {.x = x, .y = y, .scratch = scratch};
  forward(bl, nb, n, cin, h, w, &j, packed, wino);
}

void mm_cnn_direct_forward_rgb8(const mm_cnn_block *bl, int nb, int64_t n, int64_t h, int64_t w, const uint8_t *rgb8,
                                const float scale[3], const float shift[3], float *y, float *scratch, int packed,
                                int wino) {
  djob j = {.rgb8 = rgb8, .y = y, .scratch = scratch};
  for (int c = 0; c < 3; c++) j.scale[c] = scale[c], j.shift[c] = shift[c];
  forward(bl, nb, n, 3, h, w, &j, packed, wino);
}

int mm_cnn_direct_conv2d(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t k, const float *x,
                         const float *wt, const float *b, float *y) {
  mm_cnn_block bl = {cout, k, wt, b, 0};
  if (n <= 0) return 0;
  int64_t need = scratch_of(&bl, 1, n, cin, h, w, PLAN_WINO | PLAN_NCHW);
  if (need < 0) return -1;
  float *scr = malloc((size_t)need * sizeof(float));
  if (!scr) return -1;
  djob j = {.x = x, .y = y, .scratch = scr, .nchw = 1};
  forward(&bl, 1, n, cin, h, w, &j, 0, 1);
  free(scr);
  return 0;
}
