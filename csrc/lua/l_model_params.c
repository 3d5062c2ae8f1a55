/* l_model_params.c - a model's parameters in core.fusion: the list, one
 * parameter (a copy out, a new value in, frozen or not), snapshots of every
 * weight (early stopping) and the gradients of one batch (gradient checks). */
#include <stdlib.h>
#include <string.h>

#include "l_model.h"

#define SNAP_MT "mmfuse.Snapshot"
#define checkmodel mm_lua_checkmodel
#define SETI(k, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, (k)))
#define SETS(k, v) (lua_pushstring(L, (v)), lua_setfield(L, -2, (k)))

typedef struct lsnap {
  float *w;
} lsnap;

static int snap_gc(lua_State *L) {
  lsnap *s = luaL_checkudata(L, 1, SNAP_MT);
  free(s->w);
  s->w = NULL;
  return 0;
}

static int l_snapshot(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lsnap *s = lua_newuserdatauv(L, sizeof *s, 1);
  s->w = NULL;
  luaL_setmetatable(L, SNAP_MT);
  mm_err e = {0};
  s->w = mm_model_snapshot(M, &e);
  if (!s->w) return mm_lua_raise(L, &e);
  lua_pushvalue(L, 1); /* remember the model it belongs to */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int l_restore(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lsnap *s = luaL_checkudata(L, 2, SNAP_MT);
  lua_getiuservalue(L, 2, 1);
  if (!lua_rawequal(L, -1, 1) || !s->w) return luaL_argerror(L, 2, "snapshot of another model");
  mm_model_restore(M, s->w);
  return 0;
}

static int l_params(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lua_createtable(L, M->nparams, 0);
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    lua_createtable(L, 0, 3);
    SETS("name", p->name);
    mm_lua_push_ints(L, p->shape, p->ndim);
    lua_setfield(L, -2, "shape");
    SETI("count", p->count);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* the parameter named by argument idx, or a Lua error naming it */
static mm_param *check_param(lua_State *L, mm_model *M, int idx) {
  const char *name = luaL_checkstring(L, idx);
  int i = mm_model_find_param(M, name);
  if (i < 0) luaL_error(L, "model: no parameter '%s'", name);
  return &M->params[i];
}

/* param(M, name) -> tensor copy */
static int l_param(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_param *p = check_param(L, M, 2);
  mm_tensor *t = mm_lua_newtensor(L, p->ndim, p->shape);
  memcpy(t->data, p->w, (size_t)p->count * sizeof(float));
  return 1;
}

/* set_param(M, name, tensor) */
static int l_set_param(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_param *p = check_param(L, M, 2);
  mm_tensor *t = mm_lua_totensor(L, 3, "value");
  if (t->numel != p->count) return luaL_error(L, "model: %s needs %d values, got %s", p->name, (int)p->count,
                                              mm_lua_shapestr(t));
  mm_err e = {0};
  if (mm_model_set_param(M, (int)(p - M->params), t->data, t->numel, &e)) return mm_lua_raise(L, &e);
  return 0;
}

/* loss_grad(M, ds) -> loss (gradients stay in the model; read them with grad) */
static int l_loss_grad(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  double loss = 0;
  mm_err e = {0};
  if (mm_model_loss_grad(M, ds, &loss, &e)) return mm_lua_raise(L, &e);
  lua_pushnumber(L, loss);
  return 1;
}

/* grad(M, name) -> tensor copy of the accumulated gradient */
static int l_grad(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_param *p = check_param(L, M, 2);
  mm_tensor *t = mm_lua_newtensor(L, p->ndim, p->shape);
  memcpy(t->data, p->g, (size_t)p->count * sizeof(float));
  return 1;
}

/* freeze(M, name, bool) */
static int l_freeze(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_param *p = check_param(L, M, 2);
  p->frozen = lua_toboolean(L, 3);
  return 0;
}

void mm_lua_open_model_params(lua_State *L) {
  if (luaL_newmetatable(L, SNAP_MT)) {
    lua_pushcfunction(L, snap_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"snapshot", l_snapshot}, {"restore", l_restore}, {"params", l_params},
                                 {"param", l_param},       {"set_param", l_set_param}, {"freeze", l_freeze},
                                 {"loss_grad", l_loss_grad}, {"grad", l_grad},         {NULL, NULL}};
  mm_lua_setfuncs(L, fns);
}
