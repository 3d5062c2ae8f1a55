/* gemm.h - single-precision matrix multiply for every kernel of mmfuse.
 *
 *   C[m x n] = alpha * op(A) . op(B) + beta * C        (row-major, like
 *   cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ...))
 *
 * op(A) is m x k (A stored m x k with row stride lda, or k x m when ta);
 * op(B) is k x n (B stored k x n with row stride ldb, or n x k when tb).
 * With beta == 0, C is not read (it may hold NaN or garbage).
 *
 * Why not cblas_sgemm directly: the OpenBLAS Debian ships (0.3.21,
 * DYNAMIC_ARCH) does not recognise recent Intel CPUs and falls back to its
 * SSE3 "Prescott" kernels. mm_sgemm picks, once, at first use:
 *   "avx512"  AVX-512F register-blocked kernel (CPU has avx512f),
 *   "avx2"    AVX2 + FMA kernel (CPU has avx2 and fma),
 *   "blas"    cblas_sgemm (anything else),
 * and every kernel is single-threaded and thread-safe (callers such as
 * conv2d run it from several mm_parallel_for threads at once; the packing
 * scratch lives on the caller's stack). The selection is the only global
 * state, written once; mm_gemm_use() overrides it (tests, benchmarks). */
#ifndef MM_GEMM_H
#define MM_GEMM_H

#include <stdint.h>

void mm_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* the kernel in use: "avx512", "avx2" or "blas" */
const char *mm_gemm_kernel(void);

/* select a kernel by name ("auto" = what the CPU supports best). Returns 0,
 * or -1 when the name is unknown or the CPU lacks the instructions (the
 * selection is then unchanged). */
int mm_gemm_use(const char *name);

#endif
