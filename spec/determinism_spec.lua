-- Determinism: the same seed on one thread gives bit-identical weights (saved file bytes),
-- losses and metrics, for every fusion type, with dropout, shuffling, early stopping and a
-- CNN image encoder in play; also in a separate process. (model_train_spec checks
-- commonspace weights in memory; this compares what lands on disk.)
local mm = require "mmfuse"
local util = require "util"
local cjson = require "cjson"
local S = dofile("spec/fixtures/model/synth.lua")

local slurp = util.read

local dir = util.tmpdir()

local prev_threads = mm.threads(1)

local feats = S.make { n = 120 }
local ftrain, fvalid, ftest = feats:split { by = "fold", test = { 0 }, valid = { 1 } }
local pix = S.make_images { n = 60, size = 8 }
local ptrain, pvalid, ptest = pix:split { by = "fold", test = { 0 }, valid = { 1 } }

local function run(fusion, cnn, seed, path)
  local ds, tr, va, te = feats, ftrain, fvalid, ftest
  local image
  if cnn then
    ds, tr, va, te = pix, ptrain, pvalid, ptest
    image = { encoder = "cnn", channels = { 4 } }
  end
  local m = mm.model { fusion = fusion, classes = ds.classes, dim = 6, text = { buckets = 64, ngrams = 2 },
    image = image, dropout = { text = 0.3, image = 0.3 } }
  local h = m:fit(tr, { valid = va, epochs = 3, lr = 0.03, batch = 8, seed = seed })
  m:save(path)
  return h, m:evaluate(te), m:evaluate(te, { drop = "text" })
end

local function same_history(ha, hb)
  assert.are.equal(#ha, #hb)
  for e = 1, #ha do
    for _, k in ipairs { "loss", "train_accuracy", "valid_accuracy", "valid_macro_f1", "valid_loss" } do
      assert.are.equal(ha[e][k], hb[e][k], k .. " of epoch " .. e)
    end
  end
  assert.are.equal(ha.best_epoch, hb.best_epoch)
end

local function same_result(ra, rb)
  for _, k in ipairs { "accuracy", "macro_f1", "log_loss", "n" } do assert.are.equal(ra[k], rb[k], k) end
  assert.are.same(ra.confusion, rb.confusion)
  assert.is_true(mm.allclose(ra.probs, rb.probs, 0))
end

describe("determinism (one thread)", function()
  for _, case in ipairs {
    { "text" }, { "image" }, { "early" }, { "late" }, { "joint" }, { "commonspace" },
    { "image", true }, { "joint", true }, { "commonspace", true },
  } do
    local fusion, cnn = case[1], case[2]
    it(fusion .. (cnn and " with a cnn" or "") .. ": same seed -> same file bytes, losses, metrics", function()
      local pa, pb, pc = dir .. "/a.mmf", dir .. "/b.mmf", dir .. "/c.mmf"
      local ha, ra, rda = run(fusion, cnn, 7, pa)
      local hb, rb, rdb = run(fusion, cnn, 7, pb)
      assert.is_true(slurp(pa) == slurp(pb), "saved files differ")
      same_history(ha, hb)
      same_result(ra, rb)
      same_result(rda, rdb)
      run(fusion, cnn, 8, pc)
      assert.is_false(slurp(pa) == slurp(pc), "another seed gave the same weights")
    end)
  end

  it("a second process with the same seed writes the same weights", function()
    local pa, pb = dir .. "/p1.mmf", dir .. "/p2.mmf"
    run("commonspace", false, 11, pa)
    local script = dir .. "/child.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
package.path = %q
package.cpath = %q
local mm = require "mmfuse"
mm.threads(1)
local S = dofile("spec/fixtures/model/synth.lua")
local feats = S.make { n = 120 }
local tr, va = feats:split { by = "fold", test = { 0 }, valid = { 1 } }
local m = mm.model { fusion = "commonspace", classes = feats.classes, dim = 6, text = { buckets = 64, ngrams = 2 },
  dropout = { text = 0.3, image = 0.3 } }
m:fit(tr, { valid = va, epochs = 3, lr = 0.03, batch = 8, seed = 11 })
m:save(%q)
]]):format(package.path, package.cpath, pb))
    f:close()
    assert.is_true(os.execute("lua5.4 " .. script) == true)
    local a, b = slurp(pa), slurp(pb)
    local na, nb = string.unpack("<I8", a), string.unpack("<I8", b)
    assert.is_true(a:sub(9 + na) == b:sub(9 + nb), "tensor bytes differ between processes")
    local abytes, bbytes = #a - 8 - na, #b - 8 - nb
    assert.are.equal(abytes, bbytes)
    -- the header may list JSON keys in another order; its content is the same
    local ha, hb = cjson.decode(a:sub(9, 8 + na)), cjson.decode(b:sub(9, 8 + nb))
    for _, k in ipairs { "config", "classes", "vocabulary", "tokenizer" } do
      assert.are.same(cjson.decode(ha.__metadata__[k]), cjson.decode(hb.__metadata__[k]), k)
    end
    ha.__metadata__, hb.__metadata__ = nil, nil
    assert.are.same(ha, hb)
  end)

  teardown(function()
    mm.threads(prev_threads)
    os.execute("rm -rf " .. dir)
  end)
end)
