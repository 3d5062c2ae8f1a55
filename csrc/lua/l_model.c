/* l_model.c - Lua binding of the fusion models (csrc/model/model.h): core.model.
 * The Lua face (lua/mmfuse/model.lua) holds the user-facing options, the
 * epoch loop with early stopping, metrics tables and the file header JSON;
 * everything per sample runs here in C. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../io/safetensors.h"
#include "../model/metrics.h"
#include "../model/model.h"
#include "../text/vectors.h"
#include "../text/vocab.h"
#include "mm_lua.h"

#define MODEL_MT "mmfuse.Model"
#define SNAP_MT "mmfuse.Snapshot"
#define BLOB_MT "mmfuse.ModelFile"

mm_dataset *mm_lua_checkdataset(lua_State *L, int idx);

typedef struct lmodel {
  mm_model *M;
} lmodel;

static mm_model *checkmodel(lua_State *L, int idx) {
  lmodel *u = luaL_checkudata(L, idx, MODEL_MT);
  if (!u->M) luaL_argerror(L, idx, "model is closed");
  return u->M;
}

static int model_gc(lua_State *L) {
  lmodel *u = luaL_checkudata(L, 1, MODEL_MT);
  if (u->M && u->M->in_use) /* only reachable through __close from on_batch */
    return luaL_error(L, "model: cannot close a model while it is training (from inside on_batch)");
  if (u->M) {
    mm_model_free(u->M);
    free(u->M);
    u->M = NULL;
  }
  return 0;
}

