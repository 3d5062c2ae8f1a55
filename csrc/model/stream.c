/* stream.c - the stream object (stream.h): its settings, the streams derived
 * from it, and an epoch's threads around the ring of chunk slots.
 *
 * The ring: slot seq % queue holds chunk seq. The reader fills slots in
 * order (waiting for the one it needs to be free), a worker takes the
 * oldest raw slot and builds it, the consumer waits for the slot of the
 * next chunk it wants. One mutex guards the slot states; building and
 * reading run outside it on data that only one thread owns at a time (a
 * slot is owned by the thread that moved it to its current state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../image/image.h"
#include "stream_internal.h"

double mm_now_seconds(void); /* train.c */

void mm_stream_spec_init(mm_stream_spec *s) {
  memset(s, 0, sizeof *s);
  s->format = -1;
  s->image_size = 32;
  s->image_fit = MM_FIT_STRETCH;
  s->queue = 4;
  s->shuffle_buffer = 32768;
  s->workers = 1;
}

/* ---- settings ------------------------------------------------------------------------ */

static uint64_t fnv64(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

int mm_stream_class_find(const mm_stream *s, const char *name, size_t len) {
  const st_shared *sh = s->sh;
  for (uint64_t j = fnv64(name, len) & (sh->nchash - 1);; j = (j + 1) & (sh->nchash - 1)) {
    int32_t c = sh->chash[j];
    if (!c) return -1;
    const char *k = sh->classes[c - 1];
    if (strlen(k) == len && memcmp(k, name, len) == 0) return c - 1;
  }
}

static void shared_free(st_shared *sh) {
  if (!sh || --sh->refs > 0) return;
  for (int i = 0; i < sh->nfiles; i++) free(sh->files[i].path), free(sh->files[i].dir);
  free(sh->files);
  free(sh->label), free(sh->text), free(sh->image), free(sh->row);
  for (int f = 0; f < sh->nfeat; f++) {
    st_feature *ft = &sh->feat[f];
    mm_npy_map_close(&ft->map);
    free(ft->npy);
    free(ft->missing);
    for (int c = 0; c < ft->ncols; c++) free(ft->colnames[c]);
    free(ft->colnames);
  }
  for (int64_t c = 0; c < sh->nclasses; c++) free(sh->classes[c]);
  free(sh->classes);
  free(sh->chash);
  free(sh);
}

static char *dup_or_null(const char *s, int *oom) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *oom = 1;
  return d;
}

/* the class names (copied) and their hash table */
static int set_classes(st_shared *sh, char **names, int64_t n, mm_err *e) {
  sh->classes = names;
  sh->nclasses = n;
  uint64_t cap = 16;
  while (cap < (uint64_t)n * 2) cap *= 2;
  sh->chash = calloc(cap, sizeof *sh->chash);
  if (!sh->chash) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
  sh->nchash = cap;
  for (int64_t c = 0; c < n; c++) {
    size_t len = strlen(names[c]);
    uint64_t j = fnv64(names[c], len) & (cap - 1);
    for (; sh->chash[j]; j = (j + 1) & (cap - 1))
      if (strcmp(sh->classes[sh->chash[j] - 1], names[c]) == 0)
        return mm_errorf(e, MM_EINVAL, "stream: class '%s' listed twice", names[c]);
    sh->chash[j] = (int32_t)(c + 1);
  }
  return MM_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* the table columns every stream of these settings reads; filters add theirs */
static void base_columns(mm_stream *s) {
  st_shared *sh = s->sh;
  s->ncols = 0;
  s->cols[s->ncols++] = sh->label;
  s->c_text = sh->text ? (s->cols[s->ncols] = sh->text, s->ncols++) : -1;
  s->c_image = sh->image ? (s->cols[s->ncols] = sh->image, s->ncols++) : -1;
  s->c_row = sh->row ? (s->cols[s->ncols] = sh->row, s->ncols++) : -1;
  for (int f = 0; f < sh->nfeat; f++) {
    st_feature *ft = &sh->feat[f];
    ft->col0 = s->ncols;
    for (int c = 0; c < ft->ncols; c++) s->cols[s->ncols++] = ft->colnames[c];
  }
}

static mm_stream *stream_new(st_shared *sh, mm_err *e) {
  mm_stream *s = calloc(1, sizeof *s);
  if (!s) {
    mm_errorf(e, MM_ENOMEM, "stream: out of memory");
    return NULL;
  }
  s->sh = sh;
  sh->refs++;
  s->ranks = 1, s->block = 1;
  s->last_rows = -1;
  atomic_init(&s->stop, 0);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv_free, NULL);
  pthread_cond_init(&s->cv_raw, NULL);
  pthread_cond_init(&s->cv_ready, NULL);
  base_columns(s);
  return s;
}

