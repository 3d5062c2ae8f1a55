/* gemm_tile.h - the register-blocked tile kernel of gemm.c, written once
 * and included once per instruction set (no include guard on purpose).
 *
 * Before including, gemm.c defines:
 *   TILE        name of the kernel to define (always-inline, R rows as arg)
 *   TILE_ATTR   its attributes (target ISA, always_inline, static inline)
 *   TILE_MR     rows of accumulators (the tile is TILE_MR x 2 vectors)
 *   VEC, VMASK  vector and lane-mask types; VW lanes per vector
 *   VMASKS(w, m0, m1)   masks for the first w of the 2*VW columns
 *   VZERO(), VSET1(x), VBCAST(p), VFMA(a, b, c) = a*b+c, VMUL(a, b)
 *   VLOADB(m, p)        a row of B (masked where the ISA can); VLOADU(p) unmasked
 *   VLOADM(m, p), VSTOREM(p, m, v)   masked C load / store
 * The end of this file #undef's them all.
 *
 * C[0:mr, 0:w] = alpha * A[0:mr, 0:kc] . B[0:kc, 0:w] + beta * C (beta == 0:
 * C is not read). A(i, p) = a[i*ars + p*acs]; B's rows are bs floats apart. */
TILE_ATTR void TILE(const int mr, int64_t kc, const float *a, int64_t ars, int64_t acs, const float *bp, int64_t bs,
                    float *c, int64_t ldc, int64_t w, float alpha, float beta) {
  VEC c0[TILE_MR], c1[TILE_MR];
  VMASK m0, m1;
  VMASKS(w, m0, m1);
#pragma GCC unroll 8
  for (int i = 0; i < TILE_MR; i++) {
    if (i < mr) {
      c0[i] = VZERO();
      c1[i] = VZERO();
    }
  }
  /* one step of k: the row p of B (two vectors) times A's column p */
#define TILE_STEP(B0, B1)                                                                                              \
  do {                                                                                                                 \
    VEC b0 = (B0), b1 = (B1);                                                                                          \
    const float *ap = a + p * acs;                                                                                     \
    _Pragma("GCC unroll 8") for (int i = 0; i < TILE_MR; i++) {                                                        \
      if (i < mr) {                                                                                                    \
        VEC av = VBCAST(ap + i * ars);                                                                                 \
        c0[i] = VFMA(av, b0, c0[i]);                                                                                   \
        c1[i] = VFMA(av, b1, c1[i]);                                                                                   \
      }                                                                                                                \
    }                                                                                                                  \
  } while (0)
  if (w == 2 * VW) { /* a full strip: plain loads, no mask register in the loop, two steps per turn */
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; p++) TILE_STEP(VLOADU(bp + p * bs), VLOADU(bp + p * bs + VW));
  } else {
    for (int64_t p = 0; p < kc; p++) TILE_STEP(VLOADB(m0, bp + p * bs), VLOADB(m1, bp + p * bs + VW));
  }
#undef TILE_STEP
  VEC va = VSET1(alpha), vb = VSET1(beta);
#pragma GCC unroll 8
  for (int i = 0; i < TILE_MR; i++) {
    if (i < mr) {
      float *cr = c + i * ldc;
      VEC r0 = c0[i], r1 = c1[i];
      if (alpha != 1.0f) { /* x * 1 is x: skipping it keeps the bits */
        r0 = VMUL(r0, va);
        r1 = VMUL(r1, va);
      }
      if (beta != 0.0f) {
        r0 = VFMA(vb, VLOADM(m0, cr), r0);
        r1 = VFMA(vb, VLOADM(m1, cr + VW), r1);
      }
      VSTOREM(cr, m0, r0);
      VSTOREM(cr + VW, m1, r1);
    }
  }
}
#undef TILE
#undef TILE_ATTR
#undef TILE_MR
#undef VEC
#undef VMASK
#undef VW
#undef VMASKS
#undef VZERO
#undef VSET1
#undef VBCAST
#undef VFMA
#undef VMUL
#undef VLOADB
#undef VLOADU
#undef VLOADM
#undef VSTOREM
