/* l_tfjs.c - Lua binding of TensorFlow.js layers models (csrc/io/tfjs.h) run
 * on the NHWC graph executor (csrc/nn/graph.h).
 *
 *   core.image.layers_model(path [, layer]) -> model (layer: the feature
 *     layer's name; nil: the model's global average pool)
 *   m:forward(x [, what]) x: Nx3xHxW or 3xHxW (planar, values as the model
 *     expects them); what = "features" (default) -> N x dim, "head" -> N x
 *     (the model's first output), "both" -> the two
 *   m:info() -> { height, width, channels, feature, feature_class, dim, head,
 *                 head_class, head_dim, layers, params, name, format }
 *   m:layers() -> { {name =, class =}, ... } (graph nodes in execution order)
 *   m:profile(true | false): per-step timing on / off (and reset)
 *   m:profile_report() -> { {name =, class =, op =, kh =, kw =, seconds =, macs =}, ... }
 *   m:arena_bytes() -> activations of the current plan */
#include <math.h>
#include <string.h>

#include "../io/tfjs.h"
#include "../nn/graph.h"
#include "mm_lua.h"

#define LAYERS_MT "mmfuse.LayersModel"

typedef struct {
  mm_graph *g;
  mm_tfjs_info info;
  int64_t dim, head_dim; /* at the declared size (0 when the model declares none) */
} lm_ud;

static lm_ud *check_lm(lua_State *L, int idx) {
  lm_ud *u = luaL_checkudata(L, idx, LAYERS_MT);
  if (!u->g) luaL_error(L, "layers model was closed");
  return u;
}

static int lm_gc(lua_State *L) {
  lm_ud *u = luaL_checkudata(L, 1, LAYERS_MT);
  mm_graph_free(u->g);
  u->g = NULL;
  return 0;
}

/* per-image values of node at h x w */
static int64_t per_image(lua_State *L, lm_ud *u, int node, int64_t h, int64_t w) {
  int64_t s[3];
  mm_err e;
  if (mm_graph_shape(u->g, node, h, w, s, &e)) mm_lua_raise(L, &e);
  return s[0] * s[1] * s[2];
}

static int l_layers_model(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *layer = luaL_optstring(L, 2, NULL);
  lm_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LAYERS_MT);
  mm_err e;
  if (mm_tfjs_load(path, layer, &u->g, &u->info, &e)) mm_lua_raise(L, &e);
  if (u->info.h > 0 && u->info.w > 0) {
    u->dim = per_image(L, u, u->info.feature, u->info.h, u->info.w);
    u->head_dim = per_image(L, u, u->info.head, u->info.h, u->info.w);
  }
  return 1;
}

static int lm_forward(lua_State *L) {
  lm_ud *u = check_lm(L, 1);
  mm_tensor *x = mm_lua_checktensor(L, 2, "x");
  static const char *const whats[] = {"features", "head", "both", NULL};
  int what = luaL_checkoption(L, 3, "features", whats);
  int64_t n, c, h, w;
  if (x->ndim == 3) {
    n = 1, c = x->shape[0], h = x->shape[1], w = x->shape[2];
  } else if (x->ndim == 4) {
    n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
  } else {
    return luaL_error(L, "layers model: forward: x must be Nx%Ix%Ix%I or %Ix%Ix%I, got shape %s",
                      (lua_Integer)u->info.c, (lua_Integer)u->info.h, (lua_Integer)u->info.w, (lua_Integer)u->info.c,
                      (lua_Integer)u->info.h, (lua_Integer)u->info.w, mm_lua_shapestr(x));
  }
  if (c != u->info.c)
    return luaL_error(L, "layers model: forward: x must have %I channels, got shape %s", (lua_Integer)u->info.c,
                      mm_lua_shapestr(x));
  for (int64_t i = 0; i < x->numel; i++)
    if (!isfinite(x->data[i]))
      return luaL_error(L, "layers model: forward: x contains %s at element %I (shape %s)",
                        isnan(x->data[i]) ? "NaN" : "Inf", (lua_Integer)i + 1, mm_lua_shapestr(x));
  int outs[2], k = 0;
  if (what != 1) outs[k++] = u->info.feature;
  if (what != 0) outs[k++] = u->info.head;
  float *ys[2];
  for (int i = 0; i < k; i++) {
    int64_t shape[2] = {n, per_image(L, u, outs[i], h, w)};
    ys[i] = mm_lua_newtensor_uninit(L, 2, shape)->data;
  }
  mm_err e;
  if (mm_graph_forward(u->g, x->data, 1, n, h, w, k, outs, ys, &e)) mm_lua_raise(L, &e);
  return k;
}

