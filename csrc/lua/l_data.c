/* l_data.c - Lua binding of the dataset object (csrc/model/dataset.h): core.data.
 * The Lua face (lua/mmfuse/data.lua) wraps the userdata with class names and
 * loaders; indices and labels are 1-based here (0 = unlabelled). */
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "../model/dataset.h"
#include "mm_lua.h"

#define DS_MT "mmfuse.Dataset"

typedef struct lds {
  mm_dataset *ds;
} lds;

mm_dataset *mm_lua_checkdataset(lua_State *L, int idx) {
  lds *u = luaL_checkudata(L, idx, DS_MT);
  if (!u->ds) luaL_argerror(L, idx, "dataset is closed");
  return u->ds;
}

void mm_lua_pushdataset(lua_State *L, mm_dataset *ds) {
  lds *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->ds = ds;
  luaL_setmetatable(L, DS_MT);
}

static int ds_gc(lua_State *L) {
  lds *u = luaL_checkudata(L, 1, DS_MT);
  if (u->ds && u->ds->in_use) /* only reachable through __close from on_batch */
    return luaL_error(L, "dataset: cannot close a dataset while a model trains on it (from inside on_batch)");
  mm_dataset_free(u->ds);
  u->ds = NULL;
  return 0;
}

/* new(n, nclasses, labels) labels: array of 1..C or 0 (unlabelled); nil = all 0 */
static int l_new(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), C = luaL_checkinteger(L, 2);
  if (n < 0 || n > ((lua_Integer)1 << 36)) return luaL_argerror(L, 1, "row count out of range");
  if (C < 0 || C > 100000) return luaL_argerror(L, 2, "class count must be in 0..100000");
  int64_t *lab = malloc((size_t)(n ? n : 1) * sizeof *lab);
  if (!lab) return luaL_error(L, "dataset: out of memory");
  for (lua_Integer i = 0; i < n; i++) lab[i] = -1;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3)) {
      free(lab);
      return luaL_argerror(L, 3, "labels must be a table");
    }
    for (lua_Integer i = 0; i < n; i++) {
      lua_rawgeti(L, 3, i + 1);
      int ok;
      lua_Integer y = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || y < 0 || y > C) {
        free(lab);
        return luaL_error(L, "dataset: label of row %d must be an integer in 1..%d (or 0 for none)", (int)i + 1,
                          (int)C);
      }
      lab[i] = y - 1;
    }
  }
  mm_err e = {0};
  mm_dataset *ds = mm_dataset_new(n, C, lab, &e);
  free(lab);
  if (!ds) return mm_lua_raise(L, &e);
  mm_lua_pushdataset(L, ds);
  return 1;
}

/* add_text(ds, name, strings) ; entries: string (empty = absent) or false/nil */
static int l_add_text(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t n = ds->n;
  int64_t *off = malloc((size_t)(n + 1) * sizeof *off);
  if (!off) return luaL_error(L, "dataset: out of memory");
  luaL_Buffer b;
  off[0] = 0;
  luaL_buffinit(L, &b); /* pushes nothing for now; strings accumulate below */
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    size_t len = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_tolstring(L, -1, &len);
      luaL_addvalue(&b);
    } else if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
      lua_pop(L, 1);
    } else {
      free(off);
      return luaL_error(L, "dataset: text '%s' of row %d must be a string, got %s", name, (int)i + 1,
                        luaL_typename(L, -1));
    }
    off[i + 1] = off[i] + (int64_t)len;
  }
  luaL_pushresult(&b);
  size_t tl;
  const char *text = lua_tolstring(L, -1, &tl);
  mm_err e = {0};
  int rc = mm_dataset_add_text(ds, name, text, off, NULL, &e);
  free(off);
  if (rc) return mm_lua_raise(L, &e);
  return 0;
}

