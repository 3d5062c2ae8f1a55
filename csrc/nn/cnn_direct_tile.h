/* cnn_direct_tile.h - the register tile of cnn_direct.c, written once and
 * included once per instruction set (no include guard on purpose).
 *
 * Before including, cnn_direct.c defines:
 *   DT_NAME      the function to define (always-inline; nv, np constant args)
 *   DT_ATTR      its attributes (target ISA, always_inline, static inline)
 *   DT_NV, DT_NP the largest nv (vectors of output channels) and np (positions)
 *   VEC, VW      vector type and lanes
 *   VLOAD(p), VBCAST(p), VFMA(a, b, c) = a*b + c, VRELU(v), VSTORE(p, v)
 * The end of this file #undef's them all.
 *
 * y[j, 0:nv*VW] = relu(bias + sum over q < nk of w[q*cp + 0:nv*VW] * x[off[q] + j])
 * for the np positions j (y rows cp floats apart); relu = 0: without the ReLU. */
DT_ATTR void DT_NAME(const int nv, const int np, int64_t nk, const int64_t *off, const float *x, const float *w,
                     int64_t cp, const float *bias, float *y, int relu) {
  VEC acc[DT_NP][DT_NV];
#pragma GCC unroll 32
  for (int j = 0; j < DT_NP; j++)
#pragma GCC unroll 4
    for (int v = 0; v < DT_NV; v++)
      if (j < np && v < nv) acc[j][v] = VLOAD(bias + v * VW);
  for (int64_t q = 0; q < nk; q++, w += cp) {
    const float *xb = x + off[q];
    VEC wv[DT_NV];
#pragma GCC unroll 4
    for (int v = 0; v < DT_NV; v++)
      if (v < nv) wv[v] = VLOAD(w + v * VW);
#pragma GCC unroll 32
    for (int j = 0; j < DT_NP; j++) {
      if (j < np) {
        VEC xv = VBCAST(xb + j);
#pragma GCC unroll 4
        for (int v = 0; v < DT_NV; v++)
          if (v < nv) acc[j][v] = VFMA(wv[v], xv, acc[j][v]);
      }
    }
  }
  if (relu) {
#pragma GCC unroll 32
    for (int j = 0; j < DT_NP; j++)
#pragma GCC unroll 4
      for (int v = 0; v < DT_NV; v++)
        if (j < np && v < nv) VSTORE(y + j * cp + v * VW, VRELU(acc[j][v]));
  } else {
#pragma GCC unroll 32
    for (int j = 0; j < DT_NP; j++)
#pragma GCC unroll 4
      for (int v = 0; v < DT_NV; v++)
        if (j < np && v < nv) VSTORE(y + j * cp + v * VW, acc[j][v]);
  }
}
#undef DT_NAME
#undef DT_ATTR
#undef DT_NV
#undef DT_NP
#undef VEC
#undef VW
#undef VLOAD
#undef VBCAST
#undef VFMA
#undef VRELU
#undef VSTORE
