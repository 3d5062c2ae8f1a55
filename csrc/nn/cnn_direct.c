/* cnn_direct.c - direct-convolution CNN inference (see cnn_direct.h). */
#include "cnn_direct.h"

#include "../core/gemm.h"
#include "../core/parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_DIRECT_X86 1
#include <immintrin.h>
#endif

#define MAXKK 121 /* k <= 11 */
#define WINO_MIN_CIN 8 /* below this the Winograd products are too short to pay */

typedef struct {
  int64_t cin, cout, h, w, k, wp, plane, cp, oh, ow;
  int pool;
  const float *w_in, *b_in;
  /* shared: packed weights (direct [k*k*cin, cp]; Winograd [16, cin, cp]; planar [cin*k*k, cout]),
   * padded bias [cp], GEMM step offsets (direct k*k*cin; Winograd cin) */
  int64_t woff, boff, ooff;
  int64_t xoff;       /* per thread: the input planes [cin, plane], zero border */
  int wino;           /* Winograd F(2x2, 3x3) (see wino_layer) */
  int planar;         /* vectors over positions, written pooled into the next planes (see planar512) */
  int64_t th, tw;     /* its 2 x 2 output tiles: th x tw */
  int64_t sr, sn;     /* Winograd runs sr tile rows (sn = sr * tw tiles) at a time, in L1 */
  int64_t voff, moff; /* per thread: transformed input [16, cin, sn], products [16, sn, cp] */
  int64_t vxs, mxs;   /* ... their point strides: padded off multiples of 4 KB (16 streams in one L1 set) */
} dlayer;

typedef struct {
  int nb, isa, vw, npmax;
  int64_t shared, per_thread, cpmax, zoff; /* zoff: shared, cpmax zeros (the bias of the Winograd products) */
  int64_t yoff, qoff, soff; /* per thread: the conv output [h, w, cp], pooled [oh, ow, cp], sums [cp] */
  dlayer L[MM_CNN_MAXBLOCKS];
} dplan;

static int64_t up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* the tile kernels in use: 16 (avx512), 8 (avx2) or -16 (portable C, 16 lanes) */
static int isa(void) {
#ifdef MM_DIRECT_X86
  const char *k = mm_gemm_kernel();
  if (!strcmp(k, "avx512")) return 16;
  if (!strcmp(k, "avx2")) return 8;
#endif
  return -16;
}

int mm_cnn_direct_ok(void) { return isa() > 0; }

static int plan(dplan *P, const mm_cnn_block *bl, int nb, int64_t cin, int64_t h, int64_t w, int isa_, int wino_on) {
  int vw = isa_ < 0 ? -isa_ : isa_;
  if (nb < 1 || nb > MM_CNN_MAXBLOCKS || cin < 1 || h < 1 || w < 1) return -1;
  P->nb = nb;
  P->isa = isa_;
  P->vw = vw;
  P->npmax = vw == 16 ? 28 : 12; /* positions per tile with one vector of channels (two vectors: half) */
  int64_t shared = 0, per = 0, ymax = 0, qmax = 0;
  for (int l = 0; l < nb; l++) {
    dlayer *L = &P->L[l];
    int64_t k = bl[l].k;
    if (k < 1 || k % 2 == 0 || k * k > MAXKK || bl[l].cout < 1 || !bl[l].w) return -1;
    L->cin = cin, L->cout = bl[l].cout, L->h = h, L->w = w, L->k = k, L->pool = bl[l].pool;
    L->w_in = bl[l].w, L->b_in = bl[l].b;
    L->wp = w + k - 1;
    L->plane = up((h + k - 1) * L->wp, 16); /* a tile reads at most up to (h+k-1)*wp - 1 */
    L->cp = up(L->cout, vw);
    /* Winograd where it pays: 3 x 3 with a pool over the 2 x 2 output tiles,
     * enough input channels for its small products (AVX-512 only) */
    L->wino = isa_ == 16 && k == 3 && L->pool && h % 2 == 0 && w % 2 == 0 && cin >= WINO_MIN_CIN && wino_on;
    /* few output channels (one vector or less): vectors over positions instead */
    L->planar = isa_ == 16 && !L->wino && L->pool && L->cout <= 16 && l + 1 < nb && h >= 2 && w >= 2;
    L->th = h / 2, L->tw = w / 2;
    int64_t nk = L->wino ? cin : k * k * cin; /* GEMM steps */
    L->woff = shared;
    shared += up((L->wino ? 16 * cin : k * k * cin) * L->cp, 16);
    L->boff = shared;
    shared += up(L->cp, 16);
    L->ooff = shared; /* int64 offsets: two floats each */
    shared += up(2 * nk, 16);
    L->xoff = per;
    per += cin * L->plane + 64; /* the Winograd input transform reads up to 34 floats from a row start */
    if (L->wino) {
      /* a segment: the fewest equal runs of tile rows with at most 16 tiles
       * (one vector of the input transform), at least one row */
      int64_t rmax = 16 / L->tw > 0 ? 16 / L->tw : 1, nseg = (L->th + rmax - 1) / rmax;
      L->sr = (L->th + nseg - 1) / nseg;
      L->sn = L->sr * L->tw;
      L->vxs = up(cin * L->sn, 16) + 16;
      L->mxs = L->sn * L->cp + 16;
      L->voff = per;
      per += 16 * L->vxs;
      L->moff = per;
      per += 16 * L->mxs;
    }
    if (!L->wino && !L->planar && h * w * L->cp > ymax) ymax = h * w * L->cp; /* conv_layer's output */
    if (L->pool) {
      if (h < 2 || w < 2) return -1;
      L->oh = h / 2, L->ow = w / 2;
      if (L->oh * L->ow * L->cp > qmax) qmax = L->oh * L->ow * L->cp;
    } else {
      L->oh = h, L->ow = w;
    }
    cin = L->cout, h = L->oh, w = L->ow;
  }
  int64_t cpmax = 0;
  for (int l = 0; l < nb; l++)
    if (P->L[l].cp > cpmax) cpmax = P->L[l].cp;
  P->cpmax = cpmax;
  P->zoff = shared;
  shared += up(cpmax, 16);
  P->yoff = per;
  per += up(ymax, 16);
  P->qoff = per;
  per += up(qmax, 16);
  P->soff = per;
  per += up(P->L[nb - 1].cp, 16);
  P->shared = shared;
  P->per_thread = per;
  return 0;
}