static void filter_free(st_filter *f) {
  free(f->name);
  for (int i = 0; i < f->ntest; i++) free(f->test[i]);
  for (int i = 0; i < f->nvalid; i++) free(f->valid[i]);
  free(f->test);
  free(f->valid);
  memset(f, 0, sizeof *f);
}

void mm_stream_free(mm_stream *s) {
  if (!s) return;
  mm_stream_end(s);
  for (int64_t i = 0; i < s->nslots; i++) mm_stream_rows_free(&s->slots[i].raw);
  free(s->slots);
  mm_stream_rows_free(&s->cur);
  free(s->iota);
  for (int f = 0; f < s->nfilt; f++) filter_free(&s->filt[f]);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv_free);
  pthread_cond_destroy(&s->cv_raw);
  pthread_cond_destroy(&s->cv_ready);
  shared_free(s->sh);
  free(s);
}

/* One pass over the files before the first epoch: the rows of every file
 * (where the rows of a row-order .npy start) and, when no classes are
 * given, every label. */
static int scan(mm_stream *s, int want_labels, mm_err *e) {
  st_shared *sh = s->sh;
  char **names = NULL;
  int64_t n = 0, cap = 0;
  uint64_t hcap = 1024;
  int64_t *hash = want_labels ? malloc(hcap * sizeof *hash) : NULL; /* index into names + 1 */
  int rc = want_labels && !hash ? mm_errorf(e, MM_ENOMEM, "stream: out of memory") : MM_OK;
  if (hash) memset(hash, 0, hcap * sizeof *hash);
  int64_t base = 0;
  for (int f = 0; f < sh->nfiles && !rc; f++) {
    const char *col = sh->label;
    mm_table *t = mm_table_open(sh->files[f].path, sh->files[f].format, &col, 1, e);
    if (!t) {
      rc = e->code;
      break;
    }
    int64_t rows = 0;
    for (;;) {
      int got = 0;
      mm_err re = {0};
      int r = mm_table_next(t, &got, &re);
      if (r && (mm_table_broken(t) || !sh->skip_bad)) {
        *e = re;
        rc = r;
        break;
      }
      if (!r && !got) break;
      rows++;
      size_t len;
      const char *lab = r ? "" : mm_table_value(t, 0, &len);
      if (r || !want_labels || len == 0) continue;
      uint64_t h = fnv64(lab, len), j = h & (hcap - 1);
      for (; hash[j]; j = (j + 1) & (hcap - 1)) {
        const char *k = names[hash[j] - 1];
        if (strlen(k) == len && memcmp(k, lab, len) == 0) break;
      }
      if (hash[j]) continue;
      if (n >= 100000) {
        rc = mm_errorf(e, MM_EINVAL, "%s: more than 100000 distinct labels in column '%s'", sh->files[f].path, col);
        break;
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        char **nn = realloc(names, (size_t)cap * sizeof *nn);
        if (!nn) {
          rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
          break;
        }
        names = nn;
      }
      if (!(names[n] = strndup(lab, len))) {
        rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
        break;
      }
      hash[j] = ++n;
      if ((uint64_t)n * 2 > hcap) { /* grow and rehash */
        uint64_t nc = hcap * 2;
        int64_t *nh = calloc(nc, sizeof *nh);
        if (!nh) {
          rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
          break;
        }
        for (int64_t i = 0; i < n; i++) {
          uint64_t q = fnv64(names[i], strlen(names[i])) & (nc - 1);
          while (nh[q]) q = (q + 1) & (nc - 1);
          nh[q] = i + 1;
        }
        free(hash);
        hash = nh;
        hcap = nc;
      }
    }
    mm_table_close(t);
    sh->files[f].rows = rows;
    sh->files[f].base = base;
    base += rows;
  }
  free(hash);
  if (!rc && want_labels) {
    if (n < 1) rc = mm_errorf(e, MM_EINVAL, "%s: no row has a label in column '%s'", sh->files[0].path, sh->label);
    else qsort(names, (size_t)n, sizeof *names, cmp_str);
    if (!rc) {
      rc = set_classes(sh, names, n, e); /* the settings own the names from here */
      names = NULL;
    }
  }
  for (int64_t i = 0; names && i < n; i++) free(names[i]);
  free(names);
  for (int f = 0; !rc && f < sh->nfeat; f++) {
    const st_feature *ft = &sh->feat[f];
    if (ft->npy && !sh->row && ft->map.rows != base)
      rc = mm_errorf(e, MM_EINVAL, "%s: holds %lld rows, the manifests %lld (one row per manifest row, or a 'row' column)",
                     ft->npy, (long long)ft->map.rows, (long long)base);
  }
  return rc;
}

