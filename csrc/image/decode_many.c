/* decode_many.c - a list of images decoded into fixed-size slots over
 * threads (see image.h: mm_image_decode_many, mm_image_decode_each). */
#include <stdlib.h>

#include "../core/parallel.h"
#include "image.h"

typedef struct { /* a thread's failures: its first only, or every one */
  int rc;
  int64_t row;
  mm_err e;
  mm_image_failure *list;
  int64_t n, cap;
  int oom; /* the list could not grow */
} fails;

typedef struct {
  const char *const *src;
  const size_t *len;
  int bytes, w, h, fit, each;
  int64_t max_bytes;
  uint8_t *pix;
  fails *per; /* one per thread */
} job;

static int keep(fails *f, int64_t row, int status, const mm_err *e) {
  if (f->n == f->cap) {
    int64_t cap = f->cap ? f->cap * 2 : 16;
    mm_image_failure *l = realloc(f->list, (size_t)cap * sizeof *l);
    if (!l) return 0;
    f->list = l, f->cap = cap;
  }
  mm_image_failure *x = &f->list[f->n++];
  x->row = row, x->status = status, x->e = *e;
  return 1;
}

static void decode_range(void *ctx, int64_t i0, int64_t i1, int tid) {
  job *j = ctx;
  fails *f = &j->per[tid];
  size_t per = (size_t)j->w * (size_t)j->h * 3;
  for (int64_t i = i0; i < i1; i++) {
    if (!j->src[i]) continue;
    uint8_t *dst = j->pix + (size_t)i * per;
    int status = MM_IMAGE_UNDECODABLE;
    mm_err e = {0};
    int rc = j->bytes ? mm_image_decode_into(j->src[i], j->len[i], "<bytes>", j->w, j->h, j->fit, dst, &e)
                      : mm_image_load_into(j->src[i], j->max_bytes, j->w, j->h, j->fit, dst, &status, &e);
    if (!rc) continue;
    if (!j->each) {
      f->rc = rc, f->row = i, f->e = e;
      return;
    }
    if (rc == MM_ENOMEM || !keep(f, i, status, &e)) { /* out of memory: the whole call fails */
      f->oom = 1;
      f->rc = MM_ENOMEM, f->row = i, f->e = e;
      return;
    }
  }
}

static int run(job *j, int64_t n, mm_err *e, fails **per, int *nt) {
  *nt = mm_parallel_threads(n);
  *per = calloc((size_t)*nt, sizeof **per);
  if (!*per) return mm_errorf(e, MM_ENOMEM, "out of memory decoding %lld images", (long long)n);
  j->per = *per;
  mm_parallel_for(n, decode_range, j);
  return MM_OK;
}

int mm_image_decode_many(const char *const *src, const size_t *len, int64_t n, int bytes, int out_w, int out_h,
                         int fit, int64_t max_bytes, uint8_t *pix, int64_t *row, mm_err *e) {
  *row = -1;
  if (n <= 0) return MM_OK;
  job j = {src, len, bytes, out_w, out_h, fit, 0, max_bytes, pix, NULL};
  fails *per;
  int nt;
  int rc = run(&j, n, e, &per, &nt);
  if (rc) return rc;
  for (int t = 0; t < nt && !rc; t++)
    if (per[t].rc) {
      rc = per[t].rc;
      *row = per[t].row;
      if (e) *e = per[t].e;
    }
  free(per);
  return rc;
}

int mm_image_decode_each(const char *const *src, const size_t *len, int64_t n, int bytes, int out_w, int out_h,
                         int fit, int64_t max_bytes, uint8_t *pix, mm_image_failure **out, int64_t *nout, mm_err *e) {
  *out = NULL;
  *nout = 0;
  if (n <= 0) return MM_OK;
  job j = {src, len, bytes, out_w, out_h, fit, 1, max_bytes, pix, NULL};
  fails *per;
  int nt;
  int rc = run(&j, n, e, &per, &nt);
  if (rc) return rc;
  int64_t total = 0;
  for (int t = 0; t < nt && !rc; t++) {
    total += per[t].n;
    if (per[t].oom) {
      rc = mm_errorf(e, MM_ENOMEM, "out of memory decoding %lld images (row %lld)", (long long)n,
                     (long long)per[t].row + 1);
    }
  }
  mm_image_failure *all = NULL;
  if (!rc && total) {
    all = malloc((size_t)total * sizeof *all);
    if (!all) rc = mm_errorf(e, MM_ENOMEM, "out of memory listing %lld failed images", (long long)total);
  }
  int64_t k = 0;
  for (int t = 0; t < nt; t++) { /* thread t's rows come before thread t+1's: the list is in row order */
    for (int64_t i = 0; all && i < per[t].n; i++) all[k++] = per[t].list[i];
    free(per[t].list);
  }
  free(per);
  if (rc) {
    free(all);
    return rc;
  }
  *out = all;
  *nout = k;
  return MM_OK;
}
