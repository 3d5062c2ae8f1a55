/* model.h - fusion models over K modalities: encoders, fusion heads, training, prediction.
 *
 * Encoders (one per modality, output e_m):
 *   TEXT  mean embedding bag over word + hashed n-gram ids (e = dim), sparse updates
 *         (only the rows a batch touches are updated, also by Adam: lazy Adam);
 *         tokenizer, vocabulary and n-gram hashing are csrc/text's, built from
 *         the training split at the first fit; a text whose bag is empty
 *         counts as absent;
 *   CNN   blocks of conv(k, pad k/2) -> relu -> max-pool 2, then global average pool (e = last channels);
 *   HIST  HSV colour histogram of the pixels (no parameters; e = hb*sb*vb);
 *   FEAT  the dense feature row as it is (e = in_dim).
 * Fusion:
 *   TEXT/IMAGE (unimodal): k = 1; missing -> zero vector; linear classifier.
 *   EARLY   concat(h_m or missing_m) -> linear classifier; missing_m learned (or zeros).
 *   LATE    one linear classifier per modality; training sums their NLL over the rows
 *           where each is present; prediction averages probabilities over present ones
 *           (uniform when none is).
 *   JOINT   u_m = W_m h_m + b_m (text: u = h when e = dim) -> masked pool (max/mean/sum)
 *           over present -> linear classifier (rows with nothing present: pooled = 0).
 *   COMMON  JOINT + lambda * ranking loss (mm_ranking_loss) over every present pair
 *           (a < b: anchors u_b, positives/negatives u_a).
 * Everything random (init, shuffling, modality dropout, augmentation) draws from
 * the model's own rng, so one seed gives bit-identical runs.
 *
 * The names, defaults and checks of every setting are config.h's; the files
 * behind this API, one concept each, are listed in model_internal.h.
 */
#ifndef MM_MODEL_H
#define MM_MODEL_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"
#include "../text/vectors.h"
#include "../text/vocab.h"
#include "config.h"
#include "dataset.h"

#define MM_PNAME 64

/* Adam / momentum state of a sparse table, packed by first use: the k-th row
 * the optimiser touches gets slot k, its m at m + k * 2 * rowlen and its v
 * right after (mm_param below). Shared by the Hogwild threads' copies of
 * the parameter (slots are handed out under a spin lock, read with acquire). */
typedef struct mm_rowstate {
  uint32_t *slot; /* [rows]: slot + 1, 0 = no state yet (m = v = 0) */
  int64_t n;      /* slots handed out */
  int lock;
} mm_rowstate;

typedef struct mm_param {
  char name[MM_PNAME];
  int ndim;
  int64_t shape[4];
  int64_t count;
  float *w, *g, *m, *v;
  int sparse;       /* rows updated only where touched (embedding tables) */
  int64_t rowlen;   /* floats per row when sparse */
  /* Sparse tables: m and v share one allocation of 2 * count floats (v =
   * m + rowlen), handed out row by row in the order the optimiser first
   * touches the rows (rs): the state of the rows a run uses is contiguous,
   * so untouched pages of it never become resident. The gradient of
   * a batch lives in compact rows: the row tlist[t] touched t-th has its
   * gradient at gc + t * rowlen, and slot[row] = t + 1 (0 = untouched). g is
   * then only a dense mirror, filled by mm_model_loss_grad for gradient checks;
   * training never touches its pages. */
  uint32_t *slot;   /* [rows] when sparse */
  int64_t *tlist;   /* touched rows, ntouched of them */
  int64_t ntouched;
  float *gc;        /* [gccap, rowlen] compact gradient rows when sparse */
  int64_t gccap;
  int gmirror;      /* the dense mirror g holds non-zero rows */
  mm_rowstate *rs;  /* sparse: where each row's m and v live */
  int frozen;       /* never updated by the optimiser */
  float lr_scale;   /* the optimiser's learning rate is multiplied by this (1 but for projections: project_lr) */
} mm_param;

typedef struct mm_modcfg {
  char name[MM_MODNAME];
  int enc;          /* MM_ENC_* (AUTO resolves at build) */
  int want;         /* encoder asked for an image modality with pixels (CNN/HIST) */
  int64_t in_dim;   /* FEAT: feature size; TEXT: embedding rows */
  int64_t img_h, img_w;
  int nblocks;
  int64_t ch[MM_MAXBLOCKS];
  int64_t ksize;
  int hb, sb, vb;
  int augment;      /* CNN: random crop (pad 2) + flip while training */
  float drop;       /* modality dropout probability while training */
  float plr;        /* joint / common space: the learning-rate multiplier of the projection; -1 = the
                     * default, resolved from the training data when built (build.c) */
  int64_t out_dim;  /* e_m */
  int project;
  /* parameter indices (-1 = none) */
  int p_emb, p_cw[MM_MAXBLOCKS], p_cb[MM_MAXBLOCKS], p_pw, p_pb, p_lw, p_lb, p_miss;
} mm_modcfg;

