-- Forged, damaged and unsupported TF.js layers models: every one is refused with a message
-- that names the file, the layer, its class and the option (or the shard, weight, dtype or
-- shape), and nothing crashes. Each case edits a copy of a spec/fixtures/tfjs_layers model.
local mm = require "mmfuse"
local util = require "util"

local FX = "spec/fixtures/tfjs_layers"

local function files(dir)
  local out = {}
  for f in io.popen("ls " .. dir):lines() do out[#out + 1] = f end
  return out
end

-- a copy of fixture `name` in a fresh folder, model.json passed through edit(text) (plain
-- replacements: the bytes of everything else stay as TF.js wrote them); returns model.json's path
local function forged(name, edit)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  for _, f in ipairs(files(FX .. "/" .. name)) do util.write(dir .. "/" .. f, util.read(FX .. "/" .. name .. "/" .. f)) end
  local p = dir .. "/model.json"
  if edit then util.write(p, edit(util.read(p))) end
  return p, dir
end

-- plain (not pattern) replacement of the first occurrence of a in s; a must occur
local function swap(s, a, b)
  local i = s:find(a, 1, true)
  assert(i, "fixture text not found: " .. a)
  return s:sub(1, i - 1) .. b .. s:sub(i + #a)
end

local function refused(path, ...)
  local msg = util.errors_with(mm.image.backbone, path)
  util.assert_mentions(msg, path, ...)
  return msg
end

describe("TF.js layers models that cannot be read", function()
  local made = {}
  local function model(name, edit)
    local p, dir = forged(name, edit)
    made[#made + 1] = dir
    return p, dir
  end
  teardown(function()
    for _, d in ipairs(made) do os.execute("rm -r " .. d) end
  end)

  it("names an unknown layer class", function()
    local p = model("sequential_small", function(s) return swap(s, '"class_name":"Activation"', '"class_name":"Swish"') end)
    refused(p, "layer 'sa' (Swish): layer class Swish is not supported")
  end)

  it("names an unsupported option value and an unknown option", function()
    local p = model("sequential_small", function(s) return swap(s, '"dilation_rate":[1,1]', '"dilation_rate":[2,2]') end)
    refused(p, "layer 's1' (Conv2D): dilation_rate [2,2] is not supported")
    p = model("sequential_small", function(s) return swap(s, '"padding":"same"', '"padding":"causal"') end)
    refused(p, "layer 's1' (Conv2D): padding \"causal\" is not supported")
    p = model("sequential_small", function(s) return swap(s, '"name":"sa",', '"name":"sa","alpha":0.1,') end)
    refused(p, "layer 'sa' (Activation): option 'alpha' is not supported")
    p = model("sequential_small", function(s) return swap(s, '"activation":"relu6"', '"activation":"tanh"') end)
    refused(p, "layer 'sa' (Activation): activation \"tanh\" is not supported")
    p = model("every_layer", function(s) return swap(s, '"max_value":6', '"max_value":6,"negative_slope":0.2') end)
    refused(p, "layer 'relu6' (ReLU): negative_slope 0.2 is not supported")
    p = model("sequential_small", function(s) return swap(s, '"data_format":"channels_last"', '"data_format":"channels_first"') end)
    refused(p, "layer 's1' (Conv2D): data_format \"channels_first\" is not supported")
  end)

  it("names a missing, truncated or oversized shard", function()
    local p, dir = model("every_layer")
    os.remove(dir .. "/group1-shard3of6")
    refused(p, "shard 'group1-shard3of6' (weights group 1) is missing")
    p, dir = model("every_layer")
    local last = dir .. "/group1-shard6of6"
    local bytes = util.read(last)
    util.write(last, bytes:sub(1, -2))
    refused(p, "needs 21505 bytes", "group1-shard1of6 .. group1-shard6of6", "hold 21504", "truncated")
    util.write(last, bytes .. "\0")
    refused(p, "needs 21505 bytes", "hold 21506", "larger than this manifest says")
  end)

  it("refuses shard paths outside the model's folder", function()
    local p = model("sequential_small", function(s) return swap(s, '"paths":["group1-shard1of1"]', '"paths":["/etc/passwd"]') end)
    refused(p, "shard path '/etc/passwd' is absolute")
    p = model("sequential_small", function(s)
      return swap(s, '"paths":["group1-shard1of1"]', '"paths":["x/../../group1-shard1of1"]')
    end)
    refused(p, "shard path 'x/../../group1-shard1of1' leaves the model's folder ('..')")
  end)

  it("names a weight with another dtype, shape or a missing one, and one no layer uses", function()
    local p = model("sequential_small", function(s)
      return swap(s, '{"name":"s1/kernel","shape":[3,3,3,16],"dtype":"float32"}', '{"name":"s1/kernel","shape":[3,3,3,16],"dtype":"int32"}')
    end)
    refused(p, "weight 's1/kernel' has dtype \"int32\" (float32 is supported)")
    p = model("sequential_small", function(s) return swap(s, '"name":"s1/kernel","shape":[3,3,3,16]', '"name":"s1/kernel","shape":[3,3,6,8]') end)
    refused(p, "layer 's1' (Conv2D): weight 's1/kernel' has shape 3x3x6x8, the layer needs 3x3x6x16")
    p = model("sequential_small", function(s) return swap(s, '"name":"sd/bias"', '"name":"sd/b"') end)
    local msg = refused(p)
    assert.truthy(msg:find("layer 'sd' (Dense): weight 'sd/bias' is not in the weights manifest", 1, true)
      or msg:find("weight 'sd/b' in the manifest belongs to no layer", 1, true), msg)
    p = model("sequential_small", function(s)
      return swap(s, '"weights":[', '"weights":[{"name":"ghost/kernel","shape":[0],"dtype":"float32"},')
    end)
    refused(p, "weight 'ghost/kernel' in the manifest belongs to no layer")
    p = model("sequential_small", function(s) return swap(s, '"quantization":{"dtype":"uint8"', '"quantization":{"dtype":"int4"') end)
    refused(p, "quantization dtype 'int4' is not supported (uint8, uint16, float16)")
  end)

  it("refuses a weight that is not finite", function()
    local p, dir = model("every_layer")
    local first = dir .. "/group1-shard1of6"
    local bytes = util.read(first)
    util.write(first, string.pack("<f", 0 / 0) .. bytes:sub(5)) -- c1/kernel is float32, first in the shards
    refused(p, "layer 'c1' (Conv2D): weight 'c1/kernel': element 1 is not finite")
  end)

  it("names a cycle, a missing inbound layer, a shared layer and several inputs", function()
    local p = model("every_layer", function(s) return swap(s, '"inbound_nodes":[[["image",0,0,{}]]]', '"inbound_nodes":[[["act",0,0,{}]]]') end)
    refused(p, "is part of a cycle in the layer graph")
    p = model("every_layer", function(s) return swap(s, '"inbound_nodes":[[["c1",0,0,{}]]]', '"inbound_nodes":[[["c0",0,0,{}]]]') end)
    refused(p, "layer 'bn1' (BatchNormalization): inbound layer 'c0' is not in the model")
    p = model("every_layer", function(s)
      return swap(s, '"inbound_nodes":[[["c1",0,0,{}]]]', '"inbound_nodes":[[["c1",0,0,{}]],[["c1",0,0,{}]]]')
    end)
    refused(p, "layer 'bn1' (BatchNormalization): is called 2 times (shared layers are not supported)")
    p = model("every_layer", function(s)
      return swap(s, '"inbound_nodes":[[["c1",0,0,{}]]]', '"inbound_nodes":[{"args":[],"kwargs":{}}]')
    end)
    refused(p, "layer 'bn1' (BatchNormalization): inbound_nodes in the Keras 3 form are not supported")
    p = model("every_layer", function(s)
      return swap(s, '"inbound_nodes":[[["c1",0,0,{}]]]', '"inbound_nodes":[[["c1",0,0,{"training":true}]]]')
    end)
    refused(p, "layer 'bn1' (BatchNormalization): call argument 'training' of its input 'c1' is not supported")
  end)

  it("names broken JSON by line and column, and refuses graph models", function()
    local p = model("sequential_small", function(s) return s:sub(1, 200) end)
    refused(p, "model.json:1:201: invalid JSON")
    p = model("sequential_small", function(s) return swap(s, '"format":"layers-model"', '"format":"graph-model"') end)
    refused(p, "format \"graph-model\" is not a layers model")
    p = model("sequential_small", function(s) return swap(s, '{"format"', '{"x":1,"x":2,"format"') end)
    refused(p, "duplicate key \"x\"")
    p = model("sequential_small", function(s) return swap(s, '"epsilon":0.001', '"epsilon":NaN') end)
    refused(p, "invalid JSON")
    util.errors_with(mm.image.backbone, "spec/fixtures/tfjs_layers/none/model.json")
  end)

  it("names the shapes that do not fit, when the graph is planned", function()
    -- 16 features into a Dense layer whose kernel takes 8: the kernel's shape decides its
    -- input, the plan finds the mismatch
    local p, dir = model("sequential_small", function(s)
      s = swap(s, '"name":"sd/kernel","shape":[16,3]', '"name":"sd/kernel","shape":[8,6]')
      return s
    end)
    assert.truthy(dir)
    local msg = util.errors_with(mm.image.backbone, p)
    util.assert_mentions(msg, "layer 'sd' (Dense)")
  end)

  it("refuses bad input to forward and an unknown feature layer", function()
    local net = mm.image.backbone(FX .. "/sequential_small/model.json")
    util.assert_mentions(util.errors_with(net.forward, net, mm.zeros(2, 4, 9, 9)), "x must have 3 channels")
    util.assert_mentions(util.errors_with(net.forward, net, mm.zeros(9, 9)), "x must be")
    local x = mm.zeros(1, 3, 9, 9)
    x[1] = mm.full({ 3, 9, 9 }, 0 / 0)
    util.assert_mentions(util.errors_with(net.forward, net, x), "contains NaN")
    local every = mm.image.backbone(FX .. "/every_layer/model.json")
    util.assert_mentions(util.errors_with(every.forward, every, mm.zeros(1, 5, 1, 1)), "layer 'c2' (Conv2D)",
      "its 2x3 input is smaller than its 3x2 window")
    util.assert_mentions(util.errors_with(mm.image.backbone, FX .. "/sequential_small/model.json", { layer = "nope" }),
      "no layer named 'nope'")
  end)
end)
