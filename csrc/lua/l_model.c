/* l_model.c - Lua binding of the fusion models (csrc/model/model.h):
 * core.fusion, with the names and defaults of every setting (model/config.h)
 * as core.fusion.names, .encoders, .pools, .optimizers, .missing, .defaults.
 * The Lua face (lua/mmfuse/model.lua) holds the user-facing options, the
 * epoch loop with early stopping, metrics tables and the file header JSON;
 * everything per sample runs in C. Model files: l_model_file.c; parameters,
 * snapshots and gradients: l_model_params.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../model/comm.h"
#include "../model/metrics.h"
#include "../model/model_stream.h"
#include "l_model.h"

#define MODEL_MT MM_MODEL_MT

/* t[k] = v for the table on top of the stack */
#define SETI(k, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, (k)))
#define SETN(k, v) (lua_pushnumber(L, (v)), lua_setfield(L, -2, (k)))
#define SETB(k, v) (lua_pushboolean(L, (v)), lua_setfield(L, -2, (k)))
#define SETS(k, v) (lua_pushstring(L, (v)), lua_setfield(L, -2, (k)))


typedef mm_lua_model lmodel;

mm_model *mm_lua_checkmodel(lua_State *L, int idx) {
  lmodel *u = luaL_checkudata(L, idx, MODEL_MT);
  if (!u->M) luaL_argerror(L, idx, "model is closed");
  return u->M;
}
#define checkmodel mm_lua_checkmodel

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

/* a name read by mm_lua_readopts (NULL: not given) parsed against a table of names (config.h) */
static int parse_name(lua_State *L, const char *s, const mm_names *t, int def, const char *where) {
  if (!s) return def;
  mm_err e = {0};
  int v = mm_names_parse(t, s, where, &e);
  if (v < 0) mm_lua_raise(L, &e);
  return v;
}

