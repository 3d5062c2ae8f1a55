/* params.c - a model's parameters: allocation from the configuration,
 * initialisation, optimiser-state reset, snapshots, and the compact gradient
 * rows of the sparse (embedding) tables (model.h, mm_param). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "model_internal.h"

static int add_param(mm_model *M, const char *prefix, const char *name, int ndim, const int64_t *shape, int sparse,
                     mm_err *e) {
  mm_param *np = realloc(M->params, (size_t)(M->nparams + 1) * sizeof *np);
  if (!np) return -1;
  M->params = np;
  mm_param *p = &M->params[M->nparams];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s%s%s", prefix, prefix[0] ? "." : "", name);
  p->ndim = ndim;
  p->lr_scale = 1.0f;
  p->count = 1;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->count *= shape[i];
  if (p->count <= 0 || p->count > ((int64_t)1 << 31)) {
    mm_errorf(e, MM_EINVAL, "model: parameter %s has a bad size", p->name);
    return -1;
  }
  if (M->param_budget > 0) {
    int64_t used = 0;
    for (int i = 0; i < M->nparams; i++) used += M->params[i].count;
    if (used + p->count > M->param_budget) {
      mm_errorf(e, MM_EINVAL,
                "model: the configuration needs more than the %lld floats the file stores (at parameter %s)",
                (long long)M->param_budget, p->name);
      return -1;
    }
  }
  p->w = mm_falloc(p->count);
  p->g = mm_falloc(p->count);
  if (sparse) { /* m and v row-interleaved in one block (model.h) */
    p->sparse = 1;
    p->rowlen = shape[1];
    p->m = mm_falloc(2 * p->count);
    p->v = p->m ? p->m + p->rowlen : NULL;
  } else {
    p->m = mm_falloc(p->count);
    p->v = mm_falloc(p->count);
  }
  M->nparams++;
  if (!p->w || !p->g || !p->m || !p->v) {
    mm_errorf(e, MM_ENOMEM, "model: out of memory for %s", p->name);
    return -1;
  }
  if (sparse) {
    p->slot = calloc((size_t)shape[0], sizeof *p->slot);
    p->tlist = malloc((size_t)shape[0] * sizeof *p->tlist);
    p->rs = calloc(1, sizeof *p->rs);
    if (p->rs) p->rs->slot = calloc((size_t)shape[0], sizeof *p->rs->slot);
    if (!p->slot || !p->tlist || !p->rs || !p->rs->slot) {
      mm_errorf(e, MM_ENOMEM, "model: out of memory for %s", p->name);
      return -1;
    }
  }
  return M->nparams - 1;
}

#define ADDP(idx, prefix, name, nd, ...)                                      \
  do {                                                                        \
    int64_t sh_[] = {__VA_ARGS__};                                            \
    (idx) = add_param(M, prefix, name, nd, sh_, 0, e);                        \
    if ((idx) < 0) goto fail;                                                 \
  } while (0)

/* the encoder's parameters; sets c->out_dim */
static int alloc_encoder(mm_model *M, mm_modcfg *c, mm_err *e) {
  const char *pre = c->name;
  if (c->enc == MM_ENC_TEXT) {
    int64_t sh[2] = {c->in_dim, M->dim};
    c->p_emb = add_param(M, pre, "embedding", 2, sh, 1, e);
    if (c->p_emb < 0) goto fail;
    c->out_dim = M->dim;
  } else if (c->enc == MM_ENC_CNN) {
    int64_t cin = 3;
    for (int b = 0; b < c->nblocks; b++) {
      char nm[32];
      snprintf(nm, sizeof nm, "conv%d.weight", b + 1);
      ADDP(c->p_cw[b], pre, nm, 4, c->ch[b], cin, c->ksize, c->ksize);
      snprintf(nm, sizeof nm, "conv%d.bias", b + 1);
      ADDP(c->p_cb[b], pre, nm, 1, c->ch[b]);
      cin = c->ch[b];
    }
    c->out_dim = cin;
  } else if (c->enc == MM_ENC_HIST) {
    c->out_dim = (int64_t)c->hb * c->sb * c->vb;
  } else if (c->enc == MM_ENC_FEAT) {
    c->out_dim = c->in_dim;
  } else {
    return mm_errorf(e, MM_EINVAL, "model: encoder of modality '%s' is not resolved", c->name);
  }
  return MM_OK;
fail:
  return e->code ? e->code : mm_errorf(e, MM_ENOMEM, "model: out of memory");
}

