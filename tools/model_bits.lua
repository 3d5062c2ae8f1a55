-- tools/model_bits.lua - fingerprints of trained models, to check that a change
-- to the model code leaves the trained bits alone.
--
--   lua5.4 tools/model_bits.lua OUTDIR            (MMFUSE_CPATH picks the build)
--   diff <(cd A && sha256sum *) <(cd B && sha256sum *)
--
-- Trains every fusion head (text, image, early, late, joint max/mean/sum,
-- common-space), every encoder (text, CNN, histogram, feature rows, a frozen
-- backbone), SGD with momentum / weight decay / clipping and Adam, class
-- weights, modality dropout, word vectors, early stopping and Hogwild with 2
-- threads on data/emoji32 with fixed seeds, and writes for each case: the
-- weights (every parameter's float32 bytes in model order, <case>.w), the
-- test-set probabilities with both modalities and with each one dropped
-- (<case>.p), the model file as saved (<case>.mmf) and the probabilities of
-- the model loaded back from it (<case>.lp). One thread everywhere except the
-- Hogwild case: the same operations in the same order give the same bits.
-- Hogwild updates shared rows without locks, so its bits depend on the
-- thread interleaving; it is written to <case>.hog.* and compared only to
-- itself across two runs by the caller when wanted.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("MMFUSE_CPATH") or "./build/?.so") .. ";" .. package.cpath

local mm = require "mmfuse"
local core = require "mmfuse.core"

local out = assert(arg[1], "usage: lua5.4 tools/model_bits.lua OUTDIR")
assert(os.execute("mkdir -p '" .. out .. "'"))
local only = arg[2] -- optional: one case name

local function write(path, s) assert(assert(io.open(path, "wb")):write(s)):close() end

