-- Cases that break naive code, and the documented conventions of mm.nn.
local mm = require "mmfuse"
local G = require "gradcheck"
local flat = G.flat

local function finite(t)
  for _, v in ipairs(flat(t)) do
    if v ~= v or v == math.huge or v == -math.huge then return false end
  end
  return true
end

local function near(a, b, tol)
  local ok, worst = mm.allclose(a, b, tol or 1e-5)
  assert.is_true(ok, "largest difference " .. tostring(worst))
end

describe("nn edge cases", function()
  before_each(function() mm.seed(7) end)

  describe("softmax on logits of +-1e4", function()
    local x = mm.tensor { { 1e4, -1e4, 0 }, { -1e4, -1e4, -1e4 }, { 1e4, 1e4, -1e4 } }

    it("softmax stays finite and sums to 1", function()
      local y = mm.nn.softmax(x)
      assert.is_true(finite(y))
      near(y, mm.tensor { { 1, 0, 0 }, { 1 / 3, 1 / 3, 1 / 3 }, { 0.5, 0.5, 0 } })
      assert.is_true(finite(mm.nn.softmax_backward(x, mm.ones(3, 3))))
    end)

    it("log_softmax is exact, not -inf", function()
      local y = mm.nn.log_softmax(x)
      assert.is_true(finite(y))
      near(y, mm.tensor { { 0, -2e4, -1e4 }, { -math.log(3), -math.log(3), -math.log(3) },
        { -math.log(2), -math.log(2), -2e4 - math.log(2) } }, 1e-6)
      assert.is_true(finite(mm.nn.log_softmax_backward(x, mm.ones(3, 3))))
    end)

    it("cross_entropy gives 0 for a confident right answer and 2e4 for a confident wrong one", function()
      local logits = mm.tensor { { 1e4, -1e4 } }
      assert.is_true(math.abs(mm.nn.cross_entropy(logits, { 1 })) < 1e-6)
      assert.is_true(math.abs(mm.nn.cross_entropy(logits, { 2 }) - 2e4) < 1)
      local g = mm.nn.cross_entropy_backward(logits, { 2 })
      near(g, mm.tensor { { 1, -1 } })
    end)
  end)

  describe("batch of 1 and a 1x1 image", function()
    it("linear on one row and on a 1-d vector", function()
      local w, b = mm.randn(3, 4), mm.randn(3)
      local x = mm.randn(1, 4)
      local y1 = mm.nn.linear(x, w, b)
      assert.same({ 1, 3 }, y1:shape())
      local y0 = mm.nn.linear(x:reshape { 4 }, w, b)
      assert.same({ 3 }, y0:shape())
      near(y0, y1:reshape { 3 })
    end)

    it("conv2d, pools and global pool on a 1x1 image", function()
      local x = mm.randn(1, 3, 1, 1)
      local w = mm.randn(4, 3, 3, 3)
      local y = mm.nn.conv2d(x, w, nil, { padding = 1 })
      assert.same({ 1, 4, 1, 1 }, y:shape())
      -- only the kernel centre touches the one pixel
      local expect = {}
      for o = 1, 4 do
        local s = 0
        for c = 1, 3 do s = s + w[{ o, c, 2, 2 }] * x[{ 1, c, 1, 1 }] end
        expect[o] = s
      end
      near(y:reshape { 4 }, mm.tensor(expect), 1e-5)
      assert.same({ 1, 3, 1, 1 }, mm.nn.max_pool2d(x, { kernel = 3, stride = 1, padding = 1 }):shape())
      near(mm.nn.max_pool2d(x, { kernel = 3, stride = 1, padding = 1 }), x)
      -- avg pool counts the 8 padding zeros
      near(mm.nn.avg_pool2d(x, { kernel = 3, stride = 1, padding = 1 }), x / 9)
      near(mm.nn.global_avg_pool(x), x:reshape { 1, 3 })
    end)

    it("an unbatched [C, H, W] image gives an unbatched output", function()
      local x, w = mm.randn(2, 5, 5), mm.randn(3, 2, 3, 3)
      local y = mm.nn.conv2d(x, w, nil, { stride = 2, padding = 1 })
      assert.same({ 3, 3, 3 }, y:shape())
      near(y, mm.nn.conv2d(x:reshape { 1, 2, 5, 5 }, w, nil, { stride = 2, padding = 1 }):reshape { 3, 3, 3 })
    end)
  end)

  describe("conv2d", function()
    it("stride 2 + padding 1 has PyTorch's output size on odd and even inputs", function()
      for _, hw in ipairs { { 7, 8 }, { 1, 2 }, { 32, 31 } } do
        local y = mm.nn.conv2d(mm.randn(1, 1, hw[1], hw[2]), mm.randn(2, 1, 3, 3), nil, { stride = 2, padding = 1 })
        assert.same({ 1, 2, (hw[1] + 2 - 3) // 2 + 1, (hw[2] + 2 - 3) // 2 + 1 }, y:shape())
      end
    end)

    it("depthwise (groups = channels) equals one convolution per channel", function()
      local x, w, b = mm.randn(2, 3, 6, 5), mm.randn(3, 1, 3, 3), mm.randn(3)
      local opts = { stride = 2, padding = 1, groups = 3 }
      local y = mm.nn.conv2d(x, w, b, opts)
      local xs, ws, ys = x:totable(), w:totable(), y:totable()
      for c = 1, 3 do
        local xc = {}
        for n = 1, 2 do xc[n] = { xs[n][c] } end
        local yc = mm.nn.conv2d(mm.tensor(xc), mm.tensor { ws[c] }, mm.tensor { b[c] }, { stride = 2, padding = 1 })
        local want = {}
        for n = 1, 2 do want[n] = { ys[n][c] } end
        near(yc, mm.tensor(want), 1e-5)
      end
    end)
  end)

  describe("pools with padding", function()
    it("max_pool2d never returns the padding for all-negative input", function()
      local x = mm.randn(2, 2, 5, 5) - 10
      local y = mm.nn.max_pool2d(x, { kernel = 3, stride = 2, padding = 1 })
      for _, v in ipairs(flat(y)) do assert.is_true(v < -5) end
    end)

    it("positional form equals the option table", function()
      local x = mm.randn(1, 2, 6, 6)
      near(mm.nn.avg_pool2d(x, 3, 2, 1), mm.nn.avg_pool2d(x, { kernel = 3, stride = 2, padding = 1 }))
      near(mm.nn.max_pool2d(x, 2), mm.nn.max_pool2d(x, { kernel = 2, stride = 2 }))
    end)
  end)

  describe("dropout", function()
    it("is the identity when not training or with p = 0, zero with p = 1", function()
      local x = mm.randn(4, 4)
      local y, mask = mm.nn.dropout(x, 0.5, false)
      assert.is_nil(mask)
      near(y, x, 0)
      near((mm.nn.dropout(x, 0)), x, 0)
      near((mm.nn.dropout(x, 1)), mm.zeros(4, 4), 0)
    end)

    it("drops about p of the units, scales the rest by 1/(1-p), reproducibly", function()
      mm.seed(3)
      local x = mm.ones(100, 100)
      local y, mask = mm.nn.dropout(x, 0.25, true)
      local zeros = 0
      for _, v in ipairs(flat(y)) do
        if v == 0 then zeros = zeros + 1 else assert.is_true(math.abs(v - 1 / 0.75) < 1e-6) end
      end
      assert.is_true(math.abs(zeros / 10000 - 0.25) < 0.02, "dropped fraction " .. zeros / 10000)
      near(y, mask, 0)
      mm.seed(3)
      local y2 = mm.nn.dropout(x, 0.25, true)
      near(y, y2, 0)
    end)
  end)

  describe("embedding_bag offsets", function()
    local w = mm.randn(6, 3)
    local ids = { 1, 2, 3, 4, 5, 6 }
    local rows = w:totable()
    local function mean(a, b)
      local r = {}
      for j = 1, 3 do
        local s = 0
        for i = a, b do s = s + rows[i][j] end
        r[j] = s / (b - a + 1)
      end
      return r
    end
    local want = mm.tensor { mean(1, 2), mean(3, 3), mean(4, 6) }

    it("accepts PyTorch-style starts, CSR bounds and 1-based positions alike", function()
      near(mm.nn.embedding_bag(w, ids, { 0, 2, 3 }), want, 1e-6)    -- starts
      near(mm.nn.embedding_bag(w, ids, { 0, 2, 3, 6 }), want, 1e-6) -- CSR
      near(mm.nn.embedding_bag(w, ids, { 1, 3, 4 }), want, 1e-6)    -- 1-based starts
      near(mm.nn.embedding_bag(w, ids, { 1, 3, 4, 7 }), want, 1e-6) -- 1-based CSR
      near(mm.nn.embedding_bag(w, mm.tensor(ids), mm.tensor { 0, 2, 3 }), want, 1e-6)
    end)

    it("include_last_offset = false reads a final offset of #ids as an empty last bag", function()
      local y = mm.nn.embedding_bag(w, ids, { 0, 2, 3, 6 }, { include_last_offset = false })
      assert.same({ 4, 3 }, y:shape())
      near(y, mm.tensor { mean(1, 2), mean(3, 3), mean(4, 6), { 0, 0, 0 } }, 1e-6)
    end)

    it("takes 2-d ids without offsets (one bag per row) and gives zero rows for empty bags", function()
      near(mm.nn.embedding_bag(w, { { 1, 2 }, { 3, 3 } }), mm.tensor { mean(1, 2), rows[3] }, 1e-6)
      near(mm.nn.embedding_bag(w, mm.tensor { { 1, 2 }, { 3, 3 } }), mm.tensor { mean(1, 2), rows[3] }, 1e-6)
      near(mm.nn.embedding_bag(w, { 2 }, { 0, 0, 1 }), mm.tensor { { 0, 0, 0 }, rows[2] }, 1e-6)
    end)

    it("backward adds into only the rows it touched", function()
      local gw = mm.nn.embedding_bag_backward(w, { 2, 2, 5 }, { 0, 2, 3 }, mm.ones(2, 3))
      near(gw, mm.tensor { { 0, 0, 0 }, { 1, 1, 1 }, { 0, 0, 0 }, { 0, 0, 0 }, { 1, 1, 1 }, { 0, 0, 0 } })
    end)
  end)

  describe("modality_pool", function()
    it("a missing modality contributes nothing, whatever its values", function()
      local x = mm.tensor { { { 1, 2 }, { 1e6, -1e6 } }, { { 3, 4 }, { 5, 0 } } }
      local mask = { { true, false }, { true, true } }
      near(mm.nn.modality_pool(x, mask, "max"), mm.tensor { { 1, 2 }, { 5, 4 } })
      near(mm.nn.modality_pool(x, mask, "mean"), mm.tensor { { 1, 2 }, { 4, 2 } })
      near(mm.nn.modality_pool(x, mm.tensor { { 1, 0 }, { 1, 1 } }, "sum"), mm.tensor { { 1, 2 }, { 8, 4 } })
      local g = mm.nn.modality_pool_backward(x, mask, mm.ones(2, 2), "mean")
      near(g, mm.tensor { { { 1, 1 }, { 0, 0 } }, { { 0.5, 0.5 }, { 0.5, 0.5 } } })
    end)
  end)

  describe("ranking_loss", function()
    it("is 0 with zero gradients when no anchor has a negative", function()
      local v, t = mm.randn(3, 4), mm.randn(3, 4)
      local loss, anchors = mm.nn.ranking_loss(v, t, { 1, 1, 1 })
      assert.equal(0, loss)
      assert.equal(0, anchors)
      local gv, gt = mm.nn.ranking_loss_backward(v, t, { 1, 1, 1 })
      near(gv, mm.zeros(3, 4), 0)
      near(gt, mm.zeros(3, 4), 0)
    end)

    it("is 0 once every positive beats every negative by the margin", function()
      local v = mm.tensor { { 1, 0 }, { 0, 1 } }
      assert.equal(0, (mm.nn.ranking_loss(v, v, { 1, 2 }, { margin = 0.5 })))
      assert.is_true(math.abs(mm.nn.ranking_loss(v, v, { 1, 2 }, { margin = 1.5 }) - 0.5) < 1e-6)
    end)
  end)

  it("margin_ranking_loss matches torch's definition by hand", function()
    local l = mm.nn.margin_ranking_loss(mm.tensor { 1, 2 }, mm.tensor { 2, 1 }, mm.tensor { 1, 1 }, 0.5)
    assert.is_true(math.abs(l - (1.5 + 0) / 2) < 1e-6)
  end)
end)