static void setint(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void setstr(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static int lm_info(lua_State *L) {
  lm_ud *u = check_lm(L, 1);
  const mm_tfjs_info *in = &u->info;
  lua_createtable(L, 0, 14);
  setint(L, "height", in->h);
  setint(L, "width", in->w);
  setint(L, "channels", in->c);
  setstr(L, "feature", mm_graph_name(u->g, in->feature));
  setstr(L, "feature_class", mm_graph_kind(u->g, in->feature));
  setint(L, "dim", u->dim);
  setstr(L, "head", mm_graph_name(u->g, in->head));
  setstr(L, "head_class", mm_graph_kind(u->g, in->head));
  setint(L, "head_dim", u->head_dim);
  setint(L, "layers", in->nlayers);
  setint(L, "params", mm_graph_params(u->g));
  setstr(L, "name", in->model_name);
  setstr(L, "format", in->format);
  return 1;
}

static int lm_layers(lua_State *L) {
  lm_ud *u = check_lm(L, 1);
  int n = mm_graph_size(u->g);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    setstr(L, "name", mm_graph_name(u->g, i));
    setstr(L, "class", mm_graph_kind(u->g, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int lm_profile(lua_State *L) {
  lm_ud *u = check_lm(L, 1);
  mm_graph_profile(u->g, lua_toboolean(L, 2));
  return 0;
}

static int lm_profile_report(lua_State *L) {
  lm_ud *u = check_lm(L, 1);
  int n = mm_graph_size(u->g), k = 0;
  lua_createtable(L, 0, 0);
  for (int i = 0; i < n; i++) {
    double secs, macs;
    const char *op;
    int kh, kw;
    mm_graph_profile_get(u->g, i, &secs, &macs, &op, &kh, &kw);
    if (secs <= 0.0) continue;
    lua_createtable(L, 0, 7);
    setint(L, "kh", kh);
    setint(L, "kw", kw);
    setstr(L, "name", mm_graph_name(u->g, i));
    setstr(L, "class", mm_graph_kind(u->g, i));
    setstr(L, "op", op);
    lua_pushnumber(L, secs);
    lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, macs);
    lua_setfield(L, -2, "macs");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int lm_arena(lua_State *L) {
  lua_pushinteger(L, mm_graph_arena_bytes(check_lm(L, 1)->g));
  return 1;
}

static int lm_tostring(lua_State *L) {
  lm_ud *u = luaL_checkudata(L, 1, LAYERS_MT);
  if (!u->g) {
    lua_pushliteral(L, "layers model (closed)");
    return 1;
  }
  lua_pushfstring(L, "layers model '%s': %d layers, %I parameters, input %Ix%Ix%I, features '%s' (%I)",
                  u->info.model_name, u->info.nlayers, (lua_Integer)mm_graph_params(u->g), (lua_Integer)u->info.h,
                  (lua_Integer)u->info.w, (lua_Integer)u->info.c, mm_graph_name(u->g, u->info.feature),
                  (lua_Integer)u->dim);
  return 1;
}

void mm_lua_open_tfjs(lua_State *L) {
  static const luaL_Reg methods[] = {{"forward", lm_forward},
                                     {"info", lm_info},
                                     {"layers", lm_layers},
                                     {"profile", lm_profile},
                                     {"profile_report", lm_profile_report},
                                     {"arena_bytes", lm_arena},
                                     {NULL, NULL}};
  luaL_newmetatable(L, LAYERS_MT);
  lua_pushcfunction(L, lm_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lm_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lm_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"layers_model", l_layers_model}, {NULL, NULL}};
  mm_lua_subtable(L, "image", fns);
}
