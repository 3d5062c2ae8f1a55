/* stream_chunk.c - a chunk of raw rows into an mm_dataset (stream.h), on a
 * worker thread: images decoded at the stream's size, feature rows copied
 * out of the memory-mapped .npy files (their pages given back once read)
 * or from the numbers the reader parsed, the bad rows left out (skip_bad)
 * or the first of them reported, then the consumer's preparation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "stream_internal.h"

static int is_missing(const st_feature *ft, int64_t row) {
  int64_t lo = 0, hi = ft->nmissing;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (ft->missing[mid] < row) lo = mid + 1;
    else hi = mid;
  }
  return lo < ft->nmissing && ft->missing[lo] == row;
}

typedef struct chunk {
  mm_stream *s;
  st_slot *sl;
  int64_t n;
  uint8_t *ok;
  int failed; /* a bad row without skip_bad: sl->rc / err hold it */
} chunk;

/* row i is bad: left out and counted, or the chunk's error */
static void row_bad(chunk *c, int64_t i, const char *what) {
  const st_rows *r = &c->sl->raw;
  mm_err e = {0};
  mm_errorf(&e, MM_EINVAL, "%s:%lld: %s", c->s->sh->files[r->file[i]].path, (long long)r->line[i], what);
  c->ok[i] = 0;
  if (c->s->sh->skip_bad) {
    mm_stream_count_bad(&c->sl->counts, &e);
  } else if (!c->failed) {
    c->failed = 1;
    c->sl->rc = e.code;
    c->sl->err = e;
  }
}

static int stopping(const mm_stream *s) { return atomic_load_explicit(&s->stop, memory_order_relaxed); }

static int decode_images(chunk *c, uint8_t *pix) {
  const st_shared *sh = c->s->sh;
  const st_rows *r = &c->sl->raw;
  int64_t S = sh->image_size, per = S * S * 3;
  char *path = NULL;
  size_t cap = 0;
  for (int64_t i = 0; i < c->n && !c->failed; i++) {
    if (stopping(c->s)) break;
    size_t len = (size_t)(r->ioff[i + 1] - r->ioff[i]);
    if (!len) continue;
    const char *p = r->ibuf + r->ioff[i], *dir = sh->files[r->file[i]].dir;
    size_t need = strlen(dir) + len + 2;
    if (need > cap) {
      char *q = realloc(path, need);
      if (!q) {
        free(path);
        return -1;
      }
      path = q, cap = need;
    }
    if (p[0] == '/') snprintf(path, cap, "%.*s", (int)len, p);
    else snprintf(path, cap, "%s/%.*s", dir, (int)len, p);
    mm_err ie = {0};
    if (mm_image_load_into(path, 0, (int)S, (int)S, sh->image_fit, pix + i * per, NULL, &ie)) row_bad(c, i, ie.msg);
  }
  free(path);
  return 0;
}

/* feature modality fi of every row into f [n, dim] and its mask m */
static void copy_features(chunk *c, const st_feature *ft, float *f, uint8_t *m) {
  const st_rows *r = &c->sl->raw;
  int64_t lo = INT64_MAX, hi = -1;
  for (int64_t i = 0; i < c->n && !c->failed; i++) {
    float *dst = f + i * ft->dim;
    m[i] = 0;
    if (!c->ok[i]) continue;
    if (!ft->npy) {
      memcpy(dst, r->vals + i * c->s->sh->nvals + ft->val0, (size_t)ft->dim * sizeof *dst);
      m[i] = 1;
      continue;
    }
    int64_t row = r->npyrow[i];
    if (ft->nmissing && is_missing(ft, row)) {
      memset(dst, 0, (size_t)ft->dim * sizeof *dst);
      continue;
    }
    if (row >= ft->map.rows) {
      char what[MM_ERRLEN];
      snprintf(what, sizeof what, "row %lld is outside the %lld rows of %s", (long long)row, (long long)ft->map.rows,
               ft->npy);
      row_bad(c, i, what);
      continue;
    }
    mm_npy_map_row(&ft->map, row, dst);
    lo = row < lo ? row : lo;
    hi = row > hi ? row : hi;
    for (int64_t j = 0; j < ft->dim; j++)
      if (!isfinite(dst[j])) {
        char what[MM_ERRLEN];
        snprintf(what, sizeof what, "feature '%s' (row %lld of %s) is not finite (column %lld)", ft->name,
                 (long long)row, ft->npy, (long long)j + 1);
        row_bad(c, i, what);
        break;
      }
    m[i] = 1;
  }
  /* the rows are copied: their pages need not stay in this process */
  if (hi >= lo) mm_npy_map_release(&ft->map, lo, hi + 1);
}

