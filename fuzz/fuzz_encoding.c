/* fuzz_encoding: text bytes of unknown encoding to UTF-8 (text/encoding.h) on
 * arbitrary bytes, with the encoding list taken from the first input byte.
 * Beyond "no crash", it checks the invariants: a success returns well-formed,
 * NUL-terminated UTF-8 of the length it reports, from an encoding of the list;
 * Latin-1 in the list never fails; UTF-8 is kept byte for byte (a BOM
 * dropped); a failure leaves no output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  /* the first byte picks 1..3 encodings, in an order */
  int encs[3], nenc = 1 + data[0] % 3;
  for (int k = 0; k < nenc; k++) encs[k] = (data[0] / (3 * (k + 1)) + k) % MM_ENC_COUNT;
  data++, size--;
  uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
  if (!buf) return 0;
  memcpy(buf, data, size);
  char *out;
  size_t n;
  int used, bom, has_latin = 0;
  for (int k = 0; k < nenc; k++) has_latin |= encs[k] == MM_ENC_LATIN1;
  mm_err e;
  int rc = mm_text_decode(buf, size, encs, nenc, "<fuzz>", &out, &n, &used, &bom, &e);
  if (rc) {
    if (has_latin || out || used != -1) abort();
  } else {
    int listed = 0;
    for (int k = 0; k < nenc; k++) listed |= encs[k] == used;
    if (!listed || !out || out[n] != 0 || !mm_utf8_valid((const uint8_t *)out, n)) abort();
    if (used == MM_ENC_UTF8 && (n + (bom ? 3 : 0) != size || memcmp(out, buf + (bom ? 3 : 0), n))) abort();
    if (used == MM_ENC_LATIN1 && n < size) abort();
    free(out);
  }
  free(buf);
  return 0;
}