typedef struct mm_model {
  int fusion, pool, k;
  int64_t dim, nclasses;
  int missing_zeros;
  float lambda, margin;
  int hardest;
  /* text settings */
  int ngrams;
  int64_t buckets, min_count, max_vocab;
  int unk, lowercase, keep_punct; /* vocabulary / tokenizer options (csrc/text) */
  mm_post_opts post;              /* the tokenizer's post options (tokenize.h; all off: "plain") */
  mm_modcfg mod[MM_MAXMOD];
  int p_cw, p_cb; /* shared classifier */
  mm_param *params;
  int nparams;
  /* 0, or the most floats all parameters together may take: a model read
   * from a file is held to what the file stores, so a forged configuration
   * cannot make the loader reserve gigabytes before the shapes are checked */
  int64_t param_budget;
  mm_vocab *voc;      /* csrc/text vocabulary (NULL without a text modality) */
  uint64_t vocab_key; /* content hash: identifies cached encodings in datasets */
  int built;
  mm_rng rng;
  int64_t step;
  float *bak; /* weights before the last step (restored when a step goes non-finite) */
  int64_t bakcap;
  int opt_dirty;   /* gradients / optimiser state may be non-zero (mm_model_seed must clear them) */
  uint64_t wgen;   /* bumped by everything that may write weights (mm_model_weights_changed): caches of
                    * derived weights (the CNN's packed kernels) compare it */
  void *wscache;   /* batch workspace kept between calls (workspace.c), grown on demand */
  int ws_busy;     /* wscache is in use (a progress callback may predict on the same model) */
  void *hog;       /* per-thread state of Hogwild text training (hogwild.c), kept between epochs */
  int nhog;
  int in_use; /* > 0 while a training epoch runs (a Lua callback must not free it) */
} mm_model;

/* progress inside an epoch (running means over the batches so far) */
typedef struct mm_progress {
  int64_t batch, batches, samples;
  double loss, accuracy, seconds;
} mm_progress;

typedef struct mm_train_opts {
  int64_t batch;
  int shuffle;           /* 0: the rows in the data's order (no draw from the model's rng) */
  int optimizer;
  float lr, momentum, wd, b1, b2, eps;
  float clip;            /* max global gradient norm, 0 = off */
  const float *class_w;  /* [nclasses] or NULL */
  /* called after a batch when progress_interval seconds have passed since the
   * last call, and after the last batch; returns 0 to go on, 1 to abort the
   * epoch with an error, 2 to end the epoch here (stats.stopped = 1) */
  int (*progress)(void *ud, const mm_progress *p);
  void *progress_ud;
  double progress_interval;
  /* NULL, or the processes to train with (comm.h): data-parallel training,
   * each process its slice of every global batch of batch x size rows */
  const struct mm_comm *comm;
  int sparse_sync; /* MM_SYNC_*: how the rows of sparse tables are summed (sync.c; auto picks per step) */
} mm_train_opts;

typedef struct mm_epoch_stats {
  double loss, accuracy, seconds;
  int64_t batches, samples;
  int stopped;
} mm_epoch_stats;

/* ---- configuration (config.c) ----
 * mm_model_init sets every default (mm_model_defaults); fill what differs,
 * add the modalities (each from mm_modcfg_init), then mm_model_check (the
 * builds call it too). */
void mm_model_init(mm_model *M);
void mm_modcfg_init(mm_modcfg *c); /* zeros + the encoders' defaults (CNN blocks, kernel, histogram bins) */
int mm_model_add_modality(mm_model *M, const mm_modcfg *c, mm_err *e);
/* Check the configuration (fusion vs modalities, ranges) and settle what
 * follows from it: a unimodal model replaces a missing modality by zeros. */
int mm_model_check(mm_model *M, mm_err *e);
void mm_train_opts_init(mm_train_opts *o); /* the training defaults, no callback */
int mm_train_opts_check(const mm_train_opts *o, int64_t nclasses, mm_err *e);

/* ---- building (build.c) ---- */
/* The L2 norms of the feature rows of each modality a model reads as frozen
 * features, summed over present rows (model modality order): the default
 * learning rate of their projection is lr / (mean norm) when the mean is
 * above 1 (build.c). */
typedef struct mm_row_norms {
  double sum[MM_MAXMOD];
  int64_t rows[MM_MAXMOD];
} mm_row_norms;
/* model modality i needs them: joint / common space, read as features, no project_lr given */
int mm_row_norms_wanted(const mm_model *M, int i);
/* add the norms of ds's rows of every modality that needs them (found by name) */
void mm_row_norms_add(const mm_model *M, const mm_dataset *ds, mm_row_norms *acc);

