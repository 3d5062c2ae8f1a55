-- The tokenizer's post options (csrc/text/tokenize.h): URLs, @mentions, RT, hashtags, emoticons,
-- skin tones, elongated words; the "posts" preset; the options reaching vocabularies and models,
-- and a model file recording them so that a loaded model tokenizes as it was trained.
local mm = require "mmfuse"
local util = require "util"

local tok = mm.text.tokenize
local function toks(s, o) return table.concat(tok(s, o), " | ") end

local POST = "RT @Bob_Smith: Soooo happy today :-) #LegDay http://t.co/AbC12 👍🏽 <3"

describe("post tokenizer options", function()
  it("the default (plain) tokenizer is unchanged", function()
    assert.are.equal("rt | bob | smith | sooooo | happy | today | legday | http | t | co | abc12 | 👍🏽 | 3",
      toks("RT @Bob_Smith: Sooooo happy today :-) #LegDay http://t.co/AbC12 👍🏽 <3"))
    assert.are.same(tok(POST), tok(POST, { tokenizer = "plain" }))
  end)

  it("the posts preset turns every option on", function()
    assert.are.equal("<rt> | <user> | soo | happy | today | :) | legday | #legday | <url> | 👍 | <3",
      toks(POST, { tokenizer = "posts" }))
  end)

  it("urls: http(s)://, www., and URLs cut short with …", function()
    local o = { urls = true }
    assert.are.equal("see | <url> | and | <url> | <url> | now", toks("see HTTPS://x.org/a?b=1, and www.site.com http://t.co/ab… now", o))
    assert.are.equal("read | <url>", toks("read htt…", o))
    assert.are.equal("read | <url>", toks("read http:/…", o))
    assert.are.equal("http | is | a | word | www", toks("http is a word www", o)) -- no scheme, no URL
    assert.are.equal("mywww | x", toks("mywww.x", o)) -- inside a word: not a URL
  end)

  it("mentions: <user>, or kept as @name; rt only for a standalone capital RT", function()
    assert.are.equal("<user> | hi | <user>", toks("@Bob_Smith hi @x1", { mentions = "user" }))
    assert.are.equal("@bob_smith | hi", toks("@Bob_Smith hi", { mentions = "keep" }))
    assert.are.equal("bob | smith", toks("@Bob_Smith", { mentions = "off" }))
    assert.are.equal("mail | me | at | a | b | c", toks("mail me at a@b.c", { mentions = true })) -- inside a word
    assert.are.equal("@ | x", toks("@ x", { mentions = "user", keep_punct = true })) -- '@' alone is punctuation
    assert.are.equal("<rt> | <user> | rts | rt | <rt>", toks("RT @x RTs rt RT", { rt = true, mentions = true }))
  end)

  it("hashtags: the word and the tag (any script)", function()
    assert.are.equal("legday | #legday | 周末 | #周末 | snake_case | #snake_case",
      toks("#LegDay #周末 #snake_case", { hashtags = true }))
    assert.are.equal("#LegDay", tok("#LegDay", { hashtags = true, lowercase = false })[2])
    assert.are.equal("#\u{20E3}", tok("#\u{FE0F}\u{20E3}", { hashtags = true })[1]) -- a keycap stays an emoji
  end)

  it("emoticons: tokens without their nose, repeats absorbed, not inside words or times", function()
    local o = { emoticons = true }
    assert.are.equal(":) | :( | :D | ;) | :P | <3 | </3 | ^_^ | xD | :'(", toks(":-) :-( :D ;-) :P <3 </3 ^_^ xD :'(", o))
    assert.are.equal("nice | :) | great", toks("nice:))) great", o))
    assert.are.equal("12 | 30 | dog | boxd", toks("12:30 :Dog boxD", o))
    assert.are.equal("http | x", toks("http://x", o)) -- ":/" followed by "/" is no emoticon
  end)

  it("tones: skin-tone modifiers folded; elongation: runs of 3+ letters keep 2, digits never", function()
    assert.are.equal("👍 | 👍 | 👋", toks("👍🏽 👍🏿 👋🏻", { tones = true }))
    assert.are.equal("👍🏽", toks("👍🏽"))
    assert.are.equal("soo | cool | goo | 1000 | aa", toks("sooooo cooool goo 1000 aaa", { elongation = true }))
  end)

  it("names bad options", function()
    util.assert_mentions(util.errors_with(tok, "x", { tokenizer = "tweets" }),
      "option 'tokenizer' must be \"plain\" or \"posts\", got \"tweets\"")
    util.assert_mentions(util.errors_with(tok, "x", { mentions = 1 }), "option 'mentions' must be")
    util.assert_mentions(util.errors_with(tok, "x", { mentions = "drop" }), "got \"drop\"")
    util.assert_mentions(util.errors_with(tok, "x", { urls = "yes" }), "option 'urls' must be a boolean")
  end)
end)

