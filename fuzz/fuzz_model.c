/* fuzz_model: arbitrary bytes as a model file, loaded with mm.load inside
 * pcall (the Lua face checks the JSON header, the C core the framing and the
 * weights). First byte: bit 0 set = "framed" mode, where the rest is a JSON
 * header up to the first NUL byte and tensor data after it, and the 8-byte
 * length is written for it (so mutations reach the header checks instead of
 * dying at the framing); otherwise the rest is the file as is.
 * Invariants beyond "no crash, no leak": a failed load raises a string that
 * names the file; a loaded model predicts (text; and text + a picture, which
 * runs a CNN's inference path, may fail but not crash). Run from the checkout (or set
 * MMFUSE_ROOT) so that lua/mmfuse/ is found. */
#include <stdint.h>
#include <string.h>

#include "fuzz_lua.h"

static const char *SETUP =
    "mm = require 'mmfuse'\n"
    "function fuzz_load(path)\n"
    "  local ok, m = pcall(mm.load, path)\n"
    "  if not ok then\n"
    "    if type(m) ~= 'string' or not m:find(path, 1, true) then\n"
    "      fuzz_bad = 'mm.load error does not name the file: ' .. tostring(m)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  local okp, e = pcall(m.predict, m, { text = 'cat face dog' })\n"
    "  if not okp then fuzz_bad = 'a loaded model cannot predict: ' .. tostring(e) end\n"
    "  -- with a picture: a CNN from the file runs its inference path (an error is fine)\n"
    "  pcall(m.predict, m, { text = 'cat face', image = 'data/emoji32/images/1F600.png' })\n"
    "  local _ = tostring(m)\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lua_State *L = fuzz_lua_setup(SETUP, "fuzz_model");
  const uint8_t *body = data + 1;
  size_t blen = size - 1;
  uint8_t *framed = NULL;
  if (data[0] & 1) {
    const uint8_t *nul = memchr(body, 0, blen);
    size_t hlen = nul ? (size_t)(nul - body) : blen;
    size_t dlen = nul ? blen - hlen - 1 : 0;
    framed = malloc(8 + hlen + dlen + 1);
    if (!framed) return 0;
    for (int i = 0; i < 8; i++) framed[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(framed + 8, body, hlen);
    if (dlen) memcpy(framed + 8 + hlen, nul + 1, dlen);
    body = framed;
    blen = 8 + hlen + dlen;
  }
  const char *path = fuzz_temp_file(body, blen, ".mmf");
  free(framed);
  if (!path) return 0;
  fuzz_lua_call(L, "fuzz_load", path, strlen(path));
  unlink(path);
  lua_getglobal(L, "fuzz_bad");
  if (!lua_isnil(L, -1)) {
    fprintf(stderr, "fuzz_model: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pop(L, 1);
  return 0;
}
