-- The dataset object and its loaders (TSV, CSV, JSONL, fastText), splits, drop, errors.
local mm = require "mmfuse"
local S = dofile("spec/fixtures/model/synth.lua")
local F = "spec/fixtures/model/manifests/"

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return tostring(e)
end

describe("mm.data.load", function()
  it("reads a TSV manifest with text, images relative to it, string labels and folds", function()
    local ds = mm.data.load(F .. "posts.tsv", { text = "caption", image = "image", label = "group", image_size = 8 })
    assert.are.equal(5, #ds)
    assert.are.same({ "food", "nature" }, ds.classes)
    assert.are.same({ 1, 2, 1, 2, 1 }, ds:labels())
    assert.are.equal("banana split", ds:text("text", 3))
    assert.are.same({ true, true, true, true, false }, ds:mask("text"))
    assert.are.same({ true, true, false, true, true }, ds:mask("image"))
    local mods = ds:modalities()
    assert.are.equal("image", mods[2].kind)
    assert.are.equal(8, mods[2].size)
    assert.are.equal("0", ds.columns.fold[1])
    local s = tostring(ds)
    assert.truthy(s:find("5 rows", 1, true))
    assert.truthy(s:find("2 classes", 1, true))
    assert.truthy(s:find("image image[8px] 4/5", 1, true))
  end)

  it("reads RFC 4180 CSV: quoted commas, doubled quotes, line breaks inside quotes", function()
    local ds = mm.data.load(F .. "posts.csv", { text = "caption", label = "group" })
    assert.are.equal(4, #ds)
    assert.are.equal("apple, red", ds:text("text", 1))
    assert.are.equal('a "green" tree', ds:text("text", 2))
    assert.are.equal("banana\nsplit", ds:text("text", 3))
    assert.are.same({ "0", "1", "2", "3" }, ds.columns.fold)
  end)

  it("reads JSONL (null = missing, numbers as strings, blank lines skipped)", function()
    local ds = mm.data.load(F .. "posts.jsonl", { text = "caption", label = "group" })
    assert.are.equal(3, #ds)
    assert.are.same({ true, true, false }, ds:mask("text"))
    assert.are.same({ "0", "1", "2" }, ds.columns.fold)
  end)

  it("reads fastText __label__ files (first label wins)", function()
    local ds = mm.data.load(F .. "posts.txt")
    assert.are.equal(3, #ds)
    assert.are.same({ "food", "nature" }, ds.classes)
    assert.are.equal("blue sky", ds:text("text", 2))
  end)

  it("keeps a given class order and maps labels to it", function()
    local ds = mm.data.load(F .. "posts.tsv", { text = "caption", label = "group", classes = { "nature", "food" } })
    assert.are.same({ 2, 1, 2, 1, 2 }, ds:labels())
  end)

  it("loads numeric columns and .npy files as feature modalities", function()
    local tmp = os.tmpname()
    local f = io.open(tmp .. ".tsv", "w")
    f:write("a\tb\tlabel\n1\t2\tx\n3\t4.5\ty\n")
    f:close()
    mm.io.save_npy(tmp .. ".npy", mm.tensor { { 1, 0, 0 }, { 0, 1, 0 } })
    local ds = mm.data.load(tmp .. ".tsv", { label = "label", features = { ab = { "a", "b" }, v = tmp .. ".npy" },
      image_features = tmp .. ".npy" })
    local kinds = {}
    for _, m in ipairs(ds:modalities()) do kinds[m.name] = m.kind .. (m.dim or "") end
    assert.are.same({ ab = "features2", v = "features3", image = "features3" }, kinds)
    os.remove(tmp .. ".tsv"); os.remove(tmp .. ".npy"); os.remove(tmp)
  end)
end)

describe("bad manifests", function()
  it("ragged rows name the file and line", function()
    local e = err_of(mm.data.load, F .. "ragged.tsv", { text = "caption", label = "group" })
    assert.truthy(e:find("ragged.tsv:3", 1, true), e)
    assert.truthy(e:find("expected 3 fields, got 2", 1, true), e)
  end)
  it("an unknown label (with fixed classes) names file, line and label", function()
    local e = err_of(mm.data.load, F .. "unknown_label.tsv", { text = "caption", label = "group", classes = { "food" } })
    assert.truthy(e:find("unknown_label.tsv:3", 1, true), e)
    assert.truthy(e:find("pizza", 1, true), e)
  end)
  it("a missing column lists the columns", function()
    local e = err_of(mm.data.load, F .. "posts.tsv", { text = "body", label = "group" })
    assert.truthy(e:find("no column 'body'", 1, true), e)
    assert.truthy(e:find("caption", 1, true), e)
  end)
  it("a missing image names the manifest, the row and the image", function()
    local e = err_of(mm.data.load, F .. "missing_image.tsv", { image = "image", label = "group" })
    assert.truthy(e:find("missing_image.tsv", 1, true), e)
    assert.truthy(e:find("row 1", 1, true), e)
    assert.truthy(e:find("nope.png", 1, true), e)
  end)
  it("a corrupt image names the file", function()
    local e = err_of(mm.data.load, F .. "broken_image.tsv", { image = "image", label = "group" })
    assert.truthy(e:find("broken.png", 1, true), e)
  end)
  it("an unterminated CSV quote and a bad JSONL line name file and line", function()
    assert.truthy(err_of(mm.data.load, F .. "unterminated.csv", { text = "caption", label = "group" })
      :find("unterminated.csv:2: unterminated", 1, true))
    assert.truthy(err_of(mm.data.load, F .. "badline.jsonl", { text = "caption", label = "group" })
      :find("badline.jsonl:2: not a JSON object", 1, true))
  end)
  it("missing files, a missing label option, fastText lines without labels", function()
    assert.truthy(err_of(mm.data.load, F .. "nope.tsv", { label = "group" }):find("nope.tsv: cannot open", 1, true))
    assert.truthy(err_of(mm.data.load, F .. "posts.tsv", {}):find("'label'", 1, true))
    assert.truthy(err_of(mm.data.load, F .. "nolabel.txt"):find("nolabel.txt:1: no __label__", 1, true))
  end)
  it("mm.data.new checks its arguments", function()
    assert.truthy(err_of(mm.data.new, { labels = { "a", "b" }, text = { "x", "y", "z" } }):find("3 texts for 2 rows", 1, true))
    assert.truthy(err_of(mm.data.new, { labels = { "a", "b" }, features = { f = { { 1, 2 } } } }):find("2xD", 1, true))
    assert.truthy(err_of(mm.data.new, { labels = { "a" }, features = { f = { { 0 / 0 } } } }):find("not finite", 1, true))
    assert.truthy(err_of(mm.data.new, { labels = { "a", "q" }, classes = { "a" } }):find("unknown label 'q'", 1, true))
    assert.truthy(err_of(mm.data.new, { labels = { "a" }, text = { 42 } }):find("must be a string", 1, true))
  end)
end)

describe("splits, subsets, drop", function()
  local ds = S.make { n = 120 }

  it("splits by a fold column", function()
    local tr, va, te = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
    assert.are.equal(72, #tr)
    assert.are.equal(24, #va)
    assert.are.equal(24, #te)
    for _, f in ipairs(te.columns.fold) do assert.are.equal("0", f) end
    assert.are.same(ds.classes, tr.classes)
  end)

  it("splits by a hash of an id column: FNV-1a 32 of the value mod K", function()
    -- reference values of FNV-1a 32 (offset 0x811c9dc5, prime 0x01000193)
    assert.are.equal(0x811c9dc5, mm.data.fnv1a32(""))
    assert.are.equal(0xe40c292c, mm.data.fnv1a32("a"))
    assert.are.equal(0xbf9cf968, mm.data.fnv1a32("foobar"))
    local ids = {}
    for i = 1, 60 do ids[i] = "post" .. i end
    local d = mm.data.new { labels = S.make { n = 60 }:labels(), classes = { "1", "2", "3" }, columns = { guid = ids },
      text = ids }
    local tr, va, te = d:split { by = "guid", hash = 5, test = { 0 }, valid = { 1 } }
    assert.are.equal(60, #tr + #va + #te)
    for _, g in ipairs(te.columns.guid) do assert.are.equal(0, mm.data.fnv1a32(g) % 5) end
    for _, g in ipairs(va.columns.guid) do assert.are.equal(1, mm.data.fnv1a32(g) % 5) end
    for _, g in ipairs(tr.columns.guid) do assert.is_true(mm.data.fnv1a32(g) % 5 >= 2) end
    -- the part of a row depends on its id alone: the same ids in another order, the same parts
    local rev = {}
    for i = 1, 60 do rev[i] = ids[61 - i] end
    local d2 = mm.data.new { labels = S.make { n = 60 }:labels(), classes = { "1", "2", "3" }, columns = { guid = rev },
      text = rev }
    local _, _, te2 = d2:split { by = "guid", hash = 5, test = { 0 }, valid = { 1 } }
    local a, b = {}, {}
    for _, g in ipairs(te.columns.guid) do a[g] = true end
    for _, g in ipairs(te2.columns.guid) do b[g] = true end
    assert.are.same(a, b)
    assert.truthy(err_of(d.split, d, { by = "guid", hash = 1, test = { 0 } }):find("hash must be an integer >= 2", 1, true))
  end)

  it("splits by seeded stratified ratios, the same for the same seed", function()
    local a1, b1, c1 = ds:split { ratios = { 0.5, 0.25, 0.25 }, seed = 3 }
    local a2 = ds:split { ratios = { 0.5, 0.25, 0.25 }, seed = 3 }
    local a3 = ds:split { ratios = { 0.5, 0.25, 0.25 }, seed = 4 }
    assert.are.equal(60, #a1)
    assert.are.equal(120, #a1 + #b1 + #c1)
    assert.are.same(a1:labels(), a2:labels())
    assert.are.same(a1.columns.fold, a2.columns.fold)
    assert.are_not.same(a1.columns.fold, a3.columns.fold)
    local count = {}
    for _, y in ipairs(a1:labels()) do count[y] = (count[y] or 0) + 1 end
    assert.are.same({ 20, 20, 20 }, count) -- stratified: 40 rows per class, half each
  end)

  it("drop marks a modality missing on every row, keeps the rows", function()
    local d = ds:drop("image")
    assert.are.equal(#ds, #d)
    for _, m in ipairs(d:modalities()) do
      if m.name == "image" then assert.are.equal(0, m.present) else assert.is_true(m.present > 0) end
    end
    assert.truthy(err_of(ds.drop, ds, "sound"):find("no modality 'sound'", 1, true))
  end)

  it("subset copies rows and their columns; bad rows are errors", function()
    local s = ds:subset { 3, 1 }
    assert.are.equal(2, #s)
    assert.are.same({ ds:labels()[3], ds:labels()[1] }, s:labels())
    assert.are.same({ ds.columns.fold[3], ds.columns.fold[1] }, s.columns.fold)
    assert.truthy(err_of(ds.subset, ds, { 1000 }):find("row 1000 is outside", 1, true))
  end)
end)
