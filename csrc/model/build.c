/* build.c - a model's lifetime: resolving its encoders against the training
 * data (or a model file), building the text vocabulary, allocating the
 * parameters (params.c), and freeing everything. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

static mm_vocab_opts vocab_opts(const mm_model *M) {
  mm_vocab_opts o = mm_vocab_defaults();
  o.min_count = M->min_count;
  o.max_size = M->max_vocab;
  o.unk = M->unk;
  o.ngrams = M->ngrams;
  o.buckets = M->ngrams > 1 ? M->buckets : 0;
  o.tok.lowercase = M->lowercase;
  o.tok.keep_punct = M->keep_punct;
  o.tok.post = M->post;
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
  const mm_post_opts *p = &M->post;
  int64_t st[13] = {M->ngrams, M->buckets, M->unk,      M->lowercase, M->keep_punct, n,           p->urls,
                    p->mentions, p->rt,    p->hashtags, p->emoticons, p->tones,      p->elongation};
  for (int i = 0; i < 13; i++) h = (h ^ (uint64_t)st[i]) * 1099511628211ULL;
  M->vocab_key = h ? h : 1;
}

void mm_model_free(mm_model *M) {
  mm_params_free(M);
  mm_vocab_free(M->voc);
  M->voc = NULL;
  M->built = 0;
  M->opt_dirty = 0;
  mm_ws_cache_free(M);
  mm_hogwild_free(M);
}

/* allocate the parameters; on failure nothing stays allocated */
static int alloc_or_free(mm_model *M, mm_err *e) {
  int rc = mm_params_alloc(M, e);
  if (rc) mm_model_free(M);
  return rc;
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
  return alloc_or_free(M, e);
}

/* the text encoder: the vocabulary of the training rows, or of the tokens
 * counted already (counted != NULL: a stream's pass) */
static int resolve_text(mm_model *M, mm_modcfg *c, const mm_modality *m, int64_t n, const mm_counter *counted,
                        mm_err *e) {
  if (c->enc != MM_ENC_AUTO && c->enc != MM_ENC_TEXT)
    return mm_errorf(e, MM_EINVAL, "model: modality '%s' holds text; encoder '%s' does not read text", c->name,
                     mm_enc_name(c->enc));
  c->enc = MM_ENC_TEXT;
  mm_vocab_opts vo = vocab_opts(M);
  mm_counter *cnt = NULL;
  int rc = MM_OK;
  if (!counted) {
    cnt = mm_counter_new(e);
    if (!cnt) return e->code;
    for (int64_t r = 0; r < n && !rc; r++)
      if (m->mask[r])
        rc = mm_counter_add_text(cnt, m->text + m->off[r], (size_t)(m->off[r + 1] - m->off[r]), &vo.tok, e);
  }
  if (!rc) {
    M->voc = mm_vocab_build(counted ? counted : cnt, &vo, e);
    if (!M->voc) rc = e->code ? e->code : mm_errorf(e, MM_ENOMEM, "model: out of memory");
  }
  mm_counter_free(cnt);
  if (rc) return rc;
  vocab_key(M);
  c->in_dim = mm_vocab_rows(M->voc);
  if (c->in_dim < 1) return mm_errorf(e, MM_EINVAL, "model: the training text gives an empty vocabulary");
  return MM_OK;
}

/* pixels: the default image encoder unless one is asked for; the data's image size */
static int resolve_image(mm_modcfg *c, const mm_modality *m, mm_err *e) {
  if (c->enc == MM_ENC_AUTO) c->enc = mm_model_defaults.image_encoder;
  if (c->enc != MM_ENC_CNN && c->enc != MM_ENC_HIST)
    return mm_errorf(e, MM_EINVAL,
                     "model: modality '%s' holds pixels; encoder '%s' needs feature rows (use cnn or histogram)",
                     c->name, mm_enc_name(c->enc));
  c->img_h = m->h, c->img_w = m->w;
  return MM_OK;
}

static int resolve_features(mm_modcfg *c, const mm_modality *m, mm_err *e) {
  if (c->enc != MM_ENC_AUTO && c->enc != MM_ENC_FEAT)
    return mm_errorf(e, MM_EINVAL, "model: modality '%s' holds feature rows; encoder '%s' needs %s", c->name,
                     mm_enc_name(c->enc), c->enc == MM_ENC_TEXT ? "text" : "pixels");
  c->enc = MM_ENC_FEAT;
  c->in_dim = m->dim;
  return MM_OK;
}

