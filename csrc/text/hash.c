/* hash.c - see hash.h */
#include "hash.h"

uint32_t mm_token_hash(const char *w, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint32_t)(unsigned char)w[i];
    h *= 16777619u;
  }
  return h;
}

uint64_t mm_ngram_hash(const uint32_t *hashes, int64_t k) {
  uint64_t h = hashes[0];
  for (int64_t j = 1; j < k; j++) h = h * 116049371ull + hashes[j];
  return h;
}
