/* l_tensor.c - the Lua face of mm_tensor: constructors, shape, indexing,
 * arithmetic metamethods, matmul (mm_sgemm), reductions, elementwise maps,
 * printing; and the tensor helpers of mm_lua.h (check, push, convert). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gemm.h"
#include "../core/rng.h"
#include "mm_lua.h"

/* ======================================================================= */
/* tensor helpers of mm_lua.h                                              */
/* ======================================================================= */

mm_tensor *mm_lua_testtensor(lua_State *L, int idx) { return luaL_testudata(L, idx, MM_TENSOR_MT); }

mm_tensor *mm_lua_checktensor(lua_State *L, int idx, const char *name) {
  mm_tensor *t = luaL_testudata(L, idx, MM_TENSOR_MT);
  if (!t) {
    const char *msg = lua_pushfstring(L, "%s: tensor expected, got %s", name ? name : "?", luaL_typename(L, idx));
    luaL_argerror(L, idx, msg);
  }
  if (!t->data) luaL_argerror(L, idx, lua_pushfstring(L, "%s: tensor was freed", name ? name : "?"));
  return t;
}

static int tensor_gc(lua_State *L) {
  mm_tensor *t = luaL_checkudata(L, 1, MM_TENSOR_MT);
  mm_tensor_free(t);
  return 0;
}

mm_tensor *mm_lua_newtensor(lua_State *L, int ndim, const int64_t *shape) {
  mm_tensor *t = lua_newuserdatauv(L, sizeof(mm_tensor), 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, MM_TENSOR_MT);
  mm_err e;
  if (mm_tensor_alloc(t, ndim, shape, &e)) mm_lua_raise(L, &e);
  return t;
}

mm_tensor *mm_lua_newtensor_uninit(lua_State *L, int ndim, const int64_t *shape) {
  mm_tensor *t = lua_newuserdatauv(L, sizeof(mm_tensor), 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, MM_TENSOR_MT);
  int64_t n;
  mm_err e;
  if (mm_shape_numel(ndim, shape, &n, "tensor", &e)) mm_lua_raise(L, &e);
  float *d = mm_falloc_uninit(n);
  if (!d) luaL_error(L, "tensor: out of memory allocating %I floats", (lua_Integer)n);
  t->ndim = ndim;
  for (int i = 0; i < MM_MAXDIM; i++) t->shape[i] = i < ndim ? shape[i] : 0;
  t->numel = n;
  t->data = d;
  return t;
}

mm_tensor *mm_lua_newtensor_like(lua_State *L, const mm_tensor *t) {
  int64_t shape[MM_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  return mm_lua_newtensor(L, t->ndim, shape);
}

const char *mm_lua_shapestr(const mm_tensor *t) {
  static char bufs[4][96];
  static int next = 0;
  char *b = bufs[next];
  next = (next + 1) & 3;
  return mm_shape_str(t, b, sizeof bufs[0]);
}

/* ---- shapes from Lua ---------------------------------------------------- */

static int64_t check_dim(lua_State *L, int arg, lua_Integer v) {
  if (v < 0) luaL_argerror(L, arg, lua_pushfstring(L, "negative size %d", (int)v));
  return (int64_t)v;
}

int mm_lua_checkshape(lua_State *L, int idx, int64_t *shape) {
  int top = lua_gettop(L);
  if (lua_istable(L, idx) && !mm_lua_testtensor(L, idx)) {
    int n = (int)luaL_len(L, idx);
    if (n > MM_MAXDIM) luaL_argerror(L, idx, lua_pushfstring(L, "shape has %d dimensions (at most %d)", n, MM_MAXDIM));
    for (int i = 0; i < n; i++) {
      lua_geti(L, idx, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "shape entry %d is not an integer", i + 1));
      shape[i] = check_dim(L, idx, v);
      lua_pop(L, 1);
    }
    return n;
  }
  int n = 0;
  for (int i = idx; i <= top; i++) {
    if (n >= MM_MAXDIM) luaL_argerror(L, i, "too many dimensions");
    shape[n++] = check_dim(L, i, luaL_checkinteger(L, i));
  }
  return n;
}

/* ---- nested tables -> tensor --------------------------------------------- */

static void infer_shape(lua_State *L, int idx, int depth, int *ndim, int64_t *shape) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    *ndim = depth;
    return;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "tensor: expected numbers or nested tables, got %s", luaL_typename(L, idx));
  if (depth >= MM_MAXDIM) luaL_error(L, "tensor: more than %d levels of nesting", MM_MAXDIM);
  lua_Integer n = luaL_len(L, idx);
  shape[depth] = n;
  if (n == 0) {
    *ndim = depth + 1;
    return;
  }
  lua_geti(L, idx, 1);
  infer_shape(L, lua_gettop(L), depth + 1, ndim, shape);
  lua_pop(L, 1);
}

