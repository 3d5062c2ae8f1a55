/* fuzz_npy: parse arbitrary bytes as a .npy file. */
#include <stdint.h>
#include <stdlib.h>

#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_err e;
  mm_tensor t = {0};
  if (mm_npy_load_mem(data, size, "fuzz.npy", &t, &e) == MM_OK) mm_tensor_free(&t);
  return 0;
}
