/* winograd.c - see winograd.h.
 *
 * Work goes in chunks of about TC output tiles: whole tile rows (n, ty) of
 * tw tiles each, so that the transformed input V[16][c][TC] and the products
 * M[16][o][TC] of one chunk stay in L2. Per chunk:
 *  1. input transform, per (channel, tile row): the four input rows under
 *     the row of tiles, zero-padded, are combined row-wise (B^T d), split
 *     into even and odd columns, and combined column-wise (. B), so every
 *     step is a contiguous loop over the tiles of the row;
 *  2. 16 GEMMs M[xi] = U[xi] . V[xi] (U = G g G^T, the transformed weights,
 *     computed once per call);
 *  3. output transform (A^T m A) + bias (+ ReLU), written to two output rows.
 * Every output element is summed in an order fixed by the shapes alone. */
#include "winograd.h"

#include <string.h>

#include "core/cpu.h"
#include "core/gemm.h"

#define TC 128

int mm_wino_ok(const mm_conv2d_shape *s) {
  return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->groups == 1 && s->ph <= 2 && s->pw <= 2 &&
         s->oh >= 1 && s->ow >= 1;
}

/* A row of tw tiles takes st = tw + 1 slots: the extra one lets every
 * transform run as one unit-stride loop over the whole chunk (its value is
 * computed and never used). A padded input row is wp = 2 * st floats. */
typedef struct {
  int64_t th, tw, st, wp, rows, nt; /* tiles down/across, slots per row, padded row, rows per chunk, slots */
} geo;

static geo geometry(const mm_conv2d_shape *s) {
  geo g;
  g.th = (s->oh + 1) / 2;
  g.tw = (s->ow + 1) / 2;
  g.st = g.tw + 1;
  g.wp = 2 * g.st;
  g.rows = TC / g.st < 1 ? 1 : TC / g.st;
  if (g.rows > s->n * g.th) g.rows = s->n * g.th;
  g.nt = g.rows * g.st;
  return g;
}

int64_t mm_wino_scratch(const mm_conv2d_shape *s) {
  geo g = geometry(s);
  /* U, V, M; 4 padded input rows per tile row; 8 slot arrays */
  return 16 * s->o * s->c + 16 * s->c * g.nt + 16 * s->o * g.nt + 4 * g.rows * g.wp + 8 * g.nt + 64;
}

/* U[xi][o][c] = (G g G^T)[xi] for every (o, c) */
static void weights(const mm_conv2d_shape *s, const float *w, int flip, float *U) {
  int64_t O = s->o, C = s->c;
  for (int64_t o = 0; o < O; o++) {
    for (int64_t c = 0; c < C; c++) {
      float g[3][3];
      if (!flip) {
        memcpy(g, w + (o * C + c) * 9, sizeof g);
      } else {
        const float *src = w + (c * O + o) * 9; /* stored [c][o], rotated */
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 3; j++) g[i][j] = src[(2 - i) * 3 + (2 - j)];
      }
      float t[4][3]; /* G g */
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) { /* (G g) G^T */
        float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++) U[((int64_t)(i * 4 + j) * O + o) * C + c] = u[j];
      }
    }
  }
}

/* B^T d B for every slot of the chunk, one channel. D: 4 arrays of nt*2
 * floats (the padded input rows under each tile row, back to back); eo: 8
 * arrays of nt; V[xi] at V + xi*vs. */
static void input_tf_c(const float *restrict D, int64_t nt, float *restrict eo, float *restrict V,
                                    int64_t vs) {
  const float *d0 = D, *d1 = D + 2 * nt, *d2 = D + 4 * nt, *d3 = D + 6 * nt;
  float *e0 = eo, *e1 = eo + nt, *e2 = eo + 2 * nt, *e3 = eo + 3 * nt;
  float *o0 = eo + 4 * nt, *o1 = eo + 5 * nt, *o2 = eo + 6 * nt, *o3 = eo + 7 * nt;
  for (int64_t q = 0; q < nt; q++) { /* B^T d, split into even and odd columns */
    float a0 = d0[2 * q], a1 = d1[2 * q], a2 = d2[2 * q], a3 = d3[2 * q];
    float b0 = d0[2 * q + 1], b1 = d1[2 * q + 1], b2 = d2[2 * q + 1], b3 = d3[2 * q + 1];
    e0[q] = a0 - a2;
    e1[q] = a1 + a2;
    e2[q] = a2 - a1;
    e3[q] = a1 - a3;
    o0[q] = b0 - b2;
    o1[q] = b1 + b2;
    o2[q] = b2 - b1;
    o3[q] = b1 - b3;
  }
  for (int i = 0; i < 4; i++) { /* . B */
    const float *er = eo + i * nt, *od = eo + (4 + i) * nt;
    float *v0 = V + (i * 4 + 0) * vs, *v1 = V + (i * 4 + 1) * vs, *v2 = V + (i * 4 + 2) * vs,
          *v3 = V + (i * 4 + 3) * vs;
    for (int64_t t = 0; t + 1 < nt; t++) {
      v0[t] = er[t] - er[t + 1];
      v1[t] = od[t] + er[t + 1];
      v2[t] = er[t + 1] - od[t];
      v3[t] = od[t] - od[t + 1];
    }
    v0[nt - 1] = v1[nt - 1] = v2[nt - 1] = v3[nt - 1] = 0.0f; /* the last slot is a spare one */
  }
}

