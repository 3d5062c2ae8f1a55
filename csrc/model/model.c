/* model.c - building, training and running fusion models (see model.h). */
#include "model.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "../core/cpu.h"
#include "../core/gemm.h"
#include "../core/parallel.h"
#include "../core/tensor.h"
#include "../image/image.h"
#include "../nn/cnn_direct.h"
#include "../nn/nn.h"
#include "../nn/nn_train.h"
#include "../nn/nn_extra.h"
#include "../text/ngram.h"

static const char *fusion_names[] = {"text", "image", "early", "late", "joint", "commonspace"};
static const char *enc_names[] = {"auto", "text", "cnn", "histogram", "features"};
static const char *pool_names[] = {"max", "mean", "sum"};
const char *mm_fusion_name(int f) { return f >= 0 && f <= MM_FUSION_COMMON ? fusion_names[f] : "?"; }
const char *mm_enc_name(int enc) { return enc >= 0 && enc <= MM_ENC_FEAT ? enc_names[enc] : "?"; }
const char *mm_pool_name(int p) { return p >= 0 && p <= 2 ? pool_names[p] : "?"; }

static const float img_mean[3] = {0.5f, 0.5f, 0.5f};
static const float img_std[3] = {0.25f, 0.25f, 0.25f};

static mm_vocab_opts vocab_opts(const mm_model *M) {
  mm_vocab_opts o = mm_vocab_defaults();
  o.min_count = M->min_count;
  o.max_size = M->max_vocab;
  o.unk = M->unk;
  o.ngrams = M->ngrams;
  o.buckets = M->ngrams > 1 ? M->buckets : 0;
  o.tok.lowercase = M->lowercase;
  o.tok.keep_punct = M->keep_punct;
  return o;
}

/* FNV-1a over the words and settings: datasets cache encodings under this key */
static void vocab_key(mm_model *M) {
  uint64_t h = 1469598103934665603ULL;
  int64_t n = mm_vocab_size(M->voc);
  for (int64_t i = 0; i < n; i++) {
    size_t l;
    const char *w = mm_vocab_word(M->voc, i, &l);
    for (size_t j = 0; j <= l; j++) h = (h ^ (unsigned char)(j < l ? w[j] : 0xff)) * 1099511628211ULL;
  }
  int64_t st[6] = {M->ngrams, M->buckets, M->unk, M->lowercase, M->keep_punct, n};
  for (int i = 0; i < 6; i++) h = (h ^ (uint64_t)st[i]) * 1099511628211ULL;
  M->vocab_key = h ? h : 1;
}

static void ws_cache_free(mm_model *M);
static void hog_cache_free(mm_model *M);

static int is_joint(const mm_model *M) { return M->fusion == MM_FUSION_JOINT || M->fusion == MM_FUSION_COMMON; }

void mm_model_init(mm_model *M) {
  memset(M, 0, sizeof *M);
  M->fusion = MM_FUSION_JOINT;
  M->pool = MM_POOL_MAX;
  M->dim = 64;
  M->lambda = 1.0f;
  M->margin = 0.2f;
  M->ngrams = 2;
  M->buckets = 100000;
  M->min_count = 1;
  M->lowercase = 1;
  M->p_cw = M->p_cb = -1;
}

int mm_model_add_modality(mm_model *M, const mm_modcfg *c, mm_err *e) {
  if (M->k >= MM_MAXMOD) return mm_errorf(e, MM_EINVAL, "model: at most %d modalities", MM_MAXMOD);
  if (!c->name[0]) return mm_errorf(e, MM_EINVAL, "model: a modality needs a name");
  for (int i = 0; i < M->k; i++)
    if (strcmp(M->mod[i].name, c->name) == 0)
      return mm_errorf(e, MM_EINVAL, "model: modality '%s' given twice", c->name);
  if (c->drop < 0 || c->drop >= 1 || c->drop != c->drop)
    return mm_errorf(e, MM_EINVAL, "model: dropout of modality '%s' must be in [0, 1) (got %g)", c->name,
                     (double)c->drop);
  if (c->enc == MM_ENC_CNN) {
    if (c->nblocks < 1 || c->nblocks > MM_MAXBLOCKS)
      return mm_errorf(e, MM_EINVAL, "model: cnn of '%s' needs 1..%d blocks (got %d)", c->name, MM_MAXBLOCKS,
                       c->nblocks);
    for (int b = 0; b < c->nblocks; b++)
      if (c->ch[b] < 1 || c->ch[b] > 4096)
        return mm_errorf(e, MM_EINVAL, "model: cnn channels of '%s' must be in 1..4096", c->name);
    if (c->ksize < 1 || c->ksize > 11 || c->ksize % 2 == 0)
      return mm_errorf(e, MM_EINVAL, "model: cnn kernel of '%s' must be odd, 1..11 (got %lld)", c->name,
                       (long long)c->ksize);
  }
  if (c->enc == MM_ENC_HIST && (c->hb < 1 || c->sb < 1 || c->vb < 1 || c->hb > 64 || c->sb > 64 || c->vb > 64))
    return mm_errorf(e, MM_EINVAL, "model: histogram bins of '%s' must each be in 1..64", c->name);
  M->mod[M->k] = *c;
  M->k++;
  return MM_OK;
}

int mm_model_check(const mm_model *M, mm_err *e) {
  if (M->fusion < 0 || M->fusion > MM_FUSION_COMMON) return mm_errorf(e, MM_EINVAL, "model: unknown fusion");
  if (M->k < 1) return mm_errorf(e, MM_EINVAL, "model: no modality to use");
  if ((M->fusion == MM_FUSION_TEXT || M->fusion == MM_FUSION_IMAGE) && M->k != 1)
    return mm_errorf(e, MM_EINVAL, "model: fusion '%s' uses exactly one modality (got %d)", mm_fusion_name(M->fusion),
                     M->k);
  if (M->nclasses < 2 || M->nclasses > 100000)
    return mm_errorf(e, MM_EINVAL, "model: needs 2..100000 classes (got %lld)", (long long)M->nclasses);
  if (M->dim < 1 || M->dim > 65536) return mm_errorf(e, MM_EINVAL, "model: dim must be in 1..65536");
  if (M->pool < 0 || M->pool > 2) return mm_errorf(e, MM_EINVAL, "model: unknown pool");
  if (!(M->lambda >= 0) || !(M->margin >= 0) || M->lambda > 1e6 || M->margin > 2)
    return mm_errorf(e, MM_EINVAL, "model: lambda must be >= 0 and margin in [0, 2]");
  int ntext = 0;
  for (int i = 0; i < M->k; i++) ntext += M->mod[i].enc == MM_ENC_TEXT;
  if (ntext > 1) return mm_errorf(e, MM_EINVAL, "model: at most one text modality (got %d)", ntext);
  return MM_OK;
}

/* ---- parameters ----------------------------------------------------------------- */

static int add_param(mm_model *M, const char *prefix, const char *name, int ndim, const int64_t *shape, int sparse,
                     mm_err *e) {
  mm_param *np = realloc(M->params, (size_t)(M->nparams + 1) * sizeof *np);
  if (!np) return -1;
  M->params = np;
  mm_param *p = &M->params[M->nparams];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s%s%s", prefix, prefix[0] ? "." : "", name);
  p->ndim = ndim;
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

static void init_uniform(mm_param *p, mm_rng *r, double bound) {
  for (int64_t i = 0; i < p->count; i++) p->w[i] = (float)((2.0 * mm_rng_double(r) - 1.0) * bound);
}

static int alloc_params(mm_model *M, mm_err *e) {
  int64_t C = M->nclasses, clsin = 0;
  for (int i = 0; i < M->k; i++) {
    mm_modcfg *c = &M->mod[i];
    c->p_emb = c->p_pw = c->p_pb = c->p_lw = c->p_lb = c->p_miss = -1;
    for (int b = 0; b < MM_MAXBLOCKS; b++) c->p_cw[b] = c->p_cb[b] = -1;
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
      mm_errorf(e, MM_EINVAL, "model: encoder of modality '%s' is not resolved", c->name);
      goto fail;
    }
    c->project = is_joint(M) && !(c->enc == MM_ENC_TEXT && c->out_dim == M->dim);
    if (c->project) {
      ADDP(c->p_pw, pre, "proj.weight", 2, M->dim, c->out_dim);
      ADDP(c->p_pb, pre, "proj.bias", 1, M->dim);
    }
    if (M->fusion == MM_FUSION_LATE) {
      ADDP(c->p_lw, pre, "classifier.weight", 2, C, c->out_dim);
      ADDP(c->p_lb, pre, "classifier.bias", 1, C);
    }
    if (M->fusion == MM_FUSION_EARLY && !M->missing_zeros) ADDP(c->p_miss, pre, "missing", 1, c->out_dim);
    clsin += c->out_dim;
  }
  if (is_joint(M)) clsin = M->dim;
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

static void init_params(mm_model *M, uint64_t seed) {
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
    } else { /* bias: PyTorch's bound from the matching weight's fan-in */
      const mm_param *w = i > 0 ? &M->params[i - 1] : NULL;
      int64_t fan_in = w ? w->count / w->shape[0] : 1;
      init_uniform(p, &r, 1.0 / sqrt((double)fan_in));
    }
  }
}

