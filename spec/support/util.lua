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

--- s quoted for a POSIX shell (single quotes).
function util.sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- A new empty directory under the system's temporary folder; returns its path.
function util.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. util.sh_quote(d)))
  return d
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

--- Whether products run on mmfuse's own kernels (levels "avx2" and "avx512"). Their sums have
-- a fixed order whatever the thread count (columns or rows are split, never a sum), so
-- results with any thread count are bit-identical. At "generic", products go to OpenBLAS,
-- which threads them itself with a split (and so an order of summation) that depends on the
-- CPU it detects and the thread count: there, results of different thread counts agree only
-- to rounding.
function util.own_kernels()
  return require("mmfuse").gemm_kernel() ~= "generic"
end

--- Unit roundoff of float32.
util.EPS32 = 2 ^ -24

--- Bound on |a - b| for two float32 results of the same sums computed in different orders:
-- each sum of k products is off its exact value by at most k * u * sum|terms|, so two orders
-- differ by at most 2 * k * u * sum|terms|. `absdot` is (an upper bound of) the largest sum
-- |terms| over the elements, e.g. (|A| |B|):max() for a product A B.
function util.order_bound(k, absdot)
  return 2 * k * util.EPS32 * absdot
end

--- Assert `got` equals `want` bit for bit when `exact`, else within `tol` (absolute).
function util.assert_same_or_close(got, want, exact, tol, what)
  if exact then
    assert(got == want, what .. ": not bit-identical")
  else
    luassert.same(want:shape(), got:shape())
    local err = (got - want):abs():max()
    assert(err <= tol, ("%s: max |diff| %g above the bound %g"):format(what, err, tol))
  end
end

return util