/* Parameters in model order: per modality its encoder, projection (joint),
 * classifier (late) or missing vector (early), then the shared classifier. */
int mm_params_alloc(mm_model *M, mm_err *e) {
  int64_t C = M->nclasses, clsin = 0;
  int joint = mm_fusion_is_joint(M->fusion);
  for (int i = 0; i < M->k; i++) {
    mm_modcfg *c = &M->mod[i];
    c->p_emb = c->p_pw = c->p_pb = c->p_lw = c->p_lb = c->p_miss = -1;
    for (int b = 0; b < MM_MAXBLOCKS; b++) c->p_cw[b] = c->p_cb[b] = -1;
    const char *pre = c->name;
    if (alloc_encoder(M, c, e)) return e->code;
    c->project = joint && !(c->enc == MM_ENC_TEXT && c->out_dim == M->dim);
    if (c->plr < 0) c->plr = 1.0f; /* not resolved from data (a file written before project_lr): as it was then */
    if (c->project) {
      ADDP(c->p_pw, pre, "proj.weight", 2, M->dim, c->out_dim);
      ADDP(c->p_pb, pre, "proj.bias", 1, M->dim);
      M->params[c->p_pw].lr_scale = M->params[c->p_pb].lr_scale = c->plr;
    }
    if (M->fusion == MM_FUSION_LATE) {
      ADDP(c->p_lw, pre, "classifier.weight", 2, C, c->out_dim);
      ADDP(c->p_lb, pre, "classifier.bias", 1, C);
    }
    if (M->fusion == MM_FUSION_EARLY && !M->missing_zeros) ADDP(c->p_miss, pre, "missing", 1, c->out_dim);
    clsin += c->out_dim;
  }
  if (joint) clsin = M->dim;
  if (M->fusion != MM_FUSION_LATE) {
    ADDP(M->p_cw, "", "classifier.weight", 2, C, clsin);
    ADDP(M->p_cb, "", "classifier.bias", 1, C);
  }
  M->built = 1;
  return MM_OK;
fail:
  if (!e->code) mm_errorf(e, MM_ENOMEM, "model: out of memory");
  return e->code;
}

static void init_uniform(mm_param *p, mm_rng *r, double bound) {
  for (int64_t i = 0; i < p->count; i++) p->w[i] = (float)((2.0 * mm_rng_double(r) - 1.0) * bound);
}

/* PyTorch's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights
 * and for biases (from the weight before them), U(-1/sqrt(dim), ..) for
 * embeddings, zeros for the missing vectors; one stream drawn in model order. */
void mm_params_init(mm_model *M, uint64_t seed) {
  M->wgen++;
  mm_rng r;
  mm_rng_seed(&r, seed ^ 0x6d6d667573650001ULL);
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    const char *dot = strrchr(p->name, '.');
    const char *leaf = dot ? dot + 1 : p->name;
    if (strcmp(leaf, "embedding") == 0)
      init_uniform(p, &r, 1.0 / sqrt((double)p->shape[1]));
    else if (strcmp(leaf, "missing") == 0)
      memset(p->w, 0, (size_t)p->count * sizeof(float));
    else if (strcmp(leaf, "weight") == 0) {
      int64_t fan_in = p->count / p->shape[0];
      init_uniform(p, &r, 1.0 / sqrt((double)fan_in));
    } else { /* bias */
      const mm_param *w = i > 0 ? &M->params[i - 1] : NULL;
      int64_t fan_in = w ? w->count / w->shape[0] : 1;
      init_uniform(p, &r, 1.0 / sqrt((double)fan_in));
    }
  }
}

void mm_params_free(mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    mm_ffree(p->w);
    mm_ffree(p->g);
    mm_ffree(p->m);
    if (!p->sparse) mm_ffree(p->v); /* sparse: v points into m's block */
    free(p->slot);
    free(p->tlist);
    mm_ffree(p->gc);
    if (p->rs) free(p->rs->slot);
    free(p->rs);
  }
  free(M->params);
  M->params = NULL;
  M->nparams = 0;
  mm_ffree(M->bak);
  M->bak = NULL;
  M->bakcap = 0;
}

int64_t mm_model_param_count(const mm_model *M) {
  int64_t s = 0;
  for (int i = 0; i < M->nparams; i++) s += M->params[i].count;
  return s;
}

int mm_model_find_param(const mm_model *M, const char *name) {
  for (int i = 0; i < M->nparams; i++)
    if (strcmp(M->params[i].name, name) == 0) return i;
  return -1;
}

