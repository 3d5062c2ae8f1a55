/* optim.c - parameter updates with PyTorch's semantics (torch.optim.SGD with
 * dampening 0, torch.optim.Adam with L2 weight decay added to the gradient). */
#include <math.h>
#include <stdint.h>

#include "nn.h"

void mm_sgd_step(float *p, const float *g, float *vel, int64_t count, float lr, float momentum, float wd) {
  if (momentum != 0.0f && vel) {
    for (int64_t i = 0; i < count; i++) {
      float d = g[i] + wd * p[i];
      vel[i] = momentum * vel[i] + d;
      p[i] -= lr * vel[i];
    }
  } else {
    for (int64_t i = 0; i < count; i++) p[i] -= lr * (g[i] + wd * p[i]);
  }
}

/* one division per element, bias corrections precomputed:
 *   p -= step_size * m / (sqrt(v) * inv_sbc2 + eps)
 * No restrict: Lua may pass one tensor twice, and gcc vectorises the loop
 * behind its own runtime overlap check (restrict measured no faster: the
 * loop is memory-bound). */
static void adam_loop(float *p, const float *g, float *m, float *v, int64_t count, float step_size, float inv_sbc2,
                      float b1, float b2, float eps, float wd) {
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
  for (int64_t i = 0; i < count; i++) {
    float d = g[i] + wd * p[i];
    float mi = b1 * m[i] + c1 * d;
    float vi = b2 * v[i] + c2 * d * d;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (sqrtf(vi) * inv_sbc2 + eps);
  }
}

void mm_adam_step(float *p, const float *g, float *m, float *v, int64_t count, float lr, float b1, float b2,
                  float eps, float wd, int64_t step) {
  if (step < 1) step = 1;
  double bc1 = 1.0 - pow((double)b1, (double)step);
  double bc2 = 1.0 - pow((double)b2, (double)step);
  float step_size = (float)(lr / bc1);
  float inv_sbc2 = (float)(1.0 / sqrt(bc2));
  if (count <= 0) return;
  adam_loop(p, g, m, v, count, step_size, inv_sbc2, b1, b2, eps, wd);
}

double mm_sumsq(const float *g, int64_t count) {
  double s = 0.0;
  for (int64_t i = 0; i < count; i++) s += (double)g[i] * g[i];
  return s;
}

void mm_scale(float *g, int64_t count, float s) {
  for (int64_t i = 0; i < count; i++) g[i] *= s;
}
