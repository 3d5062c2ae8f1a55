/* eval_dist.c - prediction and evaluation of one dataset shared by the
 * processes of a data-parallel run (comm.h): each process predicts its part
 * (whole prediction batches, split evenly, so every row is computed in the
 * same batch as by one process alone), then
 *   evaluate sums the confusion counts and the log-loss over the processes,
 *            so every metric equals the one-process value (the log-loss up
 *            to the order of its sum);
 *   predict  gathers every part, so every process holds all the rows'
 *            probabilities, bit for bit those of one process.
 * A stream every process reads whole is split the same way: process r reads
 * blocks r, r + size, ... of MM_PREDICT_BATCH rows (mm_stream_part), the
 * batches one process alone runs. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "model_stream.h"
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

/* the metrics parts of every process summed into m (its confusion counts,
 * n, correct and the log-loss sum), then m ended: the one-process metrics */
static int sum_metrics(const mm_comm *c, mm_metrics *m, mm_err *e) {
  const int64_t C = m->C;
  int64_t *counts = malloc((size_t)(C * C + 2) * sizeof *counts);
  if (!counts) return mm_errorf(e, MM_ENOMEM, "evaluate: out of memory");
  memcpy(counts, m->confusion, (size_t)(C * C) * sizeof *counts);
  counts[C * C] = m->n;
  counts[C * C + 1] = m->correct;
  int rc = c->allreduce(c->ud, counts, C * C + 2, MM_COMM_I64, MM_COMM_SUM, e);
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
  return rc;
}

int mm_model_evaluate_comm(mm_model *M, mm_dataset *ds, const mm_comm *c, mm_metrics *m, mm_err *e) {
  memset(m, 0, sizeof *m);
  int rc = start(M, ds, c, "evaluate", e);
  if (rc) return rc;
  int64_t first, count;
  mm_err le = {0};
  int lrc;
  float *probs = predict_part(M, ds, c, "evaluate", &first, &count, &lrc, &le);
  if (!lrc) {
    if (mm_metrics_begin(m, M->nclasses)) lrc = mm_errorf(&le, MM_ENOMEM, "evaluate: out of memory");
    else mm_metrics_add(m, probs, ds->labels + first, count);
  }
  free(probs);
  rc = mm_agree(c, lrc, &le, e);
  if (!rc) rc = sum_metrics(c, m, e);
  if (rc) mm_metrics_free(m);
  return rc;
}

/* ---- a stream (model_stream.h) ------------------------------------------------------- */

/* every process's probabilities (mine: this one's n rows) gathered, and its
 * blocks of MM_PREDICT_BATCH rows put back in the stream's order: block k
 * of process r's part is block k size + r of the stream */
static int gather_blocks(const mm_comm *c, const float *mine, int64_t n, int64_t C, float **out, int64_t *total,
                         mm_err *e) {
  const int P = c->size;
  int64_t *rows = calloc((size_t)P, sizeof *rows), *bytes_of = calloc((size_t)P, sizeof *bytes_of);
  float *all = NULL, *P_out = NULL;
  int rc = rows && bytes_of ? MM_OK : mm_errorf(e, MM_ENOMEM, "predict: out of memory");
  if (!rc) {
    rows[c->rank] = n;
    rc = c->allreduce(c->ud, rows, P, MM_COMM_I64, MM_COMM_SUM, e);
  }
  int64_t N = 0;
  for (int r = 0; !rc && r < P; r++) {
    bytes_of[r] = rows[r] * C * (int64_t)sizeof(float);
    N += rows[r];
  }
  if (!rc && (!(all = malloc((size_t)(N > 0 ? N * C : 1) * sizeof *all)) ||
              !(P_out = malloc((size_t)(N > 0 ? N * C : 1) * sizeof *P_out))))
    rc = mm_errorf(e, MM_ENOMEM, "predict: out of memory for %lld rows of probabilities", (long long)N);
  if (!rc) rc = c->allgatherv(c->ud, mine, bytes_of[c->rank], all, bytes_of, e);
  if (!rc) {
    const int64_t K = MM_PREDICT_BATCH;
    const float *src = all;
    for (int r = 0; r < P; r++) {
      for (int64_t k = 0; k * K < rows[r]; k++) {
        int64_t nk = rows[r] - k * K < K ? rows[r] - k * K : K, at = (k * P + r) * K;
        if (at + nk > N) {
          rc = mm_errorf(e, MM_EINVAL, "predict: the processes' parts do not make up the stream (%lld rows)",
                         (long long)N);
          break;
        }
        memcpy(P_out + at * C, src, (size_t)(nk * C) * sizeof *src);
        src += nk * C;
      }
      if (rc) break;
    }
  }
  free(rows);
  free(bytes_of);
  free(all);
  if (rc) {
    free(P_out);
    return rc;
  }
  *out = P_out;
  *total = N;
  return MM_OK;
}

int mm_model_run_stream_comm(mm_model *M, mm_stream *s, const mm_comm *c, float **probs, int64_t *n, mm_metrics *m,
                             mm_err *e) {
  if (probs) *probs = NULL;
  *n = 0;
  if (m) memset(m, 0, sizeof *m);
  int rc = mm_comm_check(c, e);
  if (rc) return rc;
  const char *what = probs ? "predict" : "evaluate";
  mm_err le = {0};
  float *mine = NULL;
  int64_t nmine = 0;
  mm_stream *part = mm_stream_part(s, c->rank, c->size, 0, MM_PREDICT_BATCH, &le);
  int lrc = part ? mm_model_run_stream(M, part, probs ? &mine : NULL, &nmine, m, &le) : le.code;
  mm_stream_free(part);
  rc = mm_agree(c, lrc, &le, e);
  int64_t v = mm_stream_fingerprint(s);
  int same = 1;
  if (!rc) rc = mm_agree_same_i64(c, &v, 1, &same, e);
  if (!rc && !same)
    rc = mm_errorf(e, MM_EINVAL, "%s: the processes read different streams (dist needs the same stream on every "
                                 "process)",
                   what);
  if (!rc && m && !(rc = sum_metrics(c, m, e))) *n = m->n;
  if (!rc && probs) rc = gather_blocks(c, mine, nmine, M->nclasses, probs, n, e);
  free(mine);
  if (rc && m && !lrc) mm_metrics_free(m);
  return rc;
}
