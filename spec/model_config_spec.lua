-- The names and defaults of a model's settings: written once in the C core
-- (csrc/model/config.h), pushed as core.fusion.names / .encoders / .pools /
-- .optimizers / .missing / .defaults, read by the Lua face (mm.settings), the
-- command line and the help.
local mm = require "mmfuse"
local core = require "mmfuse.core"
local S = dofile("spec/fixtures/model/synth.lua")

local C = core.fusion
local D = C.defaults

local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "should fail: " .. pattern)
  assert.truthy(tostring(err):find(pattern, 1, true), ("%q not in: %s"):format(pattern, tostring(err)))
end

describe("model settings from the core", function()
  it("mm.settings is the core's tables", function()
    assert.are.equal(C.names, mm.settings.fusions)
    assert.are.equal(C.encoders, mm.settings.encoders)
    assert.are.equal(C.pools, mm.settings.pools)
    assert.are.equal(C.optimizers, mm.settings.optimizers)
    assert.are.equal(C.missing, mm.settings.missing)
    assert.are.equal(D, mm.settings.defaults)
    for _, list in ipairs { C.names, C.encoders, C.pools, C.optimizers, C.missing } do
      assert.is_true(#list >= 2)
      for _, n in ipairs(list) do assert.is_string(n) end
    end
  end)

  it("every fusion name builds a model; an unknown one is refused with the list", function()
    for _, f in ipairs(C.names) do
      assert.is_true(pcall(mm.model, { fusion = f, classes = { "a", "b" } }), f)
    end
    fails("unknown fusion 'nope' (" .. table.concat(C.names, ", ") .. ")", mm.model, { fusion = "nope", classes = { "a", "b" } })
  end)

  it("the core refuses an unknown name of every setting, listing the names it knows", function()
    local function new(extra, mod)
      local cfg = { nclasses = 2, modalities = { mod or { name = "text", encoder = "text" } } }
      for k, v in pairs(extra) do cfg[k] = v end
      return C.new(cfg)
    end
    fails("model: unknown fusion 'x' (" .. table.concat(C.names, ", ") .. ")", new, { fusion = "x" })
    fails("model: unknown pool 'x' (" .. table.concat(C.pools, ", ") .. ")", new, { pool = "x" })
    fails("model: unknown 'missing' setting 'x' (" .. table.concat(C.missing, ", ") .. ")", new, { missing = "x" })
    fails("model: modality 'text': unknown encoder 'x' (" .. table.concat(C.encoders, ", ") .. ")", new, {},
      { name = "text", encoder = "x" })
    local ds = S.make { n = 30 }
    local m = mm.model { fusion = "text", classes = ds.classes, text = { buckets = 50 } }
    fails("fit: unknown optimizer 'x' (" .. table.concat(C.optimizers, ", ") .. ")", m.fit, m, ds,
      { optimizer = "x", epochs = 1 })
  end)

  it("options left out take the defaults: model, text, fit", function()
    local ds = S.make { n = 60 }
    local m = mm.model { fusion = "joint", classes = ds.classes }
    local h = m:fit(ds, { seed = 1 })
    assert.are.equal(D.fit.epochs, #h)
    local cfg = m:config()
    for _, k in ipairs { "pool", "dim", "missing", "hardest", "ngrams", "buckets", "min_count", "max_vocab", "unk",
      "lowercase", "keep_punct" } do
      assert.are.equal(D[k], cfg[k], k)
    end
    assert.are.equal(D.lambda, cfg.lambda)
    assert.are.equal(D.margin, cfg.margin)
    assert.are.equal(D.fusion, mm.model { classes = ds.classes }:config().fusion)
    -- a unimodal model replaces a missing modality by zeros, whatever is asked
    local t = mm.model { fusion = "text", classes = ds.classes, missing = "learned", text = { buckets = 50 } }
    t:fit(ds, { epochs = 1 })
    assert.are.equal("zeros", t:config().missing)
  end)

  it("an image modality takes the CNN's and the histogram's defaults", function()
    local ds = S.make_images { n = 30, size = 8 }
    local cnn = mm.model { fusion = "image", classes = ds.classes }
    cnn:fit(ds, { epochs = 1 })
    local m = cnn:config().modalities[1]
    assert.are.equal("cnn", m.encoder)
    assert.are.same(D.cnn.channels, m.channels)
    assert.are.equal(D.cnn.kernel, m.kernel)
    local hist = mm.model { fusion = "image", classes = ds.classes, image = { encoder = "histogram" } }
    hist:fit(ds, { epochs = 1 })
    m = hist:config().modalities[1]
    assert.are.same(D.histogram.bins, m.bins)
    assert.are.equal(D.histogram.bins[1] * D.histogram.bins[2] * D.histogram.bins[3], m.out_dim)
  end)

  it("the help shows the defaults and the command line offers the names", function()
    local help = require("mmfuse.help").text("model")
    assert.truthy(help:find(("dim %d"):format(D.dim), 1, true), help)
    assert.truthy(help:find("cnn channels " .. table.concat(D.cnn.channels, "-"), 1, true), help)
    assert.truthy(require("mmfuse.help").text():find(table.concat(C.names, ", "), 1, true))
    local train = require("mmfuse.cli").spec("train")
    for _, o in ipairs(train.options) do
      if o.name == "fusion" then assert.are.same(C.names, o.choices) end
      if o.name == "pool" then assert.are.same(C.pools, o.choices) end
      if o.name == "epochs" then assert.are.equal(D.fit.epochs, o.default) end
    end
  end)
end)
