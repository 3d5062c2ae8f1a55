-- Every fusion type on the embedded real dataset (data/emoji32, group task: 9 classes,
-- majority class 20 %). Small dims and the histogram encoder keep it to a few seconds;
-- one cnn run shows the learned encoder on real pictures.
local mm = require "mmfuse"

local ds = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", image = "image", label = "group" })
local train, valid, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }

local function run(fusion, image, epochs, pool)
  local m = mm.model { fusion = fusion, pool = pool, dim = 32, classes = ds.classes,
    text = { ngrams = 2, buckets = 5000 }, image = image or { encoder = "histogram" } }
  m:fit(train, { valid = valid, epochs = epochs or 12, lr = 0.01, batch = 32, seed = 1 })
  return m
end

describe("data/emoji32 (real posts-like data)", function()
  it("loads 1,906 rows with text and 32 px images for 9 groups", function()
    assert.is_true(#ds > 1800)
    assert.are.equal(9, #ds.classes)
    local m = ds:modalities()
    assert.are.equal("text", m[1].kind)
    assert.are.equal("image", m[2].kind)
    assert.are.equal(32, m[2].size)
    assert.is_true(#test > 300 and #valid > 300)
  end)

  local acc = {}
  for _, f in ipairs { "text", "image", "early", "late", "joint", "commonspace" } do
    it(f .. " learns the group task well above the majority class (0.20)", function()
      local m = run(f)
      local r = m:evaluate(test)
      acc[f] = r.accuracy
      assert.is_true(r.accuracy > (f == "image" and 0.35 or 0.5), ("%s %.3f"):format(f, r.accuracy))
      for _, drop in ipairs { "text", "image" } do
        local rd = m:evaluate(test, { drop = drop })
        assert.are.equal(#test, rd.n)
      end
    end)
  end

  it("fusion beats both single modalities", function()
    local best = math.max(acc.early, acc.late, acc.joint, acc.commonspace)
    assert.is_true(best > acc.text and best > acc.image,
      ("fusion %.3f text %.3f image %.3f"):format(best, acc.text, acc.image))
  end)

  it("the sentiment task keeps only the rated rows (empty labels are skipped)", function()
    local sd = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", label = "sentiment" })
    assert.is_true(#sd > 150 and #sd < 400, tostring(#sd))
    assert.are.same({ "negative", "neutral", "positive" }, sd.classes)
    local all = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", label = "sentiment",
      keep_unlabelled = true })
    assert.are.equal(#ds, #all)
    local unl = 0
    for _, y in ipairs(all:labels()) do if y == 0 then unl = unl + 1 end end
    assert.are.equal(#ds - #sd, unl)
  end)

  it("a small cnn learns from the real pictures", function()
    local m = run("image", { encoder = "cnn", channels = { 8, 16 } }, 4)
    assert.is_true(m:evaluate(test).accuracy > 0.3)
  end)
end)
