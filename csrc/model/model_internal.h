/* model_internal.h - what the files of csrc/model share and nothing outside reads.
 *
 * One batch runs as: masks (batch.c) -> encode every modality (encode.c,
 * encode_cnn.c) -> the fusion head's forward and loss (head_*.c) -> when
 * training, the head's backward and every encoder's backward; run.c strings
 * them together, train.c adds the optimiser step (update.c) and the epoch,
 * hogwild.c the lock-free text training. The buffers of a batch live in a
 * workspace (workspace.c) the model keeps between calls.
 */
#ifndef MM_MODEL_INTERNAL_H
#define MM_MODEL_INTERNAL_H

#include <stdint.h>

#include "../nn/nn.h"
#include "model.h"

/* ---- workspace (workspace.c) ------------------------------------------------------- */

/* the buffers of one modality */
typedef struct modws {
  int dsi; /* dataset modality index or -1 */
  float *h, *gh;               /* encoder output [B, out_dim] and its gradient */
  float *u, *gu;               /* joint: projection [B, dim] and its gradient */
  float *logits, *probs, *glog; /* late: this modality's classifier */
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
  uint8_t *okm;           /* [B] late fusion: labelled and the modality present */
  float *z, *gz;          /* the classifier's input [B, Z] and its gradient */
  float *logits, *probs, *glog;
  float *col;             /* CNN im2col */
  float *tv, *tt, *rk;    /* common space: ranking gradients per modality pair [pairs, B, dim], scratch */
  int32_t *parg;          /* joint max pooling: the winning modality per element */
  modws m[MM_MAXMOD];
} ws;

/* The model's workspace, grown to at least B rows (and the training buffers
 * when train); one of its own while the cached one is in use. NULL on error. */
ws *mm_ws_acquire(mm_model *M, int64_t B, int train, mm_err *e);
void mm_ws_release(mm_model *M, ws *w);
void mm_ws_cache_free(mm_model *M);

/* ---- batches (batch.c) ------------------------------------------------------------- */

/* Find every modality in ds and check its kind and size; text gets its token
 * ids cached in the dataset. train: every modality must be there. */
int mm_batch_bind(const mm_model *M, mm_dataset *ds, ws *w, int train, mm_err *e);
/* the token ids of every row of text modality m (n rows) under M's
 * vocabulary, kept in the dataset (keyed by the vocabulary's hash); reads M
 * only, so a stream's worker threads run it on their chunks */
int mm_batch_cache_text(const mm_model *M, mm_modality *m, int64_t n, mm_err *e);
/* labels (y, ok) and presence masks of rows (modality dropout when train) */
void mm_batch_masks(mm_model *M, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int train);

/* ---- encoders (encode.c, encode_cnn.c) --------------------------------------------- */

/* h of modality i for rows (zeros when the data lacks the modality) */
int mm_encode_forward(mm_model *M, const mm_dataset *ds, ws *w, int i, const int64_t *rows, int64_t n, int train,
                      mm_err *e);
/* from gh of modality i into the encoder's parameter gradients */
void mm_encode_backward(mm_model *M, ws *w, int i, int64_t n);
/* the encoder has parameters, so its gh is needed */
static inline int mm_encoder_learns(const mm_modcfg *c) { return c->enc == MM_ENC_TEXT || c->enc == MM_ENC_CNN; }

int mm_cnn_shapes(const mm_modcfg *c, modws *m, int64_t n, int train, int64_t *colmax, mm_err *e);
int mm_cnn_activations(const mm_modcfg *c, modws *m, int64_t B, int train);
int mm_encode_cnn_forward(mm_model *M, const mm_modality *dm, ws *w, int i, const int64_t *rows, int64_t n,
                          int train, mm_err *e);
void mm_encode_cnn_backward(mm_model *M, ws *w, int i, int64_t n);

/* ---- fusion heads (head.c, head_concat.c, head_late.c, head_joint.c) ---------------- */

typedef struct mm_head {
  /* the logits of a batch whose modalities are encoded */
  void (*forward)(mm_model *M, ws *w, int64_t n, int train);
  /* the batch's loss; fills probs [n, C] and, when train, d(loss)/d(logits) */
  double (*loss)(mm_model *M, ws *w, int64_t n, const float *cw, int train);
  /* the head's parameter gradients and gh of every modality that learns */
  void (*backward)(mm_model *M, ws *w, int64_t n);
} mm_head;

extern const mm_head mm_head_concat, mm_head_late, mm_head_joint;
const mm_head *mm_head_of(int fusion);
/* the shared linear classifier on z [n, Z]: logits, its loss, its backward into gz */
void mm_classifier_forward(mm_model *M, ws *w, int64_t n, int64_t Z);
double mm_classifier_loss(mm_model *M, ws *w, int64_t n, const float *cw, int train);
void mm_classifier_backward(mm_model *M, ws *w, int64_t n, int64_t Z);

/* ---- parameters (params.c) --------------------------------------------------------- */

int mm_params_alloc(mm_model *M, mm_err *e);
void mm_params_init(mm_model *M, uint64_t seed);
void mm_params_free(mm_model *M); /* the parameters and the step's weight backup */
/* sl[q] = the compact gradient row of table row ids[q] (new rows zeroed) */
void mm_params_slot_rows(mm_param *p, const int64_t *ids, int64_t n, int64_t *sl);
/* room in p's compact gradient rows for `more` new rows */
int mm_params_reserve_rows(mm_param *p, int64_t more, mm_err *e);
void mm_params_zero_grads(mm_model *M);
void mm_params_forget_touched(mm_model *M); /* the compact rows are zero already */
void mm_params_mirror_sparse(mm_model *M, int keep); /* compact rows -> dense g (keep 0: only clear it) */

/* ---- running a batch (run.c), training (train.c, update.c, hogwild.c) ---------------- */

int mm_run_batch(mm_model *M, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int train,
                 const float *cw, double *loss, mm_err *e);
int mm_train_step(mm_model *M, mm_dataset *ds, ws *w, const mm_train_opts *o, const int64_t *rows, int64_t n,
                  int64_t s, int64_t nb, double *loss, mm_err *e);
/* the optimiser step over every parameter gradient (scaled by scale) */
int mm_update_apply(mm_model *M, const mm_train_opts *o, double scale, mm_err *e);
int mm_update_grads_finite(const mm_model *M);
double mm_update_grad_sumsq(const mm_model *M);
double mm_now_seconds(void);
int64_t mm_argmax(const float *p, int64_t C);

int mm_hogwild_ok(const mm_model *M);
int mm_train_hogwild(mm_model *M, mm_dataset *ds, const mm_train_opts *o, const int64_t *order, int64_t B, int nt,
                     mm_epoch_stats *st, double t0, mm_err *e);
void mm_hogwild_free(mm_model *M);

#endif
