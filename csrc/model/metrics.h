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
} mm_metrics;

/* Allocates the arrays; returns 0 or MM_ENOMEM. */
int mm_metrics_compute(const float *probs, const int64_t *labels, int64_t n, int64_t C, mm_metrics *m);
/* The two halves of it, for counts summed over processes in between:
 * the confusion matrix and n of the rows (allocates), *ll_sum = the sum of
 * -log(max(p_true, 1e-15)); then every score from the confusion, n and the
 * sum. */
int mm_metrics_count(const float *probs, const int64_t *labels, int64_t n, int64_t C, mm_metrics *m, double *ll_sum);
void mm_metrics_finish(mm_metrics *m, double ll_sum);
void mm_metrics_free(mm_metrics *m);

#endif