void mm_model_free(mm_model *M) {
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
  mm_vocab_free(M->voc);
  M->voc = NULL;
  mm_ffree(M->bak);
  M->bak = NULL;
  M->bakcap = 0;
  M->built = 0;
  M->opt_dirty = 0;
  ws_cache_free(M);
  hog_cache_free(M);
}

int64_t mm_model_param_count(const mm_model *M) {
  int64_t s = 0;
  for (int i = 0; i < M->nparams; i++) s += M->params[i].count;
  return s;
}

int mm_model_build_resolved(mm_model *M, char **words, int64_t nwords, mm_err *e) {
  if (M->built) return mm_errorf(e, MM_EINVAL, "model: already built");
  int rc = mm_model_check(M, e);
  if (rc) return rc;
  for (int i = 0; i < M->k; i++) {
    mm_modcfg *c = &M->mod[i];
    if (c->enc == MM_ENC_TEXT) {
      size_t *lens = malloc((size_t)(nwords ? nwords : 1) * sizeof *lens);
      if (!lens) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
      for (int64_t j = 0; j < nwords; j++) lens[j] = strlen(words[j]);
      mm_vocab_opts vo = vocab_opts(M);
      M->voc = mm_vocab_from_words((const char *const *)words, lens, nwords, &vo, e);
      free(lens);
      if (!M->voc) return e->code ? e->code : mm_errorf(e, MM_ENOMEM, "model: out of memory");
      vocab_key(M);
      c->in_dim = mm_vocab_rows(M->voc);
      if (c->in_dim < 1) return mm_errorf(e, MM_EINVAL, "model: text vocabulary and buckets are both empty");
    } else if (c->enc == MM_ENC_FEAT && (c->in_dim < 1 || c->in_dim > (1 << 24)))
      return mm_errorf(e, MM_EINVAL, "model: feature size of '%s' must be in 1..2^24", c->name);
    else if (c->enc == MM_ENC_CNN && (c->img_h < 1 || c->img_w < 1 || c->img_h > 4096 || c->img_w > 4096))
      return mm_errorf(e, MM_EINVAL, "model: image size of '%s' must be in 1..4096", c->name);
  }
  rc = alloc_params(M, e);
  if (rc) {
    mm_model_free(M);
    return rc;
  }
  return MM_OK;
}

int mm_model_build_from(mm_model *M, const mm_dataset *ds, uint64_t seed, mm_err *e) {
  if (M->built) return MM_OK;
  int rc = mm_model_check(M, e);
  if (rc) return rc;
  for (int i = 0; i < M->k; i++) {
    mm_modcfg *c = &M->mod[i];
    int j = mm_dataset_find(ds, c->name);
    if (j < 0) return mm_errorf(e, MM_EINVAL, "model: the training data has no modality '%s'", c->name);
    const mm_modality *m = &ds->mods[j];
    if (m->kind == MM_MOD_TEXT) {
      if (c->enc != MM_ENC_AUTO && c->enc != MM_ENC_TEXT)
        return mm_errorf(e, MM_EINVAL, "model: modality '%s' holds text; encoder '%s' does not read text", c->name,
                         mm_enc_name(c->enc));
      c->enc = MM_ENC_TEXT;
      mm_vocab_opts vo = vocab_opts(M);
      mm_counter *cnt = mm_counter_new(e);
      if (!cnt) return e->code;
      for (int64_t r = 0; r < ds->n && !rc; r++)
        if (m->mask[r]) rc = mm_counter_add_text(cnt, m->text + m->off[r], (size_t)(m->off[r + 1] - m->off[r]), &vo.tok, e);
      if (!rc) {
        M->voc = mm_vocab_build(cnt, &vo, e);
        if (!M->voc) rc = e->code ? e->code : mm_errorf(e, MM_ENOMEM, "model: out of memory");
      }
      mm_counter_free(cnt);
      if (rc) return rc;
      vocab_key(M);
      c->in_dim = mm_vocab_rows(M->voc);
      if (c->in_dim < 1) return mm_errorf(e, MM_EINVAL, "model: the training text gives an empty vocabulary");
    } else if (m->kind == MM_MOD_IMAGE) {
      if (c->enc == MM_ENC_AUTO) c->enc = MM_ENC_CNN;
      if (c->enc == MM_ENC_CNN && c->nblocks == 0) {
        c->nblocks = 3;
        c->ch[0] = 16, c->ch[1] = 32, c->ch[2] = 64;
        c->ksize = 3;
      }
      if (c->enc == MM_ENC_HIST && c->hb == 0) c->hb = 8, c->sb = 4, c->vb = 4;
      if (c->enc != MM_ENC_CNN && c->enc != MM_ENC_HIST)
        return mm_errorf(e, MM_EINVAL,
                         "model: modality '%s' holds pixels; encoder '%s' needs feature rows (use cnn or histogram)",
                         c->name, mm_enc_name(c->enc));
      c->img_h = m->h, c->img_w = m->w;
    } else {
      if (c->enc != MM_ENC_AUTO && c->enc != MM_ENC_FEAT)
        return mm_errorf(e, MM_EINVAL, "model: modality '%s' holds feature rows; encoder '%s' needs %s", c->name,
                         mm_enc_name(c->enc), c->enc == MM_ENC_TEXT ? "text" : "pixels");
      c->enc = MM_ENC_FEAT;
      c->in_dim = m->dim;
    }
  }
  rc = alloc_params(M, e);
  if (rc) {
    mm_model_free(M);
    return rc;
  }
  init_params(M, seed);
  return MM_OK;
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

/* ---- workspace -------------------------------------------------------------------- */

typedef struct modws {
  int dsi; /* dataset modality index or -1 */
  float *h, *gh, *u, *gu, *logits, *probs, *glog;
  struct {
    int64_t *v, *sl, n, cap; /* sl: compact gradient rows of v (training) */
  } ids;
  int64_t *offs;
  float *img;
  float *a[MM_MAXBLOCKS], *ga[MM_MAXBLOCKS], *p[MM_MAXBLOCKS], *gp[MM_MAXBLOCKS];
  int32_t *arg[MM_MAXBLOCKS];
  int pooled[MM_MAXBLOCKS];
  mm_conv2d_shape cs[MM_MAXBLOCKS];
  mm_pool2d_shape ps[MM_MAXBLOCKS];
  int64_t colofs[MM_MAXBLOCKS]; /* CNN block b's im2col at ws col + colofs[b] */
  float *dscr;                  /* inference by direct convolution: its scratch (dcap floats) */
  int64_t dcap;
  uint64_t dgen;                /* dscr holds the kernels packed at M->wgen == dgen - 1 (0: none) */
  int dkern;                    /* ... at this kernel level (core/cpu.h) */
} modws;

typedef struct ws {
  int64_t B;
  int train; /* the gradient buffers are allocated too */
  int64_t *y;
  uint8_t *mm[MM_MAXMOD]; /* modality-major masks [B] */
  uint8_t *none;          /* [B] no modality present */
  uint8_t *ok;            /* [B] labelled */
  float *z, *gz, *logits, *probs, *glog, *col, *tv, *tt, *rk; /* rk: ranking loss scratch */
  int32_t *parg;
  modws m[MM_MAXMOD];
} ws;

static void ws_free(const mm_model *M, ws *w) {
  free(w->y);
  free(w->none);
  free(w->ok);
  float *fl[] = {w->z, w->gz, w->logits, w->probs, w->glog, w->col, w->tv, w->tt, w->rk};
  for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) mm_ffree(fl[i]);
  free(w->parg);
  for (int i = 0; i < MM_MAXMOD; i++) {
    free(w->mm[i]);
    modws *m = &w->m[i];
    float *f2[] = {m->h, m->gh, m->u, m->gu, m->logits, m->probs, m->glog, m->img, m->dscr};
    for (size_t j = 0; j < sizeof f2 / sizeof *f2; j++) mm_ffree(f2[j]);
    free(m->ids.v);
    free(m->ids.sl);
    free(m->offs);
    for (int b = 0; b < MM_MAXBLOCKS; b++) {
      mm_ffree(m->a[b]);
      mm_ffree(m->ga[b]);
      mm_ffree(m->p[b]);
      mm_ffree(m->gp[b]);
      free(m->arg[b]);
    }
  }
  (void)M;
  memset(w, 0, sizeof *w);
}

/* shapes of the CNN blocks for n samples. The CNN runs channel-major
 * (activations [c, n, h, w], mm_conv2d_cn_*). With colmax (ws_alloc): places
 * each block's whole-batch im2col in the ws col buffer and grows *colmax to
 * the floats it needs; when train, blocks (and CNN modalities) get places of
 * their own, one after the other, so backward reuses the forward's im2col.
 * Inference needs no whole-batch im2col: small ones (a few posts) share
 * offset 0 (no allocation per call), for big ones (colofs -1) the conv
 * allocates a chunk-sized im2col per thread itself. */
