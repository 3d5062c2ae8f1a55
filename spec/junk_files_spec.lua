-- Junk in real folders: every entry point that reads a file of user data refuses a path that is
-- not a regular file WITHOUT reading it (csrc/io/file.c): a FIFO must not hang the call (opening
-- one for reading waits for a writer forever), /dev/zero must not be read (it never ends), and a
-- directory is an error. Each entry point runs in a child process under `timeout 10`, so a
-- regression fails the spec instead of hanging the suite. Image files above a size cap and
-- pictures above a pixel cap are refused before they are read or decoded.
local mm = require "mmfuse"
local util = require "util"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = util.tmpdir()
local FIFO = dir .. "/junk.fifo"
assert(os.execute("mkfifo " .. q(FIFO)), "mkfifo failed")
local SUBDIR = dir .. "/a_folder"
assert(os.execute("mkdir " .. q(SUBDIR)))
-- the junk every entry point meets, with what its refusal says
local JUNK = { { FIFO, "a FIFO" }, { "/dev/zero", "a character device" }, { SUBDIR, "a directory" } }

-- a PNG header declaring 6000 x 6000 (36 M pixels; each side below max_side)
local MANY_PIXELS = "\137PNG\r\n\26\n" .. string.pack(">I4", 13) .. "IHDR"
  .. string.pack(">I4I4BBBBB", 6000, 6000, 8, 2, 0, 0, 0) .. string.pack(">I4", 0)
  .. string.pack(">I4", 0) .. "IEND" .. string.pack(">I4", 0)

-- a tiny model (text + histogram image) to predict with and to load from the command line
local MODEL = dir .. "/tiny.mmf"
do
  local ds = mm.data.new { labels = { "a", "b", "a", "b" }, text = { "red", "blue", "red", "blue" },
    image = { "spec/fixtures/image/rgb.png", "spec/fixtures/image/grey.png", "spec/fixtures/image/rgb.png",
      "spec/fixtures/image/grey.png" } }
  local m = mm.model { fusion = "joint", dim = 4, classes = ds.classes, text = { buckets = 16 },
    image = { encoder = "histogram" } }
  m:fit(ds, { epochs = 1, seed = 1 })
  m:save(MODEL)
end

-- a manifest whose image column names each junk path
local function manifest_with_image(path, k)
  local p = ("%s/with_image_%d.tsv"):format(dir, k)
  util.write(p, "text\timage\tlabel\nhello\t" .. path .. "\ta\nbye\t\tb\n")
  return p
end

-- Run `code` in a child lua5.4 under `timeout 10`; `code` sees JUNK (a list of {path, kind}),
-- DIR, MODEL and a function try(label, fn, ...) that prints one line per call:
-- "<label>\t<ok>\t<message>". Returns the lines as { label = {ok=, msg=} }.
local function child(code)
  local script = dir .. "/child.lua"
  util.write(script, ([[
package.path = %q
package.cpath = %q
local mm = require "mmfuse"
local JUNK, DIR, MODEL = %s, %q, %q
local function try(label, fn, ...)
  local ok, err = pcall(fn, ...)
  io.write(label, "\t", tostring(ok), "\t", (tostring(err):gsub("[\t\n]", " ")), "\n")
  io.flush()
end
%s
]]):format(package.path, package.cpath,
    ("{ {%q, %q}, {%q, %q}, {%q, %q} }"):format(JUNK[1][1], JUNK[1][2], JUNK[2][1], JUNK[2][2], JUNK[3][1],
      JUNK[3][2]), dir, MODEL, code))
  local p = io.popen("timeout 10 lua5.4 " .. q(script) .. " 2>&1; echo \"exit $?\"")
  local out = p:read("a")
  p:close()
  local status = out:match("exit (%d+)\n$")
  assert(status ~= "124", "the child timed out: an entry point hung on a junk path\n" .. out)
  assert.are.equal("0", status, out)
  local res = {}
  for label, ok, msg in out:gmatch("([^\t\n]+)\t([^\t\n]+)\t([^\n]*)\n") do res[label] = { ok = ok == "true", msg = msg } end
  return res
