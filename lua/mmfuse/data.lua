--- mmfuse.data: datasets of posts with K modalities (text, image, named feature vectors).
--
--   local ds = mm.data.load("manifest.tsv", { text = "caption", image = "image", label = "group" })
--   local train, valid, test = ds:split{ by = "fold", test = {0}, valid = {1} }
--   local textonly = test:drop("image")
--
-- The rows live in one C object (core.data); this file reads files, maps
-- labels to classes and keeps the other columns (for splits) as Lua arrays.
local core = require "mmfuse.core"
local C = core.data

local data = {}

local Dataset = {}
Dataset.__index = Dataset
data.Dataset = Dataset

-- images: { name =, list = {path | bytes | false}, bytes =, fit = } when the rows came from
-- image files (mm.features runs backbones on them); nil otherwise
local function wrap(ud, classes, columns, images)
  return setmetatable({ _c = ud, classes = classes, columns = columns or {}, images = images }, Dataset)
end

function Dataset.__len(self) return C.n(self._c) end

--- Modalities: a list of { name, kind = "text"|"image"|"features", present = rows, dim/size }.
function Dataset:modalities() return C.info(self._c).modalities end

--- Labels as class indices (1-based; 0 = unlabelled).
function Dataset:labels() return C.labels(self._c) end

--- Presence mask of one modality (array of booleans).
function Dataset:mask(name) return C.mask(self._c, name) end

