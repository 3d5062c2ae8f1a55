/* vocab.h - a word vocabulary: token -> id, built from token streams.
 *
 * Ids are 0-based. When the vocabulary has an unknown-word entry it is id 0,
 * spelled "<unk>", and every out-of-vocabulary token maps to it; otherwise
 * out-of-vocabulary tokens are dropped (lookup returns -1).
 *
 * Building: count every token, keep those with count >= min_count, sort by
 * count descending, ties broken by byte-wise (memcmp, shorter first) order of
 * the token, keep the first max_size (0 = no limit; max_size does NOT count
 * the <unk> entry). The result is deterministic for a given multiset of tokens,
 * whatever the order in which they were added.
 *
 * Save/restore: a vocabulary is fully described by its word list in id order
 * (mm_vocab_word 0 .. size-1, "<unk>" first if present), the unk flag and the
 * tokenizer options; mm_vocab_from_words rebuilds it from exactly that.
 */
#ifndef MM_VOCAB_H
#define MM_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokenize.h"

#define MM_UNK_WORD "<unk>"

typedef struct mm_vocab mm_vocab;     /* opaque */
typedef struct mm_counter mm_counter; /* opaque token counter used to build */

/* -- counting -------------------------------------------------------------- */
mm_counter *mm_counter_new(mm_err *e); /* NULL + e on ENOMEM */
void mm_counter_free(mm_counter *c);
/* count one token */
int mm_counter_add(mm_counter *c, const char *w, size_t n, mm_err *e);
/* tokenize s (with opts) and count its tokens */
int mm_counter_add_text(mm_counter *c, const char *s, size_t n, const mm_tokenize_opts *opts, mm_err *e);
/* distinct tokens counted */
int64_t mm_counter_size(const mm_counter *c);
/* Keep at most `keep` distinct tokens: the most frequent ones; tokens with
 * equal counts stay or go together (so fewer may stay). Bounds a count of an
 * unbounded token stream (the words seen later start again from 0). */
int mm_counter_prune(mm_counter *c, int64_t keep, mm_err *e);

/* -- building ---------------------------------------------------------------- */
typedef struct mm_vocab_opts {
  int64_t min_count; /* >= 1; default 1 */
  int64_t max_size;  /* >= 0; 0 = unlimited (not counting <unk>) */
  int unk;           /* 1 (default): id 0 is <unk>; 0: drop unknown tokens */
  int64_t ngrams;    /* word n-grams up to this n (1 = words only); default 1 */
  int64_t buckets;   /* hash buckets for n-grams (>= 1 if ngrams > 1); default -1:
                        MM_VOCAB_BUCKETS when ngrams > 1, else 0 */
  mm_tokenize_opts tok;
} mm_vocab_opts;

#define MM_VOCAB_BUCKETS 2000000 /* fastText's default bucket count */
/* the names of unk by value: "drop" (0), "unk" (1); NULL-terminated */
extern const char *const mm_vocab_unk_names[];

mm_vocab_opts mm_vocab_defaults(void);

/* Build from a counter. Checks opts (EINVAL naming the field); the
 * vocabulary keeps them with the default buckets resolved. */
mm_vocab *mm_vocab_build(const mm_counter *c, const mm_vocab_opts *opts, mm_err *e);
/* Rebuild from a word list in id order (as saved). If opts->unk, words[0]
 * must be "<unk>". Duplicate or empty words -> EINVAL naming the index. */
mm_vocab *mm_vocab_from_words(const char *const *words, const size_t *lens, int64_t n, const mm_vocab_opts *opts,
                              mm_err *e);
void mm_vocab_free(mm_vocab *v);

/* -- queries ----------------------------------------------------------------- */
int64_t mm_vocab_size(const mm_vocab *v);  /* words incl. <unk> */
int64_t mm_vocab_rows(const mm_vocab *v);  /* embedding rows: size + buckets */
const mm_vocab_opts *mm_vocab_options(const mm_vocab *v);
/* word of id (0 <= id < size), its length in *n (may be NULL); NULL if out of range */
const char *mm_vocab_word(const mm_vocab *v, int64_t id, size_t *n);
/* training-set count of word id (0 for words restored from a list) */
int64_t mm_vocab_count(const mm_vocab *v, int64_t id);
/* exact id of a token, or -1 when absent (does NOT apply the unk rule) */
int64_t mm_vocab_find(const mm_vocab *v, const char *w, size_t n);
/* id applying the unk rule: find(), else 0 if unk, else -1 (drop) */
int64_t mm_vocab_lookup(const mm_vocab *v, const char *w, size_t n);

#endif