describe("post tokenizer options in vocabularies and models", function()
  local texts = { "RT @a: soooo good :) http://t.co/x #fun", "so bad :( @b #sad", "good day #fun :)",
    "bad bad day :( http://x.org" }
  local labels = { "pos", "neg", "pos", "neg" }

  it("a vocabulary keeps its options: vocab_from_words(words, options) tokenizes the same", function()
    local v = mm.text.vocab(texts, { tokenizer = "posts", mentions = "keep" })
    local o = v:options()
    assert.are.same({ true, "keep", true, true, true, true, true }, { o.urls, o.mentions, o.rt, o.hashtags,
      o.emoticons, o.tones, o.elongation })
    assert.truthy(v:id("<url>") and v:id("#fun") and v:id("@a") and v:id(":)") and v:id("soo"))
    local w = mm.text.vocab_from_words(v:words(), o)
    assert.are.same(v:tokenize(texts[1]), w:tokenize(texts[1]))
  end)

  it("a model trained with tokenizer = posts saves its options and predicts the same after loading", function()
    local ds = mm.data.new { labels = labels, text = texts }
    local m = mm.model { fusion = "text", dim = 4, classes = ds.classes, text = { tokenizer = "posts", buckets = 64 } }
    m:fit(ds, { epochs = 3, seed = 1 })
    local cfg = m:config()
    assert.are.same({ true, "user", true }, { cfg.urls, cfg.mentions, cfg.elongation })
    local path = os.tmpname()
    m:save(path)
    local l = mm.load(path)
    os.remove(path)
    assert.are.same(m:config().emoticons, l:config().emoticons)
    -- the same weights and the same tokens: bit-identical probabilities (our own code, same operations)
    for _, t in ipairs { "soooooo good :-) http://a.b/c", "@zed #sad :(" } do
      local a, pa = m:predict { text = t }
      local b, pb = l:predict { text = t }
      assert.are.equal(a, b)
      assert.are.same(pa, pb)
    end
  end)

  it("a model file written before the post options loads with the plain tokenizer", function()
    local ds = mm.data.new { labels = labels, text = texts }
    local m = mm.model { fusion = "text", dim = 4, classes = ds.classes, text = { buckets = 64 } }
    m:fit(ds, { epochs = 2, seed = 1 })
    local path = os.tmpname()
    m:save(path)
    -- drop the post options from the file's config, as an older mmfuse wrote it
    local cj = require "cjson"
    local s = util.read(path)
    local n = string.unpack("<I8", s)
    local header = cj.decode(s:sub(9, 8 + n))
    local cfg = cj.decode(header.__metadata__.config)
    for _, k in ipairs { "urls", "mentions", "rt", "hashtags", "emoticons", "tones", "elongation" } do
      assert.is_not_nil(cfg[k], k)
      cfg[k] = nil
    end
    header.__metadata__.config = cj.encode(cfg)
    local h = cj.encode(header)
    util.write(path, string.pack("<I8", #h) .. h .. s:sub(9 + n))
    local l = mm.load(path)
    os.remove(path)
    local c = l:config()
    assert.are.same({ false, "off", false, false }, { c.urls, c.mentions, c.hashtags, c.elongation })
    local a, pa = m:predict { text = "soooo good :) http://t.co/x" }
    local b, pb = l:predict { text = "soooo good :) http://t.co/x" }
    assert.are.equal(a, b)
    assert.are.same(pa, pb)
  end)
end)
