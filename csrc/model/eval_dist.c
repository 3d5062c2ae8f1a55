/* eval_dist.c - prediction and evaluation of one dataset shared by the
 * processes of a data-parallel run (comm.h): each process predicts its part
 * (whole prediction batches, split evenly, so every row is computed in the
 * same batch as by one process alone), then
 *   evaluate sums the confusion counts and the log-loss over the processes,
 *            so every metric equals the one-process value (the log-loss up
 *            to the order of its sum);
 *   predict  gathers every part, so every process holds all the rows'
 *            probabilities, bit for bit those of one process. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "sync.h"

/* the rows of process r: whole batches of MM_PREDICT_BATCH, split evenly */
static void part_of(int64_t n, int r, int size, int64_t *first, int64_t *count) {
  int64_t nb = (n + MM_PREDICT_BATCH - 1) / MM_PREDICT_BATCH;
  int64_t f = nb * r / size * MM_PREDICT_BATCH, l = nb * (r + 1) / size * MM_PREDICT_BATCH;
  if (l > n) l = n;
  if (f > l) f = l;
  *first = f;
  *count = l - f;
}

/* the checks of every process, agreed, and the same data everywhere */
static int start(mm_model *M, const mm_dataset *ds, const mm_comm *c, const char *what, mm_err *e) {
  int rc = mm_comm_check(c, e);
  if (rc) return rc;
  mm_err le = {0};
  int lrc = MM_OK;
  if (!M->built) lrc = mm_errorf(&le, MM_EINVAL, "model: not trained yet (call fit or load a model)");
  else if (ds->nclasses != M->nclasses)
    lrc = mm_errorf(&le, MM_EINVAL, "%s: the data has %lld classes, the model %lld", what, (long long)ds->nclasses,
                    (long long)M->nclasses);
  rc = mm_agree(c, lrc, &le, e);
  if (rc) return rc;
  int64_t v[2] = {ds->n, mm_dataset_fingerprint(ds)};
  int same;
  rc = mm_agree_same_i64(c, v, 2, &same, e);
  if (!rc && !same)
    rc = mm_errorf(e, MM_EINVAL, "%s: the processes hold different data (here %lld rows): dist needs the same "
                                 "dataset on every process",
                   what, (long long)ds->n);
  return rc;
}

/* this process's part predicted: its probabilities (NULL with *lrc set and
 * the error in le), its first row and its row count */
static float *predict_part(mm_model *M, mm_dataset *ds, const mm_comm *c, const char *what, int64_t *first,
                           int64_t *count, int *lrc, mm_err *le) {
  part_of(ds->n, c->rank, c->size, first, count);
  float *probs = malloc((size_t)(*count > 0 ? *count * M->nclasses : 1) * sizeof *probs);
  *lrc = probs ? mm_model_predict_range(M, ds, *first, *count, probs, le)
               : mm_errorf(le, MM_ENOMEM, "%s: out of memory", what);
  if (*lrc) {
    free(probs);
    return NULL;
  }
  return probs;
}

int mm_model_predict_comm(mm_model *M, mm_dataset *ds, const mm_comm *c, float *probs, mm_err *e) {
  int rc = start(M, ds, c, "predict", e);
  if (rc) return rc;
  const int64_t C = M->nclasses;
  int64_t first, count;
  mm_err le = {0};
  int lrc;
  float *mine = predict_part(M, ds, c, "predict", &first, &count, &lrc, &le);
  int64_t *bytes_of = lrc ? NULL : calloc((size_t)c->size, sizeof *bytes_of);
  if (!lrc && !bytes_of) lrc = mm_errorf(&le, MM_ENOMEM, "predict: out of memory");
  rc = mm_agree(c, lrc, &le, e);
  if (!rc) {
    for (int r = 0; r < c->size; r++) {
      int64_t f, n;
      part_of(ds->n, r, c->size, &f, &n);
      bytes_of[r] = n * C * (int64_t)sizeof(float);
    }
    rc = c->allgatherv(c->ud, mine, bytes_of[c->rank], probs, bytes_of, e);
  }
  free(mine);
  free(bytes_of);
  return rc;
}

int mm_model_evaluate_comm(mm_model *M, mm_dataset *ds, const mm_comm *c, mm_metrics *m, mm_err *e) {
  memset(m, 0, sizeof *m);
  int rc = start(M, ds, c, "evaluate", e);
  if (rc) return rc;
  const int64_t C = M->nclasses;
  int64_t first, count;
  mm_err le = {0};
  int lrc;
  float *probs = predict_part(M, ds, c, "evaluate", &first, &count, &lrc, &le);
  if (!lrc) {
    if (mm_metrics_begin(m, C)) lrc = mm_errorf(&le, MM_ENOMEM, "evaluate: out of memory");
    else mm_metrics_add(m, probs, ds->labels + first, count);
  }
  free(probs);
  rc = mm_agree(c, lrc, &le, e);
  int64_t *counts = rc ? NULL : malloc((size_t)(C * C + 2) * sizeof *counts);
  if (!rc && !counts) rc = mm_errorf(e, MM_ENOMEM, "evaluate: out of memory");
  if (!rc) {
    memcpy(counts, m->confusion, (size_t)(C * C) * sizeof *counts);
    counts[C * C] = m->n;
    counts[C * C + 1] = m->correct;
    rc = c->allreduce(c->ud, counts, C * C + 2, MM_COMM_I64, MM_COMM_SUM, e);
  }
  double ll = m->ll_sum;
  if (!rc) rc = c->allreduce(c->ud, &ll, 1, MM_COMM_F64, MM_COMM_SUM, e);
  if (!rc) {
    memcpy(m->confusion, counts, (size_t)(C * C) * sizeof *counts);
    m->n = counts[C * C];
    m->correct = counts[C * C + 1];
    m->ll_sum = ll;
    mm_metrics_end(m);
  }
  free(counts);
  if (rc) mm_metrics_free(m);
  return rc;
}
