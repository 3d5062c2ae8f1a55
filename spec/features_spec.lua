-- mm.features (the feature cache) and frozen backbones as a model's image encoder.
-- Small: 8 images of data/emoji32 at 32 px, random backbone weights (no torch needed).
local mm = require "mmfuse"
local util = require "util"

local dir = util.tmpdir()

local IMG = "data/emoji32/images/"
local pics = { "1F431.png", "1F600.png", "1F436.png", "2764-FE0F.png", "1F34E.png", "1F697.png", "1F3E0.png", "1F31E.png" }
for _, p in ipairs(pics) do assert(io.open(IMG .. p, "rb"), "fixture image " .. p):close() end

local function abs_img(p) return os.getenv("PWD") .. "/" .. IMG .. p end

local write = util.write

-- a manifest: 10 rows; row 4 has no image, row 7 no label (kept by features, skipped by data.load)
local manifest = dir .. "/posts.tsv"
local function make_manifest(path, swap)
  local lines = { "caption\tlabel\timage" }
  local labels = { "a", "b", "a", "b", "a", "", "b", "a", "b", "a" }
  local k = 0
  for i = 1, 10 do
    local img = ""
    if i ~= 4 then
      k = k % #pics + 1
      img = abs_img(pics[k])
      if swap and i == 2 then img = abs_img(pics[8]) end
    end
    lines[#lines + 1] = ("post %d\t%s\t%s"):format(i, labels[i], img)
  end
  write(path, table.concat(lines, "\n") .. "\n")
end
make_manifest(manifest)

local function mtime_token(path) -- the file's bytes: unchanged bytes + unchanged counter = not rewritten
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("mm.features.extract", function()
  it("writes an .npy and a sidecar, reuses them, and recomputes when an input changes", function()
    local cache = dir .. "/c1"
    assert(os.execute("mkdir -p " .. cache))
    local n0 = mm.features.counter()
    local t, info = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    assert.are.same({ 10, 128 }, t:shape()) -- all 10 manifest rows, default bins 8x4x4
    assert.is_false(info.reused)
    assert.are.equal(9, info.computed)
    assert.are.same({ 4 }, info.missing)
    assert.is_false(info.mask[4])
    assert.are.equal(0, t[4]:abs():sum())
    assert.are.equal(9, mm.features.counter() - n0)
    local side = require("cjson").decode(mtime_token(info.sidecar))
    assert.are.equal("mmfuse-features", side.format)
    assert.are.equal("histogram", side.encoder)
    assert.are.equal(10, side.rows)
    assert.are.equal(32, side.size)
    assert.are.equal(manifest, side.source)
    assert.are.equal(16, #side.paths_hash)
    local bytes = mtime_token(info.path)

    -- same inputs: nothing encoded, the file untouched
    local t2, info2 = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    assert.is_true(info2.reused)
    assert.are.equal(0, info2.computed)
    assert.are.equal(9, mm.features.counter() - n0)
    assert.is_true(mm.allclose(t, t2, 0, 0))
    assert.are.equal(bytes, mtime_token(info.path))
    assert.are.same({ 4 }, info2.missing)

    -- another image size: recomputed (a new file name per encoder and size)
    local _, i3 = mm.features.extract(manifest, { encoder = "histogram", size = 16, cache = cache })
    assert.is_false(i3.reused)
    -- another bins setting into the same explicit path: the description differs, recomputed
    local p = cache .. "/explicit.npy"
    mm.features.extract(manifest, { encoder = "histogram", cache = p })
    local _, i4 = mm.features.extract(manifest, { encoder = "histogram", bins = { 4, 2, 2 }, cache = p })
    assert.is_false(i4.reused)
    assert.are.equal(16, i4.dim)
    assert.are.equal(16, mm.io.load_npy(p):shape()[2])
    -- a changed image path in the manifest: recomputed
    make_manifest(manifest, true)
    local t5, i5 = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    assert.is_false(i5.reused)
    assert.is_false(mm.allclose(t, t5))
    make_manifest(manifest)
    local _, i6 = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    assert.is_false(i6.reused)
    local _, i7 = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    assert.is_true(i7.reused)
    -- a corrupt sidecar or a truncated .npy: recomputed, not trusted
    write(i7.sidecar, "{not json")
    assert.is_false(select(2, mm.features.extract(manifest, { encoder = "histogram", cache = cache })).reused)
    write(i7.path, "\147NUMPY")
    assert.is_false(select(2, mm.features.extract(manifest, { encoder = "histogram", cache = cache })).reused)
    assert.is_true(select(2, mm.features.extract(manifest, { encoder = "histogram", cache = cache })).reused)
  end)

  it("mm.data.load(image_features=) treats the rows without an image as image-absent", function()
    local cache = dir .. "/feats.npy"
    local t = mm.features.extract(manifest, { encoder = "histogram", cache = cache })
    local ds = mm.data.load(manifest, { text = "caption", label = "label", image_features = cache })
    assert.are.equal(9, #ds) -- the unlabelled row 6 is skipped
    local mask = ds:mask("image")
    local want = { true, true, true, false, true, true, true, true, true } -- manifest rows 1-5, 7-10
    assert.are.same(want, mask)
    for _, m in ipairs(ds:modalities()) do
      if m.name == "image" then
        assert.are.equal(8, m.present)
        assert.are.equal(128, m.dim)
      end
    end
    assert.are.equal(10, t:shape()[1])
  end)

  it("backbone rows equal mm.image.backbone(...):forward on the same preprocessed image", function()
    local ds = mm.data.load(manifest, { text = "caption", label = "label", image = "image" })
    for _, arch in ipairs { "mobilenet_v2", "resnet18" } do
      local t, info = mm.features.extract(ds, { encoder = arch, size = 32, seed = 7 })
      assert.are.same({ 9, arch == "resnet18" and 512 or 1280 }, t:shape())
      assert.are.same({ 4 }, info.missing)
      assert.is_true(info.random)
      -- the same random weights by hand: mm.seed(7) and Kaiming-normal over fan_in
      local net = mm.image.backbone(arch)
      mm.seed(7)
      for _, p in ipairs(net:params()) do
        local leaf = p.name:match("([^.]+)$")
        if #p.shape == 4 then
          net:set(p.name, mm.randn(p.shape) * math.sqrt(2 / (p.shape[2] * p.shape[3] * p.shape[4])))
        elseif leaf == "weight" or leaf == "running_var" then
          net:set(p.name, mm.ones(p.shape))
        end
      end
      for r, pic in pairs { [1] = pics[1], [5] = pics[4] } do -- dataset row 5 = manifest row 5 = 4th image
        local img = mm.image.normalize(mm.image.load(abs_img(pic), { size = 32 }), "imagenet")
        local y = net:forward(mm.image.batch { img })
        assert.is_true(y:abs():sum() > 0)
        assert.is_true(mm.allclose(y[1], t[r], 1e-5, 1e-5))
      end
      assert.are.equal(0, t[4]:abs():sum())
    end
  end)

  it("rejects bad input with clear errors", function()
    local ds = mm.data.load(manifest, { text = "caption", label = "label", image = "image" })
    assert.has_error(function() mm.features.extract(ds, { encoder = "vgg16" }) end,
      "features: unknown encoder 'vgg16' (resnet18, mobilenet_v2, histogram, or a TF.js model.json path)")
    assert.has_error(function() mm.features.extract(ds, {}) end,
      "features: option 'encoder' is required (resnet18, mobilenet_v2, histogram, or a TF.js model.json path)")
    local ok, err = pcall(mm.features.extract, ds, { encoder = "resnet18", weights = dir .. "/nope.safetensors" })
    assert.is_false(ok)
    assert.truthy(err:find("nope.safetensors: cannot open", 1, true))
    write(dir .. "/bad.safetensors", "garbage")
    ok, err = pcall(mm.features.extract, ds, { encoder = "resnet18", weights = dir .. "/bad.safetensors" })
    assert.is_false(ok)
    assert.truthy(err:find("bad.safetensors: not a safetensors file", 1, true))
    ok, err = pcall(mm.features.extract, 42, { encoder = "histogram" })
    assert.is_false(ok)
    assert.truthy(err:find("expects a dataset", 1, true))
    local textonly = mm.data.new { labels = { "a", "b" }, text = { "x", "y" } }
    ok, err = pcall(mm.features.extract, textonly, { encoder = "histogram" })
    assert.is_false(ok)
    assert.truthy(err:find("no image files", 1, true))
    ok, err = pcall(mm.features.extract, manifest, { encoder = "histogram", image = "picture" })
    assert.is_false(ok)
    assert.truthy(err:find("no image column 'picture'", 1, true))
    ok, err = pcall(mm.features.extract, ds, { encoder = "histogram", cache = dir .. "/no/such/dir" })
    assert.is_false(ok)
    assert.truthy(err:find("does not exist", 1, true))
    ok, err = pcall(mm.features.extract, ds, { encoder = "mobilenet_v2", size = 8 })
    assert.is_false(ok)
    assert.truthy(err:find("size must be an integer in 16..4096", 1, true))
    -- an image that went missing after the dataset was loaded: the row is named
    local gone = dir .. "/gone.png"
    write(gone, mtime_token(IMG .. pics[1]))
    local ds2 = mm.data.new { labels = { "a", "b" }, image = { abs_img(pics[2]), gone } }
    os.remove(gone)
    ok, err = pcall(mm.features.extract, ds2, { encoder = "histogram" })
    assert.is_false(ok)
    assert.truthy(err:find("row 2", 1, true))
  end)
end)

describe("a frozen backbone as the model's image encoder", function()
  local ds = mm.data.load(manifest, { text = "caption", label = "label", image = "image" })
  local train, test = ds:subset { 1, 2, 3, 4, 5, 6 }, ds:subset { 7, 8, 9 }

  it("trains, evaluates with drop, predicts one post, saves and loads with identical predictions", function()
    local m = mm.model { fusion = "joint", dim = 8, classes = ds.classes, text = { buckets = 100 },
      image = { encoder = "mobilenet_v2", size = 32 } }
    assert.truthy(tostring(m):find("RANDOM weights", 1, true))
    assert.is_true(m:config().backbone.random)
    local n0 = mm.features.counter()
    m:fit(train, { epochs = 3, lr = 0.01, batch = 4, seed = 1 })
    assert.are.equal(5, mm.features.counter() - n0) -- 6 rows, 1 without an image
    m:fit(train, { epochs = 1, lr = 0.01, batch = 4, seed = 1 })
    assert.are.equal(5, mm.features.counter() - n0) -- cached for this dataset object
    local cfg = m:config()
    assert.are.equal("image:mobilenet_v2", cfg.modalities[2].name)
    assert.are.equal("features", cfg.modalities[2].encoder)
    assert.are.equal(1280, cfg.modalities[2].in_dim)
    local full = m:evaluate(test)
    local noimg = m:evaluate(test, { drop = "image" })
    local notext = m:evaluate(test, { drop = "text" })
    assert.are.equal(3, full.n)
    assert.are.equal(3, noimg.n)
    -- dropping the image changes the probabilities (the backbone rows are really used)
    assert.is_false(mm.allclose(full.probs, noimg.probs, 1e-6, 1e-6))
    assert.is_false(mm.allclose(full.probs, notext.probs, 1e-6, 1e-6))
    -- one post: the backbone runs on that image; the same as the row in the dataset
    -- (test row 1 = dataset row 7 = manifest row 8: "post 8", the 7th image)
    local cls, probs = m:predict { text = "post 8", image = abs_img(pics[7]) }
    assert.truthy(probs[cls])
    local _, P = m:predict(test)
    assert.is_true(math.abs(P[1][1] - probs[ds.classes[1]]) < 1e-5)
    local _, bytes_probs = m:predict { text = "post 8", image = mtime_token(IMG .. pics[7]) }
    assert.is_true(math.abs(bytes_probs.a - probs.a) < 1e-5)
    local _, textonly = m:predict { text = "post 8" }
    assert.is_true(math.abs(textonly.a - probs.a) > 1e-7)

    local f = dir .. "/bb.mmf"
    m:save(f)
    local fh = assert(io.open(f, "rb"))
    local size = fh:seek("end")
    fh:close()
    assert.is_true(size < 200000) -- the backbone weights are not in the file
    local m2 = mm.load(f)
    assert.are.equal("mobilenet_v2", m2:config().backbone.arch)
    assert.truthy(tostring(m2):find("RANDOM weights", 1, true))
    local _, P2 = m2:predict(test)
    assert.is_true(mm.allclose(P, P2, 0, 0))
    local _, again = m2:predict { text = "post 8", image = abs_img(pics[7]) }
    assert.are.equal(probs.a, again.a)
    assert.are.equal(noimg.accuracy, m2:evaluate(test, { drop = "image" }).accuracy)
  end)

  it("keeps the backbone rows on disk with image.cache", function()
    local cache = dir .. "/mc"
    assert(os.execute("mkdir -p " .. cache))
    local function fresh()
      return mm.model { fusion = "image", dim = 4, classes = ds.classes,
        image = { encoder = "resnet18", size = 32, cache = cache } }
    end
    local n0 = mm.features.counter()
    fresh():fit(train, { epochs = 1, lr = 0.01, seed = 1 })
    assert.are.equal(5, mm.features.counter() - n0)
    local m = fresh()
    m:fit(train, { epochs = 1, lr = 0.01, seed = 1 }) -- another model object: the disk cache
    assert.are.equal(5, mm.features.counter() - n0)
    assert.are.equal(3, m:evaluate(test).n)
  end)

  it("a text-only model ignores the backbone (no image files needed)", function()
    local tds = mm.data.new { labels = { "a", "b", "a", "b" }, text = { "x y", "z", "x", "z w" } }
    local n0 = mm.features.counter()
    local m = mm.model { fusion = "text", classes = tds.classes, image = { encoder = "mobilenet_v2", size = 32 } }
    m:fit(tds, { epochs = 1, seed = 1 })
    assert.are.equal(4, m:evaluate(tds).n)
    assert.are.equal(n0, mm.features.counter())
  end)

  it("uses a weights file: rows match the loaded backbone, the model file checks the file", function()
    -- a mobilenet_v2 safetensors file written from deterministic weights (no torch at test time)
    local W = dofile("spec/fixtures/image/backbone_weights.lua")
    local net = mm.image.backbone("mobilenet_v2")
    W.fill(mm, net, 3)
    local header, blobs, off = {}, {}, 0
    local tmp = dir .. "/p.npy"
    for _, p in ipairs(net:params()) do
      mm.io.save_npy(tmp, net:get(p.name))
      local raw = mtime_token(tmp)
      local hl = string.unpack("<I2", raw, 9)
      local body = raw:sub(10 + hl + 1)
      header[p.name] = { dtype = "F32", shape = p.shape, data_offsets = { off, off + #body } }
      blobs[#blobs + 1] = body
      off = off + #body
    end
    local js = require("cjson").encode(header)
    local wpath = dir .. "/mnv2.safetensors"
    write(wpath, string.pack("<I8", #js) .. js .. table.concat(blobs))

    local rows, info = mm.features.extract(ds, { encoder = "mobilenet_v2", weights = wpath, size = 32,
      cache = dir .. "/w.npy" })
    assert.is_nil(info.random)
    local img = mm.image.normalize(mm.image.load(abs_img(pics[1]), { size = 32 }), "imagenet")
    assert.is_true(mm.allclose(net:forward(mm.image.batch { img })[1], rows[1], 1e-5, 1e-5))

    local m = mm.model { fusion = "image", dim = 4, classes = ds.classes,
      image = { encoder = "mobilenet_v2", weights = wpath, size = 32 } }
    assert.truthy(tostring(m):find("weights " .. wpath, 1, true))
    m:fit(train, { epochs = 1, lr = 0.01, seed = 1 })
    local f = dir .. "/w.mmf"
    m:save(f)
    local _, P = m:predict(test)
    local _, P2 = mm.load(f):predict(test)
    assert.is_true(mm.allclose(P, P2, 0, 0))
    -- the weights change (same size): the cache recomputes, the model file refuses them
    local bytes = mtime_token(wpath)
    local at = 8 + #js + 1
    write(wpath, bytes:sub(1, at - 1) .. string.pack("<f", 0.25) .. bytes:sub(at + 4))
    local _, i2 = mm.features.extract(ds, { encoder = "mobilenet_v2", weights = wpath, size = 32, cache = dir .. "/w.npy" })
    assert.is_false(i2.reused)
    local ok, err = pcall(mm.load, f)
    assert.is_false(ok)
    assert.truthy(err:find("not the file the model was trained with", 1, true))
    os.remove(wpath)
    ok, err = pcall(mm.load, f)
    assert.is_false(ok)
    assert.truthy(err:find("mnv2.safetensors: cannot open", 1, true))
  end)

  it("gives clear errors for bad backbone options and data", function()
    local ok, err = pcall(mm.model, { classes = ds.classes, image = { encoder = "mobilenet_v2",
      weights = dir .. "/missing.safetensors" } })
    assert.is_false(ok)
    assert.truthy(err:find("mm.model: image: weights file .*missing.safetensors: cannot open"))
    ok, err = pcall(mm.model, { classes = ds.classes, image = { encoder = "mobilenet_v2", size = 3 } })
    assert.is_false(ok)
    assert.truthy(err:find("size must be an integer", 1, true))
    ok, err = pcall(mm.model, { classes = ds.classes, image = { encoder = "mobilenet_v2", cache = 5 } })
    assert.is_false(ok)
    assert.truthy(err:find("image.cache must be", 1, true))
    -- precomputed features instead of image files
    local feats = dir .. "/f.npy"
    mm.features.extract(manifest, { encoder = "histogram", cache = feats })
    local fds = mm.data.load(manifest, { label = "label", image_features = feats })
    local m = mm.model { fusion = "image", dim = 4, classes = ds.classes, image = { encoder = "mobilenet_v2", size = 32 } }
    ok, err = pcall(m.fit, m, fds)
    assert.is_false(ok)
    assert.truthy(err:find("fit: the image encoder mobilenet_v2 needs image files", 1, true))
    m:fit(train, { epochs = 1, seed = 1 })
    ok, err = pcall(m.predict, m, { image = dir .. "/nothing.png" })
    assert.is_false(ok)
    assert.truthy(err:find("predict: ", 1, true) and err:find("nothing.png", 1, true))
    ok, err = pcall(m.predict, m, { image = 12 })
    assert.is_false(ok)
    assert.truthy(err:find("predict: image must be a path or the image bytes", 1, true))
    -- a model file whose weights reference changed
    local f = dir .. "/m.mmf"
    m:save(f)
    local s = mtime_token(f)
    local patched = s:gsub('\\"arch\\":\\"mobilenet_v2\\"', '\\"arch\\":\\"vgg999999999\\"')
    assert.are_not.equal(s, patched)
    write(f, patched)
    ok, err = pcall(mm.load, f)
    assert.is_false(ok)
    assert.truthy(err:find("unknown image backbone 'vgg999999999'", 1, true))
  end)
end)

teardown(function() os.execute("rm -rf " .. dir) end)
