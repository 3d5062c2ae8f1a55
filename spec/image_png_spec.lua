-- The PNG fast path (csrc/image/png.c) against the general stb path
-- (decode.c): the same pixels on every file it takes, the general path's
-- result (pixels or error) on everything else, also on mutated files.
-- Fixtures: spec/fixtures/image/png/bundle.bin, written by make.py there.
local mm = require "mmfuse"
local core = require "mmfuse.core"

local DIR = "spec/fixtures/image/png/"
local dec = core.image._decode_rgb8

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function bundle()
  local s, i, files, names = read(DIR .. "bundle.bin"), 1, {}, {}
  while i <= #s do
    local name, data
    name, i = string.unpack(">s2", s, i)
    data, i = string.unpack(">s4", s, i)
    files[name] = data
    names[#names + 1] = name
  end
  return files, names
end

local files, names = bundle()

-- the result of one path as a comparable table
local function run(bytes, path)
  local px, w, h = dec(bytes, path)
  if px then return { ok = true, px = px, w = w, h = h } end
  return { ok = false, msg = w }
end

describe("PNG fast path", function()
  it("has its fixtures", function()
    assert.is_true(#names >= 130)
  end)

  it("takes every 8-bit grey/grey+alpha/RGB/RGBA file and gives stb's pixels", function()
    local taken = 0
    for _, name in ipairs(names) do
      local b = files[name]
      local g = run(b, "general")
      assert.is_true(g.ok, name .. ": " .. tostring(g.msg))
      local f = run(b, "fast")
      if name:match("^decline_") then
        assert.is_false(f.ok, name)
        assert.equal("declined", f.msg)
      else
        assert.is_true(f.ok, name .. " was declined")
        taken = taken + 1
        assert.equal(g.w, f.w, name)
        assert.equal(g.h, f.h, name)
        assert.is_true(g.px == f.px, name .. ": pixels differ")
      end
      assert.same(g, run(b, "auto"))
    end
    assert.equal(#names - 3, taken)
  end)

  it("gives stb's pixels on the emoji32 images", function()
    local list = {}
    for line in io.lines("data/emoji32/manifest.tsv") do
      local p = line:match("\t(images/[^\t]+%.png)")
      if p then list[#list + 1] = "data/emoji32/" .. p end
    end
    assert.is_true(#list > 100)
    for k = 1, #list, math.max(1, #list // 60) do
      local b = read(list[k])
      local f, g = run(b, "fast"), run(b, "general")
      assert.is_true(f.ok and g.ok, list[k])
      assert.is_true(f.px == g.px and f.w == g.w and f.h == g.h, list[k])
    end
  end)

  it("writes straight into a slot of the decoded size, and resizes otherwise, as before", function()
    for _, name in ipairs{ "ct6_17x9_fmix.png", "ct2_7x5_f4.png", "ct4_17x9_fixed.png", "ct0_7x5_split.png" } do
      local b = files[name]
      local g = run(b, "general")
      local t = mm.image.decode(b, { size = { g.h, g.w } })
      assert.same({ 3, g.h, g.w }, t:shape())
      for y = 1, g.h do
        for x = 1, g.w do
          for c = 1, 3 do
            local want = g.px:byte(((y - 1) * g.w + (x - 1)) * 3 + c)
            assert.equal(want, math.floor(t:get(c, y, x) * 255 + 0.5))
          end
        end
      end
      -- a resize goes through the decoded pixels: same as decoding at native size first
      local r = mm.image.decode(b, { size = 4 })
      assert.same({ 3, 4, 4 }, r:shape())
    end
  end)

  it("agrees with the general path on mutated files (pixels or the same error)", function()
    local seed = 12345
    local function rnd(n) -- deterministic LCG, 1..n
      seed = (seed * 1103515245 + 12345) % 2147483648
      return (seed >> 16) % n + 1
    end
    local base = {}
    for _, name in ipairs(names) do
      if not name:match("^decline_") and #files[name] < 4000 then base[#base + 1] = files[name] end
    end
    local fast_ok, general_fail = 0, 0
    local total = 0
    for _ = 1, 1500 do
      local b = base[rnd(#base)]
      local kind = rnd(4)
      if kind == 1 then -- flip bytes after the header (IDAT / zlib data mostly)
        for _ = 1, rnd(3) do
          local i = 33 + rnd(#b - 33)
          b = b:sub(1, i - 1) .. string.char((b:byte(i) ~ (1 << (rnd(8) - 1))) & 255) .. b:sub(i + 1)
        end
      elseif kind == 2 then -- truncate
        b = b:sub(1, 33 + rnd(#b - 33))
      elseif kind == 3 then -- a random byte
        local i = 9 + rnd(#b - 9)
        b = b:sub(1, i - 1) .. string.char(rnd(256) - 1) .. b:sub(i + 1)
      else -- cut bytes out of the middle
        local i = 34 + rnd(#b - 40)
        b = b:sub(1, i) .. b:sub(i + rnd(6) + 1)
      end
      local g, f = run(b, "general"), run(b, "fast")
      if f.ok then
        fast_ok = fast_ok + 1
        assert.is_true(g.ok, "the fast path took a file stb refuses: " .. tostring(g.msg))
        assert.is_true(f.px == g.px and f.w == g.w and f.h == g.h, "pixels differ on a mutated file")
      end
      if not g.ok then general_fail = general_fail + 1 end
      total = total + 1
      assert.same(g, run(b, "auto"))
    end
    -- both kinds of outcome were exercised
    assert.is_true(fast_ok > 50, "fast path took " .. fast_ok)
    assert.is_true(general_fail > 50, "stb refused " .. general_fail)
  end)

  it("declines what is not a PNG and leaves the error to the general path", function()
    for _, b in ipairs{ "", "GIF89a", "\137PNG\r\n\26\n", ("x"):rep(100) } do
      local f = run(b, "fast")
      assert.is_false(f.ok)
      local g, a = run(b, "general"), run(b, "auto")
      assert.is_false(g.ok)
      assert.same(g, a)
    end
  end)

  it("refuses the PNGs on which stb 2.27 misbehaves, naming them", function()
    -- a 7x5 RGB stream whose match uses distance symbol 30: stb copied uninitialised memory
    local b = read(DIR .. "dist30-uninit.png")
    for _, path in ipairs{ "general", "auto" } do
      local r = run(b, path)
      assert.is_false(r.ok)
      assert.matches("invalid deflate distance code", r.msg)
    end
    local ok, err = pcall(mm.image.decode, b, { name = "x.png" })
    assert.is_false(ok)
    assert.matches("x.png: corrupt or truncated image", err)
    -- an IDAT declaring 1.7 GB in a 300-byte file: stb grew its buffer to that size first
    b = read(DIR .. "idat-past-end.png")
    for _, path in ipairs{ "general", "auto" } do
      local r = run(b, path)
      assert.is_false(r.ok)
      assert.matches("IDAT chunk runs past the end", r.msg)
    end
  end)

  it("is not part of mm.image", function()
    assert.is_nil(mm.image._decode_rgb8)
  end)
end)
