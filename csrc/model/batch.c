/* batch.c - what a batch reads from a dataset before the encoders run: the
 * binding of the model's modalities to the dataset's (kinds and sizes
 * checked once per call; text tokenised once per dataset and vocabulary),
 * then per batch the labels and the presence masks (with modality dropout
 * while training). */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../text/ngram.h"
#include "model_internal.h"

int mm_batch_cache_text(const mm_model *M, mm_modality *m, int64_t n, mm_err *e) {
  if (m->cache_ids && m->cache_key == M->vocab_key) return MM_OK;
  free(m->cache_ids);
  free(m->cache_off);
  m->cache_ids = m->cache_off = NULL;
  const char **texts = malloc((size_t)(n ? n : 1) * sizeof *texts);
  size_t *lens = malloc((size_t)(n ? n : 1) * sizeof *lens);
  m->cache_off = malloc((size_t)(n + 1) * sizeof *m->cache_off);
  if (!texts || !lens || !m->cache_off) {
    free(texts);
    free(lens);
    return mm_errorf(e, MM_ENOMEM, "model: out of memory");
  }
  for (int64_t r = 0; r < n; r++) {
    texts[r] = m->text + m->off[r];
    lens[r] = m->mask[r] ? (size_t)(m->off[r + 1] - m->off[r]) : 0;
  }
  mm_csr csr;
  mm_csr_init(&csr);
  int rc = mm_vocab_encode(M->voc, texts, lens, n, &csr, e);
  free(texts);
  free(lens);
  if (rc) {
    mm_csr_free(&csr);
    return rc;
  }
  m->cache_ids = malloc((size_t)(csr.nids ? csr.nids : 1) * sizeof *m->cache_ids);
  if (!m->cache_ids) {
    mm_csr_free(&csr);
    return mm_errorf(e, MM_ENOMEM, "model: out of memory");
  }
  if (csr.nids > 0) memcpy(m->cache_ids, csr.ids, (size_t)csr.nids * sizeof *m->cache_ids);
  memcpy(m->cache_off, csr.offsets, (size_t)(n + 1) * sizeof *m->cache_off);
  mm_csr_free(&csr);
  m->cache_key = M->vocab_key;
  return MM_OK;
}

/* the data's modality m can feed encoder c */
static int check_kind(const mm_modcfg *c, const mm_modality *m, mm_err *e) {
  if (c->enc == MM_ENC_TEXT) {
    if (m->kind != MM_MOD_TEXT) return mm_errorf(e, MM_EINVAL, "model: modality '%s' of the data is not text", c->name);
  } else if (c->enc == MM_ENC_CNN || c->enc == MM_ENC_HIST) {
    if (m->kind != MM_MOD_IMAGE)
      return mm_errorf(e, MM_EINVAL, "model: modality '%s' of the data holds no pixels (encoder %s)", c->name,
                       mm_enc_name(c->enc));
    if (m->c != 3) return mm_errorf(e, MM_EINVAL, "model: images of '%s' must be RGB", c->name);
    if (c->enc == MM_ENC_CNN && (m->h != c->img_h || m->w != c->img_w))
      return mm_errorf(e, MM_EINVAL, "model: images of '%s' are %lldx%lld; the model was built for %lldx%lld",
                       c->name, (long long)m->h, (long long)m->w, (long long)c->img_h, (long long)c->img_w);
  } else if (m->kind != MM_MOD_DENSE || m->dim != c->in_dim) {
    return mm_errorf(e, MM_EINVAL, "model: modality '%s' must hold feature rows of size %lld (data: %s %lld)",
                     c->name, (long long)c->in_dim, m->kind == MM_MOD_DENSE ? "rows of size" : "kind",
                     (long long)(m->kind == MM_MOD_DENSE ? m->dim : m->kind));
  }
  return MM_OK;
}

int mm_batch_bind(const mm_model *M, mm_dataset *ds, ws *w, int train, mm_err *e) {
  for (int i = 0; i < M->k; i++) {
    const mm_modcfg *c = &M->mod[i];
    int j = mm_dataset_find(ds, c->name);
    w->m[i].dsi = j;
    if (j < 0) {
      if (train) return mm_errorf(e, MM_EINVAL, "model: the training data has no modality '%s'", c->name);
      continue;
    }
    mm_modality *m = &ds->mods[j];
    int rc = check_kind(c, m, e);
    int fresh = c->enc == MM_ENC_TEXT && !(m->cache_ids && m->cache_key == M->vocab_key);
    if (!rc && fresh) rc = mm_batch_cache_text(M, m, ds->n, e);
    if (rc) return rc;
#ifdef __GLIBC__
    /* the encoder's temporaries are free again: give their pages back
     * before the training loop (they would count in its peak RSS). Not
     * for small sets: predict binds every new batch, and trimming then
     * costs page faults on every call (26 us of a 150 us single post) */
    if (fresh && ds->n >= 4096) malloc_trim(0);
#endif
  }
  return MM_OK;
}

void mm_batch_masks(mm_model *M, const mm_dataset *ds, ws *w, const int64_t *rows, int64_t n, int train) {
  const int k = M->k;
  for (int64_t b = 0; b < n; b++) {
    w->y[b] = ds->labels[rows[b]];
    w->ok[b] = w->y[b] >= 0;
    int any = 0, anyorig = 0;
    uint8_t keep[MM_MAXMOD];
    for (int i = 0; i < k; i++) {
      int dsi = w->m[i].dsi;
      uint8_t p = dsi >= 0 ? ds->mods[dsi].mask[rows[b]] : 0;
      if (p && M->mod[i].enc == MM_ENC_TEXT) { /* a text whose bag is empty is absent */
        const mm_modality *dm = &ds->mods[dsi];
        p = dm->cache_off[rows[b] + 1] > dm->cache_off[rows[b]];
      }
      anyorig |= p;
      keep[i] = p;
      if (p && train && M->mod[i].drop > 0 && mm_rng_uniform(&M->rng) < M->mod[i].drop) p = 0;
      w->mm[i][b] = p;
      any |= p;
    }
    if (!any && anyorig) /* never drop every modality of a sample */
      for (int i = 0; i < k; i++) w->mm[i][b] = w->mm[i][b] | keep[i];
    w->none[b] = !anyorig;
  }
}
