/* config.c - names, defaults and checks of a model's settings (config.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../image/image.h"
#include "model.h"

static const char *const fusion_names[] = {"text", "image", "early", "late", "joint", "commonspace"};
static const char *const encoder_names[] = {"auto", "text", "cnn", "histogram", "features"};
static const char *const pool_names[] = {"max", "mean", "sum"};
static const char *const optimizer_names[] = {"sgd", "adam"};
static const char *const missing_names[] = {"learned", "zeros"};
static const char *const sync_names[] = {"auto", "rows", "table"};
static const char *const class_weight_names[] = {"none", "balanced"};

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))
_Static_assert(COUNT(fusion_names) == MM_FUSION_COUNT, "a name for every fusion");
_Static_assert(COUNT(encoder_names) == MM_ENC_COUNT, "a name for every encoder");
_Static_assert(COUNT(pool_names) == MM_POOL_COUNT, "a name for every pooling");
_Static_assert(COUNT(optimizer_names) == MM_OPT_COUNT, "a name for every optimiser");
_Static_assert(COUNT(missing_names) == MM_MISSING_COUNT, "a name for every missing-modality rule");
_Static_assert(COUNT(sync_names) == MM_SYNC_COUNT, "a name for every sparse sum");
_Static_assert(COUNT(class_weight_names) == MM_CW_COUNT, "a name for every class weighting");

const mm_names mm_fusion_names = {"fusion", fusion_names, MM_FUSION_COUNT};
const mm_names mm_encoder_names = {"encoder", encoder_names, MM_ENC_COUNT};
const mm_names mm_pool_names = {"pool", pool_names, MM_POOL_COUNT};
const mm_names mm_optimizer_names = {"optimizer", optimizer_names, MM_OPT_COUNT};
const mm_names mm_missing_names = {"'missing' setting", missing_names, MM_MISSING_COUNT};
const mm_names mm_sync_names = {"dist_sparse", sync_names, MM_SYNC_COUNT};
const mm_names mm_class_weight_names = {"class weighting", class_weight_names, MM_CW_COUNT};

const mm_defaults mm_model_defaults = {
    .fusion = MM_FUSION_JOINT,
    .pool = MM_POOL_MAX,
    .missing = MM_MISSING_LEARNED,
    .dim = 64,
    .lambda = 1.0,
    .margin = 0.2,
    .hardest = 0,
    .modality_dropout = 0.0,
    .commonspace_dropout = 0.1,
    .image_encoder = MM_ENC_CNN,
    .ngrams = 2,
    .buckets = 100000,
    .min_count = 1,
    .max_vocab = 0, /* no limit */
    .unk = 0,
    .lowercase = 1,
    .keep_punct = 0,
    .cnn_blocks = 3,
    .cnn_channels = {16, 32, 64},
    .cnn_kernel = 3,
    .hist_bins = {MM_HSV_BINS_H, MM_HSV_BINS_S, MM_HSV_BINS_V},
    .epochs = 30,
    .batch = 32,
    .patience = 5,
    .class_weights = MM_CW_NONE,
    .shuffle = 1,
    .optimizer = MM_OPT_ADAM,
    .lr = 3e-3,
    .momentum = 0.0,
    .weight_decay = 0.0,
    .beta1 = 0.9,
    .beta2 = 0.999,
    .eps = 1e-8,
    .clip = 0.0, /* off */
    .progress_interval = 0.2,
};

const char *mm_names_get(const mm_names *t, int i) { return i >= 0 && i < t->count ? t->names[i] : "?"; }

