/* cpu.c - see cpu.h. The CPU is read once (cpuid through the compiler's
 * builtins); the level in use is the only mutable state, stored with relaxed
 * atomics: racing first calls all store the same value. */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_CPU_X86 1
#include <cpuid.h>
#endif

static const char *const isa_names[MM_ISA_COUNT] = {"generic", "avx2", "avx512"};
_Static_assert(sizeof isa_names / sizeof isa_names[0] == MM_ISA_COUNT, "one name per level");

const char *mm_isa_name(int level) { return level >= 0 && level < MM_ISA_COUNT ? isa_names[level] : "?"; }

int mm_isa_parse(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "auto") == 0) return mm_isa_best();
  if (strcmp(name, "blas") == 0) return MM_ISA_GENERIC;
  for (int i = 0; i < MM_ISA_COUNT; i++)
    if (strcmp(name, isa_names[i]) == 0) return i;
  return -1;
}

/* features by name: __builtin_cpu_supports takes only literals */
int mm_cpu_has(const char *f) {
#ifdef MM_CPU_X86
  __builtin_cpu_init();
#define F(s)                                                                                                           \
  if (strcmp(f, s) == 0) return __builtin_cpu_supports(s) ? 1 : 0;
  F("sse4.2") F("avx") F("avx2") F("fma") F("bmi2") F("avx512f") F("avx512bw") F("avx512vl") F("avx512dq")
#undef F
#else
  (void)f;
#endif
  return 0;
}

int mm_isa_bmi2(void) {
  static int has = -1; /* the CPU's answer, read once */
  int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
  if (h < 0) __atomic_store_n(&has, h = mm_cpu_has("bmi2"), __ATOMIC_RELAXED);
  return h && mm_isa() >= MM_ISA_AVX2;
}

int mm_isa_hw(void) {
  static int best = -1;
  int b = __atomic_load_n(&best, __ATOMIC_RELAXED);
  if (b < 0) {
    b = MM_ISA_GENERIC;
#ifdef MM_CPU_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      b = MM_ISA_AVX2;
      if (__builtin_cpu_supports("avx512f")) b = MM_ISA_AVX512;
    }
#endif
    __atomic_store_n(&best, b, __ATOMIC_RELAXED);
  }
  return b;
}

/* -1 until the first mm_isa / mm_isa_from_env */
static int g_level = -1, g_ceiling = -1;

int mm_isa_best(void) {
  if (__atomic_load_n(&g_ceiling, __ATOMIC_RELAXED) < 0) mm_isa();
  return __atomic_load_n(&g_ceiling, __ATOMIC_RELAXED);
}

static void cpuid_string(unsigned leaf0, int nleaves, char *out, size_t cap, const char *none) {
  snprintf(out, cap, "%s", none);
#ifdef MM_CPU_X86
  unsigned r[4];
  if (leaf0 == 0) {
    if (!__get_cpuid(0, &r[0], &r[1], &r[2], &r[3])) return;
    memcpy(out, &r[1], 4); /* ebx, edx, ecx spell the vendor */
    memcpy(out + 4, &r[3], 4);
    memcpy(out + 8, &r[2], 4);
    out[12] = 0;
    return;
  }
  if (__get_cpuid_max(0x80000000u, NULL) < leaf0 + (unsigned)nleaves - 1) return;
  char buf[49] = {0};
  for (int i = 0; i < nleaves; i++) {
    __get_cpuid(leaf0 + (unsigned)i, &r[0], &r[1], &r[2], &r[3]);
    memcpy(buf + 16 * i, r, 16);
  }
  const char *s = buf;
  while (*s == ' ') s++;
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == ' ') n--;
  if (n == 0 || n >= cap) return;
  memcpy(out, s, n);
  out[n] = 0;
#else
  (void)leaf0;
  (void)nleaves;
#endif
}

const char *mm_cpu_vendor(void) {
  static char v[16];
  static int done;
  if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
    char t[16];
    cpuid_string(0, 1, t, sizeof t, "unknown");
    memcpy(v, t, sizeof v);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  }
  return v;
}

const char *mm_cpu_brand(void) {
  static char b[64];
  static int done;
  if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
    char t[64];
    cpuid_string(0x80000002u, 3, t, sizeof t, "unknown");
    memcpy(b, t, sizeof b);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
  }
  return b;
}

static int unsupported(int level, mm_err *e, const char *what) {
  int hw = mm_isa_hw(), best = mm_isa_best();
  if (best < hw)
    return mm_errorf(e, MM_EINVAL, "%s%s is above the level MMFUSE_KERNEL allows (%s; this CPU, %s, runs up to %s)",
                     what, mm_isa_name(level), mm_isa_name(best), mm_cpu_brand(), mm_isa_name(hw));
  return mm_errorf(e, MM_EINVAL, "%s%s is not supported by this CPU (%s, %s): it runs at most %s", what,
                   mm_isa_name(level), mm_cpu_brand(), mm_cpu_vendor(), mm_isa_name(hw));
}

int mm_isa_from_env(mm_err *e) {
  const char *v = getenv("MMFUSE_KERNEL");
  int hw = mm_isa_hw();
  __atomic_store_n(&g_ceiling, hw, __ATOMIC_RELAXED);
  __atomic_store_n(&g_level, hw, __ATOMIC_RELAXED);
  if (!v || !*v || strcmp(v, "auto") == 0) return MM_OK;
  int l = mm_isa_parse(v);
  if (l < 0)
    return mm_errorf(e, MM_EINVAL, "MMFUSE_KERNEL='%.40s' is not a kernel level (known: auto, avx512, avx2, generic)",
                     v);
  if (l > hw) return unsupported(l, e, "MMFUSE_KERNEL=");
  __atomic_store_n(&g_ceiling, l, __ATOMIC_RELAXED);
  __atomic_store_n(&g_level, l, __ATOMIC_RELAXED);
  return MM_OK;
}

int mm_isa(void) {
  int l = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
  if (l < 0) {
    mm_isa_from_env(NULL); /* a bad value leaves the best level; the binding reports it */
    l = __atomic_load_n(&g_level, __ATOMIC_RELAXED);
  }
  return l;
}

int mm_isa_set(int level, mm_err *e) {
  if (level < 0 || level >= MM_ISA_COUNT) return mm_errorf(e, MM_EINVAL, "kernel level %d is out of range", level);
  if (level > mm_isa_best()) return unsupported(level, e, "kernel level ");
  __atomic_store_n(&g_level, level, __ATOMIC_RELAXED);
  return MM_OK;
}
