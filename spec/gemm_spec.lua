-- mm_sgemm (csrc/core/gemm.c) through t:addmm / t:matmul, for every kernel this CPU can
-- run (avx512, avx2, blas), against a double-precision reference computed here in Lua.
local mm = require "mmfuse"
local util = require "util"

local function kernels() return util.gemm_kernels() end

-- op(A) . op(B) in double precision, then alpha * . + beta * C0 (C0 ignored when beta == 0)
local function reference(A, B, C0, ta, tb, alpha, beta)
  local a, b, c0 = A:totable(), B:totable(), C0:totable()
  local m = ta and #a[1] or #a
  local k = ta and #a or #a[1]
  local n = tb and #b or #b[1]
  local out = {}
  for i = 1, m do
    local row = {}
    for j = 1, n do
      local s = 0.0
      for p = 1, k do
        local x = ta and a[p][i] or a[i][p]
        local y = tb and b[j][p] or b[p][j]
        s = s + x * y
      end
      row[j] = alpha * s + (beta ~= 0 and beta * c0[i][j] or 0)
    end
    out[i] = row
  end
  return out
end

local function max_err(C, ref)
  local c, worst = C:totable(), 0
  for i = 1, #ref do
    for j = 1, #ref[i] do
      local d = math.abs(c[i][j] - ref[i][j])
      if d ~= d then return math.huge end
      if d > worst then worst = d end
    end
  end
  return worst
end

