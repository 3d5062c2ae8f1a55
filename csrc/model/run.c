/* run.c - one batch through the model (masks -> encoders -> fusion head ->
 * loss -> backward), and the calls that run batches without an optimiser:
 * prediction and the gradient of one batch (gradient checks). */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "model_internal.h"

/* The forward (and the backward when train) of rows: fills w->probs [n, C]
 * and, when train, every parameter gradient; *loss_out = the batch's loss. */
int mm_run_batch(mm_model *M, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int train,
                 const float *cw, double *loss_out, mm_err *e) {
  mm_batch_masks(M, ds, w, rows, n, train);
  for (int i = 0; i < M->k; i++) {
    int rc = mm_encode_forward(M, ds, w, i, rows, n, train, e);
    if (rc) return rc;
  }
  const mm_head *head = mm_head_of(M->fusion);
  head->forward(M, w, n, train);
  *loss_out = head->loss(M, w, n, cw, train);
  if (!train) return MM_OK;
  head->backward(M, w, n);
  for (int i = 0; i < M->k; i++) mm_encode_backward(M, w, i, n);
  return MM_OK;
}

int mm_model_loss_grad(mm_model *M, mm_dataset *ds, double *loss, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not built");
  if (ds->n < 1) return mm_errorf(e, MM_EINVAL, "model: no rows");
  ws *w = mm_ws_acquire(M, ds->n, 1, e);
  if (!w) return e->code;
  int rc = mm_batch_bind(M, ds, w, 1, e);
  int64_t *rows = malloc((size_t)ds->n * sizeof *rows);
  if (!rc && !rows) rc = mm_errorf(e, MM_ENOMEM, "model: out of memory");
  if (!rc) {
    for (int64_t r = 0; r < ds->n; r++) rows[r] = r;
    mm_params_zero_grads(M);
    M->opt_dirty = 1;
    rc = mm_run_batch(M, ds, w, rows, ds->n, 1, NULL, loss, e);
  }
  /* sparse tables: the compact gradient rows into the dense mirror g (read by grad) */
  mm_params_mirror_sparse(M, !rc);
  free(rows);
  mm_ws_release(M, w);
  return rc;
}

int mm_model_predict_range(mm_model *M, mm_dataset *ds, int64_t first, int64_t count, float *probs, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "model: not trained yet (call fit or load a model)");
  if (count <= 0) return MM_OK;
  int64_t B = count < MM_PREDICT_BATCH ? count : MM_PREDICT_BATCH;
  ws *w = mm_ws_acquire(M, B, 0, e);
  if (!w) return e->code;
  int rc = mm_batch_bind(M, ds, w, 0, e);
  int64_t *rows = malloc((size_t)B * sizeof *rows);
  if (!rc && !rows) rc = mm_errorf(e, MM_ENOMEM, "predict: out of memory");
  for (int64_t s = 0; !rc && s < count; s += B) {
    int64_t n = count - s < B ? count - s : B;
    for (int64_t b = 0; b < n; b++) rows[b] = first + s + b;
    double loss;
    rc = mm_run_batch(M, ds, w, rows, n, 0, NULL, &loss, e);
    if (!rc) memcpy(probs + s * M->nclasses, w->probs, (size_t)(n * M->nclasses) * sizeof(float));
  }
  free(rows);
  mm_ws_release(M, w);
  return rc;
}

int mm_model_predict(mm_model *M, mm_dataset *ds, float *probs, mm_err *e) {
  return mm_model_predict_range(M, ds, 0, ds->n, probs, e);
}

int mm_model_evaluate(mm_model *M, mm_dataset *ds, float *probs, mm_metrics *m, mm_err *e) {
  if (ds->nclasses != M->nclasses)
    return mm_errorf(e, MM_EINVAL, "evaluate: the data has %lld classes, the model %lld", (long long)ds->nclasses,
                     (long long)M->nclasses);
  int rc = mm_model_predict(M, ds, probs, e);
  if (rc) return rc;
  if (mm_metrics_compute(probs, ds->labels, ds->n, M->nclasses, m))
    return mm_errorf(e, MM_ENOMEM, "evaluate: out of memory");
  return MM_OK;
}
