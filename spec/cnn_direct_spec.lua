-- mm.nn.cnn_forward (csrc/nn/cnn_direct.c): CNN inference by direct convolution, against
-- the layer-by-layer kernels (conv2d + relu + max_pool2d + global_avg_pool), with the
-- AVX-512, AVX2 and portable tiles, across thread counts; and the model's predict, which
-- uses it, against the im2col path it replaced.
local mm = require "mmfuse"
local util = require "util"

local function kernels() return util.gemm_kernels() end

-- every test leaves the gemm kernel and the thread count as it found them
local function keep_settings() util.keep_kernel_and_threads(before_each, after_each) end

local function reference(x, blocks)
  for _, b in ipairs(blocks) do
    local k = b.weight:shape()[3]
    x = mm.nn.relu(mm.nn.conv2d(x, b.weight, b.bias, { padding = k // 2 }))
    if b.pool then x = mm.nn.max_pool2d(x, 2) end
  end
  return mm.nn.global_avg_pool(x)
end

local close = util.assert_close

-- {N, C, H, W, {{out, k, pool}, ...}}: every path of cnn_direct.c (channel-vector tiles,
-- position-vector blocks, Winograd); channel counts below, at and past the vector
-- widths (8, 16, 32) and their mixes, kernels 1 to 7, odd sizes, unpooled blocks
local cases = {
  { 3, 3, 32, 32, { { 16, 3, true }, { 32, 3, true }, { 64, 3, true } } },
  { 2, 3, 13, 11, { { 5, 3, true }, { 17, 5, true }, { 40, 3, false } } },
  { 1, 1, 7, 9, { { 48, 1, false }, { 8, 7, true } } },
  { 4, 2, 4, 4, { { 3, 3, true }, { 4, 3, true }, { 70, 3, false } } },
  { 2, 5, 1, 1, { { 33, 3, false } } },
  { 1, 3, 2, 40, { { 24, 5, true }, { 9, 3, false } } },
  { 5, 4, 16, 16, { { 31, 3, false }, { 12, 5, true }, { 16, 1, true } } },
  -- Winograd F(4x4, 3x3) blocks (3x3, pooled, >= 8 input channels): the first block
  -- (input planes to channels-last), sizes not a multiple of 4 and odd (tiles past the
  -- edge), one to five channel vectors (70 outputs: products of 4 + 1 vectors), Winograd
  -- into Winograd, into a direct block (planes), a direct block with and without a pool
  -- into Winograd, and 90 tiles (segments of 16 and a partial last one)
  { 2, 9, 6, 10, { { 20, 3, true }, { 33, 3, true } } },
  { 1, 8, 4, 36, { { 48, 3, true }, { 16, 3, true } } },
  { 3, 12, 8, 8, { { 8, 3, true }, { 70, 3, true }, { 5, 1, false } } },
  { 2, 3, 12, 20, { { 10, 5, false }, { 24, 3, true }, { 40, 3, true } } },
  { 1, 4, 18, 14, { { 20, 5, true }, { 9, 3, true } } },
  { 1, 8, 40, 36, { { 16, 3, true }, { 8, 3, true } } },
  -- small maps: images run in groups (up to 8) through the Winograd blocks, 11 images
  -- make a partial last group on one thread and on two
  { 11, 8, 8, 8, { { 24, 3, true }, { 16, 3, true } } },
  -- a Winograd block without a pool (all 16 outputs of a tile, odd sizes), into a pooled one
  { 2, 9, 7, 13, { { 12, 3, false }, { 20, 3, true } } },
  -- position-vector blocks (pooled, <= 16 outputs, not last): rows of 70 (three chunks of
  -- 32), an odd height, kernel 5, 16 outputs in four groups of four
  { 1, 3, 7, 70, { { 6, 3, true }, { 4, 1, false } } },
  { 2, 2, 9, 12, { { 16, 5, true }, { 7, 3, true }, { 3, 3, false } } },
}

describe("cnn_forward", function()
  keep_settings()

  for ci, c in ipairs(cases) do
    local N, C, H, W, spec = table.unpack(c)
    local desc = {}
    for _, s in ipairs(spec) do desc[#desc + 1] = ("%d@%dx%d%s"):format(s[1], s[2], s[2], s[3] and "+pool" or "") end
    it(("matches conv2d + relu + max_pool2d + global_avg_pool: x %dx%dx%dx%d, %s"):format(N, C, H, W,
      table.concat(desc, " ")), function()
      mm.seed(ci)
      local x, blocks, cin = mm.randn(N, C, H, W), {}, C
      for i, s in ipairs(spec) do
        blocks[i] = { weight = mm.randn(s[1], cin, s[2], s[2]) * 0.3, bias = i % 2 == 1 and mm.randn(s[1]) * 0.1 or nil,
          pool = s[3] }
        cin = s[1]
      end
      local ref = reference(x, blocks)
      for _, k in ipairs(kernels()) do
        for _, wino in ipairs { true, false } do
          local o, what = { winograd = wino }, k .. (wino and " (winograd where it applies)" or " (direct only)")
          mm.gemm_kernel(k)
          mm.threads(1)
          local y1 = mm.nn.cnn_forward(x, blocks, o)
          close(y1, ref, what)
          mm.threads(2)
          assert.is_true(mm.nn.cnn_forward(x, blocks, o) == y1, what .. ": 2 threads give the bits of 1")
          -- one image at a time gives the bits of the batch (the sums are per image)
          local row = mm.nn.cnn_forward(x:rows(N, N), blocks, o)
          assert.is_true(row == y1:rows(N, N), what .. ": the last image alone")
        end
      end
    end)
  end

  it("takes blocks given as tables of numbers, and no bias", function()
    local x = mm.tensor { { { { 1, 2 }, { 3, 4 } } } } -- 1x1x2x2
    local y = mm.nn.cnn_forward(x, { { weight = { { { { 1 } } } } } })
    assert.same({ 1, 1 }, y:shape())
    assert.near(2.5, y[1][1], 1e-6)
    y = mm.nn.cnn_forward(x, { { weight = { { { { -1 } } } }, bias = { 10 }, pool = true } })
    assert.near(9, y[1][1], 1e-6) -- max of relu(10 - x) over the 2x2 window
  end)

  it("names the argument and block of every bad input", function()
    local x, w = mm.randn(2, 3, 8, 8), mm.randn(4, 3, 3, 3)
    local function err(pat, ...)
      local ok, msg = pcall(mm.nn.cnn_forward, ...)
      assert.is_false(ok)
      assert.matches(pat, tostring(msg))
    end
    err("x must be 4%-d", mm.randn(3, 8, 8), { { weight = w } })
    err("blocks %(argument #2%) must list 1 to 8", x, {})
    err("must list 1 to 8 blocks, got 9", x, { { weight = w }, { weight = w }, { weight = w }, { weight = w },
      { weight = w }, { weight = w }, { weight = w }, { weight = w }, { weight = w } })
    err("block 1 must be a table", x, { 5 })
    err("block 1 has no weight", x, { { bias = mm.randn(4) } })
    err("block 1: weight must be %[out, in, k, k%] with k odd", x, { { weight = mm.randn(4, 3, 2, 2) } })
    err("block 1: weight must be", x, { { weight = mm.randn(4, 3, 3, 1) } })
    err("block 1: weight must be", x, { { weight = mm.randn(4, 3, 13, 13) } })
    err("block 2: weight 5x3x3x3 expects 3 input channels, the input has 4", x,
      { { weight = w }, { weight = mm.randn(5, 3, 3, 3) } })
    err("block 1: bias has shape 3, expected 4", x, { { weight = w, bias = mm.randn(3) } })
    err("block 3: cannot pool a 1x1 map", mm.randn(1, 3, 4, 4),
      { { weight = w, pool = true }, { weight = mm.randn(4, 4, 1, 1), pool = true }, { weight = mm.randn(2, 4, 1, 1), pool = true } })
    err("option 'pool' must be a boolean", x, { { weight = w, pool = 1 } })
    err("weight: tensor or table expected", x, { { weight = "w" } })
    err("options %(argument #3%) must be a table", x, { { weight = w } }, 5)
    err("option 'winograd' must be a boolean", x, { { weight = w } }, { winograd = 1 })
  end)
end)

describe("the model's CNN predictions (direct convolution)", function()
  local S = dofile("spec/fixtures/model/synth.lua")
  keep_settings()

  it("agree with the im2col path, on any thread count and batch size", function()
    local r = S.rng(4)
    local classes, labels, imgs, texts = { "a", "b", "c" }, {}, {}, {}
    for i = 1, 40 do
      local c = (i - 1) % 3 + 1
      labels[i], imgs[i], texts[i] = classes[c], S.image_for(c, r, 12), "w" .. c .. " x" .. (i % 5)
    end
    local ds = mm.data.new { labels = labels, classes = classes, text = texts, image = imgs, image_bytes = true,
      image_size = 12 }
    local m = mm.model { fusion = "joint", classes = classes, dim = 8,
      image = { encoder = "cnn", channels = { 6, 20, 35 } } }
    m:fit(ds, { epochs = 3, lr = 0.05, seed = 1, batch = 8 })
    mm.threads(1)
    mm.gemm_kernel("generic") -- no fast direct tiles: the im2col + GEMM path
    local names_ref, p_ref = m:predict(ds)
    for _, k in ipairs(kernels()) do
      if k ~= "generic" then
        mm.gemm_kernel(k)
        mm.threads(1)
        local names, p = m:predict(ds)
        assert.same(names_ref, names)
        local err = (p - p_ref):abs():max()
        assert(err <= 1e-5, k .. ": max |dP| " .. err)
        -- bit-exact: the direct tiles sum each image on one thread in a fixed order, and the
        -- fusion head's products (mmfuse's kernels) split rows, never a sum, over threads
        mm.threads(2)
        local _, p2 = m:predict(ds)
        assert.is_true(p2 == p, k .. ": 2 threads give the bits of 1")
        -- the model switches back to im2col and again to direct in one workspace. OpenBLAS
        -- threads its products itself, with a split (and so sums) that depends on the CPU
        -- it detects: the im2col result is compared within the tolerance above
        mm.gemm_kernel("generic")
        local _, pb = m:predict(ds)
        local eb = (pb - p_ref):abs():max()
        assert(eb <= 1e-5, k .. " -> generic: the im2col path again, max |dP| " .. eb)
        mm.gemm_kernel(k)
        local _, pk = m:predict(ds)
        assert.is_true(pk == p2, k .. " -> generic -> " .. k .. ": the direct path's bits again")
      end
    end
  end)
end)

describe("the model's packed CNN kernels", function()
  local S = dofile("spec/fixtures/model/synth.lua")
  keep_settings()

  -- predictions now, and from the im2col path (the reference, packs nothing)
  local function both(m, ds)
    local _, p = m:predict(ds)
    local k = mm.gemm_kernel()
    mm.gemm_kernel("generic")
    local _, ref = m:predict(ds)
    mm.gemm_kernel(k)
    return p, ref
  end

  it("follow every change of the weights: set_param, fit, restore, a saved and loaded model", function()
    local r = S.rng(8)
    local classes, labels, imgs = { "a", "b" }, {}, {}
    for i = 1, 12 do
      local c = (i - 1) % 2 + 1
      labels[i], imgs[i] = classes[c], S.image_for(c, r, 8)
    end
    local ds = mm.data.new { labels = labels, classes = classes, image = imgs, image_bytes = true, image_size = 8 }
    local m = mm.model { fusion = "image", classes = classes, dim = 4, image = { encoder = "cnn", channels = { 4, 6 } } }
    m:fit(ds, { epochs = 1, lr = 0.05, seed = 1, batch = 4 })
    local function check(what)
      local p, ref = both(m, ds)
      local err = (p - ref):abs():max()
      assert(err <= 1e-5, what .. ": max |dP| " .. err)
      return p
    end
    local p0 = check("after fit")
    assert.is_true(check("again (packed kernels reused)") == p0)
    local w = m:param("image.conv2.weight")
    m:set_param("image.conv2.weight", w * -1.5)
    local p1 = check("after set_param")
    assert.is_false(p1 == p0)
    local C = require("mmfuse.core").fusion
    local snap = C.snapshot(m._c)
    m:fit(ds, { epochs = 1, lr = 0.5, seed = 2, batch = 4 })
    check("after another fit")
    C.restore(m._c, snap)
    assert.is_true(check("after restore") == p1)
    local path = os.tmpname()
    m:set_param("image.conv1.weight", m:param("image.conv1.weight") * 0.5)
    local p2 = check("before save")
    m:save(path)
    m:set_param("image.conv1.weight", m:param("image.conv1.weight") * 3)
    check("after set_param again")
    local m2 = mm.load(path)
    os.remove(path)
    assert.is_true(select(2, m2:predict(ds)) == p2)
  end)
end)

describe("mm.nn.conv2d, stride 1 and 'same' padding (the direct tiles, position vectors, Winograd)", function()
  keep_settings()

  -- {N, C, H, W, O, k}
  -- (few outputs: position vectors written NCHW; 3 x 3 with >= 8 inputs: Winograd without a pool)
  for _, c in ipairs { { 2, 3, 32, 32, 16, 3 }, { 3, 16, 16, 16, 32, 3 }, { 1, 5, 7, 9, 17, 5 }, { 2, 40, 3, 4, 70, 1 },
    { 1, 2, 1, 1, 3, 3 }, { 4, 8, 11, 6, 33, 7 }, { 1, 3, 9, 45, 8, 3 }, { 2, 12, 7, 10, 20, 3 }, { 1, 4, 5, 70, 6, 5 } } do
    local N, C, H, W, O, k = table.unpack(c)
    it(("matches the im2col path: x %dx%dx%dx%d, %d outputs, kernel %d"):format(N, C, H, W, O, k), function()
      mm.seed(N + C + O + k)
      local x, w, b = mm.randn(N, C, H, W), mm.randn(O, C, k, k), mm.randn(O)
      mm.gemm_kernel("generic") -- no direct tiles: im2col + cblas_sgemm
      local ref, ref_nb = mm.nn.conv2d(x, w, b, { padding = k // 2 }), mm.nn.conv2d(x, w, nil, { padding = k // 2 })
      for _, kern in ipairs(kernels()) do
        if kern ~= "generic" then
          mm.gemm_kernel(kern)
          mm.threads(1)
          local y = mm.nn.conv2d(x, w, b, { padding = k // 2 })
          close(y, ref, kern)
          close(mm.nn.conv2d(x, w, nil, { padding = k // 2 }), ref_nb, kern .. " no bias")
          assert.is_true(y:min() < 0, "no ReLU in conv2d")
          mm.threads(2)
          assert.is_true(mm.nn.conv2d(x, w, b, { padding = k // 2 }) == y, kern .. ": 2 threads give the bits of 1")
        end
      end
    end)
  end
end)