static int lookup(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

static const char *const FUSIONS[] = {"text", "image", "early", "late", "joint", "commonspace"};
static const char *const ENCS[] = {"auto", "text", "cnn", "histogram", "features"};
static const char *const POOLS[] = {"max", "mean", "sum"};

static void parse_modality(lua_State *L, int idx, mm_modcfg *c) {
  memset(c, 0, sizeof *c);
  const char *name = mm_lua_optstrfield(L, idx, "name", NULL);
  if (!name || strlen(name) >= MM_MODNAME) luaL_error(L, "model: every modality needs a name (< %d bytes)", MM_MODNAME);
  strcpy(c->name, name);
  const char *enc = mm_lua_optstrfield(L, idx, "encoder", "auto");
  c->enc = lookup(enc, ENCS, 5);
  if (c->enc < 0) luaL_error(L, "model: unknown encoder '%s' for '%s' (auto, text, cnn, histogram, features)", enc, name);
  c->in_dim = mm_lua_optintfield(L, idx, "in_dim", 0);
  c->img_h = mm_lua_optintfield(L, idx, "height", 0);
  c->img_w = mm_lua_optintfield(L, idx, "width", 0);
  c->ksize = mm_lua_optintfield(L, idx, "kernel", 3);
  c->augment = mm_lua_optboolfield(L, idx, "augment", 0);
  c->drop = (float)mm_lua_optnumfield(L, idx, "dropout", 0);
  lua_getfield(L, idx, "channels");
  if (lua_istable(L, -1)) {
    int nb = (int)lua_rawlen(L, -1);
    if (nb < 1 || nb > MM_MAXBLOCKS) luaL_error(L, "model: channels of '%s' must list 1..%d blocks", name, MM_MAXBLOCKS);
    c->nblocks = nb;
    for (int b = 0; b < nb; b++) {
      lua_rawgeti(L, -1, b + 1);
      c->ch[b] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1))
    luaL_error(L, "model: channels of '%s' must be a table of integers", name);
  lua_pop(L, 1);
  if (c->enc == MM_ENC_CNN && c->nblocks == 0) {
    c->nblocks = 3;
    c->ch[0] = 16, c->ch[1] = 32, c->ch[2] = 64;
  }
  lua_getfield(L, idx, "bins");
  if (lua_istable(L, -1)) {
    int v[3];
    for (int b = 0; b < 3; b++) {
      lua_rawgeti(L, -1, b + 1);
      v[b] = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    c->hb = v[0], c->sb = v[1], c->vb = v[2];
    if (c->enc == MM_ENC_HIST && (c->hb < 1 || c->sb < 1 || c->vb < 1))
      luaL_error(L, "model: histogram bins of '%s' must each be in 1..64", name);
  } else if (!lua_isnil(L, -1))
    luaL_error(L, "model: bins of '%s' must be a table {hue, saturation, value}", name);
  lua_pop(L, 1);
  if (c->enc == MM_ENC_HIST && c->hb == 0) c->hb = 8, c->sb = 4, c->vb = 4;
}

/* new(cfg) */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lmodel *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->M = NULL;
  luaL_setmetatable(L, MODEL_MT);
  mm_model *M = calloc(1, sizeof *M);
  if (!M) return luaL_error(L, "model: out of memory");
  u->M = M;
  mm_model_init(M);
  const char *f = mm_lua_optstrfield(L, 1, "fusion", "joint");
  M->fusion = lookup(f, FUSIONS, 6);
  if (M->fusion < 0) return luaL_error(L, "model: unknown fusion '%s' (text, image, early, late, joint, commonspace)", f);
  const char *p = mm_lua_optstrfield(L, 1, "pool", "max");
  M->pool = lookup(p, POOLS, 3);
  if (M->pool < 0) return luaL_error(L, "model: unknown pool '%s' (max, mean, sum)", p);
  M->dim = mm_lua_optintfield(L, 1, "dim", 64);
  M->nclasses = mm_lua_optintfield(L, 1, "nclasses", 0);
  const char *miss = mm_lua_optstrfield(L, 1, "missing", "learned");
  if (strcmp(miss, "learned") && strcmp(miss, "zeros"))
    return luaL_error(L, "model: missing must be 'learned' or 'zeros' (got '%s')", miss);
  M->missing_zeros = strcmp(miss, "zeros") == 0 || M->fusion == MM_FUSION_TEXT || M->fusion == MM_FUSION_IMAGE;
  M->lambda = (float)mm_lua_optnumfield(L, 1, "lambda", 1.0);
  M->margin = (float)mm_lua_optnumfield(L, 1, "margin", 0.2);
  M->hardest = mm_lua_optboolfield(L, 1, "hardest", 0);
  M->ngrams = (int)mm_lua_optintfield(L, 1, "ngrams", 2);
  M->buckets = mm_lua_optintfield(L, 1, "buckets", 100000);
  M->min_count = mm_lua_optintfield(L, 1, "min_count", 1);
  M->max_vocab = mm_lua_optintfield(L, 1, "max_vocab", 0);
  M->unk = mm_lua_optboolfield(L, 1, "unk", 0);
  M->lowercase = mm_lua_optboolfield(L, 1, "lowercase", 1);
  M->keep_punct = mm_lua_optboolfield(L, 1, "keep_punct", 0);
  if (M->min_count < 1) return luaL_error(L, "model: text.min_count must be >= 1");
  if (M->max_vocab < 0) return luaL_error(L, "model: text.max_vocab must be >= 0");
  if (M->ngrams > 1 && M->buckets < 1) return luaL_error(L, "model: text.buckets must be >= 1 when ngrams > 1");
  if (M->ngrams < 1 || M->ngrams > 8) return luaL_error(L, "model: text.ngrams must be in 1..8 (got %d)", M->ngrams);
  if (M->buckets < 0 || M->buckets > ((int64_t)1 << 26))
    return luaL_error(L, "model: text.buckets must be in 0..67108864");
  lua_getfield(L, 1, "modalities");
  if (!lua_istable(L, -1)) return luaL_error(L, "model: 'modalities' must be a table");
  int nm = (int)lua_rawlen(L, -1);
  mm_err e = {0};
  for (int i = 0; i < nm; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, "model: modality %d must be a table", i + 1);
    mm_modcfg c;
    parse_modality(L, lua_gettop(L), &c);
    lua_pop(L, 1);
    if (mm_model_add_modality(M, &c, &e)) return mm_lua_raise(L, &e);
  }
  lua_pop(L, 1);
  if (mm_model_check(M, &e)) return mm_lua_raise(L, &e);
  return 1;
}