/* a list of 1..max integers at field key of the table at idx into out; returns the count (0: absent) */
static int int_list(lua_State *L, int idx, const char *key, int max, int64_t *out, const char *what, const char *name) {
  lua_getfield(L, idx, key);
  int n = (int)lua_rawlen(L, -1);
  if (n < 1 || n > max) luaL_error(L, "model: %s of '%s' must list 1..%d integers, got %d", what, name, max, n);
  for (int b = 0; b < n; b++) {
    int ok = 0;
    lua_rawgeti(L, -1, b + 1);
    out[b] = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "model: %s of '%s': entry %d must be an integer", what, name, b + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

static void parse_modality(lua_State *L, int idx, mm_modcfg *c) {
  mm_modcfg_init(c);
  const char *name, *enc;
  lua_Integer in_dim, height, width, kernel;
  lua_Number drop, plr;
  int augment, tch, tbins;
  const mm_lua_opt opts[] = {MM_OPT_STR("name", &name, NULL),          MM_OPT_STR("encoder", &enc, NULL),
                             MM_OPT_INT("in_dim", &in_dim, 0),         MM_OPT_INT("height", &height, 0),
                             MM_OPT_INT("width", &width, 0),           MM_OPT_INT("kernel", &kernel, c->ksize),
                             MM_OPT_BOOL("augment", &augment, 0),      MM_OPT_NUM("dropout", &drop, 0),
                             MM_OPT_NUM("project_lr", &plr, -1),       MM_OPT_ANY("channels", &tch),
                             MM_OPT_ANY("bins", &tbins),
                             MM_OPT_END};
  mm_lua_readopts(L, idx, "model: modality", opts);
  if (!name || strlen(name) >= MM_MODNAME) luaL_error(L, "model: every modality needs a name (< %d bytes)", MM_MODNAME);
  strcpy(c->name, name);
  char where[MM_MODNAME + 32];
  snprintf(where, sizeof where, "model: modality '%s': ", name);
  c->enc = parse_name(L, enc, &mm_encoder_names, MM_ENC_AUTO, where);
  c->in_dim = in_dim, c->img_h = height, c->img_w = width, c->ksize = kernel;
  c->augment = augment;
  c->drop = (float)drop;
  c->plr = (float)plr;
  if (tch == LUA_TTABLE)
    c->nblocks = int_list(L, idx, "channels", MM_MAXBLOCKS, c->ch, "channels", name);
  else if (tch != LUA_TNIL)
    luaL_error(L, "model: channels of '%s' must be a table of integers", name);
  if (tbins == LUA_TTABLE) {
    int64_t v[3];
    if (int_list(L, idx, "bins", 3, v, "bins", name) != 3)
      luaL_error(L, "model: bins of '%s' must be a table {hue, saturation, value}", name);
    c->hb = (int)v[0], c->sb = (int)v[1], c->vb = (int)v[2];
  } else if (tbins != LUA_TNIL)
    luaL_error(L, "model: bins of '%s' must be a table {hue, saturation, value}", name);
}

/* new(cfg): the settings not given keep their defaults (mm_model_init) */
static int l_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lmodel *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->M = NULL;
  luaL_setmetatable(L, MODEL_MT);
  mm_model *M = calloc(1, sizeof *M);
  if (!M) return luaL_error(L, "model: out of memory");
  u->M = M;
  mm_model_init(M);
  const char *fusion, *pool, *missing;
  lua_Integer dim, nclasses, ngrams, buckets, min_count, max_vocab;
  lua_Number lambda, margin;
  int hardest, unk, tmods;
  mm_lua_tokraw tok;
  const mm_lua_opt opts[] = {MM_OPT_STR("fusion", &fusion, NULL),
                             MM_OPT_STR("pool", &pool, NULL),
                             MM_OPT_STR("missing", &missing, NULL),
                             MM_OPT_INT("dim", &dim, M->dim),
                             MM_OPT_INT("nclasses", &nclasses, 0),
                             MM_OPT_NUM("lambda", &lambda, M->lambda),
                             MM_OPT_NUM("margin", &margin, M->margin),
                             MM_OPT_BOOL("hardest", &hardest, M->hardest),
                             MM_OPT_INT("ngrams", &ngrams, M->ngrams),
                             MM_OPT_INT("buckets", &buckets, M->buckets),
                             MM_OPT_INT("min_count", &min_count, M->min_count),
                             MM_OPT_INT("max_vocab", &max_vocab, M->max_vocab),
                             MM_OPT_BOOL("unk", &unk, M->unk),
                             MM_OPT_TOKENIZER(&tok),
                             MM_OPT_ANY("modalities", &tmods),
                             MM_OPT_END};
  mm_lua_readopts(L, 1, "model", opts);
  M->fusion = parse_name(L, fusion, &mm_fusion_names, M->fusion, "model: ");
  M->pool = parse_name(L, pool, &mm_pool_names, M->pool, "model: ");
  M->missing_zeros = parse_name(L, missing, &mm_missing_names,
                                M->missing_zeros ? MM_MISSING_ZEROS : MM_MISSING_LEARNED, "model: ") == MM_MISSING_ZEROS;
  M->dim = dim, M->nclasses = nclasses;
  M->lambda = (float)lambda, M->margin = (float)margin, M->hardest = hardest;
  M->ngrams = (int)ngrams, M->buckets = buckets, M->min_count = min_count, M->max_vocab = max_vocab;
  M->unk = unk;
  mm_tokenize_opts to = {M->lowercase, M->keep_punct, M->post};
  mm_lua_tokopts(L, 1, "model", &tok, &to);
  M->lowercase = to.lowercase, M->keep_punct = to.keep_punct, M->post = to.post;
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

void mm_lua_push_ints(lua_State *L, const int64_t *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* the model-wide settings of M into a new table (the keys of model:config()) */
static void push_settings(lua_State *L, const mm_model *M) {
  lua_newtable(L);
  SETS("fusion", mm_fusion_name(M->fusion));
  SETS("pool", mm_pool_name(M->pool));
  SETI("dim", M->dim);
  if (M->nclasses) SETI("nclasses", M->nclasses);
  SETS("missing", mm_names_get(&mm_missing_names, M->missing_zeros ? MM_MISSING_ZEROS : MM_MISSING_LEARNED));
  SETN("lambda", M->lambda);
  SETN("margin", M->margin);
  SETB("hardest", M->hardest);
  SETI("ngrams", M->ngrams);
  SETI("buckets", M->buckets);
  SETI("min_count", M->min_count);
  SETI("max_vocab", M->max_vocab);
  SETB("unk", M->unk);
  mm_tokenize_opts to = {M->lowercase, M->keep_punct, M->post};
  mm_lua_push_tokopts(L, &to);
}

static int l_config(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  push_settings(L, M);
  SETB("built", M->built);
  lua_createtable(L, M->k, 0);
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    lua_newtable(L);
    SETS("name", c->name);
    SETS("encoder", mm_enc_name(c->enc));
    SETN("dropout", c->drop);
    if (c->plr >= 0) SETN("project_lr", c->plr); /* resolved when built */
    SETI("out_dim", c->out_dim);
    if (c->enc == MM_ENC_FEAT || c->enc == MM_ENC_TEXT) SETI("in_dim", c->in_dim);
    if (c->enc == MM_ENC_CNN) {
      SETI("height", c->img_h);
      SETI("width", c->img_w);
      SETI("kernel", c->ksize);
      SETB("augment", c->augment);
      mm_lua_push_ints(L, c->ch, c->nblocks);
      lua_setfield(L, -2, "channels");
    }
    if (c->enc == MM_ENC_HIST) {
      int64_t bins[3] = {c->hb, c->sb, c->vb};
      mm_lua_push_ints(L, bins, 3);
      lua_setfield(L, -2, "bins");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "modalities");
  return 1;
}

static int l_build(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_stream *sm = mm_lua_teststream(L, 2);
  mm_dataset *ds = sm ? NULL : mm_lua_checkdataset(L, 2);
  lua_Integer seed = luaL_optinteger(L, 3, 1);
  mm_err e = {0};
  if (sm ? mm_model_build_stream(M, sm, (uint64_t)seed, &e) : mm_model_build_from(M, ds, (uint64_t)seed, &e))
    return mm_lua_raise(L, &e);
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

/* the communicator of mmfuse.dist at idx (a userdata whose block starts with
 * an mm_comm, comm.h), NULL when idx is none or nil */
static const mm_comm *opt_comm(lua_State *L, int idx, const char *what) {
  if (lua_isnoneornil(L, idx)) return NULL;
  const mm_comm *c = luaL_testudata(L, idx, MM_COMM_MT);
  if (!c) luaL_error(L, "%s: 'comm' must be the communicator of mmfuse.dist (dist.comm)", what);
  mm_err e = {0};
  if (mm_comm_check(c, &e)) mm_lua_raise(L, &e);
  return c;
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
  SETI("batch", p->batch);
  SETI("batches", p->batches);
  SETI("samples", p->samples);
  SETN("loss", p->loss);
  SETN("accuracy", p->accuracy);
  SETN("seconds", p->seconds);
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
  mm_stream *sm = mm_lua_teststream(L, 2); /* a stream, or a dataset in memory */
  mm_dataset *ds = sm ? NULL : mm_lua_checkdataset(L, 2);
  mm_train_opts o;
  mm_train_opts_init(&o);
  const char *optimizer, *sparse;
  lua_Integer batch;
  lua_Number lr, momentum, wd, b1, b2, eps, clip, interval;
  int tcw, tcb, shuffle, tcomm;
  const mm_lua_opt opts[] = {MM_OPT_INT("batch", &batch, o.batch),
                             MM_OPT_BOOL("shuffle", &shuffle, o.shuffle),
                             MM_OPT_STR("optimizer", &optimizer, NULL),
                             MM_OPT_NUM("lr", &lr, o.lr),
                             MM_OPT_NUM("momentum", &momentum, o.momentum),
                             MM_OPT_NUM("weight_decay", &wd, o.wd),
                             MM_OPT_NUM("beta1", &b1, o.b1),
                             MM_OPT_NUM("beta2", &b2, o.b2),
                             MM_OPT_NUM("eps", &eps, o.eps),
                             MM_OPT_NUM("clip", &clip, o.clip),
                             MM_OPT_NUM("progress_interval", &interval, o.progress_interval),
                             MM_OPT_ANY("class_weights", &tcw),
                             MM_OPT_ANY("on_batch", &tcb),
                             MM_OPT_ANY("comm", &tcomm),
                             MM_OPT_STR("dist_sparse", &sparse, NULL),
                             MM_OPT_END};
  mm_lua_readopts(L, 3, "fit", opts);
  lua_getfield(L, 3, "comm");
  o.comm = opt_comm(L, lua_gettop(L), "fit");
  o.batch = batch;
  o.shuffle = shuffle;
  o.optimizer = parse_name(L, optimizer, &mm_optimizer_names, o.optimizer, "fit: ");
  o.sparse_sync = parse_name(L, sparse, &mm_sync_names, MM_SYNC_AUTO, "fit: ");
  o.lr = (float)lr, o.momentum = (float)momentum, o.wd = (float)wd;
  o.b1 = (float)b1, o.b2 = (float)b2, o.eps = (float)eps, o.clip = (float)clip;
  float *cw = NULL;
  lua_getfield(L, 3, "class_weights");
  if (lua_istable(L, -1)) {
    if ((int64_t)lua_rawlen(L, -1) != M->nclasses)
      return luaL_error(L, "fit: class_weights must have %d entries (got %d)", (int)M->nclasses,
                        (int)lua_rawlen(L, -1));
    cw = lua_newuserdatauv(L, (size_t)M->nclasses * sizeof *cw, 0); /* GC-owned; checked by the core */
    for (int64_t c = 0; c < M->nclasses; c++) {
      lua_rawgeti(L, -2, c + 1);
      cw[c] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
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
    o.progress_interval = interval;
  } else if (!lua_isnil(L, -1))
    return luaL_error(L, "fit: on_batch must be a function");
  mm_epoch_stats st;
  mm_err e = {0};
  M->in_use++;
  if (ds) ds->in_use++;
  else mm_lua_stream_busy(L, 2, 1);
  int rc = sm ? (o.comm ? mm_model_train_stream_dist(M, sm, &o, &st, &e) : mm_model_train_stream(M, sm, &o, &st, &e))
              : mm_model_train_epoch(M, ds, &o, &st, &e);
  M->in_use--;
  if (ds) ds->in_use--;
  else mm_lua_stream_busy(L, 2, -1);
  if (rc) {
    if (pc.err) return lua_error(L); /* the callback's own error */
    return mm_lua_raise(L, &e);
  }
  lua_createtable(L, 0, 5);
  SETN("loss", st.loss);
  SETN("train_accuracy", st.accuracy);
  SETN("seconds", st.seconds);
  SETI("batches", st.batches);
  SETI("samples", st.samples);
  if (st.stopped) SETB("stopped", 1);
  return 1;
}

/* what a stream's run allocates, freed by the GC if a Lua error comes first */
typedef struct runbox {
  float *P;
  mm_metrics m;
  int has_m;
} runbox;

static int runbox_gc(lua_State *L) {
  runbox *b = lua_touserdata(L, 1);
  free(b->P);
  b->P = NULL;
  if (b->has_m) mm_metrics_free(&b->m);
  b->has_m = 0;
  return 0;
}

/* a stream's probabilities as a new tensor on the stack ([0, C] without
 * want_probs), and its metrics into *m when m is not NULL; with c, over the
 * processes of c (every process passes the same stream) */
static void run_stream(lua_State *L, mm_model *M, mm_stream *sm, int want_probs, mm_metrics *m, const mm_comm *c) {
  runbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, "mmfuse.RunBox")) {
    lua_pushcfunction(L, runbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int64_t n = 0;
  mm_err e = {0};
  mm_lua_stream_busy(L, 2, 1);
  M->in_use++;
  int rc = c ? mm_model_run_stream_comm(M, sm, c, want_probs ? &b->P : NULL, &n, m ? &b->m : NULL, &e)
             : mm_model_run_stream(M, sm, want_probs ? &b->P : NULL, &n, m ? &b->m : NULL, &e);
  M->in_use--;
  mm_lua_stream_busy(L, 2, -1);
  if (rc) mm_lua_raise(L, &e);
  b->has_m = m != NULL;
  int64_t shape[2] = {want_probs ? n : 0, M->nclasses};
  mm_tensor *t = mm_lua_newtensor_uninit(L, 2, shape);
  if (b->P) memcpy(t->data, b->P, (size_t)(n * M->nclasses) * sizeof *b->P);
  free(b->P);
  b->P = NULL;
  if (m) *m = b->m, b->has_m = 0;
  lua_remove(L, -2);
}

/* predict(M, ds [, comm]) -> probabilities tensor (with comm: every row's, on every process) */
static int l_predict(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_stream *sm = mm_lua_teststream(L, 2);
  if (sm) {
    run_stream(L, M, sm, 1, NULL, opt_comm(L, 3, "predict"));
    return 1;
  }
  mm_dataset *ds = mm_lua_checkdataset(L, 2);
  const mm_comm *c = opt_comm(L, 3, "predict");
  int64_t shape[2] = {ds->n, M->nclasses};
  mm_tensor *t = mm_lua_newtensor(L, 2, shape);
  mm_err e = {0};
  if (c ? mm_model_predict_comm(M, ds, c, t->data, &e) : mm_model_predict(M, ds, t->data, &e))
    return mm_lua_raise(L, &e);
  return 1;
}

static void push_darr(lua_State *L, const double *a, int64_t n) {
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lua_pushnumber(L, a[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* evaluate(M, data [, comm [, want_probs]]) -> metrics table, probabilities
 * tensor; data is a dataset or a stream. With comm: the metrics of every
 * process's part summed, no probabilities. want_probs (default true) false:
 * a stream keeps no probabilities (a dataset's are in memory anyway). */
static int l_evaluate(lua_State *L) {
  mm_model *M = checkmodel(L, 1);
  mm_stream *sm = mm_lua_teststream(L, 2);
  mm_metrics m;
  const mm_comm *c = opt_comm(L, 3, "evaluate");
  if (sm) {
    run_stream(L, M, sm, !c && (lua_isnoneornil(L, 4) || lua_toboolean(L, 4)), &m, c);
    if (c) lua_pop(L, 1); /* the empty probabilities */
  } else {
    mm_dataset *ds = mm_lua_checkdataset(L, 2);
    int64_t shape[2] = {ds->n, M->nclasses};
    mm_tensor *t = c ? NULL : mm_lua_newtensor(L, 2, shape);
    mm_err e = {0};
    if (c ? mm_model_evaluate_comm(M, ds, c, &m, &e) : mm_model_evaluate(M, ds, t->data, &m, &e))
      return mm_lua_raise(L, &e);
  }
  int64_t C = M->nclasses;
  lua_createtable(L, 0, 10);
  SETI("n", m.n);
  SETN("accuracy", m.accuracy);
  SETN("macro_f1", m.macro_f1);
  SETN("log_loss", m.log_loss);
  push_darr(L, m.precision, C);
  lua_setfield(L, -2, "precision");
  push_darr(L, m.recall, C);
  lua_setfield(L, -2, "recall");
  push_darr(L, m.f1, C);
  lua_setfield(L, -2, "f1");
  lua_createtable(L, (int)C, 0);
  for (int64_t k = 0; k < C; k++) { /* k: c names the communicator here */
    lua_pushinteger(L, m.support[k]);
    lua_rawseti(L, -2, k + 1);
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
  if (c) return 1;
  lua_insert(L, -2);
  return 2;
}

static int l_built(lua_State *L) {
  lua_pushboolean(L, checkmodel(L, 1)->built);
  return 1;
}

static int l_nparams(lua_State *L) {
  lua_pushinteger(L, mm_model_param_count(checkmodel(L, 1)));
  return 1;
}

static void push_names(lua_State *L, const mm_names *t) {
  lua_createtable(L, t->count, 0);
  for (int i = 0; i < t->count; i++) {
    lua_pushstring(L, t->names[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* core.fusion.defaults: the settings of a model fresh from mm_model_init
 * (the keys of model:config()), the encoders' (cnn, histogram) and fit's
 * (mm_model_defaults, config.h) */
static void push_defaults(lua_State *L) {
  const mm_defaults *d = &mm_model_defaults;
  mm_model M;
  mm_model_init(&M);
  push_settings(L, &M);
  lua_newtable(L);
  mm_lua_push_ints(L, d->cnn_channels, d->cnn_blocks);
  lua_setfield(L, -2, "channels");
  SETI("kernel", d->cnn_kernel);
  lua_setfield(L, -2, "cnn");
  SETN("modality_dropout", d->modality_dropout);
  SETN("commonspace_dropout", d->commonspace_dropout);
  SETS("image_encoder", mm_enc_name(d->image_encoder));
  lua_newtable(L);
  int64_t bins[3] = {d->hist_bins[0], d->hist_bins[1], d->hist_bins[2]};
  mm_lua_push_ints(L, bins, 3);
  lua_setfield(L, -2, "bins");
  lua_setfield(L, -2, "histogram");
  lua_newtable(L);
  SETI("epochs", d->epochs);
  SETI("batch", d->batch);
  SETI("patience", d->patience);
  SETS("class_weights", mm_names_get(&mm_class_weight_names, d->class_weights));
  SETB("shuffle", d->shuffle);
  SETS("optimizer", mm_names_get(&mm_optimizer_names, d->optimizer));
  SETN("lr", d->lr);
  SETN("momentum", d->momentum);
  SETN("weight_decay", d->weight_decay);
  SETN("beta1", d->beta1);
  SETN("beta2", d->beta2);
  SETN("eps", d->eps);
  SETN("clip", d->clip);
  SETN("progress_interval", d->progress_interval);
  lua_setfield(L, -2, "fit");
}

void mm_lua_open_model(lua_State *L) {
  if (luaL_newmetatable(L, MODEL_MT)) {
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, model_gc);
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
                                 {"built", l_built},
                                 {"nparams", l_nparams},
                                 {NULL, NULL}};
  mm_lua_subtable(L, "fusion", fns); /* core.fusion: mm.model is the Lua constructor */
  /* the names and defaults of the settings (model/config.h), for the Lua face */
  lua_getfield(L, -1, "fusion");
  mm_lua_open_model_file(L);
  mm_lua_open_model_params(L);
  const mm_names *tables[] = {&mm_fusion_names, &mm_encoder_names, &mm_pool_names, &mm_optimizer_names,
                              &mm_missing_names};
  const char *keys[] = {"names", "encoders", "pools", "optimizers", "missing"};
  for (int i = 0; i < 5; i++) {
    push_names(L, tables[i]);
    lua_setfield(L, -2, keys[i]);
  }
  push_defaults(L);
  lua_setfield(L, -2, "defaults");
  lua_pop(L, 1);
}
