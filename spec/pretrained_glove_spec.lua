-- spec/pretrained_glove_spec.lua - the GloVe 6B 100d vectors `make pretrained` converts
-- (data/pretrained/glove-6B-100d.bin, word2vec binary) against the source JSON: a sample of 42
-- words whose decimal text tools/make_glove_fixture.js copied verbatim (spec/fixtures/glove).
-- The data is not committed: `make test` runs `make pretrained` first; without it this fails.
local mm = require "mmfuse"
local util = require "util"

local DATA = "data/pretrained/"
local BIN = DATA .. "glove-6B-100d.bin"
local FIX = "spec/fixtures/glove/"
local WORDS, DIM = 341479, 100

local need = util.need_pretrained

-- decimal text -> the float32 nearest to it, as a Lua number. The double nearest to the
-- decimal is rounded to float32 by string.pack; make_glove_fixture/pretrained.js refuse values
-- whose double lies on a float32 midpoint, so this equals rounding the decimal itself (strtof).
local function f32(s)
  local x = assert(tonumber(s), s)
  return (string.unpack("<f", string.pack("<f", x)))
end

-- {words = {...}, values = {{100 decimal strings}, ...}} of a GloVe text file
local function read_sample(path)
  local out = { words = {}, values = {} }
  for line in io.lines(path) do
    local f = {}
    for x in line:gmatch("%S+") do f[#f + 1] = x end
    assert(#f == DIM + 1, path .. ": a line with " .. #f .. " fields")
    out.words[#out.words + 1] = f[1]
    out.values[#out.values + 1] = { table.unpack(f, 2) }
  end
  return out
end

describe("data/pretrained GloVe (make pretrained)", function()
  local sample = read_sample(FIX .. "sample.txt")

  it("the sample covers frequent, rare, non-ASCII and digit words and the file's last word", function()
    local has = {}
    for _, w in ipairs(sample.words) do has[w] = true end
    assert.are.equal(42, #sample.words)
    for _, w in ipairs({ "the", ",", "€", "…", "mother-in-law", "h1n1", "sandberger" }) do
      assert.is_true(has[w], w)
    end
  end)

  it("load_vectors reads every sampled word with the source's float32 values, bit for bit", function()
    need(BIN)
    local v = mm.text.vocab_from_words({ "<unk>", table.unpack(sample.words) }, {})
    local t, cov = mm.text.load_vectors(BIN, v)
    assert.are.equal("word2vec-bin", cov.format)
    assert.are.equal(DIM, cov.dim)
    assert.are.equal(WORDS, cov.file_words)
    assert.are.equal(#sample.words, cov.total)
    assert.are.equal(#sample.words, cov.found)
    local rows = t:totable()
    for i, w in ipairs(sample.words) do
      local id = v:id(w)
      for j = 1, DIM do
        local want = f32(sample.values[i][j])
        if rows[id][j] ~= want then
          error(("%s value %d: %.9g in %s, %.9g (%s) in the source"):format(w, j, rows[id][j], BIN, want,
            sample.values[i][j]))
        end
      end
    end
    -- the same words through the GloVe text reader (strtof on the verbatim decimals)
    local tt, ct = mm.text.load_vectors(FIX .. "sample.txt", v)
    assert.are.equal("glove", ct.format)
    assert.are.equal(#sample.words, ct.found)
    assert.are.equal(0, (tt - t):abs():max())
    assert.are.equal(0, rows[1][1]) -- <unk> row: not in the file, left at zero
  end)

  it("keeps the source's word order: header, first word, sample order, last word", function()
    need(BIN)
    local f = assert(io.open(BIN, "rb"))
    local data = f:read("a")
    f:close()
    local header = ("%d %d\n"):format(WORDS, DIM)
    assert.are.equal(header, data:sub(1, #header))
    local want, at, pos, n, first, last = {}, {}, #header + 1, 0, nil, nil
    for i, w in ipairs(sample.words) do want[w] = i end
    while pos <= #data do
      local sp = data:find(" ", pos, true)
      local w = data:sub(pos, sp - 1)
      n = n + 1
      first = first or w
      last = w
      if want[w] then at[#at + 1] = want[w] end
      assert.are.equal("\n", data:sub(sp + 1 + 4 * DIM, sp + 1 + 4 * DIM))
      pos = sp + 2 + 4 * DIM
    end
    assert.are.equal(WORDS, n)
    assert.are.equal("the", first)
    assert.are.equal("sandberger", last)
    assert.are.equal(#sample.words, #at)
    for i = 1, #at do assert.are.equal(i, at[i]) end
  end)

  it("writes the source's unknown-word vector beside it", function()
    need(DATA .. "glove-6B-100d.unk.txt")
    local got, want = {}, {}
    for x in util.read(DATA .. "glove-6B-100d.unk.txt"):gmatch("%S+") do got[#got + 1] = f32(x) end
    for x in util.read(FIX .. "unk.txt"):gmatch("%S+") do want[#want + 1] = f32(x) end
    assert.are.equal(DIM, #want)
    assert.are.same(want, got)
  end)
end)