int64_t mm_cnn_direct_scratch(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                              int wino) {
  dplan P;
  if (plan(&P, bl, nb, cin, h, w, isa(), wino)) return -1;
  return P.shared + (int64_t)mm_parallel_threads(n) * P.per_thread;
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

/* 2 x 2 max pool of y [h, w, cp] (rows w positions apart) into q [oh, ow, cp] */
static void pool_hwc(const float *restrict y, int64_t w, int64_t oh, int64_t ow, int64_t cp, float *restrict q) {
  for (int64_t py = 0; py < oh; py++)
    for (int64_t px = 0; px < ow; px++) {
      const float *a = y + ((2 * py) * w + 2 * px) * cp, *b = a + cp, *c = a + w * cp, *d = c + cp;
      float *o = q + (py * ow + px) * cp;
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

/* transpose the 16 x 16 block r (row i = r[i]) in place */
A512 void tr16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) { /* rows 4g..4g+3: u[4g + j] holds columns j, j+4, j+8, j+12 (a lane each) */
    __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]), c = _mm512_castps_pd(t[4 * g + 2]),
            d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    __m512 v = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), v2 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    __m512 w = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), w2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(v, w, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(v, w, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(v2, w2, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(v2, w2, 0xdd);
  }
}

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
        tr16(r);
        int nc = L->cout - cb < 16 ? (int)(L->cout - cb) : 16;
        float *dc = d + cb * N->plane;
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++, dc += N->plane)
          if (c < nc) _mm512_mask_storeu_ps(dc, m, r[c]);
      }
    }
}
#endif

/* ---- Winograd F(2 x 2, 3 x 3) -----------------------------------------------------
 * Output tile (ty, tx) covers outputs (2ty..2ty+1, 2tx..2tx+1) and reads the
 * padded 4 x 4 input patch d at (2ty, 2tx). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]:
 * out = A^T [ sum over ci of (G g G^T) .* (B^T d B) ] A, 16 products per channel
 * pair instead of 36. The sum over ci is, for each of the 16 points xi, a
 * product [nt tiles x cin] x [cin x cout] computed by the same register tiles as
 * the direct convolution (relu off, zero bias); the output transform adds the
 * bias, takes the max of the tile's four outputs (the 2 x 2 pool) and the ReLU. */
