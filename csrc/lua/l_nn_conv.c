/* l_nn_conv.c - core.nn's convolution and pooling: conv2d, cnn_forward,
 * max / average / global average pooling, forward and backward (conventions:
 * l_nn.h). */
#include <string.h>

#include "../nn/cnn_direct.h"
#include "../nn/nn.h"
#include "l_nn.h"

/* ---- conv2d -------------------------------------------------------------------- */

typedef struct {
  mm_tensor *x, *w, *b;
  mm_conv2d_shape s;
  int batched;
} conv_args;

/* x, weight, bias at 1..3, options {stride=, padding=, groups=} at optidx */
static void conv_prep(lua_State *L, conv_args *a, int optidx, const char *fn) {
  a->x = nn_tensor(L, 1, "x");
  a->w = nn_tensor(L, 2, "weight");
  a->b = nn_opt_tensor(L, 3, "bias");
  lua_Integer stride, pad, groups;
  const mm_lua_opt opts[] = {MM_OPT_INT("stride", &stride, 1), MM_OPT_INT("padding", &pad, 0),
                             MM_OPT_INT("groups", &groups, 1), MM_OPT_END};
  mm_lua_readopts(L, optidx, fn, opts);
  if (a->w->ndim != 4) luaL_error(L, "%s: weight must be 4-d [out, in/groups, kh, kw], got shape %s", fn, SH(a->w));
  if (a->x->ndim != 4 && a->x->ndim != 3)
    luaL_error(L, "%s: x must be 4-d [N, C, H, W] (or 3-d [C, H, W]), got shape %s", fn, SH(a->x));
  a->batched = a->x->ndim == 4;
  const int64_t *xs = a->x->shape + (a->batched ? 0 : -1);
  int64_t n = a->batched ? xs[0] : 1, c = xs[1], h = xs[2], w = xs[3];
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
  float *col = nn_fscratch(L, mm_conv2d_col_size(&a.s));
  mm_tensor *y = conv_out(L, &a);
  mm_conv2d_forward(&a.s, a.x->data, a.w->data, a.b ? a.b->data : NULL, y->data, col);
  return 1;
}

/* conv2d_backward(x, w, b, gy, opts) -> gx, gw, gb */
static int l_conv2d_backward(lua_State *L) {
  conv_args a;
  conv_prep(L, &a, 5, "conv2d_backward");
  mm_tensor *gy = nn_tensor(L, 4, "grad_out");
  mm_tensor *yref = conv_out(L, &a);
  nn_same_shape(L, yref, gy, "conv2d_backward", "the output", "grad_out");
  float *col = nn_fscratch(L, mm_conv2d_col_size(&a.s));
  mm_tensor *gx, *gw, *gb;
  int idx[3] = {nn_grad_like(L, a.x, &gx), nn_grad_like(L, a.w, &gw), nn_grad_like(L, a.b, &gb)};
  mm_conv2d_backward(&a.s, a.x->data, a.w->data, gy->data, gx->data, gw->data, gb ? gb->data : NULL, col);
  return nn_return(L, 3, idx);
}

/* ---- cnn_forward --------------------------------------------------------------- */

/* block i (1-based) of the list at 2, {weight=, bias=, pool=}, on an input of
 * *c channels, *h x *w; updates them to the block's output. Its weight and
 * bias stay on the stack (they may be converted tables). */
