-- The bad-input corpus (spec/fixtures/bad/, written by tools/make_bad_fixtures.py) through the
-- public Lua API: every case ends in a Lua error whose message names the problem and the file
-- (row, argument); the process lives on. Text with invalid UTF-8 or NUL bytes is the exception
-- by design (csrc/text/tokenize.h: U+FFFD / separators): it must be accepted and stay usable.
local mm = require "mmfuse"
local util = require "util"
local S = dofile("spec/fixtures/model/synth.lua")

local B = "spec/fixtures/bad/"

local slurp = util.read

local spit = util.write

-- f(...) must raise; the message must contain every plain string in `needles`
local function fails(needles, f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "no error; expected one mentioning: " .. table.concat(needles, " / "))
  assert.is_string(e)
  for _, n in ipairs(needles) do
    assert.truthy(e:find(n, 1, true), ("message %q lacks %q"):format(e, n))
  end
  return e
end

local dir = util.tmpdir()

describe("bad images", function()
  local cases = {
    { "png_zero.png", "empty" },
    { "png_truncated.png", "corrupt or truncated" },
    { "png_header_only.png", "not a supported image" },
    { "png_corrupt_idat.png", "corrupt or truncated" },
    { "png_huge.png", "100000x100000 out of range" },
    { "png_bad_depth.png", "not a supported image" },
    { "jpg_zero.jpg", "empty" },
    { "jpg_truncated.jpg", "corrupt or truncated" },
    { "jpg_soi_only.jpg", "not a supported image" },
    { "jpg_corrupt_sof.jpg", "not a supported image" },
    { "jpg_huge.jpg", "65000x65000 out of range" },
    { "gif_zero.gif", "empty" },
    { "gif_truncated.gif", "corrupt or truncated" },
    { "gif_corrupt_lzw.gif", "corrupt or truncated" },
    { "gif_huge.gif", "65535x65535 out of range" },
    { "text_named.png", "not a supported image" },
  }
  for _, c in ipairs(cases) do
    local name, why = c[1], c[2]
    it(name .. ": load, decode, histogram and a manifest row all fail naming it", function()
      local path = B .. "image/" .. name
      fails({ path, why }, mm.image.load, path, { size = 8 })
      fails({ "<bytes>", why }, mm.image.decode, slurp(path))
      fails({ "x.bin", why }, mm.image.decode, slurp(path), { name = "x.bin" })
      fails({ path, why }, mm.image.histogram, path)
      -- through mm.data.new (row 2 is the bad one)
      local e = fails({ path, "row 2" }, mm.data.new, { labels = { "a", "b" }, image = { false, path }, image_size = 8 })
      assert.truthy(e:find(why, 1, true), e)
    end)
  end

  it("header-only probes: info rejects what it can see without decoding", function()
    fails({ "png_huge.png", "out of range" }, mm.image.info, B .. "image/png_huge.png")
    fails({ "gif_zero.gif", "empty" }, mm.image.info, B .. "image/gif_zero.gif")
    fails({ "no_such.png", "cannot open" }, mm.image.load, B .. "image/no_such.png")
  end)
end)