/* A^T m A + bias (+ ReLU) for every slot of the chunk, one output channel:
 * Y holds 2 arrays of 2*nt (the two output rows of each tile row, padded
 * like the input). m[xi*ms + t]. */
static void output_tf_c(const float *restrict m, int64_t ms, int64_t nt, float bias, int relu,
                                     float *restrict Y) {
  float *y0 = Y, *y1 = Y + 2 * nt;
  for (int64_t t = 0; t < nt; t++) {
    float s0[4], s1[4];
    for (int j = 0; j < 4; j++) {
      float x0 = m[(0 + j) * ms + t], x1 = m[(4 + j) * ms + t], x2 = m[(8 + j) * ms + t], x3 = m[(12 + j) * ms + t];
      s0[j] = x0 + x1 + x2;
      s1[j] = x1 - x2 - x3;
    }
    float p0 = s0[0] + s0[1] + s0[2] + bias, q0 = s0[1] - s0[2] - s0[3] + bias;
    float p1 = s1[0] + s1[1] + s1[2] + bias, q1 = s1[1] - s1[2] - s1[3] + bias;
    if (relu) {
      p0 = p0 > 0.0f ? p0 : 0.0f;
      q0 = q0 > 0.0f ? q0 : 0.0f;
      p1 = p1 > 0.0f ? p1 : 0.0f;
      q1 = q1 > 0.0f ? q1 : 0.0f;
    }
    y0[2 * t] = p0;
    y0[2 * t + 1] = q0;
    y1[2 * t] = p1;
    y1[2 * t + 1] = q1;
  }
}

/* D <- the 4 zero-padded input rows under each of the nr tile rows from
 * r0 (plane = channel c of image 0; images xs_n apart) */
static void rows_in_c(const mm_conv2d_shape *s, const geo *g, const float *plane0, int64_t xs_n, int64_t r0,
                      int64_t nr, float *D) {
  int64_t lo = s->pw, hi = s->pw + s->w < g->wp ? s->pw + s->w : g->wp;
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / g->th, ty = (r0 + r) % g->th;
    for (int k = 0; k < 4; k++) {
      float *dr = D + (k * nr + r) * g->wp;
      int64_t ir = 2 * ty + k - s->ph;
      memset(dr, 0, (size_t)g->wp * sizeof(float));
      if (ir >= 0 && ir < s->h) memcpy(dr + lo, plane0 + n * xs_n + ir * s->w, (size_t)(hi - lo) * sizeof(float));
    }
  }
}

