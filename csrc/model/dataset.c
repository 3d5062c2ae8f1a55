/* dataset.c - the dataset object (see dataset.h). */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>

mm_dataset *mm_dataset_new(int64_t n, int64_t nclasses, const int64_t *labels, mm_err *e) {
  if (n < 0 || n > ((int64_t)1 << 40)) {
    mm_errorf(e, MM_EINVAL, "dataset: bad row count %lld", (long long)n);
    return NULL;
  }
  mm_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) goto oom;
  ds->n = n;
  ds->nclasses = nclasses;
  ds->labels = malloc((size_t)(n ? n : 1) * sizeof *ds->labels);
  if (!ds->labels) goto oom;
  for (int64_t i = 0; i < n; i++) {
    int64_t y = labels ? labels[i] : -1;
    if (y < -1 || y >= nclasses) {
      mm_errorf(e, MM_EINVAL, "dataset: label %lld of row %lld is outside 1..%lld", (long long)y + 1,
                (long long)i + 1, (long long)nclasses);
      mm_dataset_free(ds);
      return NULL;
    }
    ds->labels[i] = y;
  }
  return ds;
oom:
  mm_dataset_free(ds);
  mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
  return NULL;
}

static void mod_free(mm_modality *m) {
  free(m->mask);
  free(m->text);
  free(m->off);
  free(m->cache_ids);
  free(m->cache_off);
  free(m->pix);
  free(m->feat);
  memset(m, 0, sizeof *m);
}

void mm_dataset_free(mm_dataset *ds) {
  if (!ds) return;
  for (int i = 0; i < ds->k; i++) mod_free(&ds->mods[i]);
  free(ds->labels);
  free(ds);
}

int mm_dataset_find(const mm_dataset *ds, const char *name) {
  for (int i = 0; i < ds->k; i++)
    if (strcmp(ds->mods[i].name, name) == 0) return i;
  return -1;
}

int64_t mm_dataset_present(const mm_dataset *ds, int m) {
  int64_t c = 0;
  for (int64_t i = 0; i < ds->n; i++) c += ds->mods[m].mask[i] != 0;
  return c;
}

static mm_modality *new_mod(mm_dataset *ds, const char *name, int kind, mm_err *e) {
  if (!name || !*name || strlen(name) >= MM_MODNAME) {
    mm_errorf(e, MM_EINVAL, "dataset: modality name must have 1..%d bytes", MM_MODNAME - 1);
    return NULL;
  }
  if (mm_dataset_find(ds, name) >= 0) {
    mm_errorf(e, MM_EINVAL, "dataset: modality '%s' exists already", name);
    return NULL;
  }
  if (ds->k >= MM_MAXMOD) {
    mm_errorf(e, MM_EINVAL, "dataset: at most %d modalities", MM_MAXMOD);
    return NULL;
  }
  mm_modality *m = &ds->mods[ds->k];
  memset(m, 0, sizeof *m);
  strcpy(m->name, name);
  m->kind = kind;
  m->mask = calloc((size_t)(ds->n ? ds->n : 1), 1);
  if (!m->mask) {
    mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
    return NULL;
  }
  return m;
}

int mm_dataset_add_text(mm_dataset *ds, const char *name, const char *text, const int64_t *off,
                        const uint8_t *mask, mm_err *e) {
  for (int64_t i = 0; i < ds->n; i++)
    if (off[i] > off[i + 1] || off[i] < 0)
      return mm_errorf(e, MM_EINVAL, "dataset: text offsets of '%s' are not increasing", name);
  mm_modality *m = new_mod(ds, name, MM_MOD_TEXT, e);
  if (!m) return e->code;
  int64_t bytes = off[ds->n];
  m->text = malloc((size_t)bytes + 1);
  m->off = malloc((size_t)(ds->n + 1) * sizeof *m->off);
  if (!m->text || !m->off) {
    mod_free(m);
    return mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
  }
  memcpy(m->text, text, (size_t)bytes);
  m->text[bytes] = '\0';
  memcpy(m->off, off, (size_t)(ds->n + 1) * sizeof *m->off);
  for (int64_t i = 0; i < ds->n; i++) m->mask[i] = mask ? (mask[i] != 0) : (off[i + 1] > off[i]);
  ds->k++;
  return MM_OK;
}

