/* nhwc_conv_tile.h - the register tile of nhwc_conv.c, written once and
 * included once per instruction set (no include guard on purpose).
 *
 * Before including, nhwc_conv.c defines:
 *   CT_NAME      the function to define (always-inline; mr and nv constant args)
 *   CT_ATTR      its attributes
 *   CT_MR, CT_NV the largest mr (pixels) and nv (panels of 16 channels)
 *   VEC, VW, VPP vector type, its lanes, vectors per 16-channel panel (16 / VW)
 *   MASK, MKMASK(n)          a lane mask with the first n lanes (0 <= n <= VW) set
 *   VZERO(), VSET1(x), VLOAD(p), VLOADM(m, p), VSTOREM(p, m, v), VBCAST(p),
 *   VFMA(a, b, c) = a*b + c, VADD, VMAX, VMIN
 * The end of this file #undef's them all.
 *
 * C[i, 0:16 nv] (op)= A[i, :] . B[:, 0:16 nv] for the mr pixels i, where the K
 * values of pixel i are nseg segments of input: segment s is the slen[s]
 * floats at a[i] + soff[s] (one tap of the kernel, or taps that follow each
 * other in memory, or part of one);
 *   B(k, 16 q + j) = b[q bps + 16 k + j]  (packed weight panels, zero past cout),
 *   C(i, ch) = c[i][ch], of which the first wv channels are stored.
 * flags: CT_FIRST - start from bias (NULL: zero) instead of C;
 *        CT_LAST  - add r[i][ch] (r NULL: nothing), then max(., lohi[0]) with
 *                   CT_LO and min(., lohi[1]) with CT_HI (the clamp comes
 *                   through memory: as float arguments it would hold two
 *                   vector registers through the loop). */
CT_ATTR void CT_NAME(const int mr, const int nv, int nseg, const int64_t *soff, const int64_t *slen,
                     const float *const *a, const float *b, int64_t bps, float *const *c, int64_t wv,
                     const float *bias, const float *const *r, int flags, const float *lohi) {
  VEC acc[CT_MR][CT_NV * VPP];
  MASK m[CT_NV * VPP];
  int on[CT_NV * VPP];
#pragma GCC unroll 8
  for (int q = 0; q < CT_NV * VPP; q++) {
    int64_t lanes = wv - (int64_t)q * VW;
    on[q] = q < nv * VPP && lanes > 0;
    m[q] = MKMASK(lanes <= 0 ? 0 : lanes >= VW ? VW : (int)lanes);
  }
  if (flags & CT_FIRST) {
#pragma GCC unroll 8
    for (int q = 0; q < CT_NV * VPP; q++) {
      if (q < nv * VPP) {
        VEC bv = bias && on[q] ? VLOADM(m[q], bias + q * VW) : VZERO();
#pragma GCC unroll 16
        for (int i = 0; i < CT_MR; i++)
          if (i < mr) acc[i][q] = bv;
      }
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < CT_MR; i++)
#pragma GCC unroll 8
      for (int q = 0; q < CT_NV * VPP; q++)
        if (i < mr && q < nv * VPP) acc[i][q] = on[q] ? VLOADM(m[q], c[i] + q * VW) : VZERO();
  }
  for (int s = 0; s < nseg; s++) {
    const float *ap[CT_MR];
#pragma GCC unroll 16
    for (int i = 0; i < CT_MR; i++)
      if (i < mr) ap[i] = a[i] + soff[s];
    const int64_t len = slen[s];
    for (int64_t k = 0; k < len; k++, b += 16) {
      VEC bv[CT_NV * VPP];
#pragma GCC unroll 8
      for (int q = 0; q < CT_NV * VPP; q++)
        if (q < nv * VPP) bv[q] = VLOAD(b + (q / VPP) * bps + (q % VPP) * VW);
#pragma GCC unroll 16
      for (int i = 0; i < CT_MR; i++) {
        if (i < mr) {
          VEC av = VBCAST(ap[i] + k);
#pragma GCC unroll 8
          for (int q = 0; q < CT_NV * VPP; q++)
            if (q < nv * VPP) acc[i][q] = VFMA(av, bv[q], acc[i][q]);
        }
      }
    }
  }
  if (flags & CT_LAST) {
    VEC vlo = VSET1(lohi[0]), vhi = VSET1(lohi[1]);
#pragma GCC unroll 16
    for (int i = 0; i < CT_MR; i++)
#pragma GCC unroll 8
      for (int q = 0; q < CT_NV * VPP; q++)
        if (i < mr && q < nv * VPP && on[q]) {
          VEC v = acc[i][q];
          if (r) v = VADD(v, VLOADM(m[q], r[i] + q * VW));
          if (flags & CT_LO) v = VMAX(v, vlo);
          if (flags & CT_HI) v = VMIN(v, vhi);
          VSTOREM(c[i] + q * VW, m[q], v);
        }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < CT_MR; i++)
#pragma GCC unroll 8
      for (int q = 0; q < CT_NV * VPP; q++)
        if (i < mr && q < nv * VPP && on[q]) VSTOREM(c[i] + q * VW, m[q], acc[i][q]);
  }
}
#undef CT_NAME
#undef CT_ATTR
#undef CT_MR
#undef CT_NV
#undef VEC
#undef VW
#undef VPP
#undef MASK
#undef MKMASK
#undef VZERO
#undef VSET1
#undef VLOAD
#undef VLOADM
#undef VSTOREM
#undef VBCAST
#undef VFMA
#undef VADD
#undef VMAX
#undef VMIN
