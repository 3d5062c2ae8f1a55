/* l_nn.c - Lua binding of the layer kernels: core.nn.<op> and <op>_backward.
 *
 * Conventions (the Lua face lua/mmfuse/nn.lua documents them for users):
 *  - arguments follow torch.nn.functional, weights in PyTorch's layouts;
 *  - tensors may be given as tensors or nested Lua tables;
 *  - <op>_backward(<inputs>, grad_out[, opts]) returns the gradient of each
 *    differentiable input in order (parameter grads start from zero);
 *  - labels and ids are 1-based; C kernels get 0-based int64;
 *  - every bad argument is a Lua error "<op>: <argument> ... (shapes)";
 *  - scratch memory is Lua userdata, so an error never leaks it.
 */
#include <math.h>
#include <string.h>

#include "../nn/cnn_direct.h"
#include "../nn/nn.h"
#include "mm_lua.h"

/* ======================================================================= */
/* helpers                                                                 */
/* ======================================================================= */

#define SH(t) mm_lua_shapestr(t)

static mm_tensor *targ(lua_State *L, int idx, const char *name) { return mm_lua_totensor(L, idx, name); }

static mm_tensor *opt_targ(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return mm_lua_totensor(L, idx, name);
}

static void *scratch(lua_State *L, size_t bytes) {
  void *p = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
  memset(p, 0, bytes ? bytes : 1);
  return p;
}

static float *fscratch(lua_State *L, int64_t n) { return scratch(L, (size_t)(n > 0 ? n : 1) * sizeof(float)); }

/* push the values at the absolute indices idx[0..n) and return n */
static int ret(lua_State *L, int n, const int *idx) {
  for (int i = 0; i < n; i++) {
    if (idx[i] == 0)
      lua_pushnil(L);
    else
      lua_pushvalue(L, idx[i]);
  }
  return n;
}

static void check_opts(lua_State *L, int idx, const char *fn) {
  if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    luaL_error(L, "%s: options (argument #%d) must be a table, got %s", fn, idx, luaL_typename(L, idx));
}

