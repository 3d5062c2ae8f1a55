/* npy_map.h - a 2-D .npy file read through a memory mapping.
 *
 * The file is mapped read-only, never read or copied whole: a row is copied
 * out when it is needed (float64 files rounded to float32), and the pages a
 * range of rows occupies can be given back to the kernel once they are read,
 * so the process keeps no more of the file resident than the rows it works
 * on (the pages stay in the page cache; reading them again maps them back).
 * The header rules are mm_npy_load's (npy.h); the data must be exactly
 * rows x cols items. Several threads may read rows of one map at once.
 */
#ifndef MM_NPY_MAP_H
#define MM_NPY_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct mm_npy_map {
  char *path;
  void *base;          /* the mapping: the whole file */
  size_t size;
  const uint8_t *data; /* the first row */
  int itemsize;        /* 4: float32, 8: float64 */
  int64_t rows, cols;
} mm_npy_map;

/* Map path (a 2-D array); errors name the file. m is zeroed on failure. */
int mm_npy_map_open(const char *path, mm_npy_map *m, mm_err *e);
/* row r (0 <= r < rows) into dst[cols] */
void mm_npy_map_row(const mm_npy_map *m, int64_t r, float *dst);
/* give back the resident pages of rows [r0, r1) */
void mm_npy_map_release(const mm_npy_map *m, int64_t r0, int64_t r1);
void mm_npy_map_close(mm_npy_map *m);

#endif
