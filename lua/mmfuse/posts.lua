--- mmfuse.posts: a folder of posts (ID.txt + ID.jpg|jpeg|png + a label file) as a dataset.
--
--   ds, report = mm.data.import_posts(dir, {
--     labels = "labels.csv" | "labels.tsv" | { [id] = label, ... },  -- default: dir/labels.csv, else .tsv
--     posts = "data",               -- the folder of the post files, relative to dir
--                                   -- (default: dir/data when it is a folder, else dir)
--     id_column = "guid",           -- default: the first of guid, id, post_id, post, name
--     label_column = "tag",         -- default: the first of tag, label, class, sentiment, category
--     text_ext = ".txt", image_ext = { ".jpg", ".jpeg", ".png" },  -- extensions, any letter case
--     encodings = { "utf-8", "gb18030", "latin-1" },   -- tried in order (csrc/text/encoding.h)
--     max_text_bytes = 1 MiB,       -- a larger text file is refused unread
--     max_image_bytes = 0,          -- 0: mm.image.max_bytes (32 MiB); a larger picture is refused unread
--     image_size = 32, image_fit = "stretch",
--     classes = { ... },            -- fixed class order; a label outside it is listed, its row dropped
--   })
--
-- The dataset is the one mm.data.load returns for the same posts: a text and an
-- image modality, labels, classes, and the column `id` (ds.columns.id). Pictures
-- are decoded at import (ds.images.list keeps their paths, false where absent).
-- Rows follow the label file. Nothing is dropped silently: `report` (also
-- ds.import) counts and lists every post that lost something:
--   dir, posts_dir, labels (the label file, or "<table>"), rows (label rows read), posts (dataset rows)
--   encodings = { ["utf-8"] = n, gb18030 = n, ["latin-1"] = n }, bom = n (UTF-8 BOMs dropped)
--   text_missing, text_empty, text_undecodable, text_refused        ids: text-absent rows
--   image_missing, image_undecodable, image_refused                 ids: image-absent rows
--   no_post = { {line =, id =}, ... }        label rows with neither a text nor a picture: dropped
--   no_label, unknown_label = { {line =, id =, label =}, ... }     dropped
--   duplicate = { {line =, id =}, ... }      a second label row for an id: dropped (the first counts)
--   unlabelled = { ids }                     posts in the folder that no label row names
--   reasons = { [id] = message }             why a text or picture was refused or undecodable
-- A picture that is missing, not a regular file (a FIFO, a device, a folder),
-- above the size cap or undecodable makes its row image-absent (mask 0); a text
-- file that is missing, refused or empty makes it text-absent. Invalid UTF-8
-- never reaches the tokenizer: every text is decoded to UTF-8 first.
local core = require "mmfuse.core"
local data = require "mmfuse.data"

local posts = {}

posts.ID_COLUMNS = { "guid", "id", "post_id", "post", "name" }
posts.LABEL_COLUMNS = { "tag", "label", "class", "sentiment", "category" }
posts.IMAGE_EXT = { ".jpg", ".jpeg", ".png" }
posts.MAX_TEXT_BYTES = 1 << 20

local KNOWN = {
  labels = true, posts = true, id_column = true, label_column = true, text_ext = true, image_ext = true,
  encodings = true, max_text_bytes = true, max_image_bytes = true, image_size = true, image_fit = true,
  classes = true,
}

local function join(a, b) return (a == "" or b:sub(1, 1) == "/") and b or (a:gsub("/+$", "") .. "/" .. b) end

local function kind(path)
  local ok, k = pcall(core.io.stat, path)
  return ok and k or "missing"
end

