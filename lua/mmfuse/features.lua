--- mmfuse.features: run a frozen image encoder over a dataset once, keep the rows.
--
--   local feats, info = mm.features.extract("data/emoji32/manifest.tsv",
--       { encoder = "mobilenet_v2", weights = "mobilenet_v2.safetensors", size = 224, cache = "cache/" })
--   local ds = mm.data.load("data/emoji32/manifest.tsv", { label = "group", image_features = info.path })
--
--   features.extract(ds_or_manifest, { encoder = "resnet18" | "mobilenet_v2" | "histogram"
--                                      | "path/to/model.json" (a TF.js layers model, mmfuse.tfjs),
--                    weights = path | nil, seed = 1, size = 224 (32 for histogram; a layers
--                    model: its own input size), layer = (layers model: the feature layer), bins =,
--                    batch = 16, cache = dir | "x.npy" | nil, image = "image" (manifest column),
--                    format = (manifest format) })
--     -> N x dim tensor (one row per dataset row / manifest row), info table:
--        { path = .npy or nil, sidecar =, reused = bool, computed = rows encoded now,
--          missing = {rows without an image}, mask = {true/false per row}, dim =, encoder = }
--   features.encoder(name, { weights =, seed =, size =, bins = }) -> frozen encoder:
--     e:encode({path | bytes | false, ...} [, mask]) -> N x dim, e:describe() -> table, e.dim, e.random
--   features.counter() -> rows encoded so far in this process (specs check reuse with it)
--
-- Rows without an image get a zero row and are listed in info.missing and the sidecar's
-- "missing"; mm.data.load{ image_features = x.npy } reads the sidecar (x.npy.json) and
-- marks those rows image-absent.
--
-- The cache is an .npy (written atomically with mm.io.save_npy) and a sidecar x.npy.json
-- describing how it was made: encoder, image size, bins, the weights file (size and a
-- fingerprint of its bytes) or "random" and the seed, the source (manifest path or dataset),
-- the row count and an FNV-1a hash of the image paths (with which rows are present). A call
-- whose description equals the sidecar's loads the .npy instead of encoding; any difference
-- recomputes and rewrites both. Image file contents are not hashed: replace an image under
-- the same path and you must delete the cache.
--
-- A layers model is described by its model.json path, the feature layer, and the size and a
-- fingerprint of model.json and its weight shards together; its pictures are RGB / 255 (no
-- ImageNet normalisation).
--
-- Random weights: without `weights` a backbone gets conv weights Kaiming-normal over fan_in
-- (torchvision uses fan_out, which with eval-mode BatchNorm shrinks MobileNet's depthwise
-- activations to ~1e-10; fan_in keeps their scale), BatchNorm weight 1, bias 0, running
-- stats 0/1, drawn after
-- mm.seed(seed) (the global generator is re-seeded). Such features carry no ImageNet
-- knowledge: e.random is true and models say so.
local core = require "mmfuse.core"
local image = require "mmfuse.image"
local mio = require "mmfuse.io"
local data = require "mmfuse.data"
local tfjs = require "mmfuse.tfjs"

local F = {}
local FORMAT, VERSION = "mmfuse-features", 1
local ENCODERS = { resnet18 = true, mobilenet_v2 = true, histogram = true }
local counter = 0

function F.counter() return counter end

-- ---------------------------------------------------------------------------
-- hashing (FNV-1a 64, Lua integers wrap)

local FNV_OFF, FNV_PRIME = -3750763034362895579, 1099511628211 -- 0xcbf29ce484222325, 0x100000001b3

local function fnv(h, s)
  for i = 1, #s do h = (h ~ s:byte(i)) * FNV_PRIME end
  return h
end

local function hex(h) return ("%016x"):format(h) end

local function known(name) return ENCODERS[name] or tfjs.is_model(name) end
local KNOWN = "resnet18, mobilenet_v2, histogram, or a TF.js model.json path"

--- size and fingerprint (first 64 KiB + 16 spread 4 KiB blocks + the last 4 KiB) of a file
local function file_fingerprint(path)
  local f, err = mio.open(path)
  if not f then error(("features: weights file %s: cannot open: %s"):format(path, tostring(err)), 0) end
  local size = f:seek("end")
  local h = fnv(FNV_OFF, tostring(size))
  f:seek("set", 0)
  h = fnv(h, f:read(65536) or "")
  for k = 1, 16 do
    f:seek("set", math.floor(size * k / 17))
    h = fnv(h, f:read(4096) or "")
  end
  f:seek("set", math.max(0, size - 4096))
  h = fnv(h, f:read(4096) or "")
  f:close()
  return size, hex(h)
