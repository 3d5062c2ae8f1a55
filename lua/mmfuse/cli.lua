--- The `mmfuse` command line: train, eval, predict, experiment, info.
--
-- `bin/mmfuse` calls `cli.main(arg)` and exits with its result:
-- 0 success, 1 runtime error (bad file, failed training, ...), 2 usage error
-- (unknown option, missing argument, bad number). Errors go to stderr as
-- `mmfuse: <message>`; `--debug` adds the Lua traceback.
--
-- Everything here is plain Lua over the public API (`mm.data.load`,
-- `mm.model`, `model:fit`, `model:evaluate`, `model:predict`, `model:save`,
-- `mm.load`, `mmfuse.experiment`), so the command does nothing a script
-- cannot do.
--
-- Under `mpirun -np N` (N > 1) train, eval and predict run as one job
-- (mmfuse.dist): every process loads the manifest, train fits with
-- `dist = true` (each process a slice of every global batch of batch x N
-- rows), eval sums the processes' counts, a batch predict spreads the stdin
-- lines over the processes; rank 0 alone prints results and progress and
-- writes the model file.
-- @module mmfuse.cli

local M = {}

--- Exit codes.
-- @table exit
M.exit = {
  ok = 0,      -- success
  runtime = 1, -- runtime error: bad file, failed training, ...
  usage = 2,   -- usage error: unknown option, missing argument, bad value
}

local PROG = "mmfuse"

-- Errors are tables with a kind so that main can pick the exit code and keep
-- the message free of file:line prefixes; anything else is a runtime error.
local Usage = { __tostring = function(e) return e.msg end }
local Fail = { __tostring = function(e) return e.msg end }

local function usage_error(cmd, fmt, ...)
  error(setmetatable({ cmd = cmd, msg = fmt:format(...) }, Usage), 0)
end

local function fail(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, Fail), 0)
end

M.usage_error, M.fail = usage_error, fail

-- ========================================================================
-- Option parsing
-- ========================================================================

