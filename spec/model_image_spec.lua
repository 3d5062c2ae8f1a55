-- Image encoders inside the models: the small CNN and the HSV histogram, on synthetic pictures.
local mm = require "mmfuse"
local S = dofile("spec/fixtures/model/synth.lua")

local ds = S.make_images { n = 150, size = 16 }
local train, valid, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }

local function fitted(fusion, image, extra)
  local m = mm.model { fusion = fusion, classes = ds.classes, dim = 12, text = { buckets = 300 }, image = image }
  local fo = { valid = valid, epochs = 6, lr = 0.01, batch = 16, seed = 1 }
  for k, v in pairs(extra or {}) do fo[k] = v end
  m:fit(train, fo)
  return m
end

describe("image encoders", function()
  it("cnn: an image-only model learns the pictures (chance = 1/3)", function()
    local m = fitted("image", { encoder = "cnn", channels = { 8, 16 } })
    assert.is_true(m:evaluate(test).accuracy > 0.8)
    local cfg = m:config()
    assert.are.equal("cnn", cfg.modalities[1].encoder)
    assert.are.equal(16, cfg.modalities[1].out_dim)
    assert.truthy(tostring(m):find("image.conv2.weight", 1, true))
  end)

  it("histogram: no parameters in the encoder, still above chance", function()
    local m = fitted("image", { encoder = "histogram", bins = { 6, 3, 3 } })
    assert.is_true(m:evaluate(test).accuracy > 0.6)
    for _, p in ipairs(m:params()) do assert.is_nil(p.name:find("conv", 1, true)) end
    assert.are.equal(54, m:config().modalities[1].out_dim)
  end)

  it("every fusion type runs with a cnn and evaluates with either modality dropped", function()
    for _, f in ipairs { "early", "late", "joint", "commonspace" } do
      local m = fitted(f, { encoder = "cnn", channels = { 8 }, augment = true }, { epochs = 3 })
      local r = m:evaluate(test)
      assert.is_true(r.accuracy > 0.5, f)
      assert.are.equal(#test, m:evaluate(test, { drop = "image" }).n)
      assert.are.equal(#test, m:evaluate(test, { drop = "text" }).n)
    end
  end)

  it("save -> load keeps cnn predictions; predict takes image bytes or a path", function()
    local m = fitted("joint", { encoder = "cnn", channels = { 8 } }, { epochs = 2 })
    local p = os.tmpname()
    m:save(p)
    local m2 = mm.load(p)
    local _, a = m:predict(test)
    local _, b = m2:predict(test)
    assert.is_true(mm.allclose(a, b, 0))
    local img = S.image_for(3, S.rng(5), 16)
    local n1, p1 = m2:predict { image = img }
    local f = io.open(p .. ".bmp", "wb")
    f:write(img)
    f:close()
    local n2, p2 = m2:predict { image = p .. ".bmp", text = "" }
    assert.are.equal(n1, n2)
    assert.are.same(p1, p2)
    local ok, e = pcall(m2.predict, m2, { image = p .. ".missing.png" })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("missing.png", 1, true), tostring(e))
    os.remove(p); os.remove(p .. ".bmp")
  end)

  it("refuses images of another size than the cnn was built for, and bad cnn options", function()
    local m = fitted("image", { encoder = "cnn", channels = { 4 } }, { epochs = 1 })
    local other = S.make_images { n = 9, size = 8 }
    local ok, e = pcall(m.evaluate, m, other)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("8x8", 1, true), tostring(e))
    for _, img in ipairs { { encoder = "cnn", channels = {} }, { encoder = "cnn", kernel = 4 },
      { encoder = "histogram", bins = { 0, 1, 1 } }, { encoder = "resnet" } } do
      local mm2 = mm.model { fusion = "image", classes = ds.classes, image = img }
      assert.is_false(pcall(mm2.fit, mm2, train, { epochs = 1 }))
    end
    local mf = mm.model { fusion = "image", classes = ds.classes, image = { encoder = "features" } }
    ok, e = pcall(mf.fit, mf, train, { epochs = 1 })
    assert.truthy(tostring(e):find("holds pixels", 1, true), tostring(e))
  end)
end)
