/* fuzz_image: decode arbitrary bytes as an image (PNG/JPEG/BMP/GIF/TGA) into a
 * 32x32 RGB block, and through the full-size path with the dimension limit.
 * Headers declaring more than 2^22 pixels are only checked by mm_image_info:
 * a 46-byte TGA declaring 6129x6424 took 27 s to decode and resize under
 * ASan (the fuzzer's timeout is 20 s) while exercising no other parsing;
 * the dimension limits themselves are covered by spec/image_spec.lua. */
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_err e;
  int iw, ih, ic;
  if (mm_image_info(data, size, "fuzz", &iw, &ih, &ic, &e) == MM_OK && (int64_t)iw * ih > (1 << 22)) return 0;
  uint8_t block[32 * 32 * 3];
  (void)mm_image_decode_into(data, size, "fuzz", 32, 32, MM_FIT_STRETCH, block, &e);
  mm_image img = {0};
  if (mm_image_decode(data, size, "fuzz", 0, 0, MM_FIT_CROP, &img, &e) == MM_OK) mm_image_free(&img);
  return 0;
}