static int l_config(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lua_newtable(L);
  lua_pushstring(L, mm_fusion_name(M->fusion));
  lua_setfield(L, -2, "fusion");
  lua_pushstring(L, mm_pool_name(M->pool));
  lua_setfield(L, -2, "pool");
  lua_pushinteger(L, M->dim);
  lua_setfield(L, -2, "dim");
  lua_pushinteger(L, M->nclasses);
  lua_setfield(L, -2, "nclasses");
  lua_pushstring(L, M->missing_zeros ? "zeros" : "learned");
  lua_setfield(L, -2, "missing");
  lua_pushnumber(L, M->lambda);
  lua_setfield(L, -2, "lambda");
  lua_pushnumber(L, M->margin);
  lua_setfield(L, -2, "margin");
  lua_pushboolean(L, M->hardest);
  lua_setfield(L, -2, "hardest");
  lua_pushinteger(L, M->ngrams);
  lua_setfield(L, -2, "ngrams");
  lua_pushinteger(L, M->buckets);
  lua_setfield(L, -2, "buckets");
  lua_pushinteger(L, M->min_count);
  lua_setfield(L, -2, "min_count");
  lua_pushinteger(L, M->max_vocab);
  lua_setfield(L, -2, "max_vocab");
  lua_pushboolean(L, M->unk);
  lua_setfield(L, -2, "unk");
  lua_pushboolean(L, M->lowercase);
  lua_setfield(L, -2, "lowercase");
  lua_pushboolean(L, M->keep_punct);
  lua_setfield(L, -2, "keep_punct");
  lua_pushboolean(L, M->built);
  lua_setfield(L, -2, "built");
  lua_createtable(L, M->k, 0);
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    lua_newtable(L);
    lua_pushstring(L, c->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, mm_enc_name(c->enc));
    lua_setfield(L, -2, "encoder");
    lua_pushnumber(L, c->drop);
    lua_setfield(L, -2, "dropout");
    lua_pushinteger(L, c->out_dim);
    lua_setfield(L, -2, "out_dim");
    if (c->enc == MM_ENC_FEAT || c->enc == MM_ENC_TEXT) {
      lua_pushinteger(L, c->in_dim);
      lua_setfield(L, -2, "in_dim");
    }
    if (c->enc == MM_ENC_CNN) {
      lua_pushinteger(L, c->img_h);
      lua_setfield(L, -2, "height");
      lua_pushinteger(L, c->img_w);
      lua_setfield(L, -2, "width");
      lua_pushinteger(L, c->ksize);
      lua_setfield(L, -2, "kernel");
      lua_pushboolean(L, c->augment);
      lua_setfield(L, -2, "augment");
      lua_createtable(L, c->nblocks, 0);
      for (int b = 0; b < c->nblocks; b++) {
        lua_pushinteger(L, c->ch[b]);
        lua_rawseti(L, -2, b + 1);
      }
      lua_setfield(L, -2, "channels");
    }
    if (c->enc == MM_ENC_HIST) {
      lua_createtable(L, 3, 0);
      lua_pushinteger(L, c->hb);
      lua_rawseti(L, -2, 1);
      lua_pushinteger(L, c->sb);
      lua_rawseti(L, -2, 2);
      lua_pushinteger(L, c->vb);
      lua_rawseti(L, -2, 3);
      lua_setfield(L, -2, "bins");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "modalities");
  return 1;
}

static int l_build(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  lua_Integer seed = luaL_optinteger(L, 3, 1);
  mm_err e = {0};
  if (ds->nclasses != M->nclasses)
    return luaL_error(L, "model: the data has %d classes, the model %d", (int)ds->nclasses, (int)M->nclasses);
  if (mm_model_build_from(M, ds, (uint64_t)seed, &e)) return mm_lua_raise(L, &e);
#ifdef __GLIBC__
  /* the model's big tables are new mappings; give back the free pages the
   * loading left in the heap (Lua strings and tables of the parsed input,
   * freed by now): they would count in the peak RSS of the whole training */
  malloc_trim(0);
#endif
  return 0;
}

static int l_build_resolved(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, 2);
  char **words = malloc((size_t)(n ? n : 1) * sizeof *words);
  if (!words) return luaL_error(L, "model: out of memory");
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      free(words);
      return luaL_error(L, "model: vocabulary entry %d is not a string", (int)i + 1);
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    lua_pop(L, 1); /* anchored by the table */
    if (strlen(s) != len) {
      free(words);
      return luaL_error(L, "model: vocabulary entry %d contains a NUL byte", (int)i + 1);
    }
    words[i] = (char *)s;
  }
  lua_Integer budget = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, budget >= 0, 3, "parameter budget must be >= 0");
  M->param_budget = (int64_t)budget;
  mm_err e = {0};
  int rc = mm_model_build_resolved(M, words, n, &e);
  free(words);
  if (rc) return mm_lua_raise(L, &e);
  return 0;
}

