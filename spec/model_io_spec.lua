-- Model files: save -> load -> identical predictions; atomic saves; every corruption is an error naming the file.
local mm = require "mmfuse"
local util = require "util"
local cjson = require "cjson"
local S = dofile("spec/fixtures/model/synth.lua")

local ds = S.make { n = 150 }
local train, _, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
local dir = util.tmpdir()
local path = dir .. "/m.mmf"

local function fitted(fusion)
  local m = mm.model { fusion = fusion, classes = ds.classes, dim = 8, text = { ngrams = 2, buckets = 300 } }
  m:fit(train, { epochs = 3, lr = 0.02, seed = 1 })
  return m
end

local slurp = util.read

local spit = util.write

-- rewrite the JSON header of a saved file through fn(header) (data kept)
local function rewrite(src, dst, fn)
  local b = slurp(src)
  local n = string.unpack("<I8", b)
  local h = cjson.decode(b:sub(9, 8 + n))
  fn(h)
  local js = cjson.encode(h)
  spit(dst, string.pack("<I8", #js) .. js .. b:sub(9 + n))
end

local function load_err(p)
  local ok, e = pcall(mm.load, p)
  assert.is_false(ok, "loaded " .. p)
  e = tostring(e)
  assert.truthy(e:find(p, 1, true), e)
  return e
end

describe("model files", function()
  for _, f in ipairs { "text", "image", "early", "late", "joint", "commonspace" } do
    it(f .. ": save -> load gives identical predictions and metrics", function()
      local m = fitted(f)
      m:save(path)
      local m2 = mm.load(path)
      local _, p1 = m:predict(test)
      local _, p2 = m2:predict(test)
      assert.is_true(mm.allclose(p1, p2, 0))
      assert.are.same(m.classes, m2.classes)
      assert.are.equal(m:nparams(), m2:nparams())
      assert.are.equal(m:evaluate(test, { drop = "image" }).log_loss, m2:evaluate(test, { drop = "image" }).log_loss)
      local a, pa = m:predict { text = "tok1_2 filler1" }
      local b, pb = m2:predict { text = "tok1_2 filler1" }
      assert.are.equal(a, b)
      assert.are.same(pa, pb)
      assert.truthy(tostring(m2):find(f, 1, true))
    end)
  end

  local base = fitted("commonspace")
  base:save(path)
  local size = #slurp(path)

  it("is safetensors: 8-byte length, JSON header with F32 tensors and string metadata", function()
    local b = slurp(path)
    local n = string.unpack("<I8", b)
    assert.are.equal(0, n % 8)
    local h = cjson.decode(b:sub(9, 8 + n))
    assert.are.equal("mmfuse-model", h.__metadata__.format)
    for k, v in pairs(h.__metadata__) do assert.is_string(v, k) end
    assert.are.same(ds.classes, cjson.decode(h.__metadata__.classes))
    local total = 0
    for name, t in pairs(h) do
      if name ~= "__metadata__" then
        assert.are.equal("F32", t.dtype)
        total = total + t.data_offsets[2] - t.data_offsets[1]
      end
    end
    assert.are.equal(#b - 8 - n, total)
  end)

  it("saves atomically: no temp file left, an unwritable target leaves the old file intact", function()
    base:save(path)
    local p = io.popen("ls -a " .. dir)
    local names = p:read("a")
    p:close()
    assert.is_nil(names:find("tmp", 1, true), names)
    local ok, e = pcall(base.save, base, dir .. "/no/such/dir/m.mmf")
    assert.is_false(ok)
    assert.truthy(tostring(e):find("no/such/dir", 1, true))
    assert.are.equal(size, #slurp(path))
  end)

  it("rejects a file truncated at every tenth of its length, naming the file", function()
    local b = slurp(path)
    local p = dir .. "/cut.mmf"
    for k = 0, 9 do
      spit(p, b:sub(1, math.floor(#b * k / 10)))
      load_err(p)
    end
  end)

  it("rejects flipped header bytes, wrong versions, header lengths past the end", function()
    local b = slurp(path)
    local p = dir .. "/bad.mmf"
    local n = string.unpack("<I8", b)
    for _, pos in ipairs { 9, 10, 20, 8 + n // 2, 8 + n - 1 } do
      local c = b:byte(pos) ~ 0x5a
      spit(p, b:sub(1, pos - 1) .. string.char(c) .. b:sub(pos + 1))
      local ok, e = pcall(mm.load, p)
      if not ok then assert.truthy(tostring(e):find(p, 1, true), tostring(e)) end
    end
    spit(p, string.pack("<I8", #b * 4) .. b:sub(9))
    assert.truthy(load_err(p):find("past the end", 1, true))
    spit(p, "")
    load_err(p)
    rewrite(path, p, function(h) h.__metadata__.version = "99" end)
    assert.truthy(load_err(p):find("version", 1, true))
    rewrite(path, p, function(h) h.__metadata__.format = "other" end)
    load_err(p)
    rewrite(path, p, function(h) h.__metadata__ = nil end)
    load_err(p)
    rewrite(path, p, function(h) h.__metadata__.config = "{not json" end)
    load_err(p)
    load_err(dir .. "/does-not-exist.mmf")
    assert.truthy(load_err(dir):find("not a regular file", 1, true))
  end)

  it("checks every tensor's dtype, shape, offsets and the set of tensors", function()
    local p = dir .. "/bad2.mmf"
    rewrite(path, p, function(h) h["classifier.weight"].dtype = "F16" end)
    assert.truthy(load_err(p):find("dtype", 1, true))
    rewrite(path, p, function(h) h["classifier.weight"].shape = { 2, 8 } end)
    assert.truthy(load_err(p):find("classifier.weight", 1, true))
    rewrite(path, p, function(h) h["classifier.bias"].data_offsets = { 0, 1e9 } end)
    assert.truthy(load_err(p):find("data_offsets", 1, true))
    rewrite(path, p, function(h) h["classifier.bias"].data_offsets = { -4, 8 } end)
    load_err(p)
    rewrite(path, p, function(h) h["classifier.bias"] = nil end)
    load_err(p)
    rewrite(path, p, function(h) h.extra = { dtype = "F32", shape = { 1 }, data_offsets = { 0, 4 } } end)
    assert.truthy(load_err(p):find("tensors", 1, true))
    rewrite(path, p, function(h)
      local c = cjson.decode(h.__metadata__.config)
      c.dim = 9
      h.__metadata__.config = cjson.encode(c)
    end)
    load_err(p)
    rewrite(path, p, function(h)
      local c = cjson.decode(h.__metadata__.config)
      c.fusion = "os.execute"
      h.__metadata__.config = cjson.encode(c)
    end)
    load_err(p)
    -- NaN in the weights
    local b = slurp(path)
    local n = string.unpack("<I8", b)
    spit(p, b:sub(1, 8 + n) .. string.pack("<f", 0 / 0) .. b:sub(13 + n))
    assert.truthy(load_err(p):find("non-finite", 1, true))
  end)

  it("a loaded model trains on", function()
    local m2 = mm.load(path)
    local _, before = m2:predict(test)
    local h = m2:fit(train, { epochs = 2, lr = 0.02, seed = 4 })
    assert.are.equal(2, #h)
    local _, after = m2:predict(test)
    assert.is_false(mm.allclose(before, after, 1e-6))
  end)

  it("refuses to save an untrained model", function()
    local m = mm.model { classes = ds.classes }
    assert.has_error(function() m:save(path) end)
  end)

  local py = io.open("/usr/bin/python3") and os.execute("/usr/bin/python3 -c 'import numpy' 2>/dev/null")
  it("is readable by tools/read_mmf.py (numpy only), when python3 + numpy exist", function()
    if not py then
      assert.is_falsy(py) -- no python3 with numpy here: nothing to compare
      return
    end
    local p = io.popen("/usr/bin/python3 tools/read_mmf.py " .. path)
    local out = p:read("a")
    p:close()
    local r = cjson.decode(out)
    assert.are.equal("commonspace", r.fusion)
    assert.are.same(ds.classes, r.classes)
    local n = 0
    for _, prm in ipairs(base:params()) do
      local t = r.tensors[prm.name]
      assert.are.same(prm.shape, t.shape)
      local w = base:param(prm.name)
      local s = 0
      for _, v in ipairs(w:reshape(w:numel()):totable()) do s = s + v end
      assert.is_true(math.abs(s - t.sum) < 1e-6 * (1 + math.abs(s)), prm.name)
      n = n + 1
    end
    local m = 0
    for _ in pairs(r.tensors) do m = m + 1 end
    assert.are.equal(n, m)
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
