/* fuzz_tokenize: tokenizer + vocabulary + hashed n-gram encoding on arbitrary
 * bytes (invalid UTF-8, NULs). Beyond "no crash", it checks the invariants:
 * tokens are non-empty, NUL-free, NUL-terminated valid UTF-8, and every id of
 * the encoded bags lies in [0, rows). The first input byte picks the post
 * options (urls, rt, hashtags, emoticons, tones, elongation, mentions). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/ngram.h"
#include "text/tokenize.h"
#include "text/utf8.h"
#include "text/vocab.h"

static void check_token(const char *w, size_t n) {
  if (n == 0 || memchr(w, 0, n) || w[n] != 0) abort();
  size_t p = 0;
  while (p < n) {
    uint32_t cp;
    size_t k = mm_utf8_decode((const unsigned char *)w + p, n - p, &cp);
    /* U+FFFD may only appear as its own valid 3-byte encoding */
    if (k == 0 || (cp == 0xFFFD && !(k == 3 && (unsigned char)w[p] == 0xEF))) abort();
    p += k;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
  if (!buf) return 0;
  memcpy(buf, data, size);
  mm_tokens t;
  mm_tokens_init(&t);
  mm_tokenize_opts o = mm_tokenize_defaults();
  o.keep_punct = (int)(size & 1);
  /* the post options (tokenize.h) from the first byte, so every combination is reached */
  unsigned f = size ? data[0] : 0;
  o.post.urls = f & 1, o.post.rt = (f >> 1) & 1, o.post.hashtags = (f >> 2) & 1, o.post.emoticons = (f >> 3) & 1;
  o.post.tones = (f >> 4) & 1, o.post.elongation = (f >> 5) & 1, o.post.mentions = (int)((f >> 6) % MM_MENTION_COUNT);
  o.lowercase = (int)((size >> 1) & 1);
  if (mm_tokenize_buffer(buf, size, &o, &t, NULL)) abort();
  for (int64_t i = 0; i < t.n; i++) check_token(t.buf + t.off[i], t.len[i]);

  mm_counter *c = mm_counter_new(NULL);
  for (int64_t i = 0; i < t.n; i++) mm_counter_add(c, t.buf + t.off[i], t.len[i], NULL);
  mm_vocab_opts vo = mm_vocab_defaults();
  vo.ngrams = 3;
  vo.buckets = 101;
  vo.max_size = 5;
  vo.tok = o;
  mm_vocab *v = mm_vocab_build(c, &vo, NULL);
  const char *texts[2] = {buf, buf + size / 2};
  size_t lens[2] = {size / 2, size - size / 2};
  mm_csr csr;
  mm_csr_init(&csr);
  if (mm_vocab_encode(v, texts, lens, 2, &csr, NULL)) abort();
  for (int64_t i = 0; i < csr.nids; i++)
    if (csr.ids[i] < 0 || csr.ids[i] >= mm_vocab_rows(v)) abort();
  mm_csr_free(&csr);
  mm_vocab_free(v);
  mm_counter_free(c);
  mm_tokens_free(&t);
  free(buf);
  return 0;
}
