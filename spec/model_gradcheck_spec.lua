-- Finite differences on whole models: the gradients the C training loop uses (fusion
-- heads, learned missing embeddings, late fusion, masked pooling, the common-space
-- ranking loss, the cnn) agree with the loss they come from.
local mm = require "mmfuse"
local core = require "mmfuse.core"
local S = dofile("spec/fixtures/model/synth.lua")
local C = core.fusion
local G = require "gradcheck"

local function check(m, ds, names, tol)
  local loss0 = C.loss_grad(m._c, ds._c)
  assert.is_true(loss0 > 0)
  local checked = 0
  for _, name in ipairs(names) do
    local gflat, flat, shape, n = G.model_param(C, m, name)
    -- the largest gradients plus a few fixed positions
    local idx = {}
    local order = {}
    for i = 1, n do order[i] = i end
    table.sort(order, function(a, b) return math.abs(gflat[a]) > math.abs(gflat[b]) end)
    for k = 1, math.min(4, n) do idx[#idx + 1] = order[k] end
    idx[#idx + 1] = 1
    idx[#idx + 1] = n
    for _, i in ipairs(idx) do
      local fd = G.model_fd(mm, C, m, ds, name, flat, shape, i, 1e-2)
      local err = math.abs(fd - gflat[i])
      assert.is_true(err <= (tol or 2e-3) + 3e-2 * math.abs(fd),
        ("%s[%d]: finite difference %.6g, gradient %.6g"):format(name, i, fd, gflat[i]))
      checked = checked + 1
    end
    C.loss_grad(m._c, ds._c)
  end
  return checked
end

local ds = S.make { n = 15, miss_text = 0.3, miss_feat = 0.3, seed = 3 }

local function built(o, data)
  o.classes = (data or ds).classes
  o.dim = o.dim or 6
  o.text = o.text or { ngrams = 2, buckets = 50 }
  local m = mm.model(o)
  m:fit(data or ds, { epochs = 1, lr = 0.05, seed = 2, batch = 4 })
  return m
end

describe("model gradients match finite differences", function()
  it("early fusion (classifier, learned missing embeddings, text embedding)", function()
    local m = built { fusion = "early" }
    assert.is_true(check(m, ds, { "classifier.weight", "classifier.bias", "text.missing", "image.missing",
      "text.embedding" }) > 20)
  end)

  it("late fusion (one classifier per modality)", function()
    local m = built { fusion = "late" }
    check(m, ds, { "text.classifier.weight", "image.classifier.weight", "image.classifier.bias", "text.embedding" })
  end)

  it("joint fusion with mean, sum and max pooling", function()
    for _, pool in ipairs { "mean", "sum", "max" } do
      local m = built { fusion = "joint", pool = pool }
      check(m, ds, { "classifier.weight", "image.proj.weight", "image.proj.bias", "text.embedding" })
    end
  end)

  it("common-space fusion: NLL + lambda * ranking loss", function()
    for _, o in ipairs { { lambda = 1, margin = 0.5 }, { lambda = 2, margin = 1, hardest = true } } do
      -- no modality dropout (common-space's default drops pictures at random): finite
      -- differences need the same loss function at every evaluation
      o.fusion, o.pool, o.dropout = "commonspace", "mean", { image = 0 }
      local m = built(o)
      local with = C.loss_grad(m._c, ds._c)
      check(m, ds, { "image.proj.weight", "image.proj.bias", "text.embedding", "classifier.weight" })
      -- the auxiliary term really is in the loss
      local j = built { fusion = "joint", pool = "mean" }
      assert.are_not.equal(with, C.loss_grad(j._c, ds._c))
    end
  end)

  it("the cnn image encoder", function()
    local imgs = S.make_images { n = 6, size = 8 }
    local m = built({ fusion = "image", image = { encoder = "cnn", channels = { 3, 4 } } }, imgs)
    check(m, imgs, { "image.conv1.weight", "image.conv1.bias", "image.conv2.weight", "classifier.weight" }, 5e-3)
  end)
end)
