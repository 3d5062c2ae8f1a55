--- mmfuse.io: files other programs write and read.
--   io.load_npy(path) -> tensor   (.npy float32/float64, C order, up to 8 dims)
--   io.save_npy(path, t)          (float32, written atomically: temp file + fsync + rename)
--   io.read_table(path, "tsv"|"csv") -> header, rows, lines: a manifest's fields (the C reader
--     mm.data.load and mm.data.stream share; a malformed row is an error naming file:line)
--   io.load_features(path [, {rows = n}]) -> n x d tensor: precomputed vectors,
--     one row per dataset row (the `features` encoder); checks 2-D, the row
--     count and that every value is finite, naming the file and the row.
local core = require "mmfuse.core"

local io_ = {}
for k, v in pairs(core.io) do io_[k] = v end

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
