/* fuzz_lua.h - helpers for fuzz targets that drive mmfuse through its Lua face
 * (manifest parsing, model loading): one lua_State per process, with the
 * checkout's lua/ on package.path and the fuzz build of the core preloaded. */
#ifndef MM_FUZZ_LUA_H
#define MM_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int luaopen_mmfuse_core(lua_State *L);

static lua_State *fuzz_lua_state(void) {
  static lua_State *L = NULL;
  if (L) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_mmfuse_core);
  lua_setfield(L, -2, "mmfuse.core");
  lua_pop(L, 1);
  const char *root = getenv("MMFUSE_ROOT");
  char code[1024];
  snprintf(code, sizeof code, "package.path = '%s/lua/?.lua;%s/lua/?/init.lua;' .. package.path",
           root ? root : ".", root ? root : ".");
  if (luaL_dostring(L, code) != LUA_OK) abort();
  return L;
}

/* the shared state with `setup` (Lua code defining the target's globals)
 * run once; a setup error is a bug of the target: abort with its message */
static lua_State *fuzz_lua_setup(const char *setup, const char *target) {
  static int ready = 0;
  lua_State *L = fuzz_lua_state();
  if (!ready) {
    if (luaL_dostring(L, setup) != LUA_OK) {
      fprintf(stderr, "%s setup: %s\n", target, lua_tostring(L, -1));
      abort();
    }
    ready = 1;
  }
  return L;
}

/* write data to a fresh temp file; returns its path (static buffer) or NULL */
static const char *fuzz_temp_file(const uint8_t *data, size_t size, const char *suffix) {
  static char path[256];
  snprintf(path, sizeof path, "/tmp/mmfuse-fuzz-%d%s", (int)getpid(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f) return NULL;
  if (size && fwrite(data, 1, size, f) != size) {
    fclose(f);
    return NULL;
  }
  fclose(f);
  return path;
}

/* call global function `fn` (defined by setup code) with one string argument,
 * in protected mode: Lua errors are expected and fine, crashes are not */
static void fuzz_lua_call(lua_State *L, const char *fn, const char *arg, size_t len) {
  int top = lua_gettop(L);
  lua_getglobal(L, fn);
  lua_pushlstring(L, arg, len);
  (void)lua_pcall(L, 1, 0, 0);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
}

#endif
