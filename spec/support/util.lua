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

--- In a describe block: every test leaves the gemm kernel level and the thread count as it
-- found them (busted's before_each / after_each are passed in: they are the spec's globals).
function util.keep_kernel_and_threads(before_each, after_each)
  local mm = require "mmfuse"
  local prev_k, prev_t
  before_each(function() prev_k, prev_t = mm.gemm_kernel(), mm.threads() end)
  after_each(function()
    mm.gemm_kernel(prev_k)
    mm.threads(prev_t)
  end)
end

--- Assert tensors a and b have one shape and differ by at most tol * max(1, max |b|).
function util.assert_close(a, b, what, tol)
  luassert.same(b:shape(), a:shape())
  local scale = math.max(1, (b:abs():max()))
  local err = (a - b):abs():max()
  assert(err <= (tol or 2e-5) * scale, ("%s: max |diff| %g (scale %g)"):format(what, err, scale))
end

return util
