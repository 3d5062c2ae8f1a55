/* l_nn.c - core.nn, the Lua binding of the layer kernels (csrc/nn): the
 * registration of every op (this file, l_nn_conv.c, l_nn_loss.c) and the
 * ops of this file: linear, activations, dropout, softmax, embedding_bag,
 * modality_pool, batch_norm, the optimiser steps (conventions: l_nn.h). */
#include <math.h>
#include <string.h>

#include "../nn/nn.h"
#include "l_nn.h"

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
  a->x = nn_tensor(L, 1, "x");
  a->w = nn_tensor(L, 2, "weight");
  a->b = nn_opt_tensor(L, 3, "bias");
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
  mm_tensor *gy = nn_tensor(L, 4, "grad_out");
  if (gy->ndim != a.yndim || memcmp(gy->shape, a.yshape, sizeof(int64_t) * (size_t)a.yndim) != 0)
    luaL_error(L, "linear_backward: grad_out has shape %s, expected the output shape (x %s, weight %s)", SH(gy),
               SH(a.x), SH(a.w));
  mm_tensor *gx, *gw, *gb;
  int idx[3] = {nn_grad_like(L, a.x, &gx), nn_grad_like(L, a.w, &gw), nn_grad_like(L, a.b, &gb)};
  mm_linear_backward(a.x->data, a.w->data, gy->data, gx->data, gw->data, gb ? gb->data : NULL, a.n, a.in, a.out);
  return nn_return(L, 3, idx);
}

/* ======================================================================= */
/* activations                                                             */
/* ======================================================================= */

typedef void (*act_fwd)(const float *, float *, int64_t);

static int act_forward(lua_State *L, act_fwd f) {
  mm_tensor *x = nn_tensor(L, 1, "x");
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  f(x->data, y->data, x->numel);
  return 1;
}

