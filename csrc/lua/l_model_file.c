/* l_model_file.c - the model's file functions in core.fusion: save (the
 * header JSON from lua/mmfuse/model.lua + the weights), read (a model file
 * into a mmfuse.ModelFile userdata), load_weights (its tensors into a built
 * model, every check in csrc/model/weights.c), load_vectors (word vectors
 * into the text embedding) and vocab (the words, for the header). */
#include <string.h>

#include "../io/safetensors.h"
#include "l_model.h"

#define BLOB_MT "mmfuse.ModelFile"
#define checkmodel mm_lua_checkmodel

static int l_vocab(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  int64_t n = M->voc ? mm_vocab_size(M->voc) : 0;
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    size_t len;
    const char *w = mm_vocab_word(M->voc, i, &len);
    lua_pushlstring(L, w, len);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* save(M, path, header_json): the header lists the parameters in model order */
static int l_save(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  const char *path = luaL_checkstring(L, 2);
  size_t hlen;
  const char *header = luaL_checklstring(L, 3, &hlen);
  mm_err e = {0};
  if (mm_model_save(M, path, header, hlen, &e)) return mm_lua_raise(L, &e);
  return 0;
}

typedef struct lblob {
  mm_st_file f;
} lblob;

static int blob_gc(lua_State *L) {
  lblob *b = luaL_checkudata(L, 1, BLOB_MT);
  mm_st_free(&b->f);
  return 0;
}

/* read(path) -> header string, file userdata, data bytes */
static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lblob *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BLOB_MT);
  mm_err e = {0};
  if (mm_st_read(path, &b->f, &e)) return mm_lua_raise(L, &e);
  lua_pushlstring(L, b->f.header, b->f.hlen);
  lua_insert(L, -2);
  lua_pushinteger(L, (lua_Integer)b->f.dlen);
  return 3;
}

static int geti(lua_State *L, int t, int i, lua_Integer *out) {
  lua_rawgeti(L, t, i);
  int ok = lua_isinteger(L, -1);
  if (ok) *out = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* the header entry {dtype=, shape=, data_offsets=} at the top of the stack;
 * dtype points into the table (anchored by the caller) */
static void read_entry(lua_State *L, mm_weight_entry *t) {
  int ti = lua_gettop(L);
  memset(t, 0, sizeof *t);
  lua_getfield(L, ti, "dtype");
  t->dtype = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);
  lua_getfield(L, ti, "shape");
  t->ndim = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : -1;
  for (int d = 0; d < t->ndim && d < MM_WEIGHT_MAXDIM; d++) {
    lua_Integer v;
    t->shape[d] = geti(L, ti + 1, d + 1, &v) ? (int64_t)v : -1;
  }
  lua_pop(L, 1);
  lua_getfield(L, ti, "data_offsets");
  lua_Integer a, z;
  t->has_offsets = lua_istable(L, -1) && lua_rawlen(L, -1) == 2 && geti(L, ti + 1, 1, &a) && geti(L, ti + 1, 2, &z);
  if (t->has_offsets) t->begin = (int64_t)a, t->end = (int64_t)z;
  lua_pop(L, 1);
}

/* load_weights(M, file, tensors, where): tensors[name] = {dtype=, shape=, data_offsets=} */
static int l_load_weights(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lblob *b = luaL_checkudata(L, 2, BLOB_MT);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *where = luaL_checkstring(L, 4);
  int n = M->nparams;
  mm_weight_entry *ents = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ents, 0); /* GC-owned */
  const mm_weight_entry **byparam = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *byparam, 0);
  for (int i = 0; i < n; i++) {
    lua_getfield(L, 3, M->params[i].name);
    byparam[i] = NULL;
    if (lua_istable(L, -1)) {
      read_entry(L, &ents[i]);
      byparam[i] = &ents[i];
    }
    lua_pop(L, 1);
  }
  mm_err e = {0};
  if (mm_model_load_weights(M, byparam, b->f.data, b->f.dlen, where, &e)) return mm_lua_raise(L, &e);
  return 0;
}

/* load_vectors(M, path, format) -> found, total, dim: pretrained word vectors
 * into the rows of the text embedding (d must equal dim). */
static int l_load_vectors(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *fmt = luaL_optstring(L, 3, "auto");
  mm_vec_stats st;
  mm_err e = {0};
  if (mm_model_load_vectors(M, path, fmt, &st, &e)) return mm_lua_raise(L, &e);
  lua_pushinteger(L, st.found);
  lua_pushinteger(L, st.total);
  lua_pushinteger(L, st.dim);
  return 3;
}


void mm_lua_open_model_file(lua_State *L) {
  if (luaL_newmetatable(L, BLOB_MT)) {
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"vocab", l_vocab},           {"save", l_save},
                                 {"read", l_read},             {"load_weights", l_load_weights},
                                 {"load_vectors", l_load_vectors}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
