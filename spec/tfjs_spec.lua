-- The nsfwjs Inception-v3 and MobileNetV2 (data/pretrained, `make pretrained`) run by mmfuse's
-- TF.js layers reader and executor, against the golden outputs TensorFlow.js 4.22.0 computed
-- for the same model.json files on 16 inputs (spec/fixtures/tfjs: 8 photos + 8 emoji, PNGs
-- at the network size; see its README): the pooled features, the 5 class probabilities, and
-- the corners of four inner layers for one emoji.
--
-- Tolerance: 1e-4 of the largest value of the compared output (per model and output). Both
-- sides compute in float32 but sum in other orders (TF.js: its CPU kernels' loops; mmfuse:
-- register tiles, BatchNormalization folded into the convolution weights), and the rounding
-- differences grow through ~100 layers: measured 2.5e-7 .. 9.2e-6 of the largest value
-- (pooled features 1.2e-6 / 2.6e-6, probabilities 2.5e-7 / 3.3e-6, inner corners up to 9.2e-6
-- at MobileNetV2's out_relu), so 1e-4 leaves a margin of 10x while a wrong padding, channel
-- order or folding (errors of 1e-2 and more) still fails.
local mm = require "mmfuse"
local cjson = require "cjson"
local util = require "util"

local FX = "spec/fixtures/tfjs"
local TOL = 1e-4

local function need(path)
  local f = io.open(path, "rb")
  if not f then error(path .. " is missing: run `make pretrained`", 0) end
  f:close()
end

-- the largest |a - b| over the largest |b|
local function relerr(a, b)
  local x, y = a:reshape(a:numel()), b:reshape(b:numel())
  assert.equal(y:numel(), x:numel())
  return ((x - y):abs():max()) / (y:abs():max())
end

local man = cjson.decode(util.read(FX .. "/manifest.json"))

-- The inputs compared: all 16 in `make test` (at every kernel level). Under ASan (make asan),
-- where Inception-v3 runs ~30x slower, 4 of them (2 photos, 2 emoji): the same layers and
-- kernels run, on fewer pictures; the numbers are checked in full by the other runs.
local PICK = {}
if os.getenv("MMFUSE_ASAN") then PICK = { 1, 2, 9, 10 } else for i = 1, 16 do PICK[i] = i end end

-- the largest |got[k] - ref[PICK[k]]| over the largest |ref[PICK[k]]| (rows of 2-D tensors)
local function relerr_rows(got, ref)
  local g, r = got:totable(), ref:totable()
  assert.equal(#PICK, #g)
  local d, m = 0, 0
  for k, i in ipairs(PICK) do
    assert.equal(#r[i], #g[k])
    for j = 1, #r[i] do
      d = math.max(d, math.abs(g[k][j] - r[i][j]))
      m = math.max(m, math.abs(r[i][j]))
    end
  end
  return d / m
end

describe("the nsfwjs models against TensorFlow.js", function()
  for _, name in ipairs { "inception_v3", "mobilenet_v2" } do
    local m = man.models[name]

    it(name .. ": pooled features and class probabilities of the inputs (16; 4 under ASan)", function()
      need(m.model)
      local net = mm.image.backbone(m.model)
      assert.equal(m.input_size, net.size)
      assert.same(m.probs.classes, net.classes)
      assert.equal(16, #man.inputs)
      local imgs = {}
      for k, i in ipairs(PICK) do
        imgs[k] = mm.image.load(FX .. "/" .. m.inputs .. "/" .. man.inputs[i] .. ".png")
        assert.same({ 3, m.input_size, m.input_size }, imgs[k]:shape())
      end
      local x = mm.image.batch(imgs)
      local pooled, probs = net:forward(x), net:head(x)
      local ep = relerr_rows(pooled, mm.io.load_npy(FX .. "/" .. m.pooled.file))
      local eh = relerr_rows(probs, mm.io.load_npy(FX .. "/" .. m.probs.file))
      assert(ep < TOL, ("%s pooled features: error %g of the largest value"):format(name, ep))
      assert(eh < TOL, ("%s probabilities: error %g of the largest value"):format(name, eh))
      if os.getenv("MMFUSE_SPEC_VERBOSE") then print(("\n%s: pooled %.3g, probabilities %.3g"):format(name, ep, eh)) end
      -- the same class wins for every input
      local paths = {}
      for k, i in ipairs(PICK) do paths[k] = FX .. "/" .. m.inputs .. "/" .. man.inputs[i] .. ".png" end
      local names = net:predict(paths)
      local ref = mm.io.load_npy(FX .. "/" .. m.probs.file)
      for k, i in ipairs(PICK) do
        local best, bj = -1, 0
        for j = 1, 5 do
          if ref[i][j] > best then best, bj = ref[i][j], j end
        end
        assert.equal(m.probs.classes[bj], names[k])
      end
    end)

    it(name .. ": corners of inner layers for " .. m.debug.input, function()
      need(m.model)
      local x = mm.image.batch { mm.image.load(FX .. "/" .. m.inputs .. "/" .. m.debug.input .. ".png") }
      for _, d in ipairs(m.debug.layers) do
        local net = mm.image.backbone(m.model, { layer = d.layer })
        local I = math.tointeger
        local H, W, C = I(d.shape[2]), I(d.shape[3]), I(d.shape[4])
        local y = net:forward(x):reshape(H, W, C) -- the layer's output, channels last
        local k = I(d.window)
        local ref = mm.io.load_npy(FX .. "/" .. d.file)
        local got, want = {}, {}
        for corner = 1, 2 do
          local y0, x0 = I(d.corners[corner][1]), I(d.corners[corner][2])
          for r = 0, k - 1 do
            for c = 0, k - 1 do
              for q, ch in ipairs(d.channels) do
                got[#got + 1] = y[y0 + r + 1][x0 + c + 1][I(ch) + 1]
                want[#want + 1] = ref[corner][r + 1][c + 1][q]
              end
            end
          end
        end
        local e = relerr(mm.tensor(got), mm.tensor(want))
        assert(e < TOL, ("%s %s corners: error %g of the largest value"):format(name, d.layer, e))
        if os.getenv("MMFUSE_SPEC_VERBOSE") then print(("%s %s corners: %.3g"):format(name, d.layer, e)) end
      end
    end)
  end
end)