describe("bad text", function()
  local utf8bad = slurp(B .. "text/invalid_utf8.txt")
  local nul = slurp(B .. "text/nul.txt")

  it("invalid UTF-8 becomes U+FFFD; tokens are valid UTF-8", function()
    local toks = mm.text.tokenize(utf8bad)
    assert.are.equal("caf\u{FFFD}", toks[1])
    for _, t in ipairs(toks) do
      assert.truthy(utf8.len(t), "token is not valid UTF-8")
      assert.is_nil(t:find("\0", 1, true))
    end
    assert.truthy(#toks >= 4)
  end)

  it("NUL bytes separate tokens and never end the text early", function()
    assert.are.same({ "cat", "dog", "face" }, mm.text.tokenize(nul))
    local v = mm.text.vocab({ nul, utf8bad })
    assert.are.equal(v:id("face"), v:id("face"))
    assert.truthy(v:id("face"))
  end)

  it("a manifest with such text loads, trains and predicts; predict takes it too", function()
    local ds = mm.data.load(B .. "manifest/bad_text.tsv", { text = "text", label = "label" })
    assert.are.equal(3, #ds)
    assert.are.equal("dog\0face", ds:text("text", 2))
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 4, text = { buckets = 32 } }
    m:fit(ds, { epochs = 2, seed = 1 })
    for _, s in ipairs { utf8bad, nul, "", "\0", "\255\254" } do
      local cls, probs = m:predict { text = s }
      assert.truthy(cls == "cat" or cls == "dog")
      assert.is_true(math.abs(probs.cat + probs.dog - 1) < 1e-5)
    end
    local r = m:evaluate(ds)
    assert.are.equal(3, r.n)
  end)
end)

describe("bad manifests", function()
  local M = B .. "manifest/"
  local o = { text = "text", label = "label" }
  it("zero bytes", function() fails({ M .. "zero.tsv", "empty file" }, mm.data.load, M .. "zero.tsv", o) end)
  it("a missing column", function()
    fails({ M .. "missing_column.tsv", "no column 'label'", "columns: text, fold" }, mm.data.load,
      M .. "missing_column.tsv", o)
  end)
  it("ragged rows (TSV and CSV), with the line", function()
    fails({ M .. "ragged.tsv:3", "expected 2 fields, got 1" }, mm.data.load, M .. "ragged.tsv", o)
    fails({ M .. "ragged.csv:3", "expected 2 fields, got 4" }, mm.data.load, M .. "ragged.csv", o)
    fails({ M .. "unterminated.csv:2", "unterminated quoted field" }, mm.data.load, M .. "unterminated.csv", o)
  end)
  it("an unknown label, with the line", function()
    fails({ M .. "unknown_label.tsv:3", "unknown label 'bird'" }, mm.data.load, M .. "unknown_label.tsv",
      { text = "text", label = "label", classes = { "cat", "dog" } })
  end)
  it("a missing image and a corrupt one, with the row", function()
    fails({ "missing_image.tsv", "row 2", "not_there.png", "cannot open" }, mm.data.load, M .. "missing_image.tsv",
      { text = "text", label = "label", image = "image", image_size = 8 })
    fails({ "bad_image.tsv", "row 2", "png_truncated.png", "corrupt or truncated" }, mm.data.load,
      M .. "bad_image.tsv", { text = "text", label = "label", image = "image", image_size = 8 })
  end)
  it("bad JSONL lines and non-numeric feature columns", function()
    fails({ M .. "not_json.jsonl:2", "not a JSON object" }, mm.data.load, M .. "not_json.jsonl", o)
    fails({ M .. "nested.jsonl:2", "field 'text'" }, mm.data.load, M .. "nested.jsonl", o)
    fails({ M .. "bad_number.csv:3", "column 'y' is not a finite number" }, mm.data.load, M .. "bad_number.csv",
      { label = "label", features = { xy = { "x", "y" } } })
  end)
  it("a manifest that does not exist, and a folder", function()
    fails({ M .. "nope.tsv", "cannot open" }, mm.data.load, M .. "nope.tsv", o)
  end)
end)

describe("bad word-vector files", function()
  local V = B .. "vectors/"
  local voc = mm.text.vocab({ "cat dog the" })
  for _, c in ipairs {
    { "zero.vec", "empty file" },
    { "wrong_dim.txt", ":2: expected a word and 3 values, got 2" },
    { "garbage.txt", ":1: value 1" },
    { "header_lies.vec", ":3: expected a word and 4 values, got 2" },
    { "not_numbers.txt", "\"zebra\") is not a finite number" },
    { "w2v_truncated.bin", "record 2 (byte 24): truncated" },
  } do
    it(c[1], function() fails({ V .. c[1], c[2] }, mm.text.load_vectors, V .. c[1], voc) end)
  end
  it("through a model: fit fails naming the vector file", function()
    local ds = mm.data.new { labels = { "a", "b" }, text = { "cat", "dog" } }
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 3, text = { vectors = V .. "wrong_dim.txt" } }
    fails({ V .. "wrong_dim.txt", "expected a word" }, m.fit, m, ds, { epochs = 1 })
  end)
end)

