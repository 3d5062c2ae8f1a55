-- The model's CNN encoder runs channel-major over the whole batch (csrc/nn/conv2d.c
-- mm_conv2d_cn_*, fused bias + ReLU, fused max-pool + ReLU backward, the forward's
-- im2col reused in backward). Checked here against the NCHW kernels of mm.nn, finite
-- differences, and across thread counts.
local mm = require "mmfuse"
local core = require "mmfuse.core"
local S = dofile("spec/fixtures/model/synth.lua")
local C = core.fusion
local G = require "gradcheck"
local util = require "util"

local MEAN, STD = 0.5, 0.25 -- the CNN encoder's input normalisation (csrc/model/encode_cnn.c)

-- n images of size px (all present) and their NCHW model input
local function images(n, px, seed)
  local r = S.rng(seed)
  local classes, labels, imgs, ts = { "a", "b", "c" }, {}, {}, {}
  for i = 1, n do
    local c = (i - 1) % 3 + 1
    labels[i] = classes[c]
    imgs[i] = S.image_for(c, r, px)
    ts[i] = mm.image.normalize(mm.image.decode(imgs[i]), { MEAN, MEAN, MEAN }, { STD, STD, STD })
  end
  local ds = mm.data.new { labels = labels, classes = classes, image = imgs, image_bytes = true, image_size = px }
  return ds, core.image.batch(ts)
end

-- the model's probabilities recomputed with the NCHW kernels of mm.nn
local function reference(m, x, nblocks, k)
  for b = 1, nblocks do
    x = mm.nn.relu(mm.nn.conv2d(x, m:param("image.conv" .. b .. ".weight"), m:param("image.conv" .. b .. ".bias"),
      { padding = k // 2 }))
    local sh = x:shape()
    if sh[3] >= 2 and sh[4] >= 2 then x = mm.nn.max_pool2d(x, 2) end
  end
  local h = mm.nn.global_avg_pool(x)
  return mm.nn.softmax(mm.nn.linear(h, m:param("classifier.weight"), m:param("classifier.bias")))
end

local function maxdiff(a, b) return (a - b):abs():max() end

local configs = {
  { name = "3 pooled blocks, kernel 3, 16 px", px = 16, ch = { 3, 4, 5 }, k = 3 },
  { name = "last block unpooled (4 px), kernel 3", px = 4, ch = { 3, 4, 5 }, k = 3 },
  { name = "kernel 5, odd size 10 px", px = 10, ch = { 4, 6 }, k = 5 },
  { name = "kernel 1", px = 8, ch = { 5, 3 }, k = 1 },
  -- 11 x 27 x 64 x 64 > 2^20 floats: inference builds its im2col a chunk at a time
  { name = "64 px (chunked inference im2col)", px = 64, ch = { 4, 6 }, k = 3 },
}

describe("channel-major CNN encoder", function()
  local prev
  before_each(function() prev = mm.threads(1) end)
  after_each(function() mm.threads(prev) end)

  for _, cf in ipairs(configs) do
    it(cf.name .. ": predictions match the NCHW kernels, before and after training", function()
      local ds, x = images(11, cf.px, 5)
      local m = mm.model { fusion = "image", classes = ds.classes, dim = 4,
        image = { encoder = "cnn", channels = cf.ch, kernel = cf.k } }
      -- batch 4 over 11 rows: a short last batch; then predict all 11 at once
      m:fit(ds, { epochs = 2, lr = 0.05, seed = 3, batch = 4 })
      local p = C.predict(m._c, ds._c)
      local ref = reference(m, x, #cf.ch, cf.k)
      assert.same(ref:shape(), p:shape())
      assert.is_true(maxdiff(p, ref) <= 1e-5, cf.name .. ": max diff " .. maxdiff(p, ref))
      -- the same from a freshly loaded model (forward-only workspace)
      local path = os.tmpname()
      m:save(path)
      local m2 = mm.load(path)
      os.remove(path)
      assert.is_true(C.predict(m2._c, ds._c) == p, "loaded model: bit-identical predictions")
    end)

    it(cf.name .. ": gradients agree with finite differences", function()
      local ds = images(6, cf.px, 9)
      local m = mm.model { fusion = "image", classes = ds.classes, dim = 4,
        image = { encoder = "cnn", channels = cf.ch, kernel = cf.k } }
      m:fit(ds, { epochs = 1, lr = 0.05, seed = 2, batch = 4 })
      local checked = 0
      for b = 1, #cf.ch do
        for _, what in ipairs { "weight", "bias" } do
          local name = ("image.conv%d.%s"):format(b, what)
          C.loss_grad(m._c, ds._c)
          local gflat, flat, shape, n = G.model_param(C, m, name)
          local best = 1
          for i = 2, n do if math.abs(gflat[i]) > math.abs(gflat[best]) then best = i end end
          for _, i in ipairs { best, 1, n } do
            local fd = G.model_fd(mm, C, m, ds, name, flat, shape, i, 1e-2)
            assert.is_true(math.abs(fd - gflat[i]) <= 5e-3 + 3e-2 * math.abs(fd),
              ("%s[%d]: finite difference %.6g, gradient %.6g"):format(name, i, fd, gflat[i]))
            checked = checked + 1
          end
        end
      end
      assert.are.equal(#cf.ch * 2 * 3, checked)
    end)
  end

  -- With mmfuse's kernels the batch is split over images and every product keeps its order of
  -- summation: byte-identical models. At the generic level the products are OpenBLAS's, split
  -- over threads its own way: two epochs end within 5e-9 (relative loss) and 6e-8
  -- (probabilities) of one thread, measured over OpenBLAS's Prescott, Haswell, SkylakeX and Zen
  -- kernels; the tolerances (1e-6, 1e-5) leave a margin of over 150
  it("training with 1, 2 and 3 threads writes byte-identical models", function()
    local ds = images(21, 8, 4)
    local function train(t)
      mm.threads(t)
      local m = mm.model { fusion = "image", classes = ds.classes, dim = 4,
        image = { encoder = "cnn", channels = { 4, 6 } } }
      local h = m:fit(ds, { epochs = 2, lr = 0.03, seed = 7, batch = 8 })
      local path = os.tmpname()
      m:save(path)
      local bytes = util.read(path)
      os.remove(path)
      return bytes, C.predict(m._c, ds._c), h[#h].loss
    end
    local one, p1, l1 = train(1)
    for _, t in ipairs { 2, 3 } do
      local b, p, l = train(t)
      if util.own_kernels() then
        assert.is_true(b == one, t .. " threads: same model bytes as 1 thread")
        assert.is_true(p == p1, t .. " threads: same predictions as 1 thread")
      else
        assert(math.abs(l - l1) <= 1e-6 * l1, ("%d threads: loss %.9g vs %.9g"):format(t, l, l1))
        util.assert_same_or_close(p, p1, false, 1e-5, t .. " threads: predictions")
      end
    end
  end)
end)
