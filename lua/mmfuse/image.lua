--- mmfuse.image: load, decode, normalise, augment and describe images.
-- Images are float tensors 3xHxW (batches NxCxHxW), values in [0, 1] until
-- normalised. Decoding is stb_image (PNG, JPEG, BMP, GIF, TGA); transparent
-- pixels are composited over white; sides above `image.max_side` (8192) are
-- rejected before any pixel is decoded.
--
--   image.load(path [, {size = n | {h, w}, fit = "stretch" | "crop"}]) -> 3xHxW
--   image.decode(bytes [, {size =, fit =, name =}])                 -> 3xHxW
--   image.info(path) -> width, height, channels (header only)
--   image.normalize(t, mean, std) -> new tensor ("imagenet" for ImageNet stats)
--   image.augment(t, {crop =, pad =, flip =, center =, seed =}) -> new tensor
--   image.histogram(t_or_path [, {bins = n | {h, s, v}}]) -> L1-normalised HSV histogram
--   image.batch{t1, t2, ...} -> NxCxHxW
--   image.backbone("resnet18" | "mobilenet_v2" [, {weights = "x.safetensors"}])
--     -> object: b:forward(x) -> N x dim pooled features, b:load(path),
--        b:params(), b:get(name), b:set(name, t), b:dim(), b:arch()
--   image.backbone("path/to/model.json" [, {layer =, classes =}])
--     -> a TensorFlow.js / Keras layers model (see mmfuse.tfjs): b:forward(x) -> N x dim,
--        b:head(x), b:predict(path), b:describe(), b:dim(); x holds RGB / 255 values
local core = require "mmfuse.core"
local tfjs = require "mmfuse.tfjs"

local image = {}
for k, v in pairs(core.image) do
  -- _decode_rgb8: a test hook; layers_model: wrapped by image.backbone
  if not k:match("^_") and k ~= "layers_model" then image[k] = v end
end

local c_normalize = core.image.normalize
function image.normalize(t, mean, std)
  if mean == "imagenet" then
    mean, std = image.imagenet_mean, image.imagenet_std
  end
  return c_normalize(t, mean, std)
end

-- tensors of a torchvision state_dict that a backbone does not use
local function skipped(name)
  return name == "__metadata__" or name:match("%.num_batches_tracked$") or name:match("^fc%.")
    or name:match("^classifier%.")
end

--- Read a safetensors file of torchvision weights into backbone `b`.
-- Every backbone parameter must be there as F32 with its exact shape; the
-- classifier head and num_batches_tracked are skipped; anything else is an
-- error (a file for another architecture).
local function load_weights(b, path)
  local cjson = require "cjson"
  local okr, s = pcall(core.io.read_file, path) -- a regular file only (csrc/io/file.c)
  if not okr then error(s, 0) end
  local function bad(msg) error(path .. ": " .. msg, 0) end
  if #s < 8 then bad("not a safetensors file (" .. #s .. " bytes)") end
  local n = string.unpack("<I8", s)
  if n < 2 or n > #s - 8 then bad(("header length %d does not fit in the file (%d bytes)"):format(n, #s)) end
  local ok, header = pcall(cjson.decode, s:sub(9, 8 + n))
  if not ok or type(header) ~= "table" then bad("header is not a JSON object") end
  local base = 8 + n
  local want = {}
  for _, p in ipairs(b:params()) do want[p.name] = p.shape end
  for name in pairs(header) do
    if not want[name] and not skipped(name) then
      bad(("unexpected tensor '%s' (is this a %s state_dict?)"):format(name, b:arch()))
    end
  end
  for _, p in ipairs(b:params()) do
    local h = header[p.name]
    if type(h) ~= "table" then bad(("missing tensor '%s'"):format(p.name)) end
    if h.dtype ~= "F32" then bad(("tensor '%s' has dtype %s (F32 expected)"):format(p.name, tostring(h.dtype))) end
    local shape = h.shape
    local same = type(shape) == "table" and #shape == #p.shape
    for i = 1, #p.shape do same = same and shape[i] == p.shape[i] end
    if not same then
      local got = tostring(shape)
      if type(shape) == "table" then
        local parts = {}
        for i, v in ipairs(shape) do parts[i] = tostring(math.tointeger(v) or v) end
        got = table.concat(parts, "x")
      end
      bad(("tensor '%s' has shape %s, %s needs %s"):format(p.name, got, b:arch(), table.concat(p.shape, "x")))
    end
    local off = h.data_offsets
    local numel = 1
    for i = 1, #p.shape do numel = numel * p.shape[i] end
    local a, z -- cjson gives floats; offsets must be exact integers
    if type(off) == "table" and type(off[1]) == "number" and type(off[2]) == "number" then
      a, z = math.tointeger(off[1]), math.tointeger(off[2])
    end
    if not a or not z or a < 0 or z - a ~= numel * 4 or base + z > #s then
      bad(("tensor '%s': data_offsets do not match its shape or lie past the end of the file"):format(p.name))
    end
    b:set_raw(p.name, s, base + a)
  end
  return b
end

local c_backbone = core.image.backbone
function image.backbone(arch, opts)
  if tfjs.is_model(arch) then return tfjs.load(arch, opts) end
  local b = c_backbone(arch)
  if opts ~= nil and type(opts) ~= "table" then error("backbone: options must be a table", 2) end
  if opts and opts.weights then load_weights(b, opts.weights) end
  return b
end

-- b:load(path) on every backbone object
do
  local mt = getmetatable(c_backbone("mobilenet_v2"))
  mt.__index.load = load_weights
end

return image
