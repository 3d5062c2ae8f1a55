-- spec/pretrained_models_spec.lua - the TensorFlow.js layers models `make pretrained` extracts
-- from nsfwjs (data/pretrained/<model>/) and the golden outputs TensorFlow.js computed on them
-- (spec/fixtures/tfjs, tools/make_tfjs_fixtures.py): the folders are complete and consistent
-- with their manifests, and the fixtures belong to exactly these model files.
-- The data is not committed: `make test` runs `make pretrained` first; without it this fails.
local mm = require "mmfuse"
local cjson = require "cjson"
local util = require "util"

local DATA = "data/pretrained/"
local FIX = "spec/fixtures/tfjs/"
local MODELS = { inception_v3 = { size = 299, pooled = 2048 }, mobilenet_v2 = { size = 224, pooled = 1280 } }
local BYTES = { float32 = 4, int32 = 4, bool = 1, uint8 = 1, uint16 = 2, float16 = 2 }

local need = util.need_pretrained

local function sha256(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("a")
  p:close()
  return (assert(out:match("^(%x+)"), "sha256sum " .. path))
end

local fixtures = cjson.decode(util.read(FIX .. "manifest.json"))

describe("data/pretrained image models (make pretrained)", function()
  for model, m in pairs(MODELS) do
    it(model .. ": a layers model whose shards hold exactly the bytes its weight specs need", function()
      need(DATA .. model .. "/model.json")
      local j = cjson.decode(util.read(DATA .. model .. "/model.json"))
      local layers = j.modelTopology.model_config.config.layers
      assert.are.equal("InputLayer", layers[1].class_name)
      assert.are.same({ cjson.null, m.size, m.size, 3 }, layers[1].config.batch_input_shape)
      assert.are.equal(1, #j.weightsManifest)
      local want, have = 0, 0
      for _, w in ipairs(j.weightsManifest[1].weights) do
        local n = 1
        for _, d in ipairs(w.shape) do n = n * d end
        local dtype = w.quantization and w.quantization.dtype or w.dtype
        want = want + n * assert(BYTES[dtype], dtype)
      end
      for _, p in ipairs(j.weightsManifest[1].paths) do have = have + #util.read(DATA .. model .. "/" .. p) end
      assert.are.equal(want, have)
      local man = cjson.decode(util.read(DATA .. "manifest.json")).models[model]
      assert.are.same({ "Drawing", "Hentai", "Neutral", "Porn", "Sexy" }, man.classes)
      assert.are.same({ m.size, m.size }, man.input_size)
    end)
  end
end)

describe("spec/fixtures/tfjs (TensorFlow.js 4.22.0 golden outputs)", function()
  it("names 16 inputs, 8 photos and 8 emoji, as PNGs at each network size", function()
    assert.are.equal(16, #fixtures.inputs)
    for _, m in pairs(MODELS) do
      for _, name in ipairs(fixtures.inputs) do
        local x = mm.image.load(FIX .. "inputs/" .. m.size .. "/" .. name .. ".png")
        assert.are.same({ 3, m.size, m.size }, x:shape())
      end
    end
  end)

  for model, m in pairs(MODELS) do
    local fm = fixtures.models[model]

    it(model .. ": was made from the model files in data/pretrained (sha256)", function()
      need(DATA .. model .. "/model.json")
      local n = 0
      for file, sum in pairs(fm.model_sha256) do
        n = n + 1
        assert(sha256(DATA .. model .. "/" .. file) == sum, DATA .. model .. "/" .. file ..
          " differs from the file the fixtures were made from: rerun tools/make_tfjs_fixtures.py")
      end
      assert.is_true(n >= 2)
    end)

    it(model .. ": pooled features and probabilities have the manifest's shapes and sane values", function()
      local pooled = mm.io.load_npy(FIX .. fm.pooled.file)
      local probs = mm.io.load_npy(FIX .. fm.probs.file)
      assert.are.same({ 16, m.pooled }, pooled:shape())
      assert.are.same(fm.pooled.shape, pooled:shape())
      assert.are.same({ 16, 5 }, probs:shape())
      assert.is_true(pooled:min() >= 0) -- an average of ReLU outputs
      assert.is_true(pooled:max() > 0)
      assert.is_true(probs:min() >= 0)
      for i, s in ipairs(probs:sum(2):totable()) do
        assert(math.abs(s - 1) < 1e-6, ("row %d sums to %.9g"):format(i, s))
      end
    end)

    it(model .. ": the last feature map's dump averages to the pooled features of its input", function()
      local last = fm.debug.layers[#fm.debug.layers]
      assert.are.equal(last.shape[2], last.window) -- the dump windows cover the whole map
      assert.are.equal(last.shape[3], last.window)
      local dump = mm.io.load_npy(FIX .. last.file):totable()
      local pooled = mm.io.load_npy(FIX .. fm.pooled.file)
      local row
      for i, name in ipairs(fixtures.inputs) do
        if name == fm.debug.input then row = pooled:totable()[i] end
      end
      local scale = pooled:max()
      for j, c in ipairs(last.channels) do
        local s = 0
        for y = 1, last.window do
          for x = 1, last.window do s = s + dump[1][y][x][j] end
        end
        local mean = s / (last.window * last.window)
        -- float32 sums of <= 64 values in TF.js's order vs a double sum here
        assert(math.abs(mean - row[c + 1]) <= 1e-5 * scale,
          ("%s channel %d: mean %.9g, pooled %.9g"):format(last.layer, c, mean, row[c + 1]))
      end
    end)

    it(model .. ": debug dumps have the documented shapes", function()
      for _, d in ipairs(fm.debug.layers) do
        local t = mm.io.load_npy(FIX .. d.file)
        assert.are.same(d.dump_shape, t:shape())
        assert.are.same({ 2, d.window, d.window, #d.channels }, t:shape())
        assert.are.same({ { 0, 0 }, { d.shape[2] - d.window, d.shape[3] - d.window } }, d.corners)
        assert.is_true(t:min() >= d.min and t:max() <= d.max)
      end
    end)
  end
end)
