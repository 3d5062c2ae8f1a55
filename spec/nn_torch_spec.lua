-- Forward and backward of every nn op against PyTorch 1.13 on fixed random
-- inputs (fixtures written by tools/make_torch_fixtures.py; torch is not
-- needed to run this spec).
local mm = require "mmfuse"
local cjson = require "cjson"
local G = require "gradcheck"

local DIR = "spec/fixtures/torch/"
local TOL = 1e-4 -- relative to the largest reference value (float32 vs torch's float32)

local function load(op)
  local f = assert(io.open(DIR .. op .. ".json", "rb"))
  local doc = cjson.decode(f:read("a"))
  f:close()
  assert.is_true(#doc.cases > 0, op .. ": no cases")
  return doc.cases
end

local function T(j)
  if type(j) ~= "table" then return j end
  return G.tensor(mm, j.data, j.shape)
end

local function close(got, want, what)
  if type(want) == "number" then
    local err = math.abs(got - want) / math.max(math.abs(want), 1e-3)
    assert.is_true(err < TOL, ("%s: got %.9g, torch %.9g"):format(what, got, want))
    return
  end
  assert.same(want.shape, got:shape(), what .. ": shape")
  local err = G.relerr(G.flat(got), want.data)
  assert.is_true(err < TOL, ("%s: relative error %g vs torch"):format(what, err))
end

describe("nn vs PyTorch", function()
  for _, c in ipairs(load("linear")) do
    it("linear " .. c.name, function()
      local x, w, b = T(c.args.x), T(c.args.weight), T(c.args.bias)
      close(mm.nn.linear(x, w, b), c.out, "y")
      local gx, gw, gb = mm.nn.linear_backward(x, w, b, T(c.grad_out))
      close(gx, c.grads.x, "gx")
      close(gw, c.grads.weight, "gw")
      if b then close(gb, c.grads.bias, "gb") else assert.is_nil(gb) end
    end)
  end

  for _, c in ipairs(load("conv2d")) do
    it("conv2d " .. c.name, function()
      local x, w, b = T(c.args.x), T(c.args.weight), T(c.args.bias)
      close(mm.nn.conv2d(x, w, b, c.opts), c.out, "y")
      local gx, gw, gb = mm.nn.conv2d_backward(x, w, b, T(c.grad_out), c.opts)
      close(gx, c.grads.x, "gx")
      close(gw, c.grads.weight, "gw")
      close(gb, c.grads.bias, "gb")
    end)
  end

  for _, op in ipairs { "max_pool2d", "avg_pool2d" } do
    for _, c in ipairs(load(op)) do
      it(op .. " " .. c.name, function()
        local x = T(c.args.x)
        close(mm.nn[op](x, c.opts), c.out, "y")
        close(mm.nn[op .. "_backward"](x, T(c.grad_out), c.opts), c.grads.x, "gx")
      end)
    end
  end

  for _, c in ipairs(load("global_avg_pool")) do
    it("global_avg_pool " .. c.name, function()
      local x = T(c.args.x)
      close(mm.nn.global_avg_pool(x), c.out, "y")
      close(mm.nn.global_avg_pool_backward(x, T(c.grad_out)), c.grads.x, "gx")
    end)
  end

  for _, c in ipairs(load("activation")) do
    it(c.op, function()
      local x = T(c.args.x)
      close(mm.nn[c.op](x), c.out, "y")
      close(mm.nn[c.op .. "_backward"](x, T(c.grad_out)), c.grads.x, "gx")
    end)
  end

  for _, op in ipairs { "softmax", "log_softmax" } do
    for _, c in ipairs(load(op)) do
      it(op .. " " .. c.name, function()
        local x = T(c.args.x)
        local y = mm.nn[op](x)
        for _, v in ipairs(G.flat(y)) do assert.is_true(v == v and v > -math.huge and v < math.huge) end
        close(y, c.out, "y")
        close(mm.nn[op .. "_backward"](x, T(c.grad_out)), c.grads.x, "gx")
      end)
    end
  end

  for _, op in ipairs { "nll_loss", "cross_entropy" } do
    for _, c in ipairs(load(op)) do
      it(op .. " " .. c.name, function()
        local xname = op == "nll_loss" and "logp" or "logits"
        local x = T(c.args[xname])
        local opts = c.opts.weight and { weight = T(c.opts.weight) } or nil
        close(mm.nn[op](x, c.args.labels, opts), c.out, "loss")
        close(mm.nn[op .. "_backward"](x, c.args.labels, c.grad_out, opts), c.grads[xname], "grad")
      end)
    end
  end

  for _, c in ipairs(load("embedding_bag")) do
    it("embedding_bag " .. c.name, function()
      local w = T(c.args.weight)
      -- fixtures give offsets as torch has them (0-based); the starts case ends
      -- with a bag that is not empty, so the lenient reading picks starts
      close(mm.nn.embedding_bag(w, c.args.ids, c.args.offsets), c.out, "y")
      close(mm.nn.embedding_bag_backward(w, c.args.ids, c.args.offsets, T(c.grad_out)), c.grads.weight, "gw")
      -- the same bags through tensors for ids and offsets
      close(mm.nn.embedding_bag(w, mm.tensor(c.args.ids), mm.tensor(c.args.offsets)), c.out, "y (tensors)")
    end)
  end

  for _, c in ipairs(load("modality_pool")) do
    it("modality_pool " .. c.name, function()
      local x = T(c.args.vectors)
      close(mm.nn.modality_pool(x, c.args.mask, c.opts.mode), c.out, "y")
      close(mm.nn.modality_pool_backward(x, c.args.mask, T(c.grad_out), c.opts.mode), c.grads.vectors, "gx")
    end)
  end

  for _, c in ipairs(load("cosine_similarity")) do
    it("cosine_similarity " .. c.name, function()
      local a, b = T(c.args.a), T(c.args.b)
      close(mm.nn.cosine_similarity(a, b), c.out, "s")
      local ga, gb = mm.nn.cosine_similarity_backward(a, b, T(c.grad_out))
      close(ga, c.grads.a, "ga")
      close(gb, c.grads.b, "gb")
    end)
  end

  for _, c in ipairs(load("ranking_loss")) do
    it("ranking_loss " .. c.name, function()
      local v, t = T(c.args.v), T(c.args.t)
      local loss = mm.nn.ranking_loss(v, t, c.args.labels, c.opts)
      assert.is_true(loss > 0)
      close(loss, c.out, "loss")
      local gv, gt = mm.nn.ranking_loss_backward(v, t, c.args.labels, c.grad_out, c.opts)
      close(gv, c.grads.v, "gv")
      close(gt, c.grads.t, "gt")
    end)
  end

  for _, c in ipairs(load("margin_ranking_loss")) do
    it("margin_ranking_loss " .. c.name, function()
      local x1, x2, y = T(c.args.x1), T(c.args.x2), T(c.args.y)
      close(mm.nn.margin_ranking_loss(x1, x2, y, c.opts.margin), c.out, "loss")
      local g1, g2 = mm.nn.margin_ranking_loss_backward(x1, x2, y, c.grad_out, c.opts.margin)
      close(g1, c.grads.x1, "g1")
      close(g2, c.grads.x2, "g2")
    end)
  end

  it("batch_norm (inference)", function()
    local c = load("batch_norm")[1]
    local a = c.args
    close(mm.nn.batch_norm(T(a.x), T(a.running_mean), T(a.running_var), T(a.weight), T(a.bias), c.opts.eps), c.out, "y")
  end)

  for _, c in ipairs(load("optim")) do
    it("optimizer step " .. c.name .. " (3 steps)", function()
      local p = T(c.param)
      local n = p:numel()
      if c.name:match("^sgd") then
        local vel = mm.zeros(n)
        for _, g in ipairs(c.grads) do mm.nn.sgd_step(p, T(g), vel, c.opts) end
      else
        local m, v = mm.zeros(n), mm.zeros(n)
        for step, g in ipairs(c.grads) do mm.nn.adam_step(p, T(g), m, v, step, c.opts) end
      end
      close(p, c.out, "param")
    end)
  end
end)