void mm_stream_build(mm_stream *s, st_slot *sl) {
  const st_shared *sh = s->sh;
  const st_rows *r = &sl->raw;
  chunk c = {s, sl, r->n, NULL, 0};
  int64_t n = r->n, S = sh->image_size, per = 3 * S * S;
  uint32_t want = s->ep.want;
  int mi = 0, has_text = 0, has_image = 0;
  if (sh->text) has_text = (want >> mi++) & 1;
  if (sh->image) has_image = (want >> mi++) & 1;
  int first_feat = mi;
  uint8_t *pix = NULL, *pmask = NULL, *fm[MM_STREAM_MAXFEAT] = {0};
  float *fb[MM_STREAM_MAXFEAT] = {0};
  int64_t *lab = NULL, *toff = NULL;
  char *text = NULL;
  mm_dataset *ds = NULL;
  mm_err e = {0};
  int rc = MM_OK;
  c.ok = malloc((size_t)(n ? n : 1));
  if (!c.ok) goto oom;
  memset(c.ok, 1, (size_t)(n ? n : 1));
  if (has_image) {
    pix = calloc((size_t)(n * per) + 1, 1);
    if (!pix || decode_images(&c, pix)) goto oom;
  }
  for (int fi = 0; fi < sh->nfeat && !c.failed; fi++) {
    if (!((want >> (first_feat + fi)) & 1)) continue;
    fb[fi] = malloc(((size_t)(n * sh->feat[fi].dim) + 1) * sizeof(float));
    fm[fi] = malloc((size_t)(n ? n : 1));
    if (!fb[fi] || !fm[fi]) goto oom;
    copy_features(&c, &sh->feat[fi], fb[fi], fm[fi]);
  }
  if (c.failed || stopping(s)) goto done;
  /* the rows kept, in order (bad ones left out) */
  int64_t m = 0;
  lab = malloc((size_t)(n ? n : 1) * sizeof *lab);
  toff = malloc((size_t)(n + 1) * sizeof *toff);
  text = malloc((size_t)(n > 0 ? r->toff[n] : 0) + 1); /* an empty chunk (a file without rows) has no offsets */
  pmask = malloc((size_t)(n ? n : 1));
  if (!lab || !toff || !text || !pmask) goto oom;
  toff[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!c.ok[i]) continue;
    int64_t tl = r->toff[i + 1] - r->toff[i];
    memcpy(text + toff[m], r->tbuf + r->toff[i], (size_t)tl);
    toff[m + 1] = toff[m] + tl;
    lab[m] = r->label[i];
    pmask[m] = r->ioff[i + 1] > r->ioff[i];
    if (pix && m != i) memmove(pix + m * per, pix + i * per, (size_t)per);
    for (int fi = 0; fi < sh->nfeat; fi++)
      if (fb[fi] && m != i) {
        int64_t d = sh->feat[fi].dim;
        memmove(fb[fi] + m * d, fb[fi] + i * d, (size_t)d * sizeof(float));
        fm[fi][m] = fm[fi][i];
      }
    m++;
  }
  ds = mm_dataset_new(m, sh->nclasses, lab, &e);
  rc = ds ? MM_OK : e.code;
  if (!rc && has_text) rc = mm_dataset_add_text(ds, "text", text, toff, NULL, &e);
  if (!rc && has_image) rc = mm_dataset_add_image(ds, "image", pix, 3, S, S, pmask, &e);
  for (int fi = 0; !rc && fi < sh->nfeat; fi++)
    if (fb[fi]) rc = mm_dataset_add_dense(ds, sh->feat[fi].name, fb[fi], sh->feat[fi].dim, fm[fi], &e);
  for (int k = 0; !rc && k < sh->nmods; k++) /* dropped modalities: absent on every row */
    if ((s->dropped >> k) & 1) {
      int j = mm_dataset_find(ds, sh->mods[k].name);
      if (j >= 0) memset(ds->mods[j].mask, 0, (size_t)(m ? m : 1));
    }
  if (!rc && s->ep.prepare) rc = s->ep.prepare(s->ep.prepare_ud, ds, &e);
  if (rc) {
    sl->rc = rc;
    sl->err = e;
    mm_dataset_free(ds);
    ds = NULL;
  }
  sl->ds = ds;
  goto done;
oom:
  sl->rc = mm_errorf(&sl->err, MM_ENOMEM, "stream: out of memory building a chunk of %lld rows", (long long)n);
done:
  free(c.ok);
  free(pix);
  free(pmask);
  for (int fi = 0; fi < MM_STREAM_MAXFEAT; fi++) free(fb[fi]), free(fm[fi]);
  free(lab);
  free(toff);
  free(text);
}
