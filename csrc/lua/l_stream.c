/* l_stream.c - Lua binding of streams (csrc/model/stream.h): core.stream.
 * The Lua face (lua/mmfuse/stream.lua) expands globs, resolves paths and
 * keeps the class names; the model binding (l_model.c) accepts a stream
 * wherever it accepts a dataset (mm_lua_teststream). */
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "../io/table.h"
#include "../model/stream.h"
#include "mm_lua.h"

#define STREAM_MT "mmfuse.Stream"

typedef struct lstream {
  mm_stream *s;
  int busy; /* a model reads it (a Lua callback must not free it) */
} lstream;

mm_stream *mm_lua_teststream(lua_State *L, int idx) {
  lstream *u = luaL_testudata(L, idx, STREAM_MT);
  if (!u) return NULL;
  if (!u->s) luaL_argerror(L, idx, "stream is closed");
  return u->s;
}

static lstream *check(lua_State *L, int idx) {
  lstream *u = luaL_checkudata(L, idx, STREAM_MT);
  if (!u->s) luaL_argerror(L, idx, "stream is closed");
  return u;
}

static void push_stream(lua_State *L, mm_stream *s) {
  lstream *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = s;
  u->busy = 0;
  luaL_setmetatable(L, STREAM_MT);
}

static int stream_gc(lua_State *L) {
  lstream *u = luaL_checkudata(L, 1, STREAM_MT);
  mm_stream_free(u->s); /* ends a running epoch: its threads are joined */
  u->s = NULL;
  return 0;
}

/* the strings of the list at the top of the stack, anchored by it; NULL + *n = 0 when absent */
static const char **string_list(lua_State *L, const char *what, int *n) {
  *n = 0;
  if (lua_isnil(L, -1)) return NULL;
  if (!lua_istable(L, -1)) luaL_error(L, "stream: %s must be a list of strings", what);
  int k = (int)lua_rawlen(L, -1);
  const char **v = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *v, 0); /* GC-owned */
  lua_insert(L, -2);
  for (int i = 0; i < k; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "stream: %s[%d] must be a string", what, i + 1);
    v[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  *n = k;
  return v;
}

static const char *opt_string(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "stream: '%s' must be a string", key);
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* anchored by the spec table */
  return s;
}

static int64_t opt_int(lua_State *L, int t, const char *key, int64_t def) {
  lua_getfield(L, t, key);
  int64_t v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "stream: '%s' must be an integer", key);
  }
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* open{ paths = {...}, format =, label =, text =, image =, row =, image_size =, image_fit =,
 *       features = { {name =, npy = | cols = {...}, missing = {0-based rows}}, ... }, classes = {...},
 *       keep_unlabelled =, skip_bad =, chunk =, queue =, shuffle_buffer =, workers = } */
static int l_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mm_stream_spec sp;
  mm_stream_spec_init(&sp);
  int n;
  lua_getfield(L, 1, "paths");
  sp.paths = string_list(L, "paths", &n);
  sp.npaths = n;
  const char *fmt = opt_string(L, 1, "format");
  if (fmt) {
    sp.format = -2;
    for (int i = 0; mm_table_format_names[i]; i++)
      if (strcmp(fmt, mm_table_format_names[i]) == 0) sp.format = i;
    if (sp.format < 0) return luaL_error(L, "stream: unknown format '%s' (tsv, csv, jsonl)", fmt);
  }
  sp.label = opt_string(L, 1, "label");
  sp.text = opt_string(L, 1, "text");
  sp.image = opt_string(L, 1, "image");
  sp.row = opt_string(L, 1, "row");
  sp.image_size = opt_int(L, 1, "image_size", sp.image_size);
  const char *fit = opt_string(L, 1, "image_fit");
  if (fit) {
    sp.image_fit = -1;
    for (int i = 0; mm_fit_names[i]; i++)
      if (strcmp(fit, mm_fit_names[i]) == 0) sp.image_fit = i;
    if (sp.image_fit < 0) return luaL_error(L, "stream: image_fit must be \"stretch\" or \"crop\", got \"%s\"", fit);
  }
  sp.keep_unlabelled = opt_bool(L, 1, "keep_unlabelled");
  sp.skip_bad = opt_bool(L, 1, "skip_bad");
  sp.chunk = opt_int(L, 1, "chunk", sp.chunk);
  sp.queue = opt_int(L, 1, "queue", sp.queue);
  sp.shuffle_buffer = opt_int(L, 1, "shuffle_buffer", sp.shuffle_buffer);
  sp.workers = (int)opt_int(L, 1, "workers", sp.workers);
  lua_getfield(L, 1, "classes");
  int nc;
  sp.classes = string_list(L, "classes", &nc);
  sp.nclasses = nc;
  mm_stream_feature feats[MM_STREAM_MAXFEAT];
  lua_getfield(L, 1, "features");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) return luaL_error(L, "stream: features must be a list");
    int nf = (int)lua_rawlen(L, -1);
    if (nf > MM_STREAM_MAXFEAT) return luaL_error(L, "stream: at most %d feature modalities", MM_STREAM_MAXFEAT);
    int ft = lua_gettop(L);
    for (int f = 0; f < nf; f++) {
      lua_rawgeti(L, ft, f + 1); /* stays on the stack: it anchors the strings */
      int it = lua_gettop(L);
      if (!lua_istable(L, it)) return luaL_error(L, "stream: features[%d] must be a table", f + 1);
      mm_stream_feature *x = &feats[f];
      memset(x, 0, sizeof *x);
      x->name = opt_string(L, it, "name");
      x->npy = opt_string(L, it, "npy");
      lua_getfield(L, it, "cols");
      int ncols;
      x->cols = string_list(L, "feature columns", &ncols);
      x->ncols = ncols;
      lua_getfield(L, it, "missing");
      if (!lua_isnil(L, -1)) {
        int64_t k = (int64_t)lua_rawlen(L, -1);
        int64_t *m = lua_newuserdatauv(L, (size_t)(k ? k : 1) * sizeof *m, 0);
        for (int64_t i = 0; i < k; i++) {
          lua_rawgeti(L, -2, i + 1);
          m[i] = (int64_t)lua_tointeger(L, -1);
          lua_pop(L, 1);
        }
        x->missing = m;
        x->nmissing = k;
      }
    }
    sp.features = feats;
    sp.nfeatures = nf;
  }
  mm_err e = {0};
  mm_stream *s = mm_stream_open(&sp, &e);
  if (!s) return mm_lua_raise(L, &e);
  push_stream(L, s);
  return 1;
}

