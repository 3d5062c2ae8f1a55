/* tr16.h - a 16 x 16 float transpose in AVX-512 registers, for the kernels
 * that turn rows into columns (gemm.c's B^T packing, cnn_direct.c's plane
 * layouts). x86-64 with GCC or clang only; the including file checks. */
#ifndef MM_TR16_H
#define MM_TR16_H

#include <immintrin.h>

/* transpose the 16 x 16 block r (row i = r[i]) in place: 48 shuffles */
__attribute__((target("avx512f"), always_inline)) static inline void mm_tr16(__m512 r[16]) {
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

#endif
