--- mmfuse.reddit: import the paper's Reddit data (Duong et al. 2017) into a manifest.
--
-- The paper's data are four CSV files, one per subreddit (columns id, url,
-- title, ...): r/happy, r/creepy, r/rage and r/gore, labelled joy, fear,
-- anger and disgust. The importer writes one TSV manifest that
-- mm.data.load reads, downloading each post's image into a cache folder
-- when a network is there; a post whose image cannot be fetched (or is not
-- an image) keeps its text and has the image modality marked missing.
--
--   local reddit = require "mmfuse.reddit"
--   local stats = reddit.import{ csv = { happy = "happy.csv", creepy = "creepy.csv", ... },
--                                out = "reddit/manifest.tsv", cache = "reddit/images",
--                                download = true }
--   local ds = mm.data.load("reddit/manifest.tsv", { text = "title", image = "image", label = "label" })
--
-- Manifest columns: id, subreddit, label, title, url, image (path relative
-- to the manifest, empty when missing), fold (FNV-1a 32 of the id mod 5).
local mio = require "mmfuse.io" -- regular files only: a FIFO or device is refused unread

local reddit = {}

reddit.LABELS = { happy = "joy", creepy = "fear", rage = "anger", gore = "disgust" }
reddit.ORDER = { "happy", "creepy", "rage", "gore" }