/* info(s) -> { classes = {...}, files = {...}, modalities = { {name, kind, dim|size}, ... } } */
static int l_info(lua_State *L) {
  mm_stream *s = check(L, 1)->s;
  lua_createtable(L, 0, 3);
  lua_createtable(L, (int)mm_stream_nclasses(s), 0);
  for (int64_t c = 0; c < mm_stream_nclasses(s); c++) {
    lua_pushstring(L, mm_stream_class(s, c));
    lua_rawseti(L, -2, c + 1);
  }
  lua_setfield(L, -2, "classes");
  lua_createtable(L, mm_stream_nfiles(s), 0);
  for (int i = 0; i < mm_stream_nfiles(s); i++) {
    lua_pushstring(L, mm_stream_file(s, i));
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "files");
  mm_stream_modality mods[MM_MAXMOD];
  int n = mm_stream_modalities(s, mods);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, mods[i].name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, mods[i].kind == MM_MOD_TEXT ? "text" : mods[i].kind == MM_MOD_IMAGE ? "image" : "features");
    lua_setfield(L, -2, "kind");
    if (mods[i].kind == MM_MOD_IMAGE) {
      lua_pushinteger(L, mods[i].dim);
      lua_setfield(L, -2, "size");
    } else if (mods[i].kind == MM_MOD_DENSE) {
      lua_pushinteger(L, mods[i].dim);
      lua_setfield(L, -2, "dim");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "modalities");
  return 1;
}

/* split(s, { by =, test = {...}, valid = {...} } | { hash =, ratios = {a, b, c} }) -> train, valid, test */
static int l_split(lua_State *L) {
  mm_stream *s = check(L, 1)->s;
  luaL_checktype(L, 2, LUA_TTABLE);
  mm_stream_split sp;
  memset(&sp, 0, sizeof sp);
  sp.by = opt_string(L, 2, "by");
  sp.hash = opt_string(L, 2, "hash");
  int n;
  lua_getfield(L, 2, "test");
  sp.test = string_list(L, "test", &n);
  sp.ntest = n;
  lua_getfield(L, 2, "valid");
  sp.valid = string_list(L, "valid", &n);
  sp.nvalid = n;
  lua_getfield(L, 2, "ratios");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) < 2 || lua_rawlen(L, -1) > 3)
      return luaL_error(L, "split: ratios must be {train, valid[, test]}");
    for (int i = 0; i < (int)lua_rawlen(L, -1); i++) {
      lua_rawgeti(L, -1, i + 1);
      if (!lua_isnumber(L, -1)) return luaL_error(L, "split: ratios must be numbers >= 0");
      sp.ratios[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    sp.ratios[0] = 0.8, sp.ratios[1] = 0.1, sp.ratios[2] = 0.1;
  }
  mm_stream *out[3];
  mm_err e = {0};
  if (mm_stream_split_parts(s, &sp, out, &e)) return mm_lua_raise(L, &e);
  for (int p = 0; p < 3; p++) push_stream(L, out[p]);
  return 3;
}