local function floats(t)
  local parts = {}
  local function walk(x)
    if type(x) == "table" then
      for _, y in ipairs(x) do walk(y) end
    else
      parts[#parts + 1] = string.pack("<f", x)
    end
  end
  walk(t:totable())
  return table.concat(parts)
end

-- a model file with its JSON header re-encoded with sorted keys (Lua's table
-- order, and so the order cjson writes keys in, changes from run to run)
local cjson = require "cjson"
local function canonical(v)
  if type(v) ~= "table" then return cjson.encode(v) end
  local keys, n = {}, 0
  for k in pairs(v) do keys[#keys + 1] = k; n = n + 1 end
  if n == #v then
    local parts = {}
    for i = 1, n do parts[i] = canonical(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    local x = v[k]
    if type(x) == "string" and x:match("^[%[{]") then x = cjson.decode(x) end -- JSON inside __metadata__
    parts[#parts + 1] = cjson.encode(tostring(k)) .. ":" .. canonical(x)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
local function canonical_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local hlen = string.unpack("<I8", s)
  return canonical(cjson.decode(s:sub(9, 8 + hlen))) .. "\n" .. s:sub(9 + hlen)
end

local manifest = "data/emoji32/manifest.tsv"
local ds = mm.data.load(manifest, { text = "caption", image = "image", label = "group" })
local train, valid, test = ds:split{ by = "fold", test = { 0 }, valid = { 1 } }

-- histogram rows of every image, as a feature file (the "features" encoder)
local cache = out .. "/features-cache"
os.execute("mkdir -p '" .. cache .. "'")
local _, finfo = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
local fds = mm.data.load(manifest, { text = "caption", label = "group", image_features = finfo.path })
local ftrain, fvalid, ftest = fds:split{ by = "fold", test = { 0 }, valid = { 1 } }

-- a small word-vector file (GloVe text) for the vectors case
local vec = out .. "/vectors.txt"
do
  local words = { "face", "cat", "heart", "red", "hand", "flag", "smiling", "person", "man", "woman" }
  local lines = {}
  for i, w in ipairs(words) do
    local v = {}
    for j = 1, 16 do v[j] = ("%.4f"):format(math.sin(i * 7 + j)) end
    lines[#lines + 1] = w .. " " .. table.concat(v, " ")
  end
  write(vec, table.concat(lines, "\n") .. "\n")
end

local small = {}
for i = 1, #ds, 10 do small[#small + 1] = i end
local strain, svalid, stest = ds:subset(small):split{ ratios = { 0.7, 0.1, 0.2 }, seed = 1 }

local T = { buckets = 20000 }
local CNN = { encoder = "cnn", channels = { 8, 16 }, augment = true }
local HIST = { encoder = "histogram" }
local cases = {
  { "text", { fusion = "text", dim = 32, text = T }, { epochs = 3, lr = 1e-2 } },
  { "text-ngram3-unk", { fusion = "text", dim = 16, text = { ngrams = 3, buckets = 5000, unk = true, min_count = 2,
    max_vocab = 300 } }, { epochs = 2, lr = 1e-2, batch = 7 } },
  { "image-cnn", { fusion = "image", dim = 32, image = CNN }, { epochs = 2, lr = 1e-2 } },
  { "image-hist", { fusion = "image", dim = 32, image = { encoder = "histogram", bins = { 6, 3, 3 } } },
    { epochs = 3, lr = 1e-2 } },
  { "early", { fusion = "early", dim = 32, text = T, image = HIST }, { epochs = 3, lr = 1e-2 } },
  { "early-zeros-sgd", { fusion = "early", dim = 32, missing = "zeros", text = T, image = HIST },
    { epochs = 3, lr = 5e-2, optimizer = "sgd", momentum = 0.9, weight_decay = 1e-4, clip = 1.0 } },
  { "early-sgd-plain", { fusion = "early", dim = 32, text = T, image = HIST },
    { epochs = 2, lr = 1e-1, optimizer = "sgd" } },
  { "late", { fusion = "late", dim = 32, text = T, image = CNN }, { epochs = 2, lr = 1e-2 } },
  { "late-balanced", { fusion = "late", dim = 32, text = T, image = HIST },
    { epochs = 3, lr = 1e-2, class_weights = "balanced" } },
  { "joint-max", { fusion = "joint", pool = "max", dim = 32, text = T, image = HIST }, { epochs = 3, lr = 1e-2 } },
  { "joint-mean", { fusion = "joint", pool = "mean", dim = 32, text = T, image = HIST }, { epochs = 3, lr = 1e-2 } },
  { "joint-sum", { fusion = "joint", pool = "sum", dim = 32, text = T, image = HIST }, { epochs = 3, lr = 1e-2 } },
  { "joint-cnn-dropout", { fusion = "joint", pool = "max", dim = 32, text = T, image = CNN,
    dropout = { text = 0.3, image = 0.2 } }, { epochs = 2, lr = 1e-2 } },
  { "commonspace", { fusion = "commonspace", pool = "max", dim = 32, text = T, image = CNN },
    { epochs = 2, lr = 1e-2 } },
  { "commonspace-hard-mean", { fusion = "commonspace", pool = "mean", dim = 32, text = T, image = HIST, hardest = true,
    lambda = 0.5, margin = 0.3 }, { epochs = 3, lr = 1e-2, class_weights = { 1, 2, 1, 1, 3, 1, 1, 1, 2 } } },
  { "features-joint", { fusion = "joint", dim = 32, text = T, image = { encoder = "features" } },
    { epochs = 3, lr = 1e-2 }, "features" },
  { "features-early-dropout", { fusion = "early", dim = 32, text = T, image = { encoder = "features", dropout = 0.25 } },
    { epochs = 3, lr = 1e-2 }, "features" },
  { "vectors-frozen", { fusion = "joint", dim = 16, text = { buckets = 2000, vectors = vec, freeze = true },
    image = HIST }, { epochs = 2, lr = 1e-2 } },
  { "vectors", { fusion = "text", dim = 16, text = { buckets = 2000, vectors = vec } }, { epochs = 2, lr = 1e-2 } },
  { "early-stop-decay", { fusion = "joint", pool = "mean", dim = 32, text = T, image = HIST },
    { epochs = 6, lr = 2e-2, lr_decay = 0.7, patience = 2, batch = 16 } },
  { "backbone", { fusion = "joint", dim = 16, text = { buckets = 2000 },
    image = { encoder = "mobilenet_v2", size = 32 } }, { epochs = 2, lr = 1e-2 }, "small" },
}

local function run_case(c, threads, suffix)
  local name, mo, fo, which = c[1], c[2], c[3], c[4]
  local tr, va, te = train, valid, test
  if which == "features" then tr, va, te = ftrain, fvalid, ftest end
  if which == "small" then tr, va, te = strain, svalid, stest end
  mm.threads(threads)
  local o = {}
  for k, v in pairs(mo) do o[k] = v end
  o.classes = ds.classes
  local m = mm.model(o)
  local f = { seed = 3, valid = va }
  for k, v in pairs(fo) do f[k] = v end
  m:fit(tr, f)
  mm.threads(1)
  local w = {}
  for _, p in ipairs(m:params()) do w[#w + 1] = floats(m:param(p.name)) end
  local probs = { floats(select(2, m:predict(te))) }
  for _, drop in ipairs { "text", "image" } do
    probs[#probs + 1] = floats(m:evaluate(te, { drop = drop }).probs)
  end
  local base = out .. "/" .. name .. suffix
  write(base .. ".w", table.concat(w))
  write(base .. ".p", table.concat(probs))
  m:save(base .. ".mmf")
  local again = mm.load(base .. ".mmf")
  write(base .. ".lp", floats(select(2, again:predict(te))))
  write(base .. ".mmfc", canonical_file(base .. ".mmf"))
  os.remove(base .. ".mmf")
  -- a gradient of the loss on a few rows (the gradient-check path)
  if not which then
    local few = te:subset { 1, 2, 3, 4, 5, 6, 7, 8 }
    local g = {}
    core.fusion.loss_grad(m._c, few._c)
    for _, p in ipairs(m:params()) do g[#g + 1] = floats(core.fusion.grad(m._c, p.name)) end
    write(base .. ".g", table.concat(g))
  end
  io.write(("%-24s %8d params  test accuracy %.4f\n"):format(name .. suffix, m:nparams(), m:evaluate(te).accuracy))
end

for _, c in ipairs(cases) do
  if not only or only == c[1] then run_case(c, 1, "") end
end
if not only or only == "hogwild" then
  run_case({ "text", { fusion = "text", dim = 32, text = T }, { epochs = 3, lr = 1e-2, batch = 8 } }, 2, ".hog")
end
os.execute("rm -r '" .. cache .. "' '" .. vec .. "'")
