/* l_nn_loss.c - core.nn's losses: nll_loss, cross_entropy, the common-space
 * ranking_loss, margin_ranking_loss, and the cosine similarity they build on;
 * forward and backward (conventions: l_nn.h). */
#include <math.h>

#include "../nn/nn.h"
#include "l_nn.h"

/* ---- nll_loss, cross_entropy -------------------------------------------------------- */

typedef struct {
  mm_tensor *x;
  int64_t *labels;
  float *weight;
  int64_t n, c;
} loss_args;

/* x (named xname) at 1, labels at 2, options {weight=} at optidx */
static void loss_prep(lua_State *L, loss_args *a, int optidx, const char *fn, const char *xname) {
  a->x = nn_tensor(L, 1, xname);
  if (a->x->ndim != 2 && a->x->ndim != 1)
    luaL_error(L, "%s: %s must be 2-d [batch, classes] (or 1-d [classes]), got shape %s", fn, xname, SH(a->x));
  a->n = a->x->ndim == 2 ? a->x->shape[0] : 1;
  a->c = a->x->shape[a->x->ndim - 1];
  if (a->n < 1 || a->c < 1) luaL_error(L, "%s: %s is empty (shape %s)", fn, xname, SH(a->x));
  a->labels = nn_labels(L, 2, a->n, a->c, fn, xname, a->x);
  int has_w;
  const mm_lua_opt opts[] = {MM_OPT_ANY("weight", &has_w), MM_OPT_END};
  mm_lua_readopts(L, optidx, fn, opts);
  a->weight = NULL;
  if (has_w != LUA_TNIL) {
    lua_getfield(L, optidx, "weight");
    mm_tensor *w = mm_lua_totensor(L, lua_gettop(L), "weight"); /* anchored: left on the stack */
    if (!(w->ndim == 1 && w->shape[0] == a->c))
      luaL_error(L, "%s: weight has shape %s, expected %d (one per class; %s is %s)", fn, SH(w), (int)a->c, xname,
                 SH(a->x));
    a->weight = w->data;
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
  float g = nn_grad_scalar(L, 3, "nll_loss_backward");
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
  float g = nn_grad_scalar(L, 3, "cross_entropy_backward");
  float *probs = nn_fscratch(L, a.n * a.c);
  double loss;
  mm_err e;
  if (mm_cross_entropy_forward(a.x->data, a.labels, a.weight, a.n, a.c, probs, &loss, &e)) mm_lua_raise(L, &e);
  mm_tensor *gx = mm_lua_newtensor_like(L, a.x);
  mm_cross_entropy_backward(probs, a.labels, a.weight, a.n, a.c, g, gx->data);
  return 1;
}

/* ---- cosine similarity ------------------------------------------------------------ */

static void cos_prep(lua_State *L, mm_tensor **a, mm_tensor **b, int64_t *n, int64_t *d, const char *fn) {
  *a = nn_tensor(L, 1, "a");
  *b = nn_tensor(L, 2, "b");
  if ((*a)->ndim != 2 && (*a)->ndim != 1) luaL_error(L, "%s: a must be 2-d [N, D] or 1-d [D], got shape %s", fn, SH(*a));
  nn_same_shape(L, *a, *b, fn, "a", "b");
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
  mm_tensor *gs = nn_tensor(L, 3, "grad_out");
  if (gs->numel != n)
    luaL_error(L, "cosine_similarity_backward: grad_out has shape %s, expected %d (a is %s)", SH(gs), (int)n, SH(a));
  mm_tensor *ga, *gb;
  int idx[2] = {nn_grad_like(L, a, &ga), nn_grad_like(L, b, &gb)};
  mm_cosine_backward(a->data, b->data, gs->data, ga->data, gb->data, n, d);
  return nn_return(L, 2, idx);
}

/* ---- ranking_loss ----------------------------------------------------------------- */

typedef struct {
  mm_tensor *v, *t;
  int64_t *labels;
  uint8_t *vmask, *tmask;
  int64_t n, d;
  float margin;
  int hardest;
} rank_args;

/* v, t, labels at 1..3, options {margin = 0.2, hardest = false, vmask =, tmask =} at optidx */
static void rank_prep(lua_State *L, rank_args *a, int optidx, const char *fn) {
  a->v = nn_tensor(L, 1, "v");
  a->t = nn_tensor(L, 2, "t");
  if (a->v->ndim != 2) luaL_error(L, "%s: v must be 2-d [N, D], got shape %s", fn, SH(a->v));
  nn_same_shape(L, a->v, a->t, fn, "v", "t");
  a->n = a->v->shape[0];
  a->d = a->v->shape[1];
  a->labels = nn_labels(L, 3, a->n, 0, fn, "v", a->v);
  lua_Number margin;
  int has_vmask, has_tmask;
  const mm_lua_opt opts[] = {MM_OPT_NUM("margin", &margin, 0.2),
                             MM_OPT_BOOL("hardest", &a->hardest, 0), MM_OPT_ANY("vmask", &has_vmask),
                             MM_OPT_ANY("tmask", &has_tmask), MM_OPT_END};
  mm_lua_readopts(L, optidx, fn, opts);
  if (!isfinite(margin)) luaL_error(L, "%s: margin must be finite, got %f", fn, margin);
  a->margin = (float)margin;
  a->vmask = a->tmask = NULL;
  if (has_vmask != LUA_TNIL) {
    lua_getfield(L, optidx, "vmask");
    a->vmask = nn_mask(L, lua_gettop(L), a->n, 0, fn, "vmask", "v", a->v);
  }
  if (has_tmask != LUA_TNIL) {
    lua_getfield(L, optidx, "tmask");
    a->tmask = nn_mask(L, lua_gettop(L), a->n, 0, fn, "tmask", "t", a->t);
  }
}

/* the matrix form's scratch up to 4096 rows (O(n^2) floats); above, the
 * per-pair form (NULL) */
static float *rank_scratch(lua_State *L, const rank_args *a) {
  return a->n <= 4096 ? nn_fscratch(L, mm_ranking_scratch(a->n, a->d)) : NULL;
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
  float g = nn_grad_scalar(L, 4, "ranking_loss_backward");
  mm_tensor *gv, *gt;
  int idx[2] = {nn_grad_like(L, a.v, &gv), nn_grad_like(L, a.t, &gt)};
  double loss;
  mm_ranking_loss(a.v->data, a.t->data, a.labels, a.vmask, a.tmask, a.n, a.d, a.margin, a.hardest, g, &loss, gv->data,
                  gt->data, NULL, rank_scratch(L, &a));
  return nn_return(L, 2, idx);
}

/* ---- margin_ranking_loss ---------------------------------------------------------- */

/* margin_ranking_loss(x1, x2, y, margin = 0): mean(max(0, -y (x1 - x2) + margin)) */
typedef struct {
  mm_tensor *x1, *x2, *y;
  float margin;
} mr_args;

/* x1, x2, y at 1..3; the margin at midx: a number or {margin =} */
static void mr_prep(lua_State *L, mr_args *a, int midx, const char *fn) {
  a->x1 = nn_tensor(L, 1, "x1");
  a->x2 = nn_tensor(L, 2, "x2");
  a->y = nn_tensor(L, 3, "y");
  nn_same_shape(L, a->x1, a->x2, fn, "x1", "x2");
  nn_same_shape(L, a->x1, a->y, fn, "x1", "y");
  if (a->x1->numel < 1) luaL_error(L, "%s: x1 is empty (shape %s)", fn, SH(a->x1));
  lua_Number m = 0.0;
  if (lua_type(L, midx) == LUA_TNUMBER) {
    m = lua_tonumber(L, midx);
  } else if (lua_istable(L, midx)) {
    const mm_lua_opt opts[] = {MM_OPT_NUM("margin", &m, 0.0), MM_OPT_END};
    mm_lua_readopts(L, midx, fn, opts);
  } else if (!lua_isnoneornil(L, midx)) {
    luaL_error(L, "%s: margin must be a number, got %s", fn, luaL_typename(L, midx));
  }
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
  float g = nn_grad_scalar(L, 4, "margin_ranking_loss_backward");
  mm_tensor *g1, *g2;
  int idx[2] = {nn_grad_like(L, a.x1, &g1), nn_grad_like(L, a.x2, &g2)};
  mm_margin_ranking_loss(a.x1->data, a.x2->data, a.y->data, a.x1->numel, a.margin, g, g1->data, g2->data);
  return nn_return(L, 2, idx);
}

const luaL_Reg mm_lua_nn_loss[] = {{"nll_loss", l_nll_loss},
                                   {"nll_loss_backward", l_nll_loss_backward},
                                   {"cross_entropy", l_cross_entropy},
                                   {"cross_entropy_backward", l_cross_entropy_backward},
                                   {"cosine_similarity", l_cosine_similarity},
                                   {"cosine_similarity_backward", l_cosine_similarity_backward},
                                   {"ranking_loss", l_ranking_loss},
                                   {"ranking_loss_backward", l_ranking_loss_backward},
                                   {"margin_ranking_loss", l_margin_ranking_loss},
                                   {"margin_ranking_loss_backward", l_margin_ranking_loss_backward},
                                   {NULL, NULL}};
