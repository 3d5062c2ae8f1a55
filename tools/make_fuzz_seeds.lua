-- Write the seed corpora of fuzz/fuzz_model.c, fuzz/fuzz_safetensors.c, fuzz/fuzz_manifest.c,
-- fuzz/fuzz_weights.c and fuzz/fuzz_tfjs.c
-- (fuzz/corpus/<target>/). Run from the checkout after `make`:
--   lua5.4 tools/make_fuzz_seeds.lua [./build/?.so]
-- The model seed is a tiny trained text model (about 1 KB); its JSON key order may differ
-- between runs (Lua table order), which does not matter to the fuzzer.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = (arg[1] or "./build/?.so") .. ";" .. package.cpath
local mm = require "mmfuse"

local function spit(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

local function slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

os.execute("mkdir -p fuzz/corpus/fuzz_model fuzz/corpus/fuzz_safetensors fuzz/corpus/fuzz_manifest "
  .. "fuzz/corpus/fuzz_weights")
local ds = mm.data.new { labels = { "a", "b", "a", "b" }, text = { "cat face", "dog", "cat", "dog face" } }
local m = mm.model { fusion = "text", classes = ds.classes, dim = 2, text = { buckets = 4, ngrams = 1 } }
m:fit(ds, { epochs = 1, seed = 1 })
local tmp = os.tmpname()
m:save(tmp)
local b = slurp(tmp)
os.remove(tmp)
local n = string.unpack("<I8", b)
local header = b:sub(9, 8 + n):gsub("%s+$", "")
-- fuzz_model: first byte 0 = raw file, 1 = "header NUL data" (the target writes the length)
spit("fuzz/corpus/fuzz_model/text_raw.mmf", "\0" .. b)
spit("fuzz/corpus/fuzz_model/text_framed.in", "\1" .. header .. "\0" .. b:sub(9 + n))
spit("fuzz/corpus/fuzz_model/truncated.mmf", "\0" .. b:sub(1, #b // 2))
spit("fuzz/corpus/fuzz_safetensors/model.safetensors", b)
spit("fuzz/corpus/fuzz_safetensors/empty_header.safetensors", string.pack("<I8", 8) .. "{}      ")
spit("fuzz/corpus/fuzz_safetensors/past_end.safetensors", string.pack("<I8", 1000) .. "{}")
spit("fuzz/corpus/fuzz_safetensors/short.safetensors", "\2\0\0")
-- fuzz_manifest: first byte = format (bits 0-1: tsv csv jsonl fasttext) + flags (4 keep unlabelled,
-- 8 feature column x, 16 train a tiny model)
spit("fuzz/corpus/fuzz_manifest/tsv.in", "\0text\tlabel\tx\ncat face\ta\t1\ndog\tb\t2.5\n\tb\t3\n")
spit("fuzz/corpus/fuzz_manifest/csv.in", "\25text,label,x\n\"cat, \"\"face\"\"\",a,1\ndog,b,2\nbird,,3\n")
spit("fuzz/corpus/fuzz_manifest/jsonl.in", "\18{\"text\":\"cat\",\"label\":\"a\",\"x\":1}\n"
  .. "{\"text\":\"dog \\u00e9\",\"label\":\"b\",\"x\":2}\n{\"text\":null,\"label\":\"a\"}\n")
spit("fuzz/corpus/fuzz_manifest/fasttext.in", "\19__label__a cat face\n__label__b dog\n__label__a __label__b both\n")
-- fuzz_tfjs: "model.json NUL shard" for the TF.js layers models of spec/fixtures/tfjs_layers
-- (their shards joined into the one shard the target provides)
os.execute("mkdir -p fuzz/corpus/fuzz_tfjs")
for _, name in ipairs { "sequential_small", "every_layer" } do
  local dir = "spec/fixtures/tfjs_layers/" .. name
  local json = slurp(dir .. "/model.json")
  local paths = json:match('"paths":(%b[])')
  local bytes = {}
  for p in paths:gmatch('"([^"]+)"') do bytes[#bytes + 1] = slurp(dir .. "/" .. p) end
  json = json:gsub('"paths":%b[]', '"paths":["group1-shard1of1"]', 1)
  spit("fuzz/corpus/fuzz_tfjs/" .. name .. ".in", json .. "\0" .. table.concat(bytes))
end

-- fuzz_weights: a record per parameter of its model (text.embedding 3x4, f.proj.weight 4x5,
-- f.proj.bias 4, classifier.weight 3x4, classifier.bias 3), then the data section
do
  local recs, data, off = {}, {}, 0
  for i, sh in ipairs { { 3, 4 }, { 4, 5 }, { 4 }, { 3, 4 }, { 3 } } do
    local cnt = sh[1] * (sh[2] or 1)
    recs[i] = string.pack("<BBi2i2i2i2i4b", 7, #sh, sh[1], sh[2] or 0, 0, 0, off, cnt)
    for j = 0, cnt - 1 do data[#data + 1] = string.pack("<f", 0.01 * i * (j - 3)) end
    off = off + 4 * cnt
  end
  local r, d = table.concat(recs), table.concat(data)
  spit("fuzz/corpus/fuzz_weights/valid", r .. d)
  spit("fuzz/corpus/fuzz_weights/truncated", r .. d:sub(1, -5))
  spit("fuzz/corpus/fuzz_weights/dtype", "\5" .. r:sub(2) .. d)
end
print("wrote the fuzz seeds")
