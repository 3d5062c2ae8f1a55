-- mm.image: decode (PNG/JPEG/BMP/GIF/TGA), colour rule, resize, normalise,
-- augment, HSV histogram, batching, and every kind of bad image file.
-- Expected pixels/histograms come from tools/make_image_fixtures.py (PIL).
local mm = require "mmfuse"
local util = require "util"

local DIR = "spec/fixtures/image/"
local expected = dofile(DIR .. "expected.lua")

local function flat(t) return t:reshape{ t:numel() }:totable() end

local read = util.read

-- pixel (y, x, c) of a 3xHxW tensor as the uint8 it came from
local function px(t, c, y, x) return math.floor(t:get(c, y, x) * 255 + 0.5) end

-- compare a decoded 3xHxW tensor with an HxWx3 uint8 list
local function same_pixels(t, e, tol)
  assert.same({ 3, e.h, e.w }, t:shape())
  local worst = 0
  for y = 1, e.h do
    for x = 1, e.w do
      for c = 1, 3 do
        local want = e.px[((y - 1) * e.w + (x - 1)) * 3 + c]
        worst = math.max(worst, math.abs(px(t, c, y, x) - want))
      end
    end
  end
  assert(worst <= (tol or 1e-3), ("pixels differ by up to %g (tolerance %g)"):format(worst, tol or 1e-3))
end

local errors_with = util.errors_with

local assert_mentions = util.assert_mentions

describe("image decoding", function()
  it("decodes PNG, BMP and TGA exactly", function()
    for _, f in ipairs{ "rgb.png", "rgb.bmp", "rgb.tga" } do
      same_pixels(mm.image.load(DIR .. f), expected.rgb)
    end
  end)

  it("takes the first frame of a palette GIF", function()
    same_pixels(mm.image.load(DIR .. "palette.gif"), expected.palette)
  end)

  it("decodes JPEG close to libjpeg (PIL)", function()
    same_pixels(mm.image.load(DIR .. "gradient.jpg"), expected.gradient_jpg, 4)
  end)

  it("turns grey into RGB and composites alpha over white", function()
    local g = mm.image.load(DIR .. "grey.png")
    same_pixels(g, expected.grey)
    for y = 1, 4 do
      for x = 1, 6 do
        assert.equal(g:get(1, y, x), g:get(2, y, x))
        assert.equal(g:get(1, y, x), g:get(3, y, x))
      end
    end
    same_pixels(mm.image.load(DIR .. "grey_alpha.png"), expected.grey_alpha)
    local t = mm.image.load(DIR .. "rgba.png")
    same_pixels(t, expected.rgba)
    -- pixel (1,1) is fully transparent red: white; pixel (1,2) opaque green stays green
    assert.same({ 1, 1, 1 }, { t:get(1, 1, 1), t:get(2, 1, 1), t:get(3, 1, 1) })
    assert.same({ 0, 1, 0 }, { t:get(1, 1, 2), t:get(2, 1, 2), t:get(3, 1, 2) })
  end)

  it("decodes from bytes in memory the same as from a path", function()
    for _, f in ipairs{ "rgb.png", "gradient.jpg", "palette.gif" } do
      local a, b = mm.image.load(DIR .. f), mm.image.decode(read(DIR .. f))
      assert.is_true(mm.allclose(a, b, 0))
    end
  end)

  it("gives values in [0, 1]", function()
    local t = mm.image.load(DIR .. "rgb.png")
    assert.is_true(t:min() >= 0 and t:max() <= 1)
    assert.equal(1, t:max()) -- the white pixel
    assert.equal(0, t:min()) -- the black pixel
  end)

  it("reads the header only with info", function()
    assert.same({ 6, 4, 3 }, { mm.image.info(DIR .. "rgb.png") })
    assert.same({ 6, 4, 4 }, { mm.image.info(DIR .. "rgba.png") })
    assert.same({ 16, 16, 3 }, { mm.image.info(read(DIR .. "gradient.jpg"), true) })
  end)
end)

