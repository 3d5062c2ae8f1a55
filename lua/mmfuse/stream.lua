--- mmfuse.stream: datasets read from disk while a model trains on them (mm.data.stream).
--
--   local s = mm.data.stream("posts-*.tsv", { text = "text", label = "label",
--     features = { clip = "clip.npy" }, bad_rows = "skip" })
--   local train, valid, test = s:split{ by = "fold", test = {0}, valid = {1} }
--   model:fit(train, { valid = valid, epochs = 2 })
--
-- The rows are parsed, decoded and prepared by C threads ahead of training
-- (csrc/model/stream.h); memory stays bounded whatever the size of the files.
-- This file expands the paths and maps the options of mm.data.load onto the
-- C stream's.
local core = require "mmfuse.core"
local data = require "mmfuse.data"
local S = core.stream

local M = {}

local Stream = {}
Stream.__index = Stream
M.Stream = Stream

local function wrap(ud, classes, files)
  return setmetatable({ _c = ud, classes = classes, files = files }, Stream)
end

local function has_glob(p) return p:find("[%*%?%[]") ~= nil end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

-- the files a path, a glob or a list of them names, in order (a glob's matches sorted)
local function expand(paths)
  if type(paths) == "string" then paths = { paths } end
  if type(paths) ~= "table" or #paths == 0 then
    error("data.stream: expects a path, a glob or a list of paths", 3)
  end
  local out = {}
  for _, p in ipairs(paths) do
    if type(p) ~= "string" then error("data.stream: paths must be strings", 3) end
    if has_glob(p) then
      local got = S.glob(p)
      if #got == 0 then error(("data.stream: no file matches '%s'"):format(p), 3) end
      for _, f in ipairs(got) do out[#out + 1] = f end
    else
      -- a FIFO, a device or a folder is refused here, unopened (io/file.c)
      local ok, err = pcall(core.io.check, p)
      if not ok then error("data.stream: " .. tostring(err), 3) end
      out[#out + 1] = p
    end
  end
  return out
end

local function format_of(files, o)
  if o.format then return o.format end
  local fmt
  for _, f in ipairs(files) do
    local ext = f:match("%.([%w]+)$")
    ext = ext and ext:lower() or "tsv"
    local this = ext == "csv" and "csv" or (ext == "jsonl" or ext == "json" or ext == "ndjson") and "jsonl"
      or ext == "txt" and "fasttext" or "tsv"
    if fmt and this ~= fmt then error("data.stream: the files mix formats (" .. fmt .. ", " .. this .. ")", 4) end
    fmt = this
  end
  return fmt
end

-- the .npy sidecar mm.features writes lists the rows without an image (0-based for C)
local function missing_rows(npy)
  if core.io.stat(npy .. ".json") ~= "file" then return nil end
  local okr, text = pcall(core.io.read_file, npy .. ".json")
  if not okr then return nil end
  local okj, cj = pcall(require, "cjson")
  local okd, side = false, nil
  if okj then okd, side = pcall(cj.decode, text) end
  if not (okd and type(side) == "table" and side.format == "mmfuse-features" and type(side.missing) == "table") then
    return nil
  end
  local m = {}
  for i, r in ipairs(side.missing) do m[i] = r - 1 end
  return m
end

--- mm.data.stream(path | glob | {paths...}, spec) -> stream
-- spec: the options of mm.data.load (label, text, image, image_size, image_fit, features =
-- { name = "x.npy" | {"col", ...} }, image_features = "x.npy", classes, keep_unlabelled, format)
-- and: row = column of each row's .npy row (default: the row's place in the files, counted over
-- every row of the manifests), bad_rows = "error" (default) | "skip" (skipped and counted in
-- stream:stats()), queue = chunks read ahead (4), chunk = rows per chunk (2048, fewer for big
-- rows), shuffle_buffer = rows (32768), workers = threads building chunks (1).
-- Without classes, one pass over the label column finds them (sorted, as mm.data.load).
function M.open(paths, o)
  o = o or {}
  if type(o) ~= "table" then error("data.stream: options must be a table", 2) end
  local files = expand(paths)
  local fmt = format_of(files, o)
  if fmt == "jsonl" or fmt == "fasttext" then
    error(("data.stream: %s manifests are read by mm.data.load only; stream TSV or CSV files"):format(fmt), 2)
  end
  if not o.label then error("data.stream: option 'label' (the class column) is required", 2) end
  if o.bad_rows ~= nil and o.bad_rows ~= "error" and o.bad_rows ~= "skip" then
    error("data.stream: bad_rows must be \"error\" or \"skip\"", 2)
  end
  local base = dirname(files[1])
  local function rel(p) return p:sub(1, 1) == "/" and p or base .. "/" .. p end
  local feats = {}
  if o.image_features then
    local p = rel(o.image_features)
    feats[#feats + 1] = { name = "image", npy = p, missing = missing_rows(p) }
  end
  if o.features then
    if type(o.features) ~= "table" then error("data.stream: features must be a table", 2) end
    local names = {}
    for k in pairs(o.features) do names[#names + 1] = k end
    table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, name in ipairs(names) do
      local spec = o.features[name]
      if type(name) ~= "string" then error("data.stream: features must be { name = .npy path or columns }", 2) end
      if type(spec) == "string" then
        feats[#feats + 1] = { name = name, npy = rel(spec) }
      elseif type(spec) == "table" then
        feats[#feats + 1] = { name = name, cols = spec }
      else
        error(("data.stream: features.%s must be a .npy path or a list of columns"):format(name), 2)
      end
    end
  end
  if o.classes ~= nil and type(o.classes) ~= "table" then error("data.stream: classes must be a list", 2) end
  local ok, ud = pcall(S.open, {
    paths = files, format = fmt, label = o.label, text = o.text or nil, image = o.image or nil, row = o.row,
    image_size = o.image_size, image_fit = o.image_fit, features = feats, classes = o.classes,
    keep_unlabelled = o.keep_unlabelled, skip_bad = o.bad_rows == "skip", chunk = o.chunk, queue = o.queue,
    shuffle_buffer = o.shuffle_buffer, workers = o.workers,
  })
  if not ok then error(tostring(ud), 2) end
  return wrap(ud, S.info(ud).classes, files)
end

--- Modalities: a list of { name, kind = "text"|"image"|"features", dim/size }.
function Stream:modalities() return S.info(self._c).modalities end

--- The counts of the last epoch read: rows, chunks, bad (skipped), unlabelled, other
-- (rows of other split parts), wait (seconds the consumer waited), first_bad (its message).
function Stream:stats() return S.stats(self._c) end

--- Three streams (train, valid, test), computed while reading:
--   s:split{ by = "fold", test = {0}, valid = {1} }       (by a column's value, as ds:split)
--   s:split{ hash = "id", ratios = {0.8, 0.1, 0.1} }      (by a hash of an id column: stable)
function Stream:split(o)
  if type(o) ~= "table" then error("split: expects an option table", 2) end
  local function strs(v)
    if v == nil then return nil end
    if type(v) ~= "table" then v = { v } end
    local out = {}
    for i, x in ipairs(v) do out[i] = tostring(x) end
    return out
  end
  local ok, a, b, c = pcall(S.split, self._c, { by = o.by, hash = o.hash, test = strs(o.test), valid = strs(o.valid),
    ratios = o.ratios })
  if not ok then error(tostring(a), 2) end
  return wrap(a, self.classes, self.files), wrap(b, self.classes, self.files), wrap(c, self.classes, self.files)
end

--- A copy with the named modalities missing on every row.
function Stream:drop(names)
  if type(names) == "string" then names = { names } end
  if type(names) ~= "table" then error("drop: expects a modality name or a list of names", 2) end
  local ok, ud = pcall(S.drop, self._c, names)
  if not ok then error(tostring(ud), 2) end
  return wrap(ud, self.classes, self.files)
end

--- The part of rank (1-based) of ranks: rows k, k + ranks, ... (or whole files with by_files).
function Stream:part(rank, ranks, by_files)
  if math.type(rank) ~= "integer" or math.type(ranks) ~= "integer" then
    error("part: rank and ranks must be integers", 2)
  end
  local ok, ud = pcall(S.part, self._c, rank - 1, ranks, by_files and true or false)
  if not ok then error(tostring(ud), 2) end
  return wrap(ud, self.classes, self.files)
end

--- One epoch's rows in memory, as an mm.data dataset (for small streams):
-- s:load() in file order, s:load{ shuffle = true, seed = 1 } in a seeded stream order.
function Stream:load(o)
  o = o or {}
  local ok, ud = pcall(S.collect, self._c, o.shuffle and true or false, o.seed or 1)
  if not ok then error(tostring(ud), 2) end
  return setmetatable({ _c = ud, classes = self.classes, columns = {} }, data.Dataset)
end

function Stream.__tostring(self)
  local parts = {}
  for _, m in ipairs(self:modalities()) do
    parts[#parts + 1] = m.name .. " " .. m.kind .. (m.dim and ("[" .. m.dim .. "]") or m.size and ("[" .. m.size .. "px]") or "")
  end
  return ("mmfuse stream: %d file%s, %d classes\n  modalities: %s"):format(#self.files, #self.files == 1 and "" or "s",
    #self.classes, table.concat(parts, "; "))
end

return M