/* the output rows of the nr tile rows from r0, from Y (see output_tf) */
static void rows_out_c(const mm_conv2d_shape *s, const geo *g, float *plane0, int64_t ys_n, int64_t r0, int64_t nr,
                       const float *Y) {
  int64_t nt = nr * g->st;
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / g->th, ty = (r0 + r) % g->th;
    float *row = plane0 + n * ys_n + 2 * ty * s->ow;
    memcpy(row, Y + r * g->wp, (size_t)s->ow * sizeof(float));
    if (2 * ty + 1 < s->oh) memcpy(row + s->ow, Y + 2 * nt + r * g->wp, (size_t)s->ow * sizeof(float));
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define W512 __attribute__((target("avx512f"))) static

/* lanes [0, k) of 16 */
#define MASK16(k) ((k) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k)) - 1u))

W512 void input_tf_512(const float *restrict D, int64_t nt, float *restrict eo, float *restrict V, int64_t vs) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t q = 0; q < nt; q += 16) {
    int64_t k = nt - q < 16 ? nt - q : 16;
    __mmask16 lo = MASK16(2 * k), hi = 2 * k > 16 ? MASK16(2 * k - 16) : 0;
    __m512 a[4], bo[4];
    for (int r = 0; r < 4; r++) {
      const float *d = D + r * 2 * nt + 2 * q;
      __m512 x0 = _mm512_maskz_loadu_ps(lo, d), x1 = _mm512_maskz_loadu_ps(hi, d + 16);
      a[r] = _mm512_permutex2var_ps(x0, ev, x1);
      bo[r] = _mm512_permutex2var_ps(x0, od, x1);
    }
    __mmask16 m = MASK16(k);
    _mm512_mask_storeu_ps(eo + q, m, _mm512_sub_ps(a[0], a[2]));
    _mm512_mask_storeu_ps(eo + nt + q, m, _mm512_add_ps(a[1], a[2]));
    _mm512_mask_storeu_ps(eo + 2 * nt + q, m, _mm512_sub_ps(a[2], a[1]));
    _mm512_mask_storeu_ps(eo + 3 * nt + q, m, _mm512_sub_ps(a[1], a[3]));
    _mm512_mask_storeu_ps(eo + 4 * nt + q, m, _mm512_sub_ps(bo[0], bo[2]));
    _mm512_mask_storeu_ps(eo + 5 * nt + q, m, _mm512_add_ps(bo[1], bo[2]));
    _mm512_mask_storeu_ps(eo + 6 * nt + q, m, _mm512_sub_ps(bo[2], bo[1]));
    _mm512_mask_storeu_ps(eo + 7 * nt + q, m, _mm512_sub_ps(bo[1], bo[3]));
  }
  for (int i = 0; i < 4; i++) {
    const float *er = eo + i * nt, *orr = eo + (4 + i) * nt;
    float *v0 = V + (i * 4 + 0) * vs, *v1 = V + (i * 4 + 1) * vs, *v2 = V + (i * 4 + 2) * vs,
          *v3 = V + (i * 4 + 3) * vs;
    for (int64_t t = 0; t < nt - 1; t += 16) {
      int64_t k = nt - 1 - t < 16 ? nt - 1 - t : 16;
      __mmask16 m = MASK16(k);
      __m512 e = _mm512_maskz_loadu_ps(m, er + t), e1 = _mm512_maskz_loadu_ps(m, er + t + 1);
      __m512 o = _mm512_maskz_loadu_ps(m, orr + t), o1 = _mm512_maskz_loadu_ps(m, orr + t + 1);
      _mm512_mask_storeu_ps(v0 + t, m, _mm512_sub_ps(e, e1));
      _mm512_mask_storeu_ps(v1 + t, m, _mm512_add_ps(o, e1));
      _mm512_mask_storeu_ps(v2 + t, m, _mm512_sub_ps(e1, o));
      _mm512_mask_storeu_ps(v3 + t, m, _mm512_sub_ps(o, o1));
    }
    v0[nt - 1] = v1[nt - 1] = v2[nt - 1] = v3[nt - 1] = 0.0f;
  }
}

W512 void output_tf_512(const float *restrict m, int64_t ms, int64_t nt, float bias, int relu, float *restrict Y) {
  const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512 vb = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
  float *y0 = Y, *y1 = Y + 2 * nt;
  for (int64_t t = 0; t < nt; t += 16) {
    int64_t k = nt - t < 16 ? nt - t : 16;
    __mmask16 mk = MASK16(k), lo = MASK16(2 * k), hi = 2 * k > 16 ? MASK16(2 * k - 16) : 0;
    __m512 s0[4], s1[4];
    for (int j = 0; j < 4; j++) {
      __m512 x0 = _mm512_maskz_loadu_ps(mk, m + j * ms + t), x1 = _mm512_maskz_loadu_ps(mk, m + (4 + j) * ms + t);
      __m512 x2 = _mm512_maskz_loadu_ps(mk, m + (8 + j) * ms + t), x3 = _mm512_maskz_loadu_ps(mk, m + (12 + j) * ms + t);
      s0[j] = _mm512_add_ps(_mm512_add_ps(x0, x1), x2);
      s1[j] = _mm512_sub_ps(_mm512_sub_ps(x1, x2), x3);
    }
    __m512 p0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), vb);
    __m512 q0 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), vb);
    __m512 p1 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), vb);
    __m512 q1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), vb);
    if (relu) {
      p0 = _mm512_max_ps(p0, z);
      q0 = _mm512_max_ps(q0, z);
      p1 = _mm512_max_ps(p1, z);
      q1 = _mm512_max_ps(q1, z);
    }
    _mm512_mask_storeu_ps(y0 + 2 * t, lo, _mm512_permutex2var_ps(p0, il, q0));
    _mm512_mask_storeu_ps(y0 + 2 * t + 16, hi, _mm512_permutex2var_ps(p0, ih, q0));
    _mm512_mask_storeu_ps(y1 + 2 * t, lo, _mm512_permutex2var_ps(p1, il, q1));
    _mm512_mask_storeu_ps(y1 + 2 * t + 16, hi, _mm512_permutex2var_ps(p1, ih, q1));
  }
}