describe("image resizing", function()
  it("resizes to size = n and to {h, w}", function()
    assert.same({ 3, 32, 32 }, mm.image.load(DIR .. "rgb.png", { size = 32 }):shape())
    assert.same({ 3, 5, 9 }, mm.image.decode(read(DIR .. "rgb.png"), { size = { 5, 9 } }):shape())
    assert.same({ 3, 2, 3 }, mm.image.load(DIR .. "rgb.png", { height = 2, width = 3 }):shape())
    local t = mm.image.load(DIR .. "gradient.jpg", { size = 7 })
    assert.is_true(t:min() >= 0 and t:max() <= 1)
  end)

  it("keeps a solid colour solid, up and down", function()
    for _, s in ipairs{ 3, 32 } do
      local t = mm.image.load(DIR .. "solid.png", { size = s })
      for c, v in ipairs{ 40, 160, 220 } do
        for y = 1, s do
          for x = 1, s do
            assert(math.abs(px(t, c, y, x) - v) <= 1, ("pixel %d,%d,%d is %g, want %d"):format(c, y, x, px(t, c, y, x), v))
          end
        end
      end
    end
  end)

  it("fit = crop takes the centre with the target's aspect ratio", function()
    -- 6x4 -> 4x4: the source window is columns 2..5, no resampling needed
    local t = mm.image.load(DIR .. "rgb.png", { size = 4, fit = "crop" })
    local e = expected.rgb
    for y = 1, 4 do
      for x = 1, 4 do
        for c = 1, 3 do
          assert.equal(e.px[((y - 1) * 6 + x) * 3 + c], px(t, c, y, x))
        end
      end
    end
  end)

  it("keeps the native size when no size is given", function()
    assert.same({ 3, 16, 16 }, mm.image.load(DIR .. "gradient.jpg"):shape())
  end)
end)

describe("image normalisation", function()
  it("subtracts the channel mean and divides by the std", function()
    local t = mm.image.load(DIR .. "rgb.png")
    local n = mm.image.normalize(t, { 0.5, 0.25, 0 }, { 0.5, 2, 0.1 })
    local a, b = flat(t), flat(n)
    local hw = 24
    local mean, std = { 0.5, 0.25, 0 }, { 0.5, 2, 0.1 }
    for i = 1, #a do
      local c = (i - 1) // hw + 1
      assert.near((a[i] - mean[c]) / std[c], b[i], 1e-5)
    end
    assert.is_true(mm.allclose(t, mm.image.load(DIR .. "rgb.png"), 0)) -- input untouched
  end)

  it("knows the ImageNet statistics and works on batches", function()
    local t = mm.image.load(DIR .. "rgb.png")
    local a = mm.image.normalize(t, "imagenet")
    local b = mm.image.normalize(t, { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 })
    assert.is_true(mm.allclose(a, b, 0))
    local batch = mm.image.normalize(mm.image.batch{ t, t }, "imagenet")
    assert.same({ 2, 3, 4, 6 }, batch:shape())
    assert.is_true(mm.allclose(batch, mm.image.batch{ a, a }, 0))
  end)

  it("rejects std <= 0 and wrong channel counts", function()
    local t = mm.image.load(DIR .. "rgb.png")
    assert_mentions(errors_with(mm.image.normalize, t, { 0, 0, 0 }, { 1, 0, 1 }), "std[2]")
    assert_mentions(errors_with(mm.image.normalize, t, { 0, 0 }, { 1, 1, 1 }), "mean", "2 values", "3 channels")
    assert_mentions(errors_with(mm.image.normalize, mm.zeros(4, 4), 0, 1), "CxHxW", "4x4")
  end)
end)