void mm_model_seed(mm_model *M, uint64_t seed) {
  mm_rng_seed(&M->rng, seed);
  M->step = 0;
  /* a model fresh from the build (or already reset) has zero m, v and g: do
   * not touch those pages again (untouched zero pages of a big embedding stay
   * unmapped when the allocator hands out fresh zero pages) */
  if (!M->opt_dirty) return;
  M->opt_dirty = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->sparse) {
      /* m and v of the rows used so far, and their slots */
      memset(p->m, 0, (size_t)(p->rs->n * 2 * p->rowlen) * sizeof(float));
      if (p->rs->n) memset(p->rs->slot, 0, (size_t)p->shape[0] * sizeof *p->rs->slot);
      p->rs->n = 0;
      if (p->gmirror) memset(p->g, 0, (size_t)p->count * sizeof(float));
      p->gmirror = 0;
      for (int64_t t = 0; t < p->ntouched; t++) p->slot[p->tlist[t]] = 0;
      p->ntouched = 0;
    } else {
      memset(p->m, 0, (size_t)p->count * sizeof(float));
      memset(p->v, 0, (size_t)p->count * sizeof(float));
      memset(p->g, 0, (size_t)p->count * sizeof(float));
    }
  }
}

float *mm_model_snapshot(const mm_model *M, mm_err *e) {
  int64_t n = mm_model_param_count(M);
  float *s = malloc((size_t)(n ? n : 1) * sizeof *s);
  if (!s) {
    mm_errorf(e, MM_ENOMEM, "model: out of memory for a weight snapshot");
    return NULL;
  }
  int64_t o = 0;
  for (int i = 0; i < M->nparams; i++) {
    memcpy(s + o, M->params[i].w, (size_t)M->params[i].count * sizeof *s);
    o += M->params[i].count;
  }
  return s;
}

void mm_model_weights_changed(mm_model *M) { M->wgen++; }

void mm_model_restore(mm_model *M, const float *s) {
  M->wgen++;
  int64_t o = 0;
  for (int i = 0; i < M->nparams; i++) {
    memcpy(M->params[i].w, s + o, (size_t)M->params[i].count * sizeof *s);
    o += M->params[i].count;
  }
}

/* ---- compact gradient rows of the sparse tables ------------------------------------- */

int mm_params_reserve_rows(mm_param *p, int64_t more, mm_err *e) {
  int64_t rows = p->ntouched + more;
  if (rows > p->shape[0]) rows = p->shape[0];
  if (rows <= p->gccap) return MM_OK;
  int64_t cap = rows + rows / 2 + 64;
  if (cap > p->shape[0]) cap = p->shape[0];
  float *ng = mm_falloc(cap * p->rowlen);
  if (!ng) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
  if (p->ntouched) memcpy(ng, p->gc, (size_t)(p->ntouched * p->rowlen) * sizeof(float));
  mm_ffree(p->gc);
  p->gc = ng;
  p->gccap = cap;
  return MM_OK;
}

void mm_params_slot_rows(mm_param *p, const int64_t *ids, int64_t n, int64_t *sl) {
  const int64_t L = p->rowlen;
  for (int64_t q = 0; q < n; q++) {
    int64_t r = ids[q];
    uint32_t s = p->slot[r];
    if (!s) {
      s = (uint32_t)(++p->ntouched);
      p->slot[r] = s;
      p->tlist[s - 1] = r;
      memset(p->gc + (int64_t)(s - 1) * L, 0, (size_t)L * sizeof(float));
    }
    sl[q] = (int64_t)s - 1;
  }
}

void mm_params_forget_touched(mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!p->sparse) continue;
    for (int64_t t = 0; t < p->ntouched; t++) p->slot[p->tlist[t]] = 0;
    p->ntouched = 0;
  }
}

void mm_params_zero_grads(mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!p->sparse) memset(p->g, 0, (size_t)p->count * sizeof(float));
  }
  mm_params_forget_touched(M); /* compact rows are zeroed when handed out again */
}

void mm_params_mirror_sparse(mm_model *M, int keep) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!p->sparse) continue;
    if (p->gmirror) memset(p->g, 0, (size_t)p->count * sizeof(float));
    p->gmirror = 0;
    if (!keep) continue;
    for (int64_t t = 0; t < p->ntouched; t++)
      memcpy(p->g + p->tlist[t] * p->rowlen, p->gc + t * p->rowlen, (size_t)p->rowlen * sizeof(float));
    p->gmirror = p->ntouched > 0;
  }
}
