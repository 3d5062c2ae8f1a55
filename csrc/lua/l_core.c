/* l_core.c - luaopen_mmfuse_core: builds the `mmfuse.core` table. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/gemm.h"
#include "../core/rng.h"
#include "mm_lua.h"

#define MM_VERSION "0.1.0"

static int threads_count = 1;

/* mm.seed(n): reseed the global generator (rand, randn, dropout defaults) */
static int l_seed(lua_State *L) {
  lua_Integer s = luaL_checkinteger(L, 1);
  mm_rng_seed(mm_rng_global(), (uint64_t)s);
  return 0;
}

/* mm.threads([n]) -> previous count; sets the BLAS and mmfuse thread count */
static int l_threads(lua_State *L) {
  int prev = threads_count;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 256, 1, "thread count must be in 1..256");
    threads_count = (int)n;
    openblas_set_num_threads(threads_count);
  }
  lua_pushinteger(L, prev);
  return 1;
}

int mm_threads(void) { return threads_count; }

/* mm.clock() -> seconds of a monotonic wall clock (for timing and ETAs) */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* mm.gemm_kernel([name]) -> the matrix-multiply kernel in use ("avx512",
 * "avx2" or "blas"); with a name ("auto", "avx512", "avx2", "blas") selects it
 * first and errors when this CPU cannot run it. */
static int l_gemm_kernel(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    const char *name = luaL_checkstring(L, 1);
    if (mm_gemm_use(name) != 0)
      return luaL_error(L, "gemm_kernel: '%s' is unknown or not supported by this CPU (known: auto, avx512, avx2, blas)",
                        name);
  }
  lua_pushstring(L, mm_gemm_kernel());
  return 1;
}

int luaopen_mmfuse_core(lua_State *L) {
  openblas_set_num_threads(threads_count);
  lua_newtable(L);
  lua_pushliteral(L, MM_VERSION);
  lua_setfield(L, -2, "version");
  static const luaL_Reg fns[] = {{"seed", l_seed}, {"threads", l_threads}, {"clock", l_clock}, {"gemm_kernel", l_gemm_kernel}, {NULL, NULL}};
  mm_lua_setfuncs(L, fns);
  mm_lua_open_tensor(L);
  mm_lua_open_nn(L);
  mm_lua_open_text(L);
  mm_lua_open_image(L);
  mm_lua_open_io(L);
  mm_lua_open_data(L);
  mm_lua_open_model(L);
  return 1;
}