static void wino_pack(const dlayer *L, float *U, int64_t *off) {
  for (int64_t ci = 0; ci < L->cin; ci++)
    for (int64_t oc = 0; oc < L->cp; oc++) {
      float u[16] = {0};
      if (oc < L->cout) {
        const float *g = L->w_in + (oc * L->cin + ci) * 9;
        float t[4][3]; /* G g */
        for (int c = 0; c < 3; c++) {
          t[0][c] = g[c];
          t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
          t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
          t[3][c] = g[6 + c];
        }
        for (int r = 0; r < 4; r++) { /* (G g) G^T */
          u[r * 4 + 0] = t[r][0];
          u[r * 4 + 1] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
          u[r * 4 + 2] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
          u[r * 4 + 3] = t[r][2];
        }
      }
      for (int xi = 0; xi < 16; xi++) U[(xi * L->cin + ci) * L->cp + oc] = u[xi];
    }
  for (int64_t ci = 0; ci < L->cin; ci++) off[ci] = ci * L->sn; /* step ci of point xi reads V[xi, ci, :] */
}

#ifdef MM_DIRECT_X86
/* V[xi, ci, t] = (B^T d B)[xi] for every tile t of the padded planes X.
 * Lanes are tiles: one tile row of up to 16 tiles, or (tw <= 8) two tile rows
 * side by side (lanes [0, tw) and [tw, 2 tw), which are also next to each
 * other in V). A patch row's 4 columns per tile come from two loads of 16 and
 * one lane permute each (even / odd columns). */
__attribute__((target("avx512f"), noinline)) static void wino_in512(const dlayer *L, const float *X, float *V,
                                                                    int64_t ty0, int64_t ty1) {
  const int64_t nt = L->sn, cs = L->vxs, tw = L->tw, wp = L->wp;
  const int two = 2 * tw <= 16; /* two tile rows per vector */
  int32_t ie[16], io[16];
  for (int l = 0; l < 16; l++) {
    int src = two && l >= tw ? 16 + 2 * (l - (int)tw) : 2 * l; /* second row: from the second source */
    ie[l] = src & 31;
    io[l] = (src + 1) & 31;
  }
  const __m512i ev = _mm512_loadu_si512((const void *)ie), od = _mm512_loadu_si512((const void *)io);
  const int64_t rows_per = two ? 2 : 1, xstep = two ? tw : 16;
  for (int64_t ci = 0; ci < L->cin; ci++) {
    const float *xc = X + ci * L->plane;
    for (int64_t tx0 = 0; tx0 < tw; tx0 += xstep)
      for (int64_t ty = ty0; ty < ty1; ty += rows_per) {
        int64_t cnt = two ? (ty + 1 < ty1 ? 2 * tw : tw) : (tw - tx0 < 16 ? tw - tx0 : 16);
        __mmask16 m = (__mmask16)((1u << cnt) - 1u);
        /* the second tile row's patch starts 2 padded rows lower (or, in a
         * one-row vector, the same row 16 columns on: lanes 8..15 of 32) */
        int64_t second = two ? (ty + 1 < ty1 ? 2 * wp : 0) : 16;
        __m512 t[4][4]; /* t[r][c]: the row transform of patch row r */
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
          const float *row = xc + (2 * ty + r) * wp + 2 * tx0;
          __m512 a = _mm512_loadu_ps(row), b = _mm512_loadu_ps(row + second);
          __m512 c = _mm512_loadu_ps(row + 2), d = _mm512_loadu_ps(row + second + 2);
          __m512 d0 = _mm512_permutex2var_ps(a, ev, b), d1 = _mm512_permutex2var_ps(a, od, b);
          __m512 d2 = _mm512_permutex2var_ps(c, ev, d), d3 = _mm512_permutex2var_ps(c, od, d);
          t[r][0] = _mm512_sub_ps(d0, d2);
          t[r][1] = _mm512_add_ps(d1, d2);
          t[r][2] = _mm512_sub_ps(d2, d1);
          t[r][3] = _mm512_sub_ps(d1, d3);
        }
        float *v = V + ci * nt + (ty - ty0) * tw + tx0;
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
          _mm512_mask_storeu_ps(v + (0 * 4 + c) * cs, m, _mm512_sub_ps(t[0][c], t[2][c]));
          _mm512_mask_storeu_ps(v + (1 * 4 + c) * cs, m, _mm512_add_ps(t[1][c], t[2][c]));
          _mm512_mask_storeu_ps(v + (2 * 4 + c) * cs, m, _mm512_sub_ps(t[2][c], t[1][c]));
          _mm512_mask_storeu_ps(v + (3 * 4 + c) * cs, m, _mm512_sub_ps(t[1][c], t[3][c]));
        }
      }
  }
}