/* backward(x, gy) -> gx; uses_out: the kernel wants the forward output */
static int act_backward(lua_State *L, const char *fn, act_fwd f,
                        void (*b)(const float *, const float *, float *, int64_t), int uses_out) {
  mm_tensor *x = nn_tensor(L, 1, "x");
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  nn_same_shape(L, x, gy, fn, "x", "grad_out");
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
  mm_tensor *x = nn_tensor(L, 1, "x");
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
  mm_tensor *x = nn_tensor(L, 1, "x");
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  nn_same_shape(L, x, gy, "dropout_backward", "x", "grad_out");
  mm_tensor *mask = nn_opt_tensor(L, 3, "mask");
  mm_tensor *gx = mm_lua_newtensor_like(L, x);
  if (!mask) {
    memcpy(gx->data, gy->data, (size_t)x->numel * sizeof(float));
    return 1;
  }
  nn_same_shape(L, x, mask, "dropout_backward", "x", "mask");
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

/* softmax(x[, dim]) / log_softmax(x[, dim]) over the last dimension */
static int softmax_fw(lua_State *L, int logv) {
  mm_tensor *x = nn_tensor(L, 1, "x");
  int64_t r, c;
  last_dim(L, x, 2, logv ? "log_softmax" : "softmax", &r, &c);
  mm_tensor *y = mm_lua_newtensor_like(L, x);
  (logv ? mm_log_softmax_forward : mm_softmax_forward)(x->data, y->data, r, c);
  return 1;
}
static int l_softmax(lua_State *L) { return softmax_fw(L, 0); }
static int l_log_softmax(lua_State *L) { return softmax_fw(L, 1); }

/* softmax_backward(x, gy) -> gx */
static int softmax_bw(lua_State *L, int logv) {
  const char *fn = logv ? "log_softmax_backward" : "softmax_backward";
  mm_tensor *x = nn_tensor(L, 1, "x");
  mm_tensor *gy = nn_tensor(L, 2, "grad_out");
  nn_same_shape(L, x, gy, fn, "x", "grad_out");
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
/* embedding bag                                                           */
/* ======================================================================= */

typedef struct {
  mm_tensor *w;
  int64_t *ids, *offsets;
  int64_t nids, nbags;
} bag_args;

/* fixed-length bags (no offsets): ids is a 2-d tensor or a table of equal-length tables */
static void bag_rows(lua_State *L, bag_args *a, const char *fn) {
  mm_tensor *t = mm_lua_testtensor(L, 2);
  if (!t && !lua_istable(L, 2)) luaL_error(L, "%s: ids must be a table or a tensor, got %s", fn, luaL_typename(L, 2));
  if (t && t->ndim != 2) luaL_error(L, "%s: without offsets, ids must be 2-d [bags, ids per bag], got shape %s", fn, SH(t));
  if (!t) {
    t = mm_lua_totensor(L, 2, "ids");
    if (t->ndim != 2)
      luaL_error(L, "%s: without offsets, ids must be a table of equal-length tables (got shape %s)", fn, SH(t));
  }
  int64_t rows = t->shape[0], cols = t->shape[1];
  a->ids = nn_int_list(L, 2, fn, "ids", &a->nids);
  a->nbags = rows;
  a->offsets = nn_scratch(L, (size_t)(rows + 1) * sizeof(int64_t));
  for (int64_t b = 0; b <= rows; b++) a->offsets[b] = b * cols;
}

/* embedding_bag(weight, ids, offsets[, opts]); see nn.lua for the offsets rules */
static void bag_prep(lua_State *L, bag_args *a, int optidx, const char *fn) {
  a->w = nn_tensor(L, 1, "weight");
  if (a->w->ndim != 2) luaL_error(L, "%s: weight must be 2-d [rows, dim], got shape %s", fn, SH(a->w));
  int last;
  const mm_lua_opt opts[] = {MM_OPT_BOOL("include_last_offset", &last, -1), MM_OPT_END};
  mm_lua_readopts(L, optidx, fn, opts);
  int64_t nrows = a->w->shape[0];
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: ids missing (weight is %s)", fn, SH(a->w));
  if (lua_isnoneornil(L, 3)) {
    bag_rows(L, a, fn);
  } else {
    a->ids = nn_int_list(L, 2, fn, "ids", &a->nids);
    int64_t no;
    int64_t *off = nn_int_list(L, 3, fn, "offsets", &no);
    a->offsets = nn_scratch(L, (size_t)(no + 1) * sizeof(int64_t));
    mm_err e;
    if (mm_embedding_bag_csr(off, no, a->nids, last, a->offsets, &a->nbags, &e)) {
      mm_err_prefix(&e, "%s: ", fn);
      mm_lua_raise(L, &e);
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
  mm_tensor *gy = nn_tensor(L, 4, "grad_out");
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
  a->x = nn_tensor(L, 1, "vectors");
  if (a->x->ndim != 3) luaL_error(L, "%s: vectors must be 3-d [N, K, D], got shape %s", fn, SH(a->x));
  a->n = a->x->shape[0];
  a->k = a->x->shape[1];
  a->d = a->x->shape[2];
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: mask missing (a %dx%d tensor or table)", fn, (int)a->n, (int)a->k);
  a->mask = nn_mask(L, 2, a->n, a->k, fn, "mask", "vectors", a->x);
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
  mm_tensor *gy = nn_tensor(L, 3, "grad_out");
  if (gy->ndim != 2 || gy->shape[0] != a.n || gy->shape[1] != a.d)
    luaL_error(L, "modality_pool_backward: grad_out has shape %s, expected %dx%d (vectors is %s)", SH(gy), (int)a.n,
               (int)a.d, SH(a.x));
  int64_t sh[2] = {a.n, a.d};
  mm_tensor *y = mm_lua_newtensor(L, 2, sh);
  int32_t *arg = nn_scratch(L, (size_t)(a.n * a.d > 0 ? a.n * a.d : 1) * sizeof(int32_t));
  mm_err e;
  if (mm_modality_pool_forward(a.x->data, a.mask, a.n, a.k, a.d, a.mode, y->data, arg, &e)) mm_lua_raise(L, &e);
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_modality_pool_backward(a.mask, arg, gy->data, a.n, a.k, a.d, a.mode, gx->data);
  return 1;
}

/* ======================================================================= */
/* batch norm (inference) and optimizer steps                              */
/* ======================================================================= */

/* batch_norm(x, running_mean, running_var, weight, bias, eps = 1e-5), inference form */
static int l_batch_norm(lua_State *L) {
  const char *fn = "batch_norm";
  mm_tensor *x = nn_tensor(L, 1, "x");
  if (x->ndim < 2) luaL_error(L, "%s: x must be [N, C, ...], got shape %s", fn, SH(x));
  int64_t n = x->shape[0], c = x->shape[1], hw = 1;
  for (int i = 2; i < x->ndim; i++) hw *= x->shape[i];
  const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
  mm_tensor *p[4];
  for (int i = 0; i < 4; i++) {
    p[i] = i < 2 ? nn_tensor(L, 2 + i, names[i]) : nn_opt_tensor(L, 2 + i, names[i]);
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
  mm_tensor *g = nn_tensor(L, 2, "grad");
  same_numel(L, p, g, fn, "param", "grad");
  mm_tensor *vel = lua_isnoneornil(L, 3) ? NULL : mm_lua_checktensor(L, 3, "velocity");
  if (vel) same_numel(L, p, vel, fn, "param", "velocity");
  lua_Number lr, mom, wd;
  const mm_lua_opt opts[] = {MM_OPT_NUM("lr", &lr, 0.01), MM_OPT_NUM("momentum", &mom, 0.0),
                             MM_OPT_NUM("weight_decay", &wd, 0.0), MM_OPT_END};
  mm_lua_readopts(L, 4, fn, opts);
  if (mom != 0.0 && !vel) luaL_error(L, "%s: momentum %f needs a velocity tensor (argument #3)", fn, mom);
  mm_sgd_step(p->data, g->data, vel ? vel->data : NULL, p->numel, (float)lr, (float)mom, (float)wd);
  lua_settop(L, 1);
  return 1;
}

/* adam's betas {b1, b2} at the top of the stack (nil: the defaults) */
static void read_betas(lua_State *L, const char *fn, lua_Number *b1, lua_Number *b2) {
  if (lua_isnil(L, -1)) return;
  if (!lua_istable(L, -1) || luaL_len(L, -1) != 2)
    luaL_error(L, "%s: option 'betas' must be a table of two numbers {b1, b2}, got %s", fn, luaL_typename(L, -1));
  lua_Number *b[2] = {b1, b2};
  for (int i = 0; i < 2; i++) {
    lua_geti(L, -1, i + 1);
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: option 'betas' must be a table of two numbers {b1, b2}, entry %d is %s", fn, i + 1,
                 luaL_typename(L, -1));
    *b[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
}

/* adam_step(param, grad, m, v, step, {lr=, betas={b1,b2}, eps=, weight_decay=}): in place */
static int l_adam_step(lua_State *L) {
  const char *fn = "adam_step";
  mm_tensor *p = mm_lua_checktensor(L, 1, "param");
  mm_tensor *g = nn_tensor(L, 2, "grad");
  mm_tensor *m = mm_lua_checktensor(L, 3, "m");
  mm_tensor *v = mm_lua_checktensor(L, 4, "v");
  same_numel(L, p, g, fn, "param", "grad");
  same_numel(L, p, m, fn, "param", "m");
  same_numel(L, p, v, fn, "param", "v");
  lua_Integer step = luaL_checkinteger(L, 5);
  if (step < 1) luaL_error(L, "%s: step must be >= 1, got %d", fn, (int)step);
  lua_Number lr, eps, wd, b1 = 0.9, b2 = 0.999;
  int has_betas;
  const mm_lua_opt opts[] = {MM_OPT_NUM("lr", &lr, 1e-3), MM_OPT_ANY("betas", &has_betas), MM_OPT_NUM("eps", &eps, 1e-8),
                             MM_OPT_NUM("weight_decay", &wd, 0.0), MM_OPT_END};
  mm_lua_readopts(L, 6, fn, opts);
  if (has_betas != LUA_TNIL) {
    lua_getfield(L, 6, "betas");
    read_betas(L, fn, &b1, &b2);
  }
  mm_adam_step(p->data, g->data, m->data, v->data, p->numel, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
               step);
  lua_settop(L, 1);
  return 1;
}

/* ======================================================================= */
/* registration                                                            */
/* ======================================================================= */

static const luaL_Reg nn_fns[] = {{"linear", l_linear},
                                  {"linear_backward", l_linear_backward},
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
                                  {"embedding_bag", l_embedding_bag},
                                  {"embedding_bag_backward", l_embedding_bag_backward},
                                  {"modality_pool", l_modality_pool},
                                  {"modality_pool_backward", l_modality_pool_backward},
                                  {"batch_norm", l_batch_norm},
                                  {"sgd_step", l_sgd_step},
                                  {"adam_step", l_adam_step},
                                  {NULL, NULL}};

/* calls the op (upvalue 1) with the stack set to NN_NARGS slots (l_nn.h) */
static int nn_entry(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
  lua_settop(L, NN_NARGS);
  return f(L);
}

void mm_lua_open_nn(lua_State *L) {
  const luaL_Reg *const lists[] = {nn_fns, mm_lua_nn_conv, mm_lua_nn_loss};
  lua_getfield(L, -1, "nn");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "nn");
  }
  for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
    for (const luaL_Reg *r = lists[k]; r->name; r++) {
      lua_pushcfunction(L, r->func);
      lua_pushcclosure(L, nn_entry, 1);
      lua_setfield(L, -2, r->name);
    }
  lua_pop(L, 1);
}