/* add_dense(ds, name, tensor[n, D], mask) ; mask: nil (all present) or array of booleans */
static int l_add_dense(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  const char *name = luaL_checkstring(L, 2);
  mm_tensor *t = mm_lua_totensor(L, 3, "features");
  if (t->ndim != 2 || t->shape[0] != ds->n)
    return luaL_error(L, "dataset: features '%s' must be a %dxD tensor, got %s", name, (int)ds->n,
                      mm_lua_shapestr(t));
  uint8_t *mask = NULL;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    mask = malloc((size_t)(ds->n ? ds->n : 1));
    if (!mask) return luaL_error(L, "dataset: out of memory");
    for (int64_t i = 0; i < ds->n; i++) {
      lua_rawgeti(L, 4, i + 1);
      mask[i] = (uint8_t)lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  mm_err e = {0};
  int rc = mm_dataset_add_dense(ds, name, t->data, t->shape[1], mask, &e);
  free(mask);
  if (rc) return mm_lua_raise(L, &e);
  return 0;
}

/* add_image(ds, name, entries, {size=32, bytes=false, fit="stretch"|"crop", where="image", max_bytes=0,
 *                               absent_on_error=false}) -> failures
 * entries: path (or bytes) string, or false/nil/"" = absent. A path must name
 * a regular file of at most max_bytes (0: MM_IMAGE_MAX_BYTES). Errors name
 * the file and the row (`where` prefixes them, e.g. the manifest). The
 * images are decoded over mm.threads() (image/decode_many.c). With
 * absent_on_error, a row whose image cannot be had is image-absent instead
 * and listed in the returned table ({row=, status=, message=} in row order,
 * status one of mm.image.statuses); without it the table is empty. */
static int l_add_image(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer size, max_bytes;
  int bytes, fit, keep_going;
  const char *where;
  const mm_lua_opt opts[] = {MM_OPT_INT_IN("size", &size, 32, 1, 1024), MM_OPT_BOOL("bytes", &bytes, 0),
                             MM_OPT_ENUM("fit", &fit, MM_FIT_STRETCH, mm_fit_names),
                             MM_OPT_STR("where", &where, "image"),
                             MM_OPT_INT_IN("max_bytes", &max_bytes, 0, 0, (lua_Number)((int64_t)1 << 40)),
                             MM_OPT_BOOL("absent_on_error", &keep_going, 0), MM_OPT_END};
  mm_lua_readopts(L, 4, "dataset: add_image", opts);
  int64_t n = ds->n, per = size * size * 3;
  size_t rows = (size_t)(n ? n : 1);
  uint8_t *pix = calloc((size_t)(n * per) + 1, 1), *mask = calloc(rows, 1);
  const char **src = calloc(rows, sizeof *src);
  size_t *len = calloc(rows, sizeof *len);
  mm_image_failure *fails = NULL;
  int64_t nfails = 0;
  mm_err e = {0};
  int64_t row = -1, nd = n;
  const char *badtype = NULL;
  int rc = pix && mask && src && len ? MM_OK : mm_errorf(&e, MM_ENOMEM, "dataset: out of memory for %d images", (int)n);
  /* the strings stay in the entries table (argument 3) while the threads
   * read them; rows past the first entry of a wrong type are not decoded (a
   * row before it that fails to decode is the error reported) */
  for (int64_t i = 0; !rc && i < n && !badtype; i++) {
    int t = lua_rawgeti(L, 3, i + 1);
    src[i] = t == LUA_TSTRING ? lua_tolstring(L, -1, &len[i]) : NULL;
    if (!src[i] && t != LUA_TNIL && !(t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) badtype = luaL_typename(L, -1), nd = i;
    if (src[i] && len[i] == 0) src[i] = NULL;
    mask[i] = src[i] != NULL;
    lua_pop(L, 1);
  }
  if (!rc && keep_going) {
    rc = mm_image_decode_each(src, len, nd, bytes, (int)size, (int)size, fit, max_bytes, pix, &fails, &nfails, &e);
    for (int64_t k = 0; !rc && k < nfails; k++) mask[fails[k].row] = 0;
  } else if (!rc) {
    rc = mm_image_decode_many(src, len, nd, bytes, (int)size, (int)size, fit, max_bytes, pix, &row, &e);
  }
  if (rc && row >= 0) mm_err_prefix(&e, "%s: row %d: ", where, (int)row + 1);
  if (!rc && badtype) rc = mm_errorf(&e, MM_EINVAL, "%s: image of row %d must be a string, got %s", where, (int)nd + 1, badtype);
  if (!rc) rc = mm_dataset_add_image(ds, name, pix, 3, size, size, mask, &e);
  free(pix), free(mask), free(src), free(len);
  if (rc) {
    free(fails);
    return mm_lua_raise(L, &e);
  }
  lua_createtable(L, (int)nfails, 0);
  for (int64_t k = 0; k < nfails; k++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, fails[k].row + 1);
    lua_setfield(L, -2, "row");
    lua_pushstring(L, mm_image_status_name(fails[k].status));
    lua_setfield(L, -2, "status");
    lua_pushstring(L, fails[k].e.msg);
    lua_setfield(L, -2, "message");
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  free(fails);
  return 1;
}

static int l_subset(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer m = (lua_Integer)lua_rawlen(L, 2);
  int64_t *idx = malloc((size_t)(m ? m : 1) * sizeof *idx);
  if (!idx) return luaL_error(L, "dataset: out of memory");
  for (lua_Integer i = 0; i < m; i++) {
    lua_rawgeti(L, 2, i + 1);
    int ok;
    lua_Integer r = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok) {
      free(idx);
      return luaL_error(L, "dataset: subset index %d is not an integer", (int)i + 1);
    }
    idx[i] = r - 1;
  }
  mm_err e = {0};
  mm_dataset *o = mm_dataset_subset(ds, idx, m, &e);
  free(idx);
  if (!o) return mm_lua_raise(L, &e);
  mm_lua_pushdataset(L, o);
  return 1;
}

static int l_drop(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int m = (int)lua_rawlen(L, 2);
  if (m > MM_MAXMOD) return luaL_error(L, "dataset: too many modalities to drop");
  const char *names[MM_MAXMOD];
  for (int i = 0; i < m; i++) {
    lua_rawgeti(L, 2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* anchored by the table */
    if (!names[i]) return luaL_error(L, "dataset: modality names to drop must be strings");
  }
  mm_err e = {0};
  mm_dataset *o = mm_dataset_drop(ds, names, m, &e);
  if (!o) return mm_lua_raise(L, &e);
  mm_lua_pushdataset(L, o);
  return 1;
}

static const char *kind_name(int k) { return k == MM_MOD_TEXT ? "text" : k == MM_MOD_IMAGE ? "image" : "features"; }

static int l_info(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, ds->n);
  lua_setfield(L, -2, "n");
  lua_pushinteger(L, ds->nclasses);
  lua_setfield(L, -2, "nclasses");
  lua_createtable(L, ds->k, 0);
  for (int i = 0; i < ds->k; i++) {
    const mm_modality *m = &ds->mods[i];
    lua_createtable(L, 0, 5);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, kind_name(m->kind));
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, mm_dataset_present(ds, i));
    lua_setfield(L, -2, "present");
    if (m->kind == MM_MOD_DENSE) {
      lua_pushinteger(L, m->dim);
      lua_setfield(L, -2, "dim");
    } else if (m->kind == MM_MOD_IMAGE) {
      lua_pushinteger(L, m->h);
      lua_setfield(L, -2, "size");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "modalities");
  return 1;
}