static void read_block(lua_State *L, int i, const char *fn, int64_t *c, int64_t *h, int64_t *w, mm_cnn_block *bl) {
  lua_geti(L, 2, i);
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) luaL_error(L, "%s: block %d must be a table {weight=, bias=, pool=}, got %s", fn, i, luaL_typename(L, t));
  int has_w, has_b, pool;
  const mm_lua_opt opts[] = {MM_OPT_ANY("weight", &has_w), MM_OPT_ANY("bias", &has_b), MM_OPT_BOOL("pool", &pool, 0),
                             MM_OPT_END};
  mm_lua_readopts(L, t, lua_pushfstring(L, "%s: block %d", fn, i), opts);
  lua_pop(L, 1);
  if (has_w == LUA_TNIL) luaL_error(L, "%s: block %d has no weight", fn, i);
  lua_getfield(L, t, "weight");
  mm_tensor *wt = nn_tensor(L, t + 1, "weight");
  lua_getfield(L, t, "bias");
  mm_tensor *bt = has_b == LUA_TNIL ? NULL : nn_tensor(L, t + 2, "bias");
  if (wt->ndim != 4 || wt->shape[2] != wt->shape[3] || wt->shape[2] % 2 == 0 || wt->shape[2] > 11)
    luaL_error(L, "%s: block %d: weight must be [out, in, k, k] with k odd and at most 11, got %s", fn, i, SH(wt));
  if (wt->shape[1] != *c)
    luaL_error(L, "%s: block %d: weight %s expects %d input channels, the input has %d", fn, i, SH(wt),
               (int)wt->shape[1], (int)*c);
  if (bt && !(bt->ndim == 1 && bt->shape[0] == wt->shape[0]))
    luaL_error(L, "%s: block %d: bias has shape %s, expected %d", fn, i, SH(bt), (int)wt->shape[0]);
  if (pool && (*h < 2 || *w < 2)) luaL_error(L, "%s: block %d: cannot pool a %dx%d map", fn, i, (int)*h, (int)*w);
  *bl = (mm_cnn_block){wt->shape[0], wt->shape[2], wt->data, bt ? bt->data : NULL, pool};
  *c = wt->shape[0];
  if (pool) *h /= 2, *w /= 2;
  lua_remove(L, t);
}

/* cnn_forward(x, {{weight=, bias=, pool=}, ...}[, {winograd=}]) -> [N, O]: inference of
 * conv (stride 1, padding k // 2) + bias + ReLU (+ 2x2 max pool) blocks and a
 * global average pool, by direct convolution (nn/cnn_direct.c) */
static int l_cnn_forward(lua_State *L) {
  const char *fn = "cnn_forward";
  mm_tensor *x = nn_tensor(L, 1, "x");
  if (x->ndim != 4) luaL_error(L, "%s: x must be 4-d [N, C, H, W], got shape %s", fn, SH(x));
  luaL_checktype(L, 2, LUA_TTABLE);
  int wino;
  const mm_lua_opt opts[] = {MM_OPT_BOOL("winograd", &wino, 1), MM_OPT_END};
  mm_lua_readopts(L, 3, fn, opts);
  luaL_checkstack(L, 2 * MM_CNN_MAXBLOCKS + 8, fn);
  int nb = (int)luaL_len(L, 2);
  if (nb < 1 || nb > MM_CNN_MAXBLOCKS)
    luaL_error(L, "%s: blocks (argument #2) must list 1 to %d blocks, got %d", fn, MM_CNN_MAXBLOCKS, nb);
  mm_cnn_block bl[MM_CNN_MAXBLOCKS];
  int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
  if (x->shape[0] < 1 || c < 1 || h < 1 || w < 1) luaL_error(L, "%s: x has an empty shape %s", fn, SH(x));
  for (int i = 0; i < nb; i++) read_block(L, i + 1, fn, &c, &h, &w, &bl[i]);
  int64_t need = mm_cnn_direct_scratch(bl, nb, x->shape[0], x->shape[1], x->shape[2], x->shape[3], wino);
  if (need < 0) luaL_error(L, "%s: x %s: the blocks do not fit", fn, SH(x));
  float *scr = nn_fscratch(L, need);
  int64_t sh[2] = {x->shape[0], c};
  mm_tensor *y = mm_lua_newtensor_uninit(L, 2, sh);
  mm_cnn_direct_forward(bl, nb, x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->data, y->data, scr, 0, wino);
  return 1;
}