static int cnn_shapes(const mm_modcfg *c, modws *m, int64_t n, int train, int64_t *colmax, mm_err *e) {
  int64_t cin = 3, h = c->img_h, wd = c->img_w;
  for (int b = 0; b < c->nblocks; b++) {
    int rc = mm_conv2d_shape_init(&m->cs[b], n, cin, h, wd, c->ch[b], c->ksize, c->ksize, 1, c->ksize / 2, 1, e);
    if (rc) return rc;
    int64_t cs = mm_conv2d_cn_col_size(&m->cs[b]);
    if (colmax && train) {
      m->colofs[b] = *colmax;
      *colmax += cs;
    } else if (colmax) {
      m->colofs[b] = cs <= ((int64_t)1 << 20) ? 0 : -1;
      if (m->colofs[b] == 0 && cs > *colmax) *colmax = cs;
    }
    h = m->cs[b].oh, wd = m->cs[b].ow, cin = c->ch[b];
    m->pooled[b] = h >= 2 && wd >= 2;
    if (m->pooled[b]) {
      rc = mm_pool2d_shape_init(&m->ps[b], n, cin, h, wd, 2, 2, 0, e);
      if (rc) return rc;
      h = m->ps[b].oh, wd = m->ps[b].ow;
    }
  }
  return MM_OK;
}

#define FA(ptr, cnt)                             \
  do {                                           \
    (ptr) = mm_falloc((int64_t)(cnt) + 1);       \
    if (!(ptr)) goto oom;                        \
  } while (0)

_Static_assert(MM_MAXBLOCKS <= MM_CNN_MAXBLOCKS, "the direct-convolution inference takes every CNN block");

/* the CNN's per-block activations (and their gradients when train) for
 * batches of B, after cnn_shapes; -1 when out of memory */
static int cnn_activations(const mm_modcfg *c, modws *m, int64_t B, int train) {
  for (int b = 0; b < c->nblocks; b++) {
    int64_t na = B * c->ch[b] * m->cs[b].oh * m->cs[b].ow;
    FA(m->a[b], na);
    if (train) FA(m->ga[b], na);
    if (m->pooled[b]) {
      int64_t np = B * c->ch[b] * m->ps[b].oh * m->ps[b].ow;
      FA(m->p[b], np);
      if (train) {
        FA(m->gp[b], np);
        m->arg[b] = malloc((size_t)np * sizeof *m->arg[b]);
        if (!m->arg[b]) goto oom;
      }
    }
  }
  return 0;
oom: /* nothing half-made: encode tests m->a[0] */
  for (int b = 0; b < c->nblocks; b++) {
    mm_ffree(m->a[b]);
    mm_ffree(m->ga[b]);
    mm_ffree(m->p[b]);
    mm_ffree(m->gp[b]);
    free(m->arg[b]);
    m->a[b] = m->ga[b] = m->p[b] = m->gp[b] = NULL;
    m->arg[b] = NULL;
  }
  return -1;
}

/* gradient w.r.t. the encoder output is needed (the encoder has parameters) */
static int enc_wants_grad(const mm_modcfg *c) { return c->enc == MM_ENC_TEXT || c->enc == MM_ENC_CNN; }

/* Buffers for batches of up to B rows; the gradient buffers only when train. */
static int ws_alloc(const mm_model *M, ws *w, int64_t B, int train, mm_err *e) {
  memset(w, 0, sizeof *w);
  w->B = B;
  w->train = train;
  int64_t C = M->nclasses, d = M->dim, k = M->k, Z = 0;
  w->y = malloc((size_t)B * sizeof *w->y);
  w->none = malloc((size_t)B);
  w->ok = malloc((size_t)B);
  if (train && is_joint(M)) {
    w->parg = malloc((size_t)(B * d) * sizeof *w->parg);
    if (!w->parg) goto oom;
  }
  if (!w->y || !w->none || !w->ok) goto oom;
  int64_t colmax = 0;
  for (int i = 0; i < k; i++) {
    const mm_modcfg *c = &M->mod[i];
    modws *m = &w->m[i];
    w->mm[i] = malloc((size_t)B);
    if (!w->mm[i]) goto oom;
    FA(m->h, B * c->out_dim);
    if (train && enc_wants_grad(c)) FA(m->gh, B * c->out_dim);
    Z += c->out_dim;
    if (is_joint(M)) {
      FA(m->u, B * d);
      if (train) FA(m->gu, B * d);
    }
    if (M->fusion == MM_FUSION_LATE) {
      FA(m->logits, B * C);
      FA(m->probs, B * C);
      if (train) FA(m->glog, B * C);
    }
    if (c->enc == MM_ENC_TEXT) {
      m->offs = malloc((size_t)(B + 1) * sizeof *m->offs);
      if (!m->offs) goto oom;
    }
    if (c->enc == MM_ENC_CNN) {
      int rc = cnn_shapes(c, m, B, train, &colmax, e);
      if (rc) {
        ws_free(M, w);
        return rc;
      }
      FA(m->img, B * 3 * c->img_h * c->img_w);
      /* inference by direct convolution needs none of the per-block
       * activations (encode allocates them if the kernel changes later) */
      if ((train || !mm_cnn_direct_ok()) && cnn_activations(c, m, B, train)) goto oom;
    }
  }
  if (is_joint(M)) Z = d;
  FA(w->z, B * Z);
  if (train) FA(w->gz, B * Z);
  if (is_joint(M) && train && M->fusion == MM_FUSION_COMMON) {
    FA(w->tv, B * d);
    FA(w->tt, B * d);
    FA(w->rk, mm_ranking_scratch(B, d));
  }
  FA(w->logits, B * C);
  FA(w->probs, B * C);
  if (train) FA(w->glog, B * C);
  FA(w->col, colmax);
  return MM_OK;
oom:
  ws_free(M, w);
  return mm_errorf(e, MM_ENOMEM, "model: out of memory for a batch of %lld", (long long)B);
}

/* The model keeps one workspace between calls, grown to the largest batch
 * seen (and to training buffers once it trained). A call made while it is in
 * use (predict from a progress callback of fit) gets a workspace of its own. */
static ws *ws_acquire(mm_model *M, int64_t B, int train, mm_err *e) {
  ws *w = M->wscache;
  if (!M->ws_busy && w && w->B >= B && (w->train || !train)) {
    M->ws_busy = 1;
    return w;
  }
  int cache = !M->ws_busy;
  if (cache && w) {
    if (w->B > B) B = w->B;
    if (w->train) train = 1;
    ws_free(M, w);
    free(w);
    M->wscache = NULL;
  }
  w = malloc(sizeof *w);
  if (!w) {
    mm_errorf(e, MM_ENOMEM, "model: out of memory for a batch of %lld", (long long)B);
    return NULL;
  }
  if (ws_alloc(M, w, B, train, e)) {
    free(w);
    return NULL;
  }
  if (cache) {
    M->wscache = w;
    M->ws_busy = 1;
  }
  return w;
}

static void ws_cache_free(mm_model *M) {
  if (M->wscache) {
    ws_free(M, M->wscache);
    free(M->wscache);
  }
  M->wscache = NULL;
  M->ws_busy = 0;
}

static void ws_release(mm_model *M, ws *w) {
  if (!w) return;
  if (w == M->wscache) {
    M->ws_busy = 0;
    return;
  }
  ws_free(M, w);
  free(w);
}

/* ---- binding a dataset ------------------------------------------------------------ */

static int bind(const mm_model *M, mm_dataset *ds, ws *w, int train, mm_err *e) {
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    int j = mm_dataset_find(ds, c->name);
    w->m[i].dsi = j;
    if (j < 0) {
      if (train) return mm_errorf(e, MM_EINVAL, "model: the training data has no modality '%s'", c->name);
      continue;
    }
    mm_modality *m = &ds->mods[j];
    if (c->enc == MM_ENC_TEXT) {
      if (m->kind != MM_MOD_TEXT) return mm_errorf(e, MM_EINVAL, "model: modality '%s' of the data is not text", c->name);
      if (!m->cache_ids || m->cache_key != M->vocab_key) {
        free(m->cache_ids);
        free(m->cache_off);
        m->cache_ids = m->cache_off = NULL;
        const char **texts = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *texts);
        size_t *lens = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *lens);
        m->cache_off = malloc((size_t)(ds->n + 1) * sizeof *m->cache_off);
        if (!texts || !lens || !m->cache_off) {
          free(texts);
          free(lens);
          return mm_errorf(e, MM_ENOMEM, "model: out of memory");
        }
        for (int64_t r = 0; r < ds->n; r++) {
          texts[r] = m->text + m->off[r];
          lens[r] = m->mask[r] ? (size_t)(m->off[r + 1] - m->off[r]) : 0;
        }
        mm_csr csr;
        mm_csr_init(&csr);
        int rc = mm_vocab_encode(M->voc, texts, lens, ds->n, &csr, e);
        free(texts);
        free(lens);
        if (rc) {
          mm_csr_free(&csr);
          return rc;
        }
        m->cache_ids = malloc((size_t)(csr.nids ? csr.nids : 1) * sizeof *m->cache_ids);
        if (!m->cache_ids) {
          mm_csr_free(&csr);
          return mm_errorf(e, MM_ENOMEM, "model: out of memory");
        }
        if (csr.nids > 0) memcpy(m->cache_ids, csr.ids, (size_t)csr.nids * sizeof *m->cache_ids);
        memcpy(m->cache_off, csr.offsets, (size_t)(ds->n + 1) * sizeof *m->cache_off);
        mm_csr_free(&csr);
        m->cache_key = M->vocab_key;
#ifdef __GLIBC__
        /* the encoder's temporaries are free again: give their pages back
         * before the training loop (they would count in its peak RSS). Not
         * for small sets: predict binds every new batch, and trimming then
         * costs page faults on every call (26 us of a 150 us single post) */
        if (ds->n >= 4096) malloc_trim(0);
#endif
      }
    } else if (c->enc == MM_ENC_CNN || c->enc == MM_ENC_HIST) {
      if (m->kind != MM_MOD_IMAGE)
        return mm_errorf(e, MM_EINVAL, "model: modality '%s' of the data holds no pixels (encoder %s)", c->name,
                         mm_enc_name(c->enc));
      if (m->c != 3) return mm_errorf(e, MM_EINVAL, "model: images of '%s' must be RGB", c->name);
      if (c->enc == MM_ENC_CNN && (m->h != c->img_h || m->w != c->img_w))
        return mm_errorf(e, MM_EINVAL, "model: images of '%s' are %lldx%lld; the model was built for %lldx%lld",
                         c->name, (long long)m->h, (long long)m->w, (long long)c->img_h, (long long)c->img_w);
    } else {
      if (m->kind != MM_MOD_DENSE || m->dim != c->in_dim)
        return mm_errorf(e, MM_EINVAL, "model: modality '%s' must hold feature rows of size %lld (data: %s %lld)",
                         c->name, (long long)c->in_dim, m->kind == MM_MOD_DENSE ? "rows of size" : "kind",
                         (long long)(m->kind == MM_MOD_DENSE ? m->dim : m->kind));
    }
  }
  return MM_OK;
}

