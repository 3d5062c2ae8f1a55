-- spec/text_spec.lua - tokenizer, vocabulary, hashed n-grams, word vectors.
local mm = require "mmfuse"
local T = mm.text
local FIX = "spec/fixtures/text/"

local function toks(s, o) return T.tokenize(s, o) end

local function errmatch(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.is_truthy(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end

-- parse a text vector file in Lua (the reference for the C reader)
local function read_text_vectors(path, header)
  local out, first = {}, header
  for l in io.lines(path) do
    if first then
      first = false
    else
      local f = {}
      for x in l:gmatch("%S+") do f[#f + 1] = x end
      local v = {}
      for j = 2, #f do v[#v + 1] = tonumber(f[j]) end
      out[f[1]] = v
    end
  end
  return out
end

local function row(t, i) return t:totable()[i] end

local function assert_row(t, i, ref)
  local r = row(t, i)
  assert.are.equal(#ref, #r)
  for j = 1, #ref do assert.is_true(math.abs(r[j] - ref[j]) < 1e-6, ("row %d col %d: %g vs %g"):format(i, j, r[j], ref[j])) end
end

describe("mm.text.tokenize", function()
  it("lowercases ASCII and splits on whitespace and punctuation", function()
    assert.are.same({ "hello", "world", "it", "s", "ok" }, toks("Hello,  World!\t(It_s) OK..."))
    assert.are.same({ "a", "b", "c" }, toks("a-b/c"))
  end)

  it("keeps an apostrophe inside a word and decimal marks between digits", function()
    assert.are.same({ "don't", "rock'n'roll", "it's" }, toks("Don't rock'n'roll 'it’s'"))
    assert.are.same({ "3.14", "1,000", "end" }, toks("3.14 1,000. end,"))
  end)

  it("folds case in Latin-1, Latin Extended, Greek, Cyrillic, Armenian, fullwidth", function()
    assert.are.same({ "àéîõüç", "ÿ", "łőžș", "ß", "ǆ", "ḁạỳ" }, toks("ÀÉÎÕÜÇ Ÿ ŁŐŽȘ ẞ Ǆ ḀẠỲ"))
    assert.are.same({ "σίσυφοσ", "αθηνά" }, toks("ΣΊΣΥΦΟΣ ΑΘΗΝΆ"))
    assert.are.same({ "привет", "мир", "ёж", "ґанок" }, toks("ПРИВЕТ Мир ЁЖ Ґанок"))
    assert.are.same({ "բարեւ" }, toks("ԲԱՐԵՒ"))
    assert.are.same({ "ａｂｃ" }, toks("ＡＢＣ"))
    -- accents are kept (no stripping), ß and dotless ı unchanged, no NFC
    assert.are.same({ "café", "straße", "ı" }, toks("CAFÉ straße ı"))
    assert.are_not.equal(toks("e\u{301}")[1], toks("\u{e9}")[1])
  end)

  it("can keep case and punctuation when asked", function()
    assert.are.same({ "Hi", "!", "You", "?" }, toks("Hi! You?", { lowercase = false, keep_punct = true }))
    assert.are.same({ "hi", "“", "x", "”" }, toks("hi “x”", { keep_punct = true }))
  end)

  it("splits on Unicode punctuation and spaces", function()
    assert.are.same({ "quoted", "dash", "hola", "qué", "a", "b" },
      toks("“quoted” — dash… ¡hola! ¿qué?\u{3000}a\u{a0}b"))
    assert.are.same({ "x", "y", "z" }, toks("x\u{2028}y\u{200b}z"))
    assert.are.same({ "日", "本" }, toks("日、本。"))
  end)

  it("makes each emoji a token, splitting it from adjacent words", function()
    assert.are.same({ "i", "😀", "you", "😀", "😀" }, toks("I😀you 😀😀"))
  end)

  it("keeps ZWJ sequences, skin tones, flags and keycaps whole; drops variation selectors", function()
    local family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}"
    assert.are.same({ family }, toks(family))
    assert.are.same({ "👍🏽", "ok" }, toks("👍🏽ok"))
    assert.are.same({ "🇫🇷", "🇩🇪" }, toks("🇫🇷🇩🇪"))
    assert.are.same({ "1\u{20E3}", "#\u{20E3}" }, toks("1\u{FE0F}\u{20E3} #\u{20E3}"))
    -- the text and emoji presentations of a heart are one token
    assert.are.same(toks("\u{2764}"), toks("\u{2764}\u{FE0F}"))
    local rainbow = "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}"
    assert.are.same({ "\u{1F3F3}\u{200D}\u{1F308}" }, toks(rainbow))
    -- a stray ZWJ or selector makes no token; a dangling ZWJ does not glue
    assert.are.same({ "a", "😀", "b" }, toks("a \u{200D}\u{FE0F}😀\u{200D} b"))
    -- between letters a ZWJ / ZWNJ stays in the word (Indic, Persian)
    assert.are.same({ "क्\u{200D}ष", "می\u{200C}خواهم" }, toks("क्\u{200D}ष \u{200C}می\u{200C}خواهم\u{200C}"))
  end)

  it("makes each Han ideograph a token and keeps kana / Hangul runs", function()
    assert.are.same({ "我", "爱", "北", "京" }, toks("我爱北京"))
    assert.are.same({ "こんにちは", "カタカナ" }, toks("こんにちは カタカナ"))
    assert.are.same({ "한국어", "텍스트" }, toks("한국어 텍스트"))
    assert.are.same({ "東", "京", "タワー" }, toks("東京タワー"))
  end)

  it("replaces invalid UTF-8 by U+FFFD per maximal subpart", function()
    local R = "\u{FFFD}"
    assert.are.same({ "ab" .. R .. "cd" }, toks("ab\xffcd"))
    assert.are.same({ R, "x" }, toks("\xe2\x82 x"))                 -- truncated 3-byte sequence: one U+FFFD
    assert.are.same({ R .. R }, toks("\xc0\xaf"))                   -- overlong: two subparts
    assert.are.same({ R .. R .. R }, toks("\xed\xa0\x80"))          -- surrogate
    assert.are.same({ "abc" .. R }, toks("abc\xf0\x9f\x98"))        -- cut at the end of the buffer
    assert.are.same({ R }, toks("\x80"))
    assert.are.same({ R .. R }, toks("\xf5\xff"))
  end)

  it("treats NUL bytes as separators and never drops text after them", function()
    assert.are.same({ "nul", "byte", "after" }, toks("nul\0byte\0\0after"))
    assert.are.same({}, toks("\0"))
  end)

  it("returns an empty list for empty or blank text", function()
    assert.are.same({}, toks(""))
    assert.are.same({}, toks(" \t\n\r "))
    assert.are.same({}, toks("!?...,;"))
  end)

  it("always yields non-empty valid UTF-8 tokens without NUL on random bytes", function()
    math.randomseed(7)
    local pieces = { "a", "Z", " ", ".", "\0", "\xff", "\xe2", "\x82", "\x80", "\u{1F600}", "\u{200D}", "\u{FE0F}",
      "\u{1F3FD}", "\u{1F1EB}", "1", "\u{20E3}", "é", "'", "日", "\xf0\x9f", "\xed" }
    for _ = 1, 1500 do
      local b = {}
      for k = 1, math.random(0, 12) do
        if math.random() < 0.3 then b[k] = string.char(math.random(0, 255)) else b[k] = pieces[math.random(#pieces)] end
      end
      local s = table.concat(b)
      for _, t in ipairs(toks(s)) do
        assert.is_true(#t > 0)
        assert.is_truthy(utf8.len(t), "token not valid UTF-8 for input " .. ("%q"):format(s))
        assert.is_falsy(t:find("\0", 1, true))
      end
    end
  end)

  it("rejects non-string input naming the argument", function()
    errmatch(function() T.tokenize(nil) end, "bad argument #1.*string expected, got nil")
    errmatch(function() T.tokenize({}) end, "string expected, got table")
    errmatch(function() T.tokenize("x", { lowercase = 1 }) end, "option 'lowercase' must be a boolean")
  end)
end)

describe("mm.text.vocab", function()
  local texts = { "b a c a", "a b d", "c e", "a", "f" }

  it("counts tokens, sorts by count then bytes, with <unk> first", function()
    local v = T.vocab(texts)
    assert.are.same({ "<unk>", "a", "b", "c", "d", "e", "f" }, v:words())
    assert.are.same({ 0, 4, 2, 2, 1, 1, 1 }, v:counts())
    assert.are.equal(7, v:size())
    assert.are.equal(7, #v)
    assert.are.equal(2, v:id("a"))
    assert.is_nil(v:id("zzz"))
    assert.are.equal("c", v:word(4))
  end)

  it("applies min_count and max_size (max_size does not count <unk>)", function()
    assert.are.same({ "<unk>", "a", "b", "c" }, T.vocab(texts, { min_count = 2 }):words())
    assert.are.same({ "<unk>", "a", "b" }, T.vocab(texts, { max_size = 2 }):words())
    assert.are.same({ "a", "b", "c" }, T.vocab(texts, { max_size = 3, unk = "drop" }):words())
  end)

  it("is deterministic whatever the order of the input", function()
    local rev = {}
    for i = #texts, 1, -1 do rev[#rev + 1] = texts[i]:reverse() end
    assert.are.same(T.vocab(texts, { max_size = 4 }):words(), T.vocab(rev, { max_size = 4 }):words())
  end)

  it("accepts token lists and false (no text)", function()
    local v = T.vocab({ { "Keep", "AS", "is" }, false, "Keep" }, { unk = "drop" })
    assert.are.same({ "AS", "Keep", "is", "keep" }, v:words())
  end)

  it("maps unknown words to <unk> or drops them", function()
    local vu = T.vocab(texts)
    local ids = vu:encode({ "a zzz b" })
    assert.are.same({ 2, 1, 3 }, ids)
    local vd = T.vocab(texts, { unk = "drop" })
    ids = vd:encode({ "a zzz b" })
    assert.are.same({ 1, 2 }, ids)
  end)

  it("round-trips through words() + options()", function()
    local v = T.vocab(texts, { ngrams = 3, buckets = 97, min_count = 1 })
    local w = T.vocab_from_words(v:words(), v:options())
    assert.are.same(v:words(), w:words())
    assert.are.same(v:options(), w:options())
    local s = { "a b c d e f", "zzz a", "" }
    local i1, o1, m1 = v:encode(s)
    local i2, o2, m2 = w:encode(s)
    assert.are.same(i1, i2)
    assert.are.same(o1, o2)
    assert.are.same(m1, m2)
  end)

  it("prints a summary", function()
    local s = tostring(T.vocab(texts, { ngrams = 2, buckets = 10 }))
    assert.is_truthy(s:find("Vocab%(7 words incl. <unk>, ngrams=2, buckets=10, rows=17"))
    assert.is_truthy(s:find("top: a b c"))
  end)

  it("rejects bad arguments and options", function()
    errmatch(function() T.vocab("abc") end, "bad argument #1.*texts: table of texts expected, got string")
    errmatch(function() T.vocab({ "a", 3 }) end, "texts%[2%]: text %(string%), token list %(table%) or false expected, got number")
    errmatch(function() T.vocab({ { "a", 1 } }) end, "texts%[1%]%[2%]: token %(string%) expected")
    errmatch(function() T.vocab({ { "" } }) end, "texts%[1%]%[1%]: empty token")
    errmatch(function() T.vocab({ "a" }, { min_count = 0 }) end, "min_count must be >= 1")
    errmatch(function() T.vocab({ "a" }, { max_size = -1 }) end, "max_size must be >= 0")
    errmatch(function() T.vocab({ "a" }, { ngrams = 0 }) end, "ngrams must be in 1..16")
    errmatch(function() T.vocab({ "a" }, { ngrams = 2, buckets = 0 }) end, "needs buckets >= 1")
    errmatch(function() T.vocab({ "a" }, { unk = "maybe" }) end, "option 'unk' must be")
    errmatch(function() T.vocab({ "a" }, { min_count = "x" }) end, "option 'min_count' must be an integer")
    errmatch(function() T.vocab_from_words({ "a", "b" }) end, "word 1 must be \"<unk>\"")
    errmatch(function() T.vocab_from_words({ "<unk>", "a", "a" }) end, "word 3 %(\"a\"%) appears twice")
    errmatch(function() T.vocab_from_words({ "<unk>", "" }) end, "word 2 is empty")
    errmatch(function() T.vocab_from_words({ "<unk>", 5 }) end, "words%[2%]: string expected")
    errmatch(function() T.vocab({}).size(42) end, "vocabulary expected, got number")
    errmatch(function() T.vocab({ "a" }):word(9) end, "id 9 out of range 1..2")
  end)

  it("can be closed, after which it refuses to work", function()
    local v = T.vocab({ "a" })
    do
      local c <close> = v
    end
    assert.are.equal("Vocab(closed)", tostring(v))
    errmatch(function() v:size() end, "vocabulary was closed")
    errmatch(function() v:encode({ "a" }) end, "vocabulary was closed")
  end)
end)

describe("hashed word n-grams and CSR bags", function()
  -- independent reference: FNV-1a 32 per token, h = h * 116049371 + h_j (mod 2^64)
  local function fnv(s)
    local h = 2166136261
    for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
    return h
  end
  local function umod(h, b) return ((h >> 1) % b * 2 + (h & 1)) % b end

  it("matches the documented hash and lies in [size+1, size+buckets]", function()
    local B = 1009
    local v = T.vocab({ "the cat sat on the mat" }, { ngrams = 3, buckets = B })
    local text = "the cat sat on a mat"
    local tk = v:tokenize(text)
    local ids, off, miss = v:encode({ text })
    local expect = {}
    for _, t in ipairs(tk) do expect[#expect + 1] = v:id(t) or 1 end
    for k = 2, 3 do
      for i = 1, #tk - k + 1 do
        local h = fnv(tk[i])
        for j = i + 1, i + k - 1 do h = h * 116049371 + fnv(tk[j]) end
        expect[#expect + 1] = v:size() + umod(h, B) + 1
      end
    end
    assert.are.same(expect, ids)
    assert.are.same({ 0, 6 + 5 + 4 }, off)
    assert.are.same({ false }, miss)
    for i = 7, #ids do assert.is_true(ids[i] > v:size() and ids[i] <= v:rows()) end
    assert.are.equal(v:size() + B, v:rows())
  end)

  it("is deterministic and keeps every id in range on many texts", function()
    math.randomseed(3)
    local words = { "a", "b", "c", "dog", "émoji", "😀", "日" }
    local corpus = {}
    for i = 1, 200 do
      local w = {}
      for k = 1, math.random(0, 9) do w[k] = words[math.random(#words)] end
      corpus[i] = table.concat(w, " ")
    end
    local v1 = T.vocab(corpus, { ngrams = 4, buckets = 50 })
    local v2 = T.vocab(corpus, { ngrams = 4, buckets = 50 })
    local i1, o1 = v1:encode(corpus)
    local i2, o2 = v2:encode(corpus)
    assert.are.same(i1, i2)
    assert.are.same(o1, o2)
    for _, id in ipairs(i1) do assert.is_true(id >= 1 and id <= v1:rows()) end
    assert.are.equal(#corpus + 1, #o1)
    assert.are.equal(#i1, o1[#o1])
  end)

  it("gives an empty bag and the missing flag for empty text", function()
    local v = T.vocab({ "a b" }, { ngrams = 2, buckets = 8, unk = "drop" })
    local ids, off, miss = v:encode({ "a b", "", "?!", false, "zzz", "zzz yyy" })
    assert.are.same({ 0, 3, 3, 3, 3, 3, 4 }, off)
    assert.are.same({ false, true, true, true, true, false }, miss)
    assert.are.equal(4, #ids)
    local i0, o0, m0 = v:encode({})
    assert.are.same({}, i0)
    assert.are.same({ 0 }, o0)
    assert.are.same({}, m0)
    local i1, o1 = v:encode("a")
    assert.are.same({ 1 }, i1)
    assert.are.same({ 0, 1 }, o1)
  end)

  it("encodes token lists like the texts they came from", function()
    local v = T.vocab({ "x y z" }, { ngrams = 2, buckets = 16 })
    assert.are.same(v:encode({ "X, y z" }), v:encode({ { "x", "y", "z" } }))
  end)
end)

describe("mm.text.load_vectors", function()
  local vocab = T.vocab({ "the cat sat on the mat", "dog émoji привет 😀 missing" })

  local function check_rows(t, v, ref)
    for w, vec in pairs(ref) do
      local id = v:id(w)
      if id then assert_row(t, id, vec) end
    end
  end

  it("reads GloVe text (exact match wins over a case-folded one)", function()
    local t, cov = T.load_vectors(FIX .. "glove.txt", vocab)
    assert.are.same({ vocab:size(), 4 }, t:shape())
    assert.are.equal("glove", cov.format)
    assert.are.equal(4, cov.dim)
    assert.are.equal(11, cov.file_words)
    -- all but "missing" are in the file; <unk> is not counted
    assert.are.equal(vocab:size() - 1, cov.total)
    assert.are.equal(cov.total - 1, cov.found)
    assert.are.equal(cov.found / cov.total, cov.coverage)
    assert.is_false(cov.found_mask[vocab:id("missing")])
    assert.is_false(cov.found_mask[1])
    local ref = read_text_vectors(FIX .. "glove.txt", false)
    ref.The = nil
    check_rows(t, vocab, ref)
    assert_row(t, vocab:id("missing"), { 0, 0, 0, 0 })
    assert_row(t, 1, { 0, 0, 0, 0 })
  end)

  it("fills a folded entry from a capitalised file word", function()
    local v = T.vocab({ "the" }, { lowercase = false })
    local v2 = T.vocab_from_words({ "<unk>", "the", "dog" }, {})
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("THE 1 2\nDOG 3 4\ndog 5 6\n")
    f:close()
    local t, cov = T.load_vectors(path, v2)
    os.remove(path)
    assert_row(t, 2, { 1, 2 })
    assert_row(t, 3, { 5, 6 }) -- the exact "dog" replaces the folded "DOG"
    assert.are.equal(2, cov.found)
    assert.are.equal(1, v:size() - 1)
  end)

  it("reads word2vec text and the fastText .vec written by fasttext", function()
    local t, cov = T.load_vectors(FIX .. "word2vec.txt", vocab, { format = "word2vec" })
    assert.are.equal("word2vec", cov.format)
    check_rows(t, vocab, read_text_vectors(FIX .. "word2vec.txt", true))
    local _, cauto = T.load_vectors(FIX .. "word2vec.txt", vocab)
    assert.are.equal("word2vec", cauto.format)

    local ref = read_text_vectors(FIX .. "fasttext.vec", true)
    local fv = T.vocab({ "the cat sat on mat dog log unknownword" })
    local tv, cv = T.load_vectors(FIX .. "fasttext.vec", fv, { format = "vec" })
    assert.are.equal(5, cv.dim)
    assert.are.equal(15, cv.file_words)
    assert.are.equal(7, cv.found)
    assert.are.equal(8, cv.total)
    check_rows(tv, fv, ref)
    local _, ca = T.load_vectors(FIX .. "fasttext.vec", fv)
    assert.are.equal(7, ca.found)
  end)

  it("reads word2vec binary (by name, by .bin suffix and by content)", function()
    local ref = read_text_vectors(FIX .. "word2vec.txt", true)
    for _, c in ipairs({ { FIX .. "word2vec.bin", "word2vec-bin" }, { FIX .. "word2vec.bin", nil },
      { FIX .. "binary_vectors.dat", nil } }) do
      local t, cov = T.load_vectors(c[1], vocab, { format = c[2] })
      assert.are.equal("word2vec-bin", cov.format)
      assert.are.equal(10, cov.file_words)
      check_rows(t, vocab, ref)
    end
  end)

  it("fills the rows of a given tensor and leaves the others", function()
    local v = T.vocab({ "cat dog" }, { ngrams = 2, buckets = 3 })
    local t = mm.full({ v:rows(), 4 }, 7)
    local t2, cov = T.load_vectors(FIX .. "glove.txt", v, { tensor = t })
    assert.are.equal(t, t2)
    assert.are.equal(2, cov.found)
    assert_row(t, 1, { 7, 7, 7, 7 })
    assert_row(t, v:id("cat"), read_text_vectors(FIX .. "glove.txt").cat)
    assert_row(t, v:rows(), { 7, 7, 7, 7 })
    errmatch(function() T.load_vectors(FIX .. "glove.txt", v, { tensor = mm.zeros({ v:rows(), 3 }) }) end,
      "glove.txt: vectors have dimension 4; the output tensor must be 2%-D with >= 3 rows and 4 columns, got 6x3")
    errmatch(function() T.load_vectors(FIX .. "glove.txt", v, { tensor = mm.zeros({ 2, 4 }) }) end, "got 2x4")
  end)

  it("streams: a big file does not grow Lua memory", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    local line = " 0.5 -0.25 0.125 1e-3 2 3 4 5\n"
    local buf = {}
    for i = 1, 60000 do buf[#buf + 1] = "w" .. i .. line end
    f:write(table.concat(buf))
    f:close()
    buf = nil
    local v = T.vocab({ "w1 w59999 nope" })
    collectgarbage("collect")
    local before = collectgarbage("count")
    local t, cov = T.load_vectors(path, v, { format = "glove" })
    local after = collectgarbage("count")
    os.remove(path)
    assert.are.equal(60000, cov.file_words)
    assert.are.equal(2, cov.found)
    assert_row(t, v:id("w59999"), { 0.5, -0.25, 0.125, 1e-3, 2, 3, 4, 5 })
    assert.is_true(after - before < 64, ("Lua heap grew by %.0f KiB"):format(after - before))
  end)

  describe("bad input names the file and the line", function()
    local cases = {
      { "wrong_dim.txt", nil, "wrong_dim.txt:2: expected a word and 4 values, got 3 value%(s%) after \"cat\"" },
      { "too_many.txt", nil, "too_many.txt:2: expected a word and 4 values, got 5" },
      { "garbage.txt", nil, "garbage.txt:3: value 2 %(\"zebra\"%) is not a finite number" },
      { "nan.txt", nil, "nan.txt:2: value 2 %(\"nan\"%) is not a finite number" },
      { "short_header.txt", nil, "short_header.txt:4: the header declares 5 vectors but the file has 3" },
      { "long_header.txt", nil, "long_header.txt:4: more vectors than the 2 the header declares" },
      { "header_dim.txt", nil, "header_dim.txt:2: expected a word and 5 values, got 4" },
      { "bad_header.txt", "word2vec", "bad_header.txt:1: expected a header \"<count> <dim>\"" },
      { "bad_header.txt", "vec", "bad_header.txt:1: expected a header" },
      { "bad_header.txt", nil, "bad_header.txt:1: value 1 %(\"four\"%) is not a finite number" },
      { "empty.txt", nil, "empty.txt: empty file" },
      { "one_field.txt", nil, "one_field.txt:1: expected a word followed by its values" },
      { "truncated.bin", nil, "truncated.bin: record 10 %(byte %d+%): truncated %(2 of 4 values%)" },
      { "word2vec.txt", "word2vec-bin", "word2vec.txt: record 11 %(byte %d+%): data after the 10 vectors" },
      { "does_not_exist.vec", nil, "does_not_exist.vec: cannot open" },
      { "", nil, "text/: not a regular file %(a directory%): refused without reading it" }, -- a directory
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " (" .. (c[2] or "auto") .. ")", function()
        errmatch(function() T.load_vectors(FIX .. c[1], vocab, { format = c[2] }) end, c[3])
      end)
    end

    it("a truncated binary file cut inside a word", function()
      local data = assert(io.open(FIX .. "word2vec.bin", "rb")):read("a")
      local path = os.tmpname()
      local f = assert(io.open(path, "wb"))
      f:write(data:sub(1, data:find("mat", 1, true) + 1))
      f:close()
      local ok, err = pcall(T.load_vectors, path, vocab, { format = "word2vec-bin" })
      os.remove(path)
      assert.is_false(ok)
      assert.is_truthy(err:find("record 5 %(byte %d+%): truncated %(end of file in the word%)"))
    end)

    it("bad arguments", function()
      errmatch(function() T.load_vectors(FIX .. "glove.txt", vocab, { format = "csv" }) end,
        "option 'format' must be \"auto\"")
      errmatch(function() T.load_vectors(FIX .. "glove.txt", "vocab") end, "vocabulary expected, got string")
      errmatch(function() T.load_vectors(nil, vocab) end, "path: string expected, got nil")
      errmatch(function() T.load_vectors(FIX .. "glove.txt", vocab, 5) end, "options: table expected")
      errmatch(function() T.load_vectors(FIX .. "glove.txt", vocab, { tensor = {} }) end, "tensor expected")
    end)
  end)
end)