describe("bad .npy files", function()
  local N = B .. "npy/"
  for _, c in ipairs {
    { "zero.npy", "empty file" },
    { "wrong_dtype.npy", "dtype '<i4' not supported" },
    { "object_dtype.npy", "dtype '|O' not supported" },
    { "truncated.npy", "truncated: the shape needs 48 data bytes, the file has 20" },
    { "huge_shape.npy", "shape too large" },
    { "bad_magic.npy", "bad magic" },
  } do
    it(c[1], function()
      fails({ N .. c[1], c[2] }, mm.io.load_npy, N .. c[1])
      fails({ N .. c[1], c[2] }, mm.io.load_features, N .. c[1])
    end)
  end
  it("wrong shape and NaN rows are refused as features (naming shape and row)", function()
    fails({ N .. "wrong_shape.npy", "2-D", "2x2x2" }, mm.io.load_features, N .. "wrong_shape.npy")
    fails({ N .. "nan_rows.npy", "row 2 contains NaN" }, mm.io.load_features, N .. "nan_rows.npy")
    fails({ N .. "nan_rows.npy", "3 feature rows for 4 dataset rows" }, mm.io.load_features, N .. "nan_rows.npy",
      { rows = 4 })
  end)
  it("as image features of a manifest: the row count must match", function()
    fails({ "wrong_shape.npy", "must hold 2 rows" }, mm.data.load, B .. "manifest/unknown_label.tsv",
      { text = "text", label = "label", image_features = "../npy/wrong_shape.npy" })
  end)
end)