local function option_names(spec)
  local names = { "--" .. spec.name }
  if spec.short then names[#names + 1] = "-" .. spec.short end
  return names
end

local function convert(cmd, spec, raw, flagname)
  local t = spec.type or "string"
  if t == "string" then
    if spec.choices then
      for _, c in ipairs(spec.choices) do
        if c == raw then return raw end
      end
      usage_error(cmd, "%s must be one of %s (got '%s')", flagname, table.concat(spec.choices, ", "), raw)
    end
    return raw
  elseif t == "int" then
    local n = math.tointeger(tonumber(raw))
    if not n then usage_error(cmd, "%s needs an integer (got '%s')", flagname, raw) end
    if spec.min and n < spec.min then usage_error(cmd, "%s must be >= %d (got %d)", flagname, spec.min, n) end
    return n
  elseif t == "number" then
    local n = tonumber(raw)
    if not n or n ~= n or n == math.huge or n == -math.huge then
      usage_error(cmd, "%s needs a number (got '%s')", flagname, raw)
    end
    if spec.positive and n <= 0 then usage_error(cmd, "%s must be > 0 (got %s)", flagname, raw) end
    if spec.min and n < spec.min then usage_error(cmd, "%s must be >= %s (got %s)", flagname, spec.min, raw) end
    if spec.max and n > spec.max then usage_error(cmd, "%s must be <= %s (got %s)", flagname, spec.max, raw) end
    return n
  elseif t == "list" then
    local out = {}
    for item in raw:gmatch("[^,]+") do
      item = item:match("^%s*(.-)%s*$")
      if spec.choices then convert(cmd, { type = "string", choices = spec.choices }, item, flagname) end
      out[#out + 1] = item
    end
    if #out == 0 then usage_error(cmd, "%s needs a value", flagname) end
    return out
  end
  error("cli: unknown option type " .. tostring(t))
end

--- Parse an argument vector against a command description.
-- @tparam table cmd a command: `name`, `options` (list of `{name=, type=, short=,
--  default=, choices=, min=, required=}`; type is "string", "int", "number",
--  "flag" or "list"), `args` (names of the positional arguments), `rest`
--  (true when extra positionals are allowed)
-- @tparam table argv strings (without the command name)
-- @treturn table options by name (flags are booleans) with the positionals in
--  `opts.args`
function M.parse(cmd, argv)
  local byname = {}
  for _, spec in ipairs(cmd.options or {}) do
    for _, n in ipairs(option_names(spec)) do byname[n] = spec end
  end
  local opts, pos = {}, {}
  local i, only_pos = 1, false
  while i <= #argv do
    local a = argv[i]
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_pos = true
    else
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local spec = byname[name]
      if not spec then
        usage_error(cmd.name, "unknown option %s", name)
      end
      if spec.type == "flag" then
        if value then usage_error(cmd.name, "%s takes no value", name) end
        opts[spec.name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error(cmd.name, "%s needs a value", name) end
        end
        local v = convert(cmd.name, spec, value, "--" .. spec.name)
        if spec.type == "list" and opts[spec.name] then
          for _, x in ipairs(v) do table.insert(opts[spec.name], x) end
        else
          opts[spec.name] = v
        end
      end
    end
    i = i + 1
  end
  if opts.help then
    opts.args = pos
    return opts
  end
  local want = cmd.args or {}
  if #pos < #want then
    usage_error(cmd.name, "missing %s", want[#pos + 1])
  end
  if #pos > #want and not cmd.rest then
    usage_error(cmd.name, "unexpected argument '%s'", pos[#want + 1])
  end
  for _, spec in ipairs(cmd.options or {}) do
    if opts[spec.name] == nil then
      if spec.required then usage_error(cmd.name, "--%s is required", spec.name) end
      opts[spec.name] = spec.default
    end
  end
  opts.args = pos
  return opts
end

-- ========================================================================
-- Small helpers
-- ========================================================================

-- Strip the "file.lua:12: " that error() puts in front of messages, and a
-- C function's "bad argument #1 to 'x'" stays as it is.
local function clean_message(msg)
  msg = tostring(msg)
  local prev
  repeat
    prev = msg
    msg = msg:gsub("^[^%s:]+%.lua:%d+: ", ""):gsub("^%[string [^%]]*%]:%d+: ", "")
      :gsub("([%s(])[^%s:()]+%.lua:%d+: ", "%1")
  until msg == prev
  return msg
end
M.clean_message = clean_message

-- the MPI job (mmfuse.dist) of a process that mpirun started with others, else nil
local function job()
  local ranks = require "mmfuse.ranks"
  if ranks.launched_size() <= 1 then return nil end
  return ranks.module(PROG)
end

-- where the output of a rank other than 0 goes
local SINK = { write = function(self) return self end, flush = function() end }

-- The files the commands read must be regular files: a FIFO or a device
-- (a junk path) is refused without being opened (mmfuse.io, csrc/io/file.c).
local CORE_IO = require("mmfuse.core").io

-- "<path>: <why>" of a core refusal -> "<why>"
local function why_not(path, msg)
  msg = clean_message(msg)
  if msg:sub(1, #path + 2) == path .. ": " then msg = msg:sub(#path + 3) end
  return (msg:gsub("^cannot open: ", ""))
end

-- The folder of feature caches: --cache, config.data.cache (plan.cache), else $XDG_CACHE_HOME/mmfuse or
-- ~/.cache/mmfuse (outside any checkout: features of a dataset are derived from it); created
-- when missing
local function cache_dir(plan)
  local dir = plan.cache
  if not dir then
    local base = os.getenv("XDG_CACHE_HOME")
    if not base or base == "" then
      local home = os.getenv("HOME")
      if not home or home == "" then fail("no feature cache folder: pass --cache DIR") end
      base = home .. "/.cache"
    end
    dir = base .. "/mmfuse"
  end
  local ok, why = os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  if not ok then fail("cannot create the feature cache folder '%s' (%s)", dir, tostring(why)) end
  return dir
end

local function need_file(path, what)
  local ok, err = pcall(CORE_IO.check, path)
  if not ok then fail("cannot open %s '%s': %s", what, path, why_not(path, err)) end
end

local mm_cache
local function mm()
  if not mm_cache then
    local ok, mod = pcall(require, "mmfuse")
    if not ok then fail("cannot load the mmfuse module: %s", clean_message(mod)) end
    mm_cache = mod
  end
  return mm_cache
end

local function fmt_num(x, digits)
  if type(x) ~= "number" then return tostring(x == nil and "-" or x) end
  if math.type(x) == "integer" then return tostring(x) end
  return string.format("%." .. (digits or 4) .. "f", x)
end

-- Right-pad / left-pad for plain-text tables (UTF-8 aware enough for labels).
local function width(s)
  return utf8.len(s) or #s
end

local function pad(s, w, right)
  s = tostring(s)
  local fill = string.rep(" ", math.max(0, w - width(s)))
  return right and fill .. s or s .. fill
end

--- Render rows as an aligned plain-text table.
-- @tparam table header column titles
-- @tparam table rows list of lists of cells (numbers are right-aligned)
-- @treturn string
function M.table_text(header, rows)
  local w, numeric = {}, {}
  for c, h in ipairs(header) do w[c] = width(h) end
  for _, r in ipairs(rows) do
    for c = 1, #header do
      local cell = r[c]
      if type(cell) == "number" then numeric[c] = true end
      w[c] = math.max(w[c], width(type(cell) == "number" and fmt_num(cell, 3) or tostring(cell == nil and "" or cell)))
    end
  end
  local lines = {}
  local function line(cells, is_header)
    local parts = {}
    for c = 1, #header do
      local cell = cells[c]
      local s = type(cell) == "number" and fmt_num(cell, 3) or tostring(cell == nil and "" or cell)
      parts[c] = pad(s, w[c], numeric[c] and c > 1)
    end
    lines[#lines + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  line(header, true)
  for _, r in ipairs(rows) do line(r) end
  return table.concat(lines, "\n") .. "\n"
end

-- ========================================================================
-- Manifest columns and splits
-- ========================================================================

local COLUMN_GUESS = {
  text = { "text", "caption", "title" },
  image = { "image", "image_path", "path" },
  label = { "label", "group", "class" },
}

-- The column names of a TSV/CSV/JSONL manifest (nil when it cannot tell).
local function manifest_columns(path)
  local ok, kind = pcall(CORE_IO.stat, path)
  if not ok or kind ~= "file" then return nil end
  local f = require("mmfuse.io").open(path) -- a regular file only (csrc/io/file.c)
  if not f then return nil end
  local first = f:read("l")
  f:close()
  if not first then return nil end
  first = first:gsub("^\239\187\191", ""):gsub("\r$", "")
  if first:match("^%s*{") then
    local ok, cjson = pcall(require, "cjson.safe")
    if not ok then return nil end
    local obj = cjson.decode(first)
    if type(obj) ~= "table" then return nil end
    local cols = {}
    for k in pairs(obj) do cols[#cols + 1] = k end
    table.sort(cols)
    return cols
  end
  local sep = path:lower():match("%.csv$") and "," or "\t"
  local cols = {}
  for c in (first .. sep):gmatch("(.-)" .. (sep == "\t" and "\t" or ",")) do
    cols[#cols + 1] = c:gsub('^"(.*)"$', "%1")
  end
  return cols
end

--- Resolve the column mapping for a manifest.
-- Explicit `--text-col` etc. win ("none" turns a modality off); otherwise the
-- first present of text/caption/title, image/image_path/path, label/group/class.
-- @tparam string path manifest
-- @tparam table opts parsed options (text-col, image-col, label-col)
-- @tparam[opt] boolean need_label error when no label column is found
-- @treturn table `{text=, image=, label=}` for `mm.data.load`
function M.columns(path, opts, need_label)
  local cols = manifest_columns(path) or {}
  local have = {}
  for _, c in ipairs(cols) do have[c] = true end
  local out = {}
  for _, key in ipairs({ "text", "image", "label" }) do
    local given = opts[key .. "-col"]
    if given == "none" or given == "" then
      out[key] = nil
    elseif given then
      if #cols > 0 and not have[given] then
        fail("%s: no column '%s' (columns: %s)", path, given, table.concat(cols, ", "))
      end
      out[key] = given
    else
      for _, cand in ipairs(COLUMN_GUESS[key]) do
        if have[cand] then out[key] = cand break end
      end
    end
  end
  if need_label and not out.label then
    fail("%s: no label column found (columns: %s); pass --label-col", path, table.concat(cols, ", "))
  end
  if not out.text and not out.image then
    fail("%s: neither a text nor an image column found (columns: %s); pass --text-col or --image-col",
      path, table.concat(cols, ", "))
  end
  return out
end

--- Parse a split description: "none", "COLUMN:TEST[:VALID]" where TEST and
-- VALID are comma-separated values of that column (e.g. "fold:0:1"), or
-- "ratio:TEST[:VALID]" with fractions (e.g. "ratio:0.2:0.1", stratified, seeded).
-- @tparam string s the description
-- @treturn table|nil the argument for `ds:split` (nil for "none")
function M.parse_split(s)
  if s == nil or s == "none" then return nil end
  local parts = {}
  for p in (s .. ":"):gmatch("(.-):") do parts[#parts + 1] = p end
  if #parts < 2 or #parts > 3 or parts[1] == "" or parts[2] == "" then
    usage_error(nil, "--split must be none, COLUMN:TEST[:VALID], COLUMN%%K:TEST[:VALID] or ratio:TEST[:VALID] (got '%s')", s)
  end
  local function values(p)
    local out = {}
    for v in p:gmatch("[^,]+") do out[#out + 1] = math.tointeger(tonumber(v)) or v end
    return out
  end
  if parts[1] == "ratio" then
    local test, valid = tonumber(parts[2]), tonumber(parts[3] or "0")
    if not test or not valid or test < 0 or valid < 0 or test + valid >= 1 then
      usage_error(nil, "--split ratio:TEST[:VALID] needs fractions with TEST + VALID < 1 (got '%s')", s)
    end
    return { ratios = { test = test, valid = valid } }
  end
  -- COLUMN%K: the fold of a row is FNV-1a 32 of its COLUMN value mod K (data.lua, Dataset:split)
  local by, k = parts[1]:match("^(.+)%%(%d+)$")
  local spec = { by = by or parts[1], hash = k and math.tointeger(tonumber(k)), test = values(parts[2]) }
  if spec.hash and spec.hash < 2 then usage_error(nil, "--split COLUMN%%K needs K >= 2 folds (got '%s')", s) end
  if parts[3] and parts[3] ~= "" then spec.valid = values(parts[3]) end
  return spec
end

-- Split a dataset; returns train, valid, test (valid/test may be nil).
local function split_dataset(ds, spec, seed)
  if not spec then return ds, nil, nil end
  if type(ds.split) ~= "function" then fail("this build's datasets have no split()") end
  local arg
  if spec.ratios then
    local r = spec.ratios
    arg = { ratios = { 1 - r.test - r.valid, r.valid, r.test }, seed = seed }
  else
    arg = { by = spec.by, hash = spec.hash, test = spec.test, valid = spec.valid or {} }
  end
  local train, valid, test = ds:split(arg)
  -- no validation part asked for: none (a stream's empty part is only known once read)
  if (spec.ratios and spec.ratios.valid == 0) or (not spec.ratios and #(spec.valid or {}) == 0) then valid = nil end
  return train, valid, test
end

-- the load options of the manifest whose columns are guessed from `first`: cols (text, image,
-- label) and extra (mm.data.load options: classes, image_size, image_features)
local function load_options(first, opts, need_label, extra)
  local cols = M.columns(first, opts, need_label)
  local o = {}
  for k, v in pairs(cols) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  if o.image_features then
    o.image = nil
    cols.image = nil
  end
  return o, cols
end

local function load_data(path, opts, need_label, extra)
  need_file(path, "manifest")
  local o, cols = load_options(path, opts, need_label, extra)
  return mm().data.load(path, o), cols
end

-- --stream: MANIFEST (a file, or a quoted glob of shard files) as a stream (mm.data.stream):
-- read in bounded chunks while training or evaluating, never held whole; the columns are
-- guessed from the first file
local function load_stream(pattern, opts, need_label, extra)
  local ok, files = pcall(require("mmfuse.core").stream.glob, pattern)
  if not ok then fail("%s: %s", pattern, clean_message(files)) end
  if #files == 0 then fail("no manifest matches '%s'", pattern) end
  for _, f in ipairs(files) do need_file(f, "manifest") end
  local o, cols = load_options(files[1], opts, need_label, extra)
  local ok2, s = pcall(mm().data.stream, files, o)
  if not ok2 then fail("%s", clean_message(s)) end
  return s, cols
end

-- The configuration of a (built) model, as plain data.
local function model_config(model) return model:config() end

local function load_model(path)
  need_file(path, "model file")
  return mm().load(path)
end

local function modality_list(drop)
  if not drop then return nil end
  if #drop == 1 then return drop[1] end
  return drop
end

-- ========================================================================
-- Result printing
-- ========================================================================

local function ds_size(ds)
  if ds == nil then return 0 end
  local ok, n = pcall(function() return #ds end)
  if ok and type(n) == "number" then return n end
  return ds.n or ds.size or 0
end

-- rows of a dataset; nil for a stream (not known before it is read)
local function rows_of(ds)
  if getmetatable(ds) == require("mmfuse.stream").Stream then return nil end
  return ds_size(ds)
end

local function classes_of(x)
  local c = x and x.classes
  if type(c) == "table" then return c end
  return {}
end

-- A metrics result as text: headline numbers, a per-class table, and the
-- confusion matrix when asked.
function M.format_result(r, classes, show_confusion)
  local out = {}
  local function kv(k, v) out[#out + 1] = pad(k, 10) .. "  " .. fmt_num(v) end
  kv("accuracy", r.accuracy)
  kv("macro-F1", r.macro_f1)
  if r.log_loss ~= nil then kv("log-loss", r.log_loss) end
  if r.n ~= nil then kv("samples", r.n) end
  out[#out + 1] = ""
  local pc = r.per_class or r.classes_metrics
  local names = r.classes or classes
  if type(pc) == "table" and #pc > 0 then
    local rows = {}
    for i, c in ipairs(pc) do
      rows[#rows + 1] = { c.name or c.class or names[i] or tostring(i), c.precision or 0, c.recall or 0,
        c.f1 or 0, c.support or 0 }
    end
    out[#out + 1] = M.table_text({ "class", "precision", "recall", "F1", "support" }, rows)
  elseif type(r.precision) == "table" then
    local rows = {}
    for i = 1, #r.precision do
      rows[#rows + 1] = { names[i] or tostring(i), r.precision[i] or 0, (r.recall or {})[i] or 0,
        (r.f1 or {})[i] or 0, (r.support or {})[i] or 0 }
    end
    out[#out + 1] = M.table_text({ "class", "precision", "recall", "F1", "support" }, rows)
  end
  local cm = r.confusion
  if show_confusion and type(cm) == "table" and #cm > 0 then
    local header = { "true \\ predicted" }
    for i = 1, #cm do header[#header + 1] = tostring(i) end
    local rows = {}
    for i, row in ipairs(cm) do
      local cells = { i .. " " .. (names[i] or "") }
      for j = 1, #cm do cells[#cells + 1] = math.tointeger(row[j]) or row[j] end
      rows[#rows + 1] = cells
    end
    out[#out + 1] = "confusion matrix (rows: true class, columns: predicted class)\n"
      .. M.table_text(header, rows)
  end
  return table.concat(out, "\n")
end

-- Plain numbers/strings/tables only (for JSON output).
local function plain(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    return v
  elseif t == "string" or t == "boolean" then
    return v
  elseif t == "table" and depth < 6 then
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" or math.type(k) == "integer" then
        local p = plain(x, depth + 1)
        if p ~= nil then out[k] = p end
      end
    end
    return out
  end
  return nil
end
M.plain = plain

local function json()
  local ok, cjson = pcall(require, "cjson")
  if not ok then fail("JSON needs lua-cjson (Debian: apt-get install lua-cjson)") end
  return cjson
end

-- ========================================================================
-- Commands
-- ========================================================================

local COMMON_DATA = {
  { name = "text-col", metavar = "COL", help = "text column (default: text, caption or title; 'none' = no text)" },
  { name = "image-col", metavar = "COL", help = "image column (default: image, image_path or path; 'none' = no image)" },
  { name = "label-col", metavar = "COL", help = "label column (default: label, group or class)" },
}

-- the names and defaults of the model's settings (csrc/model/config.h)
local SETTINGS = require("mmfuse.core").fusion
local FUSIONS, DEFAULTS = SETTINGS.names, SETTINGS.defaults
local MODALITIES_HELP = "modality to remove (text, image or a feature name; repeat or comma-separate)"

local function with(list, extra)
  local out = {}
  for _, x in ipairs(list) do out[#out + 1] = x end
  for _, x in ipairs(extra) do out[#out + 1] = x end
  return out
end

local HELP_OPT = { name = "help", short = "h", type = "flag", help = "show this help" }
local DEBUG_OPT = { name = "debug", type = "flag", help = "show the Lua traceback of an error" }
local THREADS_OPT = { name = "threads", type = "int", min = 1, metavar = "N", help = "threads for the C core (default 1)" }

local commands, order = {}, {}

local function command(c)
  c.options = with(c.options or {}, { THREADS_OPT, DEBUG_OPT, HELP_OPT })
  commands[c.name] = c
  order[#order + 1] = c.name
end

-- train ------------------------------------------------------------------

command {
  name = "train",
  summary = "train a model on a manifest and save it",
  args = { "MANIFEST" },
  usage = "mmfuse train MANIFEST --fusion F --out model.mmf [options]",
  options = with(COMMON_DATA, {
    { name = "fusion", required = true, choices = FUSIONS, metavar = "F", help = table.concat(FUSIONS, " | ") },
    { name = "out", short = "o", required = true, metavar = "FILE", help = "where to save the model (.mmf)" },
    { name = "pool", choices = SETTINGS.pools, metavar = "P",
      help = ("joint/commonspace pooling: %s (default %s)"):format(table.concat(SETTINGS.pools, " | "), DEFAULTS.pool) },
    { name = "image-encoder", metavar = "E",
      help = "cnn | histogram | a TF.js model.json (a frozen pretrained encoder, its features computed once and "
        .. "cached: --cache) | resnet18 | mobilenet_v2 (torchvision architectures, frozen, random weights here) "
        .. "(default cnn; with --image-features: features)" },
    { name = "image-features", metavar = "FILE", help = "a .npy with one image feature row per manifest row" },
    { name = "cache", metavar = "DIR", help = "feature cache of a pretrained --image-encoder (default ~/.cache/mmfuse)" },
    { name = "tokenizer", choices = { "plain", "posts" }, metavar = "T",
      help = "plain | posts (URLs, @mentions, RT, hashtags, emoticons as tokens; default plain)" },
    { name = "vectors", metavar = "FILE", help = "word vectors (GloVe / word2vec / fastText .vec) to start the text embeddings from (--dim: theirs)" },
    { name = "class-weights", choices = { "none", "balanced" }, metavar = "W",
      help = "none | balanced (inverse class frequency in the training part; default none)" },
    { name = "stream", type = "flag",
      help = "read MANIFEST (a file, or a quoted glob of shards) as a stream: never whole in memory" },
    { name = "epochs", type = "int", min = 1, default = DEFAULTS.fit.epochs, metavar = "N",
      help = ("training epochs (default %d)"):format(DEFAULTS.fit.epochs) },
    { name = "seed", type = "int", default = 1, metavar = "N", help = "random seed (default 1)" },
    { name = "dim", type = "int", min = 1, metavar = "N", help = ("common dimension d (default %d)"):format(DEFAULTS.dim) },
    { name = "lr", type = "number", positive = true, metavar = "X", help = ("learning rate (default %g)"):format(DEFAULTS.fit.lr) },
    { name = "batch", type = "int", min = 1, metavar = "N", help = ("minibatch size (default %d)"):format(DEFAULTS.fit.batch) },
    { name = "ngrams", type = "int", min = 1, metavar = "N", help = ("word n-grams in the text bag (default %d)"):format(DEFAULTS.ngrams) },
    { name = "buckets", type = "int", min = 1, metavar = "N", help = ("hash buckets for the n-grams (default %d)"):format(DEFAULTS.buckets) },
    { name = "lambda", type = "number", min = 0, metavar = "X", help = ("weight of the common-space ranking loss (default %g)"):format(DEFAULTS.lambda) },
    { name = "margin", type = "number", min = 0, metavar = "X", help = ("margin of the ranking loss (default %g)"):format(DEFAULTS.margin) },
    { name = "image-size", type = "int", min = 1, metavar = "N", help = "image side in pixels (default 32)" },
    { name = "patience", type = "int", min = 0, metavar = "N", help = "with a valid part: stop after N epochs without progress (0: never; default " .. DEFAULTS.fit.patience .. ")" },
    { name = "split", default = "none", metavar = "S",
      help = "none | COLUMN:TEST[:VALID] (e.g. fold:0:1) | ratio:TEST[:VALID] (default none: train on every row)" },
    { name = "quiet", short = "q", type = "flag", help = "no per-epoch progress on stderr" },
  }),
  description = [[
Loads MANIFEST (TSV, CSV or JSONL; image paths relative to it), splits it,
trains a model and saves it. With a split, the validation part drives early
stopping and the test part is evaluated at the end. Progress goes to stderr,
results to stdout. Under `mpirun -np N` the N processes train one model
together (each a slice of every global batch of N x --batch rows); rank 0
prints and saves. --stream reads MANIFEST (a file, or a quoted glob of
shard files) as a stream, a chunk at a time: for data bigger than memory.

Example:
  mmfuse train data/emoji32/manifest.tsv --fusion commonspace \
      --text-col caption --image-col image --label-col group \
      --split fold:0:1 --epochs 20 --seed 1 --out emoji.mmf]],
  run = function(o, out, err)
    local d = job()
    if d and d.rank ~= 0 then out, err = SINK, SINK end
    local manifest = o.args[1]
    local split = M.parse_split(o.split)
    local ds, cols = (o.stream and load_stream or load_data)(manifest, o, true,
      { image_size = o["image-size"], image_features = o["image-features"] })
    local train, valid, test = split_dataset(ds, split, o.seed)
    if rows_of(train) == 0 then fail("%s: the training part is empty (split %s)", manifest, o.split) end
    local cfg = { fusion = o.fusion, classes = classes_of(ds), dim = o.dim, pool = o.pool, lambda = o.lambda,
      margin = o.margin }
    if o.ngrams or o.buckets or o.tokenizer or o.vectors then
      if o.vectors then
        need_file(o.vectors, "word vectors")
        local ok, info = pcall(mm().text.probe_vectors, o.vectors)
        if not ok then fail("word vectors '%s': %s", o.vectors, why_not(o.vectors, info)) end
        if o.dim and o.dim ~= info.dim then
          usage_error("train", "--dim %d differs from the %d dimensions of the word vectors %s", o.dim, info.dim, o.vectors)
        end
        cfg.dim = info.dim -- the embeddings start from the vectors: d is theirs
      end
      cfg.text = { ngrams = o.ngrams, buckets = o.buckets, tokenizer = o.tokenizer, vectors = o.vectors }
    end
    local enc = o["image-encoder"]
    if enc and enc ~= "cnn" and enc ~= "histogram" then -- a frozen pretrained encoder
      if enc ~= "resnet18" and enc ~= "mobilenet_v2" then need_file(enc, "image encoder") end
      if o["image-features"] then usage_error("train", "--image-encoder %s and --image-features exclude each other", enc) end
      cfg.image = { encoder = enc, cache = cache_dir({ cache = o.cache }) }
    elseif enc then
      cfg.image = { encoder = enc }
    end
    if o["image-features"] then cfg.image = { encoder = "features" } end
    local model = mm().model(cfg)
    local fit = { epochs = o.epochs, seed = o.seed, lr = o.lr, batch = o.batch, patience = o.patience, dist = d ~= nil,
      class_weights = o["class-weights"] }
    if valid and rows_of(valid) ~= 0 then fit.valid = valid end
    if not o.quiet then
      fit.on_epoch = function(s)
        s = type(s) == "table" and s or {}
        local parts = { ("epoch %s/%d"):format(tostring(s.epoch or "?"), o.epochs) }
        if s.loss then parts[#parts + 1] = "loss " .. fmt_num(s.loss) end
        if s.train_accuracy then parts[#parts + 1] = "train-acc " .. fmt_num(s.train_accuracy) end
        if s.valid_accuracy then parts[#parts + 1] = "valid-acc " .. fmt_num(s.valid_accuracy) end
        if s.valid_macro_f1 then parts[#parts + 1] = "valid-F1 " .. fmt_num(s.valid_macro_f1) end
        if s.seconds then parts[#parts + 1] = ("%.2f s"):format(s.seconds) end
        err:write(table.concat(parts, "  "), "\n")
        err:flush()
      end
    end
    local t0 = os.clock()
    local hist = model:fit(train, fit)
    local secs = os.clock() - t0
    local ntrain = rows_of(train) or (hist[#hist] and hist[#hist].samples) or 0
    model:save(o.out)
    local modal = {}
    if cols.text then modal[#modal + 1] = "text=" .. cols.text end
    if cols.image then modal[#modal + 1] = "image=" .. cols.image end
    out:write(("trained %s on %d rows (%s, label=%s) in %.1f s CPU%s; saved %s\n"):format(o.fusion, ntrain,
      table.concat(modal, " "), cols.label, secs, d and (" per process, %d processes"):format(d.size) or "", o.out))
    if test and rows_of(test) ~= 0 then
      local r = model:evaluate(test, { dist = d ~= nil })
      if r.n > 0 then
        out:write(("\ntest part (%d rows):\n"):format(r.n))
        out:write(M.format_result(r, classes_of(model)))
      end
    end
    return 0
  end,
}

-- eval -------------------------------------------------------------------

command {
  name = "eval",
  summary = "evaluate a saved model on a manifest (metrics table)",
  args = { "MODEL", "MANIFEST" },
  usage = "mmfuse eval MODEL MANIFEST [--drop image] [options]",
  options = with(COMMON_DATA, {
    { name = "drop", type = "list", metavar = "M", help = MODALITIES_HELP },
    { name = "image-features", metavar = "FILE", help = "a .npy with one image feature row per manifest row" },
    { name = "split", default = "none", metavar = "S", help = "as for train: evaluate only one part of it" },
    { name = "part", default = "test", choices = { "train", "valid", "test" }, metavar = "P",
      help = "with --split: the part to evaluate (default test)" },
    { name = "confusion", type = "flag", help = "print the confusion matrix too" },
    { name = "json", type = "flag", help = "print the metrics as one JSON object" },
    { name = "stream", type = "flag",
      help = "read MANIFEST (a file, or a quoted glob of shards) as a stream: never whole in memory" },
  }),
  description = [[
Prints accuracy, macro-F1, log-loss and a per-class table. --drop removes a
modality from every row first: the missing-modality ablation. Under
`mpirun -np N` each process predicts a part and rank 0 prints the job's metrics.

Example:
  mmfuse eval emoji.mmf data/emoji32/manifest.tsv --split fold:0 --drop image]],
  run = function(o, out)
    local d = job()
    if d and d.rank ~= 0 then out = SINK end
    local model = load_model(o.args[1])
    local ds = (o.stream and load_stream or load_data)(o.args[2], o, true, { classes = classes_of(model),
      image_size = model.image_size, image_features = o["image-features"] })
    local train, valid, test = split_dataset(ds, M.parse_split(o.split), 1)
    local part = ({ train = train, valid = valid, test = test })[o.part]
    if o.split == "none" then part = ds end
    if part == nil or rows_of(part) == 0 then fail("%s: the %s part is empty (split %s)", o.args[2], o.part, o.split) end
    if o.drop then
      local cfg, names, have = model_config(model), {}, {}
      for _, m in ipairs(type(cfg) == "table" and cfg.modalities or {}) do
        names[#names + 1] = m.name
        have[m.name] = true
      end
      for _, d in ipairs(o.drop) do
        if #names > 0 and not have[d] then
          usage_error("eval", "--drop %s: the model has no modality '%s' (it has %s)", d, d, table.concat(names, ", "))
        end
      end
    end
    local r = model:evaluate(part, { drop = modality_list(o.drop), dist = d ~= nil })
    if r.n == 0 then fail("%s: the %s part is empty (split %s)", o.args[2], o.part, o.split) end
    if o.json then
      out:write(json().encode(plain(r)), "\n")
    else
      out:write(("%s on %s: %d rows%s\n\n"):format(o.args[1], o.args[2], r.n,
        o.drop and (", without " .. table.concat(o.drop, " and ")) or ""))
      out:write(M.format_result(r, classes_of(model), o.confusion))
    end
    return 0
  end,
}

-- predict ----------------------------------------------------------------

local function prediction_record(p)
  if type(p) ~= "table" then return { label = p } end
  local rec = { label = p.label or p.class or p[1] }
  local probs = p.probs or p.probabilities or p[2]
  if type(probs) == "table" then rec.probs = plain(probs) end
  return rec
end

-- probs as a list of {name, p} sorted by p (descending)
local function ranked(probs, classes)
  local list = {}
  if type(probs) ~= "table" then return list end
  if #probs > 0 then
    for i, pr in ipairs(probs) do list[#list + 1] = { classes[i] or tostring(i), pr } end
  else
    for k, pr in pairs(probs) do list[#list + 1] = { tostring(k), pr } end
  end
  table.sort(list, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
  return list
end

-- lines a process predicts at a time in a batch predict under mpirun
local PREDICT_BLOCK = 256

command {
  name = "predict",
  summary = "classify one post, or JSONL posts from stdin",
  args = {},
  usage = "mmfuse predict MODEL [--text TEXT] [--image FILE]      (one post)\n"
    .. "       mmfuse predict MODEL < posts.jsonl > predictions.jsonl   (a batch)",
  rest = true,
  options = {
    { name = "text", metavar = "TEXT", help = "the post's text" },
    { name = "image", metavar = "FILE", help = "the post's image (PNG, JPEG, BMP, GIF, TGA)" },
    { name = "top", type = "int", min = 1, default = 3, metavar = "N", help = "classes to show for one post (default 3)" },
    { name = "json", type = "flag", help = "one post: print a JSON object" },
  },
  description = [[
One post: give --text and/or --image (either may be absent); prints the class
and the top probabilities. A batch: without --text/--image, reads JSON lines
{"text": ..., "image": ..., "id": ...} from stdin (image paths relative to the
current directory; "id" is copied through) and writes one JSON line per input
line: {"id": ..., "label": ..., "probs": {...}}. A line
that fails gives {"line": N, "error": "..."}; the exit code is then 1.
Under `mpirun -np N` rank 0 reads stdin and hands blocks of lines to every
process; the output keeps the input order.

Examples:
  mmfuse predict emoji.mmf --text "cat face" --image data/emoji32/images/1f431.png
  printf '{"id":1,"text":"red heart"}\n' | mmfuse predict emoji.mmf]],
  run = function(o, out, err, input)
    if #o.args < 1 then usage_error("predict", "missing MODEL") end
    if #o.args > 1 then usage_error("predict", "unexpected argument '%s'", o.args[2]) end
    local model = load_model(o.args[1])
    local classes = classes_of(model)
    if o.text or o.image then
      if job() and job().rank ~= 0 then out = SINK end
      if o.image then need_file(o.image, "image") end
      local p, probs = model:predict { text = o.text, image = o.image }
      if type(p) == "table" then probs = p.probs or p.probabilities or probs; p = p.label or p.class end
      if o.json then
        out:write(json().encode({ label = p, probs = plain(probs) }), "\n")
      else
        out:write(tostring(p), "\n")
        for i, item in ipairs(ranked(probs, classes)) do
          if i > o.top then break end
          out:write(("  %-24s %.4f\n"):format(item[1], item[2]))
        end
      end
      return 0
    end
    local cjson = json()
    local dec = require("cjson.safe").decode
    -- one input line -> its JSON line (nil for a blank line), failed
    local function predict_line(line, nline)
      if not line:match("%S") then return nil, false end
      local obj, derr = dec(line)
      local rec
      if type(obj) == "table" then
        if obj.text == cjson.null then obj.text = nil end
        if obj.image == cjson.null then obj.image = nil end
      end
      if type(obj) ~= "table" or obj[1] ~= nil then
        rec = { line = nline, error = "not a JSON object" .. (derr and (": " .. derr) or "") }
      elseif obj.text == nil and obj.image == nil then
        rec = { line = nline, error = "a post needs \"text\" and/or \"image\"" }
      elseif obj.text ~= nil and type(obj.text) ~= "string" then
        rec = { line = nline, error = "\"text\" must be a string" }
      elseif obj.image ~= nil and type(obj.image) ~= "string" then
        rec = { line = nline, error = "\"image\" must be a string (a file path)" }
      else
        local ok, p, probs = pcall(model.predict, model, { text = obj.text, image = obj.image })
        if ok then
          if type(p) == "table" then
            rec = prediction_record(p)
          else
            rec = { label = p, probs = plain(probs) }
          end
          rec.id = obj.id
        else
          rec = { line = nline, error = clean_message(p) }
          if obj.id ~= nil then rec.id = obj.id end
        end
      end
      if rec.error and type(obj) == "table" and obj.id ~= nil and obj.id ~= cjson.null then rec.id = obj.id end
      return cjson.encode(rec) .. "\n", rec.error ~= nil
    end
    local nline, failed = 0, 0
    local d = job()
    if d then
      -- rank 0 reads stdin (mpirun gives it to rank 0 only) and hands out blocks of lines
      nline, failed = require("mmfuse.ranks").scatter_lines(d, input:lines(), PREDICT_BLOCK, predict_line,
        function(text) out:write(text) end)
      if d.rank ~= 0 then return 0 end
    else
      for line in input:lines() do
        nline = nline + 1
        local text, bad = predict_line(line, nline)
        if text then out:write(text) end
        if bad then failed = failed + 1 end
      end
    end
    if failed > 0 then
      err:write(("mmfuse: %d of %d lines failed\n"):format(failed, nline))
      return 1
    end
    return 0
  end,
}

-- experiment -------------------------------------------------------------

-- Names a config may use: data and pure functions only (no io, os, require,
-- load, debug, package, setmetatable, rawset, collectgarbage, dofile).
local SAFE = { "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type", "pcall" }
local SAFE_LIBS = { "math", "string", "table", "utf8" }

--- Load an experiment configuration without giving it the system.
-- The file is Lua text (binary chunks are refused) run in an environment with
-- only math, string, table, utf8 and a few pure base functions, and a bounded
-- number of instructions. It either returns a table or assigns globals, which
-- are collected into one. Functions in the result are refused (a config is
-- data, not code).
-- @tparam string path
-- @treturn table the configuration
function M.load_config(path)
  local okr, src = pcall(CORE_IO.read_file, path)
  if not okr then fail("cannot open config '%s': %s", path, why_not(path, src)) end
  if src:sub(1, 1) == "\27" then fail("%s: binary chunks are not accepted", path) end
  src = src:gsub("^#[^\n]*", "")
  local env = {}
  for _, k in ipairs(SAFE) do env[k] = _G[k] end
  for _, lib in ipairs(SAFE_LIBS) do
    local copy = {}
    for k, v in pairs(_G[lib]) do copy[k] = v end
    env[lib] = copy
  end
  local rep = string.rep
  env.string.rep = function(s, n, sep)
    if type(n) == "number" and n * (#tostring(s) + #tostring(sep or "")) > (1 << 24) then
      error("string.rep: result too large for a config", 2)
    end
    return rep(s, n, sep)
  end
  local builtins = {}
  for k, v in pairs(env) do builtins[k] = v end
  local chunk, lerr = load(src, "@" .. path, "t", env)
  if not chunk then fail("%s", tostring(lerr)) end
  local co = coroutine.create(chunk)
  local budget = 0
  debug.sethook(co, function()
    budget = budget + 1
    if budget > 1000 then error("config runs too long (more than 10^8 instructions)", 2) end
  end, "", 100000)
  local ok, ret = coroutine.resume(co)
  if not ok then
    ret = tostring(ret)
    if ret:sub(1, #path) ~= path then ret = path .. ": " .. ret end
    fail("%s", ret)
  end
  local cfg
  if type(ret) == "table" then
    cfg = ret
  elseif ret == nil then
    cfg = {}
    for k, v in pairs(env) do
      if builtins[k] ~= v then cfg[k] = v end
    end
  else
    fail("%s: a config returns a table (got a %s)", path, type(ret))
  end
  local seen = {}
  local function check(v, where)
    local t = type(v)
    if t == "table" then
      if seen[v] then return end
      seen[v] = true
      if getmetatable(v) ~= nil then fail("%s: %s has a metatable; a config is plain data", path, where) end
      for k, x in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then fail("%s: %s has a %s key", path, where, type(k)) end
        check(x, where .. (type(k) == "string" and ("." .. k) or ("[" .. k .. "]")))
      end
    elseif t ~= "string" and t ~= "number" and t ~= "boolean" then
      fail("%s: %s is a %s; a config holds only tables, strings, numbers and booleans", path, where, t)
    end
  end
  check(cfg, "config")
  return cfg
end

-- Resolve a config-relative path (absolute paths stay as they are).
local function relative_to(base_file, path)
  if path:sub(1, 1) == "/" then return path end
  local dir = base_file:match("^(.*)/[^/]*$")
  if not dir then return path end
  return dir .. "/" .. path
end

local experiment = require "mmfuse.experiment"

-- t with the keys of over; the option tables (data, fit, model) key by key
local function with_variant(t, over)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for k, v in pairs(over) do
    if (k == "data" or k == "fit" or k == "model") and type(out[k]) == "table" and type(v) == "table" then
      local m = {}
      for kk, vv in pairs(out[k]) do m[kk] = vv end
      for kk, vv in pairs(v) do m[kk] = vv end
      v = m
    end
    out[k] = v
  end
  return out
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(type(t) == "table" and t or {}) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

-- config.models: "joint-max" is joint fusion with max pooling; a table is mm.model options + name
local function model_specs(list, bad)
  if type(list) ~= "table" or #list == 0 then bad("config.models must list at least one model") end
  local valid_fusion, models = {}, {}
  for _, f in ipairs(FUSIONS) do valid_fusion[f] = true end
  for i, m in ipairs(list) do
    if type(m) == "string" then
      local fusion, pool = m:match("^(%w+)%-(%w+)$")
      if fusion and valid_fusion[fusion] then
        m = { name = m, fusion = fusion, pool = pool }
      else
        m = { name = m, fusion = m }
      end
    elseif type(m) ~= "table" then
      bad("config.models[%d] must be a fusion name or a table { name =, fusion =, ... }", i)
    end
    if not valid_fusion[m.fusion] then
      bad("config.models[%d]: unknown fusion '%s' (%s)", i, tostring(m.fusion), table.concat(FUSIONS, ", "))
    end
    m.name = m.name or m.fusion
    models[i] = m
  end
  return models
end

-- config.tasks (or one task from data.label, task, title and metric)
local function task_specs(cfg, data, manifest, bad)
  local list = cfg.tasks or { { name = cfg.task, label = data.label, title = cfg.title, metric = cfg.metric } }
  if type(list) ~= "table" or #list == 0 then bad("config.tasks must list at least one task { name =, label = }") end
  local tasks = {}
  for i, t in ipairs(list) do
    if type(t) ~= "table" then bad("config.tasks[%d] must be a table { name =, label =, ... }", i) end
    local label = t.label or data.label -- nil: guessed from the manifest's columns
    if label ~= nil and type(label) ~= "string" then bad("config.tasks[%d].label must be a column name", i) end
    for _, k in ipairs { "fit", "model", "metrics" } do
      if t[k] ~= nil and type(t[k]) ~= "table" then bad("config.tasks[%d].%s must be a table", i, k) end
    end
    local name = t.name or label or "task"
    tasks[i] = { name = name, label = label, title = t.title or ("%s (%s)"):format(name, manifest),
      metrics = t.metrics, metric = t.metric, fit = t.fit or {}, model = t.model or {} }
  end
  return tasks
end

-- only the entries of list whose name is in want (a list of names); what is unknown fails
local function narrow(list, want, what, bad)
  if not want then return list end
  local have, out = {}, {}
  for _, x in ipairs(list) do have[x.name] = x end
  for _, n in ipairs(want) do
    if not have[n] then bad("no %s '%s' (the config has: %s)", what, n, table.concat(sorted_keys(have), ", ")) end
    out[#out + 1] = have[n]
  end
  return out
end

--- The experiment config, checked and completed: data, tasks, models, seeds,
-- conditions, fit and model options, notes. opts (the command line): variant
-- (a name of config.variants, merged over the config), seeds (N: seeds 1..N),
-- epochs, tasks and models (lists of names to keep), data (a path replacing data.manifest).
function M.experiment_plan(cfg, path, opts)
  opts = opts or {}
  local function bad(fmt, ...) fail("%s: " .. fmt, path, ...) end
  if opts.variant then
    local v = type(cfg.variants) == "table" and cfg.variants[opts.variant]
    if type(v) ~= "table" then
      bad("no variant '%s' (the config has: %s)", opts.variant, table.concat(sorted_keys(cfg.variants), ", "))
    end
    cfg = with_variant(cfg, v)
  end
  local data = cfg.data
  if type(data) ~= "table" then bad("config.data must be a table { manifest =, text =, image =, label =, split = }") end
  if type(data.manifest) ~= "string" then bad("config.data.manifest must be a path (string)") end
  local split = data.split
  if split == nil then
    bad("config.data.split is required (e.g. \"fold:0:1\" or { by = \"fold\", test = { 0 }, valid = { 1 } })")
  elseif type(split) == "string" then
    local ok, sp = pcall(M.parse_split, split)
    if not ok or not sp then bad("config.data.split: %s", ok and "an experiment needs a test part" or tostring(sp)) end
    split = sp
  elseif type(split) ~= "table" then
    bad("config.data.split must be a string or a table")
  end
  local seeds = cfg.seeds or { 1 }
  if opts.seeds then
    seeds = {}
    for i = 1, opts.seeds do seeds[i] = i end
  end
  if type(seeds) ~= "table" or #seeds == 0 then bad("config.seeds must list at least one integer") end
  for i, s in ipairs(seeds) do
    if math.type(s) ~= "integer" then bad("config.seeds[%d] must be an integer", i) end
  end
  local known, names = {}, {}
  for _, c in ipairs(experiment.CONDITIONS) do known[c.name] = true; names[#names + 1] = c.name end
  local conditions = cfg.conditions or names
  for i, c in ipairs(conditions) do
    if not known[c] then bad("config.conditions[%d] must be %s (got %s)", i, table.concat(names, ", "), tostring(c)) end
  end
  if cfg.fit ~= nil and type(cfg.fit) ~= "table" then bad("config.fit must be a table of model:fit options") end
  if cfg.model ~= nil and type(cfg.model) ~= "table" then bad("config.model must be a table of mm.model options") end
  if cfg.notes ~= nil and type(cfg.notes) ~= "table" then bad("config.notes must be a list of strings") end
  -- --data replaces the config's manifest (a path from the working directory, not the config)
  local manifest = opts.data or relative_to(path, data.manifest)
  if data.image_encoder ~= nil and data.image_encoder ~= false and type(data.image_encoder) ~= "string" then
    bad("config.data.image_encoder must be a frozen image encoder (a name or a model.json path) or false")
  end
  if data.image_size ~= nil and (math.type(data.image_size) ~= "integer" or data.image_size < 1) then
    bad("config.data.image_size must be a positive integer (pixels)")
  end
  local fit = with_variant({}, cfg.fit or {})
  if opts.epochs then fit.epochs = opts.epochs end
  local models = narrow(model_specs(cfg.models, bad), opts.models, "model", bad)
  return {
    title = cfg.title,
    variant = opts.variant,
    notes = cfg.notes or {},
    manifest = manifest,
    columns = { text = data.text, image = data.image },
    image_encoder = data.image_encoder or nil,
    image_size = data.image_size,
    cache = opts.cache or data.cache,
    split = split,
    split_text = type(data.split) == "string" and data.split or nil,
    tasks = narrow(task_specs(cfg, data, manifest, bad), opts.tasks, "task", bad),
    models = models,
    seeds = seeds,
    conditions = conditions,
    fit = fit,
    model = cfg.model or {},
  }
end

-- "file", "directory", ... or "missing" (core.io.stat)
local function core_io_kind(path)
  local ok, k = pcall(function() return require("mmfuse.core").io.stat(path) end)
  return ok and k or "missing"
end

-- The data of one task, split; fails when a part the experiment needs is empty. The data
-- is a manifest, or a folder of posts (ID.txt / ID.jpg + labels.csv: mm.data.import_posts,
-- whose id column is `id`; what the import lost is counted in the notes).
local function task_data(plan, task)
  local ds, cols, imported
  if core_io_kind(plan.manifest) == "directory" then
    local ok, d, rep = pcall(mm().data.import_posts, plan.manifest, { image_size = plan.image_size })
    if not ok then fail("%s", tostring(d)) end
    ds, cols, imported = d, { text = "text", image = "image" }, rep
  else
    ds, cols = load_data(plan.manifest, {
      ["text-col"] = plan.columns.text, ["image-col"] = plan.columns.image, ["label-col"] = task.label,
    }, true, { image_size = plan.image_size })
  end
  local train, valid, test = split_dataset(ds, plan.split, plan.seeds[1])
  if ds_size(train) == 0 then fail("%s: the training part is empty", plan.manifest) end
  if test == nil or ds_size(test) == 0 then fail("%s: the test part is empty", plan.manifest) end
  if valid and ds_size(valid) == 0 then valid = nil end
  return { ds = ds, columns = cols, train = train, valid = valid, test = test, classes = classes_of(ds),
    imported = imported }
end

-- the test posts as the report shows them: picture path, caption, true class
local function test_posts(plan, d)
  local base = plan.manifest:match("^(.*)/[^/]*$") or "."
  -- the dataset's picture paths (resolved by the loader), else the manifest column's
  local listed = d.test.images and not d.test.images.bytes and d.test.images.list
  local imgs = listed or d.columns.image and d.test.columns[d.columns.image] or {}
  if listed then base = "" end
  local texts, labels, posts = {}, d.test:labels(), {}
  for i = 1, ds_size(d.test) do
    texts[i] = d.columns.text and (d.test.columns[d.columns.text] or {})[i]
    if texts[i] == nil and d.columns.text then
      local ok, t = pcall(d.test.text, d.test, d.columns.text, i)
      texts[i] = ok and t or nil
    end
    local img = imgs[i] or ""
    if type(img) ~= "string" then img = "" end -- false: no picture; bytes are not shown
    posts[i] = { image = img ~= "" and ((img:sub(1, 1) == "/" or base == "") and img or base .. "/" .. img) or nil,
                 caption = texts[i], truth = d.classes[labels[i]] }
  end
  return posts
end

-- Every task of the plan: the grid of each, as the report's results.
local function run_experiment(plan, parts, mode, err)
  local progress = require "mmfuse.progress"
  local results = { title = plan.title or "mmfuse experiment", notes = {}, tasks = {} }
  local clock = mm().clock or os.time
  local t0, run_total, run_index, grid_done = clock(), #plan.tasks * #plan.models * #plan.seeds, 0, 0
  for i, task in ipairs(plan.tasks) do
    local d, bar = parts[i], nil
    local fit = with_variant(plan.fit, task.fit)
    local defaults = with_variant(plan.model, task.model)
    defaults.classes = d.classes
    if plan.image_encoder then -- a frozen image encoder, its rows computed once and cached
      defaults.image = { encoder = plan.image_encoder, cache = cache_dir(plan) }
    end
    local res = experiment.run {
      task = task.name, train = d.train, valid = d.valid, test = d.test, classes = d.classes,
      models = plan.models, seeds = plan.seeds, conditions = plan.conditions, fit = fit,
      model_defaults = defaults, primary = task.metric,
      on_run_start = function(info)
        run_index = run_index + 1
        bar = progress.new { label = ("%s %s seed %s"):format(task.name, info.model, tostring(info.seed)),
          epochs = fit.epochs or DEFAULTS.fit.epochs, runs = run_total, run = run_index, grid_done = grid_done,
          mode = mode, out = err }
      end,
      on_epoch = function(_, st)
        bar:epoch(st.epoch or 0, { loss = st.loss, accuracy = st.train_accuracy, valid = st.valid_macro_f1,
          samples = st.samples, seconds = st.seconds })
      end,
      on_run_end = function()
        local secs = bar:done()
        grid_done = grid_done + secs
        return secs
      end,
    }
    results.tasks[i] = experiment.report_task(res, { title = task.title, metrics = task.metrics,
      split = plan.split_text, sizes = { ds_size(d.train), ds_size(d.valid), ds_size(d.test) }, posts = test_posts(plan, d) })
    results.notes[#results.notes + 1] = ("%s task: %d labelled rows, classes %s."):format(task.name, ds_size(d.ds),
      table.concat(d.classes, ", "))
    if d.imported then
      local r, enc = d.imported, {}
      for _, k in ipairs(sorted_keys(r.encodings)) do enc[#enc + 1] = ("%s %d"):format(k, r.encodings[k]) end
      results.notes[#results.notes + 1] = ("Imported from the folder %s: %d posts; texts decoded as %s; "
        .. "%d without a picture, %d picture(s) undecodable or refused, %d without a text.")
        :format(plan.manifest, r.posts or ds_size(d.ds), table.concat(enc, ", "), #(r.image_missing or {}),
          #(r.image_undecodable or {}) + #(r.image_refused or {}), #(r.text_missing or {}) + #(r.text_empty or {}))
    end
  end
  table.insert(results.notes, 1, experiment.settings_note(plan, results.tasks, DEFAULTS))
  for j, n in ipairs(plan.notes) do table.insert(results.notes, 1 + j, n) end
  results.notes[#results.notes + 1] = ("Wall time: %s for %d training runs."):format(progress.hms(clock() - t0),
    run_total)
  return results
end

-- results as JSON: every run, the summary and the claims of each task
local function results_json(results)
  local tasks = {}
  for i, t in ipairs(results.tasks) do
    tasks[i] = { task = t.task, models = t.models, conditions = t.conditions, seeds = t.seeds, runs = t.runs,
      summary = t.summary, claims = t.claims }
  end
  return json().encode(plain { title = results.title, notes = results.notes, tasks = tasks }) .. "\n"
end

command {
  name = "experiment",
  summary = "run a grid of models x seeds x missing-modality conditions",
  args = { "CONFIG" },
  usage = "mmfuse experiment CONFIG.lua [options]",
  options = {
    { name = "out", metavar = "DIR", help = "write DIR/report.html, DIR/results.md and DIR/results.json" },
    { name = "html", metavar = "FILE", help = "also write an HTML report (tables, charts)" },
    { name = "results", metavar = "FILE", help = "also write every run, the summary and the claims as JSON" },
    { name = "variant", metavar = "NAME", help = "run the config's variants[NAME] (merged over the config)" },
    { name = "data", metavar = "PATH", help = "the data instead of the config's data.manifest" },
    { name = "cache", metavar = "DIR", help = "folder of image feature caches (default ~/.cache/mmfuse)" },
    { name = "seeds", type = "int", min = 1, metavar = "N", help = "seeds 1..N instead of the config's" },
    { name = "epochs", type = "int", min = 1, metavar = "N", help = "training epochs instead of the config's" },
    { name = "tasks", type = "list", metavar = "LIST", help = "only these tasks of the config (by name)" },
    { name = "models", type = "list", metavar = "LIST", help = "only these models of the config (by name)" },
    { name = "progress", choices = { "bar", "plain", "off" }, metavar = "MODE",
      help = "bar | plain | off (default: bar on a terminal, else plain; MMFUSE_PROGRESS)" },
    { name = "check", type = "flag", help = "only check the config and the data, run nothing" },
    { name = "quiet", short = "q", type = "flag", help = "no progress on stderr" },
  },
  description = [[
CONFIG is a Lua file that returns a table, e.g.

  return {
    title = "emoji groups",
    data = { manifest = "../data/emoji32/manifest.tsv",   -- relative to CONFIG
             text = "caption", image = "image", label = "group",
             split = "fold:0:1" },          -- or { by = "fold", test = {0}, valid = {1} }
    models = { "text", "image", "early", "late", "joint-max", "joint-mean",
               "commonspace", { name = "cs-mean", fusion = "commonspace", pool = "mean" } },
    seeds = { 1, 2, 3 },
    conditions = { "both", "text", "image" },  -- modalities present at test time
    model = { dim = 64 },                       -- options for every mm.model
    fit = { epochs = 10, batch = 32 },          -- options for model:fit
    metric = "accuracy",                        -- the claims' metric
    notes = { "..." },                          -- lines for the report
    -- several label columns: tasks = { { name =, label =, title =, metrics =,
    --   metric =, fit = {...}, model = {...} }, ... }
    -- variants = { quick = { fit = { epochs = 2 } } }   (--variant quick)
  }

Every model is trained once per seed and evaluated on the test part with
text + image, text only and image only; the Markdown tables (mean +- std over
seeds) and the paper's claims C1-C3 go to stdout. examples/paper.lua is the
paper's experiment as such a config. The config runs in a sandbox: no io, os,
require, load or debug, a bounded number of instructions, and only data
(tables, strings, numbers, booleans) is kept.]],
  run = function(o, out, err)
    local path = o.args[1]
    local plan = M.experiment_plan(M.load_config(path), path, { variant = o.variant, seeds = o.seeds, data = o.data, cache = o.cache,
      epochs = o.epochs, tasks = o.tasks, models = o.models })
    local parts = {}
    for i, task in ipairs(plan.tasks) do parts[i] = task_data(plan, task) end
    if o.check then
      for i, d in ipairs(parts) do
        out:write(("config ok%s: %d models x %d seeds x %d conditions; %d train, %d valid, %d test rows\n")
          :format(#parts > 1 and (" (" .. plan.tasks[i].name .. ")") or "", #plan.models, #plan.seeds,
            #plan.conditions, ds_size(d.train), ds_size(d.valid), ds_size(d.test)))
      end
      return 0
    end
    local report = require "mmfuse.report"
    local results = run_experiment(plan, parts, o.quiet and "off" or o.progress, err)
    local md = report.markdown(results)
    out:write(md, "\n")
    if o.out then
      local ok, why = os.execute("mkdir -p '" .. o.out:gsub("'", "'\\''") .. "'")
      if not ok then fail("cannot create the folder '%s' (%s)", o.out, tostring(why)) end
      report.write_atomic(o.out .. "/results.md", md .. "\n")
      report.write_html(o.out .. "/report.html", results)
      report.write_atomic(o.out .. "/results.json", results_json(results))
      out:write(("\nwrote %s/report.html, %s/results.md, %s/results.json\n"):format(o.out, o.out, o.out))
    end
    if o.html then report.write_html(o.html, results) end
    if o.results then report.write_atomic(o.results, results_json(results)) end
    return 0
  end,
}

-- import -----------------------------------------------------------------

command {
  name = "import",
  summary = "a folder of posts (ID.txt, ID.jpg|png, a label file) as a manifest",
  args = { "DIR" },
  usage = "mmfuse import DIR --out manifest.tsv [--labels FILE] [options]",
  options = {
    { name = "out", short = "o", required = true, metavar = "FILE",
      help = "the manifest to write (.tsv, or .csv by extension): id, label, text, image" },
    { name = "labels", metavar = "FILE", help = "the label file, CSV or TSV with a header (default DIR/labels.csv or .tsv)" },
    { name = "posts", metavar = "SUBDIR", help = "the folder of the post files in DIR (default DIR/data if any, else DIR)" },
    { name = "id-col", metavar = "COL", help = "id column of the label file (default guid, id, post_id, post or name)" },
    { name = "label-col", metavar = "COL", help = "label column (default tag, label, class, sentiment or category)" },
    { name = "encodings", type = "list", metavar = "LIST",
      help = "text encodings to try in order (default utf-8,gb18030,latin-1)" },
    { name = "max-image-bytes", type = "int", min = 1, metavar = "N",
      help = "refuse picture files above N bytes unread (default 32 MiB)" },
    { name = "json", type = "flag", help = "print the import report as JSON" },
  },
  description = [[
Reads every post the label file names: its text (decoded to UTF-8 from UTF-8,
GB18030 or Latin-1) and its picture (decoded once to check it), and writes a
manifest that mmfuse train/eval and mm.data.load read. A picture that is
missing, not a regular file, too large or undecodable leaves the image cell
empty (the post is image-absent); a missing text leaves the text cell empty.
Image paths in the manifest are absolute. The report lists every such post.]],
  run = function(o, out)
    local posts = require "mmfuse.posts"
    local ok, ds, rep = pcall(mm().data.import_posts, o.args[1], {
      labels = o.labels, posts = o.posts, id_column = o["id-col"], label_column = o["label-col"],
      encodings = o.encodings, max_image_bytes = o["max-image-bytes"],
    })
    if not ok then fail("%s", clean_message(ds)) end
    posts.write_manifest(ds, o.out)
    if o.json then
      out:write(json().encode(plain(rep)), "\n")
    else
      out:write(posts.summary(rep), "\n", ("wrote %s (%d rows)\n"):format(o.out, rep.posts))
    end
    return 0
  end,
}

-- info -------------------------------------------------------------------

command {
  name = "info",
  summary = "show a saved model: configuration, classes, sizes",
  args = { "MODEL" },
  usage = "mmfuse info MODEL [--json]",
  options = {
    { name = "json", type = "flag", help = "print the information as JSON" },
  },
  description = [[
Reads the model file (nothing in it is executed) and prints its configuration,
its classes, its parameter count and its file size.]],
  run = function(o, out)
    local path = o.args[1]
    local model = load_model(path)
    local _, bytes = CORE_IO.stat(path)
    local info = {
      file = path,
      bytes = bytes,
      classes = plain(classes_of(model)),
      config = plain(model_config(model)),
      parameters = type(model.nparams) == "function" and model:nparams() or nil,
    }
    if o.json then
      out:write(json().encode(info), "\n")
      return 0
    end
    out:write(("file        %s (%d bytes)\n"):format(path, bytes))
    if info.parameters then out:write(("parameters  %s\n"):format(tostring(info.parameters))) end
    if info.classes then
      out:write(("classes     %d: %s\n"):format(#info.classes, table.concat(info.classes, ", ")))
    end
    if type(info.config) == "table" then
      local keys = {}
      for k in pairs(info.config) do
        if k ~= "modalities" then keys[#keys + 1] = tostring(k) end
      end
      table.sort(keys)
      out:write("config\n")
      for _, k in ipairs(keys) do
        local v = info.config[k]
        if type(v) == "table" then
          v = json().encode(v)
        elseif math.type(v) == "float" then
          v = math.tointeger(v) or ("%.6g"):format(v)
        end
        out:write(("  %-12s %s\n"):format(k, tostring(v)))
      end
    end
    out:write("\n", tostring(model), "\n")
    return 0
  end,
}

-- ========================================================================
-- Help and main
-- ========================================================================

--- The help text of one command, or of the whole tool (cmd nil).
-- @tparam[opt] string name a command name
-- @treturn string
function M.help(name)
  if name == nil then
    local lines = {
      "mmfuse - multimodal (text + image) classification of social-media posts",
      "",
      "usage: mmfuse COMMAND [arguments] [options]",
      "",
      "commands:",
    }
    for _, n in ipairs(order) do
      lines[#lines + 1] = ("  %-11s %s"):format(n, commands[n].summary)
    end
    lines[#lines + 1] = ("  %-11s %s"):format("help", "help for a command (mmfuse help train)")
    for _, l in ipairs {
      "",
      "options for every command:",
      "  --threads N  threads for the C core",
      "  --debug      show the Lua traceback of an error",
      "  -h, --help   help (mmfuse COMMAND --help for a command)",
      "  --version    print the version",
      "",
      "exit codes: 0 ok, 1 runtime error, 2 usage error",
      "",
      "A typical session:",
      "  mmfuse train data/emoji32/manifest.tsv --fusion commonspace --split fold:0:1 --out emoji.mmf",
      "  mmfuse eval emoji.mmf data/emoji32/manifest.tsv --split fold:0 --drop image",
      "  mmfuse predict emoji.mmf --text \"cat face\"",
      "  mmfuse info emoji.mmf",
    } do lines[#lines + 1] = l end
    return table.concat(lines, "\n") .. "\n"
  end
  local c = commands[name]
  if not c then return nil end
  local lines = { "usage: " .. c.usage, "", c.summary, "" }
  if c.description then
    lines[#lines + 1] = c.description
    lines[#lines + 1] = ""
  end
  lines[#lines + 1] = "options:"
  for _, spec in ipairs(c.options) do
    local flag = "--" .. spec.name
    if spec.metavar and spec.type ~= "flag" then flag = flag .. " " .. spec.metavar end
    if spec.short then flag = "-" .. spec.short .. ", " .. flag end
    local h = spec.help or ""
    if spec.required then h = h .. " (required)" end
    lines[#lines + 1] = ("  %-24s %s"):format(flag, h)
  end
  return table.concat(lines, "\n") .. "\n"
end

--- The description of one command (name, summary, usage, options, args).
-- @tparam string name
-- @treturn table|nil
function M.spec(name)
  return commands[name]
end

--- The names of the commands, in help order.
-- @treturn table
function M.commands()
  local out = {}
  for i, n in ipairs(order) do out[i] = n end
  return out
end

local function has_flag(argv, flag)
  for _, a in ipairs(argv) do
    if a == "--" then return false end
    if a == flag then return true end
  end
  return false
end

--- Run the command line.
-- @tparam table argv the arguments (`arg` of the script)
-- @tparam[opt] table streams `{stdout=, stderr=, stdin=}` (defaults: io.*)
-- @treturn int exit code (0 ok, 1 runtime error, 2 usage error)
function M.main(argv, streams)
  streams = streams or {}
  local out = streams.stdout or io.stdout
  local err = streams.stderr or io.stderr
  local input = streams.stdin or io.stdin
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local debug_mode = has_flag(args, "--debug") or streams.debug or false
  local name = args[1]

  local function report(e, tb)
    local code, msg = M.exit.runtime, nil
    local mt = type(e) == "table" and getmetatable(e)
    if mt == Usage then
      code = M.exit.usage
      msg = e.msg
      local hint = e.cmd and (PROG .. " " .. e.cmd .. " --help") or (PROG .. " --help")
      msg = msg .. "\n(see '" .. hint .. "')"
    elseif mt == Fail then
      msg = e.msg
    else
      msg = clean_message(e)
    end
    err:write(PROG, ": ", msg, "\n")
    if debug_mode and tb then err:write(tb, "\n") end
    return code
  end

  if name == nil then
    err:write(M.help())
    return M.exit.usage
  end
  if name == "-h" or name == "--help" then
    out:write(M.help())
    return M.exit.ok
  end
  if name == "--version" then
    local ok, mod = pcall(require, "mmfuse")
    if not ok then
      err:write(PROG, ": cannot load the mmfuse module: ", clean_message(mod), "\n")
      return M.exit.runtime
    end
    out:write(PROG, " ", tostring(mod.version), "\n")
    return M.exit.ok
  end
  if name == "help" then
    local topic = args[2]
    if topic == nil then out:write(M.help()) return M.exit.ok end
    local text = M.help(topic)
    if not text then
      return report(setmetatable({ msg = ("unknown command '%s'"):format(topic) }, Usage))
    end
    out:write(text)
    return M.exit.ok
  end
  if name == "--debug" then
    table.remove(args, 1)
    return M.main(args, { stdout = out, stderr = err, stdin = input, debug = true })
  end
  local cmd = commands[name]
  if not cmd then
    local msg = name:sub(1, 1) == "-" and ("unknown option %s (a command comes first)"):format(name)
        or ("unknown command '%s'"):format(name)
    return report(setmetatable({ msg = msg }, Usage))
  end
  table.remove(args, 1)
  local tb
  local ok, res = xpcall(function()
    local o = M.parse(cmd, args)
    if o.help then
      out:write(M.help(cmd.name))
      return M.exit.ok
    end
    if o.threads then
      local lib = mm()
      if type(lib.threads) == "function" then lib.threads(o.threads) end
    end
    return cmd.run(o, out, err, input)
  end, function(e)
    tb = debug.traceback(tostring(e), 2)
    return e
  end)
  out:flush()
  if ok then return math.tointeger(res) or M.exit.ok end
  return report(res, tb)
end

return M