/* Q[t, :] = relu(bias + max of the tile's 4 outputs A^T M[:, t, :] A) */
__attribute__((target("avx512f"), noinline)) static void wino_out512(const dlayer *L, const float *M, const float *bias,
                                                                     float *Q, int64_t nt) {
  const int64_t cp = L->cp, xs = L->mxs;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t t = 0; t < nt; t++)
    for (int64_t cb = 0; cb < cp; cb += 16) {
      const float *mp = M + t * cp + cb;
      __m512 s0[4], s1[4];
#pragma GCC unroll 4
      for (int c = 0; c < 4; c++) {
        __m512 m0 = _mm512_loadu_ps(mp + (0 * 4 + c) * xs), m1 = _mm512_loadu_ps(mp + (1 * 4 + c) * xs);
        __m512 m2 = _mm512_loadu_ps(mp + (2 * 4 + c) * xs), m3 = _mm512_loadu_ps(mp + (3 * 4 + c) * xs);
        s0[c] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s1[c] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      __m512 o00 = _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]);
      __m512 o01 = _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]);
      __m512 o10 = _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]);
      __m512 o11 = _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]);
      __m512 mx = _mm512_max_ps(_mm512_max_ps(o00, o01), _mm512_max_ps(o10, o11));
      _mm512_storeu_ps(Q + t * cp + cb, _mm512_max_ps(_mm512_add_ps(mx, _mm512_loadu_ps(bias + cb)), zero));
    }
}

/* A pooled block with few output channels (layer 1 of a small CNN), for one
 * sample: vectors of 16 output positions of a row, two conv rows (the pool's)
 * x two vectors x 4 output channels per register tile; the 2 x 2 max pool and
 * ReLU in registers, then one contiguous store per pooled row and channel
 * into the next layer's planes (no transpose). */
__attribute__((target("avx512f"), noinline)) static void planar512(const dlayer *L, const float *X, const float *Wt,
                                                                   const float *bias, const dlayer *N, float *xn) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 zero = _mm512_setzero_ps();
  const int64_t k = L->k, wp = L->wp, co = L->cout, c4 = (co + 3) / 4 * 4, npad = N->k / 2;
  for (int64_t py = 0; py < L->oh; py++)
    for (int64_t x0 = 0; x0 < 2 * L->ow; x0 += 32) {
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
            const float *r0 = X + ci * L->plane + (2 * py + ky) * wp + x0, *r1 = r0 + wp;
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
        float *d = xn + (py + npad) * N->wp + npad + x0 / 2;
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
          if (o < nob) {
            __m512 v0 = _mm512_max_ps(acc[0][o][0], acc[1][o][0]), v1 = _mm512_max_ps(acc[0][o][1], acc[1][o][1]);
            __m512 p = _mm512_max_ps(_mm512_permutex2var_ps(v0, ev, v1), _mm512_permutex2var_ps(v0, od, v1));
            _mm512_mask_storeu_ps(d + (ob + o) * N->plane, m, _mm512_max_ps(p, zero));
          }
        }
      }
    }
}

/* layer L by Winograd for one sample: X planes -> pooled Q [th, tw, cp], a
 * segment of tile rows at a time (its V and M stay in L1) */