static int add_mod(st_shared *sh, const char *name, int kind, int64_t dim, mm_err *e) {
  for (int i = 0; i < sh->nmods; i++)
    if (strcmp(sh->mods[i].name, name) == 0) return mm_errorf(e, MM_EINVAL, "stream: two modalities named '%s'", name);
  if (sh->nmods >= MM_MAXMOD) return mm_errorf(e, MM_EINVAL, "stream: at most %d modalities", MM_MAXMOD);
  sh->mods[sh->nmods++] = (mm_stream_modality){name, kind, dim};
  return MM_OK;
}

static int open_features(st_shared *sh, const mm_stream_spec *sp, mm_err *e) {
  if (sp->nfeatures < 0 || sp->nfeatures > MM_STREAM_MAXFEAT)
    return mm_errorf(e, MM_EINVAL, "stream: at most %d feature modalities", MM_STREAM_MAXFEAT);
  for (int f = 0; f < sp->nfeatures; f++) {
    const mm_stream_feature *in = &sp->features[f];
    st_feature *ft = &sh->feat[sh->nfeat++];
    if (!in->name || !*in->name || strlen(in->name) >= MM_MODNAME)
      return mm_errorf(e, MM_EINVAL, "stream: feature names must have 1..%d bytes", MM_MODNAME - 1);
    strcpy(ft->name, in->name);
    if (in->npy) {
      if (!(ft->npy = strdup(in->npy))) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
      int rc = mm_npy_map_open(in->npy, &ft->map, e);
      if (rc) return rc;
      ft->dim = ft->map.cols;
      if (in->nmissing > 0) {
        ft->missing = malloc((size_t)in->nmissing * sizeof *ft->missing);
        if (!ft->missing) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
        memcpy(ft->missing, in->missing, (size_t)in->nmissing * sizeof *ft->missing);
        ft->nmissing = in->nmissing;
        qsort(ft->missing, (size_t)ft->nmissing, sizeof *ft->missing, cmp_i64);
      }
    } else {
      if (in->ncols < 1) return mm_errorf(e, MM_EINVAL, "stream: feature '%s' needs an .npy file or columns", in->name);
      if (sh->nvals + in->ncols > MM_STREAM_MAXCOLS)
        return mm_errorf(e, MM_EINVAL, "stream: at most %d feature columns in all", MM_STREAM_MAXCOLS);
      ft->colnames = calloc((size_t)in->ncols, sizeof *ft->colnames);
      if (!ft->colnames) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
      ft->ncols = in->ncols;
      for (int c = 0; c < in->ncols; c++)
        if (!(ft->colnames[c] = strdup(in->cols[c]))) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
      ft->dim = in->ncols;
      ft->val0 = sh->nvals;
      sh->nvals += in->ncols;
    }
    int rc = add_mod(sh, ft->name, MM_MOD_DENSE, ft->dim, e);
    if (rc) return rc;
  }
  return MM_OK;
}

static int check_spec(const mm_stream_spec *sp, mm_err *e) {
  if (sp->npaths < 1) return mm_errorf(e, MM_EINVAL, "stream: no files to read");
  if (!sp->label || !*sp->label) return mm_errorf(e, MM_EINVAL, "stream: the label column is required");
  if (sp->image_size < 1 || sp->image_size > 1024) return mm_errorf(e, MM_EINVAL, "stream: image_size must be in 1..1024");
  if (sp->image_fit != MM_FIT_STRETCH && sp->image_fit != MM_FIT_CROP) return mm_errorf(e, MM_EINVAL, "stream: bad image fit");
  if (sp->queue < 1 || sp->queue > 64) return mm_errorf(e, MM_EINVAL, "stream: queue must be in 1..64 chunks");
  if (sp->workers < 0 || sp->workers > 16) return mm_errorf(e, MM_EINVAL, "stream: workers must be in 0..16");
  if (sp->chunk < 0 || sp->chunk > (1 << 20)) return mm_errorf(e, MM_EINVAL, "stream: chunk must be in 1..2^20 rows");
  if (sp->shuffle_buffer < 0 || sp->shuffle_buffer > ((int64_t)1 << 26))
    return mm_errorf(e, MM_EINVAL, "stream: shuffle_buffer must be in 0..2^26 rows");
  if (sp->classes && (sp->nclasses < 1 || sp->nclasses > 100000))
    return mm_errorf(e, MM_EINVAL, "stream: 1..100000 classes");
  if (sp->format < -1 || sp->format >= MM_TABLE_FORMATS) return mm_errorf(e, MM_EINVAL, "stream: unknown format");
  return MM_OK;
}

