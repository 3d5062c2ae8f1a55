/* l_io.c - Lua binding for the io area: core.io.load_npy, core.io.save_npy. */
#include <string.h>

#include "../io/npy.h"
#include "mm_lua.h"

/* io.load_npy(path) -> tensor (float32; float64 files are converted) */
static int l_load_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  /* an empty tensor userdata first, so a Lua error cannot leak the data */
  mm_tensor *t = lua_newuserdatauv(L, sizeof(mm_tensor), 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, MM_TENSOR_MT);
  mm_err e;
  if (mm_npy_load(path, t, &e)) mm_lua_raise(L, &e);
  return 1;
}

/* io.save_npy(path, t): float32, C order, written atomically */
static int l_save_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mm_tensor *t = mm_lua_checktensor(L, 2, "t");
  mm_err e;
  if (mm_npy_save(path, t, &e)) mm_lua_raise(L, &e);
  return 0;
}

void mm_lua_open_io(lua_State *L) {
  static const luaL_Reg fns[] = {{"load_npy", l_load_npy}, {"save_npy", l_save_npy}, {NULL, NULL}};
  mm_lua_subtable(L, "io", fns);
}