-- the core's "<path>: why" -> "why"
local function why(path, msg)
  msg = tostring(msg):gsub("^[^\n]-%.lua:%d+: ", "")
  if msg:sub(1, #path + 2) == path .. ": " then msg = msg:sub(#path + 3) end
  return msg
end

-- The delimiter of a label file: a tab in its header line makes it TSV, else CSV.
local function sniff(path)
  local ok, s = pcall(core.io.read_file, path, { max_bytes = 1 << 30 })
  if not ok then error(s, 0) end
  local first = s:match("^[^\n]*") or ""
  return first:find("\t", 1, true) and "tsv" or "csv"
end

local function pick(header, wanted, given, what, path)
  local lower = {}
  for i, h in ipairs(header) do
    local key = h:lower():gsub("^%s+", ""):gsub("%s+$", "")
    lower[key] = lower[key] or i
  end
  if given then
    for i, h in ipairs(header) do if h == given then return i end end
    if lower[given:lower()] then return lower[given:lower()] end
    error(("%s: no %s column '%s' (columns: %s)"):format(path, what, given, table.concat(header, ", ")), 0)
  end
  for _, w in ipairs(wanted) do if lower[w] then return lower[w] end end
  error(("%s: no %s column (looked for %s; columns: %s; name it with %s_column =)"):format(path, what,
    table.concat(wanted, ", "), table.concat(header, ", "), what), 0)
end

-- label rows: array of { id =, label =, line = }
local function label_rows(labels, dir, o)
  if type(labels) == "table" then
    local ids = {}
    for id, lab in pairs(labels) do
      if type(id) ~= "string" and math.type(id) ~= "integer" then
        error("import_posts: labels table keys must be post ids (strings or integers)", 0)
      end
      ids[#ids + 1] = tostring(id)
      if type(lab) ~= "string" then error(("import_posts: label of post '%s' must be a string"):format(id), 0) end
    end
    -- numeric ids in numeric order, the rest after them in string order
    table.sort(ids, function(a, b)
      local na, nb = tonumber(a), tonumber(b)
      if na and nb and na ~= nb then return na < nb end
      if (na ~= nil) ~= (nb ~= nil) then return na ~= nil end
      return a < b
    end)
    local rows = {}
    for i, id in ipairs(ids) do rows[i] = { id = id, label = labels[id] or labels[tonumber(id)], line = i } end
    return rows, "<table>"
  end
  local path = labels
  if not path then
    for _, cand in ipairs { "labels.csv", "labels.tsv" } do
      if kind(join(dir, cand)) ~= "missing" then path = join(dir, cand) break end
    end
    if not path then error(("%s: no labels.csv or labels.tsv (give labels =)"):format(dir), 0) end
  elseif type(path) ~= "string" then
    error("import_posts: labels must be a path or a table { [id] = label }", 0)
  elseif kind(path) == "missing" and kind(join(dir, path)) ~= "missing" then
    path = join(dir, path)
  end
  local header, rows, lnos = data.read_table(path, { format = sniff(path) })
  local ic = pick(header, posts.ID_COLUMNS, o.id_column, "id", path)
  local lc = pick(header, posts.LABEL_COLUMNS, o.label_column, "label", path)
  local out = {}
  for k, r in ipairs(rows) do
    out[k] = { id = (r[ic]:gsub("^%s+", ""):gsub("%s+$", "")), label = (r[lc]:gsub("^%s+", ""):gsub("%s+$", "")),
      line = lnos[k] }
  end
  return out, path
end

-- The post files of folder pdir by id: texts[id] = name, images[id] = name (the
-- first of image_ext that exists, extensions compared without letter case).
local function index_folder(pdir, text_ext, image_ext)
  local texts, images, rank = {}, {}, {}
  local ext_rank = {}
  for i, e in ipairs(image_ext) do ext_rank[e:lower()] = i end
  text_ext = text_ext:lower()
  for _, name in ipairs(core.io.list(pdir)) do
    local id, ext = name:match("^(.+)(%.[^.]+)$")
    if id then
      ext = ext:lower()
      if ext == text_ext then
        texts[id] = name
      elseif ext_rank[ext] and (not rank[id] or ext_rank[ext] < rank[id]) then
        images[id], rank[id] = name, ext_rank[ext]
      end
    end
  end
  return texts, images
end

local function check_opts(o)
  for k in pairs(o) do
    if not KNOWN[k] then
      local names = {}
      for n in pairs(KNOWN) do names[#names + 1] = n end
      table.sort(names)
      error(("import_posts: unknown option '%s' (known: %s)"):format(tostring(k), table.concat(names, ", ")), 0)
    end
  end
  if o.image_ext ~= nil and (type(o.image_ext) ~= "table" or #o.image_ext == 0) then
    error("import_posts: image_ext must be a list of extensions such as { \".jpg\", \".png\" }", 0)
  end
  if o.text_ext ~= nil and type(o.text_ext) ~= "string" then error("import_posts: text_ext must be a string", 0) end
end

--- Import the folder of posts `dir` (see the top of this file).
-- @treturn Dataset the dataset (ds.import is the report)
-- @treturn table the report
function posts.import(dir, o)
  if type(dir) ~= "string" or dir == "" then error("import_posts: expects a folder path", 2) end
  o = o or {}
  if type(o) ~= "table" then error("import_posts: options must be a table", 2) end
  check_opts(o)
  local dk = kind(dir)
  if dk ~= "directory" then error(("%s: not a folder (%s)"):format(dir, dk), 2) end
  local pdir = o.posts and join(dir, o.posts) or (kind(join(dir, "data")) == "directory" and join(dir, "data") or dir)
  if kind(pdir) ~= "directory" then error(("%s: the posts folder is not a folder"):format(pdir), 2) end
  local text_ext = o.text_ext or ".txt"
  local image_ext = o.image_ext or posts.IMAGE_EXT
  local max_text = o.max_text_bytes or posts.MAX_TEXT_BYTES

  local rows, lpath = label_rows(o.labels, dir, o)
  local texts_at, images_at = index_folder(pdir, text_ext, image_ext)
  local rep = {
    dir = dir, posts_dir = pdir, labels = lpath, rows = #rows, posts = 0,
    encodings = {}, bom = 0,
    text_missing = {}, text_empty = {}, text_undecodable = {}, text_refused = {},
    image_missing = {}, image_undecodable = {}, image_refused = {},
    no_post = {}, no_label = {}, unknown_label = {}, duplicate = {}, unlabelled = {}, reasons = {},
  }
  for _, e in ipairs(o.encodings or { "utf-8", "gb18030", "latin-1" }) do rep.encodings[e] = 0 end
  local class_set
  if o.classes then
    class_set = {}
    for _, c in ipairs(o.classes) do class_set[c] = true end
  end

  local ids, labels, texts, images, seen = {}, {}, {}, {}, {}
  for _, r in ipairs(rows) do
    local id = r.id
    if seen[id] then
      rep.duplicate[#rep.duplicate + 1] = { line = r.line, id = id }
    elseif r.label == "" then
      seen[id] = true
      rep.no_label[#rep.no_label + 1] = { line = r.line, id = id }
    elseif class_set and not class_set[r.label] then
      seen[id] = true
      rep.unknown_label[#rep.unknown_label + 1] = { line = r.line, id = id, label = r.label }
    elseif not texts_at[id] and not images_at[id] then
      seen[id] = true
      rep.no_post[#rep.no_post + 1] = { line = r.line, id = id }
    else
      seen[id] = true
      local k = #ids + 1
      ids[k], labels[k] = id, r.label
      -- the text: a regular file of at most max_text bytes, decoded to UTF-8
      local tname = texts_at[id]
      texts[k] = false
      if not tname then
        rep.text_missing[#rep.text_missing + 1] = id
      else
        local tpath = join(pdir, tname)
        local okr, bytes = pcall(core.io.read_file, tpath, { max_bytes = max_text })
        if not okr then
          rep.text_refused[#rep.text_refused + 1] = id
          rep.reasons[id] = why(tpath, bytes)
        else
          local okd, txt, enc, bom = pcall(core.text.decode, bytes, o.encodings)
          if not okd then
            if tostring(txt):find("unknown encoding", 1, true) or tostring(txt):find("encodings must", 1, true) then
              error("import_posts: " .. why("text.decode", txt), 2)
            end
            rep.text_undecodable[#rep.text_undecodable + 1] = id
            rep.reasons[id] = tpath .. ": " .. why("text.decode", txt)
          else
            rep.encodings[enc] = (rep.encodings[enc] or 0) + 1
            if bom then rep.bom = rep.bom + 1 end
            if txt:find("%S") then
              texts[k] = txt
            else
              rep.text_empty[#rep.text_empty + 1] = id
            end
          end
        end
      end
      local iname = images_at[id]
      images[k] = iname and join(pdir, iname) or false
      if not iname then rep.image_missing[#rep.image_missing + 1] = id end
    end
  end
  for id in pairs(texts_at) do if not seen[id] then rep.unlabelled[#rep.unlabelled + 1] = id end end
  for id in pairs(images_at) do
    if not seen[id] and not texts_at[id] then rep.unlabelled[#rep.unlabelled + 1] = id end
  end
  table.sort(rep.unlabelled)

  local ds, fails = data.new {
    labels = labels, classes = o.classes, text = texts, image = images, image_size = o.image_size,
    image_fit = o.image_fit, max_image_bytes = o.max_image_bytes, image_absent_on_error = true,
    columns = { id = ids }, where = lpath, n = #ids,
  }
  for _, f in ipairs(fails or {}) do
    local id = ids[f.row]
    local list = f.status == "missing" and rep.image_missing
      or f.status == "undecodable" and rep.image_undecodable or rep.image_refused
    list[#list + 1] = id
    rep.reasons[id] = f.message
  end
  rep.posts = #ids
  ds.import = rep
  return ds, rep
end

local function cwd()
  local d = os.getenv("PWD")
  if d and d:sub(1, 1) == "/" and core.io.stat(d) == "directory" then return d end
  local p = io.popen("pwd")
  d = p and p:read("l")
  if p then p:close() end
  if not d or d == "" then error("import: cannot tell the current folder", 0) end
  return d
end

-- A TSV cell: data.lua's TSV reader has no escapes, so tabs and line breaks
-- become spaces (the tokenizer splits on them anyway).
local function tsv_cell(v) return (tostring(v):gsub("[\t\r\n]", " ")) end

-- A CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break.
local function csv_cell(v)
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

--- Write ds (from posts.import) as a manifest mm.data.load reads: columns id,
-- label, text (UTF-8), image (an absolute path; empty when the post is
-- image-absent). TSV, or CSV when path ends in .csv; written atomically.
function posts.write_manifest(ds, path)
  if type(path) ~= "string" or path == "" then error("write_manifest: expects a path", 2) end
  local ids = ds.columns.id
  if not ids then error("write_manifest: the dataset has no id column (import it with import_posts)", 2) end
  local csv = path:lower():match("%.csv$") ~= nil
  local cell = csv and csv_cell or tsv_cell
  local sep = csv and "," or "\t"
  local labels, mask = ds:labels(), ds.images and ds:mask("image") or {}
  local here = cwd()
  local lines = { table.concat({ "id", "label", "text", "image" }, sep) }
  for i = 1, #ids do
    local txt = ds:text("text", i) or ""
    local img = ds.images and mask[i] and ds.images.list[i] or ""
    if img ~= "" and img:sub(1, 1) ~= "/" then img = here .. "/" .. img end
    local lab = labels[i] > 0 and ds.classes[labels[i]] or ""
    lines[#lines + 1] = table.concat({ cell(ids[i]), cell(lab), cell(txt), cell(img) }, sep)
  end
  require("mmfuse.report").write_atomic(path, table.concat(lines, "\n") .. "\n")
end

-- One line per count and the first few ids of each list.
function posts.summary(rep, max_ids)
  max_ids = max_ids or 10
  local out = {}
  local function add(fmt, ...) out[#out + 1] = fmt:format(...) end
  add("import: %s (posts in %s, labels %s): %d label rows, %d posts", rep.dir, rep.posts_dir, rep.labels, rep.rows,
    rep.posts)
  local encs = {}
  for e, n in pairs(rep.encodings) do encs[#encs + 1] = ("%s %d"):format(e, n) end
  table.sort(encs)
  add("  text encodings: %s%s", table.concat(encs, ", "), rep.bom > 0 and (", %d UTF-8 BOMs dropped"):format(rep.bom) or "")
  local function ids_of(list)
    local t = {}
    for i = 1, math.min(#list, max_ids) do
      local v = list[i]
      t[i] = type(v) == "table" and (v.label and ("%s (line %d: '%s')"):format(v.id, v.line, v.label)
        or ("%s (line %d)"):format(v.id, v.line)) or v
    end
    return table.concat(t, " ") .. (#list > max_ids and (" ... (%d more)"):format(#list - max_ids) or "")
  end
  for _, k in ipairs { "text_missing", "text_empty", "text_undecodable", "text_refused", "image_missing",
    "image_undecodable", "image_refused", "no_post", "no_label", "unknown_label", "duplicate", "unlabelled" } do
    add("  %-17s %5d%s", k, #rep[k], #rep[k] > 0 and ("  " .. ids_of(rep[k])) or "")
  end
  return table.concat(out, "\n")
end

return posts
