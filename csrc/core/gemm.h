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
 * SSE3 "Prescott" kernels. mm_sgemm runs the kernel of the instruction-set
 * level in use (core/cpu.h: mm_isa, MMFUSE_KERNEL, mm_isa_set):
 *   "avx512"   AVX-512F register-blocked kernel,
 *   "avx2"     AVX2 + FMA kernel,
 *   "generic"  cblas_sgemm (OpenBLAS, threaded by OpenBLAS itself),
 * and every kernel of mmfuse's own is single-threaded and thread-safe
 * (callers such as conv2d run it from several mm_parallel_for threads at
 * once; the packing scratch lives on the caller's stack). */
#ifndef MM_GEMM_H
#define MM_GEMM_H

#include <stdint.h>

void mm_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* the kernel in use: "avx512", "avx2" or "generic" (= mm_isa_name(mm_isa())) */
const char *mm_gemm_kernel(void);

#endif
