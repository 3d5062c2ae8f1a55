-- The kernel level (csrc/core/cpu.h): mm.cpu() describes the machine, mm.gemm_kernel switches
-- every SIMD path, MMFUSE_KERNEL at load makes a process behave as a CPU of a lower level.
local mm = require "mmfuse"
local util = require "util"

-- run a Lua snippet in a fresh process with MMFUSE_KERNEL set; returns ok, output
local function child(level, code)
  local script = os.tmpname()
  util.write(script, ("package.path = %q\npackage.cpath = %q\n%s\n"):format(package.path, package.cpath, code))
  local env = level and ("MMFUSE_KERNEL='" .. level .. "' ") or "MMFUSE_KERNEL= "
  local p = io.popen(env .. "lua5.4 " .. script .. " 2>&1")
  local out = p:read("a")
  local ok = p:close() == true
  os.remove(script)
  return ok, out
end

local ORDER = { generic = 1, avx2 = 2, avx512 = 3 }

describe("mm.cpu", function()
  it("names the vendor, the brand, the levels and OpenBLAS's core", function()
    local c = mm.cpu()
    for _, k in ipairs { "vendor", "brand", "hw_best", "best", "kernel", "blas_core" } do
      assert.is_string(c[k], k)
      assert.is_true(#c[k] > 0, k)
    end
    assert.truthy(ORDER[c.hw_best] and ORDER[c.best] and ORDER[c.kernel])
    assert.is_true(ORDER[c.kernel] <= ORDER[c.best] and ORDER[c.best] <= ORDER[c.hw_best])
    assert.are.equal(mm.gemm_kernel(), c.kernel)
    assert.is_boolean(c.features.avx2)
    -- a level needs its instructions
    if ORDER[c.hw_best] >= 2 then assert.is_true(c.features.avx2 and c.features.fma) end
    if c.hw_best == "avx512" then assert.is_true(c.features.avx512f) end
  end)
end)

describe("MMFUSE_KERNEL", function()
  local hw = mm.cpu().hw_best

  it("sets the level and the ceiling of a process, for every level this CPU runs", function()
    for level, rank in pairs(ORDER) do
      if rank <= ORDER[hw] then
        local ok, out = child(level, [[
local mm = require "mmfuse"
local c = mm.cpu()
io.write(c.kernel, " ", c.best, " ", mm.gemm_kernel("auto"), " ", tostring(pcall(mm.gemm_kernel, "avx512")))]])
        assert.is_true(ok, out)
        assert.are.equal(("%s %s %s %s"):format(level, level, level, tostring(level == "avx512")), out)
      end
    end
  end)

  it("unset, empty or auto: the CPU's best level", function()
    for _, v in ipairs { false, "", "auto" } do
      local ok, out = child(v or nil, 'io.write(require("mmfuse").gemm_kernel())')
      assert.is_true(ok, out)
      assert.are.equal(hw, out)
    end
  end)

  it("'blas' is the old name of generic", function()
    local ok, out = child("blas", 'io.write(require("mmfuse").gemm_kernel())')
    assert.is_true(ok, out)
    assert.are.equal("generic", out)
  end)

  it("an unknown level fails the require, naming the variable and the known levels", function()
    local ok, out = child("sse9", 'require "mmfuse"')
    assert.is_false(ok)
    util.assert_mentions(out, "MMFUSE_KERNEL='sse9'", "avx512", "avx2", "generic")
  end)

  it("a level above the CPU's fails the require (or, on an AVX-512 CPU, mm.gemm_kernel above the ceiling)", function()
    if hw ~= "avx512" then
      local ok, out = child("avx512", 'require "mmfuse"')
      assert.is_false(ok)
      util.assert_mentions(out, "MMFUSE_KERNEL=avx512", "not supported by this CPU", mm.cpu().brand, hw)
    else
      local ok, out = child("avx2", 'local mm = require "mmfuse"; mm.gemm_kernel("avx512")')
      assert.is_false(ok)
      util.assert_mentions(out, "avx512 is above the level MMFUSE_KERNEL allows (avx2", mm.cpu().brand)
    end
  end)
end)

describe("mm.gemm_kernel", function()
  local prev
  before_each(function() prev = mm.gemm_kernel() end)
  after_each(function() mm.gemm_kernel(prev) end)

  it("switches every level up to the ceiling and back", function()
    local best = mm.cpu().best
    for level, rank in pairs(ORDER) do
      if rank <= ORDER[best] then
        assert.are.equal(level, mm.gemm_kernel(level))
        assert.are.equal(level, mm.cpu().kernel)
      else
        util.assert_mentions(util.errors_with(mm.gemm_kernel, level), level, mm.cpu().brand)
      end
    end
    assert.are.equal(best, mm.gemm_kernel("auto"))
    util.assert_mentions(util.errors_with(mm.gemm_kernel, "sse9"), "'sse9' is not a kernel level")
  end)
end)