static void fill_from_table(lua_State *L, int idx, int depth, int ndim, const int64_t *shape, float **out,
                            char *path, size_t plen) {
  if (depth == ndim) {
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok) luaL_error(L, "tensor: element %s is %s, expected a number", path, luaL_typename(L, idx));
    *(*out)++ = (float)v;
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "tensor: element %s is %s, expected a table of %d entries (ragged nesting)", path,
               luaL_typename(L, idx), (int)shape[depth]);
  lua_Integer n = luaL_len(L, idx);
  if (n != shape[depth])
    luaL_error(L, "tensor: ragged nesting: row %s has %d entries, expected %d", path[0] ? path : "(top)", (int)n,
               (int)shape[depth]);
  size_t base = strlen(path);
  for (lua_Integer i = 1; i <= n; i++) {
    snprintf(path + base, plen - base, "[%d]", (int)i);
    lua_geti(L, idx, i);
    fill_from_table(L, lua_gettop(L), depth + 1, ndim, shape, out, path, plen);
    lua_pop(L, 1);
  }
  path[base] = '\0';
}

static mm_tensor *tensor_from_lua(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    mm_tensor *t = mm_lua_newtensor(L, 0, NULL);
    t->data[0] = (float)lua_tonumber(L, idx);
    return t;
  }
  int64_t shape[MM_MAXDIM] = {0};
  int ndim = 0;
  infer_shape(L, idx, 0, &ndim, shape);
  mm_tensor *t = mm_lua_newtensor(L, ndim, shape);
  float *p = t->data;
  char path[128] = "";
  if (t->numel > 0) fill_from_table(L, idx, 0, ndim, shape, &p, path, sizeof path);
  return t;
}

mm_tensor *mm_lua_totensor(lua_State *L, int idx, const char *name) {
  idx = lua_absindex(L, idx);
  mm_tensor *t = mm_lua_testtensor(L, idx);
  if (t) return t;
  int ty = lua_type(L, idx);
  if (ty != LUA_TTABLE && ty != LUA_TNUMBER) {
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "%s: tensor or table expected, got %s", name ? name : "?", luaL_typename(L, idx)));
  }
  t = tensor_from_lua(L, idx);
  lua_replace(L, idx);
  return t;
}

/* ======================================================================= */
/* constructors                                                            */
/* ======================================================================= */

static int l_tensor(lua_State *L) {
  luaL_checkany(L, 1);
  mm_tensor *src = mm_lua_testtensor(L, 1);
  if (src) {
    mm_tensor *t = mm_lua_newtensor_like(L, src);
    memcpy(t->data, src->data, (size_t)src->numel * sizeof(float));
    return 1;
  }
  if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TNUMBER)
    return luaL_argerror(L, 1, lua_pushfstring(L, "nested table or number expected, got %s", luaL_typename(L, 1)));
  tensor_from_lua(L, 1);
  return 1;
}

static int l_zeros(lua_State *L) {
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_lua_newtensor(L, n, shape);
  return 1;
}

static int l_ones(lua_State *L) {
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor *t = mm_lua_newtensor(L, n, shape);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = 1.0f;
  return 1;
}

/* mm.full(shape_table, value) */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  float v = (float)luaL_checknumber(L, 2);
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor *t = mm_lua_newtensor(L, n, shape);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
  return 1;
}

/* mm.arange(n) -> 0..n-1; mm.arange(a, b[, step]) -> a, a+step, ... < b */
static int l_arange(lua_State *L) {
  double a = 0, b, step = 1;
  if (lua_gettop(L) <= 1) {
    b = luaL_checknumber(L, 1);
  } else {
    a = luaL_checknumber(L, 1);
    b = luaL_checknumber(L, 2);
    step = luaL_optnumber(L, 3, 1);
  }
  luaL_argcheck(L, step != 0 && isfinite(step), 3, "step must be finite and non-zero");
  luaL_argcheck(L, isfinite(a) && isfinite(b), 1, "bounds must be finite");
  double cnt = ceil((b - a) / step);
  if (cnt < 0) cnt = 0;
  luaL_argcheck(L, cnt <= (double)MM_MAXNUMEL, 1, "range too large");
  int64_t n = (int64_t)cnt;
  mm_tensor *t = mm_lua_newtensor(L, 1, &n);
  for (int64_t i = 0; i < n; i++) t->data[i] = (float)(a + step * (double)i);
  return 1;
}

static int l_rand(lua_State *L) {
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor *t = mm_lua_newtensor(L, n, shape);
  mm_rng *r = mm_rng_global();
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = mm_rng_uniform(r);
  return 1;
}

static int l_randn(lua_State *L) {
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor *t = mm_lua_newtensor(L, n, shape);
  mm_rng *r = mm_rng_global();
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)mm_rng_normal(r);
  return 1;
}

static int l_istensor(lua_State *L) {
  lua_pushboolean(L, mm_lua_testtensor(L, 1) != NULL);
  return 1;
}

/* ======================================================================= */
/* shape and access                                                        */
/* ======================================================================= */

static int m_shape(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_size(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  lua_Integer d = luaL_checkinteger(L, 2);
  if (d < 0) d += t->ndim + 1;
  luaL_argcheck(L, d >= 1 && d <= t->ndim, 2, lua_pushfstring(L, "dimension out of range for shape %s", mm_lua_shapestr(t)));
  lua_pushinteger(L, t->shape[d - 1]);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, mm_lua_checktensor(L, 1, "self")->numel);
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, mm_lua_checktensor(L, 1, "self")->ndim);
  return 1;
}

static int t_len(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  lua_pushinteger(L, t->ndim == 0 ? 0 : t->shape[0]);
  return 1;
}

