/* optim.c - parameter updates with PyTorch's semantics (torch.optim.SGD with
 * dampening 0, torch.optim.Adam with L2 weight decay added to the gradient). */
#include <math.h>

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

void mm_adam_step(float *p, const float *g, float *m, float *v, int64_t count, float lr, float b1, float b2,
                  float eps, float wd, int64_t step) {
  if (step < 1) step = 1;
  double bc1 = 1.0 - pow((double)b1, (double)step);
  double bc2 = 1.0 - pow((double)b2, (double)step);
  float step_size = (float)(lr / bc1);
  float sbc2 = (float)sqrt(bc2);
  for (int64_t i = 0; i < count; i++) {
    float d = g[i] + wd * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * d;
    v[i] = b2 * v[i] + (1.0f - b2) * d * d;
    p[i] -= step_size * m[i] / (sqrtf(v[i]) / sbc2 + eps);
  }
}

double mm_sumsq(const float *g, int64_t count) {
  double s = 0.0;
  for (int64_t i = 0; i < count; i++) s += (double)g[i] * g[i];
  return s;
}

void mm_scale(float *g, int64_t count, float s) {
  for (int64_t i = 0; i < count; i++) g[i] *= s;
}