static int l_seed(lua_State *L) {
  mm_model_seed(checkmodel(L, 1), (uint64_t)luaL_checkinteger(L, 2));
  return 0;
}

typedef struct progress_cb {
  lua_State *L;
  int fi;  /* stack index of the Lua function */
  int err; /* 1: the function raised; its error object is on the stack */
} progress_cb;

static int call_progress(void *ud, const mm_progress *p) {
  progress_cb *c = ud;
  lua_State *L = c->L;
  lua_pushvalue(L, c->fi);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, p->batch);
  lua_setfield(L, -2, "batch");
  lua_pushinteger(L, p->batches);
  lua_setfield(L, -2, "batches");
  lua_pushinteger(L, p->samples);
  lua_setfield(L, -2, "samples");
  lua_pushnumber(L, p->loss);
  lua_setfield(L, -2, "loss");
  lua_pushnumber(L, p->accuracy);
  lua_setfield(L, -2, "accuracy");
  lua_pushnumber(L, p->seconds);
  lua_setfield(L, -2, "seconds");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    c->err = 1;
    return 1;
  }
  int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  return stop ? 2 : 0;
}

static int l_train_epoch(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  mm_train_opts o;
  memset(&o, 0, sizeof o);
  o.batch = mm_lua_optintfield(L, 3, "batch", 32);
  const char *opt = mm_lua_optstrfield(L, 3, "optimizer", "adam");
  if (strcmp(opt, "adam") == 0)
    o.optimizer = MM_OPT_ADAM;
  else if (strcmp(opt, "sgd") == 0)
    o.optimizer = MM_OPT_SGD;
  else
    return luaL_error(L, "fit: optimizer must be 'adam' or 'sgd' (got '%s')", opt);
  o.lr = (float)mm_lua_optnumfield(L, 3, "lr", 1e-3);
  o.momentum = (float)mm_lua_optnumfield(L, 3, "momentum", 0.0);
  o.wd = (float)mm_lua_optnumfield(L, 3, "weight_decay", 0.0);
  o.b1 = (float)mm_lua_optnumfield(L, 3, "beta1", 0.9);
  o.b2 = (float)mm_lua_optnumfield(L, 3, "beta2", 0.999);
  o.eps = (float)mm_lua_optnumfield(L, 3, "eps", 1e-8);
  o.clip = (float)mm_lua_optnumfield(L, 3, "clip", 0.0);
  if (!(o.momentum >= 0 && o.momentum < 1)) return luaL_error(L, "fit: momentum must be in [0, 1)");
  if (!(o.wd >= 0)) return luaL_error(L, "fit: weight_decay must be >= 0");
  if (!(o.clip >= 0)) return luaL_error(L, "fit: clip must be >= 0");
  float *cw = NULL;
  lua_getfield(L, 3, "class_weights");
  if (lua_istable(L, -1)) {
    if ((int64_t)lua_rawlen(L, -1) != M->nclasses)
      return luaL_error(L, "fit: class_weights must have %d entries (got %d)", (int)M->nclasses,
                        (int)lua_rawlen(L, -1));
    cw = lua_newuserdatauv(L, (size_t)M->nclasses * sizeof *cw, 0); /* GC-owned */
    for (int64_t c = 0; c < M->nclasses; c++) {
      lua_rawgeti(L, -2, c + 1);
      double v = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (!(v >= 0) || !isfinite(v)) return luaL_error(L, "fit: class weight %d must be a finite number >= 0", (int)c + 1);
      cw[c] = (float)v;
    }
  } else if (!lua_isnil(L, -1))
    return luaL_error(L, "fit: class_weights must be a table");
  o.class_w = cw;
  progress_cb pc = {L, 0, 0};
  lua_getfield(L, 3, "on_batch");
  if (lua_isfunction(L, -1)) {
    pc.fi = lua_gettop(L);
    o.progress = call_progress;
    o.progress_ud = &pc;
    o.progress_interval = mm_lua_optnumfield(L, 3, "progress_interval", 0.2);
  } else if (!lua_isnil(L, -1))
    return luaL_error(L, "fit: on_batch must be a function");
  mm_epoch_stats st;
  mm_err e = {0};
  M->in_use++;
  ds->in_use++;
  int rc = mm_model_train_epoch(M, ds, &o, &st, &e);
  M->in_use--;
  ds->in_use--;
  if (rc) {
    if (pc.err) return lua_error(L); /* the callback's own error */
    return mm_lua_raise(L, &e);
  }
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, st.loss);
  lua_setfield(L, -2, "loss");
  lua_pushnumber(L, st.accuracy);
  lua_setfield(L, -2, "train_accuracy");
  lua_pushnumber(L, st.seconds);
  lua_setfield(L, -2, "seconds");
  lua_pushinteger(L, st.batches);
  lua_setfield(L, -2, "batches");
  lua_pushinteger(L, st.samples);
  lua_setfield(L, -2, "samples");
  if (st.stopped) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "stopped");
  }
  return 1;
}

