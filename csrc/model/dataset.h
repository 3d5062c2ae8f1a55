/* dataset.h - N labelled rows with K modalities, each with a presence mask.
 *
 * A modality is one of
 *  - TEXT:  raw UTF-8 strings (one char block + offsets[n+1]); the ids a
 *           model's vocabulary gives them are cached here (keyed by the
 *           vocabulary's content hash), so an epoch never re-tokenizes;
 *  - IMAGE: uint8 RGB pixels [n, h, w, c] (HWC, as image.h) in one block,
 *           decoded once at one fixed size;
 *  - DENSE: float32 feature rows [n, dim] (precomputed image features or
 *           any named vector).
 * Everything is owned by the dataset; subsets copy their rows (cheap next
 * to training).
 */
#ifndef MM_DATASET_H
#define MM_DATASET_H

#include <stdint.h>

#include "../core/error.h"

#define MM_MAXMOD 16
#define MM_MODNAME 64

enum { MM_MOD_TEXT = 0, MM_MOD_IMAGE = 1, MM_MOD_DENSE = 2 };

typedef struct mm_modality {
  char name[MM_MODNAME];
  int kind;
  uint8_t *mask; /* [n] 1 = present */
  /* TEXT */
  char *text;
  int64_t *off; /* [n+1] */
  uint64_t cache_key;
  int64_t *cache_ids, *cache_off; /* CSR ids (NULL until cached) */
  /* IMAGE */
  uint8_t *pix;
  int64_t c, h, w;
  /* DENSE */
  float *feat;
  int64_t dim;
} mm_modality;

typedef struct mm_dataset {
  int64_t n;
  int64_t *labels; /* [n], -1 = unlabelled */
  int64_t nclasses;
  int k;
  mm_modality mods[MM_MAXMOD];
  int in_use; /* > 0 while a training epoch reads it (a Lua callback must not free it) */
} mm_dataset;

mm_dataset *mm_dataset_new(int64_t n, int64_t nclasses, const int64_t *labels, mm_err *e);
void mm_dataset_free(mm_dataset *ds);
/* index of the modality named `name`, or -1 */
int mm_dataset_find(const mm_dataset *ds, const char *name);
/* Add modalities (copies the data). mask may be NULL (present where the
 * text is non-empty / always for pixels and features). */
int mm_dataset_add_text(mm_dataset *ds, const char *name, const char *text, const int64_t *off,
                        const uint8_t *mask, mm_err *e);
int mm_dataset_add_image(mm_dataset *ds, const char *name, const uint8_t *pix, int64_t c, int64_t h, int64_t w,
                         const uint8_t *mask, mm_err *e);
int mm_dataset_add_dense(mm_dataset *ds, const char *name, const float *feat, int64_t dim, const uint8_t *mask,
                         mm_err *e);
/* New dataset with rows idx[0..m) (copied). */
mm_dataset *mm_dataset_subset(const mm_dataset *ds, const int64_t *idx, int64_t m, mm_err *e);
/* New dataset whose row r is row idx[r] of parts[part[r]] (part NULL: all
 * of parts[0]), copied; the parts must have the same classes and modalities
 * (the chunks of a stream: a batch across two of them). */
mm_dataset *mm_dataset_gather(const mm_dataset *const *parts, int nparts, const int32_t *part, const int64_t *idx,
                              int64_t m, mm_err *e);
/* Copy with the named modalities marked missing on every row. */
mm_dataset *mm_dataset_drop(const mm_dataset *ds, const char *const *names, int nnames, mm_err *e);
int64_t mm_dataset_present(const mm_dataset *ds, int m); /* rows with modality m */

#endif
