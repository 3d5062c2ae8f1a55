/* weights.c - a model's weights in and out: one parameter from outside, the
 * model file (safetensors: the caller's JSON header, then every parameter's
 * float32 bytes in model order), pretrained word vectors into the text
 * embedding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tensor.h"
#include "../io/safetensors.h"
#include "model_internal.h"

int mm_model_set_param(mm_model *M, int i, const float *x, int64_t n, mm_err *e) {
  if (i < 0 || i >= M->nparams) return mm_errorf(e, MM_EINVAL, "model: no parameter %d", i + 1);
  mm_param *p = &M->params[i];
  if (n != p->count)
    return mm_errorf(e, MM_EINVAL, "model: %s needs %lld values, got %lld", p->name, (long long)p->count, (long long)n);
  memcpy(p->w, x, (size_t)n * sizeof(float));
  mm_model_weights_changed(M);
  return MM_OK;
}

int mm_model_save(const mm_model *M, const char *path, const char *header, size_t hlen, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "save: the model is not trained yet");
  const void **chunks = malloc((size_t)(M->nparams ? M->nparams : 1) * sizeof *chunks);
  size_t *lens = malloc((size_t)(M->nparams ? M->nparams : 1) * sizeof *lens);
  int rc = MM_OK;
  if (!chunks || !lens) rc = mm_errorf(e, MM_ENOMEM, "save: out of memory");
  for (int i = 0; !rc && i < M->nparams; i++) chunks[i] = M->params[i].w, lens[i] = (size_t)M->params[i].count * 4;
  if (!rc) rc = mm_st_write(path, header, hlen, chunks, lens, M->nparams, e);
  free(chunks);
  free(lens);
  return rc;
}

/* the entry of parameter p describes it and lies inside the data */
static int check_entry(const mm_param *p, const mm_weight_entry *t, uint64_t dlen, const char *where, mm_err *e) {
  if (!t) return mm_errorf(e, MM_EFORMAT, "%s: tensor '%s' is missing", where, p->name);
  if (!t->dtype || strcmp(t->dtype, "F32") != 0)
    return mm_errorf(e, MM_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32", where, p->name,
                     t->dtype ? t->dtype : "(none)");
  if (t->ndim != p->ndim)
    return mm_errorf(e, MM_EFORMAT, "%s: tensor '%s' must have %d dimensions", where, p->name, p->ndim);
  for (int d = 0; d < p->ndim; d++)
    if (t->shape[d] != p->shape[d])
      return mm_errorf(e, MM_EFORMAT, "%s: tensor '%s' dimension %d must be %lld", where, p->name, d + 1,
                       (long long)p->shape[d]);
  if (!t->has_offsets) return mm_errorf(e, MM_EFORMAT, "%s: tensor '%s' needs data_offsets {begin, end}", where, p->name);
  if (t->begin < 0 || t->end < t->begin || (uint64_t)t->end > dlen || (t->end - t->begin) != p->count * 4)
    return mm_errorf(e, MM_EFORMAT,
                     "%s: tensor '%s' has data_offsets [%lld, %lld] (needs %lld bytes inside %llu data bytes)", where,
                     p->name, (long long)t->begin, (long long)t->end, (long long)(p->count * 4),
                     (unsigned long long)dlen);
  return MM_OK;
}

int mm_model_load_weights(mm_model *M, const mm_weight_entry *const *entries, const uint8_t *data, uint64_t dlen,
                          const char *where, mm_err *e) {
  if (!M->built) return mm_errorf(e, MM_EINVAL, "%s: model not built", where);
  uint64_t total = 0;
  for (int i = 0; i < M->nparams; i++) {
    int rc = check_entry(&M->params[i], entries[i], dlen, where, e);
    if (rc) return rc;
    total += (uint64_t)(entries[i]->end - entries[i]->begin);
  }
  if (total != dlen)
    return mm_errorf(e, MM_EFORMAT, "%s: the tensors cover %llu bytes but the file holds %llu data bytes", where,
                     (unsigned long long)total, (unsigned long long)dlen);
  mm_model_weights_changed(M);
  for (int i = 0; i < M->nparams; i++) {
    mm_param *p = &M->params[i];
    memcpy(p->w, data + entries[i]->begin, (size_t)p->count * 4);
    for (int64_t j = 0; j < p->count; j++)
      if (!isfinite(p->w[j]))
        return mm_errorf(e, MM_ENUM, "%s: tensor '%s' holds a non-finite value at element %lld", where, p->name,
                         (long long)j + 1);
  }
  return MM_OK;
}

int mm_model_load_vectors(mm_model *M, const char *path, const char *format, mm_vec_stats *st, mm_err *e) {
  int f = mm_vec_format_parse(format ? format : "auto");
  if (f < 0) return mm_errorf(e, MM_EINVAL, "text.vectors_format: unknown format '%s'", format);
  int ti = -1;
  for (int i = 0; i < M->k; i++)
    if (M->mod[i].enc == MM_ENC_TEXT) ti = i;
  if (!M->built || ti < 0) return mm_errorf(e, MM_EINVAL, "text.vectors: the model has no text encoder");
  int rc = mm_vectors_probe(path, (mm_vec_format)f, st, e);
  if (rc) return rc;
  if (st->dim != M->dim)
    return mm_errorf(e, MM_EINVAL, "%s: vectors have %lld dimensions, the model's dim is %lld (set dim = %lld)", path,
                     (long long)st->dim, (long long)M->dim, (long long)st->dim);
  if (!M->voc) return mm_errorf(e, MM_EINVAL, "text.vectors: the model has no vocabulary");
  int64_t V = mm_vocab_size(M->voc);
  uint8_t *found = calloc((size_t)(V ? V : 1), 1);
  if (!found) return mm_errorf(e, MM_ENOMEM, "text.vectors: out of memory");
  mm_tensor out = {0};
  int64_t shape[2] = {V ? V : 1, M->dim};
  rc = mm_tensor_alloc(&out, 2, shape, e);
  if (!rc) rc = mm_vectors_load(path, (mm_vec_format)f, M->voc, &out, found, st, e);
  if (!rc) { /* rows of the words found; the others keep their values */
    float *emb = M->params[M->mod[ti].p_emb].w;
    mm_model_weights_changed(M);
    for (int64_t i = 0; i < V; i++)
      if (found[i]) memcpy(emb + i * M->dim, out.data + i * M->dim, (size_t)M->dim * sizeof(float));
  }
  mm_tensor_free(&out);
  free(found);
  return rc;
}