/* flat offset of 1-based indices at stack idx.. (count = ndim); negative counts from the end */
static int64_t offset_of(lua_State *L, const mm_tensor *t, const lua_Integer *ix, int count) {
  if (count != t->ndim)
    luaL_error(L, "index: %d indices given for a tensor of shape %s (%d dimensions)", count, mm_lua_shapestr(t),
               t->ndim);
  int64_t off = 0;
  for (int d = 0; d < count; d++) {
    lua_Integer i = ix[d];
    if (i < 0) i += t->shape[d] + 1;
    if (i < 1 || i > t->shape[d])
      luaL_error(L, "index: index %d out of range 1..%d in dimension %d (shape %s)", (int)ix[d], (int)t->shape[d],
                 d + 1, mm_lua_shapestr(t));
    off = off * t->shape[d] + (i - 1);
  }
  return off;
}

static int read_index_table(lua_State *L, int idx, lua_Integer *ix) {
  int n = (int)luaL_len(L, idx);
  if (n > MM_MAXDIM) luaL_error(L, "index: too many indices (%d)", n);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    int ok;
    ix[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "index: entry %d is not an integer", i + 1);
    lua_pop(L, 1);
  }
  return n;
}

/* t:get(i, j, ...) -> number */
static int m_get(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  lua_Integer ix[MM_MAXDIM];
  int n = lua_gettop(L) - 1;
  if (n > MM_MAXDIM) return luaL_error(L, "get: too many indices");
  for (int i = 0; i < n; i++) ix[i] = luaL_checkinteger(L, i + 2);
  lua_pushnumber(L, t->data[offset_of(L, t, ix, n)]);
  return 1;
}

/* t:set(i, j, ..., value) -> t */
static int m_set(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  lua_Integer ix[MM_MAXDIM];
  int n = lua_gettop(L) - 2;
  if (n < 0) return luaL_error(L, "set: indices and a value expected");
  if (n > MM_MAXDIM) return luaL_error(L, "set: too many indices");
  for (int i = 0; i < n; i++) ix[i] = luaL_checkinteger(L, i + 2);
  float v = (float)luaL_checknumber(L, n + 2);
  t->data[offset_of(L, t, ix, n)] = v;
  lua_settop(L, 1);
  return 1;
}

static int64_t row_size(const mm_tensor *t) { return t->shape[0] ? t->numel / t->shape[0] : 0; }

static lua_Integer check_row(lua_State *L, const mm_tensor *t, lua_Integer i, const char *what) {
  if (t->ndim == 0) luaL_error(L, "%s: cannot index a scalar tensor", what);
  lua_Integer r = i < 0 ? i + t->shape[0] + 1 : i;
  if (r < 1 || r > t->shape[0])
    luaL_error(L, "%s: row %d out of range 1..%d (shape %s)", what, (int)i, (int)t->shape[0], mm_lua_shapestr(t));
  return r;
}

static const luaL_Reg tensor_methods[];