/* ---- forward / backward ---------------------------------------------------------- */

/* softmax cross entropy over the rows with ok[b] (nn/loss.c); probs always
 * filled; glog (nullable) = d(loss)/d(logits); returns the loss. */
static double softmax_ce(const float *logits, const int64_t *y, const uint8_t *ok, const float *cw, int64_t n,
                         int64_t C, float *probs, float *glog) {
  double loss = mm_cross_entropy_masked_forward(logits, y, ok, cw, n, C, probs);
  if (glog) mm_cross_entropy_masked_backward(probs, y, ok, cw, n, C, 1.0f, glog);
  return loss;
}

static void gather_text(const mm_model *M, const mm_dataset *ds, modws *m, const int64_t *rows, int64_t n) {
  const mm_modality *dm = &ds->mods[m->dsi];
  m->ids.n = 0;
  m->offs[0] = 0;
  (void)M;
  for (int64_t b = 0; b < n; b++) {
    int64_t r = rows[b];
    for (int64_t q = dm->cache_off[r]; q < dm->cache_off[r + 1]; q++) m->ids.v[m->ids.n++] = dm->cache_ids[q];
    m->offs[b + 1] = m->ids.n;
  }
}

static int encode(mm_model *M, const mm_dataset *ds, ws *w, int i, const int64_t *rows, int64_t n, int train,
                  mm_err *e) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  int64_t E = c->out_dim;
  if (m->dsi < 0) {
    memset(m->h, 0, (size_t)(n * E) * sizeof(float));
    return MM_OK;
  }
  const mm_modality *dm = &ds->mods[m->dsi];
  if (c->enc == MM_ENC_TEXT) {
    int64_t need = 0;
    for (int64_t b = 0; b < n; b++) need += dm->cache_off[rows[b] + 1] - dm->cache_off[rows[b]];
    if (need > m->ids.cap) {
      int64_t *nv = realloc(m->ids.v, (size_t)need * sizeof *nv);
      if (!nv) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
      m->ids.v = nv;
      int64_t *ns = realloc(m->ids.sl, (size_t)need * sizeof *ns);
      if (!ns) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
      m->ids.sl = ns;
      m->ids.cap = need;
    }
    if (train) { /* room for the compact gradient rows the backward may add */
      mm_param *p = &M->params[c->p_emb];
      int64_t rows = p->ntouched + need;
      if (rows > p->shape[0]) rows = p->shape[0];
      if (rows > p->gccap) {
        int64_t cap = rows + rows / 2 + 64;
        if (cap > p->shape[0]) cap = p->shape[0];
        float *ng = mm_falloc(cap * p->rowlen);
        if (!ng) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
        if (p->ntouched) memcpy(ng, p->gc, (size_t)(p->ntouched * p->rowlen) * sizeof(float));
        mm_ffree(p->gc);
        p->gc = ng;
        p->gccap = cap;
      }
    }
    gather_text(M, ds, m, rows, n);
    mm_embedding_bag_forward(M->params[c->p_emb].w, M->dim, m->ids.v, m->offs, n, m->h);
  } else if (c->enc == MM_ENC_FEAT) {
    for (int64_t b = 0; b < n; b++) memcpy(m->h + b * E, dm->feat + rows[b] * E, (size_t)E * sizeof(float));
  } else if (c->enc == MM_ENC_HIST) {
    int64_t per = dm->h * dm->w * 3;
    for (int64_t b = 0; b < n; b++) {
      int rc = mm_image_hsv_histogram_rgb8(dm->pix + rows[b] * per, dm->h * dm->w, c->hb, c->sb, c->vb, m->h + b * E,
                                           e);
      if (rc) return rc;
    }
  } else { /* CNN */
    int rc = cnn_shapes(c, m, n, 0, NULL, e);
    if (rc) return rc;
    mm_image_prep pp = {(int)c->img_h, (int)c->img_w, (train && c->augment) ? 2 : 0, train && c->augment,
                        train && c->augment, img_mean, img_std};
    rc = mm_image_prep_check(&pp, (int)dm->h, (int)dm->w, e);
    if (rc) return rc;
    int64_t per = dm->h * dm->w * 3, hw = c->img_h * c->img_w;
    /* inference on consecutive rows stored at the model's size: the CNN reads
     * the bytes itself (mm_image_prep_rgb8's arithmetic, no float image) */
    int direct = !train && mm_cnn_direct_ok(), bytes = direct && dm->h == c->img_h && dm->w == c->img_w;
    for (int64_t b = 1; bytes && b < n; b++) bytes = rows[b] == rows[0] + b;
    if (!bytes)
      for (int64_t b = 0; b < n; b++)
        mm_image_prep_rgb8(&pp, dm->pix + rows[b] * per, (int)dm->h, (int)dm->w, &M->rng, m->img + b * 3 * hw);
    if (direct) { /* inference: direct convolution, one sample at a time */
      mm_cnn_block bl[MM_MAXBLOCKS];
      for (int b = 0; b < c->nblocks; b++)
        bl[b] = (mm_cnn_block){c->ch[b], c->ksize, M->params[c->p_cw[b]].w, M->params[c->p_cb[b]].w, m->pooled[b]};
      int64_t need = mm_cnn_direct_scratch(bl, (int)c->nblocks, n, 3, c->img_h, c->img_w, 1);
      if (need < 0) return mm_errorf(e, MM_EINVAL, "model: the cnn of '%s' has a shape direct convolution rejects", c->name);
      if (need > m->dcap) {
        mm_ffree(m->dscr);
        m->dcap = 0;
        m->dgen = 0;
        m->dscr = mm_falloc_uninit(need);
        if (!m->dscr) return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
        m->dcap = need;
      }
      /* the packed kernels are kept while the weights and the kernel level stay the same */
      int kern = mm_isa();
      int packed = m->dgen == M->wgen + 1 && m->dkern == kern;
      if (bytes) {
        float sc[3], sh[3];
        mm_image_prep_rgb8_affine(&pp, sc, sh);
        mm_cnn_direct_forward_rgb8(bl, (int)c->nblocks, n, c->img_h, c->img_w, dm->pix + rows[0] * per, sc, sh, m->h,
                                   m->dscr, packed, 1);
      } else {
        mm_cnn_direct_forward(bl, (int)c->nblocks, n, 3, c->img_h, c->img_w, m->img, m->h, m->dscr, packed, 1);
      }
      m->dgen = M->wgen + 1;
      m->dkern = kern;
      return MM_OK;
    }
    if (!m->a[0] && cnn_activations(c, m, w->B, w->train)) /* the kernel changed since ws_alloc */
      return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
    const float *x = m->img;
    for (int b = 0; b < c->nblocks; b++) { /* conv + bias + ReLU (+ max pool), channel-major */
      int pl = m->pooled[b];
      /* training keeps the im2col for backward (colofs >= 0 then) */
      float *col = m->colofs[b] >= 0 ? w->col + m->colofs[b] : NULL;
      if (mm_conv2d_cn_forward(&m->cs[b], x, b == 0, M->params[c->p_cw[b]].w, M->params[c->p_cb[b]].w, m->a[b],
                               col, 1, pl ? &m->ps[b] : NULL, pl ? m->p[b] : NULL, pl && train ? m->arg[b] : NULL))
        return mm_errorf(e, MM_ENOMEM, "model: out of memory for the cnn of '%s'", c->name);
      x = pl ? m->p[b] : m->a[b];
    }
    int last = c->nblocks - 1;
    int64_t lhw = m->pooled[last] ? m->ps[last].oh * m->ps[last].ow : m->cs[last].oh * m->cs[last].ow;
    mm_global_avg_pool_cn_forward(x, m->h, n, c->ch[last], lhw);
  }
  return MM_OK;
}

