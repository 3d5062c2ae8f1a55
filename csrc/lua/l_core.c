/* l_core.c - luaopen_mmfuse_core: builds the `mmfuse.core` table. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/cpu.h"
#include "../core/gemm.h"
#include "../core/parallel.h"
#include "../core/rng.h"
#include "mm_lua.h"

#define MM_VERSION "0.1.0"

/* mm.seed(n): reseed the global generator (rand, randn, dropout defaults) */
static int l_seed(lua_State *L) {
  lua_Integer s = luaL_checkinteger(L, 1);
  mm_rng_seed(mm_rng_global(), (uint64_t)s);
  return 0;
}

/* mm.threads([n]) -> previous count; sets the thread count of mmfuse's
 * kernels and of OpenBLAS (core/parallel.h) */
static int l_threads(lua_State *L) {
  int prev = mm_threads();
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    mm_err e = {0};
    if (mm_set_threads(n, &e)) return luaL_argerror(L, 1, e.msg);
  }
  lua_pushinteger(L, prev);
  return 1;
}

/* mm.clock() -> seconds of a monotonic wall clock (for timing and ETAs) */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* mm.gemm_kernel([level]) -> the kernel level in use ("avx512", "avx2" or
 * "generic"); with a level ("auto", "avx512", "avx2", "generic", alias
 * "blas") selects it first for every kernel (core/cpu.h) and errors when the
 * name is unknown or this CPU cannot run it. */
static int l_gemm_kernel(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    const char *name = luaL_checkstring(L, 1);
    int level = mm_isa_parse(name);
    mm_err e = {0};
    if (level < 0)
      return luaL_error(L, "gemm_kernel: '%s' is not a kernel level (known: auto, avx512, avx2, generic)", name);
    if (mm_isa_set(level, &e) != MM_OK) return luaL_error(L, "gemm_kernel: %s", e.msg);
  }
  lua_pushstring(L, mm_gemm_kernel());
  return 1;
}

/* mm.cpu() -> { vendor, brand, hw_best, best, kernel, blas_core, features = {name = bool} }:
 * the machine a result came from and the kernel level in use (hw_best: what
 * the CPU runs; best: the ceiling, lower when MMFUSE_KERNEL sets one) */
static int l_cpu(lua_State *L) {
  static const char *const feats[] = {"sse4.2", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl",
                                      "avx512dq"};
  lua_createtable(L, 0, 6);
  lua_pushstring(L, mm_cpu_vendor());
  lua_setfield(L, -2, "vendor");
  lua_pushstring(L, mm_cpu_brand());
  lua_setfield(L, -2, "brand");
  lua_pushstring(L, mm_isa_name(mm_isa_hw()));
  lua_setfield(L, -2, "hw_best");
  lua_pushstring(L, mm_isa_name(mm_isa_best()));
  lua_setfield(L, -2, "best");
  lua_pushstring(L, mm_isa_name(mm_isa()));
  lua_setfield(L, -2, "kernel");
  lua_pushstring(L, openblas_get_corename());
  lua_setfield(L, -2, "blas_core");
  lua_createtable(L, 0, 9);
  for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
    lua_pushboolean(L, mm_cpu_has(feats[i]));
    lua_setfield(L, -2, feats[i]);
  }
  lua_setfield(L, -2, "features");
  return 1;
}

int luaopen_mmfuse_core(lua_State *L) {
  mm_err e = {0};
  if (mm_isa_from_env(&e) != MM_OK) return luaL_error(L, "mmfuse: %s", e.msg);
  if (mm_set_threads(mm_threads(), &e) != MM_OK) return mm_lua_raise(L, &e); /* OpenBLAS follows */
  lua_newtable(L);
  lua_pushliteral(L, MM_VERSION);
  lua_setfield(L, -2, "version");
  static const luaL_Reg fns[] = {{"seed", l_seed}, {"threads", l_threads}, {"clock", l_clock}, {"gemm_kernel", l_gemm_kernel}, {"cpu", l_cpu}, {NULL, NULL}};
  mm_lua_setfuncs(L, fns);
  mm_lua_open_tensor(L);
  mm_lua_open_nn(L);
  mm_lua_open_text(L);
  mm_lua_open_image(L);
  mm_lua_open_tfjs(L);
  mm_lua_open_io(L);
  mm_lua_open_data(L);
  mm_lua_open_model(L);
  mm_lua_open_stream(L);
  return 1;
}
