-- Threads: mm.threads(n) splits conv2d over the batch (csrc/core/parallel.c). Forward and the
-- input gradient are per sample, so with mmfuse's own kernels (levels avx2/avx512) they are
-- bit-identical to one thread; at the generic level the products are OpenBLAS's, which may
-- thread one sample's product itself (CPU-specific split): there they agree within the bound
-- on two orders of the same sums (util.order_bound). Weight gradients are per-thread partial
-- sums added in thread order (the same for a given thread count, equal to one thread within
-- rounding); the bias gradient is mmfuse's own loop split over channels (bit-identical at
-- every level). Run to run with one thread count the calls are the same and give the same bits
-- (OpenBLAS splits statically).
local mm = require "mmfuse"
local util = require "util"
local S = dofile("spec/fixtures/model/synth.lua")

local slurp = util.read

local function maxdiff(a, b)
  return (a - b):abs():max()
end

local cases = {
  { name = "3x3 padded", n = 7, c = 3, h = 9, w = 8, o = 5, k = 3, opts = { padding = 1 } },
  { name = "stride 2", n = 5, c = 2, h = 7, w = 7, o = 4, k = 3, opts = { stride = 2, padding = 1 } },
  { name = "groups 2", n = 6, c = 4, h = 6, w = 5, o = 6, k = 3, opts = { padding = 1, groups = 2 } },
  { name = "depthwise", n = 5, c = 3, h = 6, w = 6, o = 6, k = 3, opts = { padding = 1, groups = 3 } },
  { name = "1x1 direct", n = 5, c = 4, h = 4, w = 3, o = 3, k = 1, opts = {} },
}

local function conv_all(cs, x, w, b, gy)
  local y = mm.nn.conv2d(x, w, b, cs.opts)
  local gx, gw, gb = mm.nn.conv2d_backward(x, w, b, gy, cs.opts)
  return y, gx, gw, gb
end

