/* l_backbone.c - Lua binding of the ImageNet backbones (csrc/image/backbone.h):
 * core.image.backbone(arch) -> an object with params, set, set_raw, get,
 * forward, dim, arch (loading a weights file is Lua: lua/mmfuse/image.lua). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/tensor_ops.h"
#include "../image/backbone.h"
#include "mm_lua.h"

#define BACKBONE_MT "mmfuse.Backbone"
typedef struct {
  mm_backbone *b;
} backbone_ud;

static mm_backbone *check_backbone(lua_State *L, int idx) {
  backbone_ud *u = luaL_checkudata(L, idx, BACKBONE_MT);
  if (!u->b) luaL_error(L, "backbone was closed");
  return u->b;
}

static int bb_gc(lua_State *L) {
  backbone_ud *u = luaL_checkudata(L, 1, BACKBONE_MT);
  mm_backbone_free(u->b);
  u->b = NULL;
  return 0;
}

static int l_backbone(lua_State *L) {
  const char *arch = luaL_checkstring(L, 1);
  backbone_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->b = NULL;
  luaL_setmetatable(L, BACKBONE_MT);
  mm_err e;
  if (mm_backbone_new(arch, &u->b, &e)) mm_lua_raise(L, &e);
  return 1;
}

static int check_param(lua_State *L, mm_backbone *b, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int i = mm_backbone_find(b, name);
  if (i < 0) luaL_error(L, "%s: no parameter named '%s'", mm_backbone_arch(b), name);
  return i;
}

/* b:params() -> { {name = , shape = {..}}, ... } in state_dict order */
static int bb_params(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int n = mm_backbone_nparams(b);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    int64_t shape[4];
    int nd = mm_backbone_param_shape(b, i, shape);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, mm_backbone_param_name(b, i));
    lua_setfield(L, -2, "name");
    lua_createtable(L, nd, 0);
    for (int d = 0; d < nd; d++) {
      lua_pushinteger(L, shape[d]);
      lua_rawseti(L, -2, d + 1);
    }
    lua_setfield(L, -2, "shape");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* b:set(name, tensor): the tensor must have the parameter's shape */
static int bb_set(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  mm_tensor *t = mm_lua_checktensor(L, 3, "value");
  int64_t shape[4];
  int nd = mm_backbone_param_shape(b, i, shape);
  int same = t->ndim == nd;
  for (int d = 0; same && d < nd; d++) same = t->shape[d] == shape[d];
  if (!same) {
    char want[96];
    int k = 0;
    for (int d = 0; d < nd; d++) k += snprintf(want + k, sizeof want - (size_t)k, d ? "x%lld" : "%lld", (long long)shape[d]);
    luaL_error(L, "%s: parameter '%s' has shape %s, got %s", mm_backbone_arch(b), mm_backbone_param_name(b, i), want,
               mm_lua_shapestr(t));
  }
  mm_err e;
  if (mm_backbone_set(b, i, t->data, &e)) return mm_lua_raise(L, &e);
  return 0;
}

/* b:set_raw(name, bytes, offset): float32 little-endian from bytes[offset+1 ..] (0-based offset) */
static int bb_set_raw(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  size_t len;
  const char *s = luaL_checklstring(L, 3, &len);
  lua_Integer off = luaL_checkinteger(L, 4);
  mm_err e;
  if (mm_backbone_set_raw(b, i, s, len, off, &e)) return mm_lua_raise(L, &e);
  return 0;
}

/* b:get(name) -> tensor copy */
static int bb_get(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  int i = check_param(L, b, 2);
  int64_t shape[4];
  int nd = mm_backbone_param_shape(b, i, shape);
  mm_tensor *t = mm_lua_newtensor(L, nd, shape);
  memcpy(t->data, mm_backbone_param_peek(b, i), (size_t)t->numel * sizeof(float));
  return 1;
}

/* b:forward(x) -> N x dim (x: Nx3xHxW or 3xHxW, normalised) */
static int bb_forward(lua_State *L) {
  mm_backbone *b = check_backbone(L, 1);
  mm_tensor *x = mm_lua_checktensor(L, 2, "x");
  int64_t n, c, h, w;
  if (x->ndim == 3) {
    n = 1;
    c = x->shape[0];
    h = x->shape[1];
    w = x->shape[2];
  } else if (x->ndim == 4) {
    n = x->shape[0];
    c = x->shape[1];
    h = x->shape[2];
    w = x->shape[3];
  } else {
    return luaL_error(L, "%s: forward: x must be Nx3xHxW or 3xHxW, got shape %s", mm_backbone_arch(b),
                      mm_lua_shapestr(x));
  }
  if (c != 3)
    luaL_error(L, "%s: forward: x must have 3 channels, got shape %s", mm_backbone_arch(b), mm_lua_shapestr(x));
  int64_t bad = mm_find_nonfinite(x->data, x->numel);
  if (bad >= 0)
    luaL_error(L, "%s: x contains %s at element %I (shape %s)", mm_backbone_arch(b), isnan(x->data[bad]) ? "NaN" : "Inf",
               (lua_Integer)bad + 1, mm_lua_shapestr(x));
  int64_t shape[2] = {n, mm_backbone_dim(b)};
  mm_tensor *y = mm_lua_newtensor(L, 2, shape);
  mm_err e;
  if (mm_backbone_forward(b, x->data, n, h, w, y->data, &e)) mm_lua_raise(L, &e);
  return 1;
}

static int bb_dim(lua_State *L) {
  lua_pushinteger(L, mm_backbone_dim(check_backbone(L, 1)));
  return 1;
}

static int bb_arch(lua_State *L) {
  lua_pushstring(L, mm_backbone_arch(check_backbone(L, 1)));
  return 1;
}

static int bb_tostring(lua_State *L) {
  backbone_ud *u = luaL_checkudata(L, 1, BACKBONE_MT);
  if (!u->b) {
    lua_pushliteral(L, "backbone (closed)");
    return 1;
  }
  lua_pushfstring(L, "%s backbone: %d tensors, %I parameters, output %I", mm_backbone_arch(u->b),
                  mm_backbone_nparams(u->b), (lua_Integer)mm_backbone_total_params(u->b),
                  (lua_Integer)mm_backbone_dim(u->b));
  return 1;
}

void mm_lua_open_backbone(lua_State *L) {
  static const luaL_Reg methods[] = {{"params", bb_params}, {"set", bb_set},   {"set_raw", bb_set_raw},
                                     {"get", bb_get},       {"forward", bb_forward}, {"dim", bb_dim},
                                     {"arch", bb_arch},     {NULL, NULL}};
  luaL_newmetatable(L, BACKBONE_MT);
  lua_pushcfunction(L, bb_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, bb_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, bb_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"backbone", l_backbone}, {NULL, NULL}};
  mm_lua_subtable(L, "image", fns);
}