/* sl[q] = the compact gradient row of table row ids[q]; rows new to this
 * step get the next compact row, zeroed (room was made in encode) */
static void slot_rows(mm_param *p, const int64_t *ids, int64_t n, int64_t *sl) {
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

static void encode_backward(mm_model *M, ws *w, int i, int64_t n) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  if (m->dsi < 0) return;
  if (c->enc == MM_ENC_TEXT) {
    mm_param *p = &M->params[c->p_emb];
    /* the same sums as a backward into the dense table, row for row */
    slot_rows(p, m->ids.v, m->ids.n, m->ids.sl);
    mm_embedding_bag_backward(m->ids.sl, m->offs, n, M->dim, m->gh, p->gc);
  } else if (c->enc == MM_ENC_CNN) {
    int last = c->nblocks - 1;
    int64_t lhw = m->pooled[last] ? m->ps[last].oh * m->ps[last].ow : m->cs[last].oh * m->cs[last].ow;
    mm_global_avg_pool_cn_backward(m->gh, m->pooled[last] ? m->gp[last] : m->ga[last], n, c->ch[last], lhw);
    for (int b = last; b >= 0; b--) {
      if (m->pooled[b]) {
        mm_max_pool2d_relu_backward(&m->ps[b], m->arg[b], m->p[b], m->gp[b], m->ga[b]);
      } else {
        int64_t na = n * c->ch[b] * m->cs[b].oh * m->cs[b].ow;
        mm_relu_backward(m->a[b], m->ga[b], m->ga[b], na);
      }
      const float *xin = b == 0 ? m->img : (m->pooled[b - 1] ? m->p[b - 1] : m->a[b - 1]);
      float *gxin = b == 0 ? NULL : (m->pooled[b - 1] ? m->gp[b - 1] : m->ga[b - 1]);
      /* the forward of this batch left the im2col of xin at col + colofs[b] */
      mm_conv2d_cn_backward(&m->cs[b], xin, b == 0, M->params[c->p_cw[b]].w, m->ga[b], gxin, M->params[c->p_cw[b]].g,
                            M->params[c->p_cb[b]].g, w->col + m->colofs[b], 1);
    }
  }
}

/* ---- joint fusion: masked pooling straight from the modality vectors ----------------
 * u_i = h_i when modality i is not projected (a text bag of size dim), and its
 * gradient goes straight to gh_i: no copies. The pooling is the arithmetic of
 * mm_modality_pool_forward / _backward (fusion.c) on x[b, i] = u_i[b], where
 * a row with nothing present pools a zero vector as modality 0. */
static float *joint_u(const mm_model *M, ws *w, int i) { return M->mod[i].project ? w->m[i].u : w->m[i].h; }
static float *joint_gu(const mm_model *M, ws *w, int i) {
  return M->mod[i].project || !w->m[i].gh ? w->m[i].gu : w->m[i].gh;
}

static void joint_pool_forward(const mm_model *M, ws *w, int64_t n, int train) {
  const int64_t d = M->dim, k = M->k;
  const int mode = M->pool;
  int32_t *parg = train ? w->parg : NULL;
  for (int64_t b = 0; b < n; b++) {
    float *restrict y = w->z + b * d;
    int32_t *restrict ar = parg ? parg + b * d : NULL;
    if (w->none[b]) { /* nothing present: modality 0 as a zero vector */
      memset(y, 0, (size_t)d * sizeof(float));
      if (ar) memset(ar, 0, (size_t)d * sizeof(int32_t));
      continue;
    }
    int first = 1, cnt = 0;
    for (int i = 0; i < k; i++) {
      if (!w->mm[i][b]) continue;
      cnt++;
      mm_pool_row_add(mode, first, i, joint_u(M, w, i) + b * d, y, ar, d);
      first = 0;
    }
    mm_pool_row_finish(mode, cnt, y, d);
  }
}

/* gu_i = d(loss)/d(u_i) from gz (overwritten; rows with nothing present get 0) */
static void joint_pool_backward(const mm_model *M, ws *w, int64_t n) {
  const int64_t d = M->dim, k = M->k;
  for (int i = 0; i < k; i++) {
    float *gu = joint_gu(M, w, i);
    for (int64_t b = 0; b < n; b++) {
      float *restrict g = gu + b * d;
      const float *restrict gz = w->gz + b * d;
      if (w->none[b] || (M->pool != MM_POOL_MAX && !w->mm[i][b])) {
        memset(g, 0, (size_t)d * sizeof(float));
        continue;
      }
      if (M->pool == MM_POOL_MAX) {
        const int32_t *restrict ar = w->parg + b * d;
        for (int64_t j = 0; j < d; j++) { /* bit mask, no branch: the winner is a coin toss */
          uint32_t gb, msk = (uint32_t)0 - (uint32_t)(ar[j] == i);
          memcpy(&gb, gz + j, sizeof gb);
          gb &= msk;
          memcpy(g + j, &gb, sizeof gb);
        }
        continue;
      }
      int cnt = 0;
      for (int q = 0; q < k; q++) cnt += w->mm[q][b] != 0;
      float s = M->pool == MM_POOL_MEAN ? 1.0f / (float)cnt : 1.0f;
      for (int64_t j = 0; j < d; j++) g[j] = s * gz[j];
    }
  }
}

/* Full forward (and backward when train): fills w->probs [n, C]; returns the loss. */
static int run_batch(mm_model *M, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int train,
                     const float *cw, double *loss_out, mm_err *e) {
  int64_t C = M->nclasses, d = M->dim, k = M->k;
  for (int64_t b = 0; b < n; b++) {
    w->y[b] = ds->labels[rows[b]];
    w->ok[b] = w->y[b] >= 0;
  }
  /* masks (+ modality dropout) */
  for (int64_t b = 0; b < n; b++) {
    int any = 0, anyorig = 0;
    uint8_t keep[MM_MAXMOD];
    for (int i = 0; i < k; i++) {
      int dsi = w->m[i].dsi;
      uint8_t p = dsi >= 0 ? ds->mods[dsi].mask[rows[b]] : 0;
      if (p && M->mod[i].enc == MM_ENC_TEXT) { /* a text whose bag is empty is absent */
        const mm_modality *dm = &ds->mods[dsi];
        p = dm->cache_off[rows[b] + 1] > dm->cache_off[rows[b]];
      }
      anyorig |= p;
      keep[i] = p;
      if (p && train && M->mod[i].drop > 0 && mm_rng_uniform(&M->rng) < M->mod[i].drop) p = 0;
      w->mm[i][b] = p;
      any |= p;
    }
    if (!any && anyorig) /* never drop every modality of a sample */
      for (int i = 0; i < k; i++) w->mm[i][b] = w->mm[i][b] | keep[i];
    w->none[b] = !anyorig;
  }
  for (int i = 0; i < k; i++) {
    int rc = encode(M, ds, w, i, rows, n, train, e);
    if (rc) return rc;
  }
  double loss = 0;
  if (M->fusion == MM_FUSION_LATE) {
    memset(w->probs, 0, (size_t)(n * C) * sizeof(float));
    uint8_t *okm = w->none; /* reuse: recomputed below */
    for (int i = 0; i < k; i++) {
      const mm_modcfg *c = &M->mod[i];
      modws *m = &w->m[i];
      mm_linear_forward(m->h, M->params[c->p_lw].w, M->params[c->p_lb].w, m->logits, n, c->out_dim, C);
      for (int64_t b = 0; b < n; b++) okm[b] = w->ok[b] && w->mm[i][b];
      loss += softmax_ce(m->logits, w->y, okm, cw, n, C, m->probs, train ? m->glog : NULL);
      for (int64_t b = 0; b < n; b++)
        if (w->mm[i][b])
          for (int64_t j = 0; j < C; j++) w->probs[b * C + j] += m->probs[b * C + j];
    }
    for (int64_t b = 0; b < n; b++) {
      int cnt = 0;
      for (int i = 0; i < k; i++) cnt += w->mm[i][b];
      for (int64_t j = 0; j < C; j++) w->probs[b * C + j] = cnt ? w->probs[b * C + j] / cnt : 1.0f / (float)C;
    }
    if (train)
      for (int i = 0; i < k; i++) {
        const mm_modcfg *c = &M->mod[i];
        modws *m = &w->m[i];
        mm_linear_backward(m->h, M->params[c->p_lw].w, m->glog, m->gh, M->params[c->p_lw].g, M->params[c->p_lb].g, n,
                           c->out_dim, C);
        encode_backward(M, w, i, n);
      }
    *loss_out = loss;
    return MM_OK;
  }
  int64_t Z = 0;
  if (is_joint(M)) {
    Z = d;
    for (int i = 0; i < k; i++) {
      const mm_modcfg *c = &M->mod[i];
      modws *m = &w->m[i];
      if (c->project)
        mm_linear_forward(m->h, M->params[c->p_pw].w, M->params[c->p_pb].w, m->u, n, c->out_dim, d);
    }
    joint_pool_forward(M, w, n, train);
  } else {
    for (int i = 0; i < k; i++) Z += M->mod[i].out_dim;
    int64_t off = 0;
    for (int i = 0; i < k; i++) {
      const mm_modcfg *c = &M->mod[i];
      modws *m = &w->m[i];
      int64_t E = c->out_dim;
      for (int64_t b = 0; b < n; b++) {
        float *dst = w->z + b * Z + off;
        if (w->mm[i][b])
          memcpy(dst, m->h + b * E, (size_t)E * sizeof(float));
        else if (c->p_miss >= 0)
          memcpy(dst, M->params[c->p_miss].w, (size_t)E * sizeof(float));
        else
          memset(dst, 0, (size_t)E * sizeof(float));
      }
      off += E;
    }
  }
  mm_linear_forward(w->z, M->params[M->p_cw].w, M->params[M->p_cb].w, w->logits, n, Z, C);
  loss = softmax_ce(w->logits, w->y, w->ok, cw, n, C, w->probs, train ? w->glog : NULL);
  if (!train) {
    *loss_out = loss;
    return MM_OK;
  }
  mm_linear_backward(w->z, M->params[M->p_cw].w, w->glog, w->gz, M->params[M->p_cw].g, M->params[M->p_cb].g, n, Z, C);
  if (is_joint(M)) {
    joint_pool_backward(M, w, n);
    if (M->fusion == MM_FUSION_COMMON && M->lambda > 0) {
      for (int a = 0; a < k; a++)
        for (int bb = a + 1; bb < k; bb++) {
          double rl = 0;
          int64_t anchors = 0;
          mm_ranking_loss(joint_u(M, w, bb), joint_u(M, w, a), w->y, w->mm[bb], w->mm[a], n, d, M->margin,
                             M->hardest, M->lambda, &rl, w->tv, w->tt, &anchors, w->rk);
          loss += M->lambda * rl;
          float *restrict gb = joint_gu(M, w, bb), *restrict ga = joint_gu(M, w, a);
          const float *restrict tv = w->tv, *restrict tt = w->tt;
          for (int64_t q = 0; q < n * d; q++) {
            gb[q] += tv[q];
            ga[q] += tt[q];
          }
        }
    }
    for (int i = 0; i < k; i++) {
      const mm_modcfg *c = &M->mod[i];
      modws *m = &w->m[i];
      if (c->project)
        mm_linear_backward(m->h, M->params[c->p_pw].w, m->gu, m->gh, M->params[c->p_pw].g, M->params[c->p_pb].g, n,
                           c->out_dim, d);
      encode_backward(M, w, i, n);
    }
  } else {
    int64_t off = 0;
    for (int i = 0; i < k; i++) {
      const mm_modcfg *c = &M->mod[i];
      modws *m = &w->m[i];
      int64_t E = c->out_dim;
      for (int64_t b = 0; b < n; b++) {
        const float *g = w->gz + b * Z + off;
        if (w->mm[i][b]) {
          if (m->gh) memcpy(m->gh + b * E, g, (size_t)E * sizeof(float));
        } else {
          if (m->gh) memset(m->gh + b * E, 0, (size_t)E * sizeof(float));
          if (c->p_miss >= 0) {
            float *gm = M->params[c->p_miss].g;
            for (int64_t j = 0; j < E; j++) gm[j] += g[j];
          }
        }
      }
      encode_backward(M, w, i, n);
      off += E;
    }
  }
  *loss_out = loss;
  return MM_OK;
}

