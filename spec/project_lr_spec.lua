-- project_lr: the learning-rate multiplier of a modality's projection into the common space
-- (joint and common-space fusion). By default 1 / (mean L2 norm of the training rows) for a
-- modality read as feature rows whose mean norm is above 1, else 1 (csrc/model/build.c); a
-- value given per modality wins; the resolved value is in model:config(), in the model file,
-- and the same whether the model is built from a dataset or from a stream of the same rows.
local mm = require "mmfuse"
local util = require "util"

local CLASSES = { "a", "b" }

-- n rows; the feature row i is `scale` times a unit vector (norm exactly `scale`), so the
-- mean norm is known; text carries the class too
local function data(n, scale, dim)
  dim = dim or 4
  local rows, labels, text = {}, {}, {}
  for i = 1, n do
    local r = {}
    for d = 1, dim do r[d] = 0 end
    r[(i % dim) + 1] = (i % 2 == 0) and scale or -scale
    rows[i], labels[i] = r, (i % 2 == 0) and "a" or "b"
    text[i] = (i % 2 == 0) and "good day" or "bad day"
  end
  return mm.data.new { labels = labels, classes = CLASSES, text = text, features = { image = rows } }
end

-- a new directory with s.tsv (id, text, label; row i labelled like data()) and s.npy = F
local function manifest(F)
  local dir = util.tmpdir()
  local lines = { "id\ttext\tlabel" }
  for i = 1, #F do
    lines[#lines + 1] = ("p%d\t%s\t%s"):format(i, i % 2 == 0 and "good day" or "bad day", i % 2 == 0 and "a" or "b")
  end
  util.write(dir .. "/s.tsv", table.concat(lines, "\n") .. "\n")
  mm.io.save_npy(dir .. "/s.npy", mm.tensor(F))
  return dir
end

local function modality(m, name)
  for _, c in ipairs(m:config().modalities) do
    if c.name == name then return c end
  end
  error("no modality " .. name)
end

local function built(o, ds, fo)
  o.classes = CLASSES
  o.dim = o.dim or 8
  local m = mm.model(o)
  local f = { epochs = 1, seed = 1 }
  for k, v in pairs(fo or {}) do f[k] = v end
  m:fit(ds, f)
  return m
end

describe("project_lr", function()
  it("defaults to 1 / the mean norm of the training feature rows when it is above 1", function()
    for _, fusion in ipairs { "joint", "commonspace" } do
      local m = built({ fusion = fusion }, data(40, 8))
      -- 1 / 8 is exact in binary32
      assert.are.equal(0.125, modality(m, "image").project_lr)
      assert.are.equal(1, modality(m, "text").project_lr)
      assert.truthy(tostring(m):find("projection lr x 0.125", 1, true))
    end
  end)

  it("stays 1 for rows of norm at most 1, and where nothing is projected", function()
    assert.are.equal(1, modality(built({ fusion = "joint" }, data(40, 0.5)), "image").project_lr)
    for _, fusion in ipairs { "early", "late" } do
      assert.are.equal(1, modality(built({ fusion = fusion }, data(40, 8)), "image").project_lr)
    end
  end)

  it("takes the value a user gives, per modality or in the modality's table", function()
    assert.are.equal(0.5, modality(built({ fusion = "joint", project_lr = { image = 0.5 } }, data(40, 8)), "image")
      .project_lr)
    assert.are.equal(2, modality(built({ fusion = "commonspace", image = { project_lr = 2 } }, data(40, 8)), "image")
      .project_lr)
    assert.are.equal(0, modality(built({ fusion = "joint", project_lr = { image = 0 } }, data(40, 8)), "image")
      .project_lr)
  end)

  it("scales the projection's step and nothing else", function()
    -- one full-batch SGD step from the same initial weights on the same rows: the gradients
    -- are computed by the same operations in the same order, so every parameter but the
    -- projection moves bit-identically, and the projection's step is s times as long (up to
    -- the rounding of w - lr * g and of the difference: a few ulps of the weights)
    local ds = data(24, 3)
    local fo = { optimizer = "sgd", lr = 0.1, batch = 24, shuffle = false, epochs = 1 }
    local init = built({ fusion = "joint", project_lr = { image = 1 } }, ds, { lr = 1e-30, optimizer = "sgd" })
    local function stepped(s)
      local m = built({ fusion = "joint", project_lr = { image = s } }, ds, { lr = 1e-30, optimizer = "sgd" })
      for _, p in ipairs(init:params()) do m:set_param(p.name, init:param(p.name)) end
      m:fit(ds, fo)
      return m
    end
    local a, b = stepped(1), stepped(0.25)
    local moved = 0
    for _, p in ipairs(init:params()) do
      local w0, wa, wb = init:param(p.name), a:param(p.name), b:param(p.name)
      if p.name:find("^image%.proj%.") then
        local da, db = (wa - w0), (wb - w0)
        local scale = math.max(1e-30, (da:abs():max()))
        assert.is_true(scale > 1e-4, p.name .. " did not move")
        assert.is_true(((db - da * 0.25):abs():max()) <= 1e-5 * math.max(1, (w0:abs():max())),
          p.name .. ": the step is not a quarter")
        moved = moved + 1
      else
        assert.is_true(mm.allclose(wa, wb, 0), p.name .. " should not depend on project_lr")
      end
    end
    assert.are.equal(2, moved)
  end)

  it("0 keeps the projection as it was, with Adam too", function()
    local ds = data(24, 3)
    local m = built({ fusion = "commonspace", project_lr = { image = 0 } }, ds, { lr = 1e-30 })
    local w0, c0 = m:param("image.proj.weight"), m:param("classifier.weight")
    m:fit(ds, { epochs = 3, seed = 2 })
    assert.is_true(mm.allclose(m:param("image.proj.weight"), w0, 0))
    assert.is_false(mm.allclose(m:param("classifier.weight"), c0, 0))
  end)

  it("is kept in the model file", function()
    local dir = util.tmpdir()
    local m = built({ fusion = "joint" }, data(40, 8))
    m:save(dir .. "/m.mmf")
    local l = mm.load(dir .. "/m.mmf")
    assert.are.equal(0.125, modality(l, "image").project_lr)
    os.execute("rm -rf " .. util.sh_quote(dir))
  end)

  it("is the same built from a stream of the same rows", function()
    local F = {}
    for i = 1, 50 do F[i] = { i % 7 + 0.5, -(i % 3) - 1, 2, 0.25 * i } end
    local dir = manifest(F)
    local spec = { text = "text", label = "label", features = { image = "s.npy" } }
    local mem = built({ fusion = "joint" }, mm.data.load(dir .. "/s.tsv", spec))
    local str = built({ fusion = "joint" }, mm.data.stream(dir .. "/s.tsv", spec))
    local want = modality(mem, "image").project_lr
    assert.is_true(want < 1 and want > 0)
    assert.are.equal(want, modality(str, "image").project_lr)
    os.execute("rm -rf " .. util.sh_quote(dir))
  end)

  it("a stream's bad feature row stops the build with its file and line", function()
    -- the default reads every feature row once when the model is built
    local F = {}
    for i = 1, 20 do F[i] = { 1, 2, 3 } end
    F[9][2] = 1 / 0
    local dir = manifest(F)
    local s = mm.data.stream(dir .. "/s.tsv", { text = "text", label = "label", features = { image = "s.npy" } })
    local m = mm.model { fusion = "joint", classes = CLASSES, dim = 4 }
    util.assert_mentions(util.errors_with(m.fit, m, s, { epochs = 1 }), "s.tsv:10", "row 8 of", "not finite")
    os.execute("rm -rf " .. util.sh_quote(dir))
  end)

  it("refuses values that are not numbers in [0, 1e6], naming the modality", function()
    util.assert_mentions(util.errors_with(mm.model, { fusion = "joint", classes = CLASSES, project_lr = { image = -1 } }),
      "project_lr", "'image'", "-1")
    util.assert_mentions(util.errors_with(mm.model, { fusion = "joint", classes = CLASSES, image = { project_lr = 0 / 0 } }),
      "project_lr", "'image'")
    util.assert_mentions(util.errors_with(mm.model, { fusion = "joint", classes = CLASSES, project_lr = { x = "big" } }),
      "project_lr", "'x'", "big")
    util.assert_mentions(util.errors_with(mm.model, { fusion = "joint", classes = CLASSES, project_lr = 3 }),
      "project_lr must be a table")
    -- the core refuses what the Lua face would have refused
    local core = require "mmfuse.core"
    util.assert_mentions(util.errors_with(core.fusion.new, { fusion = "joint", nclasses = 2,
      modalities = { { name = "image", encoder = "features", in_dim = 4, project_lr = -2 } } }), "project_lr", "'image'")
  end)
end)
