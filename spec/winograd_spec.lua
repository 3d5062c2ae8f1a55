-- mm.nn.conv2d_winograd (csrc/nn/winograd.c): Winograd F(2x2, 3x3) against im2col conv2d,
-- forward and (transposed) as the data gradient, with the AVX-512 and the portable transforms.
local mm = require "mmfuse"
local util = require "util"

local function kernels() return util.gemm_kernels({ "avx2", "avx512" }) end

local close = util.assert_close

describe("conv2d_winograd", function()
  local prev
  before_each(function() prev = mm.gemm_kernel() end)
  after_each(function() mm.gemm_kernel(prev) end)

  -- odd and even sizes, every padding, channel counts around the vector width,
  -- enough tile rows for several chunks (128 tiles) in the larger ones
  local cases = { { 2, 16, 32, 16, 16, 1 }, { 3, 5, 7, 9, 11, 1 }, { 1, 4, 6, 5, 5, 0 }, { 2, 3, 4, 6, 7, 2 },
                  { 1, 1, 1, 3, 3, 0 }, { 1, 2, 3, 1, 1, 1 }, { 4, 17, 33, 20, 13, 1 }, { 9, 8, 8, 8, 8, 1 } }
  for _, c in ipairs(cases) do
    local N, C, O, H, W, p = table.unpack(c)
    it(("matches conv2d and its data gradient: x %dx%dx%dx%d, %d outputs, padding %d"):format(N, C, H, W, O, p),
      function()
        mm.seed(N * 100 + C * 10 + p)
        local x, w, b = mm.randn(N, C, H, W), mm.randn(O, C, 3, 3), mm.randn(O)
        local y = mm.nn.conv2d(x, w, b, { padding = p })
        local gy = mm.randn(table.unpack(y:shape()))
        local gx = mm.nn.conv2d_backward(x, w, b, gy, { padding = p })
        local relu = y:relu()
        for _, k in ipairs(kernels()) do
          mm.gemm_kernel(k)
          close(mm.nn.conv2d_winograd(x, w, b, { padding = p }), y, k .. " forward")
          close(mm.nn.conv2d_winograd(x, w, b, { padding = p, relu = true }), relu, k .. " forward + relu")
          close(mm.nn.conv2d_winograd(x, w, nil, { padding = p }), mm.nn.conv2d(x, w, nil, { padding = p }),
                k .. " no bias")
          close(mm.nn.conv2d_winograd(gy, w, nil, { padding = 2 - p, transposed = true }), gx, k .. " data gradient")
        end
      end)
  end

  it("gives the same bits with the AVX-512 and the portable transforms", function()
    local ks = kernels()
    mm.seed(3)
    local x, w = mm.randn(2, 12, 10, 9), mm.randn(7, 12, 3, 3)
    local first
    for _, k in ipairs(ks) do
      mm.gemm_kernel(k)
      local y = mm.nn.conv2d_winograd(x, w, nil, { padding = 1 })
      if first then
        -- the GEMM kernels may round differently; the transforms alone must not add more
        close(y, first, "kernels agree")
      end
      first = first or y
      assert.is_true(y == mm.nn.conv2d_winograd(x, w, nil, { padding = 1 }), k .. ": run to run")
    end
  end)

  it("names the problem for bad arguments", function()
    local x, w = mm.zeros(1, 4, 5, 5), mm.zeros(6, 4, 3, 3)
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, x, mm.zeros(6, 4, 5, 5)), "conv2d_winograd",
                         "3, 3", "6x4x5x5")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, mm.zeros(1, 3, 5, 5), w), "conv2d_winograd",
                         "1x3x5x5", "expects 4")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, x, w, nil, { transposed = true }), "transposed",
                         "expects 6")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, x, w, nil, { padding = 3 }), "padding", "0, 1 or 2")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, x, w, mm.zeros(5)), "bias", "expected 6")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, mm.zeros(4, 5, 5), w), "4-d", "4x5x5")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, mm.zeros(1, 4, 1, 1), w), "conv2d_winograd",
                         "larger than the padded input")
    util.assert_mentions(util.errors_with(mm.nn.conv2d_winograd, x, w, nil, { relu = 1 }), "relu", "boolean")
  end)
end)
