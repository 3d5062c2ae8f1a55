/* hash.h - the token and word n-gram hashes (fastText's).
 *
 * Token hash: 32-bit FNV-1a over the token's UTF-8 bytes (as fastText).
 * N-gram hash for tokens t_i .. t_{i+k-1} (k >= 2):
 *     h = hash(t_i); for j in i+1 .. i+k-1: h = h * 116049371 + hash(t_j)
 * in uint64 arithmetic (wrap-around). The vocabulary hashes its words with
 * the first, the n-gram bags (ngram.h) bucket n-grams with the second. */
#ifndef MM_HASH_H
#define MM_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t mm_token_hash(const char *w, size_t n);
/* hash of the n-gram of k token hashes */
uint64_t mm_ngram_hash(const uint32_t *hashes, int64_t k);

#endif
