/* workspace.c - the buffers of a batch (model_internal.h, ws): sized for up
 * to B rows, the gradient buffers only for training, kept on the model
 * between calls and grown on demand. */
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../nn/cnn_direct.h"
#include "model_internal.h"

static void ws_free(ws *w) {
  free(w->y);
  free(w->none);
  free(w->ok);
  free(w->okm);
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
  memset(w, 0, sizeof *w);
}

#define FA(ptr, cnt)                             \
  do {                                           \
    (ptr) = mm_falloc((int64_t)(cnt) + 1);       \
    if (!(ptr)) goto oom;                        \
  } while (0)

/* the buffers of modality i; grows *colmax to the CNN's im2col */
static int modality_alloc(const mm_model *M, ws *w, int i, int64_t *colmax, mm_err *e) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  const int64_t B = w->B, C = M->nclasses, d = M->dim;
  const int train = w->train;
  w->mm[i] = malloc((size_t)B);
  if (!w->mm[i]) goto oom;
  FA(m->h, B * c->out_dim);
  if (train && mm_encoder_learns(c)) FA(m->gh, B * c->out_dim);
  if (mm_fusion_is_joint(M->fusion)) {
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
    int rc = mm_cnn_shapes(c, m, B, train, colmax, e);
    if (rc) return rc;
    FA(m->img, B * 3 * c->img_h * c->img_w);
    /* inference by direct convolution needs none of the per-block
     * activations (encode allocates them if the kernel changes later) */
    if ((train || !mm_cnn_direct_ok()) && mm_cnn_activations(c, m, B, train)) goto oom;
  }
  return MM_OK;
oom:
  return mm_errorf(e, MM_ENOMEM, "model: out of memory for a batch of %lld", (long long)B);
}

/* Buffers for batches of up to B rows; the gradient buffers only when train. */
static int ws_alloc(const mm_model *M, ws *w, int64_t B, int train, mm_err *e) {
  memset(w, 0, sizeof *w);
  w->B = B;
  w->train = train;
  const int64_t C = M->nclasses, d = M->dim, k = M->k;
  const int joint = mm_fusion_is_joint(M->fusion);
  int64_t Z = 0, colmax = 0;
  w->y = malloc((size_t)B * sizeof *w->y);
  w->none = malloc((size_t)B);
  w->ok = malloc((size_t)B);
  w->okm = malloc((size_t)B);
  if (!w->y || !w->none || !w->ok || !w->okm) goto oom;
  if (train && joint) {
    w->parg = malloc((size_t)(B * d) * sizeof *w->parg);
    if (!w->parg) goto oom;
  }
  for (int i = 0; i < k; i++) {
    int rc = modality_alloc(M, w, i, &colmax, e);
    if (rc) {
      ws_free(w);
      return rc;
    }
    Z += M->mod[i].out_dim;
  }
  if (joint) Z = d;
  FA(w->z, B * Z);
  if (train) FA(w->gz, B * Z);
  if (train && M->fusion == MM_FUSION_COMMON) { /* ranking gradients of every modality pair */
    int64_t pairs = k * (k - 1) / 2;
    FA(w->tv, pairs * B * d);
    FA(w->tt, pairs * B * d);
    FA(w->rk, mm_ranking_scratch(B, d));
  }
  FA(w->logits, B * C);
  FA(w->probs, B * C);
  if (train) FA(w->glog, B * C);
  FA(w->col, colmax);
  return MM_OK;
oom:
  ws_free(w);
  return mm_errorf(e, MM_ENOMEM, "model: out of memory for a batch of %lld", (long long)B);
}

/* The model keeps one workspace between calls, grown to the largest batch
 * seen (and to training buffers once it trained). A call made while it is in
 * use (predict from a progress callback of fit) gets a workspace of its own. */
ws *mm_ws_acquire(mm_model *M, int64_t B, int train, mm_err *e) {
  ws *w = M->wscache;
  if (!M->ws_busy && w && w->B >= B && (w->train || !train)) {
    M->ws_busy = 1;
    return w;
  }
  int cache = !M->ws_busy;
  if (cache && w) {
    if (w->B > B) B = w->B;
    if (w->train) train = 1;
    ws_free(w);
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

void mm_ws_cache_free(mm_model *M) {
  if (M->wscache) {
    ws_free(M->wscache);
    free(M->wscache);
  }
  M->wscache = NULL;
  M->ws_busy = 0;
}

void mm_ws_release(mm_model *M, ws *w) {
  if (!w) return;
  if (w == M->wscache) {
    M->ws_busy = 0;
    return;
  }
  ws_free(w);
  free(w);
}