static void wino_layer(const dplan *P, const dlayer *L, const float *X, const float *U, const float *bias,
                       const int64_t *off, const float *zero, float *V, float *M, float *Q) {
  const int64_t cp = L->cp, cin = L->cin;
  for (int64_t ty0 = 0; ty0 < L->th; ty0 += L->sr) {
    int64_t ty1 = ty0 + L->sr < L->th ? ty0 + L->sr : L->th, nt = (ty1 - ty0) * L->tw;
    wino_in512(L, X, V, ty0, ty1);
    for (int64_t ob = 0; ob < cp;) {
      int nv;
      int64_t npm;
      const tile_fn *tab = pick_tiles(P, cp - ob, &nv, &npm); /* AVX-512 here: never NULL */
      int64_t nseg = (nt + npm - 1) / npm;
      for (int xi = 0; xi < 16; xi++)
        for (int64_t sg = 0, j0 = 0; sg < nseg; sg++) {
          int np = (int)(nt / nseg + (sg < nt % nseg));
          tab[np](cin, off, V + xi * L->vxs + j0, U + xi * cin * cp + ob, cp, zero, M + xi * L->mxs + j0 * cp + ob, 0);
          j0 += np;
        }
      ob += nv * 16;
    }
    wino_out512(L, M, bias, Q + ty0 * L->tw * cp, nt);
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
    pool_hwc(y, yw, L->oh, L->ow, L->cp, q);
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

static void drange(void *ctx, int64_t i0, int64_t i1, int tid) {
  const djob *j = ctx;
  const dplan *P = j->P;
  float *base = j->scratch + P->shared + (int64_t)tid * P->per_thread, *Y = base + P->yoff;
  for (int l = 0; l < P->nb; l++) /* the planes' borders stay zero */
    memset(base + P->L[l].xoff, 0, (size_t)(P->L[l].cin * P->L[l].plane + 64) * sizeof(float));
  const dlayer *L0 = &P->L[0];
  int64_t in_per = L0->cin * L0->h * L0->w;
  for (int64_t i = i0; i < i1; i++) {
    const float *xi = j->x ? j->x + i * in_per : NULL;
    float *X0 = base + L0->xoff;
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
      for (int64_t c = 0; c < L0->cin; c++)
        for (int64_t r = 0; r < L0->h; r++)
          memcpy(X0 + c * L0->plane + (r + pad) * L0->wp + pad, xi + (c * L0->h + r) * L0->w,
                 (size_t)L0->w * sizeof(float));
    }
    for (int l = 0; l < P->nb; l++) {
      const dlayer *L = &P->L[l];
      const dlayer *N = l + 1 < P->nb ? &P->L[l + 1] : NULL;
      const float *bias = j->scratch + L->boff, *Wk = j->scratch + L->woff;
      const int64_t *off = (const int64_t *)(j->scratch + L->ooff);
      float *Q = Y, *pq = base + P->qoff; /* Q: the block's output [*, qw, cp], 2 x 2 pooled after when pool */
      int64_t qw = L->w;
      int pool = L->pool;
#ifdef MM_DIRECT_X86
      if (L->planar) {
        planar512(L, base + L->xoff, Wk, bias, N, base + N->xoff);
        continue;
      }
      if (L->wino) { /* pooled already */
        wino_layer(P, L, base + L->xoff, Wk, bias, off, j->scratch + P->zoff, base + L->voff, base + L->moff, pq);
        Q = pq, qw = L->ow, pool = 0;
      }
#endif
      if (!L->wino) conv_layer(P, L, base + L->xoff, Wk, bias, off, Y, !j->nchw);
      if (j->nchw) { /* mm_cnn_direct_conv2d: the block's output, NCHW, no ReLU */
        dlayer F = {0};
        F.k = 1, F.wp = L->w, F.plane = L->h * L->w;
        to_planes(P, L, Q, qw, 0, &F, j->y + i * L->cout * F.plane, pq);
        break;
      }
      if (N) {
        to_planes(P, L, Q, qw, pool, N, base + N->xoff, pq);
        continue;
      }
      if (pool) { /* the last block: the global average of its (pooled) output */
        pool_hwc(Q, qw, L->oh, L->ow, L->cp, pq);
        Q = pq;
      }
      avg_hwc(Q, L->oh * L->ow, L->cp, L->cout, j->y + i * L->cout, base + P->soff);
    }
  }
}

static void forward(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w, djob *j,
                    int packed, int wino) {
  dplan P;
  float *scratch = j->scratch;
  if (n <= 0 || plan(&P, bl, nb, cin, h, w, isa(), wino)) return;
  if (!packed) memset(scratch + P.zoff, 0, (size_t)P.cpmax * sizeof(float));
  for (int l = 0; l < P.nb && !packed; l++) { /* pack: W[(ky*k + kx)*cin + ci, oc], zero past cout */
    const dlayer *L = &P.L[l];
    float *Wk = scratch + L->woff, *bp = scratch + L->boff;
    int64_t kk2 = L->k * L->k;
    for (int64_t oc = 0; oc < L->cp; oc++) bp[oc] = oc < L->cout && L->b_in ? L->b_in[oc] : 0.0f;
    if (L->wino) {
      wino_pack(L, Wk, (int64_t *)(scratch + L->ooff));
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
  int64_t need = mm_cnn_direct_scratch(&bl, 1, n, cin, h, w, 0);
  if (need < 0) return -1;
  float *scr = malloc((size_t)need * sizeof(float));
  if (!scr) return -1;
  djob j = {.x = x, .y = y, .scratch = scr, .nchw = 1};
  forward(&bl, 1, n, cin, h, w, &j, 0, 0);
  free(scr);
  return 0;
}
