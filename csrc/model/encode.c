/* encode.c - the modality encoders, one function each: text (mean embedding
 * bag over word + n-gram ids, sparse gradient rows), feature rows (copied),
 * the HSV colour histogram (no parameters); the CNN is encode_cnn.c. h of
 * modality i is [n, out_dim]; a modality the data lacks encodes to zeros. */
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "model_internal.h"

static int encode_text(mm_model *M, const mm_modality *dm, modws *m, const mm_modcfg *c, const int64_t *rows,
                       int64_t n, int train, mm_err *e) {
  int64_t need = 0;
  for (int64_t b = 0; b < n; b++) need += dm->cache_off[rows[b] + 1] - dm->cache_off[rows[b]];
  if (need > m->ids.cap) {
    int64_t *nv = realloc(m->ids.v, (size_t)need * sizeof *nv);
    if (!nv) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
    m->ids.v = nv;
    int64_t *ns = realloc(m->ids.sl, (size_t)need * sizeof *ns);
    if (!ns) return mm_errorf(e, MM_ENOMEM, "model: out of memory");
    m->ids.sl = ns;
    m->ids.cap = need;
  }
  /* room for the compact gradient rows the backward may add */
  if (train && mm_params_reserve_rows(&M->params[c->p_emb], need, e)) return e->code;
  m->ids.n = 0;
  m->offs[0] = 0;
  for (int64_t b = 0; b < n; b++) {
    int64_t r = rows[b];
    for (int64_t q = dm->cache_off[r]; q < dm->cache_off[r + 1]; q++) m->ids.v[m->ids.n++] = dm->cache_ids[q];
    m->offs[b + 1] = m->ids.n;
  }
  mm_embedding_bag_forward(M->params[c->p_emb].w, M->dim, m->ids.v, m->offs, n, m->h);
  return MM_OK;
}

static void encode_features(const mm_modality *dm, modws *m, int64_t E, const int64_t *rows, int64_t n) {
  for (int64_t b = 0; b < n; b++) memcpy(m->h + b * E, dm->feat + rows[b] * E, (size_t)E * sizeof(float));
}

static int encode_histogram(const mm_modality *dm, modws *m, const mm_modcfg *c, const int64_t *rows, int64_t n,
                            mm_err *e) {
  int64_t per = dm->h * dm->w * 3, E = c->out_dim;
  for (int64_t b = 0; b < n; b++) {
    int rc = mm_image_hsv_histogram_rgb8(dm->pix + rows[b] * per, dm->h * dm->w, c->hb, c->sb, c->vb, m->h + b * E, e);
    if (rc) return rc;
  }
  return MM_OK;
}

int mm_encode_forward(mm_model *M, const mm_dataset *ds, ws *w, int i, const int64_t *rows, int64_t n, int train,
                      mm_err *e) {
  const mm_modcfg *c = &M->mod[i];
  modws *m = &w->m[i];
  if (m->dsi < 0) {
    memset(m->h, 0, (size_t)(n * c->out_dim) * sizeof(float));
    return MM_OK;
  }
  const mm_modality *dm = &ds->mods[m->dsi];
  switch (c->enc) {
  case MM_ENC_TEXT:
    return encode_text(M, dm, m, c, rows, n, train, e);
  case MM_ENC_FEAT:
    encode_features(dm, m, c->out_dim, rows, n);
    return MM_OK;
  case MM_ENC_HIST:
    return encode_histogram(dm, m, c, rows, n, e);
  case MM_ENC_CNN:
    return mm_encode_cnn_forward(M, dm, w, i, rows, n, train, e);
  default:
    return mm_errorf(e, MM_EINVAL, "model: encoder of modality '%s' is not resolved", c->name);
  }
}

/* the same sums as a backward into the dense table, row for row */
static void encode_text_backward(mm_model *M, modws *m, const mm_modcfg *c, int64_t n) {
  mm_param *p = &M->params[c->p_emb];
  mm_params_slot_rows(p, m->ids.v, m->ids.n, m->ids.sl);
  mm_embedding_bag_backward(m->ids.sl, m->offs, n, M->dim, m->gh, p->gc);
}

void mm_encode_backward(mm_model *M, ws *w, int i, int64_t n) {
  const mm_modcfg *c = &M->mod[i];
  if (w->m[i].dsi < 0) return;
  if (c->enc == MM_ENC_TEXT) encode_text_backward(M, &w->m[i], c, n);
  if (c->enc == MM_ENC_CNN) mm_encode_cnn_backward(M, w, i, n);
}
