/* l_nn_args.c - the argument readers of the nn binding (l_nn.h): tensors or
 * nested tables, integer lists, class labels, presence masks, scratch. */
#include <math.h>
#include <string.h>

#include "l_nn.h"

mm_tensor *nn_tensor(lua_State *L, int idx, const char *name) { return mm_lua_totensor(L, idx, name); }

mm_tensor *nn_opt_tensor(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return mm_lua_totensor(L, idx, name);
}

void *nn_scratch(lua_State *L, size_t bytes) {
  void *p = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
  memset(p, 0, bytes ? bytes : 1);
  return p;
}

float *nn_fscratch(lua_State *L, int64_t n) { return nn_scratch(L, (size_t)(n > 0 ? n : 1) * sizeof(float)); }

int nn_grad_like(lua_State *L, const mm_tensor *t, mm_tensor **g) {
  *g = t ? mm_lua_newtensor_like(L, t) : NULL;
  return t ? lua_gettop(L) : 0;
}

int nn_return(lua_State *L, int n, const int *idx) {
  for (int i = 0; i < n; i++) {
    if (idx[i] == 0)
      lua_pushnil(L);
    else
      lua_pushvalue(L, idx[i]);
  }
  return n;
}

float nn_grad_scalar(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return 1.0f;
  if (lua_type(L, idx) == LUA_TNUMBER) return (float)lua_tonumber(L, idx);
  mm_tensor *t = mm_lua_testtensor(L, idx);
  if (t && t->numel == 1) return t->data[0];
  return (float)luaL_error(L, "%s: grad_out must be a number or a one-element tensor, got %s%s", fn,
                           luaL_typename(L, idx), t ? lua_pushfstring(L, " of shape %s", SH(t)) : "");
}

/* one integer-valued number */
static int64_t to_index(lua_State *L, double v, const char *fn, const char *name, int64_t pos) {
  if (!(v == floor(v)) || fabs(v) > 9.0e15)
    luaL_error(L, "%s: %s[%d] = %f is not an integer", fn, name, (int)pos, v);
  return (int64_t)v;
}

int64_t *nn_int_list(lua_State *L, int idx, const char *fn, const char *name, int64_t *n) {
  idx = lua_absindex(L, idx);
  mm_tensor *t = mm_lua_testtensor(L, idx);
  if (t) {
    int64_t *a = nn_scratch(L, (size_t)(t->numel > 0 ? t->numel : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < t->numel; i++) a[i] = to_index(L, t->data[i], fn, name, i + 1);
    *n = t->numel;
    return a;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be a table of integers or a tensor, got %s", fn, name, luaL_typename(L, idx));
  lua_Integer len = luaL_len(L, idx);
  int64_t *a = nn_scratch(L, (size_t)(len > 0 ? len : 1) * sizeof(int64_t));
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, idx, i);
    int ty = lua_type(L, -1);
    if (ty != LUA_TNUMBER)
      luaL_error(L, "%s: %s[%d] is %s, expected an integer", fn, name, (int)i, luaL_typename(L, -1));
    a[i - 1] = to_index(L, lua_tonumber(L, -1), fn, name, i);
    lua_pop(L, 1);
  }
  *n = len;
  return a;
}

int64_t *nn_labels(lua_State *L, int idx, int64_t n, int64_t c, const char *fn, const char *what,
                             const mm_tensor *x) {
  if (lua_isnoneornil(L, idx)) luaL_error(L, "%s: labels missing (a table or tensor of %d class indices)", fn, (int)n);
  int64_t len;
  int64_t *a = nn_int_list(L, idx, fn, "labels", &len);
  if (len != n)
    luaL_error(L, "%s: labels has %d entries but %s is %s (%d rows)", fn, (int)len, what, SH(x), (int)n);
  for (int64_t i = 0; i < n; i++) {
    if (c > 0 && (a[i] < 1 || a[i] > c))
      luaL_error(L, "%s: labels[%d] = %d is out of range 1..%d (%s is %s)", fn, (int)i + 1, (int)a[i], (int)c, what,
                 SH(x));
    a[i] -= 1;
  }
  return a;
}

uint8_t *nn_mask(lua_State *L, int idx, int64_t rows, int64_t cols, const char *fn, const char *name,
                           const char *what, const mm_tensor *x) {
  idx = lua_absindex(L, idx);
  int64_t total = rows * (cols > 0 ? cols : 1);
  mm_tensor *t = mm_lua_testtensor(L, idx);
  if (t) {
    int ok = cols > 0 ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols)
                      : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
      if (cols > 0)
        luaL_error(L, "%s: %s has shape %s, expected %dx%d (%s is %s)", fn, name, SH(t), (int)rows, (int)cols, what,
                   SH(x));
      luaL_error(L, "%s: %s has shape %s, expected %d (%s is %s)", fn, name, SH(t), (int)rows, what, SH(x));
    }
    uint8_t *m = nn_scratch(L, (size_t)total);
    for (int64_t i = 0; i < total; i++) m[i] = t->data[i] != 0.0f;
    return m;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be a tensor or a table, got %s", fn, name, luaL_typename(L, idx));
  uint8_t *m = nn_scratch(L, (size_t)total);
  lua_Integer len = luaL_len(L, idx);
  if (len != rows) luaL_error(L, "%s: %s has %d rows, expected %d (%s is %s)", fn, name, (int)len, (int)rows, what, SH(x));
  for (int64_t i = 0; i < rows; i++) {
    lua_geti(L, idx, i + 1);
    int top = lua_gettop(L);
    int64_t nc = cols > 0 ? cols : 1;
    if (cols > 0) {
      if (!lua_istable(L, top))
        luaL_error(L, "%s: %s[%d] is %s, expected a table of %d entries", fn, name, (int)i + 1, luaL_typename(L, top),
                   (int)cols);
      if (luaL_len(L, top) != cols)
        luaL_error(L, "%s: %s[%d] has %d entries, expected %d (%s is %s)", fn, name, (int)i + 1,
                   (int)luaL_len(L, top), (int)cols, what, SH(x));
    }
    for (int64_t j = 0; j < nc; j++) {
      if (cols > 0) lua_geti(L, top, j + 1);
      else lua_pushvalue(L, top);
      int ty = lua_type(L, -1);
      if (ty == LUA_TBOOLEAN)
        m[i * nc + j] = (uint8_t)lua_toboolean(L, -1);
      else if (ty == LUA_TNUMBER)
        m[i * nc + j] = lua_tonumber(L, -1) != 0.0;
      else
        luaL_error(L, "%s: %s entry (%d, %d) is %s, expected a boolean or a number", fn, name, (int)i + 1, (int)j + 1,
                   luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return m;
}

void nn_same_shape(lua_State *L, const mm_tensor *a, const mm_tensor *b, const char *fn, const char *na,
                       const char *nb) {
  if (!mm_same_shape(a, b)) luaL_error(L, "%s: %s has shape %s but %s has shape %s", fn, nb, SH(b), na, SH(a));
}
