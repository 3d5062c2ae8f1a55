--- mmfuse.io: files other programs write and read.
--   io.load_npy(path) -> tensor   (.npy float32/float64, C order, up to 8 dims)
--   io.save_npy(path, t)          (float32, written atomically: temp file + fsync + rename)
--   io.read_file(path [, {max_bytes = 0}]) -> the bytes of a regular file (max_bytes > 0: a cap)
--   io.check(path [, {max_bytes = 0}]) -> size; raises what reading the file would refuse
--   io.stat(path) -> kind ("file", "directory", "fifo", "character device", "block device",
--     "socket", "other", "missing"), size. Opens nothing.
--   io.open(path) -> handle | nil, message: io.open(path, "rb") of a regular file only
-- Every file of user data mmfuse reads is opened through these (or the C core's
-- csrc/io/file.c): a FIFO, a device such as /dev/zero, a socket or a directory is
-- refused without being read, so a junk path can neither hang a load nor fill memory.
--   io.read_table(path, "tsv"|"csv") -> header, rows, lines: a manifest's fields (the C reader
--     mm.data.load and mm.data.stream share; a malformed row is an error naming file:line)
--   io.load_features(path [, {rows = n}]) -> n x d tensor: precomputed vectors,
--     one row per dataset row (the `features` encoder); checks 2-D, the row
--     count and that every value is finite, naming the file and the row.
local core = require "mmfuse.core"

local io_ = {}
for k, v in pairs(core.io) do io_[k] = v end

function io_.open(path)
  local ok, err = pcall(core.io.check, path)
  if not ok then return nil, err end
  return io.open(path, "rb")
end

function io_.load_features(path, opts)
  local t = core.io.load_npy(path)
  local shape = t:shape()
  if #shape ~= 2 then
    error(("%s: features must be a 2-D array (rows x dim), got shape %s"):format(path,
      #shape == 0 and "scalar" or table.concat(shape, "x")), 2)
  end
  if shape[2] < 1 then error(("%s: features have dimension 0 (shape %s)"):format(path, table.concat(shape, "x")), 2) end
  local rows = opts and opts.rows
  if rows ~= nil and rows ~= shape[1] then
    error(("%s: %d feature rows for %d dataset rows"):format(path, shape[1], rows), 2)
  end
  if shape[1] > 0 then
    local s = t:sum()
    if s ~= s or s == math.huge or s == -math.huge then
      local rs = t:sum(2):totable()
      for i, v in ipairs(rs) do
        if v ~= v or v == math.huge or v == -math.huge then
          error(("%s: row %d contains NaN or Inf"):format(path, i), 2)
        end
      end
    end
  end
  return t
end

return io_
