-- mm.io.load_npy / save_npy: float32/float64 C-order arrays, atomic writes,
-- and every malformed .npy a Lua error naming the file and the problem.
local mm = require "mmfuse"
local util = require "util"

local DIR = "spec/fixtures/npy/"
local expected = dofile(DIR .. "expected.lua")

local function flat(t) return t:reshape{ t:numel() }:totable() end

local errors_with = util.errors_with

local assert_mentions = util.assert_mentions

local read = util.read

local tmpdir = util.tmpdir

local function listdir(d)
  local p = io.popen("ls -A '" .. d .. "'")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

describe("io.load_npy", function()
  it("reads float32 exactly", function()
    local t = mm.io.load_npy(DIR .. "f32_3x4.npy")
    assert.same({ 3, 4 }, t:shape())
    assert.same(expected.f32_3x4, flat(t))
  end)

  it("converts float64 to float32 and keeps 3 dimensions", function()
    local t = mm.io.load_npy(DIR .. "f64_2x3x2.npy")
    assert.same({ 2, 3, 2 }, t:shape())
    local v = flat(t)
    for i = 1, 12 do assert.near(expected.f64_2x3x2[i], v[i], 1e-6) end
  end)

  it("reads a 0-d array and an empty 0x5 array", function()
    local s = mm.io.load_npy(DIR .. "f32_scalar.npy")
    assert.same({}, s:shape())
    assert.equal(2.5, s:item())
    local e = mm.io.load_npy(DIR .. "f32_empty.npy")
    assert.same({ 0, 5 }, e:shape())
  end)
end)

describe("io.save_npy", function()
  it("round-trips tensors of 1 to 4 dimensions and a scalar", function()
    local d = tmpdir()
    mm.seed(3)
    for _, shape in ipairs{ { 7 }, { 3, 5 }, { 2, 3, 4 }, { 2, 1, 3, 2 }, { 0, 4 } } do
      local t = mm.randn(shape)
      local p = d .. "/a.npy"
      mm.io.save_npy(p, t)
      local u = mm.io.load_npy(p)
      assert.same(shape, u:shape())
      assert.is_true(mm.allclose(t, u, 0))
    end
    mm.io.save_npy(d .. "/s.npy", mm.tensor(1.25))
    assert.equal(1.25, mm.io.load_npy(d .. "/s.npy"):item())
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("writes the header numpy writes (magic, version 1.0, 64-byte aligned)", function()
    local d = tmpdir()
    mm.io.save_npy(d .. "/h.npy", mm.zeros(3, 4))
    local s = read(d .. "/h.npy")
    assert.equal("\147NUMPY\1\0", s:sub(1, 8))
    local hlen = s:byte(9) + 256 * s:byte(10)
    assert.equal(0, (10 + hlen) % 64)
    assert.equal(10 + hlen + 48, #s)
    local header = s:sub(11, 10 + hlen)
    assert.truthy(header:find("'descr': '<f4'", 1, true))
    assert.truthy(header:find("'fortran_order': False", 1, true))
    assert.truthy(header:find("'shape': (3, 4)", 1, true))
    assert.equal("\n", header:sub(-1))
    -- 1-d shapes are written as (n,)
    mm.io.save_npy(d .. "/v.npy", mm.zeros(5))
    assert.truthy(read(d .. "/v.npy"):find("'shape': (5,)", 1, true))
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("replaces an existing file atomically and leaves no temp file", function()
    local d = tmpdir()
    local p = d .. "/f.npy"
    mm.io.save_npy(p, mm.ones(2, 2))
    mm.io.save_npy(p, mm.full({ 3 }, 4))
    assert.same({ 4, 4, 4 }, mm.io.load_npy(p):totable())
    assert.same({ "f.npy" }, listdir(d))
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("fails cleanly into a missing folder and keeps the old file on failure", function()
    local d = tmpdir()
    assert_mentions(errors_with(mm.io.save_npy, d .. "/no/such/dir/x.npy", mm.ones(2)), d .. "/no/such/dir/x.npy")
    -- a directory where the file should go: rename fails, nothing is left behind
    assert(os.execute("mkdir '" .. d .. "/taken.npy'"))
    assert_mentions(errors_with(mm.io.save_npy, d .. "/taken.npy", mm.ones(2)), "taken.npy", "rename")
    assert.same({ "taken.npy" }, listdir(d))
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("rejects a non-tensor", function()
    assert_mentions(errors_with(mm.io.save_npy, "/tmp/x.npy", { 1, 2 }), "tensor expected")
  end)
end)

describe("bad .npy input", function()
  local cases = {
    { "int64.npy", "dtype '<i8' not supported" },
    { "bigendian.npy", "dtype '>f4' not supported" },
    { "structured.npy", "structured" },
    { "fortran.npy", "fortran_order" },
    { "nine_dims.npy", "more than 8 dimensions" },
    { "truncated.npy", "truncated: the shape needs 48 data bytes, the file has 43" },
    { "trailing.npy", "trailing bytes" },
    { "bad_magic.npy", "not a .npy file" },
    { "bad_header.npy", "shape is not a tuple" },
    { "header_cut.npy", "truncated .npy header" },
    { "empty.npy", "empty file" },
    { "missing.npy", "cannot open" },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " is an error naming the file and the problem", function()
      local path = DIR .. case[1]
      assert_mentions(errors_with(mm.io.load_npy, path), path, case[2])
    end)
  end

  it("rejects a folder and a header that declares a huge shape", function()
    assert_mentions(errors_with(mm.io.load_npy, "spec/fixtures/npy"), "spec/fixtures/npy")
    local d = tmpdir()
    local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
    dict = dict .. string.rep(" ", 64 - (10 + #dict + 1) % 64) .. "\n"
    local f = assert(io.open(d .. "/big.npy", "wb"))
    f:write("\147NUMPY\1\0", string.char(#dict % 256, #dict // 256), dict, string.rep("\0", 16))
    f:close()
    assert_mentions(errors_with(mm.io.load_npy, d .. "/big.npy"), d .. "/big.npy", "too large")
    os.execute("rm -rf '" .. d .. "'")
  end)
end)
