-- The option reader every binding function uses (csrc/lua/mm_lua.c,
-- mm_lua_readopts): unknown keys, wrong types, ranges and enums are errors that
-- name the function, the option and what was expected.
local mm = require "mmfuse"
local util = require "util"

local function err(fn, ...) return util.errors_with(fn, ...) end

describe("option tables", function()
  local C, A, B = mm.zeros(2, 3), mm.zeros(2, 2), mm.zeros(2, 3)

  it("names an unknown option and lists the known ones", function()
    assert.equal("addmm: unknown option 'alhpa' (known: ta, tb, alpha, beta)", err(C.addmm, C, A, B, { alhpa = 2 }))
  end)

  it("refuses a key that is not a name", function()
    util.assert_mentions(err(C.addmm, C, A, B, { true }), "addmm: options must be named", "[1]", "known: ta")
  end)

  it("names the option and the type expected", function()
    assert.equal("addmm: option 'ta' must be a boolean, got number", err(C.addmm, C, A, B, { ta = 1 }))
    assert.equal("addmm: option 'alpha' must be a number, got string", err(C.addmm, C, A, B, { alpha = "2" }))
    assert.equal("addmm: option 'beta' must be a number, got NaN", err(C.addmm, C, A, B, { beta = 0 / 0 }))
  end)

  it("refuses options that are not a table", function()
    assert.equal("addmm: options (argument #4) must be a table, got string", err(C.addmm, C, A, B, "tb"))
  end)

  it("reads every option given, and the defaults for the others", function()
    local c = mm.ones(2, 2)
    c:addmm(mm.tensor{ { 1, 2 }, { 3, 4 } }, mm.tensor{ { 1, 0 }, { 0, 1 } }, { ta = true, alpha = 2 })
    assert.same({ { 3, 7 }, { 5, 9 } }, c:totable())
  end)
end)

describe("nn option tables", function()
  local x, w = mm.randn(1, 2, 5, 5), mm.randn(3, 2, 3, 3)

  it("conv2d names a misspelt option and the ones it knows", function()
    assert.equal("conv2d: unknown option 'paddding' (known: stride, padding, groups)",
      util.errors_with(mm.nn.conv2d, x, w, nil, { paddding = 1 }))
    util.assert_mentions(util.errors_with(mm.nn.conv2d, x, w, nil, { stride = 1.5 }), "conv2d: option 'stride'",
      "integer", "fraction")
  end)

  it("pooling, losses, bags and optimisers read their options strictly", function()
    util.assert_mentions(util.errors_with(mm.nn.max_pool2d, x, { kernel_size = 2 }), "max_pool2d",
      "unknown option 'kernel_size'", "known: kernel, stride, padding")
    util.assert_mentions(util.errors_with(mm.nn.cross_entropy, mm.randn(2, 3), { 1, 2 }, { weights = mm.ones(3) }),
      "cross_entropy: unknown option 'weights' (known: weight)")
    util.assert_mentions(util.errors_with(mm.nn.ranking_loss, mm.randn(2, 3), mm.randn(2, 3), { 1, 2 }, { margin = 0 / 0 }),
      "ranking_loss: option 'margin'", "NaN")
    util.assert_mentions(util.errors_with(mm.nn.embedding_bag, mm.randn(4, 2), { 1, 2 }, { 0 }, { include_last = true }),
      "embedding_bag: unknown option 'include_last'", "include_last_offset")
    local p = mm.zeros(3)
    util.assert_mentions(util.errors_with(mm.nn.sgd_step, p, mm.ones(3), nil, { lr = 0.1, momentun = 0.9 }),
      "sgd_step: unknown option 'momentun'", "momentum")
    util.assert_mentions(util.errors_with(mm.nn.adam_step, p, mm.ones(3), mm.zeros(3), mm.zeros(3), 1, { betas = { 0.9 } }),
      "adam_step: option 'betas'", "two numbers")
  end)

  it("cnn_forward checks each block's keys", function()
    util.assert_mentions(util.errors_with(mm.nn.cnn_forward, mm.randn(1, 3, 8, 8), { { weight = mm.randn(4, 3, 3, 3), pooled = true } }),
      "cnn_forward: block 1: unknown option 'pooled' (known: weight, bias, pool)")
  end)
end)

describe("image, text and data option tables", function()
  local png = "spec/fixtures/image/rgb.png"

  it("image functions name unknown options and bad enums", function()
    assert.equal("load: unknown option 'sise' (known: size, height, width, fit, max_bytes)",
      util.errors_with(mm.image.load, png, { sise = 8 }))
    assert.equal('load: option \'fit\' must be "stretch" or "crop", got "zoom"',
      util.errors_with(mm.image.load, png, { fit = "zoom" }))
    util.assert_mentions(util.errors_with(mm.image.decode, util.read(png), { names = "x" }), "decode: unknown option 'names'",
      "name")
    util.assert_mentions(util.errors_with(mm.image.augment, mm.zeros(3, 4, 4), { flip = true, seeds = 1 }),
      "augment: unknown option 'seeds'", "seed")
    -- a tensor has no decoding options; a path has
    util.assert_mentions(util.errors_with(mm.image.histogram, mm.zeros(3, 4, 4), { size = 4 }),
      "histogram: unknown option 'size' (known: bins)")
    assert.equal(8, mm.image.histogram(png, { bins = 2, size = 4 }):numel())
  end)

  it("text functions read their options strictly, with the core's names", function()
    util.assert_mentions(util.errors_with(mm.text.tokenize, "a b", { lower = true }), "tokenize: unknown option 'lower'",
      "lowercase, keep_punct")
    assert.equal('vocab: option \'unk\' must be "drop" or "unk", got "maybe"',
      util.errors_with(mm.text.vocab, { "a" }, { unk = "maybe" }))
    util.assert_mentions(util.errors_with(mm.text.probe_vectors, "x.txt", { format = "bin" }),
      "probe_vectors: option 'format'", '"word2vec-bin"', '"bin"')
    -- the default bucket count comes from the core, resolved when n-grams are on
    assert.equal(2000000, mm.text.vocab({ "a b" }, { ngrams = 2 }):options().buckets)
    assert.equal(0, mm.text.vocab({ "a b" }):options().buckets)
  end)

  it("datasets check the image options", function()
    util.assert_mentions(util.errors_with(mm.data.new, { labels = { "a" }, image = { png }, image_fit = "fill" }),
      "add_image: option 'fit'", '"stretch" or "crop"', '"fill"')
    util.assert_mentions(util.errors_with(mm.data.new, { labels = { "a" }, image = { png }, image_size = 0 }),
      "add_image: option 'size' must be in 1..1024, got 0")
  end)
end)
