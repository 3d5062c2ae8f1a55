/* ngram.h - texts to bags of ids: the words of a vocabulary and their
 * fastText-style hashed word n-grams, in CSR form.
 *
 * The id of the n-gram t_i .. t_{i+k-1} (k = 2..N) is
 *     size(vocab) + (mm_ngram_hash(hashes of t_i .. t_{i+k-1}) mod B)
 * (hash.h), B the vocabulary's bucket count.
 * Every token takes part in n-grams, also one that is out of the vocabulary
 * (as fastText does).
 *
 * Bag of one text: the word ids of its tokens in order (unknown tokens -> <unk>
 * id 0, or dropped), then its n-gram ids for k = 2..N, i ascending within each
 * k. All ids lie in [0, mm_vocab_rows(v)).
 */
#ifndef MM_NGRAM_H
#define MM_NGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokenize.h"
#include "vocab.h"

/* Bags of n texts in CSR form: the ids of bag i are ids[offsets[i] ..
 * offsets[i+1]); offsets has n + 1 entries, offsets[0] = 0. missing[i] = 1
 * when bag i is empty (empty text, only separators/punctuation, or every
 * token dropped as unknown with ngrams == 1): the text modality of that row is
 * absent. */
typedef struct mm_csr {
  int64_t n;        /* number of bags */
  int64_t nids;     /* = offsets[n] */
  int64_t *ids;     /* nids entries (capacity idcap) */
  int64_t idcap;
  int64_t *offsets; /* n + 1 entries */
  uint8_t *missing; /* n entries */
  int64_t bagcap;   /* capacity of offsets (minus one) and missing */
} mm_csr;

void mm_csr_init(mm_csr *c);
void mm_csr_free(mm_csr *c);

/* Encode n texts (texts[i] of lens[i] bytes, not NUL-terminated, NULL with
 * length 0 allowed) with v's tokenizer options, n-gram order and buckets.
 * out must be freshly mm_csr_init'ed (or freed). MM_ENOMEM/MM_EINVAL. */
int mm_vocab_encode(const mm_vocab *v, const char *const *texts, const size_t *lens, int64_t n, mm_csr *out,
                    mm_err *e);

/* Append the bag of one already-tokenized text to out (out->n grows by one).
 * Use mm_csr_init then repeated calls to build a CSR from token lists. */
int mm_vocab_encode_tokens(const mm_vocab *v, const mm_tokens *toks, mm_csr *out, mm_err *e);

#endif
