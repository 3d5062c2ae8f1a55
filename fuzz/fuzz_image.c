/* fuzz_image: decode arbitrary bytes as an image (PNG/JPEG/BMP/GIF/TGA) into a
 * 32x32 RGB block, and through the full-size path with the dimension limit. */
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_err e;
  uint8_t block[32 * 32 * 3];
  (void)mm_image_decode_into(data, size, "fuzz", 32, 32, MM_FIT_STRETCH, block, &e);
  mm_image img = {0};
  if (mm_image_decode(data, size, "fuzz", 0, 0, MM_FIT_CROP, &img, &e) == MM_OK) mm_image_free(&img);
  return 0;
}
