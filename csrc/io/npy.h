/* npy.h - NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Read: dtype '<f4' or '<f8' only (little-endian float32/float64; '>f4',
 * ints, bools, objects are rejected), fortran_order False, 0 <= ndim <= 8
 * (ndim 0 becomes a 1-element tensor of ndim 0), data exactly
 * prod(shape)*itemsize bytes after the header (trailing bytes are an error).
 * float64 is converted to float32; values out of float range become +-Inf
 * (non-finite values are kept: check them where they matter).
 * Write: always '<f4', C order, version 1.0 (2.0 if the header needs it),
 * atomically: a temp file in the same folder, fsync, rename over `path`.
 *
 * Errors name the file: "<path>: .npy header: ...", "<path>: dtype '<i8'
 * not supported (float32 or float64 only)", "<path>: truncated: expected N
 * data bytes, found M", "<path>: fortran_order arrays not supported".
 */
#ifndef MM_NPY_H
#define MM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

/* Load path into t (t->data must be NULL; on success t owns new data). */
int mm_npy_load(const char *path, mm_tensor *t, mm_err *e);

/* Same from a memory buffer (fuzzing, embedded files); `name` for messages. */
int mm_npy_load_mem(const void *buf, size_t len, const char *name, mm_tensor *t, mm_err *e);

/* Parse just the header: dtype itemsize (4 or 8), ndim, shape, and the
 * offset of the data. Validates as mm_npy_load does, except the data size. */
int mm_npy_parse_header(const void *buf, size_t len, const char *name, int *itemsize, int *ndim, int64_t *shape,
                        size_t *data_offset, mm_err *e);

/* Write float32 data of the given shape (ndim 0..8) atomically to path. */
int mm_npy_save_f32(const char *path, int ndim, const int64_t *shape, const float *data, mm_err *e);
int mm_npy_save(const char *path, const mm_tensor *t, mm_err *e);

/* Atomic write helper, reusable by other writers (model files):
 * writes `len` bytes from each of `n` chunks to "<path>.tmp.<pid>.<rand>"
 * in the same folder, fsyncs it, renames it over path and fsyncs the folder.
 * On failure the temp file is removed and `path` is untouched. */
int mm_npy_write_atomic(const char *path, const void *const *chunks, const size_t *lens, int n, mm_err *e);

#endif