/* Resolve encoders against a dataset, build the vocabulary from it, allocate
 * and initialise parameters from `seed`. */
int mm_model_build_from(mm_model *M, const mm_dataset *ds, uint64_t seed, mm_err *e);
/* The same, the text vocabulary from tokens counted already (a stream's
 * pass, counted with mm_model_vocab_opts' tokenizer) instead of ds's texts:
 * ds then only shows the modalities' kinds and sizes (it may have no rows). */
int mm_model_build_counted(mm_model *M, const mm_dataset *ds, const mm_counter *counted, const mm_row_norms *norms,
                           uint64_t seed, mm_err *e);
/* the vocabulary and tokenizer settings of M's text encoder */
mm_vocab_opts mm_model_vocab_opts(const mm_model *M);
/* Allocate parameters from a fully resolved configuration + vocabulary words
 * (loading a file; weights are then overwritten). */
int mm_model_build_resolved(mm_model *M, char **words, int64_t nwords, mm_err *e);
void mm_model_free(mm_model *M); /* frees what the model owns (not M itself) */

/* ---- parameters (params.c) ---- */
int64_t mm_model_param_count(const mm_model *M);
int mm_model_find_param(const mm_model *M, const char *name); /* index, or -1 */
void mm_model_seed(mm_model *M, uint64_t seed); /* seeds the rng, resets optimiser state */
/* Snapshot of all weights (early stopping); returns malloc'd floats. */
float *mm_model_snapshot(const mm_model *M, mm_err *e);
void mm_model_restore(mm_model *M, const float *snap);
/* to be called after writing weights from outside csrc/model */
void mm_model_weights_changed(mm_model *M);

/* ---- weights in and out (weights.c) ---- */
/* Overwrite parameter i with n floats (n must be its count). */
int mm_model_set_param(mm_model *M, int i, const float *x, int64_t n, mm_err *e);
/* Write the model file: header (the caller's JSON, listing the parameters in
 * model order) + every parameter's floats, atomically (io/safetensors.h). */
int mm_model_save(const mm_model *M, const char *path, const char *header, size_t hlen, mm_err *e);
/* One tensor entry of a model file's header, as the caller parsed it. */
#define MM_WEIGHT_MAXDIM 8
typedef struct mm_weight_entry {
  const char *dtype;  /* NULL when absent */
  int ndim;           /* -1: no list of dimensions */
  int64_t shape[MM_WEIGHT_MAXDIM]; /* -1: a dimension that is not an integer */
  int has_offsets;    /* data_offsets = {begin, end} of integers */
  int64_t begin, end; /* byte range in the data section */
} mm_weight_entry;
/* Fill a built model from a model file's data section: entries[i] describes
 * parameter i (NULL: the file has no tensor of that name). Checks every dtype,
 * shape and byte range and that the tensors cover the data exactly before
 * copying anything, then rejects a non-finite weight. Messages start with
 * "where: " (the file). */
int mm_model_load_weights(mm_model *M, const mm_weight_entry *const *entries, const uint8_t *data, uint64_t dlen,
                          const char *where, mm_err *e);
/* Pretrained word vectors (text/vectors.h; format a name, NULL = auto) into
 * the rows of the text embedding; d must equal the model's dim. */
int mm_model_load_vectors(mm_model *M, const char *path, const char *format, mm_vec_stats *st, mm_err *e);

/* ---- training and running (train.c, run.c) ---- */
int mm_model_train_epoch(mm_model *M, mm_dataset *ds, const mm_train_opts *o, mm_epoch_stats *st, mm_err *e);
/* Loss and parameter gradients (left in params[i].g) of one batch made of every
 * row of ds, in training mode (for gradient checks). */
int mm_model_loss_grad(mm_model *M, mm_dataset *ds, double *loss, mm_err *e);
/* probs [ds->n, nclasses] */
int mm_model_predict(mm_model *M, mm_dataset *ds, float *probs, mm_err *e);
/* the prediction and its metrics against ds's labels (free m with mm_metrics_free) */
struct mm_metrics;
int mm_model_evaluate(mm_model *M, mm_dataset *ds, float *probs, struct mm_metrics *m, mm_err *e);
/* The same over the processes of comm (comm.h, eval_dist.c), each holding ds:
 * predict leaves every row's probs [ds->n, nclasses] on every process;
 * evaluate sums the counts, so m is the one-process result everywhere. */
struct mm_comm;
int mm_model_predict_comm(mm_model *M, mm_dataset *ds, const struct mm_comm *c, float *probs, mm_err *e);
int mm_model_evaluate_comm(mm_model *M, mm_dataset *ds, const struct mm_comm *c, struct mm_metrics *m, mm_err *e);

#endif