/* t[i] (number for 1-d, a copy of row i otherwise), t[{i,j}], t.method */
static int t_index(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  int kt = lua_type(L, 2);
  if (kt == LUA_TSTRING) {
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
  }
  if (kt == LUA_TNUMBER) {
    if (!lua_isinteger(L, 2)) return luaL_error(L, "index: row index must be an integer");
    lua_Integer r = check_row(L, t, lua_tointeger(L, 2), "index");
    if (t->ndim == 1) {
      lua_pushnumber(L, t->data[r - 1]);
      return 1;
    }
    mm_tensor *o = mm_lua_newtensor(L, t->ndim - 1, t->shape + 1);
    memcpy(o->data, t->data + (r - 1) * row_size(t), (size_t)o->numel * sizeof(float));
    return 1;
  }
  if (kt == LUA_TTABLE) {
    lua_Integer ix[MM_MAXDIM];
    int n = read_index_table(L, 2, ix);
    lua_pushnumber(L, t->data[offset_of(L, t, ix, n)]);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* t[i] = number | tensor/table (row), t[{i,j}] = number */
static int t_newindex(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  int kt = lua_type(L, 2);
  if (kt == LUA_TTABLE) {
    lua_Integer ix[MM_MAXDIM];
    int n = read_index_table(L, 2, ix);
    int ok;
    lua_Number v = lua_tonumberx(L, 3, &ok);
    if (!ok) return luaL_error(L, "index assignment: number expected, got %s", luaL_typename(L, 3));
    t->data[offset_of(L, t, ix, n)] = (float)v;
    return 0;
  }
  if (kt != LUA_TNUMBER || !lua_isinteger(L, 2))
    return luaL_error(L, "index assignment: integer row or index table expected, got %s", luaL_typename(L, 2));
  lua_Integer r = check_row(L, t, lua_tointeger(L, 2), "index assignment");
  int64_t rs = row_size(t);
  float *dst = t->data + (r - 1) * rs;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    float v = (float)lua_tonumber(L, 3);
    for (int64_t i = 0; i < rs; i++) dst[i] = v;
    return 0;
  }
  mm_tensor *src = mm_lua_totensor(L, 3, "value");
  if (src->numel != rs)
    return luaL_error(L, "index assignment: row of shape %s needs %d values, got shape %s", mm_lua_shapestr(t),
                      (int)rs, mm_lua_shapestr(src));
  memcpy(dst, src->data, (size_t)rs * sizeof(float));
  return 0;
}

static void push_totable(lua_State *L, const float *p, const mm_tensor *t, int d, int64_t stride) {
  int64_t n = t->shape[d];
  lua_createtable(L, (int)n, 0);
  int64_t inner = stride / (n ? n : 1);
  for (int64_t i = 0; i < n; i++) {
    if (d == t->ndim - 1)
      lua_pushnumber(L, p[i]);
    else
      push_totable(L, p + i * inner, t, d + 1, inner);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int m_totable(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  if (t->ndim == 0) {
    lua_pushnumber(L, t->data[0]);
    return 1;
  }
  luaL_checkstack(L, t->ndim + 4, "totable");
  push_totable(L, t->data, t, 0, t->numel);
  return 1;
}

static int m_item(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  if (t->numel != 1) return luaL_error(L, "item: tensor of shape %s has %d elements, expected 1", mm_lua_shapestr(t), (int)t->numel);
  lua_pushnumber(L, t->data[0]);
  return 1;
}

static int m_clone(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  mm_tensor *o = mm_lua_newtensor_like(L, t);
  memcpy(o->data, t->data, (size_t)t->numel * sizeof(float));
  return 1;
}

/* t:reshape(2, 3) or t:reshape{2, -1} (one -1 is inferred) -> copy */
static int m_reshape(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  int64_t shape[MM_MAXDIM];
  int n = 0, infer = -1;
  int top = lua_gettop(L);
  if (top == 2 && lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n <= MM_MAXDIM, 2, "too many dimensions");
    for (int i = 0; i < n; i++) {
      lua_geti(L, 2, i + 1);
      int ok;
      shape[i] = lua_tointegerx(L, -1, &ok);
      if (!ok) return luaL_argerror(L, 2, lua_pushfstring(L, "shape entry %d is not an integer", i + 1));
      lua_pop(L, 1);
    }
  } else {
    n = top - 1;
    luaL_argcheck(L, n <= MM_MAXDIM, 2, "too many dimensions");
    for (int i = 0; i < n; i++) shape[i] = luaL_checkinteger(L, i + 2);
  }
  int64_t known = 1;
  for (int i = 0; i < n; i++) {
    if (shape[i] == -1) {
      if (infer >= 0) return luaL_error(L, "reshape: only one dimension can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      return luaL_error(L, "reshape: negative size %d in dimension %d", (int)shape[i], i + 1);
    } else {
      known *= shape[i];
      if (known > MM_MAXNUMEL) return luaL_error(L, "reshape: shape too large");
    }
  }
  if (infer >= 0) {
    if (known == 0 || t->numel % known)
      return luaL_error(L, "reshape: cannot infer -1 for %d elements (shape %s)", (int)t->numel, mm_lua_shapestr(t));
    shape[infer] = t->numel / known;
    known *= shape[infer];
  }
  if (known != t->numel)
    return luaL_error(L, "reshape: shape %s has %d elements, the requested shape has %d", mm_lua_shapestr(t),
                      (int)t->numel, (int)known);
  mm_tensor *o = mm_lua_newtensor(L, n, shape);
  memcpy(o->data, t->data, (size_t)t->numel * sizeof(float));
  return 1;
}

/* t:transpose([d1, d2]) -> copy with dimensions d1 and d2 swapped (default 1, 2) */
static int m_transpose(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  lua_Integer d1 = luaL_optinteger(L, 2, 1), d2 = luaL_optinteger(L, 3, 2);
  if (t->ndim < 2) return luaL_error(L, "transpose: tensor of shape %s has fewer than 2 dimensions", mm_lua_shapestr(t));
  if (d1 < 0) d1 += t->ndim + 1;
  if (d2 < 0) d2 += t->ndim + 1;
  luaL_argcheck(L, d1 >= 1 && d1 <= t->ndim, 2, "dimension out of range");
  luaL_argcheck(L, d2 >= 1 && d2 <= t->ndim, 3, "dimension out of range");
  int64_t shape[MM_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[d1 - 1] = t->shape[d2 - 1];
  shape[d2 - 1] = t->shape[d1 - 1];
  mm_tensor *o = mm_lua_newtensor(L, t->ndim, shape);
  int nd = t->ndim;
  int64_t sstride[MM_MAXDIM], idx[MM_MAXDIM] = {0};
  sstride[nd - 1] = 1;
  for (int d = nd - 2; d >= 0; d--) sstride[d] = sstride[d + 1] * t->shape[d + 1];
  /* source stride for each output dimension */
  int64_t ostr[MM_MAXDIM];
  for (int d = 0; d < nd; d++) ostr[d] = sstride[d];
  ostr[d1 - 1] = sstride[d2 - 1];
  ostr[d2 - 1] = sstride[d1 - 1];
  for (int64_t i = 0; i < o->numel; i++) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++) off += idx[d] * ostr[d];
    o->data[i] = t->data[off];
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return 1;
}

/* t:rows(a[, b]) -> copy of rows a..b (1-based, inclusive; negatives from the end) */
static int m_rows(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  if (t->ndim == 0) return luaL_error(L, "rows: cannot slice a scalar tensor");
  lua_Integer a = luaL_checkinteger(L, 2);
  lua_Integer b = luaL_optinteger(L, 3, a);
  int64_t n = t->shape[0];
  if (a < 0) a += n + 1;
  if (b < 0) b += n + 1;
  if (a < 1 || a > n + 1 || b < a - 1 || b > n)
    return luaL_error(L, "rows: range %d..%d out of bounds for %d rows (shape %s)", (int)luaL_checkinteger(L, 2),
                      (int)luaL_optinteger(L, 3, luaL_checkinteger(L, 2)), (int)n, mm_lua_shapestr(t));
  int64_t shape[MM_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] = b - a + 1;
  mm_tensor *o = mm_lua_newtensor(L, t->ndim, shape);
  int64_t rs = row_size(t);
  if (o->numel) memcpy(o->data, t->data + (a - 1) * rs, (size_t)o->numel * sizeof(float));
  return 1;
}

static int m_fill(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  float v = (float)luaL_checknumber(L, 2);
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
  lua_settop(L, 1);
  return 1;
}

/* ======================================================================= */
/* arithmetic                                                              */
/* ======================================================================= */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };
static const char *op_names[] = {"+", "-", "*", "/"};

static inline float apply(int op, float a, float b) {
  switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
  }
}

static int arith(lua_State *L, int op) {
  mm_tensor *a = mm_lua_testtensor(L, 1), *b = mm_lua_testtensor(L, 2);
  if (a && !b) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      return luaL_error(L, "'%s': tensor %s %s is not supported", op_names[op], op_names[op], luaL_typename(L, 2));
    float s = (float)lua_tonumber(L, 2);
    mm_tensor *o = mm_lua_newtensor_like(L, a);
    for (int64_t i = 0; i < a->numel; i++) o->data[i] = apply(op, a->data[i], s);
    return 1;
  }
  if (b && !a) {
    if (lua_type(L, 1) != LUA_TNUMBER)
      return luaL_error(L, "'%s': %s %s tensor is not supported", op_names[op], luaL_typename(L, 1), op_names[op]);
    float s = (float)lua_tonumber(L, 1);
    mm_tensor *o = mm_lua_newtensor_like(L, b);
    for (int64_t i = 0; i < b->numel; i++) o->data[i] = apply(op, s, b->data[i]);
    return 1;
  }
  if (!a->data || !b->data) return luaL_error(L, "'%s': tensor was freed", op_names[op]);
  if (mm_same_shape(a, b)) {
    mm_tensor *o = mm_lua_newtensor_like(L, a);
    for (int64_t i = 0; i < a->numel; i++) o->data[i] = apply(op, a->data[i], b->data[i]);
    return 1;
  }
  /* row-vector broadcast: [.., m] op [m] or [1, m] (either side) */
  const mm_tensor *big = a, *vec = b;
  int swapped = 0;
  int64_t last = a->ndim ? a->shape[a->ndim - 1] : 1;
  int vec_ok = (b->ndim == 1 || (b->ndim == 2 && b->shape[0] == 1)) && b->numel == last && a->ndim >= 1;
  if (!vec_ok) {
    last = b->ndim ? b->shape[b->ndim - 1] : 1;
    vec_ok = (a->ndim == 1 || (a->ndim == 2 && a->shape[0] == 1)) && a->numel == last && b->ndim >= 1;
    big = b;
    vec = a;
    swapped = 1;
  }
  if (!vec_ok || last == 0)
    return luaL_error(L, "'%s': shapes %s and %s do not match (same shape, a scalar, or a row vector of the last dimension)",
                      op_names[op], mm_lua_shapestr(a), mm_lua_shapestr(b));
  mm_tensor *o = mm_lua_newtensor_like(L, big);
  int64_t rows = big->numel / last;
  for (int64_t r = 0; r < rows; r++) {
    const float *x = big->data + r * last;
    float *y = o->data + r * last;
    for (int64_t j = 0; j < last; j++) y[j] = swapped ? apply(op, vec->data[j], x[j]) : apply(op, x[j], vec->data[j]);
  }
  return 1;
}

