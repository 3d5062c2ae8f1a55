/* metrics.h - classification metrics from predicted probabilities.
 *
 * Rows whose label is -1 (unlabelled) are skipped. Macro-F1 averages the
 * per-class F1 over the classes that occur in the labels or the predictions
 * (scikit-learn's labels = union rule); a class never seen nor predicted
 * does not count. log_loss = mean -log(max(p_true, 1e-15)).
 */
#ifndef MM_METRICS_H
#define MM_METRICS_H

#include <stdint.h>

typedef struct mm_metrics {
  int64_t n, C;
  double accuracy, macro_f1, log_loss;
  int64_t *confusion;           /* [C*C], row = true, column = predicted */
  double *precision, *recall, *f1; /* [C] */
  int64_t *support;             /* [C] */
  double ll_sum;                /* the sum behind log_loss, in row order */
  int64_t correct;
} mm_metrics;

/* Allocates the arrays; returns 0 or MM_ENOMEM. */
int mm_metrics_compute(const float *probs, const int64_t *labels, int64_t n, int64_t C, mm_metrics *m);
void mm_metrics_free(mm_metrics *m);

/* The same over rows that arrive in parts (a stream): begin, add every part
 * in row order, end. mm_metrics_compute is begin + one add + end, so both
 * give the same bits for the same rows. */
int mm_metrics_begin(mm_metrics *m, int64_t C);
void mm_metrics_add(mm_metrics *m, const float *probs, const int64_t *labels, int64_t n);
void mm_metrics_end(mm_metrics *m);

#endif