-- bounds for forward and input gradient: the same convolutions over |x|, |w|, |gy| give the
-- largest sum of |terms|; k terms per output (c/g * kh * kw), per input (o/g * kh * kw)
local function conv_bounds(cs, x, w, gy)
  local g, kk = cs.opts.groups or 1, cs.k * cs.k
  local ay = mm.nn.conv2d(x:abs(), w:abs(), nil, cs.opts):max()
  local agx = mm.nn.conv2d_backward(x, w:abs(), nil, gy:abs(), cs.opts):max()
  return util.order_bound(cs.c // g * kk, ay), util.order_bound(cs.o // g * kk, agx)
end

describe("mm.threads and threaded conv2d", function()
  local prev
  before_each(function() prev = mm.threads(1) end)
  after_each(function() mm.threads(prev) end)

  it("mm.threads returns the previous count and rejects bad counts", function()
    assert.are.equal(1, mm.threads(2))
    assert.are.equal(2, mm.threads())
    assert.are.equal(2, mm.threads(1))
    assert.has_error(function() mm.threads(0) end)
    assert.has_error(function() mm.threads(1000) end)
    assert.are.equal(1, mm.threads())
  end)

  for _, cs in ipairs(cases) do
    it(cs.name .. ": 2 and 3 threads match 1 thread; each count is deterministic", function()
      mm.seed(11)
      local g = cs.opts.groups or 1
      local x = mm.randn(cs.n, cs.c, cs.h, cs.w)
      local w = mm.randn(cs.o, cs.c // g, cs.k, cs.k)
      local b = mm.randn(cs.o)
      local gy = mm.randn(table.unpack(mm.nn.conv2d(x, w, b, cs.opts):shape()))
      local y1, gx1, gw1, gb1 = conv_all(cs, x, w, b, gy)
      local ty, tgx = conv_bounds(cs, x, w, gy)
      for _, t in ipairs { 2, 3 } do
        mm.threads(t)
        local y, gx, gw, gb = conv_all(cs, x, w, b, gy)
        util.assert_same_or_close(y, y1, util.own_kernels(), ty, "forward with " .. t .. " threads")
        util.assert_same_or_close(gx, gx1, util.own_kernels(), tgx, "grad input with " .. t .. " threads")
        assert.is_true(gb == gb1, "grad bias bit-identical with " .. t .. " threads")
        assert.is_true(maxdiff(gw, gw1) <= 1e-5 * (1 + gw1:abs():max()), "grad weight within rounding")
        local y2, gx2, gw2, gb2 = conv_all(cs, x, w, b, gy)
        assert.is_true(y2 == y and gx2 == gx and gw2 == gw and gb2 == gb, "run to run with " .. t .. " threads")
      end
      mm.threads(1)
      local y, gx, gw, gb = conv_all(cs, x, w, b, gy)
      assert.is_true(y == y1 and gx == gx1 and gw == gw1 and gb == gb1, "back to 1 thread: bit-identical")
    end)
  end

  it("more threads than samples, and a single sample", function()
    mm.seed(3)
    local w = mm.randn(4, 2, 3, 3)
    for _, n in ipairs { 1, 2 } do
      local x = mm.randn(n, 2, 5, 5)
      mm.threads(1)
      local y1 = mm.nn.conv2d(x, w, nil, { padding = 1 })
      local gy = mm.randn(table.unpack(y1:shape()))
      local gx1, gw1 = mm.nn.conv2d_backward(x, w, nil, gy, { padding = 1 })
      mm.threads(4)
      local y = mm.nn.conv2d(x, w, nil, { padding = 1 })
      local gx, gw = mm.nn.conv2d_backward(x, w, nil, gy, { padding = 1 })
      local ty, tgx = conv_bounds({ k = 3, c = 2, o = 4, opts = { padding = 1 } }, x, w, gy)
      util.assert_same_or_close(y, y1, util.own_kernels(), ty, "forward, n = " .. n)
      util.assert_same_or_close(gx, gx1, util.own_kernels(), tgx, "grad input, n = " .. n)
      assert.is_true(maxdiff(gw, gw1) <= 1e-5 * (1 + gw1:abs():max()), "n = " .. n)
    end
  end)

  it("a CNN model trained with 2 threads is deterministic; 1 thread again gives the 1-thread bytes", function()
    local pix = S.make_images { n = 60, size = 8 }
    local tr, va = pix:split { by = "fold", test = { 0 }, valid = { 1 } }
    local function train(path)
      local m = mm.model { fusion = "image", classes = pix.classes, dim = 6, image = { encoder = "cnn", channels = { 4, 8 } } }
      local h = m:fit(tr, { valid = va, epochs = 2, lr = 0.03, batch = 8, seed = 5 })
      m:save(path)
      return slurp(path), h[#h].loss
    end
    local p = os.tmpname()
    mm.threads(1)
    local one, loss1 = train(p)
    mm.threads(2)
    local two_a, loss2 = train(p)
    local two_b = train(p)
    assert.are.equal(two_a, two_b)
    assert.is_true(math.abs(loss2 - loss1) <= 1e-4 * (1 + math.abs(loss1)))
    mm.threads(1)
    local again = train(p)
    assert.are.equal(one, again)
    os.remove(p)
  end)
end)

describe("the thread pool under a joint model (linear rows and the Adam pass split)", function()
  local prev
  before_each(function() prev = mm.threads(1) end)
  after_each(function() mm.threads(prev) end)

  -- 512-d features into dim 128, batch 32: the projection's products (2M multiply-adds) split
  -- their rows over the threads, the Adam pass and the finite test of its 65k weights split the
  -- same rows; with mmfuse's kernels every element is computed as with one thread, so the saved
  -- bytes are equal. At the generic level OpenBLAS splits the products its own way: three epochs
  -- carry that rounding into the weights, measured at most 1e-10 (relative) on the last loss and
  -- 3e-8 on the probabilities over OpenBLAS's Prescott, Haswell, SkylakeX and Zen kernels; the
  -- tolerances below (1e-6, 1e-5) leave a margin of over 300
  it("1, 2 and 3 threads (3: more threads than this machine may have) save the same bytes", function()
    local ds = S.make { n = 200, dim = 512, seed = 21 }
    local function train(t, path)
      mm.threads(t)
      local m = mm.model { fusion = "joint", classes = ds.classes, dim = 128 }
      local h = m:fit(ds, { epochs = 3, batch = 32, lr = 1e-3, seed = 9 })
      m:save(path)
      local _, probs = m:predict(ds)
      mm.threads(1)
      return slurp(path), h[#h].loss, probs
    end
    local p = os.tmpname()
    local one, l1, p1 = train(1, p)
    for _, t in ipairs { 2, 3, 2 } do
      local got, l, probs = train(t, p)
      if util.own_kernels() then
        assert.are.equal(l1, l, t .. " threads: the same losses")
        assert.is_true(got == one, t .. " threads: the same model bytes")
      else
        assert(math.abs(l - l1) <= 1e-6 * l1, ("%d threads: loss %.9g vs %.9g"):format(t, l, l1))
        util.assert_same_or_close(probs, p1, false, 1e-5, t .. " threads: probabilities")
      end
    end
    os.remove(p)
  end)

  -- y = x w^T + b, gx = gy w, gw = gy^T x: bounds from the same products of absolute values
  -- (k = in, out and n terms); exact with mmfuse's kernels, which split rows, never a sum
  local function linear_check(x, w, b, gy, y1, gx1, gw1, gb1, what)
    local y = mm.nn.linear(x, w, b)
    local gx, gw, gb = mm.nn.linear_backward(x, w, b, gy)
    local own, n, fin, fout = util.own_kernels(), x:shape()[1], x:shape()[2], w:shape()[1]
    local ax, aw, agy = x:abs(), w:abs(), gy:abs()
    util.assert_same_or_close(y, y1, own, util.order_bound(fin, mm.nn.linear(ax, aw):max()), what .. ": forward")
    util.assert_same_or_close(gx, gx1, own, util.order_bound(fout, agy:matmul(aw):max()), what .. ": grad input")
    util.assert_same_or_close(gw, gw1, own, util.order_bound(n, agy:transpose():matmul(ax):max()),
      what .. ": grad weight")
    if gb1 then assert.is_true(gb == gb1, what .. ": grad bias (mmfuse's own sums)") end
  end

  it("linear layers split over threads give the bits of one thread, whatever the shape", function()
    mm.seed(8)
    -- n, in, out: a fusion head's projection; short row blocks (8 x 4096 -> 40 splits into 16 + 24
    -- rows, which would take the dot-product path); more rows than one block; odd sizes
    for _, sh in ipairs { { 32, 512, 128 }, { 8, 4096, 40 }, { 16, 1024, 72 }, { 4, 8192, 48 },
                          { 64, 2048, 200 }, { 3, 5000, 300 }, { 33, 700, 100 } } do
      local n, fin, fout = table.unpack(sh)
      local x, w, b, gy = mm.randn(n, fin), mm.randn(fout, fin), mm.randn(fout), mm.randn(n, fout)
      mm.threads(1)
      local y1 = mm.nn.linear(x, w, b)
      local gx1, gw1, gb1 = mm.nn.linear_backward(x, w, b, gy)
      for _, t in ipairs { 2, 3 } do
        mm.threads(t)
        linear_check(x, w, b, gy, y1, gx1, gw1, gb1, ("%dx%d -> %d, %d threads"):format(n, fin, fout, t))
      end
    end
  end)

  it("many short parallel calls in a row, and a count that changes between them", function()
    mm.seed(4)
    local x, w, b = mm.randn(32, 512), mm.randn(128, 512), mm.randn(128)
    local gy = mm.randn(32, 128)
    local y1 = mm.nn.linear(x, w, b)
    local gx1, gw1 = mm.nn.linear_backward(x, w, b, gy)
    for i = 1, 300 do
      mm.threads(i % 3 + 1)
      linear_check(x, w, b, gy, y1, gx1, gw1, nil, "call " .. i)
    end
  end)
end)

describe("image decoding over threads (mm.data.new, mm.data.load)", function()
  local prev
  before_each(function() prev = mm.threads(1) end)
  after_each(function() mm.threads(prev) end)

  local paths, labels = {}, {}
  for line in io.lines("data/emoji32/manifest.tsv") do
    local img = line:match("\t(images/[^\t]+)$")
    if img and #paths < 41 then
      paths[#paths + 1] = "data/emoji32/" .. img
      labels[#labels + 1] = #paths % 2 == 0 and "a" or "b"
    end
  end

  local function build(t, imgs)
    mm.threads(t)
    local ok, ds = pcall(mm.data.new, { labels = labels, classes = { "a", "b" }, image = imgs, image_size = 12 })
    mm.threads(1)
    return ok, ds
  end

  it("gives every thread count the same pixels", function()
    local ok1, d1 = build(1, paths)
    local ok2, d2 = build(2, paths)
    assert.is_true(ok1 and ok2)
    local m = mm.model { fusion = "image", classes = { "a", "b" }, dim = 4, image = { encoder = "cnn", channels = { 4 } } }
    m:fit(d1, { epochs = 1, seed = 1 })
    local _, p1 = m:predict(d1)
    local _, p2 = m:predict(d2)
    assert.is_true(p1 == p2, "the same predictions from both datasets")
  end)

  it("reports the first bad row, as one thread does", function()
    local imgs = { table.unpack(paths) }
    local function fails_with(...)
      for _, t in ipairs { 1, 2 } do
        local ok, err = build(t, imgs)
        assert.is_false(ok)
        for _, pat in ipairs { ... } do assert.matches(pat, tostring(err)) end
      end
    end
    imgs[7] = "data/emoji32/images/NO-SUCH.png"
    imgs[33] = "spec/threads_spec.lua" -- not an image, later in the second thread's half
    fails_with("row 7: ", "NO%-SUCH")
    imgs[7] = paths[7]
    fails_with("row 33: ")
    imgs[20] = 5 -- a wrong type after a file that fails: the file's row comes first
    imgs[3] = "data/emoji32/images/NO-SUCH.png"
    fails_with("row 3: ")
    imgs[3] = paths[3]
    fails_with("image of row 20 must be a string, got number")
  end)
end)