static int l_predict(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  int64_t shape[2] = {ds->n, M->nclasses};
  mm_tensor *t = mm_lua_newtensor(L, 2, shape);
  mm_err e = {0};
  if (mm_model_predict(M, ds, t->data, &e)) return mm_lua_raise(L, &e);
  return 1;
}

static void push_darr(lua_State *L, const double *a, int64_t n) {
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushnumber(L, a[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* evaluate(M, ds) -> metrics table, probabilities tensor */
static int l_evaluate(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  if (ds->nclasses != M->nclasses)
    return luaL_error(L, "evaluate: the data has %d classes, the model %d", (int)ds->nclasses, (int)M->nclasses);
  int64_t shape[2] = {ds->n, M->nclasses};
  mm_tensor *t = mm_lua_newtensor(L, 2, shape);
  mm_err e = {0};
  if (mm_model_predict(M, ds, t->data, &e)) return mm_lua_raise(L, &e);
  mm_metrics m;
  if (mm_metrics_compute(t->data, ds->labels, ds->n, M->nclasses, &m)) return luaL_error(L, "evaluate: out of memory");
  int64_t C = M->nclasses;
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, m.n);
  lua_setfield(L, -2, "n");
  lua_pushnumber(L, m.accuracy);
  lua_setfield(L, -2, "accuracy");
  lua_pushnumber(L, m.macro_f1);
  lua_setfield(L, -2, "macro_f1");
  lua_pushnumber(L, m.log_loss);
  lua_setfield(L, -2, "log_loss");
  push_darr(L, m.precision, C);
  lua_setfield(L, -2, "precision");
  push_darr(L, m.recall, C);
  lua_setfield(L, -2, "recall");
  push_darr(L, m.f1, C);
  lua_setfield(L, -2, "f1");
  lua_createtable(L, (int)C, 0);
  for (int64_t c = 0; c < C; c++) {
    lua_pushinteger(L, m.support[c]);
    lua_rawseti(L, -2, c + 1);
  }
  lua_setfield(L, -2, "support");
  lua_createtable(L, (int)C, 0);
  for (int64_t i = 0; i < C; i++) {
    lua_createtable(L, (int)C, 0);
    for (int64_t j = 0; j < C; j++) {
      lua_pushinteger(L, m.confusion[i * C + j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "confusion");
  mm_metrics_free(&m);
  lua_insert(L, -2);
  return 2;
}

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

static void push_shape(lua_State *L, const mm_param *p) {
  lua_createtable(L, p->ndim, 0);
  for (int d = 0; d < p->ndim; d++) {
    lua_pushinteger(L, p->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int l_params(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lua_createtable(L, M->nparams, 0);
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    lua_createtable(L, 0, 3);
    lua_pushstring(L, p->name);
    lua_setfield(L, -2, "name");
    push_shape(L, p);
    lua_setfield(L, -2, "shape");
    lua_pushinteger(L, p->count);
    lua_setfield(L, -2, "count");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* the parameter named by argument idx, or a Lua error naming it */
static mm_param *check_param(lua_State *L, mm_model *M, int idx) {
  const char *name = luaL_checkstring(L, idx);
  for (int i = 0; i < M->nparams; i++)
    if (strcmp(M->params[i].name, name) == 0) return &M->params[i];
  luaL_error(L, "model: no parameter '%s'", name);
  return NULL;
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
  memcpy(p->w, t->data, (size_t)p->count * sizeof(float));
  mm_model_weights_changed(M);
  return 0;
}

static int l_vocab(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  int64_t n = M->voc ? mm_vocab_size(M->voc) : 0;
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    size_t len;
    const char *w = mm_vocab_word(M->voc, i, &len);
    lua_pushlstring(L, w, len);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* save(M, path, header_json): the header lists the parameters in model order */
static int l_save(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  const char *path = luaL_checkstring(L, 2);
  size_t hlen;
  const char *header = luaL_checklstring(L, 3, &hlen);
  if (!M->built) return luaL_error(L, "save: the model is not trained yet");
  const void **chunks = malloc((size_t)M->nparams * sizeof *chunks);
  size_t *lens = malloc((size_t)M->nparams * sizeof *lens);
  if (!chunks || !lens) {
    free(chunks);
    free(lens);
    return luaL_error(L, "save: out of memory");
  }
  for (int i = 0; i < M->nparams; i++) chunks[i] = M->params[i].w, lens[i] = (size_t)M->params[i].count * 4;
  mm_err e = {0};
  int rc = mm_st_write(path, header, hlen, chunks, lens, M->nparams, &e);
  free(chunks);
  free(lens);
  if (rc) return mm_lua_raise(L, &e);
  return 0;
}

typedef struct lblob {
  mm_st_file f;
} lblob;

static int blob_gc(lua_State *L) {
  lblob *b = luaL_checkudata(L, 1, BLOB_MT);
  mm_st_free(&b->f);
  return 0;
}

/* read(path) -> header string, file userdata, data bytes */
static int l_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lblob *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BLOB_MT);
  mm_err e = {0};
  if (mm_st_read(path, &b->f, &e)) return mm_lua_raise(L, &e);
  lua_pushlstring(L, b->f.header, b->f.hlen);
  lua_insert(L, -2);
  lua_pushinteger(L, (lua_Integer)b->f.dlen);
  return 3;
}

static int geti(lua_State *L, int t, int i, lua_Integer *out) {
  lua_rawgeti(L, t, i);
  int ok = lua_isinteger(L, -1);
  if (ok) *out = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* load_weights(M, file, tensors, where): tensors[name] = {dtype=, shape=, data_offsets=} */
static int l_load_weights(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  lblob *b = luaL_checkudata(L, 2, BLOB_MT);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *where = luaL_checkstring(L, 4);
  if (!M->built) return luaL_error(L, "%s: model not built", where);
  int64_t total = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    lua_getfield(L, 3, p->name);
    if (!lua_istable(L, -1)) return luaL_error(L, "%s: tensor '%s' is missing", where, p->name);
    int t = lua_gettop(L);
    lua_getfield(L, t, "dtype");
    const char *dt = lua_tostring(L, -1);
    if (!dt || strcmp(dt, "F32") != 0)
      return luaL_error(L, "%s: tensor '%s' has dtype %s, expected F32", where, p->name, dt ? dt : "(none)");
    lua_pop(L, 1);
    lua_getfield(L, t, "shape");
    if (!lua_istable(L, -1) || (int)lua_rawlen(L, -1) != p->ndim)
      return luaL_error(L, "%s: tensor '%s' must have %d dimensions", where, p->name, p->ndim);
    for (int d = 0; d < p->ndim; d++) {
      lua_Integer v;
      if (!geti(L, lua_gettop(L), d + 1, &v) || v != p->shape[d])
        return luaL_error(L, "%s: tensor '%s' dimension %d must be %d", where, p->name, d + 1, (int)p->shape[d]);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "data_offsets");
    lua_Integer a, z;
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 2 || !geti(L, lua_gettop(L), 1, &a) ||
        !geti(L, lua_gettop(L), 2, &z))
      return luaL_error(L, "%s: tensor '%s' needs data_offsets {begin, end}", where, p->name);
    lua_pop(L, 1);
    if (a < 0 || z < a || (uint64_t)z > b->f.dlen || (z - a) != p->count * 4)
      return luaL_error(L, "%s: tensor '%s' has data_offsets [%d, %d] (needs %d bytes inside %d data bytes)", where,
                        p->name, (int)a, (int)z, (int)(p->count * 4), (int)b->f.dlen);
    total += z - a;
    lua_pop(L, 1);
  }
  if ((uint64_t)total != b->f.dlen)
    return luaL_error(L, "%s: the tensors cover %d bytes but the file holds %d data bytes", where, (int)total,
                      (int)b->f.dlen);
  /* checks passed: copy, then reject non-finite weights */
  mm_model_weights_changed(M);
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    lua_getfield(L, 3, p->name);
    lua_getfield(L, -1, "data_offsets");
    lua_Integer a = 0;
    geti(L, lua_gettop(L), 1, &a);
    lua_pop(L, 2);
    memcpy(p->w, b->f.data + a, (size_t)p->count * 4);
    for (int64_t j = 0; j < p->count; j++)
      if (!isfinite(p->w[j]))
        return luaL_error(L, "%s: tensor '%s' holds a non-finite value at element %d", where, p->name, (int)j + 1);
  }
  return 0;
}

/* load_vectors(M, path, format) -> found, total, dim, file_words: pretrained word
 * vectors into the rows of the text embedding (d must equal dim). */
static int l_load_vectors(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *fmt = luaL_optstring(L, 3, "auto");
  int f = mm_vec_format_parse(fmt);
  if (f < 0) return luaL_error(L, "text.vectors_format: unknown format '%s'", fmt);
  int ti = -1;
  for (int i = 0; i < M->k; i++)
    if (M->mod[i].enc == MM_ENC_TEXT) ti = i;
  if (!M->built || ti < 0) return luaL_error(L, "text.vectors: the model has no text encoder");
  mm_param *emb = &M->params[M->mod[ti].p_emb];
  mm_err e = {0};
  mm_vec_stats st;
  if (mm_vectors_probe(path, (mm_vec_format)f, &st, &e)) return mm_lua_raise(L, &e);
  if (st.dim != M->dim)
    return luaL_error(L, "%s: vectors have %d dimensions, the model's dim is %d (set dim = %d)", path, (int)st.dim,
                      (int)M->dim, (int)st.dim);
  if (!M->voc) return luaL_error(L, "text.vectors: the model has no vocabulary");
  int64_t V = mm_vocab_size(M->voc);
  uint8_t *found = calloc((size_t)(V ? V : 1), 1);
  if (!found) return luaL_error(L, "text.vectors: out of memory");
  mm_tensor out = {0};
  int64_t shape[2] = {V ? V : 1, M->dim};
  int rc = mm_tensor_alloc(&out, 2, shape, &e);
  if (!rc) rc = mm_vectors_load(path, (mm_vec_format)f, M->voc, &out, found, &st, &e);
  if (!rc) {
    mm_model_weights_changed(M);
    for (int64_t i = 0; i < V; i++)
      if (found[i]) memcpy(emb->w + i * M->dim, out.data + i * M->dim, (size_t)M->dim * sizeof(float));
  }
  mm_tensor_free(&out);
  free(found);
  if (rc) return mm_lua_raise(L, &e);
  lua_pushinteger(L, st.found);
  lua_pushinteger(L, st.total);
  lua_pushinteger(L, st.dim);
  return 3;
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

static int l_built(lua_State *L) {
  lua_pushboolean(L, checkmodel(L, 1)->built);
  return 1;
}

static int l_nparams(lua_State *L) {
  lua_pushinteger(L, mm_model_param_count(checkmodel(L, 1)));
  return 1;
}

void mm_lua_open_model(lua_State *L) {
  if (luaL_newmetatable(L, MODEL_MT)) {
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SNAP_MT)) {
    lua_pushcfunction(L, snap_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, BLOB_MT)) {
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, blob_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"new", l_new},
                                 {"config", l_config},
                                 {"build", l_build},
                                 {"build_resolved", l_build_resolved},
                                 {"seed", l_seed},
                                 {"train_epoch", l_train_epoch},
                                 {"predict", l_predict},
                                 {"evaluate", l_evaluate},
                                 {"snapshot", l_snapshot},
                                 {"restore", l_restore},
                                 {"params", l_params},
                                 {"param", l_param},
                                 {"set_param", l_set_param},
                                 {"vocab", l_vocab},
                                 {"save", l_save},
                                 {"read", l_read},
                                 {"load_weights", l_load_weights},
                                 {"built", l_built},
                                 {"load_vectors", l_load_vectors},
                                 {"freeze", l_freeze},
                                 {"loss_grad", l_loss_grad},
                                 {"grad", l_grad},
                                 {"nparams", l_nparams},
                                 {NULL, NULL}};
  mm_lua_subtable(L, "fusion", fns); /* core.fusion: mm.model is the Lua constructor */
}