/* ---- pooling ------------------------------------------------------------------- */

typedef struct {
  mm_tensor *x;
  mm_pool2d_shape s;
  int batched;
} pool_args;

/* pool(x, {kernel=, stride=, padding=}) or pool(x, kernel[, stride[, padding]]) */
static void pool_prep(lua_State *L, pool_args *a, int optidx, const char *fn) {
  a->x = nn_tensor(L, 1, "x");
  if (a->x->ndim != 4 && a->x->ndim != 3)
    luaL_error(L, "%s: x must be 4-d [N, C, H, W] (or 3-d [C, H, W]), got shape %s", fn, SH(a->x));
  lua_Integer k, stride, pad;
  if (lua_type(L, optidx) == LUA_TNUMBER) {
    const char *names[3] = {"kernel size", "stride", "padding"};
    lua_Integer *v[3] = {&k, &stride, &pad};
    for (int i = 0; i < 3; i++) {
      if (i && lua_isnoneornil(L, optidx + i)) continue;
      if (!lua_isinteger(L, optidx + i)) luaL_error(L, "%s: %s must be an integer", fn, names[i]);
      *v[i] = lua_tointeger(L, optidx + i);
    }
    if (lua_isnoneornil(L, optidx + 1)) stride = k;
    if (lua_isnoneornil(L, optidx + 2)) pad = 0;
  } else {
    if (!lua_istable(L, optidx))
      luaL_error(L, "%s: options {kernel=, stride=, padding=} or a kernel size expected, got %s", fn,
                 luaL_typename(L, optidx));
    const mm_lua_opt opts[] = {MM_OPT_INT("kernel", &k, 0), MM_OPT_INT("stride", &stride, 0),
                               MM_OPT_INT("padding", &pad, 0), MM_OPT_END};
    unsigned given = mm_lua_readopts(L, optidx, fn, opts);
    if (!MM_OPT_GIVEN(given, 0)) luaL_error(L, "%s: option 'kernel' is required (x is %s)", fn, SH(a->x));
    if (!MM_OPT_GIVEN(given, 1)) stride = k;
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
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  mm_tensor *y = pool_out(L, &a);
  nn_same_shape(L, y, gy, "max_pool2d_backward", "the output", "grad_out");
  int32_t *arg = nn_scratch(L, (size_t)(y->numel > 0 ? y->numel : 1) * sizeof(int32_t));
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
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  mm_tensor *y = pool_out(L, &a);
  nn_same_shape(L, y, gy, "avg_pool2d_backward", "the output", "grad_out");
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_avg_pool2d_backward(&a.s, gy->data, gx->data);
  return 1;
}

static mm_tensor *gap_prep(lua_State *L, const char *fn) {
  mm_tensor *x = nn_tensor(L, 1, "x");
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
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  if (gy->ndim != 2 || gy->shape[0] != x->shape[0] || gy->shape[1] != x->shape[1])
    luaL_error(L, "global_avg_pool_backward: grad_out has shape %s, expected %dx%d (x is %s)", SH(gy),
               (int)x->shape[0], (int)x->shape[1], SH(x));
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  mm_global_avg_pool_backward(gy->data, gx->data, x->shape[0], x->shape[1], x->shape[2] * x->shape[3]);
  return 1;
}

const luaL_Reg mm_lua_nn_conv[] = {{"conv2d", l_conv2d},
                                   {"conv2d_backward", l_conv2d_backward},
                                   {"cnn_forward", l_cnn_forward},
                                   {"max_pool2d", l_max_pool2d},
                                   {"max_pool2d_backward", l_max_pool2d_backward},
                                   {"avg_pool2d", l_avg_pool2d},
                                   {"avg_pool2d_backward", l_avg_pool2d_backward},
                                   {"global_avg_pool", l_global_avg_pool},
                                   {"global_avg_pool_backward", l_global_avg_pool_backward},
                                   {NULL, NULL}};