mm_stream *mm_stream_open(const mm_stream_spec *sp, mm_err *e) {
  if (check_spec(sp, e)) return NULL;
  st_shared *sh = calloc(1, sizeof *sh);
  mm_stream *s = NULL;
  if (!sh) {
    mm_errorf(e, MM_ENOMEM, "stream: out of memory");
    return NULL;
  }
  int oom = 0, rc = MM_OK;
  sh->files = calloc((size_t)sp->npaths, sizeof *sh->files);
  if (!sh->files) oom = 1;
  for (int i = 0; !oom && i < sp->npaths; i++) {
    st_file *f = &sh->files[sh->nfiles++];
    f->path = dup_or_null(sp->paths[i], &oom);
    const char *slash = strrchr(sp->paths[i], '/');
    f->dir = slash ? strndup(sp->paths[i], (size_t)(slash - sp->paths[i])) : strdup(".");
    if (!f->dir) oom = 1;
    f->format = sp->format >= 0 ? sp->format : mm_table_format_of(sp->paths[i]);
    f->rows = -1;
  }
  sh->label = dup_or_null(sp->label, &oom);
  sh->text = dup_or_null(sp->text, &oom);
  sh->image = dup_or_null(sp->image, &oom);
  sh->row = dup_or_null(sp->row, &oom);
  if (oom) rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
  sh->image_size = sp->image_size, sh->image_fit = sp->image_fit;
  sh->keep_unlabelled = sp->keep_unlabelled, sh->skip_bad = sp->skip_bad;
  sh->queue = sp->queue, sh->shuffle_buffer = sp->shuffle_buffer, sh->workers = sp->workers;
  if (!rc && sh->text) rc = add_mod(sh, "text", MM_MOD_TEXT, 0, e);
  if (!rc && sh->image) rc = add_mod(sh, "image", MM_MOD_IMAGE, sh->image_size, e);
  if (!rc) rc = open_features(sh, sp, e);
  if (!rc && sp->classes) {
    char **names = calloc((size_t)sp->nclasses, sizeof *names);
    if (!names) rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
    for (int64_t c = 0; !rc && c < sp->nclasses; c++) {
      if (!sp->classes[c] || !*sp->classes[c]) rc = mm_errorf(e, MM_EINVAL, "stream: class %lld has no name", (long long)c + 1);
      else if (!(names[c] = strdup(sp->classes[c]))) rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
    }
    if (rc && names) {
      for (int64_t c = 0; c < sp->nclasses; c++) free(names[c]);
      free(names);
    } else if (!rc) {
      rc = set_classes(sh, names, sp->nclasses, e); /* the shared settings own names from here */
    }
  }
  /* rows per chunk: 2048, fewer when pixels and features pass 16 MB */
  int64_t rowbytes = 16 + (sh->image ? 3 * sh->image_size * sh->image_size : 0);
  for (int f = 0; f < sh->nfeat; f++) rowbytes += 4 * sh->feat[f].dim;
  sh->chunk = sp->chunk ? sp->chunk : ((int64_t)16 << 20) / rowbytes;
  if (!sp->chunk && sh->chunk > 2048) sh->chunk = 2048;
  if (sh->chunk < 1) sh->chunk = 1;
  if (!rc) s = stream_new(sh, e); /* holds the settings from here on */
  if (!s) {
    if (!rc) rc = e->code;
    sh->refs = 1;
    shared_free(sh);
    return NULL;
  }
  int row_order = 0;
  for (int f = 0; f < sh->nfeat; f++) row_order |= sh->feat[f].npy && !sh->row;
  if (!sh->classes || row_order) rc = scan(s, !sh->classes, e);
  if (rc) {
    mm_stream_free(s);
    return NULL;
  }
  return s;
}

/* ---- derived streams --------------------------------------------------------------- */

static mm_stream *stream_clone(const mm_stream *s, mm_err *e) {
  mm_stream *c = stream_new(s->sh, e);
  if (!c) return NULL;
  c->rank = s->rank, c->ranks = s->ranks, c->block = s->block, c->by_files = s->by_files, c->dropped = s->dropped;
  c->last_rows = -1;
  for (int f = 0; f < s->nfilt; f++) {
    const st_filter *a = &s->filt[f];
    st_filter *b = &c->filt[c->nfilt++];
    *b = *a;
    b->name = strdup(a->name);
    b->test = calloc((size_t)(a->ntest ? a->ntest : 1), sizeof *b->test);
    b->valid = calloc((size_t)(a->nvalid ? a->nvalid : 1), sizeof *b->valid);
    int oom = !b->name || !b->test || !b->valid;
    for (int i = 0; !oom && i < a->ntest; i++) oom = !(b->test[i] = strdup(a->test[i]));
    for (int i = 0; !oom && i < a->nvalid; i++) oom = !(b->valid[i] = strdup(a->valid[i]));
    if (oom) {
      mm_stream_free(c);
      mm_errorf(e, MM_ENOMEM, "stream: out of memory");
      return NULL;
    }
    b->col = c->ncols;
    c->cols[c->ncols++] = b->name;
  }
  return c;
}