/* ---- optimiser ----------------------------------------------------------------------- */

/* 1 when every x[i] is finite (nn_train.h) */
static int all_finite(const float *x, int64_t n) { return mm_all_finite(x, n); }

/* every gradient the next step reads is finite (sparse tables: touched rows) */
static int grads_finite(const mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (p->sparse) {
      if (!all_finite(p->gc, p->ntouched * p->rowlen)) return 0;
    } else if (!mm_all_finite_mt(p->g, p->count))
      return 0;
  }
  return 1;
}

static double grad_sumsq(const mm_model *M) {
  double s = 0;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (p->sparse)
      s += mm_sumsq(p->gc, p->ntouched * p->rowlen);
    else
      s += mm_sumsq(p->g, p->count);
  }
  return s;
}

static void zero_grads(mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->sparse) { /* compact rows are zeroed when handed out again */
      for (int64_t t = 0; t < p->ntouched; t++) p->slot[p->tlist[t]] = 0;
      p->ntouched = 0;
    } else
      memset(p->g, 0, (size_t)p->count * sizeof(float));
  }
}

/* m of table row r (v = m + rowlen), from the row-state pool (model.h); a row
 * without state gets the next slot (zero since the last reset). Safe under
 * Hogwild: slots are handed out under a spin lock, and a slot is published
 * (release) only after it is reserved. */
static float *mv_row(mm_param *p, int64_t r) {
  mm_rowstate *rs = p->rs;
  uint32_t s = __atomic_load_n(&rs->slot[r], __ATOMIC_ACQUIRE);
  if (!s) {
    while (__atomic_exchange_n(&rs->lock, 1, __ATOMIC_ACQUIRE)) {
    }
    s = __atomic_load_n(&rs->slot[r], __ATOMIC_RELAXED);
    if (!s) {
      s = (uint32_t)++rs->n;
      __atomic_store_n(&rs->slot[r], s, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&rs->lock, 0, __ATOMIC_RELEASE);
  }
  return p->m + (int64_t)(s - 1) * 2 * p->rowlen;
}

/* Forget the touched rows of the sparse tables whose gradient rows are zero
 * again (the fused pass zeroed them). */
static void clear_touched(mm_model *M) {
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!p->sparse) continue;
    for (int64_t t = 0; t < p->ntouched; t++) p->slot[p->tlist[t]] = 0;
    p->ntouched = 0;
  }
}

/* One optimiser step over every parameter (sparse ones: touched rows only),
 * one fused pass per segment (mm_optim_fused): the old weights go to M->bak,
 * the update, the gradient back to zero, the finite test of the new weights.
 * If the step makes any weight non-finite, the old values come back and
 * MM_ENUM is returned. */
static int apply_step(mm_model *M, const mm_train_opts *o, double scale, mm_err *e) {
  int64_t need = 0;
  for (int i = 0; i < M->nparams; i++) {
    const mm_param *p = &M->params[i];
    if (!p->frozen) need += p->sparse ? p->ntouched * p->rowlen : p->count;
  }
  if (need > M->bakcap) {
    mm_ffree(M->bak);
    /* 64-byte aligned: the fused pass streams big blocks of it (optim.c) */
    M->bak = aligned_alloc(64, (((size_t)need * sizeof(float) + 63) / 64) * 64);
    M->bakcap = M->bak ? need : 0;
    if (!M->bak) {
      zero_grads(M);
      return mm_errorf(e, MM_ENOMEM, "fit: out of memory");
    }
  }
  M->step++;
  M->wgen++;
  M->opt_dirty = 1;
  mm_optim_step st;
  mm_optim_step_init(&st, o->optimizer == MM_OPT_ADAM, o->lr, o->b1, o->b2, o->eps, o->wd, o->momentum, M->step);
  st.scale = (float)scale;
  const int stateful = st.adam || st.momentum != 0.0f;
  int bad = 0;
  int64_t q = 0;
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (p->frozen) {
      if (!p->sparse) memset(p->g, 0, (size_t)p->count * sizeof(float));
      continue;
    }
    if (!p->sparse) {
      if (!mm_optim_fused_mt(&st, p->w, p->g, p->m, p->v, M->bak + q, p->count)) bad = i + 1;
      q += p->count;
      continue;
    }
    const int64_t L = p->rowlen;
    for (int64_t t = 0; t < p->ntouched; t++) {
      int64_t r = p->tlist[t];
      if (t + 2 < p->ntouched) { /* rows of a big table are cache and TLB misses: fetch ahead */
        int64_t r2 = p->tlist[t + 2];
        const float *w2 = p->w + r2 * L;
        for (int64_t j = 0; j < L; j += 16) __builtin_prefetch(w2 + j, 1, 3);
        uint32_t s2 = __atomic_load_n(&p->rs->slot[r2], __ATOMIC_RELAXED);
        if (s2) {
          const float *m2 = p->m + (int64_t)(s2 - 1) * 2 * L;
          for (int64_t j = 0; j < 2 * L; j += 16) __builtin_prefetch(m2 + j, 1, 3);
        }
      }
      float *mr = stateful ? mv_row(p, r) : NULL; /* plain SGD keeps no state per row */
      if (!mm_optim_fused(&st, p->w + r * L, p->gc + t * L, mr, mr ? mr + L : NULL, M->bak + q, L)) bad = i + 1;
      q += L;
    }
  }
  if (bad) {
    q = 0;
    for (int i = 0; i < M->nparams; i++) {
      mm_param *p = &M->params[i];
      if (p->frozen) continue;
      int64_t nseg = p->sparse ? p->ntouched : 1;
      for (int64_t t = 0; t < nseg; t++) {
        int64_t off = p->sparse ? p->tlist[t] * p->rowlen : 0, cnt = p->sparse ? p->rowlen : p->count;
        memcpy(p->w + off, M->bak + q, (size_t)cnt * sizeof(float));
        q += cnt;
      }
    }
    clear_touched(M);
    return mm_errorf(e, MM_ENUM, "fit: the update made %s non-finite (Inf/NaN)", M->params[bad - 1].name);
  }
  clear_touched(M);
  return MM_OK;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t argmax(const float *p, int64_t C) {
  int64_t best = 0;
  for (int64_t c = 1; c < C; c++)
    if (p[c] > p[best]) best = c;
  return best;
}

