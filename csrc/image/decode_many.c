/* decode_many.c - a list of images decoded into fixed-size slots over
 * threads (see image.h: mm_image_decode_many). */
#include <stdlib.h>

#include "../core/parallel.h"
#include "image.h"

typedef struct { /* a thread's first failure */
  int rc;
  int64_t row;
  mm_err e;
} fail;

typedef struct {
  const char *const *src;
  const size_t *len;
  int bytes, w, h, fit;
  uint8_t *pix;
  fail *fails; /* one per thread */
} job;

static void decode_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  job *j = ctx;
  fail *f = &j->fails[tid];
  size_t per = (size_t)j->w * (size_t)j->h * 3;
  for (int64_t i = i0; i < i1; i++) {
    if (!j->src[i]) continue;
    uint8_t *dst = j->pix + (size_t)i * per;
    f->rc = j->bytes ? mm_image_decode_into(j->src[i], j->len[i], "<bytes>", j->w, j->h, j->fit, dst, &f->e)
                     : mm_image_load_into(j->src[i], j->w, j->h, j->fit, dst, &f->e);
    if (f->rc) {
      f->row = i;
      return;
    }
  }
}

int mm_image_decode_many(const char *const *src, const size_t *len, int64_t n, int bytes, int out_w, int out_h,
                         int fit, uint8_t *pix, int64_t *row, mm_err *e) {
  *row = -1;
  if (n <= 0) return MM_OK;
  int nt = mm_parallel_threads(n);
  fail *fails = calloc((size_t)nt, sizeof *fails);
  if (!fails) return mm_errorf(e, MM_ENOMEM, "out of memory decoding %lld images", (long long)n);
  job j = {src, len, bytes, out_w, out_h, fit, pix, fails};
  mm_parallel_for(n, decode_range, &j);
  int rc = MM_OK;
  for (int t = 0; t < nt && !rc; t++)
    if (fails[t].rc) {
      rc = fails[t].rc;
      *row = fails[t].row;
      if (e) *e = fails[t].e;
    }
  free(fails);
  return rc;
}