static char **dup_list(const char *const *v, int n, int *oom) {
  char **d = calloc((size_t)(n ? n : 1), sizeof *d);
  if (!d) *oom = 1;
  for (int i = 0; d && i < n; i++)
    if (!(d[i] = strdup(v[i]))) *oom = 1;
  return d;
}

int mm_stream_split_parts(const mm_stream *s, const mm_stream_split *sp, mm_stream *out[3], mm_err *e) {
  out[0] = out[1] = out[2] = NULL;
  if (s->nfilt >= MM_STREAM_MAXFILTER) return mm_errorf(e, MM_EINVAL, "stream: at most %d splits of splits", MM_STREAM_MAXFILTER);
  if (!sp->by == !sp->hash) return mm_errorf(e, MM_EINVAL, "split: give 'by' (a column of part values) or 'hash' (an id column)");
  double sum = 0;
  if (sp->hash)
    for (int i = 0; i < 3; i++) {
      if (!(sp->ratios[i] >= 0) || sp->ratios[i] > 1e12) return mm_errorf(e, MM_EINVAL, "split: ratios must be numbers >= 0");
      sum += sp->ratios[i];
    }
  if (sp->hash && !(sum > 0)) return mm_errorf(e, MM_EINVAL, "split: ratios sum to 0");
  for (int p = 0; p < 3; p++) {
    mm_stream *c = stream_clone(s, e);
    if (!c) goto fail;
    out[p] = c;
    st_filter *f = &c->filt[c->nfilt++];
    int oom = 0;
    f->kind = sp->by ? ST_BY_VALUE : ST_BY_HASH;
    f->name = strdup(sp->by ? sp->by : sp->hash);
    if (!f->name) oom = 1;
    f->test = dup_list(sp->test, sp->by ? sp->ntest : 0, &oom);
    f->valid = dup_list(sp->valid, sp->by ? sp->nvalid : 0, &oom);
    f->ntest = sp->by ? sp->ntest : 0;
    f->nvalid = sp->by ? sp->nvalid : 0;
    for (int i = 0; i < 3; i++) f->ratios[i] = sp->ratios[i];
    f->keep = p;
    if (oom) {
      mm_errorf(e, MM_ENOMEM, "stream: out of memory");
      goto fail;
    }
    f->col = c->ncols;
    c->cols[c->ncols++] = f->name;
  }
  return MM_OK;
fail:
  for (int p = 0; p < 3; p++) mm_stream_free(out[p]), out[p] = NULL;
  return e->code;
}

int mm_stream_hash_part(const char *id, size_t len, const double ratios[3]) {
  double sum = ratios[0] + ratios[1] + ratios[2];
  if (!(sum > 0)) return 0;
  /* FNV-1a's high bits follow the last bytes poorly (ids "p1", "p2", ... would
   * crowd into one part): murmur3's finaliser mixes every bit into them */
  uint64_t h = fnv64(id, len);
  h ^= h >> 33, h *= 0xff51afd7ed558ccdULL, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53ULL, h ^= h >> 33;
  double u = (double)(h >> 11) * 0x1.0p-53 * sum;
  return u < ratios[0] ? 0 : u < ratios[0] + ratios[1] ? 1 : 2;
}

mm_stream *mm_stream_drop(const mm_stream *s, const char *const *names, int n, mm_err *e) {
  uint32_t bits = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < s->sh->nmods && strcmp(s->sh->mods[j].name, names[i]) != 0) j++;
    if (j == s->sh->nmods) {
      mm_errorf(e, MM_EINVAL, "stream: no modality '%s' to drop", names[i]);
      return NULL;
    }
    bits |= 1u << j;
  }
  mm_stream *c = stream_clone(s, e);
  if (c) c->dropped |= bits;
  return c;
}

mm_stream *mm_stream_part(const mm_stream *s, int64_t rank, int64_t ranks, int by_files, int64_t block, mm_err *e) {
  if (block < 1) {
    mm_errorf(e, MM_EINVAL, "stream: a part's blocks must hold at least one row (got %lld)", (long long)block);
    return NULL;
  }
  if (ranks < 1 || rank < 0 || rank >= ranks) {
    mm_errorf(e, MM_EINVAL, "stream: rank %lld is outside 0..%lld", (long long)rank, (long long)ranks - 1);
    return NULL;
  }
  if (s->ranks > 1) {
    mm_errorf(e, MM_EINVAL, "stream: already the part of a rank");
    return NULL;
  }
  if (by_files && s->sh->nfiles < ranks) {
    mm_errorf(e, MM_EINVAL, "stream: %d files for %lld ranks (give every rank a file, or part by rows)",
              s->sh->nfiles, (long long)ranks);
    return NULL;
  }
  mm_stream *c = stream_clone(s, e);
  if (c) c->rank = rank, c->ranks = ranks, c->by_files = by_files, c->block = block;
  return c;
}