static int t_add(lua_State *L) { return arith(L, OP_ADD); }
static int t_sub(lua_State *L) { return arith(L, OP_SUB); }
static int t_mul(lua_State *L) { return arith(L, OP_MUL); }
static int t_div(lua_State *L) { return arith(L, OP_DIV); }

static int t_unm(lua_State *L) {
  mm_tensor *a = mm_lua_checktensor(L, 1, "self");
  mm_tensor *o = mm_lua_newtensor_like(L, a);
  for (int64_t i = 0; i < a->numel; i++) o->data[i] = -a->data[i];
  return 1;
}

static int t_eq(lua_State *L) {
  mm_tensor *a = mm_lua_testtensor(L, 1), *b = mm_lua_testtensor(L, 2);
  int eq = a && b && a->data && b->data && mm_same_shape(a, b) &&
           memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0;
  lua_pushboolean(L, eq);
  return 1;
}

/* t:matmul(u): [n,k]x[k,m], [n,k]x[k], [k]x[k,m], [k]x[k] */
static int m_matmul(lua_State *L) {
  mm_tensor *a = mm_lua_checktensor(L, 1, "self");
  mm_tensor *b = mm_lua_totensor(L, 2, "other");
  if (a->ndim < 1 || a->ndim > 2 || b->ndim < 1 || b->ndim > 2)
    return luaL_error(L, "matmul: 1-d or 2-d tensors expected, got shapes %s and %s", mm_lua_shapestr(a),
                      mm_lua_shapestr(b));
  int64_t n = a->ndim == 2 ? a->shape[0] : 1, k = a->shape[a->ndim - 1];
  int64_t kb = b->shape[0], m = b->ndim == 2 ? b->shape[1] : 1;
  if (k != kb)
    return luaL_error(L, "matmul: inner sizes differ: %s x %s (%d vs %d)", mm_lua_shapestr(a), mm_lua_shapestr(b),
                      (int)k, (int)kb);
  if (n > INT32_MAX || k > INT32_MAX || m > INT32_MAX) return luaL_error(L, "matmul: sizes too large for BLAS");
  int64_t shape[2];
  int nd = 0;
  if (a->ndim == 2) shape[nd++] = n;
  if (b->ndim == 2) shape[nd++] = m;
  mm_tensor *o = mm_lua_newtensor_uninit(L, nd, shape);
  mm_sgemm(0, 0, n, m, k, 1.0f, a->data, k, b->data, m, 0.0f, o->data, m); /* writes every element (zeros if k = 0) */
  return 1;
}