/* ---- Hogwild training (text-only models, mm.threads(n) > 1) --------------------------
 * fastText-style: the shuffled epoch is cut into one contiguous shard per
 * thread; each thread runs its own batches with its own workspace, gradient
 * buffers, touched-row lists, weight backup and rng, and updates the shared
 * weights (and Adam moments) without locks. Updates of the same rows by two
 * threads may interleave (that is the Hogwild trade: the text model's rows
 * are sparse, so collisions are rare). Only used with more than one thread:
 * one thread takes the sequential, bit-reproducible path. */

typedef struct hog_thr {
  mm_model Mt; /* shallow copy of the model: shared w, m, v; own g, touched lists, bak, rng, workspace */
  double lsum;
  int64_t correct, seen, nb;
  int rc;
  mm_err e;
} hog_thr;

typedef struct hog_ctx {
  mm_dataset *ds;
  const mm_train_opts *o;
  const int64_t *order;
  int64_t B;
  hog_thr *t;
  atomic_int stop;
} hog_ctx;

static int hogwild_ok(const mm_model *M) {
  return M->fusion == MM_FUSION_TEXT && M->k == 1 && M->mod[0].enc == MM_ENC_TEXT;
}

static void hog_free(hog_thr *T) {
  mm_model *Mt = &T->Mt;
  ws_cache_free(Mt);
  if (Mt->params)
    for (int i = 0; i < Mt->nparams; i++) {
      mm_ffree(Mt->params[i].g);
      free(Mt->params[i].slot);
      free(Mt->params[i].tlist);
      mm_ffree(Mt->params[i].gc);
    }
  free(Mt->params);
  mm_ffree(Mt->bak);
  memset(T, 0, sizeof *T);
}

static void hog_cache_free(mm_model *M) {
  hog_thr *t = M->hog;
  for (int i = 0; t && i < M->nhog; i++) hog_free(&t[i]);
  free(t);
  M->hog = NULL;
  M->nhog = 0;
}

/* per epoch: the shared pointers and settings from M; own counters reset */
static void hog_sync(mm_model *M, hog_thr *T) {
  mm_model *Mt = &T->Mt;
  mm_param *own = Mt->params;
  void *wsc = Mt->wscache;
  float *bak = Mt->bak;
  int64_t bakcap = Mt->bakcap;
  *Mt = *M;
  Mt->params = own;
  Mt->wscache = wsc;
  Mt->ws_busy = 0;
  Mt->bak = bak;
  Mt->bakcap = bakcap;
  Mt->hog = NULL;
  Mt->nhog = 0;
  mm_rng_seed(&Mt->rng, mm_rng_u64(&M->rng));
  for (int i = 0; i < M->nparams; i++) {
    own[i].w = M->params[i].w;
    own[i].m = M->params[i].m;
    own[i].v = M->params[i].v;
    own[i].frozen = M->params[i].frozen;
  }
  T->lsum = 0;
  T->correct = T->seen = T->nb = 0;
  T->rc = 0;
  memset(&T->e, 0, sizeof T->e);
}

/* allocates a thread's own buffers (kept on the model between epochs) */
static int hog_init(mm_model *M, mm_dataset *ds, int64_t B, hog_thr *T, mm_err *e) {
  memset(T, 0, sizeof *T);
  mm_model *Mt = &T->Mt;
  *Mt = *M;
  Mt->params = NULL;
  Mt->bak = NULL;
  Mt->bakcap = 0;
  Mt->wscache = NULL;
  Mt->ws_busy = 0;
  Mt->hog = NULL;
  Mt->nhog = 0;
  mm_param *np = calloc((size_t)M->nparams, sizeof *np);
  if (!np) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
  Mt->params = np;
  for (int i = 0; i < M->nparams; i++) {
    np[i] = M->params[i];
    np[i].g = NULL;
    np[i].slot = NULL;
    np[i].tlist = NULL;
    np[i].ntouched = 0;
    np[i].gc = NULL;
    np[i].gccap = 0;
    np[i].gmirror = 0;
  }
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &np[i];
    if (p->sparse) { /* gradients in the thread's own compact rows (no dense g) */
      p->slot = calloc((size_t)p->shape[0], sizeof *p->slot);
      p->tlist = malloc((size_t)p->shape[0] * sizeof *p->tlist);
      if (!p->slot || !p->tlist) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
      continue;
    }
    p->g = mm_falloc(p->count);
    if (!p->g) return mm_errorf(e, MM_ENOMEM, "fit: out of memory for a training thread");
    /* write the zero pages now: a first write after a first read (+= in a
     * backward) would copy-on-write the shared zero page, and in a
     * multi-threaded process each such fault flushes the other cores' TLBs */
    memset(p->g, 0, (size_t)p->count * sizeof(float));
  }
  return MM_OK;
}

static int train_step(mm_model *M, mm_dataset *ds, ws *w, const mm_train_opts *o, const int64_t *rows, int64_t n,
                      int64_t s, int64_t nb, double *loss, mm_err *e);

static void hog_run(void *ctx, int64_t begin, int64_t end, int tid) {
  hog_ctx *h = ctx;
  hog_thr *T = &h->t[tid];
  mm_model *Mt = &T->Mt;
  ws *w = Mt->wscache;
  Mt->ws_busy = 1;
  for (int64_t s = begin; s < end && !atomic_load_explicit(&h->stop, memory_order_relaxed); s += h->B) {
    int64_t n = end - s < h->B ? end - s : h->B;
    double loss = 0;
    int rc = train_step(Mt, h->ds, w, h->o, h->order + s, n, s, T->nb, &loss, &T->e);
    if (rc) {
      T->rc = rc;
      atomic_store(&h->stop, 1);
      break;
    }
    T->lsum += loss * n;
    for (int64_t b = 0; b < n; b++) T->correct += argmax(w->probs + b * Mt->nclasses, Mt->nclasses) == w->y[b];
    T->seen += n;
    T->nb++;
  }
  Mt->ws_busy = 0;
}

static int train_hogwild(mm_model *M, mm_dataset *ds, const mm_train_opts *o, const int64_t *order, int64_t B, int nt,
                         mm_epoch_stats *st, double t0, mm_err *e) {
  hog_ctx h = {ds, o, order, B, NULL, 0};
  int rc = MM_OK;
  if (M->nhog != nt) {
    hog_cache_free(M);
    M->hog = calloc((size_t)nt, sizeof(hog_thr));
    if (!M->hog) return mm_errorf(e, MM_ENOMEM, "fit: out of memory");
    M->nhog = nt;
    /* map the shared optimiser state now, while one thread runs: Adam's first
     * read-modify-write of a zero page would otherwise copy it on write with a
     * TLB flush on every core (a write of each page to itself keeps the values) */
    for (int i = 0; i < M->nparams; i++) {
      const mm_param *p = &M->params[i];
      float *arr[2] = {p->m, p->v};
      int64_t len[2] = {p->sparse ? 2 * p->count : p->count, p->sparse ? 0 : p->count}; /* sparse: v inside m's pool */
      for (int a = 0; a < 2; a++)
        for (int64_t q = 0; q < len[a]; q += 1024) {
          volatile float *x = arr[a] + q;
          *x = *x;
        }
    }
    for (int t = 0; t < nt && !rc; t++) rc = hog_init(M, ds, B, &((hog_thr *)M->hog)[t], e);
    if (rc) {
      hog_cache_free(M);
      return rc;
    }
  }
  h.t = M->hog;
  for (int t = 0; t < nt && !rc; t++) {
    hog_thr *T = &h.t[t];
    hog_sync(M, T);
    ws *w = ws_acquire(&T->Mt, B, 1, e); /* grown when the batch grew */
    if (!w) return e->code;
    rc = bind(&T->Mt, ds, w, 1, e);
    ws_release(&T->Mt, w);
  }
  if (!rc) {
    atomic_init(&h.stop, 0);
    int ran = mm_parallel_for(ds->n, hog_run, &h);
    if (ran != nt) rc = mm_errorf(e, MM_EINVAL, "fit: %d training threads ran, %d expected", ran, nt);
  }
  double lsum = 0;
  int64_t correct = 0, seen = 0, nb = 0;
  for (int t = 0; t < nt; t++) {
    hog_thr *T = &h.t[t];
    if (!rc && T->rc) {
      rc = T->rc;
      *e = T->e;
      mm_err_prefix(e, "thread %d: ", t + 1);
    }
    lsum += T->lsum, correct += T->correct, seen += T->seen, nb += T->nb;
    if (T->Mt.step > M->step) M->step = T->Mt.step;
    zero_grads(&T->Mt); /* after an error: its touched rows */
  }
  st->loss = seen ? lsum / seen : 0;
  st->accuracy = seen ? (double)correct / seen : 0;
  st->batches = nb;
  st->samples = seen;
  if (!rc && o->progress) {
    mm_progress pr = {nb, nb, seen, st->loss, st->accuracy, now_seconds() - t0};
    int r = o->progress(o->progress_ud, &pr);
    if (r == 1) rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
    if (r == 2) st->stopped = 1;
  }
  return rc;
}