describe("mm_sgemm kernels", function()
  local prev
  before_each(function() prev = mm.gemm_kernel() end)
  after_each(function() mm.gemm_kernel(prev) end)

  it("picks the best kernel this CPU has and can be switched by name", function()
    local ks = kernels()
    assert.truthy(#ks >= 1)
    assert.equal("generic", ks[1])
    assert.equal(ks[#ks], mm.gemm_kernel("auto"))
    for _, k in ipairs(ks) do assert.equal(k, mm.gemm_kernel(k)) end
    local msg = util.errors_with(mm.gemm_kernel, "sse9")
    util.assert_mentions(msg, "sse9", "avx512", "generic")
  end)

  -- sizes around every edge: tiles of 8/6 rows and 32/16 columns, the 128-row switch to
  -- packing, K blocks of 256, 4x4 dot blocks, 1x1
  local shapes = { { 1, 1, 1 }, { 7, 33, 5 }, { 13, 47, 300 }, { 40, 17, 129 }, { 9, 70, 600 },
                   { 130, 37, 260 }, { 8, 32, 16 }, { 5, 3, 17 }, { 18, 21, 200 } }
  for _, s in ipairs(shapes) do
    for _, t in ipairs{ { false, false }, { true, false }, { false, true }, { true, true } } do
      local m, n, k = s[1], s[2], s[3]
      local ta, tb = t[1], t[2]
      it(("matches a double-precision reference: %dx%dx%d ta=%s tb=%s"):format(m, n, k, ta, tb), function()
        mm.seed(m * 1000 + n * 10 + k)
        local A = ta and mm.randn{ k, m } or mm.randn{ m, k }
        local B = tb and mm.randn{ n, k } or mm.randn{ k, n }
        local C0 = mm.randn{ m, n }
        local tol = 2e-6 * math.sqrt(k) * 4
        for _, kern in ipairs(kernels()) do
          mm.gemm_kernel(kern)
          for _, ab in ipairs{ { 1, 0 }, { 0.7, 0.3 }, { -2, 1 } } do
            local C = C0:clone()
            C:addmm(A, B, { ta = ta, tb = tb, alpha = ab[1], beta = ab[2] })
            local err = max_err(C, reference(A, B, C0, ta, tb, ab[1], ab[2]))
            assert(err <= tol, ("kernel %s alpha %g beta %g: max error %g > %g"):format(kern, ab[1], ab[2], err, tol))
          end
        end
      end)
    end
  end

  it("sums long dot products in slices of k (x . W^T with a wide W)", function()
    -- n = 1030 rows of B: the dot-product kernel cuts k = 300 into slices of 256
    mm.seed(11)
    local A, B, C0 = mm.randn{ 6, 300 }, mm.randn{ 1030, 300 }, mm.randn{ 6, 1030 }
    local ref = reference(A, B, C0, false, true, 0.5, 2)
    for _, kern in ipairs(kernels()) do
      mm.gemm_kernel(kern)
      local C = C0:clone():addmm(A, B, { tb = true, alpha = 0.5, beta = 2 })
      local err = max_err(C, ref)
      assert(err < 2e-4, kern .. ": max error " .. err)
    end
  end)

  it("does not read C when beta is 0 (NaN in C stays out of the result)", function()
    for _, kern in ipairs(kernels()) do
      mm.gemm_kernel(kern)
      for _, tb in ipairs{ false, true } do
        local A, B = mm.randn{ 20, 9 }, tb and mm.randn{ 35, 9 } or mm.randn{ 9, 35 }
        local C = mm.full({ 20, 35 }, 0 / 0)
        C:addmm(A, B, { tb = tb, beta = 0 })
        local ref = reference(A, B, C, false, tb, 1, 0)
        assert(max_err(C, ref) < 1e-4, kern .. ": NaN from C leaked into the result")
      end
    end
  end)

  it("scales C by beta when k is 0 or alpha is 0", function()
    for _, kern in ipairs(kernels()) do
      mm.gemm_kernel(kern)
      local C = mm.full({ 3, 4 }, 2)
      C:addmm(mm.zeros{ 3, 0 }, mm.zeros{ 0, 4 }, { beta = 0.5 })
      assert.same(mm.full({ 3, 4 }, 1):totable(), C:totable())
      C:addmm(mm.randn{ 3, 5 }, mm.randn{ 5, 4 }, { alpha = 0, beta = 0 })
      assert.same(mm.zeros{ 3, 4 }:totable(), C:totable())
    end
  end)

  it("gives the same bits run to run and, for mmfuse's kernels, in every thread count", function()
    for _, kern in ipairs(kernels()) do
      mm.gemm_kernel(kern)
      mm.seed(5)
      -- the second size is big enough for mm_sgemm to split its columns over the threads
      for _, s in ipairs{ { 67, 300, 45 }, { 70, 260, 300 } } do
        local A, B = mm.randn{ s[1], s[2] }, mm.randn{ s[2], s[3] }
        local r1 = A:matmul(B)
        assert.is_true(r1 == A:matmul(B), kern)
        if kern ~= "generic" then -- OpenBLAS may split k across its threads
          local old = mm.threads(2)
          local r2 = A:matmul(B)
          mm.threads(old)
          assert.is_true(r1 == r2, kern)
          local ref = reference(A, B, r1, false, false, 1, 0)
          assert(max_err(r2, ref) < 1e-3, kern .. ": threaded product differs from the reference")
        end
      end
    end
  end)

  it("names the problem for bad addmm calls", function()
    local C = mm.zeros{ 2, 3 }
    util.assert_mentions(util.errors_with(C.addmm, C, mm.zeros{ 2, 4 }, mm.zeros{ 5, 3 }), "addmm", "2x4",
                         "5x3", "2x3")
    util.assert_mentions(util.errors_with(C.addmm, C, mm.zeros{ 4, 2 }, mm.zeros{ 4, 3 }, { ta = true, tb = true }), "addmm", "4x2", "transposed")
    util.assert_mentions(util.errors_with(C.addmm, C, mm.zeros{ 2 }, mm.zeros{ 2, 3 }), "addmm", "2-d")
    util.assert_mentions(util.errors_with(C.addmm, C, C, mm.zeros{ 3, 3 }), "addmm", "share memory")
    util.assert_mentions(util.errors_with(C.addmm, C, mm.zeros{ 2, 2 }, mm.zeros{ 2, 3 }, { ta = 1 }), "ta",
                         "boolean")
    util.assert_mentions(util.errors_with(C.addmm, C, mm.zeros{ 2, 2 }, mm.zeros{ 2, 3 }, { alpha = "x" }), "alpha",
                         "number")
    util.assert_mentions(util.errors_with(C.addmm, C, "x", mm.zeros{ 2, 3 }), "a")
  end)

  it("accepts transposed views of the operands (C = A^T . B^T)", function()
    local A, B = mm.randn{ 6, 4 }, mm.randn{ 5, 6 }
    local C = mm.zeros{ 4, 5 }
    C:addmm(A, B, { ta = true, tb = true, beta = 0 })
    local want = A:transpose():matmul(B:transpose())
    assert.is_true(mm.allclose(C, want, 1e-5))
  end)
end)