W512 void copy512(float *dst, const float *src, int64_t n) {
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 m = MASK16(n - j);
    _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
  }
}

W512 void rows_in_512(const mm_conv2d_shape *s, const geo *g, const float *plane0, int64_t xs_n, int64_t r0,
                      int64_t nr, float *D) {
  int64_t lo = s->pw, hi = s->pw + s->w < g->wp ? s->pw + s->w : g->wp;
  __m512 z = _mm512_setzero_ps();
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / g->th, ty = (r0 + r) % g->th;
    for (int k = 0; k < 4; k++) {
      float *dr = D + (k * nr + r) * g->wp;
      int64_t ir = 2 * ty + k - s->ph;
      for (int64_t j = 0; j < g->wp; j += 16) _mm512_mask_storeu_ps(dr + j, MASK16(g->wp - j), z);
      if (ir >= 0 && ir < s->h) copy512(dr + lo, plane0 + n * xs_n + ir * s->w, hi - lo);
    }
  }
}

W512 void rows_out_512(const mm_conv2d_shape *s, const geo *g, float *plane0, int64_t ys_n, int64_t r0, int64_t nr,
                       const float *Y) {
  int64_t nt = nr * g->st;
  for (int64_t r = 0; r < nr; r++) {
    int64_t n = (r0 + r) / g->th, ty = (r0 + r) % g->th;
    float *row = plane0 + n * ys_n + 2 * ty * s->ow;
    copy512(row, Y + r * g->wp, s->ow);
    if (2 * ty + 1 < s->oh) copy512(row + s->ow, Y + 2 * nt + r * g->wp, s->ow);
  }
}

/* the AVX-512 transforms run at the avx512 kernel level (core/cpu.h; a lower
 * level runs the portable transforms, so they can be tested on this CPU too) */
static int has512(void) { return mm_isa() == MM_ISA_AVX512; }
#else
static int has512(void) { return 0; }
#define input_tf_512 input_tf_c
#define output_tf_512 output_tf_c
#define rows_in_512 rows_in_c
#define rows_out_512 rows_out_c
#endif

void mm_wino_forward(const mm_conv2d_shape *s, const float *x, int64_t xs_n, int64_t xs_c, const float *w, int flip,
                     const float *b, int relu, float *y, int64_t ys_n, int64_t ys_c, float *scratch) {
  geo g = geometry(s);
  int64_t N = s->n, C = s->c, O = s->o;
  if (N <= 0) return;
  float *U = scratch, *V = U + 16 * O * C, *M = V + 16 * C * g.nt, *D = M + 16 * O * g.nt;
  float *eo = D + 4 * g.rows * g.wp;
  weights(s, w, flip, U);
  int x512 = has512();
  int64_t total = N * g.th; /* tile rows in the batch */
  for (int64_t r0 = 0; r0 < total; r0 += g.rows) {
    int64_t nr = total - r0 < g.rows ? total - r0 : g.rows, nt = nr * g.st;
    /* 1. input transform, channel by channel */
    for (int64_t c = 0; c < C; c++) {
      (x512 ? rows_in_512 : rows_in_c)(s, &g, x + c * xs_c, xs_n, r0, nr, D);
      (x512 ? input_tf_512 : input_tf_c)(D, nt, eo, V + c * g.nt, C * g.nt);
    }
    /* 2. the 16 products */
    for (int xi = 0; xi < 16; xi++)
      mm_sgemm(0, 0, O, nt, C, 1.0f, U + xi * O * C, C, V + xi * C * g.nt, g.nt, 0.0f, M + xi * O * g.nt, g.nt);
    /* 3. output transform, channel by channel, then the rows into y */
    for (int64_t o = 0; o < O; o++) {
      (x512 ? output_tf_512 : output_tf_c)(M + o * g.nt, O * g.nt, nt, b ? b[o] : 0.0f, relu, D);
      (x512 ? rows_out_512 : rows_out_c)(s, &g, y + o * ys_c, ys_n, r0, nr, D);
    }
  }
}