/* Subnormal floats in the optimiser pass: flushed to zero (x86: MXCSR FTZ +
 * DAZ for this thread, restored right after). Adam's moments of weights
 * whose gradient stays 0 for a while decay geometrically (m *= b1) into the
 * subnormal range, and squares of tiny gradients land there too; every
 * multiplication that reads or produces a subnormal then takes a microcode
 * assist of ~150 cycles (measured: the Adam loop 15x slower with 1 value in
 * 13 subnormal; P1 0.44 -> 0.22 s/epoch). Flushing changes values only below
 * FLT_MIN (1.2e-38), far under the rounding of any weight or moment that
 * matters, is the same on every run, and stays inside one thread's update
 * (forward and backward, which may run on worker threads, are untouched).
 * PyTorch offers the same switch: torch.set_flush_denormal. */
#if defined(__x86_64__) || defined(__i386__)
static unsigned ftz_begin(void) {
  unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return csr;
}
static void ftz_end(unsigned csr) { _mm_setcsr(csr); }
#else
static unsigned ftz_begin(void) { return 0; }
static void ftz_end(unsigned csr) { (void)csr; }
#endif

/* One training step on rows (s: their offset in the shuffled epoch, nb: batches done). */
static int train_step(mm_model *M, mm_dataset *ds, ws *w, const mm_train_opts *o, const int64_t *rows, int64_t n,
                      int64_t s, int64_t nb, double *loss_out, mm_err *e) {
  double loss = 0;
  int rc = run_batch(M, ds, w, rows, n, 1, o->class_w, &loss, e);
  if (rc) return rc;
  if (!isfinite(loss)) {
    rc = mm_errorf(e, MM_ENUM, "fit: loss is %s in batch %lld (rows %lld..%lld of the shuffled epoch); weights "
                               "kept from the batch before",
                   isnan(loss) ? "NaN" : "Inf", (long long)nb + 1, (long long)s + 1, (long long)(s + n));
    zero_grads(M);
    return rc;
  }
  /* the global norm only when clipping; otherwise a cheap finite test (a
   * non-finite gradient must not reach the optimiser state m / v) */
  double ss = o->clip > 0 ? grad_sumsq(M) : 0.0;
  if (o->clip > 0 ? !isfinite(ss) : !grads_finite(M)) {
    rc = mm_errorf(e, MM_ENUM, "fit: gradient is not finite in batch %lld; weights kept from the batch before",
                   (long long)nb + 1);
    zero_grads(M);
    return rc;
  }
  double scale = 1.0, norm = sqrt(ss);
  if (o->clip > 0 && norm > o->clip) scale = o->clip / norm;
  unsigned csr = ftz_begin();
  rc = apply_step(M, o, scale, e);
  ftz_end(csr);
  if (rc) {
    mm_err_prefix(e, "batch %lld: ", (long long)nb + 1);
    return rc;
  }
  *loss_out = loss;
  return MM_OK;
}

int mm_model_train_epoch(mm_model *M, mm_dataset *ds, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e) {
  M->wgen++; /* every step (and Hogwild thread) writes weights */
  memset(st, 0, sizeof *st);
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built (fit builds it)");
  if (ds->nclasses != M->nclasses)
    return mm_errorf(e, MM_EINVAL, "model: data has %lld classes, the model %lld", (long long)ds->nclasses,
                     (long long)M->nclasses);
  if (o->batch < 1 || o->batch > (1 << 20)) return mm_errorf(e, MM_EINVAL, "fit: batch must be in 1..2^20");
  if (!(o->lr > 0) || !isfinite(o->lr)) return mm_errorf(e, MM_EINVAL, "fit: lr must be > 0 (got %g)", (double)o->lr);
  if (ds->n < 1) return mm_errorf(e, MM_EINVAL, "fit: the training data has no rows");
  for (int64_t r = 0; r < ds->n; r++)
    if (ds->labels[r] < 0) return mm_errorf(e, MM_EINVAL, "fit: training row %lld has no label", (long long)r + 1);
  double t0 = now_seconds();
  int64_t B = o->batch < ds->n ? o->batch : ds->n;
  ws *w = ws_acquire(M, B, 1, e);
  if (!w) return e->code;
  M->opt_dirty = 1; /* gradients (and the optimiser state) get written from here on */
  int rc = bind(M, ds, w, 1, e);
  int64_t *order = malloc((size_t)ds->n * sizeof *order);
  if (!rc && !order) rc = mm_errorf(e, MM_ENOMEM, "fit: out of memory");
  if (rc) goto done;
  for (int64_t r = 0; r < ds->n; r++) order[r] = r;
  mm_rng_shuffle(&M->rng, order, ds->n);
  int nt = mm_parallel_threads(ds->n);
  if (nt > 1 && hogwild_ok(M) && ds->n >= (int64_t)nt * B) {
    zero_grads(M);
    rc = train_hogwild(M, ds, o, order, B, nt, st, t0, e);
    goto done;
  }
  double lsum = 0, last = t0;
  int64_t correct = 0, seen = 0, nb = 0;
  zero_grads(M);
  for (int64_t s = 0; s < ds->n; s += B) {
    int64_t n = ds->n - s < B ? ds->n - s : B;
    double loss = 0;
    rc = train_step(M, ds, w, o, order + s, n, s, nb, &loss, e);
    if (rc) break;
    lsum += loss * n;
    for (int64_t b = 0; b < n; b++) correct += argmax(w->probs + b * M->nclasses, M->nclasses) == w->y[b];
    seen += n;
    nb++;
    if (o->progress) {
      double t = now_seconds();
      if (t - last >= o->progress_interval || s + n >= ds->n) {
        last = t;
        mm_progress pr = {nb, (ds->n + B - 1) / B, seen, lsum / seen, (double)correct / seen, t - t0};
        int r = o->progress(o->progress_ud, &pr);
        if (r == 1) {
          rc = mm_errorf(e, MM_EINVAL, "fit: the progress callback failed");
          break;
        }
        if (r == 2) {
          st->stopped = 1;
          break;
        }
      }
    }
  }
  st->loss = seen ? lsum / seen : 0;
  st->accuracy = seen ? (double)correct / seen : 0;
  st->batches = nb;
  st->samples = seen;
done:
  free(order);
  ws_release(M, w);
  st->seconds = now_seconds() - t0;
  return rc;
}

int mm_model_loss_grad(mm_model *M, mm_dataset *ds, double *loss, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built");
  if (ds->n < 1) return mm_errorf(e, MM_EINVAL, "model: no rows");
  ws *w = ws_acquire(M, ds->n, 1, e);
  if (!w) return e->code;
  int rc = bind(M, ds, w, 1, e);
  int64_t *rows = malloc((size_t)ds->n * sizeof *rows);
  if (!rc && !rows) rc = mm_errorf(e, MM_ENOMEM, "model: out of memory");
  if (!rc) {
    for (int64_t r = 0; r < ds->n; r++) rows[r] = r;
    zero_grads(M);
    M->opt_dirty = 1;
    rc = run_batch(M, ds, w, rows, ds->n, 1, NULL, loss, e);
  }
  /* sparse tables: the compact gradient rows into the dense mirror g (read by grad) */
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    if (!p->sparse) continue;
    if (p->gmirror) memset(p->g, 0, (size_t)p->count * sizeof(float));
    p->gmirror = 0;
    if (rc) continue;
    for (int64_t t = 0; t < p->ntouched; t++)
      memcpy(p->g + p->tlist[t] * p->rowlen, p->gc + t * p->rowlen, (size_t)p->rowlen * sizeof(float));
    p->gmirror = p->ntouched > 0;
  }
  free(rows);
  ws_release(M, w);
  return rc;
}

int mm_model_predict(mm_model *M, mm_dataset *ds, float *probs, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not trained yet (call fit or load a model)");
  if (ds->n == 0) return MM_OK;
  int64_t B = ds->n < 256 ? ds->n : 256;
  ws *w = ws_acquire(M, B, 0, e);
  if (!w) return e->code;
  int rc = bind(M, ds, w, 0, e);
  int64_t *rows = malloc((size_t)B * sizeof *rows);
  if (!rc && !rows) rc = mm_errorf(e, MM_ENOMEM, "predict: out of memory");
  for (int64_t s = 0; !rc && s < ds->n; s += B) {
    int64_t n = ds->n - s < B ? ds->n - s : B;
    for (int64_t b = 0; b < n; b++) rows[b] = s + b;
    double loss;
    rc = run_batch(M, ds, w, rows, n, 0, NULL, &loss, e);
    if (!rc) memcpy(probs + s * M->nclasses, w->probs, (size_t)(n * M->nclasses) * sizeof(float));
  }
  free(rows);
  ws_release(M, w);
  return rc;
}
