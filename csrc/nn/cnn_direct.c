/* cnn_direct.c - direct-convolution CNN inference (see cnn_direct.h). */
#include "cnn_direct.h"

#include "../core/gemm.h"
#include "../core/parallel.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_DIRECT_X86 1
#include <immintrin.h>
#endif

#define MAXB 8   /* blocks (the model's MM_MAXBLOCKS) */
#define MAXKK 121 /* k <= 11 */

typedef struct {
  int64_t cin, cout, h, w, k, wp, plane, cp, oh, ow;
  int pool;
  const float *w_in, *b_in;
  int64_t woff, boff, ooff; /* shared: packed weights [k*k*cin, cp], padded bias [cp], offsets [k*k*cin] */
  int64_t xoff;       /* per thread: the input planes [cin, plane], zero border */
} dlayer;

typedef struct {
  int nb, isa, vw, npmax;
  int64_t shared, per_thread;
  int64_t yoff, qoff, soff; /* per thread: the conv output [h, w, cp], pooled [oh, ow, cp], sums [cp] */
  dlayer L[MAXB];
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

static int plan(dplan *P, const mm_cnn_block *bl, int nb, int64_t cin, int64_t h, int64_t w, int isa_) {
  int vw = isa_ < 0 ? -isa_ : isa_;
  if (nb < 1 || nb > MAXB || cin < 1 || h < 1 || w < 1) return -1;
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
    L->woff = shared;
    shared += up(k * k * cin * L->cp, 16);
    L->boff = shared;
    shared += up(L->cp, 16);
    L->ooff = shared; /* int64 offsets: two floats each */
    shared += up(2 * k * k * cin, 16);
    L->xoff = per;
    per += cin * L->plane;
    if (h * w * L->cp > ymax) ymax = h * w * L->cp;
    if (L->pool) {
      if (h < 2 || w < 2) return -1;
      L->oh = h / 2, L->ow = w / 2;
      if (L->oh * L->ow * L->cp > qmax) qmax = L->oh * L->ow * L->cp;
    } else {
      L->oh = h, L->ow = w;
    }
    cin = L->cout, h = L->oh, w = L->ow;
  }
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

int64_t mm_cnn_direct_scratch(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w) {
  dplan P;
  if (plan(&P, bl, nb, cin, h, w, isa())) return -1;
  return P.shared + (int64_t)mm_parallel_threads(n) * P.per_thread;
}

/* ---- register tiles -------------------------------------------------------------- */

typedef void (*tile_fn)(int64_t nk, const int64_t *off, const float *x, const float *w, int64_t cp, const float *bias,
                        float *y);

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
                                                          const float *w, int64_t cp, const float *bias, float *y) { \
    tile(nv, np, nk, off, x, w, cp, bias, y);                                                                        \
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
                  const float *bias, float *y) {
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
    for (int o = 0; o < no; o++) y[j * cp + o] = acc[j][o] > 0.0f ? acc[j][o] : 0.0f;
}

/* ---- the forward ------------------------------------------------------------------ */

typedef struct {
  const dplan *P;
  int64_t n;
  const float *x;
  float *y, *scratch;
} djob;

/* the conv + bias + ReLU of layer L for one sample: X planes -> Y [h, w, cp].
 * Tiles are segments of one output row (nothing computed is thrown away):
 * a row splits into the fewest segments of at most np positions, of equal
 * length to within one. */
