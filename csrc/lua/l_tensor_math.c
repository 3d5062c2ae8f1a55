/* l_tensor_math.c - mm.Tensor's arithmetic (core/tensor_ops.h, core/gemm.h):
 * the operators, matmul / addmm, reductions, elementwise maps, mm.allclose.
 * Registered by mm_lua_open_tensor (l_tensor.c) into the same metatable. */
#include <string.h>

#include "../core/gemm.h"
#include "../core/tensor_ops.h"
#include "mm_lua.h"

/* ---- operators -------------------------------------------------------------------- */

/* t op u, t op number, number op t */
static int arith(lua_State *L, mm_binop op) {
  mm_tensor *a = mm_lua_testtensor(L, 1), *b = mm_lua_testtensor(L, 2);
  const char *sym = mm_binop_symbol(op);
  if (!b || !a) {
    mm_tensor *t = a ? a : b;
    int scalar = a ? 2 : 1;
    if (lua_type(L, scalar) != LUA_TNUMBER)
      return a ? luaL_error(L, "'%s': tensor %s %s is not supported", sym, sym, luaL_typename(L, 2))
               : luaL_error(L, "'%s': %s %s tensor is not supported", sym, luaL_typename(L, 1), sym);
    if (!t->data) return luaL_error(L, "'%s': tensor was freed", sym);
    mm_tensor *y = mm_lua_newtensor_like(L, t);
    mm_tensor_op_scalar(op, t, (float)lua_tonumber(L, scalar), scalar == 1, y);
    return 1;
  }
  if (!a->data || !b->data) return luaL_error(L, "'%s': tensor was freed", sym);
  const mm_tensor *like;
  mm_err e;
  if (mm_tensor_op_check(op, a, b, &like, &e)) return mm_lua_raise(L, &e);
  mm_tensor *y = mm_lua_newtensor_like(L, like);
  mm_tensor_op(op, a, b, y);
  return 1;
}

static int t_add(lua_State *L) { return arith(L, MM_OP_ADD); }
static int t_sub(lua_State *L) { return arith(L, MM_OP_SUB); }
static int t_mul(lua_State *L) { return arith(L, MM_OP_MUL); }
static int t_div(lua_State *L) { return arith(L, MM_OP_DIV); }

static int t_eq(lua_State *L) {
  mm_tensor *a = mm_lua_testtensor(L, 1), *b = mm_lua_testtensor(L, 2);
  int eq = a && b && a->data && b->data && mm_same_shape(a, b) &&
           memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0;
  lua_pushboolean(L, eq);
  return 1;
}

/* ---- matrix products -------------------------------------------------------------- */

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

/* ---- reductions ------------------------------------------------------------------- */

/* t:sum() -> number; t:max() -> value, index; t:argmax() -> index;
 * t:sum(d) -> tensor; t:max(d) -> values, indices (1-based; d < 0 counts from the end) */
static int reduce(lua_State *L, mm_reduce r) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  mm_err e;
  if (lua_isnoneornil(L, 2)) {
    float v;
    int64_t i;
    if (mm_tensor_reduce_all(r, t, &v, &i, &e)) return mm_lua_raise(L, &e);
    if (r == MM_RED_ARGMAX || r == MM_RED_ARGMIN) {
      lua_pushinteger(L, i + 1);
      return 1;
    }
    lua_pushnumber(L, v);
    if (r == MM_RED_SUM || r == MM_RED_MEAN) return 1;
    lua_pushinteger(L, i + 1);
    return 2;
  }
  lua_Integer d = luaL_checkinteger(L, 2);
  if (d < 0) d += t->ndim + 1;
  if (d < 1 || d > t->ndim)
    return luaL_argerror(L, 2, lua_pushfstring(L, "dimension %d out of range for shape %s", (int)luaL_checkinteger(L, 2),
                                               mm_lua_shapestr(t)));
  int64_t shape[MM_MAXDIM];
  int nd;
  if (mm_tensor_reduce_shape(r, t, (int)d - 1, &nd, shape, &e)) return mm_lua_raise(L, &e);
  mm_tensor *o = mm_lua_newtensor(L, nd, shape);
  mm_tensor *ix = r == MM_RED_MAX || r == MM_RED_MIN ? mm_lua_newtensor(L, nd, shape) : NULL;
  mm_tensor_reduce_dim(r, t, (int)d - 1, 1, o, ix);
  return ix ? 2 : 1;
}