static int l_drop(lua_State *L) {
  mm_stream *s = check(L, 1)->s;
  lua_settop(L, 2);
  int n;
  const char **names = string_list(L, "drop", &n);
  mm_err e = {0};
  mm_stream *c = mm_stream_drop(s, names, n, &e);
  if (!c) return mm_lua_raise(L, &e);
  push_stream(L, c);
  return 1;
}

/* part(s, rank, ranks, by_files): rank 0-based */
static int l_part(lua_State *L) {
  mm_stream *s = check(L, 1)->s;
  lua_Integer rank = luaL_checkinteger(L, 2), ranks = luaL_checkinteger(L, 3);
  mm_err e = {0};
  mm_stream *c = mm_stream_part(s, rank, ranks, lua_toboolean(L, 4), 1, &e);
  if (!c) return mm_lua_raise(L, &e);
  push_stream(L, c);
  return 1;
}

/* collect(s, shuffle, seed) -> a dataset of one epoch's rows */
static int l_collect(lua_State *L) {
  lstream *u = check(L, 1);
  mm_stream_epoch ep = {lua_toboolean(L, 2), (uint64_t)luaL_optinteger(L, 3, 1), 0, NULL, NULL};
  if (u->busy) return luaL_error(L, "stream: in use by a model (from inside on_batch)");
  mm_err e = {0};
  mm_dataset *ds = mm_stream_collect(u->s, &ep, &e);
  if (!ds) return mm_lua_raise(L, &e);
  mm_lua_pushdataset(L, ds);
  return 1;
}

#define SETI(k, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, (k)))

static int l_stats(lua_State *L) {
  mm_stream_stats st;
  mm_stream_stats_get(check(L, 1)->s, &st);
  lua_createtable(L, 0, 8);
  SETI("rows", st.rows);
  SETI("chunks", st.chunks);
  SETI("bad", st.bad);
  SETI("unlabelled", st.unlabelled);
  SETI("other", st.other);
  lua_pushnumber(L, st.wait);
  lua_setfield(L, -2, "wait");
  if (st.last_rows >= 0) SETI("last_rows", st.last_rows);
  if (st.first_bad[0]) {
    lua_pushstring(L, st.first_bad);
    lua_setfield(L, -2, "first_bad");
  }
  return 1;
}

static int l_hash_part(lua_State *L) {
  size_t len;
  const char *id = luaL_checklstring(L, 1, &len);
  double r[3] = {luaL_checknumber(L, 2), luaL_checknumber(L, 3), luaL_optnumber(L, 4, 0)};
  lua_pushinteger(L, mm_stream_hash_part(id, len, r) + 1);
  return 1;
}

int mm_lua_stream_busy(lua_State *L, int idx, int delta) {
  lstream *u = luaL_testudata(L, idx, STREAM_MT);
  if (!u) return 0;
  if (delta > 0 && u->busy) return luaL_error(L, "stream: already in use by a model (from inside on_batch)");
  u->busy += delta;
  return 1;
}

/* glob(pattern) -> the matching paths, sorted (glob(3)); an empty list when none */
static int l_glob(lua_State *L) {
  const char *pat = luaL_checkstring(L, 1);
  glob_t g;
  int r = glob(pat, GLOB_ERR, NULL, &g);
  if (r != 0 && r != GLOB_NOMATCH) {
    if (r != GLOB_ABORTED) globfree(&g);
    return luaL_error(L, "stream: cannot list the files of '%s'", pat);
  }
  lua_createtable(L, r == 0 ? (int)g.gl_pathc : 0, 0);
  for (size_t i = 0; r == 0 && i < g.gl_pathc; i++) {
    lua_pushstring(L, g.gl_pathv[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (r == 0) globfree(&g);
  return 1;
}

static int l_close(lua_State *L) {
  lstream *u = luaL_checkudata(L, 1, STREAM_MT);
  if (u->busy) return luaL_error(L, "stream: cannot close a stream while a model reads it (from inside on_batch)");
  return stream_gc(L);
}

void mm_lua_open_stream(lua_State *L) {
  if (luaL_newmetatable(L, STREAM_MT)) {
    lua_pushcfunction(L, stream_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"open", l_open},   {"info", l_info},       {"split", l_split},
                                 {"drop", l_drop},   {"part", l_part},       {"collect", l_collect},
                                 {"stats", l_stats}, {"hash_part", l_hash_part}, {"close", l_close}, {"glob", l_glob},
                                 {NULL, NULL}};
  mm_lua_subtable(L, "stream", fns);
}