end

--- bytes and fingerprint of a layers model: model.json and every shard it lists, in order
local function model_fingerprint(path)
  local f = mio.open(path) -- a regular file only: a FIFO or device is refused unread
  local text = f and f:read("a")
  if f then f:close() end
  local okj, cj = pcall(require, "cjson")
  local okd, doc = false, nil
  if text and okj then okd, doc = pcall(cj.decode, text) end
  local files = { path }
  if okd and type(doc) == "table" and type(doc.weightsManifest) == "table" then
    local dir = path:match("^(.*)/[^/]*$") or "."
    for _, g in ipairs(doc.weightsManifest) do
      for _, p in ipairs(type(g) == "table" and type(g.paths) == "table" and g.paths or {}) do
        files[#files + 1] = dir .. "/" .. tostring(p)
      end
    end
  end
  local total, h = 0, FNV_OFF
  for _, p in ipairs(files) do
    local n, fp = file_fingerprint(p)
    total = total + n
    h = fnv(h, fp)
  end
  return total, hex(h)
end

-- ---------------------------------------------------------------------------
-- encoders

local function random_init(b, seed)
  core.seed(seed)
  for _, p in ipairs(b:params()) do
    local leaf = p.name:match("([^.]+)$")
    if #p.shape == 4 then -- conv: Kaiming normal over fan_in (keeps the scale through eval-mode BN)
      local fan_in = p.shape[2] * p.shape[3] * p.shape[4]
      b:set(p.name, core.randn(p.shape) * math.sqrt(2 / fan_in))
    elseif leaf == "weight" or leaf == "running_var" then
      b:set(p.name, core.ones(p.shape))
    end -- bias, running_mean: the zeros a new backbone holds
  end
end

local Encoder = {}
Encoder.__index = Encoder

local function check_int(v, what, lo, hi)
  if v ~= nil and (math.type(v) ~= "integer" or v < lo or v > hi) then
    error(("features: %s must be an integer in %d..%d, got %s"):format(what, lo, hi, tostring(v)), 0)
  end
end

--- A frozen encoder by name (see the header).
function F.encoder(name, o)
  if o ~= nil and type(o) ~= "table" then error("features: options must be a table", 2) end
  o = o or {}
  if not known(name) then
    error(("features: unknown encoder '%s' (%s)"):format(tostring(name), KNOWN), 2)
  end
  -- (a layers model runs at its own size, which may be small; the built-in backbones need 16)
  check_int(o.size, "size", tfjs.is_model(name) and 1 or 16, 4096)
  check_int(o.seed, "seed", -math.maxinteger, math.maxinteger)
  local e = setmetatable({ name = name, seed = o.seed or 1 }, Encoder)
  if tfjs.is_model(name) then
    if o.weights ~= nil then error("features: a layers model has its weights beside model.json (no weights =)", 2) end
    local ok, net = pcall(image.backbone, name, { layer = o.layer })
    if not ok then error("features: " .. tostring(net), 2) end
    e.net, e.tfjs, e.layer, e.dim = net, true, net.layer, net:dim()
    e.size = o.size or net.size
    if type(e.size) ~= "number" then
      error(("features: %s declares no square input size: give size ="):format(name), 2)
    end
    e.weights_size, e.weights_hash = model_fingerprint(name)
    local folder = name:match("([^/]+)/[^/]*$") or "model"
    e.stem = "tfjs-" .. folder:gsub("[^%w_.-]", "_") .. (o.layer and ("-" .. o.layer:gsub("[^%w_.-]", "_")) or "")
    return e
  end
  if o.layer ~= nil then error("features: layer = is an option of layers models (a model.json path)", 2) end
  if name == "histogram" then
    if o.weights then error("features: the histogram encoder has no weights", 2) end
    e.size = o.size or 32
    e.bins = o.bins
    e.dim = image.histogram(core.zeros(3, 4, 4), { bins = o.bins }):numel()
    return e
  end
  e.size = o.size or 224
  local b = image.backbone(name)
  if o.weights ~= nil then
    if type(o.weights) ~= "string" then error("features: weights must be a path to a .safetensors file", 2) end
    e.weights_size, e.weights_hash = file_fingerprint(o.weights)
    local ok, err = pcall(b.load, b, o.weights)
    if not ok then error("features: " .. tostring(err), 2) end
    e.weights = o.weights
  else
    random_init(b, e.seed)
    e.random = true
  end
  e.net = b
  e.dim = b:dim()
  return e
end

--- What makes the features: compared with a cache's sidecar.
function Encoder:describe()
  if self.tfjs then
    return { encoder = self.name, size = self.size, layer = self.layer,
      weights = { path = self.name, bytes = self.weights_size, fingerprint = self.weights_hash } }
  end
  return {
    encoder = self.name, size = self.size, bins = self.bins,
    weights = self.weights and { path = self.weights, bytes = self.weights_size, fingerprint = self.weights_hash }
      or (self.net and { random = true, seed = self.seed }) or nil,
  }
end

-- one image (path or bytes) -> 3 x size x size tensor, preprocessed for this encoder
function Encoder:prepare(src, bytes, fit)
  local o = { size = self.size, fit = fit }
  local t = bytes and image.decode(src, o) or image.load(src, o)
  if self.net and not self.tfjs then t = image.normalize(t, "imagenet") end
  return t
end

--- Encode images: list of path | bytes | false (false = no image: a zero row), mask (optional
-- booleans: false rows are skipped as well). opts: batch (16), bytes (list holds image bytes),
-- fit. Returns N x dim, missing rows, mask.
function Encoder:encode(list, mask, o)
  o = o or {}
  local n = #list
  local batch = o.batch or 16
  check_int(batch, "batch", 1, 1 << 20)
  local out = core.zeros(math.max(n, 1), self.dim)
  if n == 0 then out = core.zeros(1, self.dim):rows(1, 0) end
  local present, missing = {}, {}
  local todo = {}
  for i = 1, n do
    local src = list[i]
    local p = src ~= false and src ~= nil and src ~= "" and (mask == nil or mask[i] and true or false)
    present[i] = p
    if p then todo[#todo + 1] = i else missing[#missing + 1] = i end
  end
  for a = 1, #todo, batch do
    local rows, imgs = {}, {}
    for k = a, math.min(a + batch - 1, #todo) do
      local i = todo[k]
      rows[#rows + 1] = i
      local ok, t = pcall(self.prepare, self, list[i], o.bytes, o.fit)
      if not ok then error(("features: row %d: %s"):format(i, tostring(t)), 0) end
      imgs[#imgs + 1] = t
    end
    local y
    if self.net then
      y = self.net:forward(image.batch(imgs))
      for j, i in ipairs(rows) do out[i] = y[j] end
    else
      for j, i in ipairs(rows) do out[i] = image.histogram(imgs[j], { bins = self.bins }) end
    end
    counter = counter + #rows
  end
  return out, missing, present
end

-- ---------------------------------------------------------------------------
-- sources: a dataset (its image modality as files) or a manifest path

local function basename(p) return (p:match("([^/]+)$") or p) end
local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function source_of(src, o)
  if type(src) == "string" then
    local ok, header, rows = pcall(data.read_table, src, { format = o.format })
    if not ok then error("features: " .. tostring(header):gsub("^[^:]*:%d+: ", ""), 0) end
    local colname = o.image or "image"
    local c
    for i, h in ipairs(header) do if h == colname then c = i end end
    if not c then
      error(("features: %s: no image column '%s' (columns: %s)"):format(src, colname, table.concat(header, ", ")), 0)
    end
    local base = dirname(src)
    local list = {}
    for i, r in ipairs(rows) do
      local p = r[c]
      if p == "" then list[i] = false else list[i] = p:sub(1, 1) == "/" and p or base .. "/" .. p end
    end
    return { list = list, source = src, stem = basename(src):gsub("%.[^.]*$", "") }
  end
  if getmetatable(src) ~= data.Dataset then
    error("features: extract expects a dataset (mm.data.load / mm.data.new) or a manifest path, got " .. type(src), 0)
  end
  local im = src.images
  if not im then
    error("features: the dataset has no image files (load it with an image column, e.g. " ..
      "mm.data.load(path, { image = \"image\", ... }))", 0)
  end
  return { list = im.list, mask = src:mask(im.name), bytes = im.bytes, fit = im.fit, source = src.source,
    stem = src.source and basename(src.source):gsub("%.[^.]*$", "") or "dataset" }
end

local function paths_hash(s)
  local h = FNV_OFF
  for i, p in ipairs(s.list) do
    local on = p and (s.mask == nil or s.mask[i]) and true or false
    h = fnv(h, on and (s.bytes and ("#" .. #p .. ":" .. hex(fnv(FNV_OFF, p))) or p) or "\0")
    h = fnv(h, "\n")
  end
  return hex(h)
end

local function cjson()
  local ok, cj = pcall(require, "cjson")
  if not ok then error("features: the cache needs lua-cjson (Debian: lua-cjson)", 0) end
  return cj
end

local function read_file(p)
  local ok, s = pcall(core.io.read_file, p)
  return ok and s or nil
end

local function write_atomic(p, s)
  local tmp = p .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then error(("features: %s: cannot write: %s"):format(tmp, tostring(err)), 0) end
  f:write(s)
  f:close()
  local ok, rerr = os.rename(tmp, p)
  if not ok then
    os.remove(tmp)
    error(("features: %s: cannot rename: %s"):format(p, tostring(rerr)), 0)
  end
end

-- equal as JSON values (numbers compared as numbers)
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function is_dir(p) return core.io.stat(p) == "directory" end

local function cache_path(cache, s, enc, key)
  if type(cache) ~= "string" or cache == "" then error("features: cache must be a directory or an .npy path", 0) end
  if cache:match("%.npy$") then return cache end
  if not is_dir(cache) then
    error(("features: cache directory %s does not exist (give an existing directory or an .npy path)"):format(cache), 0)
  end
  local stem = s.stem
  if s.source == nil or type(s.origin) ~= "string" then stem = stem .. "-" .. key.paths_hash:sub(1, 12) end
  return ("%s/%s.%s-%d.npy"):format(cache:gsub("/+$", ""), stem, enc.stem or enc.name, enc.size)
end

--- Features of every row (see the header).
function F.extract(src, o)
  if o ~= nil and type(o) ~= "table" then error("features.extract: options must be a table", 2) end
  o = o or {}
  local ok, res, info = pcall(function()
    if o.encoder == nil then error("features: option 'encoder' is required (" .. KNOWN .. ")", 0) end
    if not known(o.encoder) then
      error(("features: unknown encoder '%s' (%s)"):format(tostring(o.encoder), KNOWN), 0)
    end
    local s = source_of(src, o)
    s.origin = type(src) == "string" and src or nil
    local enc = o.encoder_object or F.encoder(o.encoder, o)
    local key = enc:describe()
    key.format, key.version = FORMAT, VERSION
    key.source = s.origin or s.source or "dataset"
    key.rows = #s.list
    key.dim = enc.dim
    key.paths_hash = paths_hash(s)
    local path, side
    if o.cache ~= nil then
      path = cache_path(o.cache, s, enc, key)
      side = path .. ".json"
      local text = read_file(side)
      if text then
        local okd, old = pcall(cjson().decode, text)
        if okd and type(old) == "table" then
          local missing = old.missing
          old.missing, old.made = nil, nil
          if same(old, key) and type(missing) == "table" then
            local okl, t = pcall(mio.load_features, path, { rows = #s.list })
            if okl and t:shape()[2] == enc.dim then
              local mask = {}
              for i = 1, #s.list do mask[i] = true end
              for _, r in ipairs(missing) do mask[r] = false end
              return t, { path = path, sidecar = side, reused = true, computed = 0, missing = missing, mask = mask,
                dim = enc.dim, encoder = enc.name, random = enc.random }
            end
          end
        end
      end
    end
    local t, missing, mask = enc:encode(s.list, s.mask, { batch = o.batch, bytes = s.bytes, fit = s.fit })
    if path then
      os.remove(side) -- a crash between the two writes leaves no stale description
      mio.save_npy(path, t)
      key.missing = missing
      key.made = os.date("!%Y-%m-%dT%H:%M:%SZ")
      write_atomic(side, cjson().encode(key))
    end
    return t, { path = path, sidecar = side, reused = false, computed = #s.list - #missing, missing = missing,
      mask = mask, dim = enc.dim, encoder = enc.name, random = enc.random }
  end)
  if not ok then error(tostring(res), 2) end
  return res, info
end

return F
