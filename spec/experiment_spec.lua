-- mmfuse.experiment: mean/std aggregation, the claim logic on hand-made runs, and
-- the grid runner driven with a scripted fake model (no training involved).
local experiment = require "mmfuse.experiment"

local function near(a, b, tol) assert(math.abs(a - b) <= (tol or 1e-12), ("%.15g is not %.15g"):format(a, b)) end

describe("experiment.stats", function()
  it("gives mean and sample standard deviation (n - 1)", function()
    local s = experiment.stats{ 1, 2, 3, 4 }
    near(2.5, s.mean)
    near(math.sqrt(5 / 3), s.std)
    assert.equal(4, s.n)
    assert.equal(1, s.min)
    assert.equal(4, s.max)
  end)

  it("gives std 0 for one value and n = 0 for none", function()
    local s = experiment.stats{ 0.75 }
    assert.equal(0.75, s.mean)
    assert.equal(0, s.std)
    assert.same({ n = 0 }, experiment.stats{})
  end)

  it("rejects NaN and non-numbers, naming the position", function()
    local ok, err = pcall(experiment.stats, { 1, 0 / 0 })
    assert.is_false(ok)
    assert.truthy(err:find("value 2", 1, true))
    ok, err = pcall(experiment.stats, { "x" })
    assert.is_false(ok)
    assert.truthy(err:find("value 1", 1, true))
  end)
end)

describe("experiment.aggregate", function()
  it("groups runs by model, condition and metric", function()
    local runs = {
      { model = "text", seed = 1, condition = "both", accuracy = 0.70, macro_f1 = 0.60 },
      { model = "text", seed = 2, condition = "both", accuracy = 0.74, macro_f1 = 0.62 },
      { model = "text", seed = 1, condition = "image", accuracy = 0.10 },
      { model = "late", seed = 1, condition = "both", accuracy = 0.80, macro_f1 = 0.70 },
    }
    local s = experiment.aggregate(runs, { "accuracy", "macro_f1" })
    near(0.72, s.text.both.accuracy.mean)
    near(math.sqrt(0.0008), s.text.both.accuracy.std)
    assert.equal(2, s.text.both.macro_f1.n)
    assert.equal(1, s.text.image.accuracy.n)
    assert.is_nil(s.text.image.macro_f1)
    assert.equal(0.80, s.late.both.accuracy.mean)
  end)

  it("rejects a run without model or condition", function()
    local ok, err = pcall(experiment.aggregate, { { model = "x", accuracy = 1 } })
    assert.is_false(ok)
    assert.truthy(err:find("run 1", 1, true))
  end)
end)