--- Parse CSV text (RFC 4180: quoted fields with "" escapes, newlines inside
-- quotes, CRLF or LF). Returns header, rows (arrays of strings). `where`
-- names the file in errors.
function reddit.parse_csv(text, where)
  where = where or "csv"
  local rows, row, field = {}, {}, {}
  local i, n, line = 1, #text, 1
  local quoted_start
  if text:sub(1, 3) == "\239\187\191" then i = 4 end -- UTF-8 BOM
  local function end_field()
    row[#row + 1] = table.concat(field)
    field = {}
  end
  local function end_row()
    end_field()
    rows[#rows + 1] = row
    row = {}
  end
  local in_quotes = false
  while i <= n do
    local c = text:sub(i, i)
    if in_quotes then
      if c == '"' then
        if text:sub(i + 1, i + 1) == '"' then
          field[#field + 1] = '"'
          i = i + 1
        else
          in_quotes = false
        end
      else
        if c == "\n" then line = line + 1 end
        field[#field + 1] = c
      end
    elseif c == '"' then
      if #field > 0 then error(("%s:%d: a quote inside an unquoted field"):format(where, line), 2) end
      in_quotes, quoted_start = true, line
    elseif c == "," then
      end_field()
    elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" then
      -- CRLF: handled at the \n
    elseif c == "\n" then
      end_row()
      line = line + 1
    else
      field[#field + 1] = c
    end
    i = i + 1
  end
  if in_quotes then error(("%s:%d: a quoted field is not closed"):format(where, quoted_start), 2) end
  if #field > 0 or #row > 0 then end_row() end
  if #rows == 0 then error(("%s: empty file (no header)"):format(where), 2) end
  local header = table.remove(rows, 1)
  for k, r in ipairs(rows) do
    if #r ~= #header and not (#r == 1 and r[1] == "") then
      error(("%s: row %d has %d fields, the header %d"):format(where, k, #r, #header), 2)
    end
  end
  -- drop blank lines
  local out = {}
  for _, r in ipairs(rows) do
    if not (#r == 1 and r[1] == "") then out[#out + 1] = r end
  end
  return header, out
end

--- FNV-1a 32-bit hash of a string.
function reddit.fnv1a(s)
  local h = 2166136261
  for k = 1, #s do
    h = h ~ s:byte(k)
    h = (h * 16777619) & 0xffffffff
  end
  return h
end

local function read_file(path)
  local f, err = mio.open(path)
  if not f then error(("cannot open %s: %s"):format(path, tostring(err)), 3) end
  local s = f:read("a")
  f:close()
  return s
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Does this file start like an image (PNG, JPEG, GIF, BMP, WebP)?
function reddit.is_image(path)
  local f = mio.open(path)
  if not f then return false end
  local head = f:read(12) or ""
  f:close()
  return head:sub(1, 8) == "\137PNG\r\n\26\n" or head:sub(1, 3) == "\255\216\255" or head:sub(1, 4) == "GIF8"
    or head:sub(1, 2) == "BM" or (head:sub(1, 4) == "RIFF" and head:sub(9, 12) == "WEBP")
end

--- Default fetcher: curl (http/https only), bounded time and size.
-- `prefix` goes before the command (e.g. "env -u LD_PRELOAD" in a sanitizer run).
function reddit.curl(url, path, timeout, prefix)
  if not url:match("^https?://") then return false, "not an http(s) URL" end
  local cmd = ((prefix and (prefix .. " ") or "") .. "curl -sfL --proto =http,https --max-time %d --max-filesize 20000000 -o %s %s 2>/dev/null")
    :format(timeout or 20, sh_quote(path), sh_quote(url))
  local ok = os.execute(cmd)
  if ok ~= true then
    os.remove(path)
    return false, "download failed"
  end
  return true
end

local EXT = { png = true, jpg = true, jpeg = true, gif = true, bmp = true, webp = true }

local function clean(s) return (s:gsub("[\t\r\n]+", " ")) end

--- Import. o.csv: { happy = path, ... } (any subset of the four), or o.dir
-- holding happy.csv, creepy.csv, rage.csv, gore.csv. o.out: manifest path.
-- o.cache: image folder (default <out dir>/images). o.download (default
-- true): fetch images not in the cache yet. o.fetch(url, path) -> ok, err
-- replaces curl. Returns { rows =, images =, missing =, failed = {..} }.
function reddit.import(o)
  assert(type(o) == "table", "reddit.import: expects an option table")
  if type(o.out) ~= "string" then error("reddit.import: 'out' (the manifest path) is required", 2) end
  local files = {}
  for _, sub in ipairs(reddit.ORDER) do
    local p = o.csv and o.csv[sub] or (o.dir and (o.dir .. "/" .. sub .. ".csv"))
    if p and (o.csv or mio.stat(p) == "file") then files[#files + 1] = { sub = sub, path = p } end
  end
  if o.csv then
    for k in pairs(o.csv) do
      if not reddit.LABELS[k] then
        error(("reddit.import: unknown subreddit '%s' (happy, creepy, rage, gore)"):format(tostring(k)), 2)
      end
    end
  end
  if #files == 0 then error("reddit.import: no CSV given (csv = {happy = ...} or dir with happy.csv ...)", 2) end
  local outdir = o.out:match("^(.*)/[^/]*$") or "."
  local cache = o.cache or (outdir .. "/images")
  local cache_rel = cache
  if cache:sub(1, #outdir + 1) == outdir .. "/" then cache_rel = cache:sub(#outdir + 2) end
  local download = o.download ~= false
  local fetch = o.fetch or function(url, path) return reddit.curl(url, path, o.timeout) end
  assert(os.execute("mkdir -p " .. sh_quote(cache)))

  local lines = { "id\tsubreddit\tlabel\ttitle\turl\timage\tfold" }
  local stats = { rows = 0, images = 0, missing = 0, failed = {} }
  local seen = {}
  for _, fspec in ipairs(files) do
    local header, rows = reddit.parse_csv(read_file(fspec.path), fspec.path)
    local col = {}
    for j, h in ipairs(header) do col[h:lower()] = j end
    for _, need in ipairs{ "id", "url", "title" } do
      if not col[need] then
        error(("%s: no column '%s' (columns: %s)"):format(fspec.path, need, table.concat(header, ", ")), 2)
      end
    end
    for k, r in ipairs(rows) do
      local id = r[col.id]
      if not id:match("^[%w_%-]+$") then
        error(("%s: row %d: id '%s' must be letters, digits, _ or -"):format(fspec.path, k, id), 2)
      end
      if seen[id] then error(("%s: row %d: id '%s' appears twice (also in %s)"):format(fspec.path, k, id, seen[id]), 2) end
      seen[id] = fspec.path
      local url = r[col.url]
      local ext = (url:match("%.(%w+)$") or url:match("%.(%w+)%?") or ""):lower()
      if not EXT[ext] then ext = "img" end
      local name = id .. "." .. ext
      local path = cache .. "/" .. name
      local have = reddit.is_image(path)
      if not have and download and url ~= "" then
        local tmp = path .. ".part"
        local ok, err = fetch(url, tmp)
        if ok and reddit.is_image(tmp) then
          have = os.rename(tmp, path) and true or false
        else
          os.remove(tmp)
          stats.failed[#stats.failed + 1] = { id = id, url = url, error = ok and "not an image" or tostring(err) }
        end
      end
      if have then stats.images = stats.images + 1 else stats.missing = stats.missing + 1 end
      lines[#lines + 1] = table.concat({ id, fspec.sub, reddit.LABELS[fspec.sub], clean(r[col.title]), clean(url),
        have and (cache_rel .. "/" .. name) or "", tostring(reddit.fnv1a(id) % 5) }, "\t")
      stats.rows = stats.rows + 1
    end
  end
  -- atomic write of the manifest
  local tmp = o.out .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then error(("cannot write %s: %s"):format(o.out, tostring(err)), 2) end
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, o.out)
  if not ok then
    os.remove(tmp)
    error(("cannot write %s: %s"):format(o.out, tostring(rerr)), 2)
  end
  return stats
end

return reddit