end

-- every junk path refused by `label .. i`, naming the path and what it is
local function assert_refused(res, label)
  for i, j in ipairs(JUNK) do
    local r = res[label .. i]
    assert(r, ("no result for %s%d"):format(label, i))
    assert.is_false(r.ok, label .. i .. " accepted " .. j[1])
    util.assert_mentions(r.msg, j[1], "not a regular file")
    if j[2] ~= "a directory" or not r.msg:find("No such", 1, true) then util.assert_mentions(r.msg, j[2]) end
  end
end

describe("junk paths are refused without being read", function()

  it("mm.image.load, info, histogram", function()
    local res = child [[
for i, j in ipairs(JUNK) do
  try("load" .. i, mm.image.load, j[1])
  try("info" .. i, mm.image.info, j[1])
  try("histogram" .. i, mm.image.histogram, j[1])
end]]
    for _, l in ipairs { "load", "info", "histogram" } do assert_refused(res, l) end
  end)

  it("mm.data.load: the manifest itself, an image it names, fastText files", function()
    local mans = {}
    for k, j in ipairs(JUNK) do mans[k] = manifest_with_image(j[1], k) end
    local res = child(([[
local mans = { %q, %q, %q }
for i, j in ipairs(JUNK) do
  try("manifest" .. i, mm.data.load, j[1], { text = "text", label = "label", format = "tsv" })
  try("csv" .. i, mm.data.load, j[1], { text = "text", label = "label", format = "csv" })
  try("jsonl" .. i, mm.data.load, j[1], { text = "text", label = "label", format = "jsonl" })
  try("fasttext" .. i, mm.data.load_fasttext, j[1])
  try("image" .. i, mm.data.load, mans[i], { text = "text", image = "image", label = "label" })
end]]):format(mans[1], mans[2], mans[3]))
    for _, l in ipairs { "manifest", "csv", "jsonl", "fasttext", "image" } do assert_refused(res, l) end
    util.assert_mentions(res.image1.msg, "row 1")
  end)

  it("mm.data.new and model:predict with an image path", function()
    local res = child [[
local m = mm.load(MODEL)
for i, j in ipairs(JUNK) do
  try("new" .. i, mm.data.new, { labels = { "a" }, image = { j[1] } })
  try("predict" .. i, m.predict, m, { text = "red", image = j[1] })
end]]
    assert_refused(res, "new")
    assert_refused(res, "predict")
  end)

  it("features extraction: the manifest and the images it names", function()
    local mans = {}
    for k, j in ipairs(JUNK) do mans[k] = manifest_with_image(j[1], 10 + k) end
    local res = child(([[
local mans = { %q, %q, %q }
for i, j in ipairs(JUNK) do
  try("manifest" .. i, mm.features.extract, j[1], { encoder = "histogram", format = "tsv" })
  try("image" .. i, mm.features.extract, mans[i], { encoder = "histogram" })
  try("weights" .. i, mm.features.extract, mans[i], { encoder = "resnet18", weights = j[1] })
end]]):format(mans[1], mans[2], mans[3]))
    for _, l in ipairs { "manifest", "image", "weights" } do assert_refused(res, l) end
  end)

  it("word vectors, .npy files, model files, backbone weights", function()
    local res = child [[
local vocab = mm.text.vocab({ "a b" })
for i, j in ipairs(JUNK) do
  try("vectors" .. i, mm.text.load_vectors, j[1], vocab)
  try("probe" .. i, mm.text.probe_vectors, j[1])
  try("npy" .. i, mm.io.load_npy, j[1])
  try("features" .. i, mm.io.load_features, j[1])
  try("model" .. i, mm.load, j[1])
  try("backbone" .. i, mm.image.backbone, "resnet18", { weights = j[1] })
  try("read_file" .. i, mm.io.read_file, j[1])
end]]
    for _, l in ipairs { "vectors", "probe", "npy", "features", "model", "backbone", "read_file" } do
      assert_refused(res, l)
    end
  end)

  it("mm.data.stream: a junk manifest, image or feature file", function()
    local mans = {}
    for k, j in ipairs(JUNK) do mans[k] = manifest_with_image(j[1], k) end
    local res = child [[
local mans = {}
for i in ipairs(JUNK) do mans[i] = ("%s/with_image_%d.tsv"):format(DIR, i) end
local function drain(s)
  local m = mm.model { fusion = "joint", dim = 4, classes = { "a", "b" }, text = { buckets = 16 }, image = { encoder = "histogram" } }
  m:fit(s, { epochs = 1, seed = 1 })
end
for i, j in ipairs(JUNK) do
  try("manifest" .. i, mm.data.stream, j[1], { text = "text", label = "label", format = "tsv" })
  try("image" .. i, function() drain(mm.data.stream(mans[i], { text = "text", image = "image", label = "label" })) end)
  try("npy" .. i, function()
    drain(mm.data.stream(mans[i], { text = "text", label = "label", features = { f = j[1] } }))
  end)
end]]
    for _, l in ipairs { "manifest", "npy" } do assert_refused(res, l) end
    for i, j in ipairs(JUNK) do
      -- a picture that cannot be had: the row is bad (an error naming file:line and the refusal)
      local r = res["image" .. i]
      assert(r and not r.ok, "image" .. i .. " accepted " .. j[1])
      util.assert_mentions(r.msg, "not a regular file")
    end
  end)

  it("TF.js layers models: a model.json or a weight shard that is junk", function()
    -- per junk path: a folder whose model.json is a link to it, and one whose shard is
    local SRC = "spec/fixtures/tfjs_layers/sequential_small"
    for i, j in ipairs(JUNK) do
      local a, b = ("%s/tfjs_json_%d"):format(dir, i), ("%s/tfjs_shard_%d"):format(dir, i)
      assert(os.execute(("mkdir -p %s %s && ln -s %s %s/model.json && cp %s/model.json %s/ && ln -s %s %s/group1-shard1of1")
        :format(q(a), q(b), q(j[1]), q(a), q(SRC), q(b), q(j[1]), q(b))))
    end
    local res = child [[
for i in ipairs(JUNK) do
  try("json" .. i, mm.image.backbone, DIR .. "/tfjs_json_" .. i .. "/model.json")
  try("shard" .. i, mm.image.backbone, DIR .. "/tfjs_shard_" .. i .. "/model.json")
end]]
    for i, j in ipairs(JUNK) do
      for _, l in ipairs { "json", "shard" } do
        local r = res[l .. i]
        assert(r, ("no result for %s%d"):format(l, i))
        assert.is_false(r.ok, l .. i .. " accepted " .. j[1])
        util.assert_mentions(r.msg, "not a regular file", j[2])
      end
      util.assert_mentions(res["shard" .. i].msg, "group1-shard1of1")
    end
  end)

  it("the command line: info, eval, train, predict --image, experiment", function()
    for _, j in ipairs(JUNK) do
      for _, args in ipairs {
        { "info", j[1] }, { "eval", MODEL, j[1] }, { "train", j[1], "--fusion", "text", "--out", dir .. "/x.mmf" },
        { "predict", MODEL, "--image", j[1] }, { "experiment", j[1] },
      } do
        local parts = {}
        for k, a in ipairs(args) do parts[k] = q(a) end
        local p = io.popen(("MMFUSE_CPATH=%s timeout 10 lua5.4 bin/mmfuse %s 2>&1 </dev/null; echo \"exit $?\"")
          :format(q(package.cpath:match("^[^;]*")), table.concat(parts, " ")))
        local out = p:read("a")
        p:close()
        local code = out:match("exit (%d+)\n$")
        assert(code ~= "124", "mmfuse " .. table.concat(args, " ") .. " hung:\n" .. out)
        assert.are.equal("1", code, out)
        util.assert_mentions(out, j[1], "not a regular file")
      end
    end
  end)

  it("core.data.add_image{absent_on_error}: the rows whose image cannot be had become image-absent, listed", function()
    local core = require "mmfuse.core"
    local ok_png = "spec/fixtures/image/rgb.png"
    local huge = dir .. "/many_pixels.png"
    util.write(huge, MANY_PIXELS)
    local list = { ok_png, FIFO, dir .. "/nothing.png", "spec/fixtures/image/corrupt.png", false, "/dev/zero", ok_png,
      huge }
    local ds = core.data.new(#list, 1)
    local fails = core.data.add_image(ds, "image", list, { size = 8, absent_on_error = true })
    assert.are.same({ true, false, false, false, false, false, true, false }, core.data.mask(ds, "image"))
    local got = {}
    for i, f in ipairs(fails) do got[i] = { f.row, f.status } end
    assert.are.same({ { 2, "not a regular file" }, { 3, "missing" }, { 4, "undecodable" }, { 6, "not a regular file" },
      { 8, "too many pixels" } }, got)
    util.assert_mentions(fails[1].message, FIFO, "a FIFO")
    util.assert_mentions(fails[3].message, "corrupt.png")
    -- without it the first failing row is the error
    util.assert_mentions(util.errors_with(core.data.add_image, core.data.new(#list, 1), "image", list, { size = 8 }),
      "row 2", FIFO)
  end)

  it("mm.io.stat says what a path is without opening it", function()
    assert.are.same({ "fifo", 0 }, { mm.io.stat(FIFO) })
    assert.are.same({ "character device", 0 }, { mm.io.stat("/dev/zero") })
    assert.are.same({ "directory", 0 }, { mm.io.stat(SUBDIR) })
    assert.are.same({ "missing", 0 }, { mm.io.stat(dir .. "/nothing") })
    assert.are.same({ "file", #util.read(MODEL) }, { mm.io.stat(MODEL) })
  end)
end)

describe("size caps", function()
  local big = dir .. "/big.png"
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("an image file above max_bytes is refused before it is read", function()
    local png = "spec/fixtures/image/rgb.png"
    local n = #util.read(png)
    assert.are.equal(3, mm.image.load(png, { max_bytes = n }):shape()[1]) -- at the cap: read
    local err = util.errors_with(mm.image.load, png, { max_bytes = n - 1 })
    util.assert_mentions(err, png, ("%d bytes, more than the limit of %d"):format(n, n - 1), "refused without reading it")
    local cwd = io.popen("pwd"):read("l")
    err = util.errors_with(mm.data.load, manifest_with_image(cwd .. "/" .. png, 99), { text = "text", image = "image", label = "label",
      max_image_bytes = n - 1 })
    util.assert_mentions(err, "row 1", png, "more than the limit")
    err = util.errors_with(mm.data.new, { labels = { "a" }, image = { png }, max_image_bytes = 10 })
    util.assert_mentions(err, png, "more than the limit of 10")
    util.assert_mentions(util.errors_with(mm.image.histogram, png, { max_bytes = 1 }), "more than the limit of 1")
  end)

  it("the default cap is mm.image.max_bytes (32 MiB): a larger file is refused unread", function()
    assert.are.equal(32 * 1024 * 1024, mm.image.max_bytes)
    -- a sparse file: reading it would take 33 MiB of zeros, refusing it takes a stat
    assert(os.execute("truncate -s " .. (mm.image.max_bytes + 1) .. " " .. q(big)))
    util.assert_mentions(util.errors_with(mm.image.load, big), big, "more than the limit of " .. mm.image.max_bytes)
    util.assert_mentions(util.errors_with(mm.io.read_file, big, { max_bytes = 1000 }), "more than the limit of 1000")
  end)

  it("a picture above mm.image.max_pixels is refused from its header", function()
    assert.are.equal(1 << 25, mm.image.max_pixels)
    local bytes = MANY_PIXELS
    local err = util.errors_with(mm.image.info, bytes, true)
    util.assert_mentions(err, "6000x6000", "more than the limit of " .. mm.image.max_pixels)
    util.assert_mentions(util.errors_with(mm.image.decode, bytes), "more than the limit")
  end)
end)
