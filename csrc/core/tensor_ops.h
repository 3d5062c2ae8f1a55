/* tensor_ops.h - arithmetic on whole tensors (what mm.Tensor's operators and
 * methods compute): elementwise operations with a tensor, a row vector or a
 * scalar, elementwise maps, reductions over everything or one dimension,
 * transposition, reshaping, comparison.
 *
 * Each operation writes an output tensor the caller allocated with the shape
 * the matching check or shape function gave (y may be an input where noted).
 * Checks return MM_EINVAL with a message naming the operation and the shapes.
 * float32 throughout; sums and means accumulate in double. */
#ifndef MM_TENSOR_OPS_H
#define MM_TENSOR_OPS_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

/* ---- elementwise a op b ------------------------------------------------------ */
typedef enum { MM_OP_ADD, MM_OP_SUB, MM_OP_MUL, MM_OP_DIV } mm_binop;
/* "+", "-", "*", "/" */
const char *mm_binop_symbol(mm_binop op);

/* y = a op s, or s op a when scalar_first; y has a's shape (y may be a) */
void mm_tensor_op_scalar(mm_binop op, const mm_tensor *a, float s, int scalar_first, mm_tensor *y);

/* Shapes a op b accepts: the same shape, or a tensor [..., m] and a row
 * vector [m] or [1, m] on either side (applied to every row). *like is the
 * operand whose shape the result has. */
int mm_tensor_op_check(mm_binop op, const mm_tensor *a, const mm_tensor *b, const mm_tensor **like, mm_err *e);
/* y = a op b, shapes as mm_tensor_op_check accepted them */
void mm_tensor_op(mm_binop op, const mm_tensor *a, const mm_tensor *b, mm_tensor *y);

/* ---- elementwise maps -------------------------------------------------------- */
typedef enum {
  MM_MAP_NEG,
  MM_MAP_EXP,
  MM_MAP_LOG,
  MM_MAP_TANH,
  MM_MAP_RELU,
  MM_MAP_SIGMOID, /* 1 / (1 + e^-x), from the side that does not overflow */
  MM_MAP_ABS,
  MM_MAP_SQRT
} mm_map;
/* y[i] = f(x[i]); y has x's shape (y may be x) */
void mm_tensor_map(mm_map f, const mm_tensor *x, mm_tensor *y);
/* y[i] = x[i]^p (powf) */
void mm_tensor_pow(const mm_tensor *x, float p, mm_tensor *y);

/* ---- reductions -------------------------------------------------------------- */
/* max / min / argmax / argmin take the first extreme; a NaN beats any number
 * (so a tensor holding NaN has a NaN max). */
typedef enum { MM_RED_SUM, MM_RED_MEAN, MM_RED_MAX, MM_RED_MIN, MM_RED_ARGMAX, MM_RED_ARGMIN } mm_reduce;
/* "sum", "mean", "max", "min", "argmax", "argmin" */
const char *mm_reduce_name(mm_reduce r);

/* over every element: *value = the sum, the mean, or the max / min element;
 * *index = the flat 0-based index of the max / min (also argmax / argmin).
 * MM_EINVAL for an empty tensor (except the sum, 0). */
int mm_tensor_reduce_all(mm_reduce r, const mm_tensor *t, float *value, int64_t *index, mm_err *e);

/* the shape of a reduction over dimension dim (0-based, in range): t's shape
 * without dim; MM_EINVAL when that dimension is empty (except the sum). */
int mm_tensor_reduce_shape(mm_reduce r, const mm_tensor *t, int dim, int *ndim, int64_t *shape, mm_err *e);
/* out = the reduction over dim. For max / min, index (same shape as out)
 * receives the positions along dim, counted from index_base (0 or 1); for
 * argmax / argmin out itself receives them, from index_base. */
void mm_tensor_reduce_dim(mm_reduce r, const mm_tensor *t, int dim, int64_t index_base, mm_tensor *out,
                          mm_tensor *index);

/* ---- fills ------------------------------------------------------------------- */
void mm_tensor_fill(mm_tensor *t, float v);
/* t[i] = a + step * i (in double, then rounded) */
void mm_tensor_arange(mm_tensor *t, double a, double step);

/* ---- layout ------------------------------------------------------------------ */
/* shape[0..n) for a copy of t's elements: one entry may be -1 (inferred);
 * checks the count; fills in the -1 */
int mm_tensor_reshape_check(const mm_tensor *t, int n, int64_t *shape, mm_err *e);
/* o = t with dimensions d1 and d2 (0-based) swapped (o has that shape) */
void mm_tensor_transpose(const mm_tensor *t, int d1, int d2, mm_tensor *o);

/* ---- comparison -------------------------------------------------------------- */
/* 1 when |a[i] - b[i]| <= atol + rtol * |b[i]| for every i of two tensors of
 * the same shape (equal infinities are close, NaN never is); *worst receives
 * the largest absolute difference (NaN when a NaN was met) */
int mm_tensor_allclose(const mm_tensor *a, const mm_tensor *b, double rtol, double atol, double *worst);

/* the index of the first NaN or infinity of x[0..n), -1 when every value is finite */
int64_t mm_find_nonfinite(const float *x, int64_t n);

/* ---- printing ---------------------------------------------------------------- */
/* how mm.Tensor prints t: every element in fixed notation with prec decimals
 * (0 when all are integers) or, for very large or small magnitudes, in
 * scientific notation (sci); width characters each */
void mm_tensor_print_style(const mm_tensor *t, int *width, int *prec, int *sci);

#endif
