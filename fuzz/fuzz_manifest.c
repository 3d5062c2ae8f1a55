/* fuzz_manifest: arbitrary bytes as a manifest (TSV, CSV, JSONL or fastText
 * lines), read with mm.data.load inside pcall. Text only: no image column, so
 * no picture files are needed. First byte: bits 0-1 pick the format (by file
 * suffix), bit 2 keeps unlabelled rows, bit 3 adds a numeric feature column
 * "x", bit 4 trains a tiny text model for one epoch and predicts a row.
 * Invariants beyond "no crash, no leak": a failed load raises a string that
 * names the file (or the option); a loaded dataset prints, splits and gives
 * back its texts. The same file is also read by mm.data.stream (TSV, CSV,
 * JSONL; shuffled with bit 4): its errors name the file or the option, and a
 * TSV/CSV file both read gives the same number of rows. Run from the checkout (or set MMFUSE_ROOT). */
#include <stdint.h>
#include <string.h>

#include "fuzz_lua.h"

static const char *SETUP =
    "mm = require 'mmfuse'\n"
    "-- the same file through mm.data.stream (TSV, CSV, JSONL): errors name the file or the\n"
    "-- option; where both read a TSV/CSV file, the same number of rows\n"
    "function fuzz_stream(path, o, ds, flags)\n"
    "  if flags & 3 == 3 then return end\n"
    "  local ok, s = pcall(mm.data.stream, path, o)\n"
    "  local okl, got = false, s\n"
    "  if ok then okl, got = pcall(s.load, s, { shuffle = flags & 16 ~= 0, seed = 2 }) end\n"
    "  if not okl then\n"
    "    if type(got) ~= 'string' or not (got:find(path, 1, true) or got:find('stream', 1, true)) then\n"
    "      fuzz_bad = 'mm.data.stream error names neither the file nor the option: ' .. tostring(got)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  if ds and flags & 3 ~= 2 and #got ~= #ds then\n"
    "    fuzz_bad = ('stream read %d rows, mm.data.load %d'):format(#got, #ds)\n"
    "  end\n"
    "end\n"
    "function fuzz_manifest(arg)\n"
    "  local flags, path = arg:match('^(%d+) (.*)$')\n"
    "  flags = tonumber(flags)\n"
    "  local o = { text = 'text', label = 'label', keep_unlabelled = flags & 4 ~= 0 }\n"
    "  if flags & 8 ~= 0 then o.features = { x = { 'x' } } end\n"
    "  local ok, ds = pcall(mm.data.load, path, o)\n"
    "  fuzz_stream(path, o, ok and ds or nil, flags)\n"
    "  if not ok then\n"
    "    if type(ds) ~= 'string' or not (ds:find(path, 1, true) or ds:find('data.load', 1, true)) then\n"
    "      fuzz_bad = 'mm.data.load error names neither the file nor the option: ' .. tostring(ds)\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  local _ = tostring(ds)\n"
    "  for i = 1, math.min(#ds, 50) do\n"
    "    local t = ds:text('text', i)\n"
    "    if t ~= nil and type(t) ~= 'string' then fuzz_bad = 'ds:text is not a string' end\n"
    "  end\n"
    "  local a, b, c = ds:split { ratios = { 0.6, 0.2, 0.2 }, seed = 3 }\n"
    "  if #a + #b + #c ~= #ds then fuzz_bad = 'split lost rows' end\n"
    "  if flags & 16 ~= 0 and #ds.classes >= 2 and #ds <= 200 then\n"
    "    local m = mm.model { fusion = 'text', classes = ds.classes, dim = 2, text = { buckets = 16, ngrams = 2 } }\n"
    "    local okf, e = pcall(m.fit, m, ds, { epochs = 1, batch = 8 })\n"
    "    if okf then m:predict { text = ds:text('text', 1) or '' } end\n"
    "  end\n"
    "end\n";

static const char *SUFFIX[4] = {".tsv", ".csv", ".jsonl", ".txt"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lua_State *L = fuzz_lua_setup(SETUP, "fuzz_manifest");
  const char *path = fuzz_temp_file(data + 1, size - 1, SUFFIX[data[0] & 3]);
  if (!path) return 0;
  char arg[300];
  int n = snprintf(arg, sizeof arg, "%d %s", data[0] & 0x1f, path);
  fuzz_lua_call(L, "fuzz_manifest", arg, (size_t)n);
  unlink(path);
  lua_getglobal(L, "fuzz_bad");
  if (!lua_isnil(L, -1)) {
    fprintf(stderr, "fuzz_manifest: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pop(L, 1);
  return 0;
}