static lua_Integer opt_int(lua_State *L, int idx, const char *fn, const char *key, lua_Integer def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok = 0;
    if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tointegerx(L, -1, &ok);
    if (!ok)
      luaL_error(L, "%s: option '%s' must be an integer, got %s", fn, key,
                 lua_type(L, -1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

static lua_Number opt_num(lua_State *L, int idx, const char *fn, const char *key, lua_Number def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, key);
  lua_Number v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: option '%s' must be a number, got %s", fn, key, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* -1 when absent */
static int opt_bool(lua_State *L, int idx, const char *fn, const char *key) {
  if (lua_isnoneornil(L, idx)) return -1;
  lua_getfield(L, idx, key);
  int v = -1;
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "%s: option '%s' must be a boolean, got %s", fn, key, luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* grad_out of a loss: a number (default 1) or a one-element tensor */
static float grad_scalar(lua_State *L, int idx, const char *fn) {
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

/* a 1-d list of integers: a Lua sequence or a tensor (any shape, read flat).
 * Pushes an int64 userdata; returns the array and its length in *n. */
static int64_t *int_list(lua_State *L, int idx, const char *fn, const char *name, int64_t *n) {
  idx = lua_absindex(L, idx);
  mm_tensor *t = mm_lua_testtensor(L, idx);
  if (t) {
    int64_t *a = scratch(L, (size_t)(t->numel > 0 ? t->numel : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < t->numel; i++) a[i] = to_index(L, t->data[i], fn, name, i + 1);
    *n = t->numel;
    return a;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be a table of integers or a tensor, got %s", fn, name, luaL_typename(L, idx));
  lua_Integer len = luaL_len(L, idx);
  int64_t *a = scratch(L, (size_t)(len > 0 ? len : 1) * sizeof(int64_t));
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

/* class labels 1..c for n rows -> 0-based int64 (pushed userdata) */
static int64_t *check_labels(lua_State *L, int idx, int64_t n, int64_t c, const char *fn, const char *what,
                             const mm_tensor *x) {
  if (lua_isnoneornil(L, idx)) luaL_error(L, "%s: labels missing (a table or tensor of %d class indices)", fn, (int)n);
  int64_t len;
  int64_t *a = int_list(L, idx, fn, "labels", &len);
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

/* presence mask: tensor of shape [rows] / [rows, cols], or a (nested) table of
 * booleans / numbers (non-zero = present). Pushes a uint8 userdata. */
static uint8_t *check_mask(lua_State *L, int idx, int64_t rows, int64_t cols, const char *fn, const char *name,
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
    uint8_t *m = scratch(L, (size_t)total);
    for (int64_t i = 0; i < total; i++) m[i] = t->data[i] != 0.0f;
    return m;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be a tensor or a table, got %s", fn, name, luaL_typename(L, idx));
  uint8_t *m = scratch(L, (size_t)total);
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

static void check_same(lua_State *L, const mm_tensor *a, const mm_tensor *b, const char *fn, const char *na,
                       const char *nb) {
  if (!mm_same_shape(a, b)) luaL_error(L, "%s: %s has shape %s but %s has shape %s", fn, nb, SH(b), na, SH(a));
}

/* ======================================================================= */
/* linear                                                                  */
/* ======================================================================= */

typedef struct {
  mm_tensor *x, *w, *b;
  int64_t n, in, out;
  int64_t yshape[MM_MAXDIM];
  int yndim;
} lin_args;

static void lin_prep(lua_State *L, lin_args *a, const char *fn) {
  a->x = targ(L, 1, "x");
  a->w = targ(L, 2, "weight");
  a->b = opt_targ(L, 3, "bias");
  if (a->w->ndim != 2) luaL_error(L, "%s: weight must be 2-d [out, in], got shape %s", fn, SH(a->w));
  if (a->x->ndim < 1) luaL_error(L, "%s: x must have at least 1 dimension, got shape %s", fn, SH(a->x));
  a->out = a->w->shape[0];
  a->in = a->w->shape[1];
  if (a->x->shape[a->x->ndim - 1] != a->in)
    luaL_error(L, "%s: x has shape %s but weight has shape %s (last dim of x must be %d)", fn, SH(a->x), SH(a->w),
               (int)a->in);
  if (a->b && !(a->b->ndim == 1 && a->b->shape[0] == a->out))
    luaL_error(L, "%s: bias has shape %s, expected %d (weight is %s)", fn, SH(a->b), (int)a->out, SH(a->w));
  a->n = 1;
  for (int i = 0; i < a->x->ndim - 1; i++) a->n *= a->x->shape[i];
  a->yndim = a->x->ndim;
  memcpy(a->yshape, a->x->shape, sizeof a->yshape);
  a->yshape[a->yndim - 1] = a->out;
}

static int l_linear(lua_State *L) {
  lin_args a;
  lin_prep(L, &a, "linear");
  mm_tensor *y = mm_lua_newtensor(L, a.yndim, a.yshape);
  mm_linear_forward(a.x->data, a.w->data, a.b ? a.b->data : NULL, y->data, a.n, a.in, a.out);
  return 1;
}

/* linear_backward(x, w, b, gy) -> gx, gw, gb (nil without bias) */
static int l_linear_backward(lua_State *L) {
  lin_args a;
  lin_prep(L, &a, "linear_backward");
  mm_tensor *gy = targ(L, 4, "grad_out");
  if (gy->ndim != a.yndim || memcmp(gy->shape, a.yshape, sizeof(int64_t) * (size_t)a.yndim) != 0)
    luaL_error(L, "linear_backward: grad_out has shape %s, expected the output shape (x %s, weight %s)", SH(gy),
               SH(a.x), SH(a.w));
  int idx[3] = {0, 0, 0};
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  idx[0] = lua_gettop(L);
  mm_tensor *gw = mm_lua_newtensor_like(L, a.w);
  idx[1] = lua_gettop(L);
  mm_tensor *gb = NULL;
  if (a.b) {
    gb = mm_lua_newtensor_like(L, a.b);
    idx[2] = lua_gettop(L);
  }
  mm_linear_backward(a.x->data, a.w->data, gy->data, gx->data, gw->data, gb ? gb->data : NULL, a.n, a.in, a.out);
  return ret(L, 3, idx);
}

/* ======================================================================= */
/* conv2d                                                                  */
/* ======================================================================= */

typedef struct {
  mm_tensor *x, *w, *b;
  mm_conv2d_shape s;
  int batched;
} conv_args;

static lua_Integer size_opt(lua_State *L, int idx, const char *fn, const char *key, const char *alias,
                            lua_Integer def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, key);
  int absent = lua_isnil(L, -1);
  lua_pop(L, 1);
  if (absent && alias) return opt_int(L, idx, fn, alias, def);
  return opt_int(L, idx, fn, key, def);
}

static void conv_prep(lua_State *L, conv_args *a, int optidx, const char *fn) {
  a->x = targ(L, 1, "x");
  a->w = targ(L, 2, "weight");
  a->b = opt_targ(L, 3, "bias");
  check_opts(L, optidx, fn);
  if (a->w->ndim != 4) luaL_error(L, "%s: weight must be 4-d [out, in/groups, kh, kw], got shape %s", fn, SH(a->w));
  if (a->x->ndim != 4 && a->x->ndim != 3)
    luaL_error(L, "%s: x must be 4-d [N, C, H, W] (or 3-d [C, H, W]), got shape %s", fn, SH(a->x));
  a->batched = a->x->ndim == 4;
  const int64_t *xs = a->x->shape + (a->batched ? 0 : -1);
  int64_t n = a->batched ? xs[0] : 1, c = xs[1], h = xs[2], w = xs[3];
  lua_Integer stride = size_opt(L, optidx, fn, "stride", NULL, 1);
  lua_Integer pad = size_opt(L, optidx, fn, "padding", "pad", 0);
  lua_Integer groups = size_opt(L, optidx, fn, "groups", NULL, 1);
  if (stride < 1) luaL_error(L, "%s: stride must be >= 1, got %d (x %s, weight %s)", fn, (int)stride, SH(a->x), SH(a->w));
  if (pad < 0) luaL_error(L, "%s: padding must be >= 0, got %d (x %s, weight %s)", fn, (int)pad, SH(a->x), SH(a->w));
  if (groups < 1) luaL_error(L, "%s: groups must be >= 1, got %d", fn, (int)groups);
  if (c % groups != 0 || a->w->shape[0] % groups != 0)
    luaL_error(L, "%s: groups = %d must divide the input channels (x %s) and the output channels (weight %s)", fn,
               (int)groups, SH(a->x), SH(a->w));
  if (a->w->shape[1] * groups != c)
    luaL_error(L, "%s: x has shape %s (%d channels) but weight has shape %s (expects %d channels with groups = %d)", fn,
               SH(a->x), (int)c, SH(a->w), (int)(a->w->shape[1] * groups), (int)groups);
  if (a->b && !(a->b->ndim == 1 && a->b->shape[0] == a->w->shape[0]))
    luaL_error(L, "%s: bias has shape %s, expected %d (weight is %s)", fn, SH(a->b), (int)a->w->shape[0], SH(a->w));
  mm_err e;
  if (mm_conv2d_shape_init(&a->s, n, c, h, w, a->w->shape[0], a->w->shape[2], a->w->shape[3], stride, pad, groups,
                           &e)) {
    mm_err_prefix(&e, "%s: x %s, weight %s: ", fn, SH(a->x), SH(a->w));
    mm_lua_raise(L, &e);
  }
}

/* the output tensor, not zeroed: the convolution writes all of it */
static mm_tensor *conv_out(lua_State *L, const conv_args *a) {
  int64_t sh[4] = {a->s.n, a->s.o, a->s.oh, a->s.ow};
  return a->batched ? mm_lua_newtensor_uninit(L, 4, sh) : mm_lua_newtensor_uninit(L, 3, sh + 1);
}

static int l_conv2d(lua_State *L) {
  conv_args a;
  conv_prep(L, &a, 4, "conv2d");
  float *col = fscratch(L, mm_conv2d_col_size(&a.s));
  mm_tensor *y = conv_out(L, &a);
  mm_conv2d_forward(&a.s, a.x->data, a.w->data, a.b ? a.b->data : NULL, y->data, col);
  return 1;
}

/* cnn_forward(x, {{weight=, bias=, pool=}, ...}[, {winograd=}]) -> [N, O]: inference of
 * conv (stride 1, padding k // 2) + bias + ReLU (+ 2x2 max pool) blocks and a
 * global average pool, by direct convolution (nn/cnn_direct.c) */
static int l_cnn_forward(lua_State *L) {
  const char *fn = "cnn_forward";
  mm_tensor *x = targ(L, 1, "x");
  if (x->ndim != 4) luaL_error(L, "%s: x must be 4-d [N, C, H, W], got shape %s", fn, SH(x));
  luaL_checktype(L, 2, LUA_TTABLE);
  check_opts(L, 3, fn);
  lua_settop(L, 3);
  luaL_checkstack(L, 24, fn);
  int nb = (int)luaL_len(L, 2);
  if (nb < 1 || nb > MM_CNN_MAXBLOCKS)
    luaL_error(L, "%s: blocks (argument #2) must list 1 to %d blocks, got %d", fn, MM_CNN_MAXBLOCKS, nb);
  mm_cnn_block bl[MM_CNN_MAXBLOCKS];
  int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
  if (x->shape[0] < 1 || c < 1 || h < 1 || w < 1) luaL_error(L, "%s: x has an empty shape %s", fn, SH(x));
  for (int i = 0; i < nb; i++) {
    lua_geti(L, 2, i + 1);
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) luaL_error(L, "%s: block %d must be a table {weight=, bias=, pool=}, got %s", fn, i + 1, luaL_typename(L, t));
    lua_getfield(L, t, "weight");
    if (lua_isnil(L, t + 1)) luaL_error(L, "%s: block %d has no weight", fn, i + 1);
    mm_tensor *wt = targ(L, t + 1, "weight");
    lua_getfield(L, t, "bias");
    mm_tensor *bt = lua_isnil(L, t + 2) ? NULL : targ(L, t + 2, "bias");
    int pool = opt_bool(L, t, fn, "pool") == 1;
    if (wt->ndim != 4 || wt->shape[2] != wt->shape[3] || wt->shape[2] % 2 == 0 || wt->shape[2] > 11)
      luaL_error(L, "%s: block %d: weight must be [out, in, k, k] with k odd and at most 11, got %s", fn, i + 1, SH(wt));
    if (wt->shape[1] != c)
      luaL_error(L, "%s: block %d: weight %s expects %d input channels, the input has %d", fn, i + 1, SH(wt),
                 (int)wt->shape[1], (int)c);
    if (bt && !(bt->ndim == 1 && bt->shape[0] == wt->shape[0]))
      luaL_error(L, "%s: block %d: bias has shape %s, expected %d", fn, i + 1, SH(bt), (int)wt->shape[0]);
    if (pool && (h < 2 || w < 2))
      luaL_error(L, "%s: block %d: cannot pool a %dx%d map", fn, i + 1, (int)h, (int)w);
    bl[i] = (mm_cnn_block){wt->shape[0], wt->shape[2], wt->data, bt ? bt->data : NULL, pool};
    c = wt->shape[0];
    if (pool) h /= 2, w /= 2;
    lua_remove(L, t); /* weight and bias stay on the stack (they may be converted tables) */
  }
  int wino = opt_bool(L, 3, fn, "winograd") != 0; /* default on */
  int64_t need = mm_cnn_direct_scratch(bl, nb, x->shape[0], x->shape[1], x->shape[2], x->shape[3], wino);
  if (need < 0) luaL_error(L, "%s: x %s: the blocks do not fit", fn, SH(x));
  float *scr = fscratch(L, need);
  int64_t sh[2] = {x->shape[0], c};
  mm_tensor *y = mm_lua_newtensor_uninit(L, 2, sh);
  mm_cnn_direct_forward(bl, nb, x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->data, y->data, scr, 0, wino);
  return 1;
}

/* conv2d_backward(x, w, b, gy, opts) -> gx, gw, gb */
static int l_conv2d_backward(lua_State *L) {
  conv_args a;
  conv_prep(L, &a, 5, "conv2d_backward");
  mm_tensor *gy = targ(L, 4, "grad_out");
  mm_tensor *yref = conv_out(L, &a);
  check_same(L, yref, gy, "conv2d_backward", "the output", "grad_out");
  float *col = fscratch(L, mm_conv2d_col_size(&a.s));
  int idx[3] = {0, 0, 0};
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  idx[0] = lua_gettop(L);
  mm_tensor *gw = mm_lua_newtensor_like(L, a.w);
  idx[1] = lua_gettop(L);
  mm_tensor *gb = NULL;
  if (a.b) {
    gb = mm_lua_newtensor_like(L, a.b);
    idx[2] = lua_gettop(L);
  }
  mm_conv2d_backward(&a.s, a.x->data, a.w->data, gy->data, gx->data, gw->data, gb ? gb->data : NULL, col);
  return ret(L, 3, idx);
}

/* ======================================================================= */
/* pooling                                                                 */
/* ======================================================================= */

typedef struct {
  mm_tensor *x;
  mm_pool2d_shape s;
  int batched;
} pool_args;

/* pool(x, {kernel=, stride=, padding=}) or pool(x, kernel[, stride[, padding]]) */
static void pool_prep(lua_State *L, pool_args *a, int optidx, const char *fn) {
  a->x = targ(L, 1, "x");
  if (a->x->ndim != 4 && a->x->ndim != 3)
    luaL_error(L, "%s: x must be 4-d [N, C, H, W] (or 3-d [C, H, W]), got shape %s", fn, SH(a->x));
  lua_Integer k, stride, pad;
  if (lua_type(L, optidx) == LUA_TNUMBER) {
    if (!lua_isinteger(L, optidx)) luaL_error(L, "%s: kernel size must be an integer", fn);
    k = lua_tointeger(L, optidx);
    stride = k;
    pad = 0;
    if (!lua_isnoneornil(L, optidx + 1)) {
      if (!lua_isinteger(L, optidx + 1)) luaL_error(L, "%s: stride must be an integer", fn);
      stride = lua_tointeger(L, optidx + 1);
    }
    if (!lua_isnoneornil(L, optidx + 2)) {
      if (!lua_isinteger(L, optidx + 2)) luaL_error(L, "%s: padding must be an integer", fn);
      pad = lua_tointeger(L, optidx + 2);
    }
  } else {
    if (!lua_istable(L, optidx))
      luaL_error(L, "%s: options {kernel=, stride=, padding=} or a kernel size expected, got %s", fn,
                 luaL_typename(L, optidx));
    lua_getfield(L, optidx, "kernel");
    lua_getfield(L, optidx, "kernel_size");
    int has_k = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_pop(L, 2);
    if (!has_k) luaL_error(L, "%s: option 'kernel' is required (x is %s)", fn, SH(a->x));
    k = size_opt(L, optidx, fn, "kernel", "kernel_size", 0);
    stride = size_opt(L, optidx, fn, "stride", NULL, k);
    pad = size_opt(L, optidx, fn, "padding", "pad", 0);
  }
  a->batched = a->x->ndim == 4;
  const int64_t *xs = a->x->shape + (a->batched ? 0 : -1);
  mm_err e;
  if (mm_pool2d_shape_init(&a->s, a->batched ? xs[0] : 1, xs[1], xs[2], xs[3], k, stride, pad, &e)) {
    mm_err_prefix(&e, "%s: x %s: ", fn, SH(a->x));
    mm_lua_raise(L, &e);
  }
}

static mm_tensor *pool_out(lua_State *L, const pool_args *a) {
  int64_t sh[4] = {a->s.n, a->s.c, a->s.oh, a->s.ow};
  return a->batched ? mm_lua_newtensor(L, 4, sh) : mm_lua_newtensor(L, 3, sh + 1);
}

static int l_max_pool2d(lua_State *L) {
  pool_args a;
  pool_prep(L, &a, 2, "max_pool2d");
  mm_tensor *y = pool_out(L, &a);
  mm_max_pool2d_forward(&a.s, a.x->data, y->data, NULL);
  return 1;
}

/* max_pool2d_backward(x, gy, opts) -> gx */
static int l_max_pool2d_backward(lua_State *L) {
  pool_args a;
  pool_prep(L, &a, 3, "max_pool2d_backward");
  mm_tensor *gy = targ(L, 2, "grad_out");
  mm_tensor *y = pool_out(L, &a);
  check_same(L, y, gy, "max_pool2d_backward", "the output", "grad_out");
  int32_t *arg = scratch(L, (size_t)(y->numel > 0 ? y->numel : 1) * sizeof(int32_t));
  mm_max_pool2d_forward(&a.s, a.x->data, y->data, arg);
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_max_pool2d_backward(&a.s, arg, gy->data, gx->data);
  return 1;
}

static int l_avg_pool2d(lua_State *L) {
  pool_args a;
  pool_prep(L, &a, 2, "avg_pool2d");
  mm_tensor *y = pool_out(L, &a);
  mm_avg_pool2d_forward(&a.s, a.x->data, y->data);
  return 1;
}

static int l_avg_pool2d_backward(lua_State *L) {
  pool_args a;
  pool_prep(L, &a, 3, "avg_pool2d_backward");
  mm_tensor *gy = targ(L, 2, "grad_out");
  mm_tensor *y = pool_out(L, &a);
  check_same(L, y, gy, "avg_pool2d_backward", "the output", "grad_out");
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_avg_pool2d_backward(&a.s, gy->data, gx->data);
  return 1;
}

static mm_tensor *gap_prep(lua_State *L, const char *fn) {
  mm_tensor *x = targ(L, 1, "x");
  if (x->ndim != 4) luaL_error(L, "%s: x must be 4-d [N, C, H, W], got shape %s", fn, SH(x));
  if (x->shape[2] < 1 || x->shape[3] < 1) luaL_error(L, "%s: x has an empty image: shape %s", fn, SH(x));
  return x;
}

static int l_global_avg_pool(lua_State *L) {
  mm_tensor *x = gap_prep(L, "global_avg_pool");
  int64_t sh[2] = {x->shape[0], x->shape[1]};
  mm_tensor *y = mm_lua_newtensor(L, 2, sh);
  mm_global_avg_pool_forward(x->data, y->data, sh[0], sh[1], x->shape[2] * x->shape[3]);
  return 1;
}

static int l_global_avg_pool_backward(lua_State *L) {
  mm_tensor *x = gap_prep(L, "global_avg_pool_backward");
  mm_tensor *gy = targ(L, 2, "grad_out");
  if (gy->ndim != 2 || gy->shape[0] != x->shape[0] || gy->shape[1] != x->shape[1])
    luaL_error(L, "global_avg_pool_backward: grad_out has shape %s, expected %dx%d (x is %s)", SH(gy),
               (int)x->shape[0], (int)x->shape[1], SH(x));
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  mm_global_avg_pool_backward(gy->data, gx->data, x->shape[0], x->shape[1], x->shape[2] * x->shape[3]);
  return 1;
}

/* ======================================================================= */
/* activations                                                             */
/* ======================================================================= */

typedef void (*act_fwd)(const float *, float *, int64_t);

static int act_forward(lua_State *L, act_fwd f) {
  mm_tensor *x = targ(L, 1, "x");
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  f(x->data, y->data, x->numel);
  return 1;
}

/* backward(x, gy) -> gx; uses_out: the kernel wants the forward output */
static int act_backward(lua_State *L, const char *fn, act_fwd f,
                        void (*b)(const float *, const float *, float *, int64_t), int uses_out) {
  mm_tensor *x = targ(L, 1, "x");
  mm_tensor *gy = targ(L, 2, "grad_out");
  check_same(L, x, gy, fn, "x", "grad_out");
  const float *src = x->data;
  if (uses_out) {
    mm_tensor *y = mm_lua_newtensor_like(L, x);
    f(x->data, y->data, x->numel);
    src = y->data;
  }
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  b(src, gy->data, gx->data, x->numel);
  return 1;
}

static int l_relu(lua_State *L) { return act_forward(L, mm_relu_forward); }
static int l_relu6(lua_State *L) { return act_forward(L, mm_relu6_forward); }
static int l_tanh(lua_State *L) { return act_forward(L, mm_tanh_forward); }
static int l_sigmoid(lua_State *L) { return act_forward(L, mm_sigmoid_forward); }
static int l_relu_backward(lua_State *L) { return act_backward(L, "relu_backward", NULL, mm_relu_backward, 0); }
static int l_relu6_backward(lua_State *L) { return act_backward(L, "relu6_backward", NULL, mm_relu6_backward, 0); }
static int l_tanh_backward(lua_State *L) {
  return act_backward(L, "tanh_backward", mm_tanh_forward, mm_tanh_backward, 1);
}
static int l_sigmoid_backward(lua_State *L) {
  return act_backward(L, "sigmoid_backward", mm_sigmoid_forward, mm_sigmoid_backward, 1);
}

/* ======================================================================= */
/* dropout                                                                 */
/* ======================================================================= */

/* dropout(x, p = 0.5, training = true) -> y, mask (mask nil when not training) */
static int l_dropout(lua_State *L) {
  mm_tensor *x = targ(L, 1, "x");
  lua_Number p = 0.5;
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TNUMBER)
      luaL_error(L, "dropout: p must be a number in [0, 1], got %s", luaL_typename(L, 2));
    p = lua_tonumber(L, 2);
  }
  if (!(p >= 0.0 && p <= 1.0)) luaL_error(L, "dropout: p must be in [0, 1], got %f (x is %s)", p, SH(x));
  int training = 1;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_isboolean(L, 3)) luaL_error(L, "dropout: training must be a boolean, got %s", luaL_typename(L, 3));
    training = lua_toboolean(L, 3);
  }
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  if (!training) {
    memcpy(y->data, x->data, (size_t)x->numel * sizeof(float));
    return 1;
  }
  mm_tensor *mask = mm_lua_newtensor_like(L, x);
  mm_dropout_forward(x->data, y->data, mask->data, x->numel, (float)p, mm_rng_global());
  return 2;
}

/* dropout_backward(x, gy, mask) -> gx  (mask: dropout's second result; nil = not training) */
static int l_dropout_backward(lua_State *L) {
  mm_tensor *x = targ(L, 1, "x");
  mm_tensor *gy = targ(L, 2, "grad_out");
  check_same(L, x, gy, "dropout_backward", "x", "grad_out");
  mm_tensor *mask = opt_targ(L, 3, "mask");
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  if (!mask) {
    memcpy(gx->data, gy->data, (size_t)x->numel * sizeof(float));
    return 1;
  }
  check_same(L, x, mask, "dropout_backward", "x", "mask");
  mm_dropout_backward(mask->data, gy->data, gx->data, x->numel);
  return 1;
}

/* ======================================================================= */
/* softmax                                                                 */
/* ======================================================================= */

static void last_dim(lua_State *L, const mm_tensor *x, int dimidx, const char *fn, int64_t *rows, int64_t *cols) {
  if (x->ndim < 1) luaL_error(L, "%s: x must have at least 1 dimension, got shape %s", fn, SH(x));
  if (!lua_isnoneornil(L, dimidx)) {
    lua_Integer d = luaL_checkinteger(L, dimidx);
    if (d != -1 && d != x->ndim)
      luaL_error(L, "%s: only the last dimension is supported (dim = -1 or %d), got dim = %d for x %s", fn, x->ndim,
                 (int)d, SH(x));
  }
  *cols = x->shape[x->ndim - 1];
  *rows = *cols ? x->numel / *cols : 0;
}

static int l_softmax(lua_State *L) {
  mm_tensor *x = targ(L, 1, "x");
  int64_t r, c;
  last_dim(L, x, 2, "softmax", &r, &c);
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  mm_softmax_forward(x->data, y->data, r, c);
  return 1;
}

static int l_log_softmax(lua_State *L) {
  mm_tensor *x = targ(L, 1, "x");
  int64_t r, c;
  last_dim(L, x, 2, "log_softmax", &r, &c);
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  mm_log_softmax_forward(x->data, y->data, r, c);
  return 1;
}

/* softmax_backward(x, gy) -> gx */
static int softmax_bw(lua_State *L, int logv) {
  const char *fn = logv ? "log_softmax_backward" : "softmax_backward";
  mm_tensor *x = targ(L, 1, "x");
  mm_tensor *gy = targ(L, 2, "grad_out");
  check_same(L, x, gy, fn, "x", "grad_out");
  int64_t r, c;
  last_dim(L, x, 3, fn, &r, &c);
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  if (logv) {
    mm_log_softmax_forward(x->data, y->data, r, c);
    mm_log_softmax_backward(y->data, gy->data, gx->data, r, c);
  } else {
    mm_softmax_forward(x->data, y->data, r, c);
    mm_softmax_backward(y->data, gy->data, gx->data, r, c);
  }
  return 1;
}
static int l_softmax_backward(lua_State *L) { return softmax_bw(L, 0); }
static int l_log_softmax_backward(lua_State *L) { return softmax_bw(L, 1); }

/* ======================================================================= */
/* losses                                                                  */
/* ======================================================================= */

typedef struct {
  mm_tensor *x;
  int64_t *labels;
  float *weight;
  int64_t n, c;
} loss_args;

static void loss_prep(lua_State *L, loss_args *a, int optidx, const char *fn, const char *xname) {
  a->x = targ(L, 1, xname);
  if (a->x->ndim != 2 && a->x->ndim != 1)
    luaL_error(L, "%s: %s must be 2-d [batch, classes] (or 1-d [classes]), got shape %s", fn, xname, SH(a->x));
  a->n = a->x->ndim == 2 ? a->x->shape[0] : 1;
  a->c = a->x->shape[a->x->ndim - 1];
  if (a->n < 1 || a->c < 1) luaL_error(L, "%s: %s is empty (shape %s)", fn, xname, SH(a->x));
  a->labels = check_labels(L, 2, a->n, a->c, fn, xname, a->x);
  check_opts(L, optidx, fn);
  a->weight = NULL;
  if (!lua_isnoneornil(L, optidx)) {
    lua_getfield(L, optidx, "weight");
    if (!lua_isnil(L, -1)) {
      mm_tensor *w = mm_lua_totensor(L, lua_gettop(L), "weight");
      if (!(w->ndim == 1 && w->shape[0] == a->c))
        luaL_error(L, "%s: weight has shape %s, expected %d (one per class; %s is %s)", fn, SH(w), (int)a->c, xname,
                   SH(a->x));
      a->weight = w->data; /* anchored: left on the stack */
    } else {
      lua_pop(L, 1);
    }
  }
}

static int l_nll_loss(lua_State *L) {
  loss_args a;
  loss_prep(L, &a, 3, "nll_loss", "logp");
  double loss;
  mm_err e;
  if (mm_nll_loss_forward(a.x->data, a.labels, a.weight, a.n, a.c, &loss, &e)) mm_lua_raise(L, &e);
  lua_pushnumber(L, loss);
  return 1;
}

/* nll_loss_backward(logp, labels, grad_out = 1, opts) -> glogp */
static int l_nll_loss_backward(lua_State *L) {
  loss_args a;
  loss_prep(L, &a, 4, "nll_loss_backward", "logp");
  float g = grad_scalar(L, 3, "nll_loss_backward");
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_nll_loss_backward(a.labels, a.weight, a.n, a.c, g, gx->data);
  return 1;
}

static int l_cross_entropy(lua_State *L) {
  loss_args a;
  loss_prep(L, &a, 3, "cross_entropy", "logits");
  double loss;
  mm_err e;
  if (mm_cross_entropy_forward(a.x->data, a.labels, a.weight, a.n, a.c, NULL, &loss, &e)) mm_lua_raise(L, &e);
  lua_pushnumber(L, loss);
  return 1;
}

static int l_cross_entropy_backward(lua_State *L) {
  loss_args a;
  loss_prep(L, &a, 4, "cross_entropy_backward", "logits");
  float g = grad_scalar(L, 3, "cross_entropy_backward");
  float *probs = fscratch(L, a.n * a.c);
  double loss;
  mm_err e;
  if (mm_cross_entropy_forward(a.x->data, a.labels, a.weight, a.n, a.c, probs, &loss, &e)) mm_lua_raise(L, &e);
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_cross_entropy_backward(probs, a.labels, a.weight, a.n, a.c, g, gx->data);
  return 1;
}

/* ======================================================================= */
/* embedding bag                                                           */
/* ======================================================================= */

typedef struct {
  mm_tensor *w;
  int64_t *ids, *offsets;
  int64_t nids, nbags;
} bag_args;

/* embedding_bag(weight, ids, offsets[, opts]); see nn.lua for the offsets rules */
static void bag_prep(lua_State *L, bag_args *a, int optidx, const char *fn) {
  a->w = targ(L, 1, "weight");
  if (a->w->ndim != 2) luaL_error(L, "%s: weight must be 2-d [rows, dim], got shape %s", fn, SH(a->w));
  check_opts(L, optidx, fn);
  int ilo = opt_bool(L, optidx, fn, "include_last_offset");
  int64_t nrows = a->w->shape[0];
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: ids missing (weight is %s)", fn, SH(a->w));
  if (lua_isnoneornil(L, 3)) {
    /* fixed-length bags: ids is a 2-d tensor or a table of tables */
    mm_tensor *t = mm_lua_testtensor(L, 2);
    int64_t rows, cols;
    if (t) {
      if (t->ndim != 2) luaL_error(L, "%s: without offsets, ids must be 2-d [bags, ids per bag], got shape %s", fn, SH(t));
      rows = t->shape[0];
      cols = t->shape[1];
    } else {
      if (!lua_istable(L, 2)) luaL_error(L, "%s: ids must be a table or a tensor, got %s", fn, luaL_typename(L, 2));
      mm_tensor *tt = mm_lua_totensor(L, 2, "ids");
      if (tt->ndim != 2)
        luaL_error(L, "%s: without offsets, ids must be a table of equal-length tables (got shape %s)", fn, SH(tt));
      rows = tt->shape[0];
      cols = tt->shape[1];
    }
    a->ids = int_list(L, 2, fn, "ids", &a->nids);
    a->nbags = rows;
    a->offsets = scratch(L, (size_t)(rows + 1) * sizeof(int64_t));
    for (int64_t b = 0; b <= rows; b++) a->offsets[b] = b * cols;
  } else {
    a->ids = int_list(L, 2, fn, "ids", &a->nids);
    int64_t no;
    int64_t *off = int_list(L, 3, fn, "offsets", &no);
    if (no < 1) luaL_error(L, "%s: offsets is empty (ids has %d entries)", fn, (int)a->nids);
    int64_t base = off[0];
    if (base != 0 && base != 1)
      luaL_error(L, "%s: offsets[1] = %d: the first bag must start at 0 (0-based counts) or 1 (1-based positions)", fn,
                 (int)base);
    for (int64_t i = 0; i < no; i++) off[i] -= base;
    int csr = ilo >= 0 ? ilo : (no >= 2 && off[no - 1] == a->nids);
    if (csr && no < 2) luaL_error(L, "%s: include_last_offset needs at least 2 offsets, got %d", fn, (int)no);
    a->nbags = csr ? no - 1 : no;
    a->offsets = scratch(L, (size_t)(a->nbags + 1) * sizeof(int64_t));
    memcpy(a->offsets, off, (size_t)no * sizeof(int64_t));
    if (!csr) a->offsets[no] = a->nids;
    for (int64_t i = 0; i <= a->nbags; i++) {
      int64_t o = a->offsets[i];
      if (o < 0 || o > a->nids)
        luaL_error(L, "%s: offsets[%d] = %d is out of range %d..%d (ids has %d entries)", fn, (int)i + 1,
                   (int)(o + base), (int)base, (int)(a->nids + base), (int)a->nids);
      if (i > 0 && o < a->offsets[i - 1])
        luaL_error(L, "%s: offsets must be non-decreasing: offsets[%d] = %d < offsets[%d] = %d", fn, (int)i + 1,
                   (int)(o + base), (int)i, (int)(a->offsets[i - 1] + base));
    }
  }
  for (int64_t k = 0; k < a->nids; k++) {
    if (a->ids[k] < 1 || a->ids[k] > nrows)
      luaL_error(L, "%s: ids[%d] = %d is out of range 1..%d (weight is %s)", fn, (int)k + 1, (int)a->ids[k], (int)nrows,
                 SH(a->w));
    a->ids[k] -= 1;
  }
}

static int l_embedding_bag(lua_State *L) {
  bag_args a;
  bag_prep(L, &a, 4, "embedding_bag");
  int64_t sh[2] = {a.nbags, a.w->shape[1]};
  mm_tensor *y = mm_lua_newtensor(L, 2, sh);
  mm_embedding_bag_forward(a.w->data, sh[1], a.ids, a.offsets, a.nbags, y->data);
  return 1;
}

/* embedding_bag_backward(weight, ids, offsets, gy[, opts]) -> gweight */
static int l_embedding_bag_backward(lua_State *L) {
  bag_args a;
  bag_prep(L, &a, 5, "embedding_bag_backward");
  mm_tensor *gy = targ(L, 4, "grad_out");
  if (gy->ndim != 2 || gy->shape[0] != a.nbags || gy->shape[1] != a.w->shape[1])
    luaL_error(L, "embedding_bag_backward: grad_out has shape %s, expected %dx%d (%d bags, weight %s)", SH(gy),
               (int)a.nbags, (int)a.w->shape[1], (int)a.nbags, SH(a.w));
  mm_tensor *gw = mm_lua_newtensor_like(L, a.w);
  mm_embedding_bag_backward(a.ids, a.offsets, a.nbags, a.w->shape[1], gy->data, gw->data);
  return 1;
}

/* ======================================================================= */
/* modality pooling                                                        */
/* ======================================================================= */

typedef struct {
  mm_tensor *x;
  uint8_t *mask;
  int64_t n, k, d;
  int mode;
} mp_args;

static int pool_mode(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return MM_POOL_MAX;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: mode must be \"max\", \"mean\" or \"sum\", got %s", fn, luaL_typename(L, idx));
  const char *m = lua_tostring(L, idx);
  if (!strcmp(m, "max")) return MM_POOL_MAX;
  if (!strcmp(m, "mean")) return MM_POOL_MEAN;
  if (!strcmp(m, "sum")) return MM_POOL_SUM;
  return luaL_error(L, "%s: mode must be \"max\", \"mean\" or \"sum\", got \"%s\"", fn, m);
}

static void mp_prep(lua_State *L, mp_args *a, int modeidx, const char *fn) {
  a->x = targ(L, 1, "vectors");
  if (a->x->ndim != 3) luaL_error(L, "%s: vectors must be 3-d [N, K, D], got shape %s", fn, SH(a->x));
  a->n = a->x->shape[0];
  a->k = a->x->shape[1];
  a->d = a->x->shape[2];
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: mask missing (a %dx%d tensor or table)", fn, (int)a->n, (int)a->k);
  a->mask = check_mask(L, 2, a->n, a->k, fn, "mask", "vectors", a->x);
  a->mode = pool_mode(L, modeidx, fn);
}

static int l_modality_pool(lua_State *L) {
  mp_args a;
  mp_prep(L, &a, 3, "modality_pool");
  int64_t sh[2] = {a.n, a.d};
  mm_tensor *y = mm_lua_newtensor(L, 2, sh);
  mm_err e;
  if (mm_modality_pool_forward(a.x->data, a.mask, a.n, a.k, a.d, a.mode, y->data, NULL, &e)) mm_lua_raise(L, &e);
  return 1;
}

/* modality_pool_backward(vectors, mask, gy, mode) -> gvectors */
static int l_modality_pool_backward(lua_State *L) {
  mp_args a;
  mp_prep(L, &a, 4, "modality_pool_backward");
  mm_tensor *gy = targ(L, 3, "grad_out");
  if (gy->ndim != 2 || gy->shape[0] != a.n || gy->shape[1] != a.d)
    luaL_error(L, "modality_pool_backward: grad_out has shape %s, expected %dx%d (vectors is %s)", SH(gy), (int)a.n,
               (int)a.d, SH(a.x));
  int64_t sh[2] = {a.n, a.d};
  mm_tensor *y = mm_lua_newtensor(L, 2, sh);
  int32_t *arg = scratch(L, (size_t)(a.n * a.d > 0 ? a.n * a.d : 1) * sizeof(int32_t));
  mm_err e;
  if (mm_modality_pool_forward(a.x->data, a.mask, a.n, a.k, a.d, a.mode, y->data, arg, &e)) mm_lua_raise(L, &e);
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_modality_pool_backward(a.mask, arg, gy->data, a.n, a.k, a.d, a.mode, gx->data);
  return 1;
}

/* ======================================================================= */
/* cosine similarity                                                       */
/* ======================================================================= */

static void cos_prep(lua_State *L, mm_tensor **a, mm_tensor **b, int64_t *n, int64_t *d, const char *fn) {
  *a = targ(L, 1, "a");
  *b = targ(L, 2, "b");
  if ((*a)->ndim != 2 && (*a)->ndim != 1) luaL_error(L, "%s: a must be 2-d [N, D] or 1-d [D], got shape %s", fn, SH(*a));
  check_same(L, *a, *b, fn, "a", "b");
  *d = (*a)->shape[(*a)->ndim - 1];
  *n = (*a)->ndim == 2 ? (*a)->shape[0] : 1;
}

/* cosine_similarity(a [N,D], b [N,D]) -> s [N]  (1-d inputs: s has shape [1]) */
static int l_cosine_similarity(lua_State *L) {
  mm_tensor *a, *b;
  int64_t n, d;
  cos_prep(L, &a, &b, &n, &d, "cosine_similarity");
  mm_tensor *s = mm_lua_newtensor(L, 1, &n);
  mm_cosine_forward(a->data, b->data, s->data, n, d);
  return 1;
}

static int l_cosine_similarity_backward(lua_State *L) {
  mm_tensor *a, *b;
  int64_t n, d;
  cos_prep(L, &a, &b, &n, &d, "cosine_similarity_backward");
  mm_tensor *gs = targ(L, 3, "grad_out");
  if (gs->numel != n)
    luaL_error(L, "cosine_similarity_backward: grad_out has shape %s, expected %d (a is %s)", SH(gs), (int)n, SH(a));
  int idx[2];
  mm_tensor *ga = mm_lua_newtensor_like(L, a);
  idx[0] = lua_gettop(L);
  mm_tensor *gb = mm_lua_newtensor_like(L, b);
  idx[1] = lua_gettop(L);
  mm_cosine_backward(a->data, b->data, gs->data, ga->data, gb->data, n, d);
  return ret(L, 2, idx);
}

/* ======================================================================= */
/* ranking losses                                                          */
/* ======================================================================= */

typedef struct {
  mm_tensor *v, *t;
  int64_t *labels;
  uint8_t *vmask, *tmask;
  int64_t n, d;
  float margin;
  int hardest;
} rank_args;

#define RANK_DEFAULT_MARGIN 0.2

static void rank_prep(lua_State *L, rank_args *a, int optidx, const char *fn) {
  a->v = targ(L, 1, "v");
  a->t = targ(L, 2, "t");
  if (a->v->ndim != 2) luaL_error(L, "%s: v must be 2-d [N, D], got shape %s", fn, SH(a->v));
  check_same(L, a->v, a->t, fn, "v", "t");
  a->n = a->v->shape[0];
  a->d = a->v->shape[1];
  a->labels = check_labels(L, 3, a->n, 0, fn, "v", a->v);
  check_opts(L, optidx, fn);
  lua_Number m = opt_num(L, optidx, fn, "margin", RANK_DEFAULT_MARGIN);
  if (!isfinite(m)) luaL_error(L, "%s: margin must be finite, got %f", fn, m);
  a->margin = (float)m;
  a->hardest = opt_bool(L, optidx, fn, "hardest") == 1;
  a->vmask = a->tmask = NULL;
  if (!lua_isnoneornil(L, optidx)) {
    lua_getfield(L, optidx, "vmask");
    if (!lua_isnil(L, -1)) a->vmask = check_mask(L, lua_gettop(L), a->n, 0, fn, "vmask", "v", a->v);
    lua_getfield(L, optidx, "tmask");
    if (!lua_isnil(L, -1)) a->tmask = check_mask(L, lua_gettop(L), a->n, 0, fn, "tmask", "t", a->t);
  }
}

/* the matrix form's scratch up to 4096 rows (O(n^2) floats); above, the
 * per-pair form (NULL) */
static float *rank_scratch(lua_State *L, const rank_args *a) {
  return a->n <= 4096 ? fscratch(L, mm_ranking_scratch(a->n, a->d)) : NULL;
}

/* ranking_loss(v, t, labels, opts) -> loss, anchors */
static int l_ranking_loss(lua_State *L) {
  rank_args a;
  rank_prep(L, &a, 4, "ranking_loss");
  double loss;
  int64_t anchors;
  mm_ranking_loss(a.v->data, a.t->data, a.labels, a.vmask, a.tmask, a.n, a.d, a.margin, a.hardest, 1.0f, &loss, NULL,
                  NULL, &anchors, rank_scratch(L, &a));
  if (!isfinite(loss))
    luaL_error(L, "ranking_loss: loss is %s (v %s, t %s hold NaN or Inf?)", isnan(loss) ? "NaN" : "infinite", SH(a.v),
               SH(a.t));
  lua_pushnumber(L, loss);
  lua_pushinteger(L, anchors);
  return 2;
}

/* ranking_loss_backward(v, t, labels, grad_out = 1, opts) -> gv, gt */
static int l_ranking_loss_backward(lua_State *L) {
  rank_args a;
  rank_prep(L, &a, 5, "ranking_loss_backward");
  float g = grad_scalar(L, 4, "ranking_loss_backward");
  int idx[2];
  mm_tensor *gv = mm_lua_newtensor_like(L, a.v);
  idx[0] = lua_gettop(L);
  mm_tensor *gt = mm_lua_newtensor_like(L, a.t);
  idx[1] = lua_gettop(L);
  double loss;
  mm_ranking_loss(a.v->data, a.t->data, a.labels, a.vmask, a.tmask, a.n, a.d, a.margin, a.hardest, g, &loss, gv->data,
                  gt->data, NULL, rank_scratch(L, &a));
  return ret(L, 2, idx);
}

/* margin_ranking_loss(x1, x2, y, margin = 0): mean(max(0, -y (x1 - x2) + margin)) */
typedef struct {
  mm_tensor *x1, *x2, *y;
  float margin;
} mr_args;

static void mr_prep(lua_State *L, mr_args *a, int midx, const char *fn) {
  a->x1 = targ(L, 1, "x1");
  a->x2 = targ(L, 2, "x2");
  a->y = targ(L, 3, "y");
  check_same(L, a->x1, a->x2, fn, "x1", "x2");
  check_same(L, a->x1, a->y, fn, "x1", "y");
  if (a->x1->numel < 1) luaL_error(L, "%s: x1 is empty (shape %s)", fn, SH(a->x1));
  lua_Number m = 0.0;
  if (lua_type(L, midx) == LUA_TNUMBER)
    m = lua_tonumber(L, midx);
  else if (lua_istable(L, midx))
    m = opt_num(L, midx, fn, "margin", 0.0);
  else if (!lua_isnoneornil(L, midx))
    luaL_error(L, "%s: margin must be a number, got %s", fn, luaL_typename(L, midx));
  if (!isfinite(m)) luaL_error(L, "%s: margin must be finite, got %f", fn, m);
  a->margin = (float)m;
  for (int64_t i = 0; i < a->y->numel; i++)
    if (a->y->data[i] != 1.0f && a->y->data[i] != -1.0f)
      luaL_error(L, "%s: y[%d] = %f, expected 1 or -1 (y is %s)", fn, (int)i + 1, (double)a->y->data[i], SH(a->y));
}

static int l_margin_ranking_loss(lua_State *L) {
  mr_args a;
  mr_prep(L, &a, 4, "margin_ranking_loss");
  double loss = mm_margin_ranking_loss(a.x1->data, a.x2->data, a.y->data, a.x1->numel, a.margin, 1.0f, NULL, NULL);
  if (!isfinite(loss))
    luaL_error(L, "margin_ranking_loss: loss is %s (x1 %s, x2 %s hold NaN or Inf?)", isnan(loss) ? "NaN" : "infinite",
               SH(a.x1), SH(a.x2));
  lua_pushnumber(L, loss);
  return 1;
}

/* margin_ranking_loss_backward(x1, x2, y, grad_out = 1, margin = 0) -> g1, g2 */
static int l_margin_ranking_loss_backward(lua_State *L) {
  mr_args a;
  mr_prep(L, &a, 5, "margin_ranking_loss_backward");
  float g = grad_scalar(L, 4, "margin_ranking_loss_backward");
  int idx[2];
  mm_tensor *g1 = mm_lua_newtensor_like(L, a.x1);
  idx[0] = lua_gettop(L);
  mm_tensor *g2 = mm_lua_newtensor_like(L, a.x2);
  idx[1] = lua_gettop(L);
  mm_margin_ranking_loss(a.x1->data, a.x2->data, a.y->data, a.x1->numel, a.margin, g, g1->data, g2->data);
  return ret(L, 2, idx);
}

/* ======================================================================= */
/* batch norm (inference) and optimizer steps                              */
/* ======================================================================= */

/* batch_norm(x, running_mean, running_var, weight, bias, eps = 1e-5), inference form */
static int l_batch_norm(lua_State *L) {
  const char *fn = "batch_norm";
  mm_tensor *x = targ(L, 1, "x");
  if (x->ndim < 2) luaL_error(L, "%s: x must be [N, C, ...], got shape %s", fn, SH(x));
  int64_t n = x->shape[0], c = x->shape[1], hw = 1;
  for (int i = 2; i < x->ndim; i++) hw *= x->shape[i];
  const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
  mm_tensor *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = i < 2 ? targ(L, 2 + i, names[i]) : opt_targ(L, 2 + i, names[i]);
    if (p[i] && !(p[i]->ndim == 1 && p[i]->shape[0] == c))
      luaL_error(L, "%s: %s has shape %s, expected %d (x is %s)", fn, names[i], SH(p[i]), (int)c, SH(x));
  }
  lua_Number eps = luaL_optnumber(L, 6, 1e-5);
  for (int64_t i = 0; i < c; i++)
    if (!(p[1]->data[i] + eps > 0)) luaL_error(L, "%s: running_var[%d] + eps must be > 0", fn, (int)i + 1);
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  mm_batchnorm_infer(x->data, y->data, n, c, hw, p[0]->data, p[1]->data, p[2] ? p[2]->data : NULL,
                     p[3] ? p[3]->data : NULL, (float)eps);
  return 1;
}

static void same_numel(lua_State *L, const mm_tensor *a, const mm_tensor *b, const char *fn, const char *na,
                       const char *nb) {
  if (a->numel != b->numel) luaL_error(L, "%s: %s has shape %s but %s has shape %s", fn, nb, SH(b), na, SH(a));
}

/* sgd_step(param, grad, velocity|nil, {lr=, momentum=0, weight_decay=0}): in place */
static int l_sgd_step(lua_State *L) {
  const char *fn = "sgd_step";
  mm_tensor *p = mm_lua_checktensor(L, 1, "param");
  mm_tensor *g = targ(L, 2, "grad");
  same_numel(L, p, g, fn, "param", "grad");
  mm_tensor *vel = lua_isnoneornil(L, 3) ? NULL : mm_lua_checktensor(L, 3, "velocity");
  if (vel) same_numel(L, p, vel, fn, "param", "velocity");
  check_opts(L, 4, fn);
  lua_Number lr = opt_num(L, 4, fn, "lr", 0.01), mom = opt_num(L, 4, fn, "momentum", 0.0),
             wd = opt_num(L, 4, fn, "weight_decay", 0.0);
  if (mom != 0.0 && !vel) luaL_error(L, "%s: momentum %f needs a velocity tensor (argument #3)", fn, mom);
  mm_sgd_step(p->data, g->data, vel ? vel->data : NULL, p->numel, (float)lr, (float)mom, (float)wd);
  lua_settop(L, 1);
  return 1;
}

/* adam_step(param, grad, m, v, step, {lr=, betas={b1,b2}, eps=, weight_decay=}): in place */
static int l_adam_step(lua_State *L) {
  const char *fn = "adam_step";
  mm_tensor *p = mm_lua_checktensor(L, 1, "param");
  mm_tensor *g = targ(L, 2, "grad");
  mm_tensor *m = mm_lua_checktensor(L, 3, "m");
  mm_tensor *v = mm_lua_checktensor(L, 4, "v");
  same_numel(L, p, g, fn, "param", "grad");
  same_numel(L, p, m, fn, "param", "m");
  same_numel(L, p, v, fn, "param", "v");
  lua_Integer step = luaL_checkinteger(L, 5);
  if (step < 1) luaL_error(L, "%s: step must be >= 1, got %d", fn, (int)step);
  check_opts(L, 6, fn);
  lua_Number lr = opt_num(L, 6, fn, "lr", 1e-3), eps = opt_num(L, 6, fn, "eps", 1e-8),
             wd = opt_num(L, 6, fn, "weight_decay", 0.0);
  lua_Number b1 = 0.9, b2 = 0.999;
  if (!lua_isnoneornil(L, 6)) {
    lua_getfield(L, 6, "betas");
    if (lua_istable(L, -1)) {
      lua_geti(L, -1, 1);
      lua_geti(L, -2, 2);
      b1 = luaL_optnumber(L, -2, b1);
      b2 = luaL_optnumber(L, -1, b2);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  mm_adam_step(p->data, g->data, m->data, v->data, p->numel, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
               step);
  lua_settop(L, 1);
  return 1;
}

/* ======================================================================= */

/* Every entry point sees exactly NN_NARGS stack slots (missing arguments are
 * nil), so absolute argument indices stay valid while scratch userdata and
 * results are pushed above them. */
#define NN_NARGS 8
static int nn_entry(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
  lua_settop(L, NN_NARGS);
  return f(L);
}

void mm_lua_open_nn(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"linear", l_linear},
      {"linear_backward", l_linear_backward},
      {"conv2d", l_conv2d},
      {"conv2d_backward", l_conv2d_backward},
      {"cnn_forward", l_cnn_forward},
      {"max_pool2d", l_max_pool2d},
      {"max_pool2d_backward", l_max_pool2d_backward},
      {"avg_pool2d", l_avg_pool2d},
      {"avg_pool2d_backward", l_avg_pool2d_backward},
      {"global_avg_pool", l_global_avg_pool},
      {"global_avg_pool_backward", l_global_avg_pool_backward},
      {"relu", l_relu},
      {"relu_backward", l_relu_backward},
      {"relu6", l_relu6},
      {"relu6_backward", l_relu6_backward},
      {"tanh", l_tanh},
      {"tanh_backward", l_tanh_backward},
      {"sigmoid", l_sigmoid},
      {"sigmoid_backward", l_sigmoid_backward},
      {"dropout", l_dropout},
      {"dropout_backward", l_dropout_backward},
      {"softmax", l_softmax},
      {"softmax_backward", l_softmax_backward},
      {"log_softmax", l_log_softmax},
      {"log_softmax_backward", l_log_softmax_backward},
      {"nll_loss", l_nll_loss},
      {"nll_loss_backward", l_nll_loss_backward},
      {"cross_entropy", l_cross_entropy},
      {"cross_entropy_backward", l_cross_entropy_backward},
      {"embedding_bag", l_embedding_bag},
      {"embedding_bag_backward", l_embedding_bag_backward},
      {"modality_pool", l_modality_pool},
      {"modality_pool_backward", l_modality_pool_backward},
      {"cosine_similarity", l_cosine_similarity},
      {"cosine_similarity_backward", l_cosine_similarity_backward},
      {"ranking_loss", l_ranking_loss},
      {"ranking_loss_backward", l_ranking_loss_backward},
      {"margin_ranking_loss", l_margin_ranking_loss},
      {"margin_ranking_loss_backward", l_margin_ranking_loss_backward},
      {"batch_norm", l_batch_norm},
      {"sgd_step", l_sgd_step},
      {"adam_step", l_adam_step},
      {NULL, NULL}};
  lua_getfield(L, -1, "nn");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "nn");
  }
  for (const luaL_Reg *r = fns; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_pushcclosure(L, nn_entry, 1);
    lua_setfield(L, -2, r->name);
  }
  lua_pop(L, 1);
}
