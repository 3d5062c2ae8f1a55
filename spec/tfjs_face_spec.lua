-- A TF.js layers model as mmfuse's image encoder (lua/mmfuse/tfjs.lua): predict, the feature
-- cache of mm.features, and a fusion model that records the model.json path, layer, size and
-- fingerprint and refuses changed files on mm.load. Small and quick: the 9x9 Sequential model of
-- spec/fixtures/tfjs_layers on a few emoji pictures.
local mm = require "mmfuse"
local util = require "util"

local SRC = "spec/fixtures/tfjs_layers/sequential_small"

-- a copy of the fixture model in a fresh folder (its files may be changed by a test)
local function copy_model()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  for _, f in ipairs { "model.json", "group1-shard1of1" } do util.write(dir .. "/" .. f, util.read(SRC .. "/" .. f)) end
  return dir, dir .. "/model.json"
end

describe("a TF.js layers model as an image encoder", function()
  local dir, M, ds
  setup(function()
    dir, M = copy_model()
    local all = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", label = "group", image = "image" })
    local some = {}
    for i = 1, #all, 64 do some[#some + 1] = i end
    ds = all:subset(some)
  end)
  teardown(function() os.execute("rm -r " .. dir) end)

  it("predicts the head's classes for a picture and a list", function()
    local net = mm.image.backbone(M, { classes = { "a", "b", "c" } })
    assert.equal(9, net.size)
    local name, p = net:predict("data/emoji32/images/1F431.png")
    assert.is_string(name)
    local sum, best = 0, -1
    for _, c in ipairs { "a", "b", "c" } do
      sum = sum + p[c]
      best = math.max(best, p[c])
    end
    assert.is_true(math.abs(sum - 1) < 1e-5)
    assert.equal(best, p[name])
    local names, P = net:predict { "data/emoji32/images/1F431.png", "data/emoji32/images/1F600.png" }
    assert.same({ 2, 3 }, P:shape())
    assert.equal(name, names[1])
    -- the same as the head on the loaded picture
    local h = net:head(mm.image.batch { mm.image.load("data/emoji32/images/1F431.png", { size = 9 }) })
    assert.is_true(mm.allclose(h, P:rows(1, 1), 0, 0))
    util.assert_mentions(util.errors_with(net.predict, net, "data/emoji32/images/none.png"), "none.png")
    util.assert_mentions(util.errors_with(mm.image.backbone, M, { classes = { "a" } }), "3 outputs")
  end)

  it("features.extract caches its rows and says which model, layer and files made them", function()
    local cache = dir .. "/cache"
    assert(os.execute("mkdir " .. cache))
    local n0 = mm.features.counter()
    local rows, info = mm.features.extract(ds, { encoder = M, cache = cache })
    assert.same({ #ds, 16 }, rows:shape())
    assert.is_false(info.reused)
    assert.truthy(info.path:find("tfjs-", 1, true))
    local side = require("cjson").decode(util.read(info.sidecar))
    assert.equal(M, side.encoder)
    assert.equal("sgap", side.layer)
    assert.equal(9, side.size)
    assert.is_string(side.weights.fingerprint)
    -- equal to the model's own forward on the same pictures
    local net = mm.image.backbone(M)
    local imgs = {}
    for i, p in ipairs(ds.images.list) do imgs[i] = mm.image.load(p, { size = 9 }) end
    assert.is_true(mm.allclose(rows, net:forward(mm.image.batch(imgs)), 0, 0))
    local again, info2 = mm.features.extract(ds, { encoder = M, cache = cache })
    assert.is_true(info2.reused)
    assert.is_true(mm.allclose(again, rows, 0, 0))
    assert.equal(#ds, mm.features.counter() - n0)
    -- another layer is another cache entry
    local r2, info3 = mm.features.extract(ds, { encoder = M, layer = "sa", cache = cache })
    assert.is_false(info3.reused)
    assert.same({ #ds, 9 * 9 * 16 }, r2:shape())
    util.assert_mentions(util.errors_with(mm.features.extract, ds, { encoder = "resnet18", layer = "x" }),
      "layer = is an option of layers models")
  end)

  it("a fusion model records the model and refuses it once its files changed", function()
    local train, test = ds:split { ratios = { 0.7, 0.3 }, seed = 1 }
    local m = mm.model { fusion = "joint", dim = 4, classes = ds.classes, text = { buckets = 200 },
                         image = { encoder = M } }
    m:fit(train, { epochs = 2, lr = 0.05, seed = 1 })
    assert.truthy(tostring(m):find("pretrained TF.js layers model, layer sgap", 1, true))
    local f = dir .. "/m.mmf"
    m:save(f)
    local _, P = m:predict(test)
    local again = mm.load(f)
    local _, P2 = again:predict(test)
    assert.is_true(mm.allclose(P, P2, 0, 0))
    -- one byte of the shard changes: the model file refuses the model
    local shard = dir .. "/group1-shard1of1"
    local b = util.read(shard)
    util.write(shard, b:sub(1, 100) .. string.char((b:byte(101) + 1) % 256) .. b:sub(102))
    util.assert_mentions(util.errors_with(mm.load, f), "not the files the model was trained with")
    util.write(shard, b)
    assert.is_truthy(mm.load(f))
  end)
end)