function Dataset.__tostring(self)
  local info = C.info(self._c)
  local parts = {}
  for _, m in ipairs(info.modalities) do
    local extra = m.dim and ("[" .. m.dim .. "]") or m.size and ("[" .. m.size .. "px]") or ""
    parts[#parts + 1] = ("%s %s%s %d/%d (%.0f%%)"):format(m.name, m.kind, extra, m.present, info.n,
      info.n > 0 and 100 * m.present / info.n or 0)
  end
  local counts = {}
  for _, y in ipairs(C.labels(self._c)) do
    if y > 0 then counts[y] = (counts[y] or 0) + 1 end
  end
  local cl = {}
  for i, name in ipairs(self.classes) do
    if i > 8 then cl[#cl + 1] = "..." break end
    cl[#cl + 1] = ("%s:%d"):format(name, counts[i] or 0)
  end
  return ("mmfuse dataset: %d rows, %d classes (%s)\n  modalities: %s"):format(info.n, #self.classes,
    table.concat(cl, " "), #parts > 0 and table.concat(parts, "; ") or "none")
end

--- Rows idx (array of 1-based indices) as a new dataset.
function Dataset:subset(idx)
  local cols = {}
  for name, col in pairs(self.columns) do
    local c = {}
    for i, r in ipairs(idx) do c[i] = col[r] end
    cols[name] = c
  end
  local images
  if self.images then
    images = { name = self.images.name, bytes = self.images.bytes, fit = self.images.fit, list = {} }
    for i, r in ipairs(idx) do images.list[i] = self.images.list[r] or false end
  end
  return wrap(C.subset(self._c, idx), self.classes, cols, images)
end

--- Copy with the named modalities (a name or a list) missing on every row.
function Dataset:drop(names)
  if type(names) == "string" then names = { names } end
  if type(names) ~= "table" then error("drop: expects a modality name or a list of names", 2) end
  return wrap(C.drop(self._c, names), self.classes, self.columns, self.images)
end

-- a small deterministic generator (splits must not depend on Lua's global RNG)
local function lcg(seed)
  local s = (math.tointeger(seed) or 1) % 2147483647
  if s <= 0 then s = s + 2147483646 end
  return function(n) -- uniform integer in 1..n
    s = (s * 48271) % 2147483647
    return s % n + 1
  end
end

local function set_of(vals)
  local s = {}
  if type(vals) ~= "table" then vals = { vals } end
  for _, v in ipairs(vals) do s[tostring(v)] = true end
  return s
end

-- FNV-1a 32 of a string: the fold of a row in hashed splits (stable across machines and
-- row orders: it depends on the row's id alone)
local function fnv1a32(s)
  local h = 0x811c9dc5
  for i = 1, #s do h = ((h ~ s:byte(i)) * 0x01000193) & 0xffffffff end
  return h
end
data.fnv1a32 = fnv1a32

--- Split into train, valid, test.
--   ds:split{ by = "fold", test = {0}, valid = {1} }  (the rest is train)
--   ds:split{ by = "guid", hash = 10, test = {0}, valid = {1} }
--       (the fold of a row is FNV-1a 32 of its guid mod 10: a split that depends on the ids alone)
--   ds:split{ ratios = {0.8, 0.1, 0.1}, seed = 1 }    (stratified by label)
function Dataset:split(o)
  o = o or {}
  local n = #self
  local parts = { {}, {}, {} }
  if o.by then
    local col = self.columns[o.by]
    if not col then error(("split: no column '%s' (have: %s)"):format(o.by, self:column_names()), 2) end
    if o.hash ~= nil and (math.type(o.hash) ~= "integer" or o.hash < 2) then
      error("split: hash must be an integer >= 2 (the number of folds)", 2)
    end
    local test, valid = set_of(o.test or {}), set_of(o.valid or {})
    for i = 1, n do
      local v = tostring(col[i])
      if o.hash then v = tostring(fnv1a32(v) % o.hash) end
      local p = test[v] and 3 or valid[v] and 2 or 1
      parts[p][#parts[p] + 1] = i
    end
  else
    local r = o.ratios or { 0.8, 0.1, 0.1 }
    if #r < 2 or #r > 3 then error("split: ratios must be {train, valid[, test]}", 2) end
    local sum = 0
    for _, x in ipairs(r) do
      if type(x) ~= "number" or x < 0 then error("split: ratios must be numbers >= 0", 2) end
      sum = sum + x
    end
    if sum <= 0 then error("split: ratios sum to 0", 2) end
    local rand = lcg(o.seed or 1)
    local byclass, order = {}, {}
    for i, y in ipairs(C.labels(self._c)) do
      if not byclass[y] then byclass[y] = {}; order[#order + 1] = y end
      table.insert(byclass[y], i)
    end
    table.sort(order)
    for _, y in ipairs(order) do
      local rows = byclass[y]
      for i = #rows, 2, -1 do
        local j = rand(i)
        rows[i], rows[j] = rows[j], rows[i]
      end
      local m = #rows
      local ntr = math.floor(m * r[1] / sum + 0.5)
      local nva = math.floor(m * r[2] / sum + 0.5)
      if #r == 2 then nva = m - ntr end
      if ntr + nva > m then nva = m - ntr end
      for k, row in ipairs(rows) do
        local p = k <= ntr and 1 or k <= ntr + nva and 2 or 3
        table.insert(parts[p], row)
      end
    end
    for _, p in ipairs(parts) do table.sort(p) end
  end
  return self:subset(parts[1]), self:subset(parts[2]), self:subset(parts[3])
end

function Dataset:column_names()
  local t = {}
  for k in pairs(self.columns) do t[#t + 1] = k end
  table.sort(t)
  return table.concat(t, ", ")
end

--- Text of one row of a text modality.
function Dataset:text(name, row) return C.text(self._c, name, row) end

-- ---------------------------------------------------------------------------
-- building a dataset from Lua tables

local function label_index(labels, classes, where)
  local idx, names = {}, classes
  if not names then
    local seen = {}
    names = {}
    for _, l in ipairs(labels) do
      if l ~= false and l ~= "" and not seen[tostring(l)] then
        seen[tostring(l)] = true
        names[#names + 1] = tostring(l)
      end
    end
    table.sort(names)
  end
  local pos = {}
  for i, nm in ipairs(names) do
    if type(nm) ~= "string" then error(("%s: class names must be strings (entry %d)"):format(where, i), 3) end
    if pos[nm] then error(("%s: class '%s' listed twice"):format(where, nm), 3) end
    pos[nm] = i
  end
  for i, l in ipairs(labels) do
    if l == false or l == "" then
      idx[i] = 0
    elseif math.type(l) == "integer" and not pos[tostring(l)] then
      if l < 1 or l > #names then
        error(("%s: row %d: label %d is outside 1..%d"):format(where, i, l, #names), 3)
      end
      idx[i] = l
    else
      local k = pos[tostring(l)]
      if not k then
        error(("%s: row %d: unknown label '%s' (classes: %s)"):format(where, i, tostring(l),
          table.concat(names, ", ")), 3)
      end
      idx[i] = k
    end
  end
  return idx, names
end

local function to_tensor(x, where)
  if type(x) == "table" and getmetatable(x) == nil then return core.tensor(x) end
  if type(x) == "string" then return core.io.load_npy(x) end
  return x
end

--- A dataset from Lua values.
--   mm.data.new{ labels = {"cat", "dog", ...} (or 1-based integers), classes = {...},
--                text = {strings}, image = {paths or false}, image_size = 32,
--                image_bytes = false, max_image_bytes = 0 (mm.image.max_bytes), features = { name = tensor [N, D] | {{...}, ...} | "x.npy" },
--                columns = { fold = {...} }, image_absent_on_error = false }
-- With image_absent_on_error a row whose picture cannot be had (missing, not a
-- regular file, too large, undecodable) is image-absent instead of an error;
-- the second return value lists those rows: { {row =, status =, message =}, ... }.
function data.new(t)
  if type(t) ~= "table" then error("data.new: expects a table", 2) end
  local where = t.where or "data.new"
  local labels = t.labels or {}
  local n = t.n or #labels
  if t.labels and #labels ~= n then error(("%s: %d labels for %d rows"):format(where, #labels, n), 2) end
  if not t.labels then for i = 1, n do labels[i] = false end end
  local idx, classes = label_index(labels, t.classes, where)
  local ud = C.new(n, #classes, idx)
  if t.text then
    if #t.text > n then error(("%s: %d texts for %d rows"):format(where, #t.text, n), 2) end
    C.add_text(ud, t.text_name or "text", t.text)
  end
  local images, image_failures
  if t.image then
    image_failures = C.add_image(ud, t.image_name or "image", t.image,
      { size = t.image_size or 32, bytes = t.image_bytes or false, fit = t.image_fit, where = where,
        max_bytes = t.max_image_bytes, absent_on_error = t.image_absent_on_error or false })
    images = { name = t.image_name or "image", bytes = t.image_bytes or false, fit = t.image_fit, list = {} }
    for i = 1, n do images.list[i] = t.image[i] or false end
    for _, f in ipairs(image_failures) do images.list[f.row] = false end
  end
  if t.features then
    local names = {}
    for name in pairs(t.features) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local f = t.features[name]
      local mask = t.feature_masks and t.feature_masks[name]
      local ten = to_tensor(f, where)
      C.add_dense(ud, name, ten, mask)
    end
  end
  return wrap(ud, classes, t.columns, images), image_failures
end

-- ---------------------------------------------------------------------------
-- manifest readers: each returns header (array of names) and rows (arrays of strings), lines

-- a regular file, whole (a FIFO or a device is refused unread: csrc/io/file.c)
local function read_all(path)
  local ok, s = pcall(core.io.read_file, path)
  if not ok then error(s, 3) end
  if s:sub(1, 3) == "\239\187\191" then s = s:sub(4) end -- UTF-8 BOM
  return s
end

local function split_lines(s)
  local lines = {}
  for line in (s .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

-- TSV and CSV (RFC 4180 quoting) are read by the C table reader (csrc/io/table.h), the one
-- mm.data.stream reads them with: header, rows (arrays of strings), the line of every row
local function read_tsv(path) return core.io.read_table(path, "tsv") end
local function read_csv(path) return core.io.read_table(path, "csv") end

local function read_jsonl(path)
  local ok, cjson = pcall(require, "cjson")
  if not ok then error("reading JSONL needs lua-cjson (Debian: lua-cjson)", 3) end
  local lines = split_lines(read_all(path))
  local recs, lnos, keys, seen = {}, {}, {}, {}
  for i, line in ipairs(lines) do
    if line:match("%S") then
      local okd, obj = pcall(cjson.decode, line)
      if not okd or type(obj) ~= "table" then
        error(("%s:%d: not a JSON object"):format(path, i), 3)
      end
      for k in pairs(obj) do
        if type(k) ~= "string" then error(("%s:%d: not a JSON object"):format(path, i), 3) end
        if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
      end
      recs[#recs + 1] = obj
      lnos[#lnos + 1] = i
    end
  end
  table.sort(keys)
  local rows = {}
  for r, obj in ipairs(recs) do
    local row = {}
    for c, k in ipairs(keys) do
      local v = obj[k]
      if v == nil or v == cjson.null then
        row[c] = ""
      elseif type(v) == "number" then
        row[c] = tostring(math.tointeger(v) or v)
      elseif type(v) == "string" or type(v) == "boolean" then
        row[c] = tostring(v)
      else
        error(("%s:%d: field '%s' must be a string or a number"):format(path, lnos[r], k), 3)
      end
    end
    rows[r] = row
  end
  return keys, rows, lnos
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function format_of(path, o)
  if o.format then return o.format end
  local ext = path:lower():match("%.([%w]+)$")
  if ext == "csv" then return "csv" end
  if ext == "jsonl" or ext == "ndjson" or ext == "json" then return "jsonl" end
  if ext == "txt" or ext == "ft" then return "fasttext" end
  return "tsv"
end

--- fastText supervised format: "__label__a [__label__b] words ..." per line
-- (the first label is the row's label).
function data.load_fasttext(path, o)
  o = o or {}
  local lines = split_lines(read_all(path))
  local labels, texts = {}, {}
  for i, line in ipairs(lines) do
    if line:match("%S") then
      local lab
      local rest = line:gsub("__label__(%S+)%s*", function(l)
        lab = lab or l
        return ""
      end)
      if not lab then error(("%s:%d: no __label__ on the line"):format(path, i), 2) end
      labels[#labels + 1] = lab
      texts[#texts + 1] = rest
    end
  end
  return data.new{ labels = labels, classes = o.classes, text = texts, where = path }
end

--- The raw table of a manifest: header (array of names), rows (arrays of strings), line numbers.
function data.read_table(path, o)
  if type(path) ~= "string" then error("data.read_table: expects a path", 2) end
  local fmt = format_of(path, o or {})
  local reader = fmt == "tsv" and read_tsv or fmt == "csv" and read_csv or fmt == "jsonl" and read_jsonl
  if not reader then error(("%s: format '%s' has no columns (tsv, csv, jsonl)"):format(path, tostring(fmt)), 2) end
  return reader(path)
end

--- A folder of posts (ID.txt + ID.jpg|png + a label file): see lua/mmfuse/posts.lua.
function data.import_posts(dir, o) return require("mmfuse.posts").import(dir, o) end

--- Load a manifest (TSV, CSV or JSONL; by extension or o.format).
--   o.label    column of the class (required)
--   o.text     column of the text (optional)
--   o.image    column of image paths, relative to the manifest (optional)
--   o.image_size (32), o.image_fit ("stretch"|"crop")
--   o.max_image_bytes  an image file larger than this is refused unread (default
--                      mm.image.max_bytes, 32 MiB); a path that is not a regular file
--                      (a FIFO, a device, a folder) always is
--   o.image_features  .npy with one feature row per manifest row: the image
--                     modality as precomputed features (rows listed as "missing"
--                     in its mm.features sidecar <file>.json are image-absent)
--   o.features { name = "x.npy" | {"col1", "col2", ...} }  further modalities
--   o.classes  fixed class order (default: sorted labels)
--   o.keep_unlabelled  keep rows with an empty label (label 0) instead of skipping them
function data.load(path, o)
  if type(path) ~= "string" then error("data.load: expects a path", 2) end
  o = o or {}
  local fmt = format_of(path, o)
  if fmt == "fasttext" then return data.load_fasttext(path, o) end
  local header, rows, lnos
  if fmt == "tsv" then
    header, rows, lnos = read_tsv(path)
  elseif fmt == "csv" then
    header, rows, lnos = read_csv(path)
  elseif fmt == "jsonl" then
    header, rows, lnos = read_jsonl(path)
  else
    error(("data.load: unknown format '%s' (tsv, csv, jsonl, fasttext)"):format(tostring(fmt)), 2)
  end
  local col = {}
  for i, h in ipairs(header) do col[h] = i end
  local function need(key)
    local name = o[key]
    if name == nil or name == false then return nil end
    if type(name) ~= "string" then error(("data.load: option '%s' must be a column name"):format(key), 3) end
    if not col[name] then
      error(("%s: no column '%s' (columns: %s)"):format(path, name, table.concat(header, ", ")), 3)
    end
    return col[name]
  end
  if not o.label then error("data.load: option 'label' (the class column) is required", 2) end
  local lc, tc, ic = need("label"), need("text"), need("image")
  local keep = {}
  local labels, texts, images = {}, {}, {}
  local base = dirname(path)
  for k, r in ipairs(rows) do
    local lab = r[lc]
    if lab ~= "" or o.keep_unlabelled then
      keep[#keep + 1] = k
      local i = #keep
      labels[i] = lab == "" and false or lab
      if tc then texts[i] = r[tc] end
      if ic then
        local p = r[ic]
        if p == "" then
          images[i] = false
        else
          if p:sub(1, 1) ~= "/" then p = base .. "/" .. p end
          images[i] = p
        end
      end
    end
  end
  local columns = {}
  for c, h in ipairs(header) do
    local vals = {}
    for i, k in ipairs(keep) do vals[i] = rows[k][c] end
    columns[h] = vals
  end
  -- label errors should name the manifest line
  local where = path
  local okl, err = pcall(label_index, labels, o.classes, "?")
  if not okl then
    local row = tostring(err):match("row (%d+)")
    local line = row and lnos[keep[tonumber(row)]]
    error(("%s%s: %s"):format(path, line and (":" .. line) or "", tostring(err):gsub("^.-%?: ", "")), 2)
  end
  local feats
  local function rel(p) return p:sub(1, 1) == "/" and p or base .. "/" .. p end
  local function npy_rows(p, what)
    local t = core.io.load_npy(rel(p))
    local sh = t:shape()
    if #sh ~= 2 or sh[1] ~= #rows then
      error(("%s: %s must hold %d rows (one per manifest row) as a 2-D array, got %s"):format(rel(p), what, #rows,
        table.concat(sh, "x")), 3)
    end
    if #keep == #rows then return t end
    local tbl = t:totable()
    local sel = {}
    for i, k in ipairs(keep) do sel[i] = tbl[k] end
    return core.tensor(sel)
  end
  local fmasks
  if o.image_features then
    feats = feats or {}
    feats.image = npy_rows(o.image_features, "image features")
    -- the sidecar mm.features writes next to its .npy lists the rows without an image
    local oks, sf = pcall(core.io.read_file, rel(o.image_features) .. ".json")
    if oks then
      local okj, cj = pcall(require, "cjson")
      local okd, side = false, nil
      if okj then okd, side = pcall(cj.decode, sf) end
      if okd and type(side) == "table" and side.format == "mmfuse-features" and type(side.missing) == "table" then
        local gone = {}
        for _, r in ipairs(side.missing) do gone[r] = true end
        local m = {}
        for i, k in ipairs(keep) do m[i] = not gone[k] end
        fmasks = { image = m }
      end
    end
  end
  if o.features then
    feats = feats or {}
    for name, spec in pairs(o.features) do
      if type(spec) == "string" then
        feats[name] = npy_rows(spec, "features '" .. name .. "'")
      elseif type(spec) == "table" then
        local cols = {}
        for j, cn in ipairs(spec) do
          cols[j] = col[cn]
          if not cols[j] then error(("%s: no column '%s' (columns: %s)"):format(path, cn, table.concat(header, ", ")), 2) end
        end
        local m = {}
        for i, k in ipairs(keep) do
          local r = {}
          for j, c in ipairs(cols) do
            local v = tonumber(rows[k][c])
            if not v or v ~= v or v == math.huge or v == -math.huge then
              error(("%s:%d: column '%s' is not a finite number ('%s')"):format(path, lnos[k], spec[j], rows[k][c]), 2)
            end
            r[j] = v
          end
          m[i] = r
        end
        feats[name] = core.tensor(m)
      else
        error(("data.load: features.%s must be a .npy path or a list of columns"):format(name), 2)
      end
    end
  end
  local ok, ds = pcall(data.new, {
    labels = labels, classes = o.classes, text = tc and texts or nil, image = ic and images or nil,
    image_size = o.image_size, image_fit = o.image_fit, max_image_bytes = o.max_image_bytes,
    features = feats, feature_masks = fmasks,
    columns = columns, where = where,
    n = #keep,
  })
  if not ok then
    -- map "row N" of the kept rows to the manifest line
    local msg = tostring(ds)
    local row = msg:match("row (%d+)")
    if row and keep[tonumber(row)] and not msg:find(path, 1, true) then
      msg = ("%s:%d: %s"):format(path, lnos[keep[tonumber(row)]], msg)
    elseif not msg:find(path, 1, true) then
      msg = path .. ": " .. msg
    end
    error(msg, 2)
  end
  ds.source = path
  return ds
end

--- mm.data.stream(path | glob | {paths...}, spec): the rows read from disk while a model
-- trains on them (bigger than memory); the spec of mm.data.load plus the stream's own
-- options: see mmfuse/stream.lua.
function data.stream(paths, o) return require("mmfuse.stream").open(paths, o) end

return data
