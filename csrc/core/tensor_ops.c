/* tensor_ops.c - see tensor_ops.h */
#include "tensor_ops.h"

#include <math.h>
#include <string.h>

/* ---- elementwise a op b ------------------------------------------------------ */

const char *mm_binop_symbol(mm_binop op) {
  static const char *const sym[] = {"+", "-", "*", "/"};
  return (unsigned)op < 4 ? sym[op] : "?";
}

static inline float apply(mm_binop op, float a, float b) {
  switch (op) {
    case MM_OP_ADD: return a + b;
    case MM_OP_SUB: return a - b;
    case MM_OP_MUL: return a * b;
    default: return a / b;
  }
}

void mm_tensor_op_scalar(mm_binop op, const mm_tensor *a, float s, int scalar_first, mm_tensor *y) {
  if (scalar_first)
    for (int64_t i = 0; i < a->numel; i++) y->data[i] = apply(op, s, a->data[i]);
  else
    for (int64_t i = 0; i < a->numel; i++) y->data[i] = apply(op, a->data[i], s);
}

/* v is a row vector that fits the last dimension of t */
static int row_vector_of(const mm_tensor *v, const mm_tensor *t) {
  int64_t last = t->ndim ? t->shape[t->ndim - 1] : 1;
  return (v->ndim == 1 || (v->ndim == 2 && v->shape[0] == 1)) && v->numel == last && t->ndim >= 1 && last > 0;
}

int mm_tensor_op_check(mm_binop op, const mm_tensor *a, const mm_tensor *b, const mm_tensor **like, mm_err *e) {
  *like = a;
  if (mm_same_shape(a, b) || row_vector_of(b, a)) return MM_OK;
  *like = b;
  if (row_vector_of(a, b)) return MM_OK;
  char sa[96], sb[96];
  return mm_errorf(e, MM_EINVAL,
                   "'%s': shapes %s and %s do not match (same shape, a scalar, or a row vector of the last dimension)",
                   mm_binop_symbol(op), mm_shape_str(a, sa, sizeof sa), mm_shape_str(b, sb, sizeof sb));
}

void mm_tensor_op(mm_binop op, const mm_tensor *a, const mm_tensor *b, mm_tensor *y) {
  if (mm_same_shape(a, b)) {
    for (int64_t i = 0; i < a->numel; i++) y->data[i] = apply(op, a->data[i], b->data[i]);
    return;
  }
  int swapped = !row_vector_of(b, a);
  const mm_tensor *big = swapped ? b : a, *vec = swapped ? a : b;
  int64_t last = big->shape[big->ndim - 1], rows = big->numel / last;
  for (int64_t r = 0; r < rows; r++) {
    const float *x = big->data + r * last;
    float *o = y->data + r * last;
    for (int64_t j = 0; j < last; j++) o[j] = swapped ? apply(op, vec->data[j], x[j]) : apply(op, x[j], vec->data[j]);
  }
}

/* ---- elementwise maps -------------------------------------------------------- */

#define MAP_LOOP(expr)                                                                                                \
  for (int64_t i = 0; i < n; i++) {                                                                                   \
    float x = xs[i];                                                                                                  \
    ys[i] = (expr);                                                                                                   \
  }                                                                                                                   \
  break

void mm_tensor_map(mm_map f, const mm_tensor *t, mm_tensor *y) {
  const float *xs = t->data;
  float *ys = y->data;
  int64_t n = t->numel;
  switch (f) {
    case MM_MAP_NEG: MAP_LOOP(-x);
    case MM_MAP_EXP: MAP_LOOP(expf(x));
    case MM_MAP_LOG: MAP_LOOP(logf(x));
    case MM_MAP_TANH: MAP_LOOP(tanhf(x));
    case MM_MAP_RELU: MAP_LOOP(x > 0.0f ? x : 0.0f);
    case MM_MAP_SIGMOID: MAP_LOOP(x >= 0.0f ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x)));
    case MM_MAP_ABS: MAP_LOOP(fabsf(x));
    case MM_MAP_SQRT: MAP_LOOP(sqrtf(x));
  }
}