describe("bad model files", function()
  local D = B .. "model/"
  for _, c in ipairs {
    { "zero.mmf", "truncated: 0 bytes" },
    { "short.mmf", "truncated: 3 bytes" },
    { "header_past_end.mmf", "header length 1073741824 runs past the end" },
    { "header_len_huge.mmf", "runs past the end" },
    { "header_not_json.mmf", "not valid JSON" },
    { "header_not_brace.mmf", "not a safetensors file" },
    { "wrong_version.mmf", "version '99' is not supported" },
    { "wrong_format.mmf", "format 'pytorch' is not mmfuse-model" },
    { "no_metadata.mmf", "no __metadata__" },
    { "bad_config.mmf", "__metadata__.config is not valid JSON" },
  } do
    it(c[1], function() fails({ D .. c[1], c[2] }, mm.load, D .. c[1]) end)
  end

  -- a real model, then damage it
  local ds = S.make { n = 60 }
  local m = mm.model { fusion = "joint", classes = ds.classes, dim = 4, text = { buckets = 40 } }
  m:fit(ds, { epochs = 1, seed = 1 })
  local good = dir .. "/good.mmf"
  m:save(good)
  local bytes = slurp(good)
  local hn = string.unpack("<I8", bytes)

  it("truncated at every tenth of its length", function()
    local p = dir .. "/cut.mmf"
    for k = 0, 9 do
      spit(p, bytes:sub(1, #bytes * k // 10))
      local e = fails({ p }, mm.load, p)
      assert.truthy(e:find("truncated", 1, true) or e:find("past the end", 1, true)
        or e:find("data bytes", 1, true) or e:find("data_offsets", 1, true), e)
    end
    -- one byte short of the end, one byte too many
    spit(p, bytes:sub(1, -2))
    fails({ p }, mm.load, p)
    spit(p, bytes .. "\0")
    fails({ p, "data bytes" }, mm.load, p)
  end)

  it("flipped bytes in the length, header and data: an error naming the file, or an intact model", function()
    local p = dir .. "/flip.mmf"
    local positions = { 1, 4, 8, 9, 12, 8 + hn // 3, 8 + hn // 2, 8 + hn - 1 }
    local errors = 0
    for _, pos in ipairs(positions) do
      spit(p, bytes:sub(1, pos - 1) .. string.char(bytes:byte(pos) ~ 0xA5) .. bytes:sub(pos + 1))
      local ok, e = pcall(mm.load, p)
      if ok then
        assert.truthy(e:predict { text = "tok1_1" }) -- whatever it loaded works
      else
        errors = errors + 1
        assert.truthy(tostring(e):find(p, 1, true), tostring(e))
      end
    end
    assert.truthy(errors >= 5, errors)
    -- a flipped data byte may give another (finite) weight or a NaN, never a crash
    for _, pos in ipairs { 9 + hn, #bytes - 1 } do
      spit(p, bytes:sub(1, pos - 1) .. string.char(bytes:byte(pos) ~ 0xFF) .. bytes:sub(pos + 1))
      local ok, e = pcall(mm.load, p)
      if not ok then assert.truthy(tostring(e):find("non-finite", 1, true), tostring(e)) end
    end
  end)

  it("a file that is not a model at all: a picture, a manifest, a folder", function()
    fails({ "png_zero.png" }, mm.load, B .. "image/png_zero.png")
    fails({ "ragged.tsv" }, mm.load, B .. "manifest/ragged.tsv")
    fails({ dir, "not a regular file" }, mm.load, dir)
  end)
end)

describe("numerical safety", function()
  local texts, labels = {}, {}
  for i = 1, 40 do
    texts[i] = i == 23 and "cat cat cat" or "dog face"
    labels[i] = ({ "a", "b" })[i % 2 + 1]
  end
  local ds = mm.data.new { labels = labels, text = texts }

  -- fit with a per-batch snapshot of one parameter; returns the error and the snapshots
  local function fit_watch(m, pname, fo)
    local snaps = {}
    fo.progress_interval, fo.seed = 0, 1
    fo.on_batch = function(p) snaps[#snaps + 1] = m:param(pname) end
    local ok, e = pcall(m.fit, m, ds, fo)
    assert.is_false(ok, "fit went through")
    return tostring(e), snaps
  end

  it("non-finite feature values are refused when the dataset is built, naming row and column", function()
    for _, bad in ipairs { 0 / 0, math.huge, -math.huge } do
      local rows = {}
      for i = 1, 6 do rows[i] = { i, 1 } end
      rows[5][2] = bad
      fails({ "feature 'f' of row 5 is not finite (column 2)" }, mm.data.new,
        { labels = { "a", "b", "a", "b", "a", "b" }, features = { f = mm.tensor(rows) } })
    end
  end)

  it("a poisoned input (huge word vector) stops fit in its batch, keeping the weights of the batch before", function()
    local vec = dir .. "/poison.vec"
    spit(vec, "cat 3e38 3e38 3e38 3e38\ndog 1 2 3 4\n")
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 4, text = { vectors = vec } }
    local e, snaps = fit_watch(m, "text.embedding", { epochs = 2, batch = 4, lr = 0.01 })
    assert.truthy(e:find(("loss is NaN in batch %d "):format(#snaps + 1), 1, true)
      or e:find(("loss is Inf in batch %d "):format(#snaps + 1), 1, true), e)
    assert.truthy(e:find("weights kept from the batch before", 1, true), e)
    assert.is_true(#snaps < 10) -- in the first epoch: the poisoned row is in it
    if #snaps > 0 then assert.is_true(mm.allclose(m:param("text.embedding"), snaps[#snaps], 0)) end
  end)

  it("a huge learning rate stops fit in the batch that blows up; the model stays usable", function()
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 4, text = { buckets = 10 } }
    local e, snaps = fit_watch(m, "classifier.weight", { epochs = 3, batch = 4, lr = 1e30, optimizer = "sgd" })
    assert.truthy(e:find(("batch %d"):format(#snaps + 1)), e)
    assert.truthy(e:find("NaN", 1, true) or e:find("Inf", 1, true) or e:find("non-finite", 1, true), e)
    assert.is_true(#snaps >= 1)
    assert.is_true(mm.allclose(m:param("classifier.weight"), snaps[#snaps], 0))
    for _, p in ipairs(m:params()) do
      local t = m:param(p.name)
      local s = t:sum()
      assert.is_true(s == s and math.abs(s) < math.huge, p.name)
    end
    -- predicts, saves and loads; more training on these (finite but huge) weights
    -- either works or stops the same clean way
    local cls = m:predict { text = "dog face" }
    assert.truthy(cls == "a" or cls == "b")
    m:save(dir .. "/after_nan.mmf")
    assert.truthy(mm.load(dir .. "/after_nan.mmf"))
    local ok, e2 = pcall(m.fit, m, ds, { epochs = 1, lr = 0.01 })
    if not ok then assert.truthy(tostring(e2):find("in batch 1 ", 1, true), tostring(e2)) end
  end)

  it("Adam with a huge learning rate: an error or finite weights, never NaN weights", function()
    local m = mm.model { fusion = "text", classes = ds.classes, dim = 4, text = { buckets = 10 } }
    local ok, e = pcall(m.fit, m, ds, { epochs = 2, batch = 4, lr = 1e38, seed = 1 })
    if not ok then assert.truthy(tostring(e):find("batch %d+"), tostring(e)) end
    for _, p in ipairs(m:params()) do
      local s = m:param(p.name):sum()
      assert.is_true(s == s, p.name)
    end
  end)
end)

describe("API misuse from Lua", function()
  local ds = S.make { n = 45 }
  local m = mm.model { fusion = "joint", classes = ds.classes, dim = 4, text = { buckets = 40 } }

  it("mm.model", function()
    fails({ "mm.model: expects an option table" }, mm.model, 5)
    fails({ "mm.model: expects an option table" }, mm.model)
    fails({ "'classes' must list at least 2" }, mm.model, {})
    fails({ "class 2 must be a string" }, mm.model, { classes = { "a", 7 } })
    fails({ "class 'a' listed twice" }, mm.model, { classes = { "a", "a" } })
    fails({ "dim must be a positive integer" }, mm.model, { classes = ds.classes, dim = "8" })
    fails({ "dim must be a positive integer" }, mm.model, { classes = ds.classes, dim = 2.5 })
    fails({ "'text' must be an option table or false" }, mm.model, { classes = ds.classes, text = 5 })
    fails({ "unknown pool 'median'" }, mm.model, { classes = ds.classes, pool = "median" })
  end)

  it("untrained models refuse evaluate, predict, save, param", function()
    fails({ "evaluate: the model is not trained yet" }, m.evaluate, m, ds)
    fails({ "predict: the model is not trained yet" }, m.predict, m, { text = "x" })
    fails({ "save: the model is not trained yet" }, m.save, m, dir .. "/u.mmf")
    fails({ "param: the model is not trained yet" }, m.param, m, "classifier.weight")
  end)

  it("fit", function()
    fails({ "fit: expects a dataset" }, m.fit, m)
    fails({ "fit: expects a dataset" }, m.fit, m, { 1, 2, 3 })
    fails({ "fit: expects a dataset" }, m.fit, ds) -- m.fit(ds): forgot the colon
    fails({ "fit: options must be a table, got number" }, m.fit, m, ds, 5)
    fails({ "fit: epochs must be a positive integer" }, m.fit, m, ds, { epochs = "x" })
    fails({ "fit: epochs must be a positive integer" }, m.fit, m, ds, { epochs = 0 })
    fails({ "fit: lr must be a number > 0" }, m.fit, m, ds, { lr = -1 })
    fails({ "fit: lr must be a number > 0" }, m.fit, m, ds, { lr = 0 / 0 })
    fails({ "fit: seed must be an integer" }, m.fit, m, ds, { seed = 1.5 })
    fails({ "batch must be in 1..2^20" }, m.fit, m, ds, { batch = 0, epochs = 1 })
    fails({ "unknown optimizer 'rmsprop' (sgd, adam)" }, m.fit, m, ds, { optimizer = "rmsprop", epochs = 1 })
    fails({ "lr_decay must be a number" }, m.fit, m, ds, { lr_decay = "fast", epochs = 1 })
    local other = mm.data.new { labels = { "x", "y", "z" }, text = { "a", "b", "c" } }
    fails({ "fit: class 1 of the data is 'x', of the model 'class1'" }, m.fit, m, other)
  end)

  it("evaluate, predict, save, load on a trained model", function()
    m:fit(ds, { epochs = 1, seed = 1 })
    fails({ "evaluate: expects a dataset" }, m.evaluate, m)
    fails({ "evaluate: expects a dataset" }, m.evaluate, m, "test.tsv")
    fails({ "evaluate: options must be a table, got number" }, m.evaluate, m, ds, 3)
    fails({ "evaluate: drop must name modalities" }, m.evaluate, m, ds, { drop = 5 })
    fails({ "evaluate: drop must name modalities" }, m.evaluate, m, ds, { drop = { 5 } })
    fails({ "predict: expects a table {text=, image=} or a dataset" }, m.predict, m, 5)
    fails({ "predict: expects a table {text=, image=} or a dataset" }, m.predict, m)
    fails({ "predict: text must be a string" }, m.predict, m, { text = 5 })
    fails({ "predict: text must be a string" }, m.predict, m, { text = { "a" } })
    fails({ "save: expects a path" }, m.save, m)
    fails({ "save: expects a path" }, m.save, m, 5)
    fails({ dir .. "/no/such/dir/m.mmf", "cannot create a temporary file" }, m.save, m, dir .. "/no/such/dir/m.mmf")
    fails({ dir, "rename failed" }, m.save, m, dir)
    fails({ "mm.load: expects a path" }, mm.load)
    fails({ "mm.load: expects a path" }, mm.load, 5)
    fails({ "mm.load: expects a path" }, mm.load, {})
    fails({ "no parameter 'nope'" }, m.param, m, "nope")
    fails({ "classifier.weight needs", "got 1" }, m.set_param, m, "classifier.weight", mm.tensor { 1 })
    -- the model still works after all of that
    assert.truthy(m:predict { text = "tok1_1" })
  end)

  it("data and text", function()
    fails({ "data.load: expects a path" }, mm.data.load)
    fails({ "option 'label' (the class column) is required" }, mm.data.load, B .. "manifest/unknown_label.tsv", {})
    fails({ "option 'text' must be a column name" }, mm.data.load, B .. "manifest/unknown_label.tsv",
      { label = "label", text = 3 })
    fails({ "unknown format 'xml'" }, mm.data.load, B .. "manifest/unknown_label.tsv", { label = "label", format = "xml" })
    fails({ "data.new: expects a table" }, mm.data.new, 5)
    fails({ "data.new: 3 texts for 2 rows" }, mm.data.new, { labels = { "a", "b" }, text = { "x", "y", "z" } })
    fails({ "row 2: label 5 is outside 1..2" }, mm.data.new, { labels = { 1, 5 }, classes = { "a", "b" } })
    fails({ "split: no column 'fold'" }, ds.split, mm.data.new { labels = { "a", "b" } }, { by = "fold" })
    fails({ "bad argument #1", "string expected, got number" }, mm.text.tokenize, 5)
    fails({ "bad argument #1", "got no value" }, mm.text.tokenize)
    fails({ "bad argument #1", "table of texts expected" }, mm.text.vocab, 5)
    fails({ "load_vectors: bad argument #1" }, mm.text.load_vectors, nil, mm.text.vocab({ "a" }))
  end)

  it("tensors", function()
    local t = mm.tensor { { 1, 2 }, { 3, 4 } }
    fails({ "bad argument #1", "nested table or number expected, got string" }, mm.tensor, "x")
    fails({ "ragged nesting: row [2] has 1 entries, expected 2" }, mm.tensor, { { 1, 2 }, { 3 } })
    fails({ "element [1][2] is string" }, mm.tensor, { { 1, "a" } })
    fails({ "matmul", "2x2 and scalar" }, t.matmul, t, 5)
    fails({ "matmul: inner sizes differ" }, t.matmul, t, mm.tensor { 1, 2, 3 })
    fails({ "tensor + string is not supported" }, function() return t + "a" end)
    fails({ "shapes 2x2 and 3 do not match" }, function() return t + mm.tensor { 1, 2, 3 } end)
    fails({ "dimension 5 out of range for shape 2x2" }, t.sum, t, 5)
    fails({ "reshape: shape 2x2 has 4 elements, the requested shape has 7" }, t.reshape, t, 7)
    fails({ "bad argument #1", "negative size -1" }, mm.randn, -1)
    fails({ "bad argument #1", "number expected, got string" }, mm.randn, "x")
    fails({ "bad argument #2", "tensor expected, got number" }, mm.io.save_npy, dir .. "/x.npy", 5)
    assert.are.equal(10, t:sum()) -- still usable
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)

describe("a forged model configuration", function()
  local mm = require "mmfuse"
  local cjson = require "cjson"
  -- a real model file whose JSON header edit(h) rewrites; returns mm.load's error and the path
  local function load_forged(edit)
    local ds = mm.data.new{ labels = { 1, 2, 1, 2 }, classes = { "a", "b" }, text = { "x y", "z w", "x", "w" } }
    local m = mm.model{ fusion = "text", dim = 4, classes = ds.classes, text = { buckets = 10 } }
    m:fit(ds, { epochs = 1, seed = 1 })
    local good = os.tmpname()
    m:save(good)
    local s = slurp(good)
    os.remove(good)
    local n = string.unpack("<I8", s)
    local h = cjson.decode(s:sub(9, 8 + n))
    edit(h)
    local nh = cjson.encode(h)
    local forged = os.tmpname()
    spit(forged, string.pack("<I8", #nh) .. nh .. s:sub(9 + n))
    local ok, err = pcall(mm.load, forged)
    os.remove(forged)
    assert.is_false(ok)
    return err, forged
  end

  it("cannot make mm.load reserve more than the file stores", function()
    local err, forged = load_forged(function(h)
      local cfg = cjson.decode(h.__metadata__.config)
      cfg.dim = 60000 -- with the buckets below: 3.6e8 floats asked for
      cfg.buckets = 6000
      h.__metadata__.config = cjson.encode(cfg)
    end)
    assert.matches("needs more than the 66 floats the file stores", err)
    assert.matches(forged:gsub("%p", "%%%0"), err)
  end)

  it("cannot carry settings the model does not know, nor an out_dim its encoder does not give", function()
    local err, forged = load_forged(function(h)
      local cfg = cjson.decode(h.__metadata__.config)
      cfg.modalities[1].buckets = 600
      h.__metadata__.config = cjson.encode(cfg)
    end)
    assert.matches("unknown option 'buckets'", err)
    assert.matches(forged:gsub("%p", "%%%0"), err)
    err = load_forged(function(h)
      local cfg = cjson.decode(h.__metadata__.config)
      cfg.modalities[1].out_dim = cfg.modalities[1].out_dim + 1
      h.__metadata__.config = cjson.encode(cfg)
    end)
    assert.matches("out_dim %d+ is not the %d+ its encoder gives", err)
  end)

  it("cannot list a class twice (found by fuzz_model: it loaded, then could not predict)", function()
    local err, forged = load_forged(function(h) h.__metadata__.classes = cjson.encode{ "b", "b" } end)
    assert.matches("class 'b' is listed twice", err)
    assert.matches(forged:gsub("%p", "%%%0"), err)
  end)
end)

describe("closing what a training epoch uses", function()
  local mm = require "mmfuse"
  local ds = mm.data.new{ labels = { 1, 2, 1, 2, 1, 2 }, classes = { "a", "b" },
                          text = { "x y", "z w", "x", "w", "y", "z" } }
  it("is refused from inside on_batch, and both stay usable", function()
    local m = mm.model{ fusion = "text", dim = 4, classes = ds.classes, text = { buckets = 10 } }
    local ok, err = pcall(m.fit, m, ds, { epochs = 1, batch = 2, progress_interval = 0, on_batch = function()
      local c <close> = m._c
    end })
    assert.is_false(ok)
    assert.matches("cannot close a model while it is training", tostring(err))
    ok, err = pcall(m.fit, m, ds, { epochs = 1, batch = 2, progress_interval = 0, on_batch = function()
      local c <close> = ds._c
    end })
    assert.is_false(ok)
    assert.matches("cannot close a dataset while a model trains on it", tostring(err))
    m:fit(ds, { epochs = 1, seed = 1 })
    assert.is_string((m:predict{ text = "x y" }))
  end)
end)