describe("image augmentation", function()
  local t = mm.image.load(DIR .. "rgb.png")

  it("is reproducible from a seed and varies across seeds", function()
    local a = mm.image.augment(t, { crop = 4, pad = 2, flip = true, seed = 7 })
    local b = mm.image.augment(t, { crop = 4, pad = 2, flip = true, seed = 7 })
    assert.same({ 3, 4, 4 }, a:shape())
    assert.is_true(mm.allclose(a, b, 0))
    local distinct = 0
    for s = 1, 12 do
      local c = mm.image.augment(t, { crop = 4, pad = 2, flip = true, seed = s })
      if not mm.allclose(a, c, 0) then distinct = distinct + 1 end
    end
    assert.is_true(distinct >= 6)
  end)

  it("flips horizontally or not, and crops from the image", function()
    local flips, keeps = 0, 0
    for s = 1, 20 do
      local a = mm.image.augment(t, { flip = true, center = true, seed = s })
      if mm.allclose(a, t, 0) then
        keeps = keeps + 1
      else
        flips = flips + 1
        for c = 1, 3 do
          for y = 1, 4 do
            for x = 1, 6 do
              assert.equal(t:get(c, y, x), a:get(c, y, 7 - x))
            end
          end
        end
      end
    end
    assert.is_true(flips >= 3 and keeps >= 3)
    -- a random 3x3 crop without padding is a window of the image
    local a = mm.image.augment(t, { crop = 3, seed = 3 })
    local found = false
    for y0 = 0, 1 do
      for x0 = 0, 3 do
        local ok = true
        for c = 1, 3 do
          for y = 1, 3 do
            for x = 1, 3 do
              if a:get(c, y, x) ~= t:get(c, y0 + y, x0 + x) then ok = false end
            end
          end
        end
        found = found or ok
      end
    end
    assert.is_true(found)
  end)

  it("pads with zeros and centres when asked", function()
    local a = mm.image.augment(t, { crop = { 8, 10 }, pad = 2, center = true })
    assert.same({ 3, 8, 10 }, a:shape())
    for c = 1, 3 do
      for x = 1, 10 do
        assert.equal(0, a:get(c, 1, x))
        assert.equal(0, a:get(c, 8, x))
      end
      for y = 1, 4 do
        for x = 1, 6 do
          assert.equal(t:get(c, y, x), a:get(c, y + 2, x + 2))
        end
      end
    end
  end)

  it("draws per sample in a batch, from the global seed by default", function()
    local batch = mm.image.batch{ t, t, t, t }
    mm.seed(5)
    local a = mm.image.augment(batch, { crop = 4, pad = 1, flip = true })
    mm.seed(5)
    local b = mm.image.augment(batch, { crop = 4, pad = 1, flip = true })
    assert.same({ 4, 3, 4, 4 }, a:shape())
    assert.is_true(mm.allclose(a, b, 0))
  end)

  it("rejects a crop larger than the padded image", function()
    assert_mentions(errors_with(mm.image.augment, t, { crop = 7 }), "crop 7x7", "4x6")
    assert_mentions(errors_with(mm.image.augment, t, { pad = -1 }), "pad")
    assert_mentions(errors_with(mm.image.augment, t, { crop = 0 }), "crop")
  end)
end)