int mm_row_norms_wanted(const mm_model *M, int i) {
  const mm_modcfg *c = &M->mod[i];
  return mm_fusion_is_joint(M->fusion) && c->plr < 0 && (c->enc == MM_ENC_AUTO || c->enc == MM_ENC_FEAT);
}

void mm_row_norms_add(const mm_model *M, const mm_dataset *ds, mm_row_norms *acc) {
  for (int i = 0; i < M->k; i++) {
    if (!mm_row_norms_wanted(M, i)) continue;
    int j = mm_dataset_find(ds, M->mod[i].name);
    if (j < 0 || ds->mods[j].kind != MM_MOD_DENSE) continue;
    const mm_modality *m = &ds->mods[j];
    for (int64_t r = 0; r < ds->n; r++) {
      if (!m->mask[r]) continue;
      const float *x = m->feat + r * m->dim;
      double s = 0;
      for (int64_t q = 0; q < m->dim; q++) s += (double)x[q] * x[q];
      if (!isfinite(s)) continue; /* training refuses the row with its name (train.c) */
      acc->sum[i] += sqrt(s);
      acc->rows[i]++;
    }
  }
}

/* The learning-rate multiplier of a projection the user left to the default.
 * With Adam every weight moves by about lr a step, so a projection's output
 * moves by about lr times the norm of its input row: a wide frozen vector
 * (Inception-v3's 2048 pooled features have norm ~3, MobileNetV2's 1280 ~11)
 * would move its side of the common space that many times faster than the
 * text's embeddings, which move by about lr. Dividing the rate by the mean
 * norm of the training rows (when above 1) gives every modality the same
 * pace; the CNN and the text learn their own scale, and the colour histogram
 * sums to 1, so they keep 1 (docs/defaults.md). */
static void resolve_project_lr(mm_model *M, const mm_row_norms *nr) {
  for (int i = 0; i < M->k; i++) {
    mm_modcfg *c = &M->mod[i];
    if (c->plr >= 0) continue;
    c->plr = 1.0f;
    if (!mm_fusion_is_joint(M->fusion) || c->enc != MM_ENC_FEAT || nr->rows[i] < 1) continue;
    double mean = nr->sum[i] / (double)nr->rows[i];
    if (mean > 1) c->plr = (float)(1.0 / mean);
  }
}

int mm_model_build_counted(mm_model *M, const mm_dataset *ds, const mm_counter *counted, const mm_row_norms *norms,
                           uint64_t seed, mm_err *e) {
  if (ds->nclasses != M->nclasses)
    return mm_errorf(e, MM_EINVAL, "model: the data has %lld classes, the model %lld", (long long)ds->nclasses,
                     (long long)M->nclasses);
  if (M->built) return MM_OK;
  int rc = mm_model_check(M, e);
  if (rc) return rc;
  for (int i = 0; i < M->k && !rc; i++) {
    mm_modcfg *c = &M->mod[i];
    int j = mm_dataset_find(ds, c->name);
    if (j < 0) return mm_errorf(e, MM_EINVAL, "model: the training data has no modality '%s'", c->name);
    const mm_modality *m = &ds->mods[j];
    if (m->kind == MM_MOD_TEXT)
      rc = resolve_text(M, c, m, ds->n, counted, e);
    else if (m->kind == MM_MOD_IMAGE)
      rc = resolve_image(c, m, e);
    else
      rc = resolve_features(c, m, e);
  }
  if (rc) return rc;
  mm_row_norms own = {{0}, {0}};
  if (!norms) {
    mm_row_norms_add(M, ds, &own);
    norms = &own;
  }
  resolve_project_lr(M, norms);
  rc = alloc_or_free(M, e);
  if (!rc) mm_params_init(M, seed);
  return rc;
}

int mm_model_build_from(mm_model *M, const mm_dataset *ds, uint64_t seed, mm_err *e) {
  return mm_model_build_counted(M, ds, NULL, NULL, seed, e);
}

mm_vocab_opts mm_model_vocab_opts(const mm_model *M) { return vocab_opts(M); }
