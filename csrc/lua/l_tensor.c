/* l_tensor.c - the Lua face of mm_tensor: the tensor helpers of mm_lua.h
 * (check, push, convert from nested tables), constructors, shape, indexing,
 * copies, printing. The arithmetic is in l_tensor_math.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/rng.h"
#include "../core/tensor_ops.h"
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

/* a shape at idx: a table {2, 3} or integers idx..top; sizes below min
 * (0: none negative) are argument errors */
static int read_shape(lua_State *L, int idx, int64_t *shape, lua_Integer min) {
  int top = lua_gettop(L), n = 0;
  int table = lua_istable(L, idx) && !mm_lua_testtensor(L, idx);
  int count = table ? (int)luaL_len(L, idx) : top - idx + 1;
  if (count > MM_MAXDIM)
    luaL_argerror(L, idx, lua_pushfstring(L, "shape has %d dimensions (at most %d)", count, MM_MAXDIM));
  for (; n < count; n++) {
    lua_Integer v;
    if (table) {
      int ok;
      lua_geti(L, idx, n + 1);
      v = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "shape entry %d is not an integer", n + 1));
      lua_pop(L, 1);
    } else {
      v = luaL_checkinteger(L, idx + n);
    }
    if (v < min) luaL_argerror(L, table ? idx : idx + n, lua_pushfstring(L, "negative size %I", v));
    shape[n] = v;
  }
  return n;
}

int mm_lua_checkshape(lua_State *L, int idx, int64_t *shape) { return read_shape(L, idx, shape, 0); }

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
  mm_tensor_fill(mm_lua_newtensor(L, n, shape), 1.0f);
  return 1;
}

/* mm.full(shape_table, value) */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  float v = (float)luaL_checknumber(L, 2);
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor_fill(mm_lua_newtensor(L, n, shape), v);
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
  mm_tensor_arange(mm_lua_newtensor(L, 1, &n), a, step);
  return 1;
}

/* a tensor of the shape at 1.. filled from the global generator (mm.seed) */
static int random_tensor(lua_State *L, void (*fill)(mm_rng *, float *, int64_t)) {
  int64_t shape[MM_MAXDIM];
  int n = mm_lua_checkshape(L, 1, shape);
  mm_tensor *t = mm_lua_newtensor(L, n, shape);
  fill(mm_rng_global(), t->data, t->numel);
  return 1;
}

static int l_rand(lua_State *L) { return random_tensor(L, mm_rng_fill_uniform); }
static int l_randn(lua_State *L) { return random_tensor(L, mm_rng_fill_normal); }

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
  int n = read_shape(L, 2, shape, LUA_MININTEGER); /* -1 and negative sizes: mm_tensor_reshape_check */
  mm_err e;
  if (mm_tensor_reshape_check(t, n, shape, &e)) return mm_lua_raise(L, &e);
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
  mm_tensor_transpose(t, (int)d1 - 1, (int)d2 - 1, o);
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
  mm_tensor_fill(t, (float)luaL_checknumber(L, 2));
  lua_settop(L, 1);
  return 1;
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
  int width, prec, sci;
  mm_tensor_print_style(t, &width, &prec, &sci);
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
    {"shape", m_shape},     {"size", m_size},       {"numel", m_numel},         {"dim", m_dim},
    {"get", m_get},         {"set", m_set},         {"totable", m_totable},     {"item", m_item},
    {"clone", m_clone},     {"reshape", m_reshape}, {"view", m_reshape},        {"transpose", m_transpose},
    {"rows", m_rows},       {"fill", m_fill},       {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {{"__gc", tensor_gc},         {"__close", t_close},
                                       {"__index", t_index},        {"__newindex", t_newindex},
                                       {"__len", t_len},            {"__tostring", t_tostring},
                                       {NULL, NULL}};

static const luaL_Reg tensor_funcs[] = {{"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones},
                                        {"full", l_full},     {"arange", l_arange}, {"rand", l_rand},
                                        {"randn", l_randn},   {"is_tensor", l_istensor}, {NULL, NULL}};

void mm_lua_open_tensor(lua_State *L) {
  luaL_newmetatable(L, MM_TENSOR_MT);
  luaL_setfuncs(L, tensor_meta, 0);
  luaL_setfuncs(L, mm_lua_tensor_math_meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, tensor_methods, 0);
  luaL_setfuncs(L, mm_lua_tensor_math_methods, 0);
  lua_setfield(L, -2, "__methods");
  lua_pushliteral(L, "mmfuse.Tensor");
  lua_setfield(L, -2, "__name");
  /* expose the method table so Lua code can add methods: mm.Tensor */
  lua_getfield(L, -1, "__methods");
  lua_setfield(L, -3, "Tensor");
  lua_pop(L, 1);
  luaL_setfuncs(L, tensor_funcs, 0);
  luaL_setfuncs(L, mm_lua_tensor_math_funcs, 0);
}