void mm_tensor_pow(const mm_tensor *t, float p, mm_tensor *y) {
  for (int64_t i = 0; i < t->numel; i++) y->data[i] = powf(t->data[i], p);
}

/* ---- reductions -------------------------------------------------------------- */

const char *mm_reduce_name(mm_reduce r) {
  static const char *const names[] = {"sum", "mean", "max", "min", "argmax", "argmin"};
  return (unsigned)r < 6 ? names[r] : "?";
}

/* v replaces the best so far b: larger (max) / smaller (min), or a NaN over a number */
static inline int better(mm_reduce r, float v, float b) {
  if (r == MM_RED_MAX || r == MM_RED_ARGMAX) return v > b || (isnan(v) && !isnan(b));
  return v < b || (isnan(v) && !isnan(b));
}

static inline int is_sum(mm_reduce r) { return r == MM_RED_SUM || r == MM_RED_MEAN; }

int mm_tensor_reduce_all(mm_reduce r, const mm_tensor *t, float *value, int64_t *index, mm_err *e) {
  *index = 0;
  if (t->numel == 0 && r != MM_RED_SUM) {
    char s[96];
    return mm_errorf(e, MM_EINVAL, "%s: tensor of shape %s is empty", mm_reduce_name(r), mm_shape_str(t, s, sizeof s));
  }
  if (is_sum(r)) {
    double acc = 0;
    for (int64_t i = 0; i < t->numel; i++) acc += t->data[i];
    *value = r == MM_RED_SUM ? (float)acc : (float)(acc / (double)t->numel);
    return MM_OK;
  }
  int64_t best = 0;
  for (int64_t i = 0; i < t->numel; i++)
    if (better(r, t->data[i], t->data[best])) best = i;
  *value = t->data[best];
  *index = best;
  return MM_OK;
}

int mm_tensor_reduce_shape(mm_reduce r, const mm_tensor *t, int dim, int *ndim, int64_t *shape, mm_err *e) {
  if (t->shape[dim] == 0 && r != MM_RED_SUM) {
    char s[96];
    return mm_errorf(e, MM_EINVAL, "%s: dimension %d of shape %s is empty", mm_reduce_name(r), dim + 1,
                     mm_shape_str(t, s, sizeof s));
  }
  int nd = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dim) shape[nd++] = t->shape[i];
  *ndim = nd;
  return MM_OK;
}

/* seen as [outer, n, inner]: each (outer, inner) pair reduces n elements inner apart */
void mm_tensor_reduce_dim(mm_reduce r, const mm_tensor *t, int dim, int64_t index_base, mm_tensor *out,
                          mm_tensor *index) {
  int64_t n = t->shape[dim], outer = 1, inner = 1;
  for (int i = 0; i < dim; i++) outer *= t->shape[i];
  for (int i = dim + 1; i < t->ndim; i++) inner *= t->shape[i];
  for (int64_t a = 0; a < outer; a++) {
    for (int64_t c = 0; c < inner; c++) {
      const float *p = t->data + a * n * inner + c;
      float *o = out->data + a * inner + c;
      if (is_sum(r)) {
        double acc = 0;
        for (int64_t j = 0; j < n; j++) acc += p[j * inner];
        *o = r == MM_RED_SUM ? (float)acc : (float)(acc / (double)n);
        continue;
      }
      int64_t best = 0;
      for (int64_t j = 0; j < n; j++)
        if (better(r, p[j * inner], p[best * inner])) best = j;
      if (r == MM_RED_MAX || r == MM_RED_MIN) {
        *o = p[best * inner];
        index->data[a * inner + c] = (float)(best + index_base);
      } else {
        *o = (float)(best + index_base);
      }
    }
  }
}

/* ---- fills ------------------------------------------------------------------- */

