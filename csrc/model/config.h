/* config.h - the names, defaults and checks of a fusion model's settings.
 *
 * The only place they are written: every enum below comes with its name table
 * (config.c, one static assert per table on the count), and mm_model_defaults
 * holds every default the model, its encoders and its training use. The Lua
 * binding pushes the tables and the defaults as core.fusion.names / .encoders
 * / .pools / .optimizers / .missing / .defaults, which lua/mmfuse reads.
 */
#ifndef MM_MODEL_CONFIG_H
#define MM_MODEL_CONFIG_H

#include <stdint.h>

#include "../core/error.h"
#include "../nn/nn.h"

/* fusion heads (model.h says what each computes) */
enum { MM_FUSION_TEXT = 0, MM_FUSION_IMAGE, MM_FUSION_EARLY, MM_FUSION_LATE, MM_FUSION_JOINT, MM_FUSION_COMMON,
       MM_FUSION_COUNT };
/* modality encoders; AUTO resolves from the data's kind when the model is built */
enum { MM_ENC_AUTO = 0, MM_ENC_TEXT, MM_ENC_CNN, MM_ENC_HIST, MM_ENC_FEAT, MM_ENC_COUNT };
/* the pooling of joint fusion: MM_POOL_MAX, _MEAN, _SUM of nn/fusion.c */
enum { MM_POOL_COUNT = MM_POOL_SUM + 1 };
enum { MM_OPT_SGD = 0, MM_OPT_ADAM, MM_OPT_COUNT };
/* how data-parallel training sums the rows of a sparse table (sync.c) */
enum { MM_SYNC_AUTO = 0, MM_SYNC_ROWS, MM_SYNC_TABLE, MM_SYNC_COUNT };
/* what early fusion puts in place of a missing modality */
enum { MM_MISSING_LEARNED = 0, MM_MISSING_ZEROS, MM_MISSING_COUNT };
/* the class weights of fit's loss: none, or n / (classes * count) of each class in the training rows */
enum { MM_CW_NONE = 0, MM_CW_BALANCED, MM_CW_COUNT };

#define MM_MAXBLOCKS 8 /* CNN blocks */

/* A name table: what = the setting's name in messages ("fusion"). */
typedef struct mm_names {
  const char *what;
  const char *const *names;
  int count;
} mm_names;

extern const mm_names mm_fusion_names, mm_encoder_names, mm_pool_names, mm_optimizer_names, mm_missing_names,
    mm_sync_names, mm_class_weight_names;

/* the index of s in t, or -1 with "<where>unknown <what> 's' (a, b, c)" in e */
int mm_names_parse(const mm_names *t, const char *s, const char *where, mm_err *e);
/* the name of index i, "?" when out of range */
const char *mm_names_get(const mm_names *t, int i);

const char *mm_fusion_name(int f);
const char *mm_enc_name(int enc);
const char *mm_pool_name(int p);

/* joint and common-space fusion project and pool */
static inline int mm_fusion_is_joint(int f) { return f == MM_FUSION_JOINT || f == MM_FUSION_COMMON; }
/* text and image fusion classify one modality */
static inline int mm_fusion_is_unimodal(int f) { return f == MM_FUSION_TEXT || f == MM_FUSION_IMAGE; }

/* Every default. Real numbers are doubles: the Lua side computes with them
 * (learning-rate schedules) before the core rounds them to float. */
typedef struct mm_defaults {
  /* the model */
  int fusion, pool, missing;
  int64_t dim;
  double lambda, margin; /* common-space: weight and margin of the ranking loss */
  int hardest;           /* ranking against the hardest negative only */
  /* modality dropout of every modality of a model with two or more (lua/mmfuse/model.lua
   * applies it to the modalities given no dropout of their own) */
  double modality_dropout;
  /* common-space fusion: the dropout of every modality but the text (model.lua applies it to
   * those given no dropout of their own), so that the classifier on the common space also
   * learns from a post's text alone, as a post without its picture needs */
  double commonspace_dropout;
  /* the encoder "auto" resolves to on pixels: MM_ENC_CNN or MM_ENC_HIST */
  int image_encoder;
  /* the text encoder (vocabulary and tokenizer: csrc/text) */
  int ngrams;
  int64_t buckets, min_count, max_vocab;
  int unk, lowercase, keep_punct;
  /* the CNN image encoder: blocks of conv(kernel) -> relu -> max-pool 2 */
  int cnn_blocks;
  int64_t cnn_channels[MM_MAXBLOCKS];
  int64_t cnn_kernel;
  /* the HSV colour histogram image encoder: hue x saturation x value bins */
  int hist_bins[3];
  /* training: the epoch loop (lua/mmfuse/model.lua) reads epochs, patience (epochs
   * without a better validation macro-F1 before it stops; 0 = never) and class_weights */
  int64_t epochs, batch, patience;
  int class_weights;
  int shuffle; /* a new row order every epoch (else the data's order) */
  int optimizer;
  double lr, momentum, weight_decay, beta1, beta2, eps, clip;
  double progress_interval; /* seconds between progress callbacks */
} mm_defaults;

extern const mm_defaults mm_model_defaults;

#endif
