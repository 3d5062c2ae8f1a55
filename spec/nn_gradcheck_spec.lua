-- Every nn op: C forward vs a plain-Lua double-precision reference, and the C
-- backward vs central differences of that reference (relative error < 1e-3).
local mm = require "mmfuse"
local G = require "gradcheck"
local R = G.ref
local flat = G.flat

local FWD_TOL, GRAD_TOL = 1e-4, 1e-3

local function randn(...)
  return mm.randn(...)
end

-- random grad_out of the shape of t, as a tensor and a flat array
local function gout_like(t)
  local g = mm.randn(table.unpack(t:shape()))
  return g, (flat(g))
end

local function fwd_ok(ct, ref)
  local err = G.relerr(type(ct) == "number" and { ct } or flat(ct), type(ref) == "number" and { ref } or ref)
  assert.is_true(err < FWD_TOL, "forward relative error " .. err)
end

local function grad_ok(f, args, which, gout, analytic, h)
  local err = G.check(f, args, which, gout, flat(analytic), h)
  assert.is_true(err < GRAD_TOL, ("gradient of argument %d: relative error %g"):format(which, err))
end

describe("nn gradcheck", function()
  before_each(function() mm.seed(42) end)

  it("linear", function()
    local x, w, b = randn(3, 4), randn(5, 4), randn(5)
    local y = mm.nn.linear(x, w, b)
    local xf, wf, bf = flat(x), flat(w), flat(b)
    local f = function(x_, w_, b_) return R.linear(x_, w_, b_, 3, 4, 5) end
    fwd_ok(y, f(xf, wf, bf))
    local g, gf = gout_like(y)
    local gx, gw, gb = mm.nn.linear_backward(x, w, b, g)
    local args = { xf, wf, bf }
    grad_ok(f, args, 1, gf, gx)
    grad_ok(f, args, 2, gf, gw)
    grad_ok(f, args, 3, gf, gb)
  end)

  local conv_cases = {
    { name = "plain", n = 2, c = 2, h = 5, w = 4, o = 3, kh = 3, kw = 2, stride = 1, pad = 0, groups = 1 },
    { name = "stride 2 + padding 1", n = 1, c = 2, h = 6, w = 5, o = 2, kh = 3, kw = 3, stride = 2, pad = 1, groups = 1 },
    { name = "depthwise", n = 2, c = 3, h = 4, w = 4, o = 3, kh = 3, kw = 3, stride = 1, pad = 1, groups = 3 },
    { name = "1x1 kernel (direct path)", n = 2, c = 3, h = 3, w = 2, o = 2, kh = 1, kw = 1, stride = 1, pad = 0, groups = 1 },
    { name = "1x1 image", n = 1, c = 2, h = 1, w = 1, o = 2, kh = 3, kw = 3, stride = 1, pad = 1, groups = 1 },
  }
  for _, s in ipairs(conv_cases) do
    it("conv2d " .. s.name, function()
      local x, w, b = randn(s.n, s.c, s.h, s.w), randn(s.o, s.c // s.groups, s.kh, s.kw), randn(s.o)
      local opts = { stride = s.stride, padding = s.pad, groups = s.groups }
      local y = mm.nn.conv2d(x, w, b, opts)
      local f = function(x_, w_, b_) return (R.conv2d(x_, w_, b_, s)) end
      local xf, wf, bf = flat(x), flat(w), flat(b)
      fwd_ok(y, f(xf, wf, bf))
      local g, gf = gout_like(y)
      local gx, gw, gb = mm.nn.conv2d_backward(x, w, b, g, opts)
      local args = { xf, wf, bf }
      grad_ok(f, args, 1, gf, gx)
      grad_ok(f, args, 2, gf, gw)
      grad_ok(f, args, 3, gf, gb)
    end)
  end

  for _, kind in ipairs { "max", "avg" } do
    for _, s in ipairs {
      { n = 2, c = 2, h = 5, w = 6, k = 2, stride = 2, pad = 0 },
      { n = 1, c = 2, h = 5, w = 5, k = 3, stride = 2, pad = 1 },
      { n = 1, c = 1, h = 1, w = 1, k = 3, stride = 1, pad = 1 },
    } do
      it(("%s_pool2d k%d s%d p%d on %dx%d"):format(kind, s.k, s.stride, s.pad, s.h, s.w), function()
        local x = randn(s.n, s.c, s.h, s.w)
        local opts = { kernel = s.k, stride = s.stride, padding = s.pad }
        local y = mm.nn[kind .. "_pool2d"](x, opts)
        local f = function(x_) return (R.pool2d(x_, s, kind)) end
        local xf = flat(x)
        fwd_ok(y, f(xf))
        local g, gf = gout_like(y)
        local gx = mm.nn[kind .. "_pool2d_backward"](x, g, opts)
        grad_ok(f, { xf }, 1, gf, gx)
      end)
    end
  end

  it("global_avg_pool", function()
    local x = randn(2, 3, 2, 3)
    local y = mm.nn.global_avg_pool(x)
    local f = function(x_) return R.global_avg_pool(x_, 2, 3, 6) end
    local xf = flat(x)
    fwd_ok(y, f(xf))
    local g, gf = gout_like(y)
    grad_ok(f, { xf }, 1, gf, mm.nn.global_avg_pool_backward(x, g))
  end)

  for _, op in ipairs { "relu", "relu6", "tanh", "sigmoid" } do
    it(op, function()
      local x = randn(3, 5) * 4
      local y = mm.nn[op](x)
      local xf = flat(x)
      fwd_ok(y, R[op](xf))
      local g, gf = gout_like(y)
      grad_ok(R[op], { xf }, 1, gf, mm.nn[op .. "_backward"](x, g))
    end)
  end

  it("dropout (a fixed mask is linear)", function()
    local x = randn(4, 5)
    local y, mask = mm.nn.dropout(x, 0.3, true)
    local xf, mf = flat(x), flat(mask)
    local f = function(x_)
      local out = {}
      for i = 1, #x_ do out[i] = x_[i] * mf[i] end
      return out
    end
    fwd_ok(y, f(xf))
    local g, gf = gout_like(y)
    grad_ok(f, { xf }, 1, gf, mm.nn.dropout_backward(x, g, mask))
  end)

  for _, op in ipairs { "softmax", "log_softmax" } do
    it(op, function()
      local x = randn(3, 6) * 3
      local y = mm.nn[op](x)
      local f = function(x_) return R[op](x_, 3, 6) end
      local xf = flat(x)
      fwd_ok(y, f(xf))
      local g, gf = gout_like(y)
      grad_ok(f, { xf }, 1, gf, mm.nn[op .. "_backward"](x, g))
    end)
  end

  for _, weighted in ipairs { false, true } do
    local tag = weighted and " with class weights" or ""
    it("nll_loss" .. tag, function()
      local logp = mm.nn.log_softmax(randn(5, 4))
      local labels = { 2, 4, 1, 1, 3 }
      local opts = weighted and { weight = mm.tensor { 0.5, 2, 1, 1.5 } } or nil
      local wf = weighted and flat(opts.weight) or nil
      local f = function(x_) return R.nll_loss(x_, labels, 5, 4, wf) end
      local xf = flat(logp)
      fwd_ok(mm.nn.nll_loss(logp, labels, opts), f(xf))
      grad_ok(f, { xf }, 1, 0.7, mm.nn.nll_loss_backward(logp, labels, 0.7, opts))
    end)

    it("cross_entropy" .. tag, function()
      local logits = randn(5, 4) * 2
      local labels = mm.tensor { 2, 4, 1, 1, 3 }
      local opts = weighted and { weight = { 0.5, 2, 1, 1.5 } } or nil
      local wf = weighted and opts.weight or nil
      local f = function(x_) return R.cross_entropy(x_, { 2, 4, 1, 1, 3 }, 5, 4, wf) end
      local xf = flat(logits)
      fwd_ok(mm.nn.cross_entropy(logits, labels, opts), f(xf))
      grad_ok(f, { xf }, 1, 1.3, mm.nn.cross_entropy_backward(logits, labels, 1.3, opts))
    end)
  end

  it("embedding_bag", function()
    local w = randn(7, 3)
    local ids, offsets = { 1, 4, 4, 7, 2, 6 }, { 0, 2, 2, 5, 6 } -- CSR with an empty bag
    local y = mm.nn.embedding_bag(w, ids, offsets)
    assert.same({ 4, 3 }, y:shape())
    local f = function(w_) return R.embedding_bag(w_, 3, ids, offsets) end
    local wf = flat(w)
    fwd_ok(y, f(wf))
    local g, gf = gout_like(y)
    grad_ok(f, { wf }, 1, gf, mm.nn.embedding_bag_backward(w, ids, offsets, g))
  end)

  for _, mode in ipairs { "max", "mean", "sum" } do
    it("modality_pool " .. mode, function()
      local x = randn(4, 3, 5)
      local mask = { { 1, 1, 0 }, { 0, 1, 1 }, { 0, 0, 1 }, { 1, 1, 1 } }
      local mf = {}
      for _, row in ipairs(mask) do for _, v in ipairs(row) do mf[#mf + 1] = v end end
      local y = mm.nn.modality_pool(x, mask, mode)
      local f = function(x_) return R.modality_pool(x_, mf, 4, 3, 5, mode) end
      local xf = flat(x)
      fwd_ok(y, f(xf))
      local g, gf = gout_like(y)
      local gx = mm.nn.modality_pool_backward(x, mask, g, mode)
      grad_ok(f, { xf }, 1, gf, gx)
    end)
  end

  it("cosine_similarity", function()
    local a, b = randn(4, 6), randn(4, 6)
    local s = mm.nn.cosine_similarity(a, b)
    local f = function(a_, b_) return R.cosine(a_, b_, 4, 6) end
    local af, bf = flat(a), flat(b)
    fwd_ok(s, f(af, bf))
    local g, gf = gout_like(s)
    local ga, gb = mm.nn.cosine_similarity_backward(a, b, g)
    grad_ok(f, { af, bf }, 1, gf, ga)
    grad_ok(f, { af, bf }, 2, gf, gb)
  end)

  for _, c in ipairs {
    { name = "mean over negatives", hardest = false, margin = 0.5 },
    { name = "hardest negative", hardest = true, margin = 0.5 },
    { name = "with missing modalities", hardest = false, margin = 1.0, vmask = { 1, 1, 0, 1, 1, 1 },
      tmask = { true, false, true, true, true, true } },
  } do
    it("ranking_loss " .. c.name, function()
      local v, t = randn(6, 4), randn(6, 4)
      local labels = { 1, 2, 1, 3, 2, 3 }
      local opts = { margin = c.margin, hardest = c.hardest, vmask = c.vmask, tmask = c.tmask }
      local tm
      if c.tmask then
        tm = {}
        for i, b in ipairs(c.tmask) do tm[i] = b and 1 or 0 end
      end
      local f = function(v_, t_) return (R.ranking(v_, t_, labels, 6, 4, c.margin, c.hardest, c.vmask, tm)) end
      local vf, tf = flat(v), flat(t)
      local loss, anchors = mm.nn.ranking_loss(v, t, labels, opts)
      local _, ranchors = R.ranking(vf, tf, labels, 6, 4, c.margin, c.hardest, c.vmask, tm)
      assert.equal(ranchors, anchors)
      assert.is_true(loss > 0)
      fwd_ok(loss, f(vf, tf))
      local gv, gt = mm.nn.ranking_loss_backward(v, t, labels, 0.9, opts)
      grad_ok(f, { vf, tf }, 1, 0.9, gv)
      grad_ok(f, { vf, tf }, 2, 0.9, gt)
    end)
  end

  it("margin_ranking_loss", function()
    local x1, x2 = randn(8), randn(8)
    local y = mm.tensor { 1, -1, 1, 1, -1, -1, 1, -1 }
    local yf = flat(y)
    local f = function(a, b) return R.margin_ranking(a, b, yf, 0.3) end
    local af, bf = flat(x1), flat(x2)
    fwd_ok(mm.nn.margin_ranking_loss(x1, x2, y, 0.3), f(af, bf))
    local g1, g2 = mm.nn.margin_ranking_loss_backward(x1, x2, y, 2.0, 0.3)
    grad_ok(f, { af, bf }, 1, 2.0, g1)
    grad_ok(f, { af, bf }, 2, 2.0, g2)
  end)
end)
