-- Every fusion type learns the synthetic task, evaluates with modalities dropped, predicts.
local mm = require "mmfuse"
local S = dofile("spec/fixtures/model/synth.lua")

local ds = S.make { n = 240 }
local train, valid, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
local FUSIONS = { "text", "image", "early", "late", "joint", "commonspace" }

local function trained(fusion, extra)
  local o = { fusion = fusion, classes = ds.classes, dim = 16, text = { ngrams = 2, buckets = 1000 } }
  for k, v in pairs(extra or {}) do o[k] = v end
  local m = mm.model(o)
  local h = m:fit(train, { valid = valid, epochs = 12, lr = 0.02, batch = 16, seed = 1 })
  return m, h
end

local models = {}
for _, f in ipairs(FUSIONS) do models[f] = trained(f) end

describe("fusion models on a synthetic two-modality task (chance = 1/3)", function()
  for _, f in ipairs(FUSIONS) do
    it(f .. " learns well above chance", function()
      local r = models[f]:evaluate(test)
      assert.is_true(r.accuracy > 0.65, ("%s accuracy %.3f"):format(f, r.accuracy))
      assert.is_true(r.macro_f1 > 0.6, ("%s macro-F1 %.3f"):format(f, r.macro_f1))
      assert.is_true(r.log_loss > 0 and r.log_loss < 1.0986, ("log-loss %.3f"):format(r.log_loss))
    end)

    it(f .. " evaluates with each modality dropped and with both dropped", function()
      local m = models[f]
      for _, drop in ipairs { "text", "image", { "text", "image" } } do
        local r = m:evaluate(test, { drop = drop })
        assert.are.equal(#test, r.n)
        assert.is_true(r.accuracy >= 0 and r.accuracy <= 1)
        local total = 0
        for i = 1, #ds.classes do
          for j = 1, #ds.classes do total = total + r.confusion[i][j] end
        end
        assert.are.equal(#test, total)
      end
      -- a model that uses a modality must get worse without it
      if f ~= "image" then
        assert.is_true(m:evaluate(test, { drop = "text" }).accuracy < m:evaluate(test).accuracy + 1e-9)
      end
      if f ~= "text" then
        assert.is_true(m:evaluate(test, { drop = "image" }).accuracy < m:evaluate(test).accuracy + 1e-9)
      end
    end)
  end

  it("fusion beats the unimodal models on this task", function()
    local text = models.text:evaluate(test).accuracy
    local image = models.image:evaluate(test).accuracy
    local best = 0
    for _, f in ipairs { "early", "late", "joint", "commonspace" } do
      best = math.max(best, models[f]:evaluate(test).accuracy)
    end
    assert.is_true(best > math.max(text, image), ("fusion %.3f text %.3f image %.3f"):format(best, text, image))
  end)

  it("unimodal models ignore the other modality", function()
    local t = models.text
    assert.are.equal(t:evaluate(test).accuracy, t:evaluate(test, { drop = "image" }).accuracy)
    local i = models.image
    assert.are.equal(i:evaluate(test).accuracy, i:evaluate(test, { drop = "text" }).accuracy)
  end)

  it("result tables carry per-class scores, a confusion matrix, and print", function()
    local r = models.joint:evaluate(test)
    assert.are.equal(3, #r.precision)
    assert.are.equal(3, #r.confusion)
    assert.is_number(r.per_class.class1.f1)
    local correct = 0
    for c = 1, 3 do correct = correct + r.confusion[c][c] end
    assert.is_true(math.abs(correct / r.n - r.accuracy) < 1e-12)
    local f1sum = 0
    for c = 1, 3 do f1sum = f1sum + r.f1[c] end
    assert.is_true(math.abs(f1sum / 3 - r.macro_f1) < 1e-12)
    assert.are.same({ #test, 3 }, r.probs:shape())
    assert.truthy(tostring(r):find("macro-F1", 1, true))
  end)

  it("predicts one post with either modality absent, and a whole dataset", function()
    local m = models.commonspace
    local name, probs = m:predict { text = "tok2_1 filler3" }
    assert.is_string(name)
    local s = 0
    for _, c in ipairs(ds.classes) do s = s + probs[c] end
    assert.is_true(math.abs(s - 1) < 1e-5)
    local feats = {}
    for j = 1, 8 do feats[j] = 0 end
    local n2 = m:predict { image = feats }
    assert.is_string(n2)
    local names, P = m:predict(test)
    assert.are.equal(#test, #names)
    assert.are.same({ #test, 3 }, P:shape())
    assert.has_error(function() m:predict { sound = "x" } end)
    assert.has_error(function() m:predict { text = 5 } end)
  end)

  it("a text with no known token counts as absent", function()
    local feats = {}
    for j = 1, 8 do feats[j] = 0.5 end
    for _, f in ipairs { "joint", "late" } do
      local m = trained(f, { text = { ngrams = 1 } })
      local _, p1 = m:predict { text = "zzz qqq", image = feats }
      local _, p2 = m:predict { image = feats }
      assert.are.same(p2, p1)
      local _, p3 = m:predict { text = "tok1", image = feats }
      assert.are_not.same(p2, p3)
    end
  end)

  it("prints its architecture with parameter counts", function()
    local s = tostring(models.commonspace)
    assert.truthy(s:find("commonspace", 1, true))
    assert.truthy(s:find("text.embedding", 1, true))
    assert.truthy(s:find("image.proj.weight", 1, true))
    assert.truthy(s:find("total", 1, true))
    local n = 0
    for _, p in ipairs(models.commonspace:params()) do n = n + p.count end
    assert.are.equal(n, models.commonspace:nparams())
    assert.truthy(tostring(mm.model { classes = ds.classes }):find("not built", 1, true))
  end)

  it("early fusion learns a missing embedding, or uses zeros when asked", function()
    local names = {}
    for _, p in ipairs(models.early:params()) do names[p.name] = true end
    assert.is_true(names["text.missing"] and names["image.missing"])
    local z = trained("early", { missing = "zeros" })
    local zn = {}
    for _, p in ipairs(z:params()) do zn[p.name] = true end
    assert.is_nil(zn["text.missing"])
    assert.is_true(z:evaluate(test).accuracy > 0.65)
  end)

  it("joint fusion pools with max, mean and sum", function()
    for _, pool in ipairs { "mean", "sum" } do
      local m = trained("joint", { pool = pool })
      assert.is_true(m:evaluate(test).accuracy > 0.65, pool)
    end
  end)

  it("works with K = 3 modalities (text + two feature vectors) and modality dropout", function()
    local d3 = S.make { n = 150, feat_name = "a" }
    local labels = {}
    for i, y in ipairs(d3:labels()) do labels[i] = d3.classes[y] end
    local rows = {}
    for i = 1, 150 do rows[i] = { i % 3, (i * 7) % 5 } end
    local both = mm.data.new { labels = labels, classes = d3.classes,
      text = (function() local t = {} for i = 1, 150 do t[i] = d3:text("text", i) end return t end)(),
      features = { a = mm.tensor(rows), b = mm.tensor(rows) }, columns = d3.columns }
    assert.are.equal(3, #both:modalities())
    local tr, va, te = both:split { by = "fold", test = { 0 }, valid = { 1 } }
    local m = mm.model { fusion = "commonspace", classes = both.classes, dim = 8, text = { buckets = 500 },
      features = { "a", "b" }, dropout = { text = 0.2, a = 0.1 } }
    m:fit(tr, { valid = va, epochs = 5, lr = 0.02, seed = 2 })
    assert.are.equal(3, #m:config().modalities)
    local r = m:evaluate(te, { drop = { "a", "b" } })
    assert.are.equal(#te, r.n)
  end)

  it("rejects bad options with a message", function()
    assert.has_error(function() mm.model { fusion = "fancy", classes = ds.classes } end,
      "mm.model: unknown fusion 'fancy' (text, image, early, late, joint, commonspace)")
    assert.has_error(function() mm.model { classes = { "a" } } end)
    assert.has_error(function() mm.model { classes = ds.classes, pool = "median" } end)
    assert.has_error(function() mm.model { classes = ds.classes, dim = 0 } end)
    local m = mm.model { classes = { "x", "y", "z", "w" } }
    local ok, e = pcall(m.fit, m, train, { epochs = 1 })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("3 classes, the model 4", 1, true))
    local m2 = mm.model { classes = ds.classes, modalities = { "sound" } }
    ok, e = pcall(m2.fit, m2, train, { epochs = 1 })
    assert.truthy(tostring(e):find("no modality 'sound'", 1, true))
    local m3 = mm.model { classes = ds.classes }
    ok, e = pcall(m3.evaluate, m3, test)
    assert.truthy(tostring(e):find("not trained yet", 1, true))
    local m4 = mm.model { classes = ds.classes, image = { encoder = "cnn" } }
    ok, e = pcall(m4.fit, m4, train, { epochs = 1 })
    assert.truthy(tostring(e):find("holds feature rows; encoder 'cnn' needs pixels", 1, true))
  end)
end)
