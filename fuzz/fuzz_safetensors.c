/* fuzz_safetensors: check the framing of arbitrary bytes as a safetensors
 * file (mm_st_parse), then read every byte of the header and data it hands
 * back, so a bound that is off by one shows up under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* a private copy of exactly `size` bytes: reads past it are caught */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  mm_err e;
  mm_st_file f;
  if (mm_st_parse(buf, size, "fuzz.safetensors", &f, &e) == MM_OK) {
    if (f.buf != NULL || f.header != (const char *)buf + 8 || f.hlen + f.dlen + 8 != size) abort();
    volatile uint8_t acc = 0;
    for (size_t i = 0; i < f.hlen; i++) acc ^= (uint8_t)f.header[i];
    for (size_t i = 0; i < f.dlen; i++) acc ^= f.data[i];
    (void)acc;
    mm_st_free(&f); /* nothing owned: must be a no-op */
  } else if (e.msg[0] == '\0') {
    abort(); /* every failure names the problem */
  }
  free(buf);
  return 0;
}