describe("image HSV histogram", function()
  it("matches the reference on every lossless fixture (8x4x4 and 2x2x2)", function()
    for name, file in pairs{ rgb = "rgb.png", rgba = "rgba.png", grey = "grey.png", palette = "palette.gif" } do
      local e = expected[name]
      local h = mm.image.histogram(DIR .. file)
      assert.same({ 128 }, h:shape())
      local v = flat(h)
      for i = 1, 128 do assert.near(e.hist884[i], v[i], 1e-6) end
      local h2 = flat(mm.image.histogram(mm.image.load(DIR .. file), { bins = 2 }))
      assert.equal(8, #h2)
      for i = 1, 8 do assert.near(e.hist222[i], h2[i], 1e-6) end
    end
  end)

  it("is L1-normalised, takes {h, s, v} bins and batches", function()
    local t = mm.image.load(DIR .. "gradient.jpg")
    local h = mm.image.histogram(t, { bins = { 6, 3, 2 } })
    assert.same({ 36 }, h:shape())
    assert.near(1, h:sum(), 1e-5)
    assert.is_true(h:min() >= 0)
    local hb = mm.image.histogram(mm.image.batch{ t, t }, { bins = { 6, 3, 2 } })
    assert.same({ 2, 36 }, hb:shape())
    assert.is_true(mm.allclose(hb:rows(2, 2):reshape{ 36 }, h, 0))
  end)

  it("puts pure colours in their hue bin", function()
    -- red, green, blue, white, black, grey are the first row of rgb.png
    local h = flat(mm.image.histogram(DIR .. "rgb.png", { bins = { 6, 2, 2 } }))
    local function bin(hi, si, vi) return (hi * 2 + si) * 2 + vi + 1 end
    assert.is_true(h[bin(0, 1, 1)] >= 1 / 24) -- red: hue 0, saturated, bright
    assert.is_true(h[bin(2, 1, 1)] >= 1 / 24) -- green: hue 120
    assert.is_true(h[bin(4, 1, 1)] >= 1 / 24) -- blue: hue 240
    assert.is_true(h[bin(0, 0, 0)] >= 1 / 24) -- black
  end)

  it("rejects bad bins, NaN and non-RGB tensors", function()
    local t = mm.image.load(DIR .. "rgb.png")
    assert_mentions(errors_with(mm.image.histogram, t, { bins = 0 }), "bins")
    assert_mentions(errors_with(mm.image.histogram, t, { bins = { 8, 4 } }), "bins")
    local bad = t:clone()
    bad:set(2, 2, 2, 0 / 0)
    assert_mentions(errors_with(mm.image.histogram, bad), "NaN")
    assert_mentions(errors_with(mm.image.histogram, mm.zeros(2, 4, 4)), "3 channels", "2x4x4")
    assert_mentions(errors_with(mm.image.histogram, 42), "tensor or path")
  end)
end)

describe("image batching", function()
  it("stacks CxHxW images into NCHW", function()
    local a, b = mm.image.load(DIR .. "rgb.png"), mm.image.load(DIR .. "grey.png")
    local batch = mm.image.batch{ a, b }
    assert.same({ 2, 3, 4, 6 }, batch:shape())
    assert.is_true(mm.allclose(batch:rows(1, 1):reshape{ 3, 4, 6 }, a, 0))
    assert.is_true(mm.allclose(batch:rows(2, 2):reshape{ 3, 4, 6 }, b, 0))
  end)

  it("names the image that does not fit", function()
    local a = mm.image.load(DIR .. "rgb.png")
    local b = mm.image.load(DIR .. "gradient.jpg")
    assert_mentions(errors_with(mm.image.batch, { a, a, b }), "image 3", "3x16x16", "3x4x6")
    assert_mentions(errors_with(mm.image.batch, { a, "x" }), "image 2")
    assert_mentions(errors_with(mm.image.batch, {}), "empty")
  end)
end)

describe("bad image input", function()
  local cases = {
    -- file, what the message says, whether the header alone is bad (info fails too)
    { "empty.png", "empty file", true },
    { "truncated.png", "corrupt or truncated", false },
    { "truncated.jpg", "corrupt or truncated", false },
    { "corrupt.png", "corrupt or truncated", false },
    { "corrupt.jpg", "not a supported image", true },
    { "huge.png", "100000x100000 out of range", true },
    { "huge.jpg", "60000x60000 out of range", true },
    { "huge.gif", "9000x9000 out of range", true },
    { "not_an_image.txt", "not a supported image", true },
    { "unsupported.webp", "not a supported image", true },
    { "does_not_exist.png", "cannot open", true },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " is an error naming the file", function()
      local path = DIR .. case[1]
      assert_mentions(errors_with(mm.image.load, path, { size = 32 }), path, case[2])
      assert_mentions(errors_with(mm.image.histogram, path), path, case[2])
      if case[1] ~= "does_not_exist.png" and case[1] ~= "empty.png" then
        assert_mentions(errors_with(mm.image.decode, read(path), { name = "post 17" }), "post 17", case[2])
      end
      if case[3] then
        assert_mentions(errors_with(mm.image.info, path), path, case[2])
      else
        local w, h = mm.image.info(path) -- the header is intact: only decoding fails
        assert.is_true(w >= 6 and h >= 4)
      end
    end)
  end

  it("refuses JPEG Huffman tables stb 2.27 would overflow, also behind 0xFF fill bytes", function()
    -- found by fuzz_image (fuzz/corpus/fuzz_image/): > 256 codes in a table overflow stb's
    -- 257-entry arrays; stb skips any 0xFF run before the SOI marker, so the guard must too
    for _, f in ipairs{ "jpeg-dht-overflow.jpg", "jpeg-dht-overflow2.jpg", "jpeg-dht-fill-bytes.jpg" } do
      local bytes = read("fuzz/corpus/fuzz_image/" .. f)
      assert_mentions(errors_with(mm.image.decode, bytes, { name = f }), f, "corrupt JPEG", "Huffman table")
    end
  end)

  it("refuses a PNG cut off inside an empty IDAT chunk (stb 2.27 offset a NULL buffer there)", function()
    -- found by fuzz_png_fast (clang's UBSan flags the NULL offset; the file is in its corpus, so CI replays it)
    local bytes = read("fuzz/corpus/fuzz_png_fast/empty-idat-no-crc.png")
    assert_mentions(errors_with(mm.image.decode, bytes, { name = "cut.png" }), "cut.png", "corrupt or truncated")
  end)

  it("refuses formats it does not document: a PPM (stb 2.27 overflowed an int on its header)", function()
    -- found by fuzz_png_fast: "P6" and a 55-digit width; stb's PNM reader multiplied past
    -- INT_MAX (UBSan). PNM, PSD, HDR and PIC are compiled out of stb now.
    local bytes = read("fuzz/corpus/fuzz_image/pnm-huge-width.ppm")
    assert_mentions(errors_with(mm.image.decode, bytes, { name = "x.ppm" }), "x.ppm", "not a supported image")
    assert_mentions(errors_with(mm.image.decode, "P6\n2 2\n255\n" .. ("\0"):rep(12), { name = "ok.ppm" }), "ok.ppm",
      "not a supported image")
  end)

  it("decodes a truncated TGA the same way every time, without heap garbage (stb 2.27 left rows unwritten)", function()
    -- found by fuzz_png_fast: 21 bytes declaring a 224x16 grey + alpha TGA; stb could not read
    -- any row and returned its buffer as it was. stb's buffers are zeroed now: alpha 0 over white.
    local bytes = read("fuzz/corpus/fuzz_image/tga-truncated-uninit.tga")
    local t = mm.image.decode(bytes)
    assert.same({ 3, 16, 224 }, t:shape())
    assert.equal(1, t:min())
    assert.equal(1, t:max())
  end)

  it("rejects empty bytes, a folder and bad options", function()
    assert_mentions(errors_with(mm.image.decode, ""), "<bytes>", "empty")
    assert_mentions(errors_with(mm.image.load, "spec/fixtures/image"), "spec/fixtures/image")
    assert_mentions(errors_with(mm.image.load, DIR .. "rgb.png", { size = 0 }), "size")
    assert_mentions(errors_with(mm.image.load, DIR .. "rgb.png", { size = 9000 }), "size", "8192")
    assert_mentions(errors_with(mm.image.load, DIR .. "rgb.png", { size = "big" }), "size")
    assert_mentions(errors_with(mm.image.load, DIR .. "rgb.png", { fit = "zoom" }), "fit", "zoom")
    assert_mentions(errors_with(mm.image.load, DIR .. "rgb.png", { height = 4 }), "width")
    assert_mentions(errors_with(mm.image.decode, {}), "string expected")
  end)

  it("lives on after many bad files (no state left behind)", function()
    for _ = 1, 20 do
      pcall(mm.image.load, DIR .. "corrupt.png")
      pcall(mm.image.load, DIR .. "huge.jpg")
    end
    same_pixels(mm.image.load(DIR .. "rgb.png"), expected.rgb)
  end)
end)

describe("image backbones (resnet18, mobilenet_v2)", function()
  package.path = "spec/fixtures/image/?.lua;" .. package.path
  local W = require "backbone_weights"

  local function names_file(arch)
    local out = {}
    for line in io.lines(DIR .. arch .. "_names.txt") do
      local name, shape = line:match("^(%S+) (%S+)$")
      out[#out + 1] = { name = name, shape = shape }
    end
    return out
  end

  -- raw float32 bytes of a tensor (through a .npy file: header stripped)
  local function f32_bytes(t, tmp)
    mm.io.save_npy(tmp, t)
    local s = read(tmp)
    local hlen = s:byte(9) + 256 * s:byte(10)
    return s:sub(11 + hlen)
  end

  local function write_safetensors(path, header, blobs)
    local cjson = require "cjson"
    local h = cjson.encode(header)
    h = h .. string.rep(" ", (8 - #h % 8) % 8)
    local f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", #h), h, table.concat(blobs))
    f:close()
  end

  for _, arch in ipairs{ "resnet18", "mobilenet_v2" } do
    it(arch .. " names and shapes its parameters as torchvision's state_dict", function()
      local b = mm.image.backbone(arch)
      local ps, want = b:params(), names_file(arch)
      assert.equal(#want, #ps)
      for i, p in ipairs(ps) do
        assert.equal(want[i].name, p.name)
        assert.equal(want[i].shape, table.concat(p.shape, "x"))
      end
    end)

    it(arch .. " matches torchvision's forward at 224 px (max abs diff < 1e-3)", function()
      local b = mm.image.backbone(arch)
      W.fill(mm, b, arch == "resnet18" and 18 or 2)
      local y = b:forward(W.input(mm, 2, 224))
      local ref = mm.io.load_npy(DIR .. arch .. "_pooled.npy")
      assert.same(ref:shape(), y:shape())
      assert.equal(b:dim(), y:shape()[2])
      local diff = (y - ref):abs():max()
      assert(diff < 1e-3, ("max abs diff %g vs torchvision"):format(diff))
      assert.is_true(ref:abs():max() > 0.5) -- the reference is not degenerate
    end)
  end

  it("loads torchvision-named safetensors and rejects bad files naming them", function()
    local d = os.tmpname()
    local src = mm.image.backbone("mobilenet_v2")
    W.fill(mm, src, 2)
    local header, blobs, off = { __metadata__ = { arch = "mobilenet_v2" } }, {}, 0
    for _, p in ipairs(src:params()) do
      local bytes = f32_bytes(src:get(p.name), d .. ".npy")
      header[p.name] = { dtype = "F32", shape = p.shape, data_offsets = { off, off + #bytes } }
      blobs[#blobs + 1] = bytes
      off = off + #bytes
    end
    -- a classifier head and a counter are skipped
    header["classifier.1.bias"] = { dtype = "F32", shape = { 1 }, data_offsets = { off, off + 4 } }
    blobs[#blobs + 1] = string.pack("<f", 1)
    local path = d .. ".safetensors"
    write_safetensors(path, header, blobs)
    local b = mm.image.backbone("mobilenet_v2", { weights = path })
    local x = W.input(mm, 1, 32)
    assert.is_true(mm.allclose(src:forward(x), b:forward(x), 0))
    local b2 = mm.image.backbone("mobilenet_v2")
    b2:load(path)
    assert.is_true(mm.allclose(b2:get("features.18.1.running_var"), src:get("features.18.1.running_var"), 0))

    local function fails_with(hdr, bl, ...)
      write_safetensors(path, hdr, bl)
      assert_mentions(errors_with(mm.image.backbone, "mobilenet_v2", { weights = path }), path, ...)
    end
    local first = "features.0.0.weight"
    local keep = header[first]
    header[first] = nil
    fails_with(header, blobs, "missing tensor '" .. first .. "'")
    header[first] = { dtype = "F16", shape = keep.shape, data_offsets = keep.data_offsets }
    fails_with(header, blobs, "dtype F16")
    header[first] = { dtype = "F32", shape = { 32, 3, 3 }, data_offsets = keep.data_offsets }
    fails_with(header, blobs, "shape 32x3x3", "32x3x3x3")
    header[first] = { dtype = "F32", shape = keep.shape, data_offsets = { off * 2, off * 2 + 3456 } }
    fails_with(header, blobs, "data_offsets")
    header[first] = keep
    header["layer1.0.conv1.weight"] = keep
    fails_with(header, blobs, "unexpected tensor 'layer1.0.conv1.weight'")
    -- broken framing
    local f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", 1 << 40), "{}")
    f:close()
    assert_mentions(errors_with(mm.image.backbone, "mobilenet_v2", { weights = path }), path, "header length")
    f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", 6), "{nope}")
    f:close()
    assert_mentions(errors_with(mm.image.backbone, "mobilenet_v2", { weights = path }), path, "JSON")
    f = assert(io.open(path, "wb"))
    f:write("abc")
    f:close()
    assert_mentions(errors_with(mm.image.backbone, "mobilenet_v2", { weights = path }), path, "not a safetensors")
    os.remove(path)
    os.remove(d .. ".npy")
    os.remove(d)
    assert_mentions(errors_with(mm.image.backbone, "resnet18", { weights = path }), path, "cannot open")
  end)

  it("rejects unknown architectures, bad inputs and bad parameters", function()
    assert_mentions(errors_with(mm.image.backbone, "vgg16"), "unknown architecture 'vgg16'")
    local b = mm.image.backbone("mobilenet_v2")
    assert_mentions(errors_with(b.forward, b, mm.zeros(1, 1, 32, 32)), "3 channels", "1x1x32x32")
    assert_mentions(errors_with(b.forward, b, mm.zeros(32, 32)), "Nx3xHxW", "32x32")
    assert_mentions(errors_with(b.forward, b, mm.zeros(1, 3, 8, 8)), "16..4096")
    local nan = mm.zeros(1, 3, 16, 16)
    nan:set(1, 2, 3, 4, 0 / 0)
    assert_mentions(errors_with(b.forward, b, nan), "NaN")
    assert_mentions(errors_with(b.set, b, "features.0.0.weight", mm.zeros(3, 3)), "32x3x3x3", "3x3")
    assert_mentions(errors_with(b.set, b, "fc.weight", mm.zeros(3)), "no parameter named 'fc.weight'")
    assert_mentions(errors_with(b.set_raw, b, "features.0.1.bias", "abc", 0), "needs 128 bytes")
    assert.truthy(tostring(b):find("mobilenet_v2 backbone", 1, true))
  end)
end)

describe("features from .npy (io.load_features)", function()
  local NPY = "spec/fixtures/npy/"
  it("returns rows x dim and checks the row count", function()
    local t = mm.io.load_features(NPY .. "f32_3x4.npy", { rows = 3 })
    assert.same({ 3, 4 }, t:shape())
    assert_mentions(errors_with(mm.io.load_features, NPY .. "f32_3x4.npy", { rows = 5 }), NPY .. "f32_3x4.npy",
      "3 feature rows for 5 dataset rows")
  end)

  it("rejects non-2-D arrays and non-finite rows, naming file and row", function()
    assert_mentions(errors_with(mm.io.load_features, NPY .. "f32_vec5.npy"), NPY .. "f32_vec5.npy", "2-D", "shape 5")
    assert_mentions(errors_with(mm.io.load_features, NPY .. "f64_2x3x2.npy"), "2x3x2")
    local p = os.tmpname()
    local t = mm.ones(4, 3)
    t:set(3, 2, 0 / 0)
    mm.io.save_npy(p, t)
    assert_mentions(errors_with(mm.io.load_features, p), p, "row 3", "NaN")
    os.remove(p)
    assert_mentions(errors_with(mm.io.load_features, NPY .. "int64.npy"), "dtype")
  end)
end)

describe("image decoding of legal oddities", function()
  it("decodes a PNG with empty IDAT chunks (stb 2.27 would offset a NULL buffer)", function()
    local img = mm.image.load("spec/fixtures/image/empty_idat.png")
    assert.same({ 3, 2, 2 }, img:shape())
    assert.is_true(mm.allclose(img:reshape(3, 4):mean(2), mm.tensor{ 200 / 255, 30 / 255, 40 / 255 }, 1e-6))
  end)
end)
