/* l_io.c - Lua binding for the io area: core.io.load_npy, save_npy,
 * read_file, check and stat (io/file.h: regular files only, refused unread). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/file.h"
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

/* io.read_file(path [, {max_bytes=0}]) -> the bytes of a regular file (0: no cap) */
static int l_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max_bytes;
  const mm_lua_opt opts[] = {MM_OPT_INT_IN("max_bytes", &max_bytes, 0, 0, (lua_Number)((int64_t)1 << 40)),
                             MM_OPT_END};
  mm_lua_readopts(L, 2, "read_file", opts);
  void **buf = mm_lua_newowner(L);
  size_t len;
  mm_err e;
  if (mm_file_read_all(path, (int64_t)max_bytes, (uint8_t **)buf, &len, NULL, &e)) return mm_lua_raise(L, &e);
  lua_pushlstring(L, *buf, len);
  return 1;
}

/* io.check(path [, {max_bytes=0}]) -> size: raises the refusal (missing, not
 * a regular file, too large) that reading the file would give; reads nothing */
static int l_check(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max_bytes;
  const mm_lua_opt opts[] = {MM_OPT_INT_IN("max_bytes", &max_bytes, 0, 0, (lua_Number)((int64_t)1 << 40)),
                             MM_OPT_END};
  mm_lua_readopts(L, 2, "check", opts);
  int fd;
  int64_t size;
  mm_err e;
  if (mm_file_open(path, (int64_t)max_bytes, &fd, &size, NULL, &e)) return mm_lua_raise(L, &e);
  close(fd);
  lua_pushinteger(L, (lua_Integer)size);
  return 1;
}

/* io.stat(path) -> kind ("file", "directory", "fifo", "character device",
 * "block device", "socket", "other"; "missing" when there is nothing), size
 * in bytes (regular files; else 0). Opens nothing. */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int kind;
  int64_t size;
  mm_err e;
  if (mm_file_stat(path, &kind, &size, &e)) return mm_lua_raise(L, &e);
  lua_pushstring(L, mm_file_kind_names[kind]);
  lua_pushinteger(L, (lua_Integer)size);
  return 2;
}

void mm_lua_open_io(lua_State *L) {
  static const luaL_Reg fns[] = {{"load_npy", l_load_npy}, {"save_npy", l_save_npy}, {"read_file", l_read_file},
                                 {"check", l_check},       {"stat", l_stat},         {NULL, NULL}};
  mm_lua_subtable(L, "io", fns);
}