static void conv_layer(const dplan *P, const dlayer *L, const float *X, const float *Wk, const float *bias,
                       const int64_t *off, float *Y) {
  int64_t nk = L->k * L->k * L->cin;
  for (int64_t ob = 0; ob < L->cp;) {
    int nv = L->cp - ob >= 2 * P->vw ? 2 : 1;
    int64_t npm = nv == 2 ? P->npmax / 2 : P->npmax, nseg = (L->w + npm - 1) / npm;
    const tile_fn *tab = NULL;
#ifdef MM_DIRECT_X86
    if (P->isa == 16) tab = nv == 2 ? t512_2 : t512_1;
    if (P->isa == 8) tab = nv == 2 ? t256_2 : t256_1;
#endif
    for (int64_t y = 0; y < L->h; y++)
      for (int64_t sg = 0, x0 = 0; sg < nseg; sg++) {
        int np = (int)(L->w / nseg + (sg < L->w % nseg));
        const float *xs = X + y * L->wp + x0;
        float *ys = Y + (y * L->w + x0) * L->cp + ob;
        if (tab)
          tab[np](nk, off, xs, Wk + ob, L->cp, bias + ob, ys);
        else
          dport(nv, np, nk, off, xs, Wk + ob, L->cp, bias + ob, ys);
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

/* the (2 x 2 max pooled) conv output y [h, w, cp] of layer L into the next
 * layer's planes: 16 positions x 16 channels at a time, transposed in registers */
__attribute__((target("avx512f"), noinline)) static void to_planes512(const dlayer *L, const float *y, const dlayer *N,
                                                                      float *xn) {
  int64_t cp = L->cp, w = L->w, npad = N->k / 2;
  for (int64_t py = 0; py < L->oh; py++)
    for (int64_t px0 = 0; px0 < L->ow; px0 += 16) {
      int cnt = L->ow - px0 < 16 ? (int)(L->ow - px0) : 16;
      __mmask16 m = (__mmask16)((1u << cnt) - 1u);
      float *d = xn + (py + npad) * N->wp + npad + px0;
      for (int64_t cb = 0; cb < cp; cb += 16) {
        __m512 r[16];
        const float *a = y + (L->pool ? (2 * py * w + 2 * px0) : (py * w + px0)) * cp + cb;
        int64_t step = L->pool ? 2 * cp : cp, wc = w * cp;
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++, a += step) {
          if (t >= cnt)
            r[t] = _mm512_setzero_ps();
          else if (L->pool)
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

static void drange(void *ctx, int64_t i0, int64_t i1, int tid) {
  const djob *j = ctx;
  const dplan *P = j->P;
  float *base = j->scratch + P->shared + (int64_t)tid * P->per_thread, *Y = base + P->yoff;
  memset(base, 0, (size_t)P->yoff * sizeof(float)); /* the planes' borders stay zero */
  const dlayer *L0 = &P->L[0];
  int64_t in_per = L0->cin * L0->h * L0->w;
  for (int64_t i = i0; i < i1; i++) {
    const float *xi = j->x + i * in_per;
    float *X0 = base + L0->xoff;
    int64_t pad = L0->k / 2;
    for (int64_t c = 0; c < L0->cin; c++)
      for (int64_t r = 0; r < L0->h; r++)
        memcpy(X0 + c * L0->plane + (r + pad) * L0->wp + pad, xi + (c * L0->h + r) * L0->w, (size_t)L0->w * sizeof(float));
    for (int l = 0; l < P->nb; l++) {
      const dlayer *L = &P->L[l];
      conv_layer(P, L, base + L->xoff, j->scratch + L->woff, j->scratch + L->boff,
                 (const int64_t *)(j->scratch + L->ooff), Y);
      int64_t cp = L->cp, co = L->cout, ohw = L->oh * L->ow;
      const dlayer *N = l + 1 < P->nb ? &P->L[l + 1] : NULL;
#ifdef MM_DIRECT_X86
      if (N && P->isa == 16) {
        to_planes512(L, Y, N, base + N->xoff);
        continue;
      }
#endif
      float *Q = Y; /* the (pooled) output [oh, ow, cp] */
      if (L->pool) {
        Q = base + P->qoff;
        pool_hwc(Y, L->w, L->oh, L->ow, cp, Q);
      }
      if (!N) { /* global average */
        avg_hwc(Q, ohw, cp, co, j->y + i * co, base + P->soff);
        break;
      }
      int64_t npad = N->k / 2;
      for (int64_t c = 0; c < co; c++) /* to the next layer's planes (interior) */
        for (int64_t py = 0; py < L->oh; py++) {
          float *restrict d = base + N->xoff + c * N->plane + (py + npad) * N->wp + npad;
          const float *restrict q = Q + py * L->ow * cp + c;
          for (int64_t px = 0; px < L->ow; px++) d[px] = q[px * cp];
        }
    }
  }
}

void mm_cnn_direct_forward(const mm_cnn_block *bl, int nb, int64_t n, int64_t cin, int64_t h, int64_t w,
                           const float *x, float *y, float *scratch, int packed) {
  dplan P;
  if (n <= 0 || plan(&P, bl, nb, cin, h, w, isa())) return;
  for (int l = 0; l < P.nb && !packed; l++) { /* pack: W[(ky*k + kx)*cin + ci, oc], zero past cout */
    const dlayer *L = &P.L[l];
    float *Wk = scratch + L->woff, *bp = scratch + L->boff;
    int64_t kk2 = L->k * L->k;
    for (int64_t kk = 0; kk < kk2; kk++)
      for (int64_t ci = 0; ci < L->cin; ci++) {
        float *d = Wk + (kk * L->cin + ci) * L->cp;
        const float *s = L->w_in + ci * kk2 + kk;
        for (int64_t oc = 0; oc < L->cout; oc++) d[oc] = s[oc * L->cin * kk2];
        for (int64_t oc = L->cout; oc < L->cp; oc++) d[oc] = 0.0f;
      }
    for (int64_t oc = 0; oc < L->cp; oc++) bp[oc] = oc < L->cout && L->b_in ? L->b_in[oc] : 0.0f;
    int64_t *off = (int64_t *)(scratch + L->ooff); /* step (kk, ci) reads plane ci shifted by (ky, kx) */
    for (int64_t kk = 0; kk < kk2; kk++)
      for (int64_t ci = 0; ci < L->cin; ci++) off[kk * L->cin + ci] = ci * L->plane + (kk / L->k) * L->wp + kk % L->k;
  }
  djob j = {.P = &P, .n = n, .x = x, .y = y, .scratch = scratch};
  mm_parallel_for(n, drange, &j);
}