-- runs from a compact table: scores[model][condition] = { seed1, seed2 }
local function make_runs(scores)
  local runs = {}
  for model, byc in pairs(scores) do
    for cond, xs in pairs(byc) do
      for i, x in ipairs(xs) do runs[#runs + 1] = { model = model, condition = cond, seed = i, accuracy = x } end
    end
  end
  return experiment.aggregate(runs, { "accuracy" })
end

local function by_id(claims)
  local t = {}
  for _, c in ipairs(claims) do t[c.id] = c end
  return t
end

describe("experiment.claims", function()
  local base = {
    text = { both = { 0.70, 0.72 }, valid = { 0.70, 0.70 } },
    image = { both = { 0.60, 0.62 }, valid = { 0.60, 0.60 } },
    early = { both = { 0.74, 0.76 }, valid = { 0.74, 0.74 } },
    late = { both = { 0.78, 0.80 }, valid = { 0.78, 0.78 } },
    -- best on test, but not on validation: must NOT be the one chosen
    ["joint-mean"] = { both = { 0.90, 0.90 }, valid = { 0.70, 0.70 } },
    ["joint-max"] = { both = { 0.76, 0.76 }, valid = { 0.80, 0.80 },
                      text = { 0.60, 0.62 }, image = { 0.40, 0.42 } },
    commonspace = { both = { 0.74, 0.74 }, valid = { 0.79, 0.79 },
                    text = { 0.66, 0.68 }, image = { 0.38, 0.40 } },
  }

  it("C1: the fusion model chosen on validation vs the stronger single modality", function()
    local c = by_id(experiment.claims(make_runs(base))).C1
    assert.is_true(c.holds)
    near(0.76 - 0.71, c.margin, 1e-9)
    assert.same({ "joint-max", "text" }, c.compared)
    assert.truthy(c.detail:find("joint-max (chosen on validation)", 1, true))
    assert.truthy(c.detail:find("5 of 5 fusion models beat both single modalities", 1, true))
  end)

  it("C1 fails plainly when the chosen fusion model is below a single modality", function()
    local s = make_runs{
      text = { both = { 0.80, 0.80 } }, image = { both = { 0.50, 0.50 } },
      late = { both = { 0.78, 0.78 }, valid = { 0.9, 0.9 } },
      early = { both = { 0.85, 0.85 }, valid = { 0.5, 0.5 } },
    }
    local c = by_id(experiment.claims(s)).C1
    assert.is_false(c.holds)
    near(-0.02, c.margin, 1e-9)
    assert.truthy(c.detail:find("late (chosen on validation) 0.780 ± 0.000 does NOT beat text 0.800 ± 0.000", 1, true))
    assert.truthy(c.detail:find("1 of 2 fusion models beat both single modalities: early", 1, true))
  end)

  it("C2: best joint/common-space vs best early/late, each chosen on validation", function()
    local c = by_id(experiment.claims(make_runs(base))).C2
    -- joint-max (valid 0.80) vs late (valid 0.78): 0.76 - 0.79 on test
    assert.is_false(c.holds)
    near(0.76 - 0.79, c.margin, 1e-9)
    assert.same({ "joint-max", "late" }, c.compared)
    assert.truthy(c.detail:find("does NOT beat late", 1, true))
    -- joint-mean beats both, joint-max beats early only, commonspace neither: 3 of 6
    assert.truthy(c.detail:find("wins 3 of 6 comparisons", 1, true))
  end)

  it("C3: common-space vs joint on the text-only and image-only test sets", function()
    local c = by_id(experiment.claims(make_runs(base))).C3
    near(0.06, c.margins.text, 1e-9)
    near(-0.02, c.margins.image, 1e-9)
    near(-0.02, c.margin, 1e-9)
    assert.is_false(c.holds)
    assert.truthy(c.detail:find("NOT ahead on both", 1, true))
    assert.truthy(c.detail:find("text only: commonspace 0.670 ± 0.014 vs joint-max 0.610 ± 0.014, +0.060", 1, true))

    local better = {}
    for k, v in pairs(base) do better[k] = v end
    better.commonspace = { both = { 0.74, 0.74 }, text = { 0.66, 0.68 }, image = { 0.45, 0.47 } }
    c = by_id(experiment.claims(make_runs(better))).C3
    assert.is_true(c.holds)
    near(0.05, c.margin, 1e-9)
  end)

  it("flags differences inside the seed noise", function()
    local s = make_runs{
      text = { both = { 0.70, 0.80 } }, image = { both = { 0.5, 0.5 } },
      late = { both = { 0.76, 0.78 }, valid = { 0.7, 0.7 } },
    }
    local c = by_id(experiment.claims(s)).C1
    assert.is_true(c.holds)
    assert.truthy(c.detail:find("within seed noise", 1, true))
  end)

  it("says 'not tested' (holds = nil) when the models are not in the grid", function()
    local cl = by_id(experiment.claims(make_runs{ text = { both = { 0.7 } } }))
    for _, id in ipairs{ "C1", "C2", "C3" } do
      assert.is_nil(cl[id].holds)
      assert.truthy(cl[id].detail:find("^not tested"))
    end
  end)

  it("uses the metric it is asked for", function()
    local runs = {
      { model = "text", condition = "both", seed = 1, accuracy = 0.9, macro_f1 = 0.3 },
      { model = "image", condition = "both", seed = 1, accuracy = 0.9, macro_f1 = 0.3 },
      { model = "late", condition = "both", seed = 1, accuracy = 0.5, macro_f1 = 0.6 },
    }
    local s = experiment.aggregate(runs)
    assert.is_false(by_id(experiment.claims(s, { metric = "accuracy" })).C1.holds)
    local c = by_id(experiment.claims(s, { metric = "macro_f1" })).C1
    assert.is_true(c.holds)
    assert.equal("macro_f1", c.metric)
    assert.truthy(c.detail:find("^macro%-F1"))
  end)
end)

-- A scripted model: its scores depend on fusion, split, dropped modality and seed.
local function fake(log)
  local score = { text = 0.70, image = 0.60, late = 0.78, ["joint"] = 0.80, commonspace = 0.79 }
  return function(opts)
    local m = { opts = opts }
    function m:fit(train, fo)
      log[#log + 1] = { what = "fit", fusion = opts.fusion, ds = train.name, valid = fo.valid and fo.valid.name,
                        seed = fo.seed, epochs = fo.epochs, dim = opts.dim }
      self.seed = fo.seed
      if fo.on_epoch then fo.on_epoch{ epoch = 1, loss = 0.5 } end
      return { best_epoch = 1 }
    end
    function m:evaluate(ds, eo)
      local drop = eo and eo.drop
      log[#log + 1] = { what = "eval", fusion = opts.fusion, ds = ds.name, drop = drop }
      local a = score[opts.fusion] + 0.01 * self.seed - (drop and 0.2 or 0) - (ds.name == "valid" and 0.05 or 0)
      return { accuracy = a, macro_f1 = a - 0.1, log_loss = 1 - a, confusion = { { 3, 1 }, { 0, 4 } },
               per_class = {} }
    end
    function m:predict(ds) return { { class = "a" }, { class = "b" }, { class = "b" } } end
    return m
  end
end

describe("experiment.run", function()
  local train, valid, test = { name = "train" }, { name = "valid" }, { name = "test" }

  it("runs models x seeds x conditions, choosing on validation only", function()
    local log, epochs = {}, 0
    local res = experiment.run{
      task = "group", train = train, valid = valid, test = test,
      models = { { name = "text", fusion = "text" }, { name = "late", fusion = "late" },
                 { name = "joint-max", fusion = "joint", pool = "max" } },
      seeds = { 1, 2 }, fit = { epochs = 3 }, model_defaults = { dim = 16 },
      new_model = fake(log),
      on_epoch = function() epochs = epochs + 1 end,
    }
    -- 3 models x 2 seeds x (valid + 3 test conditions)
    assert.equal(24, #res.runs)
    assert.equal(6, epochs)
    local fits, test_evals, drops = 0, 0, {}
    for _, e in ipairs(log) do
      if e.what == "fit" then
        fits = fits + 1
        assert.equal("train", e.ds)
        assert.equal("valid", e.valid)
        assert.equal(3, e.epochs)
        assert.equal(16, e.dim)
      elseif e.ds == "test" then
        test_evals = test_evals + 1
        drops[e.drop or "none"] = (drops[e.drop or "none"] or 0) + 1
      end
    end
    assert.equal(6, fits)
    assert.equal(18, test_evals)
    assert.same({ none = 6, image = 6, text = 6 }, drops)
    near(0.815, res.summary["joint-max"].both.accuracy.mean, 1e-9)
    near(math.sqrt(0.00005), res.summary["joint-max"].both.accuracy.std, 1e-9)
    near(0.615, res.summary["joint-max"].text.accuracy.mean, 1e-9)
    near(0.765, res.summary["joint-max"].valid.accuracy.mean, 1e-9)
    assert.same({ "text", "late", "joint-max" }, res.models)
    assert.equal("joint-max", res.shown)
    assert.same({ { 3, 1 }, { 0, 4 } }, res.kept["joint-max"].confusion)
    assert.same({ "a", "b", "b" }, res.kept.text.predicted)
    assert.equal(3, #res.claims)
    assert.equal("C1", res.claims[1].id)
    assert.is_true(res.claims[1].holds)
  end)

  it("rejects an unknown condition and an empty grid", function()
    local ok, err = pcall(experiment.run, { train = train, test = test, models = { { fusion = "text" } },
                                            conditions = { "audio" }, new_model = fake{} })
    assert.is_false(ok)
    assert.truthy(err:find('"audio"', 1, true))
    ok, err = pcall(experiment.run, { train = train, test = test, models = {} })
    assert.is_false(ok)
    assert.truthy(err:find("at least one model", 1, true))
  end)
end)

describe("experiment.predicted_labels", function()
  it("reads the shapes a prediction may come in", function()
    assert.same({ "a", "b" }, experiment.predicted_labels({ { class = "a" }, { class = "b" } }))
    assert.same({ "a", "b" }, experiment.predicted_labels({ labels = { "a", "b" } }))
    assert.same({ "y", "x" }, experiment.predicted_labels({ 2, 1 }, { "x", "y" }))
    assert.is_nil(experiment.predicted_labels("nope"))
  end)
end)

-- A small real run: the model area's mm.model on a slice of data/emoji32.
describe("experiment end to end (real models, tiny)", function()
  local mm = require "mmfuse"
  local report = require "mmfuse.report"

  it("runs a grid, aggregates, tests the claims and renders a report", function()
    local ds = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", image = "image", label = "sentiment" })
    local train, valid, test = ds:split{ by = "fold", test = { 0 }, valid = { 1 } }
    assert.truthy(#test > 10)
    local epochs = 0
    local res = experiment.run{
      task = "sentiment", train = train, valid = valid, test = test, classes = ds.classes,
      models = { { name = "text", fusion = "text" }, { name = "image", fusion = "image" },
                 { name = "late", fusion = "late" }, { name = "joint-max", fusion = "joint", pool = "max" },
                 { name = "commonspace", fusion = "commonspace", pool = "max" } },
      seeds = { 1, 2 }, primary = "macro_f1",
      model_defaults = { dim = 16, classes = ds.classes, image = { encoder = "histogram" } },
      fit = { epochs = 2, batch = 32, lr = 0.01 },
      on_epoch = function(_, st) epochs = epochs + 1; assert.is_number(st.loss) end,
    }
    assert.equal(5 * 2 * 2, epochs)
    assert.equal(5 * 2 * 4, #res.runs)
    for _, r in ipairs(res.runs) do
      assert.truthy(r.accuracy >= 0 and r.accuracy <= 1)
      assert.truthy(r.macro_f1 >= 0 and r.macro_f1 <= 1)
    end
    local s = res.summary.commonspace.image.macro_f1
    assert.equal(2, s.n)
    -- claims are decided (true or false), not left untested
    for _, c in ipairs(res.claims) do assert.is_boolean(c.holds) end
    -- the kept detail: a confusion matrix of the test rows, a prediction per test row
    local kept = res.kept[res.shown]
    local total = 0
    for _, row in ipairs(kept.confusion) do for _, v in ipairs(row) do total = total + v end end
    assert.equal(#test, total)
    assert.equal(#test, #kept.predicted)
    local html = report.html{ tasks = { { task = "sentiment", models = res.models, summary = res.summary,
      claims = res.claims, metrics = { "macro_f1" }, confusion = { classes = ds.classes, matrix = kept.confusion } } } }
    assert.equal(5 * 3, select(2, html:gsub('<rect class="bar"', "")))
    assert.equal(9, select(2, html:gsub('<rect class="cell"', "")))
  end)

  it("examples/paper.lua (a config of mmfuse experiment) runs a one-seed, one-epoch slice of its demo", function()
    local out = os.tmpname()
    os.remove(out)
    local cpath = os.getenv("MMFUSE_CPATH") or "./build/?.so"
    local cmd = ("MMFUSE_CPATH='%s' MMFUSE_PROGRESS=plain lua5.4 bin/mmfuse experiment examples/paper.lua --variant demo "
      .. "--seeds 1 --epochs 1 --tasks sentiment --models text,joint-max,commonspace --out '%s' 2>&1"):format(cpath, out)
    local p = io.popen(cmd)
    local text = p:read("a")
    local ok = p:close()
    assert(ok, "mmfuse experiment examples/paper.lua failed:\n" .. text)
    assert.truthy(text:find("| joint-max | ", 1, true), text)
    assert.truthy(text:find("image encoder: HSV colour histogram (8x4x4 bins, no training)", 1, true), text)
    assert.truthy(text:find("> demo variant: 1 seed(s), up to 1 epochs", 1, true), text)
    assert.truthy(text:find("- **C3 ", 1, true))
    assert.truthy(text:find("\n%[3/3%]  sentiment commonspace seed 1  epoch 1/1  loss [%d.]+  acc [%d.]+  valid [%d.]+"
      .. "  %d+ samples/s  done in %d+:%d%d\n"), text)
    local md = assert(io.open(out .. "/results.md", "rb"))
    assert.truthy(md:read("a"):find("## Sentiment task", 1, true))
    md:close()
    local res = require("cjson").decode(assert(io.open(out .. "/results.json", "rb")):read("a"))
    assert.equal(1, #res.tasks)
    assert.equal("sentiment", res.tasks[1].task)
    assert.equal(3 * 4, #res.tasks[1].runs) -- 3 models x (3 conditions + validation)
    local f = assert(io.open(out .. "/report.html", "rb"))
    local html = f:read("a")
    f:close()
    assert.truthy(html:find('<svg[^>]-class="heatmap"'))
    assert.truthy(select(2, html:gsub('<img src="data:image/png;base64,', "")) > 0)
    os.execute("rm -rf '" .. out .. "'")
  end)
end)