int mm_names_parse(const mm_names *t, const char *s, const char *where, mm_err *e) {
  for (int i = 0; i < t->count; i++)
    if (strcmp(s, t->names[i]) == 0) return i;
  char list[256];
  size_t o = 0;
  list[0] = 0;
  for (int i = 0; i < t->count && o < sizeof list; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", t->names[i]);
  mm_errorf(e, MM_EINVAL, "%sunknown %s '%s' (%s)", where, t->what, s, list);
  return -1;
}

const char *mm_fusion_name(int f) { return mm_names_get(&mm_fusion_names, f); }
const char *mm_enc_name(int enc) { return mm_names_get(&mm_encoder_names, enc); }
const char *mm_pool_name(int p) { return mm_names_get(&mm_pool_names, p); }

void mm_model_init(mm_model *M) {
  const mm_defaults *d = &mm_model_defaults;
  memset(M, 0, sizeof *M);
  M->fusion = d->fusion;
  M->pool = d->pool;
  M->missing_zeros = d->missing == MM_MISSING_ZEROS;
  M->dim = d->dim;
  M->lambda = (float)d->lambda;
  M->margin = (float)d->margin;
  M->hardest = d->hardest;
  M->ngrams = d->ngrams;
  M->buckets = d->buckets;
  M->min_count = d->min_count;
  M->max_vocab = d->max_vocab;
  M->unk = d->unk;
  M->lowercase = d->lowercase;
  M->keep_punct = d->keep_punct;
  M->post = mm_tokenize_defaults().post; /* "plain": what models saved before the post options did */
  M->p_cw = M->p_cb = -1;
}

void mm_modcfg_init(mm_modcfg *c) {
  const mm_defaults *d = &mm_model_defaults;
  memset(c, 0, sizeof *c);
  c->nblocks = d->cnn_blocks;
  for (int b = 0; b < d->cnn_blocks; b++) c->ch[b] = d->cnn_channels[b];
  c->ksize = d->cnn_kernel;
  c->hb = d->hist_bins[0], c->sb = d->hist_bins[1], c->vb = d->hist_bins[2];
  c->plr = -1;
}

static int check_cnn(const mm_modcfg *c, mm_err *e) {
  if (c->nblocks < 1 || c->nblocks > MM_MAXBLOCKS)
    return mm_errorf(e, MM_EINVAL, "model: cnn of '%s' needs 1..%d blocks (got %d)", c->name, MM_MAXBLOCKS,
                     c->nblocks);
  for (int b = 0; b < c->nblocks; b++)
    if (c->ch[b] < 1 || c->ch[b] > 4096)
      return mm_errorf(e, MM_EINVAL, "model: cnn channels of '%s' must be in 1..4096", c->name);
  if (c->ksize < 1 || c->ksize > 11 || c->ksize % 2 == 0)
    return mm_errorf(e, MM_EINVAL, "model: cnn kernel of '%s' must be odd, 1..11 (got %lld)", c->name,
                     (long long)c->ksize);
  return MM_OK;
}

int mm_model_add_modality(mm_model *M, const mm_modcfg *c, mm_err *e) {
  if (M->k >= MM_MAXMOD) return mm_errorf(e, MM_EINVAL, "model: at most %d modalities", MM_MAXMOD);
  if (!c->name[0]) return mm_errorf(e, MM_EINVAL, "model: a modality needs a name");
  for (int i = 0; i < M->k; i++)
    if (strcmp(M->mod[i].name, c->name) == 0)
      return mm_errorf(e, MM_EINVAL, "model: modality '%s' given twice", c->name);
  if (c->enc < 0 || c->enc >= MM_ENC_COUNT) return mm_errorf(e, MM_EINVAL, "model: unknown encoder of '%s'", c->name);
  if (c->drop < 0 || c->drop >= 1 || c->drop != c->drop)
    return mm_errorf(e, MM_EINVAL, "model: dropout of modality '%s' must be in [0, 1) (got %g)", c->name,
                     (double)c->drop);
  if (!(c->plr >= 0 && c->plr <= 1e6) && c->plr != -1)
    return mm_errorf(e, MM_EINVAL, "model: project_lr of modality '%s' must be a number in [0, 1e6] (got %g)", c->name,
                     (double)c->plr);
  if (c->enc == MM_ENC_CNN && check_cnn(c, e)) return e->code;
  if (c->enc == MM_ENC_HIST && (c->hb < 1 || c->sb < 1 || c->vb < 1 || c->hb > 64 || c->sb > 64 || c->vb > 64))
    return mm_errorf(e, MM_EINVAL, "model: histogram bins of '%s' must each be in 1..64", c->name);
  M->mod[M->k] = *c;
  M->k++;
  return MM_OK;
}

static int check_text(const mm_model *M, mm_err *e) {
  if (M->min_count < 1) return mm_errorf(e, MM_EINVAL, "model: text.min_count must be >= 1");
  if (M->max_vocab < 0) return mm_errorf(e, MM_EINVAL, "model: text.max_vocab must be >= 0");
  if (M->ngrams > 1 && M->buckets < 1)
    return mm_errorf(e, MM_EINVAL, "model: text.buckets must be >= 1 when ngrams > 1");
  if (M->ngrams < 1 || M->ngrams > 8)
    return mm_errorf(e, MM_EINVAL, "model: text.ngrams must be in 1..8 (got %d)", M->ngrams);
  if (M->buckets < 0 || M->buckets > ((int64_t)1 << 26))
    return mm_errorf(e, MM_EINVAL, "model: text.buckets must be in 0..67108864");
  return MM_OK;
}

int mm_model_check(mm_model *M, mm_err *e) {
  if (M->fusion < 0 || M->fusion >= MM_FUSION_COUNT) return mm_errorf(e, MM_EINVAL, "model: unknown fusion");
  if (M->pool < 0 || M->pool >= MM_POOL_COUNT) return mm_errorf(e, MM_EINVAL, "model: unknown pool");
  if (check_text(M, e)) return e->code;
  if (M->k < 1) return mm_errorf(e, MM_EINVAL, "model: no modality to use");
  if (mm_fusion_is_unimodal(M->fusion) && M->k != 1)
    return mm_errorf(e, MM_EINVAL, "model: fusion '%s' uses exactly one modality (got %d)", mm_fusion_name(M->fusion),
                     M->k);
  if (M->nclasses < 2 || M->nclasses > 100000)
    return mm_errorf(e, MM_EINVAL, "model: needs 2..100000 classes (got %lld)", (long long)M->nclasses);
  if (M->dim < 1 || M->dim > 65536) return mm_errorf(e, MM_EINVAL, "model: dim must be in 1..65536");
  if (!(M->lambda >= 0) || !(M->margin >= 0) || M->lambda > 1e6 || M->margin > 2)
    return mm_errorf(e, MM_EINVAL, "model: lambda must be >= 0 and margin in [0, 2]");
  int ntext = 0;
  for (int i = 0; i < M->k; i++) ntext += M->mod[i].enc == MM_ENC_TEXT;
  if (ntext > 1) return mm_errorf(e, MM_EINVAL, "model: at most one text modality (got %d)", ntext);
  if (mm_fusion_is_unimodal(M->fusion)) M->missing_zeros = 1;
  return MM_OK;
}

void mm_train_opts_init(mm_train_opts *o) {
  const mm_defaults *d = &mm_model_defaults;
  memset(o, 0, sizeof *o);
  o->batch = d->batch;
  o->shuffle = d->shuffle;
  o->optimizer = d->optimizer;
  o->lr = (float)d->lr;
  o->momentum = (float)d->momentum;
  o->wd = (float)d->weight_decay;
  o->b1 = (float)d->beta1;
  o->b2 = (float)d->beta2;
  o->eps = (float)d->eps;
  o->clip = (float)d->clip;
  o->progress_interval = d->progress_interval;
}

int mm_train_opts_check(const mm_train_opts *o, int64_t nclasses, mm_err *e) {
  if (o->batch < 1 || o->batch > (1 << 20)) return mm_errorf(e, MM_EINVAL, "fit: batch must be in 1..2^20");
  if (!(o->lr > 0) || !isfinite(o->lr)) return mm_errorf(e, MM_EINVAL, "fit: lr must be > 0 (got %g)", (double)o->lr);
  if (o->optimizer < 0 || o->optimizer >= MM_OPT_COUNT) return mm_errorf(e, MM_EINVAL, "fit: unknown optimizer");
  if (!(o->momentum >= 0 && o->momentum < 1)) return mm_errorf(e, MM_EINVAL, "fit: momentum must be in [0, 1)");
  if (!(o->wd >= 0)) return mm_errorf(e, MM_EINVAL, "fit: weight_decay must be >= 0");
  if (!(o->clip >= 0)) return mm_errorf(e, MM_EINVAL, "fit: clip must be >= 0");
  for (int64_t c = 0; o->class_w && c < nclasses; c++)
    if (!(o->class_w[c] >= 0) || !isfinite(o->class_w[c]))
      return mm_errorf(e, MM_EINVAL, "fit: class weight %lld must be a finite number >= 0", (long long)c + 1);
  return MM_OK;
}
