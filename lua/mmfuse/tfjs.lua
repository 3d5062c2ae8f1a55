--- mmfuse.tfjs: TensorFlow.js / Keras layers models (model.json + weight shards) as image
-- encoders, run by mmfuse's own C executor (csrc/io/tfjs.c, csrc/nn/graph.c).
--
--   local net = mm.image.backbone("data/pretrained/inception_v3/model.json" [, opts])
--     opts: layer = name      the layer whose output is the feature vector (default: the
--                             model's global average pool); the model's own output stays the head
--           classes = {...}   names of the head's outputs (default: from the manifest.json that
--                             `make pretrained` writes one folder up, else "1", "2", ...)
--           scale =, offset = the model's input is pixel * scale + offset (default 1/255, 0:
--                             RGB / 255, what these models were trained on)
--   net:dim()            -> feature size (2048 for Inception-v3, 1280 for MobileNetV2)
--   net:forward(x)       -> N x dim. x: N x 3 x H x W (or 3 x H x W) with values RGB / 255, which
--                           is what mm.image.load / mm.image.decode give (at net.size: mm.image.load
--                           (path, { size = net.size })); no ImageNet normalisation
--   net:head(x)          -> N x k, the model's own output (nsfwjs: 5 class probabilities)
--   net:predict(what)    -> class name, { [class] = probability } for one picture (a path, or a
--                           3 x H x W tensor); for a list of paths: names, N x k tensor
--   net:describe()       -> table (path, input size, preprocessing, layers, feature and head)
--   net:layers()         -> { {name =, class =}, ... }
--   tostring(net)        -> the same in words
-- Every layer class or option the reader does not implement is an error naming the layer.
local core = require "mmfuse.core"

local M = {}
local Net = {}
Net.__index = Net