void mm_tensor_fill(mm_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

void mm_tensor_arange(mm_tensor *t, double a, double step) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(a + step * (double)i);
}

/* ---- layout ------------------------------------------------------------------ */

int mm_tensor_reshape_check(const mm_tensor *t, int n, int64_t *shape, mm_err *e) {
  int64_t known = 1;
  int infer = -1;
  char s[96];
  for (int i = 0; i < n; i++) {
    if (shape[i] == -1) {
      if (infer >= 0) return mm_errorf(e, MM_EINVAL, "reshape: only one dimension can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      return mm_errorf(e, MM_EINVAL, "reshape: negative size %lld in dimension %d", (long long)shape[i], i + 1);
    } else {
      known *= shape[i];
      if (known > MM_MAXNUMEL) return mm_errorf(e, MM_EINVAL, "reshape: shape too large");
    }
  }
  if (infer >= 0) {
    if (known == 0 || t->numel % known)
      return mm_errorf(e, MM_EINVAL, "reshape: cannot infer -1 for %lld elements (shape %s)", (long long)t->numel,
                       mm_shape_str(t, s, sizeof s));
    shape[infer] = t->numel / known;
    known *= shape[infer];
  }
  if (known != t->numel)
    return mm_errorf(e, MM_EINVAL, "reshape: shape %s has %lld elements, the requested shape has %lld",
                     mm_shape_str(t, s, sizeof s), (long long)t->numel, (long long)known);
  return MM_OK;
}

void mm_tensor_transpose(const mm_tensor *t, int d1, int d2, mm_tensor *o) {
  int nd = t->ndim;
  int64_t sstride[MM_MAXDIM], ostr[MM_MAXDIM], idx[MM_MAXDIM] = {0};
  sstride[nd - 1] = 1;
  for (int d = nd - 2; d >= 0; d--) sstride[d] = sstride[d + 1] * t->shape[d + 1];
  /* the source stride of each output dimension */
  for (int d = 0; d < nd; d++) ostr[d] = sstride[d];
  ostr[d1] = sstride[d2];
  ostr[d2] = sstride[d1];
  for (int64_t i = 0; i < o->numel; i++) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++) off += idx[d] * ostr[d];
    o->data[i] = t->data[off];
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < o->shape[d]) break;
      idx[d] = 0;
    }
  }
}

/* ---- comparison -------------------------------------------------------------- */

int mm_tensor_allclose(const mm_tensor *a, const mm_tensor *b, double rtol, double atol, double *worst) {
  double w = 0;
  int ok = 1;
  for (int64_t i = 0; i < a->numel; i++) {
    double x = a->data[i], y = b->data[i];
    double diff = fabs(x - y);
    if (isnan(x) || isnan(y)) {
      ok = 0;
      w = NAN;
      continue;
    }
    if (x == y) continue; /* equal infinities */
    if (!(diff <= atol + rtol * fabs(y))) ok = 0;
    if (diff > w) w = diff;
  }
  *worst = w;
  return ok;
}

int64_t mm_find_nonfinite(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return i;
  return -1;
}

/* ---- printing ---------------------------------------------------------------- */

void mm_tensor_print_style(const mm_tensor *t, int *width, int *prec, int *sci) {
  double amax = 0, amin = INFINITY;
  int allint = 1, nonfinite = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    float v = t->data[i];
    if (!isfinite(v)) {
      nonfinite = 1;
      continue;
    }
    double a = fabs(v);
    if (a > amax) amax = a;
    if (a > 0 && a < amin) amin = a;
    if (v != floorf(v)) allint = 0;
  }
  *sci = (amax >= 1e6) || (amin < 1e-4 && amin > 0 && !allint);
  *prec = allint ? 0 : 4;
  if (*sci) {
    *width = 11;
    return;
  }
  int intdigits = amax >= 1 ? (int)floor(log10(amax)) + 1 : 1;
  *width = intdigits + (*prec ? *prec + 1 : 0) + 1;
  if (nonfinite && *width < 4) *width = 4;
}