void mm_stream_part_of(const mm_stream *s, int64_t *rank, int64_t *ranks, int *by_files, int64_t *block) {
  *rank = s->rank, *ranks = s->ranks, *by_files = s->by_files, *block = s->block;
}

/* ---- facts ------------------------------------------------------------------------- */

int64_t mm_stream_nclasses(const mm_stream *s) { return s->sh->nclasses; }
const char *mm_stream_class(const mm_stream *s, int64_t i) {
  return i >= 0 && i < s->sh->nclasses ? s->sh->classes[i] : NULL;
}
int mm_stream_nfiles(const mm_stream *s) { return s->sh->nfiles; }
const char *mm_stream_file(const mm_stream *s, int i) { return i >= 0 && i < s->sh->nfiles ? s->sh->files[i].path : NULL; }

int mm_stream_modalities(const mm_stream *s, mm_stream_modality out[MM_MAXMOD]) {
  memcpy(out, s->sh->mods, (size_t)s->sh->nmods * sizeof *out);
  return s->sh->nmods;
}

mm_dataset *mm_stream_template(const mm_stream *s, mm_err *e) {
  const st_shared *sh = s->sh;
  mm_dataset *ds = mm_dataset_new(0, sh->nclasses, NULL, e);
  int64_t off = 0;
  int rc = ds ? MM_OK : e->code;
  for (int i = 0; !rc && i < sh->nmods; i++) {
    const mm_stream_modality *m = &sh->mods[i];
    if (m->kind == MM_MOD_TEXT) rc = mm_dataset_add_text(ds, m->name, "", &off, NULL, e);
    else if (m->kind == MM_MOD_IMAGE) rc = mm_dataset_add_image(ds, m->name, NULL, 3, m->dim, m->dim, NULL, e);
    else rc = mm_dataset_add_dense(ds, m->name, NULL, m->dim, NULL, e);
  }
  if (rc) {
    mm_dataset_free(ds);
    return NULL;
  }
  return ds;
}

/* ---- the epoch's threads ------------------------------------------------------------- */