static int overlaps(const mm_tensor *x, const mm_tensor *y) {
  if (!x->numel || !y->numel) return 0;
  return x->data < y->data + y->numel && y->data < x->data + x->numel;
}

/* c:addmm(a, b [, {ta=, tb=, alpha=1, beta=1}]) -> c, in place:
 * c = beta*c + alpha*op(a).op(b), op = transpose when ta / tb */
static int m_addmm(lua_State *L) {
  mm_tensor *c = mm_lua_checktensor(L, 1, "self");
  mm_tensor *a = mm_lua_checktensor(L, 2, "a");
  mm_tensor *b = mm_lua_checktensor(L, 3, "b");
  int ta, tb;
  lua_Number alpha, beta;
  const mm_lua_opt opts[] = {MM_OPT_BOOL("ta", &ta, 0), MM_OPT_BOOL("tb", &tb, 0), MM_OPT_NUM("alpha", &alpha, 1.0),
                             MM_OPT_NUM("beta", &beta, 1.0), MM_OPT_END};
  mm_lua_readopts(L, 4, "addmm", opts);
  if (a->ndim != 2 || b->ndim != 2 || c->ndim != 2)
    return luaL_error(L, "addmm: 2-d tensors expected, got self %s, a %s, b %s", mm_lua_shapestr(c),
                      mm_lua_shapestr(a), mm_lua_shapestr(b));
  int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
  int64_t kb = tb ? b->shape[1] : b->shape[0], n = tb ? b->shape[0] : b->shape[1];
  if (k != kb || c->shape[0] != m || c->shape[1] != n) {
    return luaL_error(L, "addmm: shapes do not fit: self %s = op(a %s%s) x op(b %s%s)", mm_lua_shapestr(c),
                      mm_lua_shapestr(a), ta ? ", transposed" : "", mm_lua_shapestr(b), tb ? ", transposed" : "");
  }
  if (overlaps(c, a) || overlaps(c, b)) return luaL_error(L, "addmm: self must not share memory with a or b");
  mm_sgemm(ta, tb, m, n, k, (float)alpha, a->data, a->shape[1], b->data, b->shape[1], (float)beta, c->data, n);
  lua_settop(L, 1);
  return 1;
}

/* ======================================================================= */
/* reductions                                                              */
/* ======================================================================= */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN };

/* reduce over dimension d (0-based): view as [outer, n, inner] */
static int reduce(lua_State *L, int kind, const char *name) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  if (lua_isnoneornil(L, 2)) {
    if (t->numel == 0 && kind != R_SUM)
      return luaL_error(L, "%s: tensor of shape %s is empty", name, mm_lua_shapestr(t));
    double acc = 0;
    int64_t best = 0;
    for (int64_t i = 0; i < t->numel; i++) {
      float v = t->data[i];
      switch (kind) {
        case R_SUM: case R_MEAN: acc += v; break;
        case R_MAX: case R_ARGMAX: if (v > t->data[best] || (isnan(v) && !isnan(t->data[best]))) best = i; break;
        default: if (v < t->data[best] || (isnan(v) && !isnan(t->data[best]))) best = i; break;
      }
    }
    switch (kind) {
      case R_SUM: lua_pushnumber(L, (float)acc); return 1;
      case R_MEAN: lua_pushnumber(L, (float)(acc / (double)t->numel)); return 1;
      case R_MAX: case R_MIN:
        lua_pushnumber(L, t->data[best]);
        lua_pushinteger(L, best + 1);
        return 2;
      default: lua_pushinteger(L, best + 1); return 1;
    }
  }
  lua_Integer d = luaL_checkinteger(L, 2);
  if (d < 0) d += t->ndim + 1;
  if (d < 1 || d > t->ndim)
    return luaL_argerror(L, 2, lua_pushfstring(L, "dimension %d out of range for shape %s", (int)luaL_checkinteger(L, 2),
                                               mm_lua_shapestr(t)));
  int dd = (int)d - 1;
  int64_t n = t->shape[dd], outer = 1, inner = 1;
  for (int i = 0; i < dd; i++) outer *= t->shape[i];
  for (int i = dd + 1; i < t->ndim; i++) inner *= t->shape[i];
  if (n == 0 && kind != R_SUM) return luaL_error(L, "%s: dimension %d of shape %s is empty", name, (int)d, mm_lua_shapestr(t));
  int64_t shape[MM_MAXDIM];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dd) shape[nd++] = t->shape[i];
  mm_tensor *o = mm_lua_newtensor(L, nd, shape);
  mm_tensor *ix = NULL;
  if (kind == R_MAX || kind == R_MIN) ix = mm_lua_newtensor(L, nd, shape);
  for (int64_t a = 0; a < outer; a++) {
    for (int64_t c = 0; c < inner; c++) {
      const float *p = t->data + a * n * inner + c;
      double acc = 0;
      int64_t best = 0;
      for (int64_t j = 0; j < n; j++) {
        float v = p[j * inner];
        if (kind == R_SUM || kind == R_MEAN) acc += v;
        else if (kind == R_MAX || kind == R_ARGMAX) { if (v > p[best * inner] || (isnan(v) && !isnan(p[best * inner]))) best = j; }
        else if (v < p[best * inner] || (isnan(v) && !isnan(p[best * inner]))) best = j;
      }
      float *out = o->data + a * inner + c;
      switch (kind) {
        case R_SUM: *out = (float)acc; break;
        case R_MEAN: *out = (float)(acc / (double)n); break;
        case R_MAX: case R_MIN: *out = p[best * inner]; ix->data[a * inner + c] = (float)(best + 1); break;
        default: *out = (float)(best + 1); break;
      }
    }
  }
  return ix ? 2 : 1;
}

static int m_sum(lua_State *L) { return reduce(L, R_SUM, "sum"); }
static int m_mean(lua_State *L) { return reduce(L, R_MEAN, "mean"); }
static int m_max(lua_State *L) { return reduce(L, R_MAX, "max"); }
static int m_min(lua_State *L) { return reduce(L, R_MIN, "min"); }
static int m_argmax(lua_State *L) { return reduce(L, R_ARGMAX, "argmax"); }
static int m_argmin(lua_State *L) { return reduce(L, R_ARGMIN, "argmin"); }

/* ======================================================================= */
/* elementwise maps                                                        */
/* ======================================================================= */

#define MAP(fname, expr)                                            \
  static int fname(lua_State *L) {                                  \
    mm_tensor *t = mm_lua_checktensor(L, 1, "self");                \
    mm_tensor *o = mm_lua_newtensor_like(L, t);                     \
    for (int64_t i = 0; i < t->numel; i++) {                        \
      float x = t->data[i];                                         \
      o->data[i] = (expr);                                          \
    }                                                               \
    return 1;                                                       \
  }

MAP(m_exp, expf(x))
MAP(m_log, logf(x))
MAP(m_tanh, tanhf(x))
MAP(m_relu, x > 0.0f ? x : 0.0f)
MAP(m_sigmoid, x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x)))
MAP(m_abs, fabsf(x))
MAP(m_sqrt, sqrtf(x))

static int m_pow(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  float p = (float)luaL_checknumber(L, 2);
  mm_tensor *o = mm_lua_newtensor_like(L, t);
  for (int64_t i = 0; i < t->numel; i++) o->data[i] = powf(t->data[i], p);
  return 1;
}

/* mm.allclose(a, b[, tol]) : |a - b| <= tol + tol*|b| elementwise (tol default 1e-5);
 * second result: the largest absolute difference */
static int l_allclose(lua_State *L) {
  mm_tensor *a = mm_lua_totensor(L, 1, "a");
  mm_tensor *b = mm_lua_totensor(L, 2, "b");
  double tol = luaL_optnumber(L, 3, 1e-5);
  double atol = luaL_optnumber(L, 4, tol);
  if (!mm_same_shape(a, b) && a->numel != b->numel) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "shapes differ: %s vs %s", mm_lua_shapestr(a), mm_lua_shapestr(b));
    return 2;
  }
  if (!mm_same_shape(a, b)) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "shapes differ: %s vs %s", mm_lua_shapestr(a), mm_lua_shapestr(b));
    return 2;
  }
  double worst = 0;
  int ok = 1;
  for (int64_t i = 0; i < a->numel; i++) {
    double x = a->data[i], y = b->data[i];
    double diff = fabs(x - y);
    if (isnan(x) || isnan(y)) {
      ok = 0;
      worst = NAN;
      continue;
    }
    if (x == y) continue; /* equal infinities */
    if (!(diff <= atol + tol * fabs(y))) ok = 0;
    if (diff > worst) worst = diff;
  }
  lua_pushboolean(L, ok);
  lua_pushnumber(L, worst);
  return 2;
}

/* ======================================================================= */
/* printing                                                                */
/* ======================================================================= */

static void fmt_num(luaL_Buffer *b, float v, int width, int prec, int sci) {
  char s[48];
  if (sci)
    snprintf(s, sizeof s, "%*.*e", width, prec, (double)v);
  else
    snprintf(s, sizeof s, "%*.*f", width, prec, (double)v);
  luaL_addstring(b, s);
}

