/* l_io.c - Lua binding for the io area: core.io.load_npy, save_npy,
 * read_file, check, stat and list (io/file.h: regular files only, refused
 * unread), read_table (io/table.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/dir.h"
#include "../io/file.h"
#include "../io/npy.h"
#include "../io/table.h"
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

/* io.list(folder) -> array of the entry names ("." and ".." left out),
 * sorted bytewise. Opens nothing but the folder. */
static int l_list(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char **names;
  int64_t n;
  mm_err e;
  lua_settop(L, 1);
  if (mm_dir_list(path, &names, &n, &e)) return mm_lua_raise(L, &e);
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  mm_dir_free(names, n);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 0);
  lua_settop(L, 2);
  return 1;
}

typedef struct ltable {
  mm_table *t;
} ltable;

static int table_gc(lua_State *L) {
  ltable *u = lua_touserdata(L, 1);
  mm_table_close(u->t);
  u->t = NULL;
  return 0;
}

/* io.read_table(path, format) -> header, rows, lines: every row of a TSV or
 * CSV manifest (io/table.h) as an array of its fields, and the line where
 * each starts; a malformed row is an error naming the file and line */
static int l_read_table(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fmt = luaL_checkoption(L, 2, NULL, mm_table_format_names);
  ltable *u = lua_newuserdatauv(L, sizeof *u, 0); /* closes the file on a Lua error */
  u->t = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, table_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  mm_err e = {0};
  u->t = mm_table_open(path, fmt, NULL, 0, &e);
  if (!u->t) return mm_lua_raise(L, &e);
  int nc;
  const char *const *cols = mm_table_columns(u->t, &nc);
  lua_createtable(L, nc, 0);
  for (int i = 0; i < nc; i++) {
    lua_pushstring(L, cols[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_newtable(L);
  lua_newtable(L);
  for (lua_Integer r = 1;; r++) {
    int got = 0;
    if (mm_table_next(u->t, &got, &e)) return mm_lua_raise(L, &e);
    if (!got) break;
    lua_createtable(L, nc, 0);
    for (int i = 0; i < nc; i++) {
      size_t len;
      const char *v = mm_table_value(u->t, i, &len);
      lua_pushlstring(L, v, len);
      lua_rawseti(L, -2, i + 1);
    }
    lua_rawseti(L, -3, r);
    lua_pushinteger(L, mm_table_line(u->t));
    lua_rawseti(L, -2, r);
  }
  mm_table_close(u->t);
  u->t = NULL;
  return 3;
}

void mm_lua_open_io(lua_State *L) {
  static const luaL_Reg fns[] = {{"load_npy", l_load_npy}, {"save_npy", l_save_npy}, {"read_file", l_read_file},
                                 {"check", l_check},       {"stat", l_stat},         {"list", l_list},
                                 {"read_table", l_read_table}, {NULL, NULL}};
  mm_lua_subtable(L, "io", fns);
}
