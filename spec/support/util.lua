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

--- Fail (an error, never a skip) unless `path` exists: the data `make pretrained` writes is not
-- committed, and `make test` makes it first.
function util.need_pretrained(path)
  local f = io.open(path, "rb")
  if not f then error(path .. " is missing: run `make pretrained` (make test does it first)", 0) end
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

--- The mm_sgemm kernels this CPU can run, in the order given (default: all three),
-- leaving the kernel in use as it was.
function util.gemm_kernels(order)
  local mm = require "mmfuse"
  local prev, ks = mm.gemm_kernel(), {}
  for _, k in ipairs(order or { "generic", "avx2", "avx512" }) do
    if pcall(mm.gemm_kernel, k) then ks[#ks + 1] = k end
  end
  mm.gemm_kernel(prev)
  return ks
end

--- Assert tensors a and b have one shape and differ by at most tol * max(1, max |b|).
function util.assert_close(a, b, what, tol)
  luassert.same(b:shape(), a:shape())
  local scale = math.max(1, (b:abs():max()))
  local err = (a - b):abs():max()
  assert(err <= (tol or 2e-5) * scale, ("%s: max |diff| %g (scale %g)"):format(what, err, scale))
end

return util