#define PRINT_EDGE 3   /* items shown at each end of a long dimension */
#define PRINT_LIMIT 1000

static void print_rec(luaL_Buffer *b, const mm_tensor *t, const float *p, int d, int64_t stride, int width, int prec,
                      int sci, int trunc) {
  int64_t n = t->shape[d];
  int64_t inner = n ? stride / n : 0;
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (trunc && n > 2 * PRINT_EDGE && i == PRINT_EDGE) {
      luaL_addstring(b, d == t->ndim - 1 ? " ..." : "\n");
      for (int k = 0; d != t->ndim - 1 && k <= d; k++) luaL_addchar(b, ' ');
      if (d != t->ndim - 1) luaL_addstring(b, "...,\n");
      for (int k = 0; d != t->ndim - 1 && k <= d; k++) luaL_addchar(b, ' ');
      i = n - PRINT_EDGE;
      if (d == t->ndim - 1) luaL_addchar(b, ',');
    }
    if (d == t->ndim - 1) {
      if (i) luaL_addchar(b, ' ');
      fmt_num(b, p[i], width, prec, sci);
      if (i + 1 < n) luaL_addchar(b, ',');
    } else {
      if (i) {
        luaL_addstring(b, ",\n");
        for (int k = 0; k <= d; k++) luaL_addchar(b, ' ');
      }
      print_rec(b, t, p + i * inner, d + 1, inner, width, prec, sci, trunc);
    }
  }
  luaL_addchar(b, ']');
}

static int t_tostring(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  double amax = 0, amin = INFINITY;
  int allint = 1, nonfinite = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    float v = t->data[i];
    if (!isfinite(v)) { nonfinite = 1; continue; }
    double a = fabs(v);
    if (a > amax) amax = a;
    if (a > 0 && a < amin) amin = a;
    if (v != floorf(v)) allint = 0;
  }
  int sci = (amax >= 1e6) || (amin < 1e-4 && amin > 0 && !allint);
  int prec = allint ? 0 : 4;
  int width;
  if (sci) width = 11;
  else {
    int intdigits = amax >= 1 ? (int)floor(log10(amax)) + 1 : 1;
    width = intdigits + (prec ? prec + 1 : 0) + 1;
    if (nonfinite && width < 4) width = 4;
  }
  if (t->ndim == 0) {
    fmt_num(&b, t->data[0], 0, prec, sci);
  } else {
    print_rec(&b, t, t->data, 0, t->numel, width, prec, sci, t->numel > PRINT_LIMIT);
  }
  luaL_addstring(&b, "\n[mmfuse.Tensor of shape ");
  luaL_addstring(&b, mm_lua_shapestr(t));
  luaL_addstring(&b, "]");
  luaL_pushresult(&b);
  return 1;
}

static int t_close(lua_State *L) { return tensor_gc(L); }

/* ======================================================================= */
/* registration                                                            */
/* ======================================================================= */

static const luaL_Reg tensor_methods[] = {
    {"shape", m_shape},       {"size", m_size},           {"numel", m_numel},     {"dim", m_dim},
    {"get", m_get},           {"set", m_set},             {"totable", m_totable}, {"item", m_item},
    {"clone", m_clone},       {"reshape", m_reshape},     {"view", m_reshape},    {"transpose", m_transpose},
    {"rows", m_rows},         {"fill", m_fill},           {"matmul", m_matmul},   {"addmm", m_addmm},     {"sum", m_sum},
    {"mean", m_mean},         {"max", m_max},             {"min", m_min},         {"argmax", m_argmax},
    {"argmin", m_argmin},     {"exp", m_exp},             {"log", m_log},         {"tanh", m_tanh},
    {"relu", m_relu},         {"sigmoid", m_sigmoid},     {"abs", m_abs},         {"sqrt", m_sqrt},
    {"pow", m_pow},           {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {{"__gc", tensor_gc},     {"__close", t_close}, {"__index", t_index},
                                       {"__newindex", t_newindex}, {"__len", t_len},   {"__add", t_add},
                                       {"__sub", t_sub},         {"__mul", t_mul},     {"__div", t_div},
                                       {"__unm", t_unm},         {"__eq", t_eq},       {"__tostring", t_tostring},
                                       {NULL, NULL}};

static const luaL_Reg tensor_funcs[] = {{"tensor", l_tensor}, {"zeros", l_zeros},   {"ones", l_ones},
                                        {"full", l_full},     {"arange", l_arange}, {"rand", l_rand},
                                        {"randn", l_randn},   {"is_tensor", l_istensor}, {"allclose", l_allclose},
                                        {NULL, NULL}};

void mm_lua_open_tensor(lua_State *L) {
  luaL_newmetatable(L, MM_TENSOR_MT);
  luaL_setfuncs(L, tensor_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, tensor_methods, 0);
  lua_setfield(L, -2, "__methods");
  lua_pushliteral(L, "mmfuse.Tensor");
  lua_setfield(L, -2, "__name");
  /* expose the method table so Lua code can add methods: mm.Tensor */
  lua_getfield(L, -1, "__methods");
  lua_setfield(L, -3, "Tensor");
  lua_pop(L, 1);
  luaL_setfuncs(L, tensor_funcs, 0);
}
