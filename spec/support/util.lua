-- Small helpers shared by the specs (on the busted lpath: require "util").
local luassert = require "luassert"
local util = {}

--- The whole content of a file (binary).
function util.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Write s to a file (binary), replacing it.
function util.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- Call fn(...), which must fail; returns its error message.
function util.errors_with(fn, ...)
  local ok, err = pcall(fn, ...)
  luassert.is_false(ok, "expected an error")
  return tostring(err)
end

--- Assert that msg mentions every one of the given plain strings.
function util.assert_mentions(msg, ...)
  for _, s in ipairs{ ... } do
    assert(msg:find(s, 1, true), ("error message %q does not mention %q"):format(msg, s))
  end
end

return util
