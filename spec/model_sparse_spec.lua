-- The training loop's sparse tables and fused optimiser pass (csrc/model/params.c, update.c,
-- csrc/nn/optim.c): compact gradient rows, the packed Adam state of the
-- embedding rows, its reset on a new fit, and the rollback of a failed step.
local mm = require "mmfuse"
local core = require "mmfuse.core"
local S = dofile("spec/fixtures/model/synth.lua")
local C = core.fusion

local ds = S.make { n = 96, miss_text = 0.2, miss_feat = 0.2, seed = 5 }
local other = S.make { n = 40, miss_text = 0.1, miss_feat = 0.1, seed = 9, p_text = 0.2 }

local function new(fusion)
  return mm.model { fusion = fusion or "commonspace", classes = ds.classes, dim = 8, text = { ngrams = 2, buckets = 64 } }
end

local function weights(m)
  local t = {}
  for _, p in ipairs(m:params()) do t[p.name] = m:param(p.name) end
  return t
end

local function same(a, b)
  for name, w in pairs(a) do
    if not mm.allclose(w, b[name], 0) then return false, name end
  end
  return true
end

-- a copy with the same weights and a fresh optimiser (through a model file)
local function copy(m)
  local path = os.tmpname()
  m:save(path)
  local c = mm.load(path)
  os.remove(path)
  return c
end

describe("sparse tables in training", function()
  for _, fusion in ipairs { "joint", "commonspace", "text" } do
    it(fusion .. ": a new fit starts from a clean optimiser state (same as a reloaded copy)", function()
      local m = new(fusion)
      m:fit(ds, { epochs = 2, lr = 0.05, seed = 1, batch = 8 })
      local c = copy(m)
      local mid = weights(c)
      m:fit(ds, { epochs = 2, lr = 0.05, seed = 2, batch = 8 })
      c:fit(ds, { epochs = 2, lr = 0.05, seed = 2, batch = 8 })
      local ok, name = same(weights(m), weights(c))
      assert.is_true(ok, name)
      -- the second fit moved the weights (the comparison is not vacuous)
      assert.is_false(same(mid, weights(m)))
    end)
  end

  it("the embedding gradient of a batch holds only that batch's rows", function()
    local m = new "joint"
    m:fit(ds, { epochs = 1, lr = 0.05, seed = 1, batch = 8 })
    local c = copy(m)
    C.loss_grad(m._c, ds._c) -- touches many rows
    local l1 = C.loss_grad(m._c, other._c)
    local l2 = C.loss_grad(c._c, other._c)
    assert.are.equal(l1, l2)
    local g1, g2 = C.grad(m._c, "text.embedding"), C.grad(c._c, "text.embedding")
    assert.is_true(mm.allclose(g1, g2, 0))
    -- some rows have a gradient, most do not
    local nz = 0
    for _, row in ipairs(g1:totable()) do
      for _, v in ipairs(row) do
        if v ~= 0 then
          nz = nz + 1
          break
        end
      end
    end
    assert.is_true(nz > 0 and nz < g1:shape()[1], tostring(nz))
  end)

  it("a step that makes a weight non-finite is rolled back entirely (sparse rows included)", function()
    local one = S.make { n = 24, seed = 3 }
    local m = mm.model { fusion = "joint", classes = one.classes, dim = 8, text = { ngrams = 2, buckets = 64 } }
    m:fit(one, { epochs = 1, lr = 0.01, seed = 1, batch = 24 })
    local before = weights(m)
    -- one batch per epoch; lr * (g + wd * p) overflows for some weight in the first step
    local ok, e = pcall(m.fit, m, one, { epochs = 1, lr = 3e38, optimizer = "sgd", weight_decay = 1e3, batch = 24 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("batch 1", 1, true), tostring(e))
    local ok2, name = same(before, weights(m))
    assert.is_true(ok2, name)
    -- the same with Adam: the model trains on normally afterwards
    ok = pcall(m.fit, m, one, { epochs = 1, lr = 3e38, weight_decay = 1e30, batch = 24 })
    assert.is_false(ok)
    ok2, name = same(before, weights(m))
    assert.is_true(ok2, name)
    m:fit(one, { epochs = 2, lr = 0.01, seed = 1, batch = 8 })
    assert.is_false(same(before, weights(m)))
  end)
end)
