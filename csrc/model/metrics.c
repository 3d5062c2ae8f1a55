/* metrics.c - accuracy, macro-F1, per-class scores, confusion matrix, log-loss. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

void mm_metrics_free(mm_metrics *m) {
  free(m->confusion);
  free(m->precision);
  free(m->recall);
  free(m->f1);
  free(m->support);
  memset(m, 0, sizeof *m);
}

int mm_metrics_begin(mm_metrics *m, int64_t C) {
  memset(m, 0, sizeof *m);
  m->C = C;
  m->confusion = calloc((size_t)(C * C), sizeof *m->confusion);
  m->precision = calloc((size_t)C, sizeof(double));
  m->recall = calloc((size_t)C, sizeof(double));
  m->f1 = calloc((size_t)C, sizeof(double));
  m->support = calloc((size_t)C, sizeof *m->support);
  if (!m->confusion || !m->precision || !m->recall || !m->f1 || !m->support) {
    mm_metrics_free(m);
    return MM_ENOMEM;
  }
  return MM_OK;
}

void mm_metrics_add(mm_metrics *m, const float *probs, const int64_t *labels, int64_t n) {
  const int64_t C = m->C;
  for (int64_t i = 0; i < n; i++) {
    int64_t y = labels[i];
    if (y < 0 || y >= C) continue;
    const float *p = probs + i * C;
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
      if (p[c] > p[best]) best = c;
    m->confusion[y * C + best]++;
    m->correct += best == y;
    double py = p[y];
    if (!(py > 1e-15)) py = 1e-15;
    m->ll_sum -= log(py);
    m->n++;
  }
}

void mm_metrics_end(mm_metrics *m) {
  const int64_t C = m->C, cnt = m->n;
  m->accuracy = cnt ? (double)m->correct / cnt : 0;
  m->log_loss = cnt ? m->ll_sum / cnt : 0;
  double fsum = 0;
  int64_t nc = 0;
  for (int64_t c = 0; c < C; c++) {
    int64_t tp = m->confusion[c * C + c], row = 0, col = 0;
    for (int64_t j = 0; j < C; j++) row += m->confusion[c * C + j], col += m->confusion[j * C + c];
    m->support[c] = row;
    m->precision[c] = col ? (double)tp / col : 0;
    m->recall[c] = row ? (double)tp / row : 0;
    double pr = m->precision[c] + m->recall[c];
    m->f1[c] = pr > 0 ? 2 * m->precision[c] * m->recall[c] / pr : 0;
    if (row || col) fsum += m->f1[c], nc++;
  }
  m->macro_f1 = nc ? fsum / nc : 0;
}

int mm_metrics_compute(const float *probs, const int64_t *labels, int64_t n, int64_t C, mm_metrics *m) {
  if (mm_metrics_begin(m, C)) return MM_ENOMEM;
  mm_metrics_add(m, probs, labels, n);
  mm_metrics_end(m);
  return MM_OK;
}