int mm_dataset_add_image(mm_dataset *ds, const char *name, const uint8_t *pix, int64_t c, int64_t h, int64_t w,
                         const uint8_t *mask, mm_err *e) {
  if (c < 1 || c > 4 || h < 1 || w < 1 || h > 4096 || w > 4096)
    return mm_errorf(e, MM_EINVAL, "dataset: bad image size %lldx%lldx%lld", (long long)c, (long long)h,
                     (long long)w);
  mm_modality *m = new_mod(ds, name, MM_MOD_IMAGE, e);
  if (!m) return e->code;
  size_t bytes = (size_t)(ds->n * c * h * w);
  m->pix = malloc(bytes ? bytes : 1);
  if (!m->pix) {
    mod_free(m);
    return mm_errorf(e, MM_ENOMEM, "dataset: out of memory (%zu bytes of pixels)", bytes);
  }
  if (bytes) memcpy(m->pix, pix, bytes);
  m->c = c, m->h = h, m->w = w;
  for (int64_t i = 0; i < ds->n; i++) m->mask[i] = mask ? (mask[i] != 0) : 1;
  ds->k++;
  return MM_OK;
}

int mm_dataset_add_dense(mm_dataset *ds, const char *name, const float *feat, int64_t dim, const uint8_t *mask,
                         mm_err *e) {
  if (dim < 1 || dim > (1 << 24)) return mm_errorf(e, MM_EINVAL, "dataset: bad feature size %lld", (long long)dim);
  mm_modality *m = new_mod(ds, name, MM_MOD_DENSE, e);
  if (!m) return e->code;
  size_t cnt = (size_t)(ds->n * dim);
  m->feat = malloc((cnt ? cnt : 1) * sizeof *m->feat);
  if (!m->feat) {
    mod_free(m);
    return mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
  }
  if (cnt) memcpy(m->feat, feat, cnt * sizeof *m->feat);
  m->dim = dim;
  for (int64_t i = 0; i < ds->n; i++) {
    uint8_t p = mask ? (mask[i] != 0) : 1;
    if (p)
      for (int64_t j = 0; j < dim; j++) {
        float v = feat[i * dim + j];
        if (!(v == v) || v > 3.4e38f || v < -3.4e38f) {
          mod_free(m);
          return mm_errorf(e, MM_ENUM, "dataset: feature '%s' of row %lld is not finite (column %lld)", name,
                           (long long)i + 1, (long long)j + 1);
        }
      }
    m->mask[i] = p;
  }
  ds->k++;
  return MM_OK;
}

/* parts share parts[0]'s classes and modalities (names, kinds, sizes) */
static int same_layout(const mm_dataset *const *parts, int nparts, mm_err *e) {
  const mm_dataset *a = parts[0];
  for (int p = 1; p < nparts; p++) {
    const mm_dataset *b = parts[p];
    int same = b->nclasses == a->nclasses && b->k == a->k;
    for (int k = 0; same && k < a->k; k++) {
      const mm_modality *x = &a->mods[k], *y = &b->mods[k];
      same = strcmp(x->name, y->name) == 0 && x->kind == y->kind && x->dim == y->dim && x->c == y->c &&
             x->h == y->h && x->w == y->w;
    }
    if (!same) return mm_errorf(e, MM_EINVAL, "dataset: part %d has other classes or modalities than part 1", p + 1);
  }
  return MM_OK;
}