static int l_labels(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  lua_createtable(L, (int)ds->n, 0);
  for (int64_t i = 0; i < ds->n; i++) {
    lua_pushinteger(L, ds->labels[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_mask(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  int m = mm_dataset_find(ds, luaL_checkstring(L, 2));
  if (m < 0) return luaL_error(L, "dataset: no modality '%s'", lua_tostring(L, 2));
  lua_createtable(L, (int)ds->n, 0);
  for (int64_t i = 0; i < ds->n; i++) {
    lua_pushboolean(L, ds->mods[m].mask[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_text(lua_State *L) {
  mm_dataset *ds = mm_lua_checkdataset(L, 1);
  int m = mm_dataset_find(ds, luaL_checkstring(L, 2));
  lua_Integer r = luaL_checkinteger(L, 3);
  if (m < 0 || ds->mods[m].kind != MM_MOD_TEXT) return luaL_error(L, "dataset: no text modality '%s'", lua_tostring(L, 2));
  if (r < 1 || r > ds->n) return luaL_argerror(L, 3, "row out of range");
  const mm_modality *mo = &ds->mods[m];
  lua_pushlstring(L, mo->text + mo->off[r - 1], (size_t)(mo->off[r] - mo->off[r - 1]));
  return 1;
}

static int l_n(lua_State *L) {
  lua_pushinteger(L, mm_lua_checkdataset(L, 1)->n);
  return 1;
}

void mm_lua_open_data(lua_State *L) {
  if (luaL_newmetatable(L, DS_MT)) {
    lua_pushcfunction(L, ds_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ds_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"new", l_new},       {"add_text", l_add_text}, {"add_dense", l_add_dense},
                                 {"add_image", l_add_image}, {"subset", l_subset}, {"drop", l_drop},
                                 {"info", l_info},     {"labels", l_labels},   {"mask", l_mask},
                                 {"text", l_text},     {"n", l_n},             {NULL, NULL}};
  mm_lua_subtable(L, "data", fns);
}