static void *worker_main(void *arg) {
  mm_stream *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    st_slot *best = NULL;
    for (int64_t i = 0; i < s->nslots; i++) {
      st_slot *sl = &s->slots[i];
      if (sl->state == SLOT_RAW && (!best || sl->seq < best->seq)) best = sl;
    }
    if (best && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
      best->state = SLOT_BUSY;
      pthread_mutex_unlock(&s->mu);
      mm_stream_build(s, best);
      pthread_mutex_lock(&s->mu);
      best->state = SLOT_READY;
      pthread_cond_broadcast(&s->cv_ready);
      continue;
    }
    if (atomic_load_explicit(&s->stop, memory_order_relaxed) || s->reader_done) break;
    pthread_cond_wait(&s->cv_raw, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int mm_stream_publish(mm_stream *s, int last, int rc, const mm_err *err) {
  pthread_mutex_lock(&s->mu);
  st_slot *sl = &s->slots[s->seq % s->nslots];
  while (!atomic_load_explicit(&s->stop, memory_order_relaxed) && sl->state != SLOT_FREE)
    pthread_cond_wait(&s->cv_free, &s->mu);
  if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  st_rows t = sl->raw; /* the slot takes the rows; the reader goes on in the slot's old buffers */
  sl->raw = s->cur;
  s->cur = t;
  s->cur.n = 0;
  sl->seq = s->seq++;
  sl->last = last;
  sl->rc = rc;
  if (rc) sl->err = *err;
  sl->counts = s->rcounts;
  memset(&s->rcounts, 0, sizeof s->rcounts);
  sl->ds = NULL;
  if (rc || s->sh->workers == 0) { /* the settings, not nworker: the workers may still be starting */
    if (!rc) {
      sl->state = SLOT_BUSY;
      pthread_mutex_unlock(&s->mu);
      mm_stream_build(s, sl);
      pthread_mutex_lock(&s->mu);
    }
    sl->state = SLOT_READY;
    pthread_cond_broadcast(&s->cv_ready);
  } else {
    sl->state = SLOT_RAW;
    pthread_cond_signal(&s->cv_raw);
  }
  if (last) {
    s->reader_done = 1;
    pthread_cond_broadcast(&s->cv_raw);
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void mm_stream_end(mm_stream *s) {
  if (!s->running) return;
  atomic_store(&s->stop, 1);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv_free);
  pthread_cond_broadcast(&s->cv_raw);
  pthread_cond_broadcast(&s->cv_ready);
  pthread_mutex_unlock(&s->mu);
  if (s->reader_started) pthread_join(s->reader, NULL);
  for (int i = 0; i < s->nworker; i++) pthread_join(s->worker[i], NULL);
  s->reader_started = 0;
  s->nworker = 0;
  for (int64_t i = 0; i < s->nslots; i++) {
    mm_dataset_free(s->slots[i].ds);
    s->slots[i].ds = NULL;
    s->slots[i].raw.n = 0;
    s->slots[i].state = SLOT_FREE;
  }
  mm_dataset_free(s->bcur);
  mm_dataset_free(s->bjoin);
  s->bcur = s->bjoin = NULL;
  s->running = 0;
}

int mm_stream_begin(mm_stream *s, const mm_stream_epoch *ep, mm_err *e) {
  mm_stream_end(s);
  const st_shared *sh = s->sh;
  if (!s->slots) {
    s->slots = calloc((size_t)sh->queue, sizeof *s->slots);
    if (!s->slots) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
    s->nslots = sh->queue;
  }
  s->ep = *ep;
  if (!s->ep.want) s->ep.want = ~0u;
  int64_t last = s->last_rows;
  memset(&s->stats, 0, sizeof s->stats);
  s->stats.last_rows = last;
  memset(&s->rcounts, 0, sizeof s->rcounts);
  s->take = s->seq = s->kept = 0;
  s->failed = s->ended = s->reader_done = 0;
  s->bpos = s->bfirst = 0;
  s->cur.n = 0;
  mm_rng_seed(&s->rng, ep->seed);
  atomic_store(&s->stop, 0);
  s->running = 1;
  if (pthread_create(&s->reader, NULL, mm_stream_reader_main, s) != 0) {
    s->running = 0;
    return mm_errorf(e, MM_ENOMEM, "stream: cannot start the reader thread");
  }
  s->reader_started = 1;
  for (int i = 0; i < sh->workers; i++) {
    if (pthread_create(&s->worker[i], NULL, worker_main, s) != 0) {
      mm_stream_end(s);
      return mm_errorf(e, MM_ENOMEM, "stream: cannot start a worker thread");
    }
    s->nworker++;
  }
  return MM_OK;
}

/* ---- the consumer ------------------------------------------------------------------ */

static void add_counts(mm_stream_stats *st, const st_counts *c) {
  st->bad += c->bad;
  st->unlabelled += c->unlabelled;
  st->other += c->other;
  if (!st->first_bad[0] && c->first_bad[0]) memcpy(st->first_bad, c->first_bad, sizeof st->first_bad);
}

int mm_stream_next_chunk(mm_stream *s, mm_dataset **chunk, mm_err *e) {
  *chunk = NULL;
  if (!s->running) return mm_errorf(e, MM_EINVAL, "stream: no epoch is running");
  for (;;) {
    if (s->failed) {
      *e = s->fail;
      return e->code ? e->code : MM_EINVAL;
    }
    if (s->ended) return MM_OK;
    pthread_mutex_lock(&s->mu);
    st_slot *sl = &s->slots[s->take % s->nslots];
    if (!(sl->state == SLOT_READY && sl->seq == s->take)) {
      double t0 = mm_now_seconds();
      while (!(sl->state == SLOT_READY && sl->seq == s->take)) pthread_cond_wait(&s->cv_ready, &s->mu);
      s->stats.wait += mm_now_seconds() - t0;
    }
    mm_dataset *ds = sl->ds;
    int rc = sl->rc, last = sl->last;
    if (rc) s->fail = sl->err;
    st_counts counts = sl->counts;
    sl->ds = NULL;
    sl->raw.n = 0;
    sl->state = SLOT_FREE;
    s->take++;
    pthread_cond_broadcast(&s->cv_free);
    pthread_mutex_unlock(&s->mu);
    add_counts(&s->stats, &counts);
    if (rc) {
      s->failed = 1;
      mm_dataset_free(ds);
      continue;
    }
    if (ds) s->stats.rows += ds->n, s->stats.chunks++;
    if (last) {
      s->ended = 1;
      s->last_rows = s->stats.last_rows = s->stats.rows;
    }
    if (ds && ds->n > 0) {
      *chunk = ds;
      return MM_OK;
    }
    mm_dataset_free(ds);
  }
}

static int ensure_iota(mm_stream *s, int64_t n, mm_err *e) {
  if (n <= s->niota) return MM_OK;
  int64_t *p = realloc(s->iota, (size_t)n * sizeof *p);
  if (!p) return mm_errorf(e, MM_ENOMEM, "stream: out of memory");
  for (int64_t i = s->niota; i < n; i++) p[i] = i;
  s->iota = p;
  s->niota = n;
  return MM_OK;
}

int mm_stream_next_batch(mm_stream *s, int64_t B, mm_stream_batch *b, mm_err *e) {
  memset(b, 0, sizeof *b);
  if (B < 1) return mm_errorf(e, MM_EINVAL, "stream: batch must be >= 1");
  mm_dataset_free(s->bjoin);
  s->bjoin = NULL;
  while (!s->bcur || s->bpos == s->bcur->n) {
    mm_dataset_free(s->bcur);
    s->bcur = NULL;
    s->bpos = 0;
    int rc = mm_stream_next_chunk(s, &s->bcur, e);
    if (rc) return rc;
    if (!s->bcur) return MM_OK; /* the end */
  }
  int rc = ensure_iota(s, (s->bcur->n > B ? s->bcur->n : B), e);
  if (rc) return rc;
  int64_t left = s->bcur->n - s->bpos;
  b->first = s->bfirst;
  if (left >= B) {
    b->ds = s->bcur;
    b->rows = s->iota + s->bpos;
    b->n = B;
    s->bpos += B;
    s->bfirst += B;
    return MM_OK;
  }
  /* the batch runs across chunks: gather its rows into one dataset */
  int np = 1, cap = 4;
  mm_dataset **parts = malloc((size_t)cap * sizeof *parts);
  int32_t *pi = malloc((size_t)B * sizeof *pi);
  int64_t *ri = malloc((size_t)B * sizeof *ri);
  if (!parts || !pi || !ri) rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
  int64_t m = 0;
  if (!rc) {
    parts[0] = s->bcur;
    for (int64_t r = s->bpos; r < s->bcur->n; r++) pi[m] = 0, ri[m++] = r;
  }
  mm_dataset *next = NULL;
  int64_t npos = 0;
  while (!rc && m < B) {
    rc = mm_stream_next_chunk(s, &next, e);
    if (rc || !next) break;
    if (np == cap) {
      mm_dataset **q = realloc(parts, (size_t)(cap *= 2) * sizeof *q);
      if (!q) {
        rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
        mm_dataset_free(next);
        next = NULL;
        break;
      }
      parts = q;
    }
    parts[np] = next;
    int64_t take = next->n < B - m ? next->n : B - m;
    for (int64_t r = 0; r < take; r++) pi[m] = np, ri[m++] = r;
    np++;
    npos = take;
  }
  if (!rc) {
    s->bjoin = mm_dataset_gather((const mm_dataset *const *)parts, np, pi, ri, m, e);
    if (!s->bjoin) rc = e->code;
  }
  /* every part but a last one with rows left is used up */
  mm_dataset *keep = next && npos < next->n ? next : NULL;
  for (int p = 0; parts && p < np; p++)
    if (parts[p] != keep) mm_dataset_free(parts[p]);
  if (parts && !rc) {
    s->bcur = keep;
    s->bpos = keep ? npos : 0;
  } else if (!parts) {
    mm_dataset_free(s->bcur);
    s->bcur = NULL;
  } else {
    mm_dataset_free(keep);
    s->bcur = NULL;
  }
  free(parts);
  free(pi);
  free(ri);
  if (rc) return rc;
  b->ds = s->bjoin;
  b->rows = s->iota;
  b->n = m;
  s->bfirst += m;
  return MM_OK;
}

void mm_stream_stats_get(const mm_stream *s, mm_stream_stats *st) {
  *st = s->stats;
  st->last_rows = s->last_rows;
}

mm_dataset *mm_stream_collect(mm_stream *s, const mm_stream_epoch *ep, mm_err *e) {
  int rc = mm_stream_begin(s, ep, e);
  mm_dataset **parts = NULL, *out = NULL;
  int np = 0, cap = 0;
  int64_t n = 0;
  while (!rc) {
    mm_dataset *ch = NULL;
    rc = mm_stream_next_chunk(s, &ch, e);
    if (rc || !ch) break;
    if (np == cap || np == INT32_MAX) {
      mm_dataset **q = np < INT32_MAX ? realloc(parts, (size_t)(cap = cap ? cap * 2 : 16) * sizeof *q) : NULL;
      if (!q) {
        mm_dataset_free(ch);
        rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory");
        break;
      }
      parts = q;
    }
    parts[np++] = ch;
    n += ch->n;
  }
  mm_stream_end(s);
  int32_t *pi = NULL;
  int64_t *ri = NULL;
  if (!rc && np == 0) {
    out = mm_stream_template(s, e);
    if (!out) rc = e->code;
  } else if (!rc) {
    pi = malloc((size_t)n * sizeof *pi);
    ri = malloc((size_t)n * sizeof *ri);
    if (!pi || !ri) rc = mm_errorf(e, MM_ENOMEM, "stream: out of memory for %lld rows", (long long)n);
    for (int64_t k = 0, p = 0; !rc && p < np; p++)
      for (int64_t r = 0; r < parts[p]->n; r++) pi[k] = (int32_t)p, ri[k++] = r;
    if (!rc && !(out = mm_dataset_gather((const mm_dataset *const *)parts, np, pi, ri, n, e))) rc = e->code;
  }
  for (int p = 0; p < np; p++) mm_dataset_free(parts[p]);
  free(parts);
  free(pi);
  free(ri);
  return rc ? NULL : out;
}
