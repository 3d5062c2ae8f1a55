/* fuzz_png_fast: the PNG fast path (csrc/image/png.c) against the general stb
 * path (decode.c). Whenever the fast path takes an input, stb must decode it
 * to the same pixels; mm_image_decode (fast path, then general) must give
 * exactly what the general path gives (pixels, or an error). Inputs whose
 * header declares more than 2^20 pixels are skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_err e;
  int iw, ih, ic; /* big images (slow in stb under ASan) are fuzz_image's business */
  if (mm_image_info(data, size, "fuzz", &iw, &ih, &ic, &e) == MM_OK && (int64_t)iw * ih > (1 << 20)) return 0;
  uint8_t *f = NULL, *g = NULL;
  int fw = 0, fh = 0, gw = 0, gh = 0;
  int fr = mm_png_decode_rgb8(data, size, NULL, 0, 0, &f, &fw, &fh);
  int gr = mm_image_decode_general(data, size, "fuzz", &g, &gw, &gh, &e);
  if (fr == MM_PNG_OK) {
    if (gr != MM_OK) abort(); /* the fast path took a file stb refuses */
    if (fw != gw || fh != gh || memcmp(f, g, (size_t)fw * (size_t)fh * 3) != 0) abort();
  }
  mm_image img = {0};
  int ar = mm_image_decode(data, size, "fuzz", 0, 0, MM_FIT_STRETCH, &img, &e);
  if ((ar == MM_OK) != (gr == MM_OK)) abort();
  if (ar == MM_OK && (img.w != gw || img.h != gh || memcmp(img.px, g, (size_t)gw * (size_t)gh * 3) != 0)) abort();
  /* the dataset path: straight into a slot when the size matches */
  if (gr == MM_OK && gw <= 64 && gh <= 64) {
    uint8_t slot[64 * 64 * 3];
    if (mm_image_decode_into(data, size, "fuzz", gw, gh, MM_FIT_STRETCH, slot, &e) != MM_OK) abort();
    if (memcmp(slot, g, (size_t)gw * (size_t)gh * 3) != 0) abort();
  }
  mm_image_free(&img);
  free(f);
  free(g);
  return 0;
}
