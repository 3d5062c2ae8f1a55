-- Integrity of the committed data/emoji32 (no network, no module needed).
local ROOT = "data/emoji32/"
local COLUMNS = { "unified", "name", "tags", "caption", "group", "subgroup", "sentiment", "fold", "image" }
local GROUPS = {
  ["Smileys & Emotion"] = true, ["People & Body"] = true, ["Animals & Nature"] = true,
  ["Food & Drink"] = true, ["Travel & Places"] = true, ["Activities"] = true,
  ["Objects"] = true, ["Symbols"] = true, ["Flags"] = true,
}

local function read_all(path, mode)
  local f = assert(io.open(path, mode or "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = s:find(sep, i, true)
    if not j then out[#out + 1] = s:sub(i); return out end
    out[#out + 1] = s:sub(i, j - 1)
    i = j + #sep
  end
end

local function fnv1a32(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xFFFFFFFF
  end
  return h
end

local function be32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a << 24) | (b << 16) | (c << 8) | d)
end

-- parse once for all tests
local text = read_all(ROOT .. "manifest.tsv")
local lines = split(text, "\n")
local header = split(lines[1], "\t")
local rows = {}
for n = 2, #lines do
  if lines[n] ~= "" then rows[#rows + 1] = { line = n, fields = split(lines[n], "\t") } end
end

local function field(r, name)
  for i, c in ipairs(COLUMNS) do if c == name then return r.fields[i] end end
  error("no column " .. name)
end

describe("data/emoji32 manifest", function()
  it("has the documented header and LF line ends", function()
    assert.are.same(COLUMNS, header)
    assert.is_nil(text:find("\r", 1, true))
    assert.are.equal("\n", text:sub(-1))
  end)

  it("has one row per base emoji (1906), 9 fields each, unique unified codes", function()
    assert.are.equal(1906, #rows)
    local seen = {}
    for _, r in ipairs(rows) do
      assert.are.equal(9, #r.fields, "line " .. r.line)
      local u = field(r, "unified")
      assert.truthy(u:match("^%x+$") or u:match("^%x+[%-%x]*%x$"), "line " .. r.line .. ": " .. u)
      assert.are.equal(u:upper(), u)
      assert.is_nil(seen[u], "duplicate " .. u)
      seen[u] = true
      -- no skin-tone variants (U+1F3FB..U+1F3FF)
      for _, cp in ipairs(split(u, "-")) do
        local v = tonumber(cp, 16)
        assert.is_false(v >= 0x1F3FB and v <= 0x1F3FF, "skin tone in " .. u)
      end
    end
  end)

  it("has exactly the 9 Unicode groups (no Component), all present", function()
    local count = {}
    for _, r in ipairs(rows) do
      local g = field(r, "group")
      assert.is_true(GROUPS[g] == true, "line " .. r.line .. ": group " .. g)
      count[g] = (count[g] or 0) + 1
    end
    local n = 0
    for g in pairs(GROUPS) do
      assert.is_true((count[g] or 0) > 50, g)
      n = n + 1
    end
    assert.are.equal(9, n)
  end)

  it("has non-empty text fields without control characters", function()
    for _, r in ipairs(rows) do
      for _, c in ipairs({ "name", "caption", "subgroup", "tags" }) do
        local v = field(r, c)
        assert.is_true(#v > 0, "line " .. r.line .. ": empty " .. c)
        assert.is_nil(v:find("[%c]"), "line " .. r.line .. ": control char in " .. c)
        assert.are.equal(v, (v:gsub("^%s+", ""):gsub("%s+$", "")), "line " .. r.line .. ": padded " .. c)
      end
    end
  end)

  it("captions are two distinct tags of the row, or its name", function()
    local from_tags = 0
    for _, r in ipairs(rows) do
      local cap, tags = field(r, "caption"), split(field(r, "tags"), "|")
      local ok = (cap == field(r, "name"))
      for i = 1, #tags do
        for j = 1, #tags do
          if i ~= j and tags[i] .. " " .. tags[j] == cap then ok = true; from_tags = from_tags + 1 end
        end
      end
      assert.is_true(ok, "line " .. r.line .. ": caption '" .. cap .. "'")
    end
    assert.is_true(from_tags > #rows * 0.9)
  end)

  it("folds are FNV-1a 32-bit of unified mod 5, and every fold is used", function()
    local per = { [0] = 0, 0, 0, 0, 0 }
    for _, r in ipairs(rows) do
      local f = field(r, "fold")
      assert.truthy(f:match("^[0-4]$"), "line " .. r.line .. ": fold " .. f)
      assert.are.equal(fnv1a32(field(r, "unified")) % 5, tonumber(f), "line " .. r.line)
      per[tonumber(f)] = per[tonumber(f)] + 1
    end
    for k = 0, 4 do assert.is_true(per[k] > #rows / 10, "fold " .. k) end
    -- known FNV-1a values
    assert.are.equal(0xe40c292c, fnv1a32("a"))
    assert.are.equal(0xbf9cf968, fnv1a32("foobar"))
    assert.are.equal(0x811c9dc5, fnv1a32(""))
  end)

  it("sentiment is empty or negative/neutral/positive, 248 rated with all three classes", function()
    local count = {}
    for _, r in ipairs(rows) do
      local s = field(r, "sentiment")
      assert.is_true(s == "" or s == "negative" or s == "neutral" or s == "positive",
        "line " .. r.line .. ": sentiment '" .. s .. "'")
      count[s] = (count[s] or 0) + 1
    end
    assert.are.equal(248, (count.negative or 0) + (count.neutral or 0) + (count.positive or 0))
    assert.is_true(count.negative > 0 and count.neutral > 0 and count.positive > 0)
  end)

  it("every image exists and is a 32x32 8-bit RGBA PNG", function()
    local total = 0
    for _, r in ipairs(rows) do
      local rel = field(r, "image")
      assert.are.equal("images/" .. field(r, "unified") .. ".png", rel)
      local f = io.open(ROOT .. rel, "rb")
      assert.is_not_nil(f, "missing " .. ROOT .. rel)
      local png = f:read("a")
      f:close()
      total = total + #png
      assert.are.equal("\137PNG\r\n\26\n", png:sub(1, 8), rel)
      assert.are.equal(13, be32(png, 9), rel)          -- IHDR length
      assert.are.equal("IHDR", png:sub(13, 16), rel)
      assert.are.equal(32, be32(png, 17), rel)         -- width
      assert.are.equal(32, be32(png, 21), rel)         -- height
      assert.are.equal(8, png:byte(25), rel)           -- bit depth
      assert.are.equal(6, png:byte(26), rel)           -- colour type RGBA
      assert.are.equal("IEND", png:sub(-8, -5), rel)
    end
    assert.is_true(total > 1e6 and total < 4e6, "total image bytes " .. total)
  end)
end)

describe("data/emoji32 provenance", function()
  it("ATTRIBUTION names every source and licence", function()
    local a = read_all(ROOT .. "ATTRIBUTION")
    for _, needle in ipairs({ "emoji-datasource-twitter@16.0.0", "Twemoji", "CC BY 4.0",
                              "emoji-datasource@16.0.0", "MIT", "emojibase-data@17.0.0", "CLDR",
                              "wink-sentiment@5.0.2", "Kralj Novak", "CC BY-SA 4.0" }) do
      assert.truthy(a:find(needle, 1, true), "ATTRIBUTION lacks " .. needle)
    end
  end)

  it("tools/npm_sources.txt pins every tarball with a sha256", function()
    local n = 0
    for line in io.lines("tools/npm_sources.txt") do
      line = line:gsub("#.*", "")
      if line:match("%S") then
        local spec, sha, use = line:match("^(%S+@%d+%.%d+%.%d+)%s+(%x+)%s+(%S+)%s*$")
        assert.is_not_nil(spec, "bad line: " .. line)
        assert.are.equal(64, #sha)
        -- emoji32/bench: tools/build_emoji32.py; pretrained/fixtures/peers: the Node tools (tools/npm_pin.js)
        local uses = { emoji32 = true, bench = true, pretrained = true, fixtures = true, peers = true }
        assert.is_true(uses[use], "unknown use " .. use)
        n = n + 1
      end
    end
    assert.is_true(n >= 7)
  end)
end)
