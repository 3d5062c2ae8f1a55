-- TF.js layers models (csrc/io/tfjs.c on the graph executor csrc/nn/graph.c) against
-- @tensorflow/tfjs 4.22.0 itself: spec/fixtures/tfjs_layers/ holds two small models that use
-- every layer class, option and weight encoding the reader implements (written by
-- tools/make_tfjs_layer_fixtures.js, which also ran them in TF.js), their inputs and the
-- outputs TF.js computed for the models' outputs and some inner layers.
local mm = require "mmfuse"
local util = require "util"

local FX = "spec/fixtures/tfjs_layers"

-- NHWC batch (as TF.js takes it) -> N x C x H x W (as mmfuse's images are)
local function nchw(x)
  local s = x:shape()
  local imgs = {}
  for b = 1, s[1] do
    imgs[b] = x:rows(b, b):reshape(s[2] * s[3], s[4]):transpose():reshape(s[4], s[2], s[3])
  end
  return mm.image.batch(imgs)
end

-- every layer TF.js dumped for the model in dir: { name = "y_<layer>.npy" }
local function dumps(dir)
  local out = {}
  for _, nm in ipairs { "fc2", "sm", "bn1", "relu6", "bn3", "act", "cat", "gap", "flat", "sd", "sa", "sgap" } do
    local f = io.open(dir .. "/y_" .. nm .. ".npy", "rb")
    if f then
      f:close()
      out[#out + 1] = nm
    end
  end
  return out
end

-- the largest |a - b| over the largest |b| (a, b: same numbers of values)
local function relerr(a, b)
  local x, y = a:reshape(a:numel()), b:reshape(b:numel())
  assert.equal(y:numel(), x:numel())
  return ((x - y):abs():max()) / math.max(1e-30, (y:abs():max()))
end

describe("TF.js layers models against TF.js", function()
  util.keep_kernel_and_threads(before_each, after_each)

  for _, model in ipairs { "every_layer", "sequential_small" } do
    it(model .. ": every dumped layer on every kernel level and thread count", function()
      local dir = FX .. "/" .. model
      local x = nchw(mm.io.load_npy(dir .. "/x.npy"))
      local names = dumps(dir)
      assert.is_true(#names >= 3)
      for _, layer in ipairs(names) do
        local net = mm.image.backbone(dir .. "/model.json", { layer = layer, scale = 1 / 255 })
        local ref = mm.io.load_npy(dir .. "/y_" .. layer .. ".npy")
        local first
        for _, k in ipairs(util.gemm_kernels()) do
          mm.gemm_kernel(k)
          for _, t in ipairs { 1, 2 } do
            mm.threads(t)
            local y = net:forward(x)
            -- Float32 sums of at most a few hundred products per output, in another
            -- order than TF.js's, BatchNormalization folded into the weights: a few
            -- units of 1e-7 of the largest value (measured up to 6.5e-7)
            local err = relerr(y, ref)
            assert(err < 1e-5, ("%s %s (%s, %d threads): error %g of the largest value"):format(model, layer, k, t, err))
            -- our kernels sum each output in one order whatever the thread count
            -- (tiles, rows and blocks do not depend on it): equal bits
            if t == 2 then assert.is_true(mm.allclose(y, first, 0, 0)) end
            first = y
          end
        end
      end
    end)
  end

  it("computes the features and the head in one pass, as two calls do", function()
    local dir = FX .. "/every_layer"
    local net = mm.image.backbone(dir .. "/model.json", { layer = "gap" })
    local x = nchw(mm.io.load_npy(dir .. "/x.npy"))
    assert.equal(104 // 2, net:dim())
    local f, h = net:forward(x), net:head(x)
    assert.is_true(mm.allclose(f, mm.io.load_npy(dir .. "/y_gap.npy"):reshape(2, 52), 0, 1e-5))
    assert.is_true(relerr(h, mm.io.load_npy(dir .. "/y_fc2.npy")) < 1e-5)
    local d = net:describe()
    assert.equal("gap", d.feature.layer)
    assert.equal("GlobalAveragePooling2D", d.feature.class)
    assert.equal("fc2", d.head.layer)
    assert.equal(4, d.head.dim)
    assert.same({ "1", "2", "3", "4" }, d.head.classes)
    assert.equal(17, d.input.height)
    assert.equal(15, d.input.width)
  end)

  it("takes the model's global average pool as the default feature layer", function()
    local net = mm.image.backbone(FX .. "/every_layer/model.json")
    assert.equal("gap", net.layer)
    net = mm.image.backbone(FX .. "/sequential_small/model.json")
    assert.equal("sgap", net.layer)
    assert.equal(16, net:dim())
    assert.truthy(tostring(net):find("features: layer 'sgap' (GlobalAveragePooling2D), 16 values", 1, true))
    -- a Sequential model without an InputLayer gets Keras's name for it
    assert.equal("s1_input", net:layers()[1].name)
  end)
end)
