/* ngram.c - texts to bags of word and hashed n-gram ids (CSR); see ngram.h. */
#include "ngram.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

void mm_csr_init(mm_csr *c) { memset(c, 0, sizeof *c); }

void mm_csr_free(mm_csr *c) {
  free(c->ids);
  free(c->offsets);
  free(c->missing);
  mm_csr_init(c);
}

static int csr_grow_bags(mm_csr *c, mm_err *e) {
  if (c->offsets && c->n < c->bagcap) return MM_OK;
  int64_t cap = c->bagcap ? c->bagcap * 2 : 64;
  int64_t *o = realloc(c->offsets, (size_t)(cap + 1) * sizeof *o);
  if (!o) return mm_errorf(e, MM_ENOMEM, "encode: out of memory (%lld texts)", (long long)cap);
  if (!c->offsets) o[0] = 0;
  c->offsets = o;
  uint8_t *m = realloc(c->missing, (size_t)cap);
  if (!m) return mm_errorf(e, MM_ENOMEM, "encode: out of memory (%lld texts)", (long long)cap);
  c->missing = m;
  c->bagcap = cap;
  return MM_OK;
}

static int csr_grow_ids(mm_csr *c, int64_t extra, mm_err *e) {
  if (c->nids + extra <= c->idcap) return MM_OK;
  int64_t cap = c->idcap ? c->idcap : 256;
  while (cap < c->nids + extra) cap *= 2;
  int64_t *p = realloc(c->ids, (size_t)cap * sizeof *p);
  if (!p) return mm_errorf(e, MM_ENOMEM, "encode: out of memory (%lld ids)", (long long)cap);
  c->ids = p;
  c->idcap = cap;
  return MM_OK;
}

static int encode_one(const mm_vocab *v, const mm_tokens *toks, mm_csr *out, uint32_t **hbuf, int64_t *hcap,
                      mm_err *e) {
  if (csr_grow_bags(out, e)) return e ? e->code : MM_ENOMEM;
  const mm_vocab_opts *o = mm_vocab_options(v);
  int64_t nt = toks->n;
  int64_t N = o->ngrams > 1 ? o->ngrams : 1;
  /* upper bound of ids of this bag: words + sum_k (nt - k + 1) */
  int64_t bound = nt;
  for (int64_t k = 2; k <= N && k <= nt; k++) bound += nt - k + 1;
  if (csr_grow_ids(out, bound, e)) return e ? e->code : MM_ENOMEM;
  if (N > 1 && nt > *hcap) {
    uint32_t *h = realloc(*hbuf, (size_t)nt * sizeof *h);
    if (!h) return mm_errorf(e, MM_ENOMEM, "encode: out of memory (%lld tokens)", (long long)nt);
    *hbuf = h;
    *hcap = nt;
  }
  int64_t start = out->nids;
  for (int64_t i = 0; i < nt; i++) {
    const char *w = toks->buf + toks->off[i];
    size_t n = toks->len[i];
    int64_t id = mm_vocab_lookup(v, w, n);
    if (id >= 0) out->ids[out->nids++] = id;
    if (N > 1) (*hbuf)[i] = mm_token_hash(w, n);
  }
  if (N > 1) {
    int64_t base = mm_vocab_size(v);
    uint64_t B = (uint64_t)o->buckets;
    for (int64_t k = 2; k <= N; k++)
      for (int64_t i = 0; i + k <= nt; i++)
        out->ids[out->nids++] = base + (int64_t)(mm_ngram_hash(*hbuf + i, k) % B);
  }
  out->missing[out->n] = out->nids == start;
  out->n++;
  out->offsets[out->n] = out->nids;
  return MM_OK;
}

int mm_vocab_encode_tokens(const mm_vocab *v, const mm_tokens *toks, mm_csr *out, mm_err *e) {
  uint32_t *h = NULL;
  int64_t hcap = 0;
  int rc = encode_one(v, toks, out, &h, &hcap, e);
  free(h);
  return rc;
}

int mm_vocab_encode(const mm_vocab *v, const char *const *texts, const size_t *lens, int64_t n, mm_csr *out,
                    mm_err *e) {
  if (n < 0) return mm_errorf(e, MM_EINVAL, "encode: negative text count %lld", (long long)n);
  mm_tokens toks;
  mm_tokens_init(&toks);
  uint32_t *h = NULL;
  int64_t hcap = 0;
  int rc = csr_grow_bags(out, e);
  const mm_tokenize_opts *to = &mm_vocab_options(v)->tok;
  for (int64_t i = 0; i < n && rc == MM_OK; i++) {
    mm_tokens_clear(&toks);
    rc = mm_tokenize_buffer(lens[i] ? texts[i] : NULL, lens[i], to, &toks, e);
    if (rc == MM_OK) rc = encode_one(v, &toks, out, &h, &hcap, e);
  }
  mm_tokens_free(&toks);
  free(h);
  return rc;
}
