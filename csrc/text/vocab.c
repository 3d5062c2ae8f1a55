/* vocab.c - token counter and vocabulary (open-addressing string table). */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* -- string table: strings in one arena, index by open addressing ---------- */
typedef struct strtab {
  char *arena;
  size_t alen, acap;
  size_t *off;
  size_t *len;
  uint32_t *hash;
  int64_t *count;
  int64_t n, cap;
  int64_t *slots; /* -1 empty, else index */
  uint64_t nslots;
} strtab;

static void st_free(strtab *t) {
  free(t->arena);
  free(t->off);
  free(t->len);
  free(t->hash);
  free(t->count);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

static int st_rehash(strtab *t, uint64_t nslots, mm_err *e) {
  int64_t *s = malloc(nslots * sizeof *s);
  if (!s) return mm_errorf(e, MM_ENOMEM, "vocab: out of memory (%llu slots)", (unsigned long long)nslots);
  for (uint64_t i = 0; i < nslots; i++) s[i] = -1;
  for (int64_t i = 0; i < t->n; i++) {
    uint64_t j = t->hash[i] & (nslots - 1);
    while (s[j] >= 0) j = (j + 1) & (nslots - 1);
    s[j] = i;
  }
  free(t->slots);
  t->slots = s;
  t->nslots = nslots;
  return MM_OK;
}

static int64_t st_find(const strtab *t, const char *w, size_t n, uint32_t h) {
  if (!t->nslots) return -1;
  uint64_t j = h & (t->nslots - 1);
  for (;;) {
    int64_t i = t->slots[j];
    if (i < 0) return -1;
    if (t->hash[i] == h && t->len[i] == n && memcmp(t->arena + t->off[i], w, n) == 0) return i;
    j = (j + 1) & (t->nslots - 1);
  }
}

/* add a new string (caller checked it is absent); returns its index or -1 */
static int64_t st_add(strtab *t, const char *w, size_t n, uint32_t h, mm_err *e) {
  if (t->n == t->cap) {
    int64_t cap = t->cap ? t->cap * 2 : 1024;
    size_t *o = realloc(t->off, (size_t)cap * sizeof *o);
    if (o) t->off = o;
    size_t *l = o ? realloc(t->len, (size_t)cap * sizeof *l) : NULL;
    if (l) t->len = l;
    uint32_t *hh = l ? realloc(t->hash, (size_t)cap * sizeof *hh) : NULL;
    if (hh) t->hash = hh;
    int64_t *c = hh ? realloc(t->count, (size_t)cap * sizeof *c) : NULL;
    if (c) t->count = c;
    if (!c) {
      mm_errorf(e, MM_ENOMEM, "vocab: out of memory (%lld words)", (long long)cap);
      return -1;
    }
    t->cap = cap;
  }
  if (t->alen + n + 1 > t->acap) {
    size_t cap = t->acap ? t->acap : 4096;
    while (cap < t->alen + n + 1) cap *= 2;
    char *a = realloc(t->arena, cap);
    if (!a) {
      mm_errorf(e, MM_ENOMEM, "vocab: out of memory (%zu bytes)", cap);
      return -1;
    }
    t->arena = a;
    t->acap = cap;
  }
  if ((uint64_t)(t->n + 1) * 2 > t->nslots) {
    if (st_rehash(t, t->nslots ? t->nslots * 2 : 2048, e)) return -1;
  }
  int64_t i = t->n++;
  memcpy(t->arena + t->alen, w, n);
  t->arena[t->alen + n] = 0;
  t->off[i] = t->alen;
  t->len[i] = n;
  t->hash[i] = h;
  t->count[i] = 0;
  t->alen += n + 1;
  uint64_t j = h & (t->nslots - 1);
  while (t->slots[j] >= 0) j = (j + 1) & (t->nslots - 1);
  t->slots[j] = i;
  return i;
}

/* -- counter ----------------------------------------------------------------- */
struct mm_counter {
  strtab t;
  mm_tokens scratch;
};

mm_counter *mm_counter_new(mm_err *e) {
  mm_counter *c = calloc(1, sizeof *c);
  if (!c) mm_errorf(e, MM_ENOMEM, "vocab: out of memory");
  return c;
}

void mm_counter_free(mm_counter *c) {
  if (!c) return;
  st_free(&c->t);
  mm_tokens_free(&c->scratch);
  free(c);
}

int mm_counter_add(mm_counter *c, const char *w, size_t n, mm_err *e) {
  uint32_t h = mm_token_hash(w, n);
  int64_t i = st_find(&c->t, w, n, h);
  if (i < 0) {
    i = st_add(&c->t, w, n, h, e);
    if (i < 0) return e ? e->code : MM_ENOMEM;
  }
  c->t.count[i]++;
  return MM_OK;
}

int mm_counter_add_text(mm_counter *c, const char *s, size_t n, const mm_tokenize_opts *opts, mm_err *e) {
  mm_tokens_clear(&c->scratch);
  int rc = mm_tokenize_buffer(s, n, opts, &c->scratch, e);
  if (rc) return rc;
  for (int64_t i = 0; i < c->scratch.n; i++) {
    rc = mm_counter_add(c, c->scratch.buf + c->scratch.off[i], c->scratch.len[i], e);
    if (rc) return rc;
  }
  return MM_OK;
}

int64_t mm_counter_size(const mm_counter *c) { return c->t.n; }

static int count_desc(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  return (a < b) - (a > b);
}

int mm_counter_prune(mm_counter *c, int64_t keep, mm_err *e) {
  strtab *t = &c->t;
  if (keep < 0) keep = 0;
  if (t->n <= keep) return MM_OK;
  int64_t *sorted = malloc((size_t)t->n * sizeof *sorted);
  if (!sorted) return mm_errorf(e, MM_ENOMEM, "vocab: out of memory");
  memcpy(sorted, t->count, (size_t)t->n * sizeof *sorted);
  qsort(sorted, (size_t)t->n, sizeof *sorted, count_desc);
  int64_t min = sorted[keep] + 1; /* the (keep+1)-th count goes, and every token as rare */
  free(sorted);
  strtab kept;
  memset(&kept, 0, sizeof kept);
  for (int64_t i = 0; i < t->n; i++) {
    if (t->count[i] < min) continue;
    int64_t j = st_add(&kept, t->arena + t->off[i], t->len[i], t->hash[i], e);
    if (j < 0) {
      st_free(&kept);
      return e ? e->code : MM_ENOMEM;
    }
    kept.count[j] = t->count[i];
  }
  st_free(t);
  *t = kept;
  return MM_OK;
}

/* -- vocabulary -------------------------------------------------------------- */
struct mm_vocab {
  strtab t; /* index == id */
  mm_vocab_opts o;
};

const char *const mm_vocab_unk_names[] = {"drop", "unk", NULL};

mm_vocab_opts mm_vocab_defaults(void) {
  mm_vocab_opts o;
  memset(&o, 0, sizeof o);
  o.min_count = 1;
  o.max_size = 0;
  o.unk = 1;
  o.ngrams = 1;
  o.buckets = -1;
  o.tok = mm_tokenize_defaults();
  return o;
}

#define MM_MAX_NGRAMS 16
#define MM_MAX_BUCKETS ((int64_t)1 << 31)

static int check_opts(mm_vocab_opts *o, mm_err *e) {
  if (o->buckets == -1) o->buckets = o->ngrams > 1 ? MM_VOCAB_BUCKETS : 0;
  if (o->min_count < 1) return mm_errorf(e, MM_EINVAL, "vocab: min_count must be >= 1 (got %lld)", (long long)o->min_count);
  if (o->max_size < 0) return mm_errorf(e, MM_EINVAL, "vocab: max_size must be >= 0 (got %lld)", (long long)o->max_size);
  if (o->ngrams < 1 || o->ngrams > MM_MAX_NGRAMS)
    return mm_errorf(e, MM_EINVAL, "vocab: ngrams must be in 1..%d (got %lld)", MM_MAX_NGRAMS, (long long)o->ngrams);
  if (o->buckets < 0 || o->buckets > MM_MAX_BUCKETS)
    return mm_errorf(e, MM_EINVAL, "vocab: buckets must be in 0..%lld (got %lld)", (long long)MM_MAX_BUCKETS,
                     (long long)o->buckets);
  if (o->ngrams > 1 && o->buckets == 0)
    return mm_errorf(e, MM_EINVAL, "vocab: ngrams = %lld needs buckets >= 1", (long long)o->ngrams);
  o->unk = o->unk ? 1 : 0;
  return MM_OK;
}

typedef struct entry {
  int64_t count;
  const char *w;
  size_t n;
} entry;

static int entry_cmp(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  size_t m = a->n < b->n ? a->n : b->n;
  int c = memcmp(a->w, b->w, m);
  if (c) return c;
  return (a->n > b->n) - (a->n < b->n);
}

static mm_vocab *vocab_new(const mm_vocab_opts *opts, mm_err *e) {
  mm_vocab *v = calloc(1, sizeof *v);
  if (!v) {
    mm_errorf(e, MM_ENOMEM, "vocab: out of memory");
    return NULL;
  }
  v->o = opts ? *opts : mm_vocab_defaults();
  if (check_opts(&v->o, e)) {
    free(v);
    return NULL;
  }
  if (v->o.unk) {
    if (st_add(&v->t, MM_UNK_WORD, strlen(MM_UNK_WORD), mm_token_hash(MM_UNK_WORD, strlen(MM_UNK_WORD)), e) < 0) {
      mm_vocab_free(v);
      return NULL;
    }
  }
  return v;
}

mm_vocab *mm_vocab_build(const mm_counter *c, const mm_vocab_opts *opts, mm_err *e) {
  mm_vocab *v = vocab_new(opts, e);
  if (!v) return NULL;
  const strtab *ct = &c->t;
  entry *es = malloc((size_t)(ct->n ? ct->n : 1) * sizeof *es);
  if (!es) {
    mm_errorf(e, MM_ENOMEM, "vocab: out of memory (%lld words)", (long long)ct->n);
    mm_vocab_free(v);
    return NULL;
  }
  int64_t m = 0;
  for (int64_t i = 0; i < ct->n; i++) {
    if (ct->count[i] < v->o.min_count) continue;
    const char *w = ct->arena + ct->off[i];
    if (v->o.unk && ct->len[i] == strlen(MM_UNK_WORD) && memcmp(w, MM_UNK_WORD, ct->len[i]) == 0) continue;
    es[m].count = ct->count[i];
    es[m].w = w;
    es[m].n = ct->len[i];
    m++;
  }
  qsort(es, (size_t)m, sizeof *es, entry_cmp);
  if (v->o.max_size > 0 && m > v->o.max_size) m = v->o.max_size;
  for (int64_t i = 0; i < m; i++) {
    int64_t id = st_add(&v->t, es[i].w, es[i].n, mm_token_hash(es[i].w, es[i].n), e);
    if (id < 0) {
      free(es);
      mm_vocab_free(v);
      return NULL;
    }
    v->t.count[id] = es[i].count;
  }
  free(es);
  return v;
}

mm_vocab *mm_vocab_from_words(const char *const *words, const size_t *lens, int64_t n, const mm_vocab_opts *opts,
                              mm_err *e) {
  if (n < 0) {
    mm_errorf(e, MM_EINVAL, "vocab: negative word count %lld", (long long)n);
    return NULL;
  }
  mm_vocab *v = vocab_new(opts, e);
  if (!v) return NULL;
  int64_t i0 = 0;
  if (v->o.unk) {
    if (n < 1 || lens[0] != strlen(MM_UNK_WORD) || memcmp(words[0], MM_UNK_WORD, lens[0]) != 0) {
      mm_errorf(e, MM_EINVAL, "vocab: with unk, word 1 must be \"%s\"", MM_UNK_WORD);
      mm_vocab_free(v);
      return NULL;
    }
    i0 = 1;
  }
  for (int64_t i = i0; i < n; i++) {
    uint32_t h = mm_token_hash(words[i], lens[i]);
    if (lens[i] == 0 || memchr(words[i], 0, lens[i])) {
      mm_errorf(e, MM_EINVAL, "vocab: word %lld is empty or contains a NUL byte", (long long)i + 1);
      mm_vocab_free(v);
      return NULL;
    }
    if (st_find(&v->t, words[i], lens[i], h) >= 0) {
      mm_errorf(e, MM_EINVAL, "vocab: word %lld (\"%.40s\") appears twice", (long long)i + 1, words[i]);
      mm_vocab_free(v);
      return NULL;
    }
    if (st_add(&v->t, words[i], lens[i], h, e) < 0) {
      mm_vocab_free(v);
      return NULL;
    }
  }
  return v;
}

void mm_vocab_free(mm_vocab *v) {
  if (!v) return;
  st_free(&v->t);
  free(v);
}

int64_t mm_vocab_size(const mm_vocab *v) { return v->t.n; }
int64_t mm_vocab_rows(const mm_vocab *v) { return v->t.n + (v->o.ngrams > 1 ? v->o.buckets : 0); }
const mm_vocab_opts *mm_vocab_options(const mm_vocab *v) { return &v->o; }

const char *mm_vocab_word(const mm_vocab *v, int64_t id, size_t *n) {
  if (id < 0 || id >= v->t.n) return NULL;
  if (n) *n = v->t.len[id];
  return v->t.arena + v->t.off[id];
}

int64_t mm_vocab_count(const mm_vocab *v, int64_t id) {
  if (id < 0 || id >= v->t.n) return 0;
  return v->t.count[id];
}

int64_t mm_vocab_find(const mm_vocab *v, const char *w, size_t n) {
  return st_find(&v->t, w, n, mm_token_hash(w, n));
}

int64_t mm_vocab_lookup(const mm_vocab *v, const char *w, size_t n) {
  int64_t i = mm_vocab_find(v, w, n);
  if (i >= 0) return i;
  return v->o.unk ? 0 : -1;
}
