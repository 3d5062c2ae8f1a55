/* cpu.h - what this CPU is, and the instruction-set level mmfuse's kernels use.
 *
 * Every hand-written SIMD path (the GEMM tiles, direct and Winograd
 * convolution, the fused optimiser passes, the PNG inflater's BMI2 loop) asks
 * mm_isa() which level to run, so one switch moves the whole library down a
 * dispatch path:
 *   MM_ISA_AVX512   AVX-512F (+ AVX2, FMA) kernels
 *   MM_ISA_AVX2     AVX2 + FMA kernels (BMI2 where the CPU has it)
 *   MM_ISA_GENERIC  portable C, with OpenBLAS for matrix products
 * The level starts at the best the CPU supports. The environment variable
 * MMFUSE_KERNEL (read at the first call of mm_isa, and by mm_isa_from_env,
 * which the Lua module calls at load) names a lower level to behave as a CPU
 * of that level would: it becomes both the level in use and the ceiling that
 * "auto" and mm_isa_set reach. Lower levels run on any CPU of a higher one,
 * so one machine can run the whole suite down every dispatch path. */
#ifndef MM_CPU_H
#define MM_CPU_H

#include "error.h"

typedef enum { MM_ISA_GENERIC = 0, MM_ISA_AVX2 = 1, MM_ISA_AVX512 = 2 } mm_isa_level;
#define MM_ISA_COUNT 3

/* "generic", "avx2", "avx512"; "?" out of range */
const char *mm_isa_name(int level);
/* a level from a name: "generic" (alias "blas"), "avx2", "avx512", or "auto"
 * (the best this CPU supports); -1 when the name is none of them */
int mm_isa_parse(const char *name);

/* the best level this CPU supports */
int mm_isa_hw(void);
/* the best level allowed: mm_isa_hw(), or MMFUSE_KERNEL's level when set */
int mm_isa_best(void);
/* the level in use */
int mm_isa(void);
/* use `level`; MM_EINVAL (naming the CPU and the ceiling) when it is above
 * mm_isa_best(); the level is then unchanged */
int mm_isa_set(int level, mm_err *e);
/* (re)read MMFUSE_KERNEL: unset, empty or "auto" selects the CPU's best
 * level; an unknown name or a level this CPU lacks is MM_EINVAL with a
 * message that names the variable, its value and the CPU (the level and the
 * ceiling are then the CPU's best). */
int mm_isa_from_env(mm_err *e);

/* 1 when the level in use is MM_ISA_AVX2 or above and the CPU has BMI2 (the
 * AVX2 level's optional extra: the PNG inflater's BMI2 loop dispatches on it) */
int mm_isa_bmi2(void);

/* "GenuineIntel", "AuthenticAMD", ... ("unknown" off x86) */
const char *mm_cpu_vendor(void);
/* the brand string, e.g. "AMD EPYC 9R45 ..." ("unknown" when the CPU has none) */
const char *mm_cpu_brand(void);
/* 1 when the CPU has the named feature ("avx512f", "avx2", "fma", "bmi2", ...
 * as __builtin_cpu_supports spells them), else 0 */
int mm_cpu_has(const char *feature);

#endif