--- true when `s` names a layers model (a path ending in .json)
function M.is_model(s) return type(s) == "string" and s:match("%.json$") ~= nil end

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function realpath(p)
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." and #parts > 0 and parts[#parts] ~= ".." then parts[#parts] = nil
    elseif seg ~= "." then parts[#parts + 1] = seg end
  end
  return (p:sub(1, 1) == "/" and "/" or "") .. table.concat(parts, "/")
end

-- the entry of data/pretrained/manifest.json (written by `make pretrained`) for this model
local function pretrained_entry(path)
  local top = dirname(dirname(path))
  local mpath = top .. "/manifest.json"
  if core.io.stat(mpath) ~= "file" then return nil end
  local okr, text = pcall(core.io.read_file, mpath, { max_bytes = 1 << 20 })
  if not okr then return nil end
  local ok, cj = pcall(require, "cjson")
  if not ok then return nil end
  local okd, man = pcall(cj.decode, text)
  if not okd or type(man) ~= "table" or type(man.models) ~= "table" then return nil end
  for _, m in pairs(man.models) do
    if type(m) == "table" and type(m.path) == "string" and realpath(top .. "/" .. m.path) == realpath(path) then
      return m
    end
  end
  return nil
end

--- Load a layers model (see the header).
function M.load(path, o)
  if o ~= nil and type(o) ~= "table" then error("backbone: options must be a table", 2) end
  o = o or {}
  if type(path) ~= "string" then error("backbone: a model.json path is expected", 2) end
  if o.layer ~= nil and type(o.layer) ~= "string" then error("backbone: layer must be a layer name", 2) end
  for _, k in ipairs { "scale", "offset" } do
    if o[k] ~= nil and (type(o[k]) ~= "number" or o[k] ~= o[k] or math.abs(o[k]) == math.huge) then
      error(("backbone: %s must be a finite number"):format(k), 2)
    end
  end
  local ok, c = pcall(core.image.layers_model, path, o.layer)
  if not ok then error(tostring(c), 2) end
  local info = c:info()
  local entry = pretrained_entry(path)
  local classes = o.classes or (entry and entry.classes)
  if classes ~= nil then
    if type(classes) ~= "table" or #classes ~= info.head_dim then
      error(("backbone: %s: classes must name the head's %d outputs"):format(path, info.head_dim), 2)
    end
    for i, v in ipairs(classes) do
      if type(v) ~= "string" then error(("backbone: class %d must be a string"):format(i), 2) end
    end
  else
    classes = {}
    for i = 1, info.head_dim do classes[i] = tostring(i) end
  end
  local pre = entry and type(entry.preprocess) == "table" and entry.preprocess or {}
  local self = setmetatable({
    _c = c, path = path, info = info, layer = info.feature, classes = classes,
    size = info.height > 0 and info.height or nil,
    scale = o.scale or tonumber(pre.scale) or 1 / 255, offset = o.offset or tonumber(pre.offset) or 0,
  }, Net)
  if info.height > 0 and info.width ~= info.height then self.size = { info.height, info.width } end
  return self
end

function Net:dim() return self.info.dim end
function Net:arch() return self.path end
function Net:layers() return self._c:layers() end

-- x (RGB / 255) -> the model's input
function Net:_input(x)
  if math.abs(self.scale * 255 - 1) < 1e-12 and self.offset == 0 then return x end
  return x * (self.scale * 255) + self.offset
end

function Net:forward(x)
  local ok, y = pcall(self._c.forward, self._c, self:_input(x), "features")
  if not ok then error(tostring(y), 2) end
  return y
end

function Net:head(x)
  local ok, y = pcall(self._c.forward, self._c, self:_input(x), "head")
  if not ok then error(tostring(y), 2) end
  return y
end

-- a path or a tensor -> 3 x H x W at the model's size
function Net:_picture(p, i)
  local image = require "mmfuse.image"
  if type(p) == "string" then
    local ok, t = pcall(image.load, p, { size = self.size })
    if not ok then error(("predict: %s%s"):format(i and ("picture " .. i .. ": ") or "", tostring(t)), 0) end
    return t
  end
  if getmetatable(p) == getmetatable(core.zeros(1)) then return p end
  error(("predict: %sa path or a 3 x H x W tensor is expected, got %s"):format(i and ("picture " .. i .. ": ") or "",
    type(p)), 0)
end

--- class name and probabilities of one picture; names and N x k for a list
function Net:predict(what)
  local image = require "mmfuse.image"
  if type(what) == "table" and getmetatable(what) == nil then
    local ok, res, P = pcall(function()
      local imgs = {}
      for i, p in ipairs(what) do imgs[i] = self:_picture(p, i) end
      if #imgs == 0 then error("predict: the list is empty", 0) end
      local Pt = self._c:forward(self:_input(image.batch(imgs)), "head")
      local names = {}
      for i = 1, #imgs do
        local best, bi = -math.huge, 1
        for j = 1, #self.classes do
          local v = Pt[i][j]
          if v > best then best, bi = v, j end
        end
        names[i] = self.classes[bi]
      end
      return names, Pt
    end)
    if not ok then error(tostring(res), 2) end
    return res, P
  end
  local ok, t = pcall(self._picture, self, what)
  if not ok then error(tostring(t), 2) end
  local okf, P = pcall(self._c.forward, self._c, self:_input(t), "head")
  if not okf then error(tostring(P), 2) end
  local probs, best, name = {}, -math.huge, nil
  for j, c in ipairs(self.classes) do
    local v = P[1][j]
    probs[c] = v
    if v > best then best, name = v, c end
  end
  return name, probs
end

function Net:describe()
  local i = self.info
  return {
    kind = "tfjs layers model", path = self.path, name = i.name, layers = i.layers, params = i.params,
    input = { height = i.height, width = i.width, channels = i.channels },
    preprocess = { color = "RGB", scale = self.scale, offset = self.offset, resize = "stretch",
      size = self.size, layout = "N x 3 x H x W (planar) in, channels-last inside" },
    feature = { layer = i.feature, class = i.feature_class, dim = i.dim },
    head = { layer = i.head, class = i.head_class, dim = i.head_dim, classes = self.classes },
  }
end

local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

function Net.__tostring(self)
  local i = self.info
  local pre = (math.abs(self.scale * 255 - 1) < 1e-12 and self.offset == 0) and "RGB / 255"
    or ("RGB x %g + %g"):format(self.scale, self.offset)
  return table.concat({
    ("TF.js layers model '%s' (%s)"):format(i.name, self.path),
    ("  %d layers, %s parameters"):format(i.layers, thousands(i.params)),
    ("  input %dx%d, %s (mm.image.load(path, { size = %d }))"):format(i.height, i.width, pre, i.height),
    ("  features: layer '%s' (%s), %d values"):format(i.feature, i.feature_class, i.dim),
    ("  head: layer '%s' (%s), %d values: %s"):format(i.head, i.head_class, i.head_dim, table.concat(self.classes, ", ")),
  }, "\n")
end

M.Net = Net
return M