static int m_sum(lua_State *L) { return reduce(L, MM_RED_SUM); }
static int m_mean(lua_State *L) { return reduce(L, MM_RED_MEAN); }
static int m_max(lua_State *L) { return reduce(L, MM_RED_MAX); }
static int m_min(lua_State *L) { return reduce(L, MM_RED_MIN); }
static int m_argmax(lua_State *L) { return reduce(L, MM_RED_ARGMAX); }
static int m_argmin(lua_State *L) { return reduce(L, MM_RED_ARGMIN); }

/* ---- elementwise maps ------------------------------------------------------------- */

static int map(lua_State *L, mm_map f) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  mm_tensor *y = mm_lua_newtensor_like(L, t);
  mm_tensor_map(f, t, y);
  return 1;
}

static int t_unm(lua_State *L) { return map(L, MM_MAP_NEG); }
static int m_exp(lua_State *L) { return map(L, MM_MAP_EXP); }
static int m_log(lua_State *L) { return map(L, MM_MAP_LOG); }
static int m_tanh(lua_State *L) { return map(L, MM_MAP_TANH); }
static int m_relu(lua_State *L) { return map(L, MM_MAP_RELU); }
static int m_sigmoid(lua_State *L) { return map(L, MM_MAP_SIGMOID); }
static int m_abs(lua_State *L) { return map(L, MM_MAP_ABS); }
static int m_sqrt(lua_State *L) { return map(L, MM_MAP_SQRT); }

static int m_pow(lua_State *L) {
  mm_tensor *t = mm_lua_checktensor(L, 1, "self");
  float p = (float)luaL_checknumber(L, 2);
  mm_tensor *y = mm_lua_newtensor_like(L, t);
  mm_tensor_pow(t, p, y);
  return 1;
}

/* mm.allclose(a, b[, rtol[, atol]]) -> ok, the largest absolute difference
 * (or false, "shapes differ: ...") ; |a - b| <= atol + rtol*|b| elementwise,
 * rtol default 1e-5, atol default rtol */
static int l_allclose(lua_State *L) {
  mm_tensor *a = mm_lua_totensor(L, 1, "a");
  mm_tensor *b = mm_lua_totensor(L, 2, "b");
  double rtol = luaL_optnumber(L, 3, 1e-5);
  double atol = luaL_optnumber(L, 4, rtol);
  if (!mm_same_shape(a, b)) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "shapes differ: %s vs %s", mm_lua_shapestr(a), mm_lua_shapestr(b));
    return 2;
  }
  double worst;
  lua_pushboolean(L, mm_tensor_allclose(a, b, rtol, atol, &worst));
  lua_pushnumber(L, worst);
  return 2;
}

/* ---- registration (by mm_lua_open_tensor) ------------------------------------------ */

const luaL_Reg mm_lua_tensor_math_meta[] = {{"__add", t_add}, {"__sub", t_sub}, {"__mul", t_mul}, {"__div", t_div},
                                            {"__unm", t_unm}, {"__eq", t_eq},   {NULL, NULL}};

const luaL_Reg mm_lua_tensor_math_methods[] = {
    {"matmul", m_matmul}, {"addmm", m_addmm}, {"sum", m_sum},       {"mean", m_mean},   {"max", m_max},
    {"min", m_min},       {"argmax", m_argmax}, {"argmin", m_argmin}, {"exp", m_exp},     {"log", m_log},
    {"tanh", m_tanh},     {"relu", m_relu},   {"sigmoid", m_sigmoid}, {"abs", m_abs},   {"sqrt", m_sqrt},
    {"pow", m_pow},       {NULL, NULL}};

const luaL_Reg mm_lua_tensor_math_funcs[] = {{"allclose", l_allclose}, {NULL, NULL}};
