-- The C training loop: determinism, optimisers, schedules, early stopping, NaN, callbacks.
local mm = require "mmfuse"
local S = dofile("spec/fixtures/model/synth.lua")

local ds = S.make { n = 180 }
local train, valid, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }

local function new(extra)
  local o = { fusion = "commonspace", classes = ds.classes, dim = 12, text = { buckets = 500 },
    dropout = { text = 0.2, image = 0.2 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return mm.model(o)
end

local function same_weights(a, b)
  for _, p in ipairs(a:params()) do
    local ok = mm.allclose(a:param(p.name), b:param(p.name), 0)
    if not ok then return false, p.name end
  end
  return true
end

describe("training", function()
  it("is bit-identical for a seed (weights, losses, metrics)", function()
    local a, b, c = new(), new(), new()
    local fo = { valid = valid, epochs = 4, lr = 0.02, batch = 16 }
    fo.seed = 9
    local ha = a:fit(train, fo)
    local hb = b:fit(train, fo)
    fo.seed = 10
    c:fit(train, fo)
    assert.is_true(same_weights(a, b))
    for e = 1, 4 do
      assert.are.equal(ha[e].loss, hb[e].loss)
      assert.are.equal(ha[e].valid_macro_f1, hb[e].valid_macro_f1)
    end
    local ra, rb = a:evaluate(test), b:evaluate(test)
    assert.are.equal(ra.log_loss, rb.log_loss)
    assert.are.same(ra.confusion, rb.confusion)
    assert.is_false(same_weights(a, c))
  end)

  it("shuffle = false takes the rows in the data's order every epoch", function()
    -- plain SGD keeps no optimiser state and nothing draws from the rng without
    -- shuffling or dropout: two fits of one epoch (the second re-seeds) run the
    -- same steps in the same order as one fit of two epochs, bit for bit; with
    -- shuffling the second epoch of the long fit draws another order
    local o = { fusion = "joint", classes = ds.classes, dim = 8, text = { buckets = 300 } }
    local function pair(shuffle)
      local fo = { batch = 4, lr = 0.05, optimizer = "sgd", seed = 3, shuffle = shuffle }
      local one, two = mm.model(o), mm.model(o)
      fo.epochs = 2
      one:fit(train, fo)
      fo.epochs = 1
      two:fit(train, fo)
      two:fit(train, fo)
      return same_weights(one, two)
    end
    assert.is_true(pair(false))
    assert.is_false(pair(true))
  end)

  it("calls on_epoch once per epoch with loss, accuracies and seconds; false stops", function()
    local seen = {}
    local m = new()
    m:fit(train, { valid = valid, epochs = 5, lr = 0.02, on_epoch = function(s)
      seen[#seen + 1] = s
      if s.epoch == 3 then return false end
    end })
    assert.are.equal(3, #seen)
    for e, s in ipairs(seen) do
      assert.are.equal(e, s.epoch)
      assert.is_true(s.loss > 0)
      assert.is_true(s.train_accuracy >= 0 and s.train_accuracy <= 1)
      assert.is_true(s.valid_accuracy >= 0 and s.valid_accuracy <= 1)
      assert.is_true(s.seconds >= 0)
      assert.are.equal(#train, s.samples)
    end
    assert.is_true(seen[3].loss < seen[1].loss)
  end)

  it("early stopping keeps the weights of the best validation macro-F1", function()
    local m = new()
    local h = m:fit(train, { valid = valid, epochs = 8, lr = 0.05, seed = 3 })
    local best = -1
    for _, s in ipairs(h) do best = math.max(best, s.valid_macro_f1) end
    assert.are.equal(best, h.best_valid_macro_f1)
    assert.are.equal(best, m:evaluate(valid).macro_f1)
    local p = m:fit(train, { valid = valid, epochs = 30, lr = 0.05, seed = 3, patience = 2 })
    assert.is_true(#p < 30)
  end)

  it("SGD with momentum, weight decay, lr decay, clipping and class weights all train", function()
    for _, fo in ipairs {
      { optimizer = "sgd", lr = 0.1, momentum = 0.9, weight_decay = 1e-4 },
      { optimizer = "sgd", lr = 0.5, lr_decay = "linear" },
      { optimizer = "adam", lr = 0.05, lr_decay = 0.8, clip = 1.0 },
      { optimizer = "adam", lr = 0.02, class_weights = "balanced" },
      { optimizer = "adam", lr = 0.02, class_weights = { 1, 2, 1 } },
    } do
      fo.epochs, fo.seed = 10, 1
      local m = new()
      local h = m:fit(train, fo)
      assert.is_true(h[#h].loss < h[1].loss, fo.optimizer)
      assert.is_true(m:evaluate(test).accuracy > 0.6, fo.optimizer)
    end
    local m = new()
    local h = m:fit(train, { epochs = 3, lr = 0.1, lr_decay = 0.5 })
    assert.are.equal(0.025, h[3].lr)
  end)

  it("class weights shift predictions toward a heavy class", function()
    local a, b = new { dropout = {} }, new { dropout = {} }
    a:fit(train, { epochs = 6, lr = 0.02, seed = 1 })
    b:fit(train, { epochs = 6, lr = 0.02, seed = 1, class_weights = { 1, 1, 20 } })
    local ca, cb = 0, 0
    for i = 1, 3 do ca = ca + a:evaluate(test).confusion[i][3]; cb = cb + b:evaluate(test).confusion[i][3] end
    assert.is_true(cb > ca, ("%d vs %d"):format(cb, ca))
  end)

  it("stops on NaN/Inf in the batch where it appears and keeps finite weights", function()
    local m = new { dropout = {} }
    local ok, e = pcall(m.fit, m, train, { epochs = 5, lr = 1e30, optimizer = "sgd", batch = 16 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("batch %d+") and (tostring(e):find("NaN") or tostring(e):find("Inf")
      or tostring(e):find("non%-finite")), tostring(e))
    for _, p in ipairs(m:params()) do
      local t = m:param(p.name)
      for _, v in ipairs(t:reshape(t:numel()):totable()) do assert.is_true(v == v and math.abs(v) < math.huge, p.name) end
    end
    -- a NaN planted in a weight is caught in the first batch
    local m2 = new { dropout = {} }
    m2:fit(train, { epochs = 1, lr = 0.01 })
    local w = m2:param("classifier.weight"):totable()
    w[1][1] = 0 / 0
    m2:set_param("classifier.weight", mm.tensor(w))
    ok, e = pcall(m2.fit, m2, train, { epochs = 1, lr = 0.01 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("batch 1", 1, true), tostring(e))
  end)

  it("rejects bad fit options", function()
    local m = new()
    for _, fo in ipairs {
      { epochs = 0 }, { lr = -1 }, { lr = 0 }, { optimizer = "rmsprop" }, { batch = 0 }, { momentum = 1.5, optimizer = "sgd" },
      { class_weights = { 1, 2 } }, { class_weights = { 1, -1, 1 } }, { lr_decay = "cosine" }, { seed = 1.5 },
    } do
      local ok = pcall(m.fit, m, train, fo)
      assert.is_false(ok)
    end
    assert.has_error(function() m:fit({}, {}) end)
    local unl = mm.data.new { labels = { "class1", false }, classes = ds.classes, text = { "a", "b" } }
    local mu = mm.model { fusion = "text", classes = ds.classes }
    local ok, e = pcall(mu.fit, mu, unl, { epochs = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("row 2 has no label", 1, true), tostring(e))
  end)
end)

describe("pretrained word vectors", function()
  it("fill the vocabulary rows, report coverage, and can be frozen", function()
    local p = os.tmpname()
    local f = io.open(p, "w")
    f:write("4 12\n") -- the tokenizer splits "tok2_1" into "tok2" and "1"
    for c = 1, 3 do
      local v = {}
      for j = 1, 12 do v[j] = (j == c) and "1.5" or "0" end
      f:write(("tok%d %s\n"):format(c, table.concat(v, " ")))
    end
    f:write("unrelated " .. string.rep("0.1 ", 12) .. "\n")
    f:close()
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 12, text = { ngrams = 1, buckets = 0,
      vectors = p, freeze = true } }
    local h = m:fit(train, { epochs = 4, lr = 0.05, seed = 1 })
    assert.are.equal(3, h.vectors.found)
    assert.is_true(h.vectors.total > 3)
    local emb = m:param("text.embedding"):totable()
    local hits = 0
    for _, row in ipairs(emb) do
      local ones, zeros = 0, 0
      for _, v in ipairs(row) do
        if v == 1.5 then ones = ones + 1 elseif v == 0 then zeros = zeros + 1 end
      end
      if ones == 1 and zeros == 11 then hits = hits + 1 end
    end
    assert.are.equal(3, hits) -- frozen: the rows are exactly the file's
    assert.is_true(m:evaluate(test).accuracy > 0.6)
    local bad = mm.model { fusion = "text", classes = ds.classes, dim = 8, text = { vectors = p } }
    local ok, e = pcall(bad.fit, bad, train, { epochs = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("12 dimensions", 1, true), tostring(e))
    os.remove(p)
  end)
end)

describe("progress inside an epoch", function()
  it("on_batch gets running loss/accuracy and ends the epoch with the last batch", function()
    local calls = {}
    local m = new()
    m:fit(train, { epochs = 2, batch = 16, lr = 0.02, progress_interval = 0, on_batch = function(p)
      calls[#calls + 1] = p
    end })
    local per = math.ceil(#train / 16)
    assert.are.equal(2 * per, #calls)
    local last = calls[per]
    assert.are.equal(1, last.epoch)
    assert.are.equal(2, last.epochs)
    assert.are.equal(per, last.batch)
    assert.are.equal(per, last.batches)
    assert.are.equal(#train, last.samples)
    assert.is_true(last.loss > 0 and last.accuracy >= 0 and last.seconds >= 0)
  end)

  it("returning false stops training; an error inside it propagates unchanged", function()
    local m = new()
    local n = 0
    local h = m:fit(train, { epochs = 5, batch = 16, progress_interval = 0, on_batch = function()
      n = n + 1
      if n == 3 then return false end
    end })
    assert.are.equal(3, n)
    assert.are.equal(1, #h)
    assert.is_true(h[1].stopped)
    local ok, e = pcall(m.fit, m, train, { epochs = 1, on_batch = function() error("boom from callback") end })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("boom from callback", 1, true))
    -- the model still trains afterwards
    m:fit(train, { epochs = 1 })
    assert.has_error(function() m:fit(train, { epochs = 1, on_batch = 5 }) end)
  end)
end)