mm_dataset *mm_dataset_gather(const mm_dataset *const *parts, int nparts, const int32_t *part, const int64_t *idx,
                              int64_t cnt, mm_err *e) {
  if (nparts < 1 || same_layout(parts, nparts, e)) {
    if (nparts < 1) mm_errorf(e, MM_EINVAL, "dataset: nothing to gather from");
    return NULL;
  }
  for (int64_t r = 0; r < cnt; r++) {
    int p = part ? part[r] : 0;
    if (p < 0 || p >= nparts) {
      mm_errorf(e, MM_EINVAL, "dataset: part %d is outside 1..%d", p + 1, nparts);
      return NULL;
    }
    if (idx[r] < 0 || idx[r] >= parts[p]->n) {
      mm_errorf(e, MM_EINVAL, "dataset: row %lld is outside 1..%lld", (long long)idx[r] + 1, (long long)parts[p]->n);
      return NULL;
    }
  }
#define SRC(r) (parts[part ? part[r] : 0])
  const mm_dataset *ds = parts[0];
  mm_dataset *o = calloc(1, sizeof *o);
  if (!o) goto oom;
  o->n = cnt;
  o->nclasses = ds->nclasses;
  o->labels = malloc((size_t)(cnt ? cnt : 1) * sizeof *o->labels);
  if (!o->labels) goto oom;
  for (int64_t r = 0; r < cnt; r++) o->labels[r] = SRC(r)->labels[idx[r]];
  for (int k = 0; k < ds->k; k++) {
    const mm_modality *s = &ds->mods[k];
    mm_modality *m = &o->mods[k];
    o->k = k + 1;
    memcpy(m->name, s->name, MM_MODNAME);
    m->kind = s->kind;
    m->mask = malloc((size_t)(cnt ? cnt : 1));
    if (!m->mask) goto oom;
    for (int64_t r = 0; r < cnt; r++) m->mask[r] = SRC(r)->mods[k].mask[idx[r]];
    if (s->kind == MM_MOD_TEXT) {
      int64_t bytes = 0;
      for (int64_t r = 0; r < cnt; r++) bytes += SRC(r)->mods[k].off[idx[r] + 1] - SRC(r)->mods[k].off[idx[r]];
      m->text = malloc((size_t)bytes + 1);
      m->off = malloc((size_t)(cnt + 1) * sizeof *m->off);
      if (!m->text || !m->off) goto oom;
      int64_t p = 0;
      for (int64_t r = 0; r < cnt; r++) {
        const mm_modality *sr = &SRC(r)->mods[k];
        int64_t l = sr->off[idx[r] + 1] - sr->off[idx[r]];
        m->off[r] = p;
        memcpy(m->text + p, sr->text + sr->off[idx[r]], (size_t)l);
        p += l;
      }
      m->off[cnt] = p;
      m->text[p] = '\0';
      /* keep the cached ids too when every part has them under one key */
      int cached = 1;
      for (int q = 0; q < nparts; q++)
        cached &= parts[q]->mods[k].cache_ids && parts[q]->mods[k].cache_key == s->cache_key;
      if (cached) {
        int64_t ni = 0;
        for (int64_t r = 0; r < cnt; r++) ni += SRC(r)->mods[k].cache_off[idx[r] + 1] - SRC(r)->mods[k].cache_off[idx[r]];
        m->cache_ids = malloc((size_t)(ni ? ni : 1) * sizeof *m->cache_ids);
        m->cache_off = malloc((size_t)(cnt + 1) * sizeof *m->cache_off);
        if (!m->cache_ids || !m->cache_off) goto oom;
        int64_t q = 0;
        for (int64_t r = 0; r < cnt; r++) {
          const mm_modality *sr = &SRC(r)->mods[k];
          int64_t a = sr->cache_off[idx[r]], b = sr->cache_off[idx[r] + 1];
          m->cache_off[r] = q;
          memcpy(m->cache_ids + q, sr->cache_ids + a, (size_t)(b - a) * sizeof *m->cache_ids);
          q += b - a;
        }
        m->cache_off[cnt] = q;
        m->cache_key = s->cache_key;
      }
    } else if (s->kind == MM_MOD_IMAGE) {
      int64_t per = s->c * s->h * s->w;
      m->c = s->c, m->h = s->h, m->w = s->w;
      m->pix = malloc((size_t)(cnt * per) + 1);
      if (!m->pix) goto oom;
      for (int64_t r = 0; r < cnt; r++) memcpy(m->pix + r * per, SRC(r)->mods[k].pix + idx[r] * per, (size_t)per);
    } else {
      m->dim = s->dim;
      m->feat = malloc(((size_t)(cnt * s->dim) + 1) * sizeof *m->feat);
      if (!m->feat) goto oom;
      for (int64_t r = 0; r < cnt; r++)
        memcpy(m->feat + r * s->dim, SRC(r)->mods[k].feat + idx[r] * s->dim, (size_t)s->dim * sizeof *m->feat);
    }
  }
#undef SRC
  return o;
oom:
  mm_dataset_free(o);
  mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
  return NULL;
}

mm_dataset *mm_dataset_subset(const mm_dataset *ds, const int64_t *idx, int64_t cnt, mm_err *e) {
  return mm_dataset_gather(&ds, 1, NULL, idx, cnt, e);
}

mm_dataset *mm_dataset_drop(const mm_dataset *ds, const char *const *names, int nnames, mm_err *e) {
  for (int i = 0; i < nnames; i++)
    if (mm_dataset_find(ds, names[i]) < 0) {
      mm_errorf(e, MM_EINVAL, "dataset: no modality '%s' to drop", names[i]);
      return NULL;
    }
  int64_t *idx = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *idx);
  if (!idx) {
    mm_errorf(e, MM_ENOMEM, "dataset: out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < ds->n; i++) idx[i] = i;
  mm_dataset *o = mm_dataset_subset(ds, idx, ds->n, e);
  free(idx);
  if (!o) return NULL;
  for (int i = 0; i < nnames; i++) memset(o->mods[mm_dataset_find(o, names[i])].mask, 0, (size_t)o->n);
  return o;
}
