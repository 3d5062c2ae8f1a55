/* fuzz_vectors: read arbitrary bytes as a word-vector file (GloVe, word2vec
 * text/binary, fastText .vec, auto) into the rows of a tiny vocabulary.
 * The first byte picks the format and the file suffix. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "text/vectors.h"
#include "text/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char path[64];
  snprintf(path, sizeof path, "/tmp/mmfuse-fuzz-vec-%d.%s", (int)getpid(), (data[0] & 1) ? "bin" : "txt");
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) {
    fclose(f);
    return 0;
  }
  fclose(f);
  const char *words[] = {"<unk>", "the", "cat", "a"};
  size_t lens[] = {5, 3, 3, 1};
  mm_vocab_opts vo = mm_vocab_defaults();
  mm_vocab *v = mm_vocab_from_words(words, lens, 4, &vo, NULL);
  mm_vec_stats st;
  mm_err e;
  int fmt = (data[0] >> 1) % 5;
  if (v && mm_vectors_probe(path, fmt, &st, &e) == MM_OK && st.dim <= 64) {
    mm_tensor t = {0};
    int64_t shape[2] = {4, st.dim};
    if (mm_tensor_alloc(&t, 2, shape, &e) == MM_OK) {
      uint8_t mask[4];
      (void)mm_vectors_load(path, fmt, v, &t, mask, &st, &e);
      mm_tensor_free(&t);
    }
  }
  mm_vocab_free(v);
  unlink(path);
  return 0;
}
