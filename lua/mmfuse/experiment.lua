--- mmfuse.experiment: a grid of models x seeds x missing-modality conditions,
-- mean ± std aggregation, and the paper's claims tested plainly.
--
--   local experiment = require "mmfuse.experiment"
--   local res = experiment.run{
--     task = "group", train = train, valid = valid, test = test,
--     models = { { name = "text", fusion = "text" },
--                { name = "joint-max", fusion = "joint", pool = "max" }, ... },
--     seeds = { 1, 2, 3 }, fit = { epochs = 10, batch = 32, lr = 1e-3 },
--     model_defaults = { dim = 64, classes = ds.classes },
--   }
--   res.runs     -- one row per (model, seed, condition): accuracy, macro_f1, log_loss, ...
--   res.summary  -- summary[model][condition][metric] = { mean =, std =, n = }
--   res.claims   -- C1..C3: { id, title, holds = true|false|nil, margin, detail }
--
-- Conditions: "both" (text + image), "text" (image dropped), "image" (text
-- dropped), all on the test split; "valid" is the validation split with both
-- modalities, the only score any choice between models is based on.
local experiment = {}

experiment.CONDITIONS = {
  { name = "both", label = "text + image" },
  { name = "text", label = "text only", drop = "image" },
  { name = "image", label = "image only", drop = "text" },
}
local COND = {}
for _, c in ipairs(experiment.CONDITIONS) do COND[c.name] = c end

experiment.METRIC_LABELS = { accuracy = "accuracy", macro_f1 = "macro-F1", log_loss = "log-loss" }

-- Families the claims compare (the model names of examples/paper.lua).
experiment.DEFAULT_ROLES = {
  unimodal = { "text", "image" },
  fusion = { "early", "late", "joint-max", "joint-mean", "commonspace" },
  joint = { "joint-max", "joint-mean", "commonspace" },
  classic = { "early", "late" },
  commonspace = "commonspace",
  joint_ref = "joint-max", -- C3 compares common-space with this joint model
}

--- Mean, sample standard deviation (n-1; 0 for one value), n, min, max.
function experiment.stats(xs)
  local n = #xs
  if n == 0 then return { n = 0 } end
  local sum, lo, hi = 0, math.huge, -math.huge
  for i = 1, n do
    local x = xs[i]
    if type(x) ~= "number" or x ~= x then
      error(("stats: value %d is not a number (%s)"):format(i, tostring(x)), 2)
    end
    sum = sum + x
    if x < lo then lo = x end
    if x > hi then hi = x end
  end
  local mean = sum / n
  local ss = 0
  for i = 1, n do ss = ss + (xs[i] - mean) ^ 2 end
  local std = n > 1 and math.sqrt(ss / (n - 1)) or 0
  return { mean = mean, std = std, n = n, min = lo, max = hi }
end

--- Group runs into summary[model][condition][metric] = stats.
-- runs: { { model =, condition =, seed =, <metric> = number, ... }, ... }
function experiment.aggregate(runs, metrics)
  metrics = metrics or { "accuracy", "macro_f1" }
  local values = {}
  for i, r in ipairs(runs) do
    if type(r.model) ~= "string" or type(r.condition) ~= "string" then
      error(("aggregate: run %d needs string fields model and condition"):format(i), 2)
    end
    values[r.model] = values[r.model] or {}
    local byc = values[r.model]
    byc[r.condition] = byc[r.condition] or {}
    for _, m in ipairs(metrics) do
      local v = r[m]
      if v ~= nil then
        byc[r.condition][m] = byc[r.condition][m] or {}
        table.insert(byc[r.condition][m], v)
      end
    end
  end
  local summary = {}
  for model, byc in pairs(values) do
    summary[model] = {}
    for cond, bym in pairs(byc) do
      summary[model][cond] = {}
      for m, xs in pairs(bym) do summary[model][cond][m] = experiment.stats(xs) end
    end
  end
  return summary
end

local function get(summary, model, cond, metric)
  local s = summary[model] and summary[model][cond] and summary[model][cond][metric]
  if s and s.n and s.n > 0 then return s end
  return nil
end

local function fmt(s)
  if s.n and s.n > 1 then return ("%.3f ± %.3f"):format(s.mean, s.std) end
  return ("%.3f"):format(s.mean)
end

-- Standard error of a difference of two means (seeds are independent runs).
local function se_diff(a, b)
  local va = (a.n > 1) and (a.std ^ 2 / a.n) or 0
  local vb = (b.n > 1) and (b.std ^ 2 / b.n) or 0
  return math.sqrt(va + vb)
end

local function noise_note(diff, a, b)
  local se = se_diff(a, b)
  if se > 0 and math.abs(diff) < 2 * se then
    return (" (within seed noise: |difference| < 2 standard errors = %.3f)"):format(2 * se)
  end
  return ""
end

local function signed(x) return ("%+.3f"):format(x) end

--- Among `names`, the model with the best mean validation score (nil when
-- none has one). Returns name, "validation". Falls back to nothing: a
-- choice is never made on the test split.
function experiment.select(summary, names, metric)
  local best, bestv
  for _, name in ipairs(names) do
    local s = get(summary, name, "valid", metric)
    if s and (bestv == nil or s.mean > bestv) then best, bestv = name, s.mean end
  end
  return best
end

local function present(summary, names, cond, metric)
  local out = {}
  for _, n in ipairs(names) do
    if get(summary, n, cond, metric) then out[#out + 1] = n end
  end
  return out
end

--- The paper's claims on one summary. opts: metric (default "accuracy"),
-- roles (see DEFAULT_ROLES). Every claim: id, title, metric, holds
-- (true/false, nil when it cannot be tested), margin (the signed difference
-- that decides it), detail (plain sentence), and the numbers compared.
function experiment.claims(summary, opts)
  opts = opts or {}
  local metric = opts.metric or "accuracy"
  local roles = {}
  for k, v in pairs(experiment.DEFAULT_ROLES) do roles[k] = v end
  for k, v in pairs(opts.roles or {}) do roles[k] = v end
  local label = experiment.METRIC_LABELS[metric] or metric
  local claims = {}

  -- C1: fusion beats each single modality (test, both modalities present).
  do
    local c = { id = "C1", metric = metric,
                title = "Fusion beats each single modality (test, text + image)" }
    local uni = present(summary, roles.unimodal, "both", metric)
    local fus = present(summary, roles.fusion, "both", metric)
    if #uni == 0 or #fus == 0 then
      c.detail = "not tested: needs unimodal and fusion results on the test split"
    else
      local chosen = experiment.select(summary, fus, metric)
      local how = "chosen on validation"
      if not chosen then chosen, how = fus[1], "no validation scores: first fusion model" end
      local best_uni, bu
      for _, n in ipairs(uni) do
        local s = get(summary, n, "both", metric)
        if not bu or s.mean > bu.mean then best_uni, bu = n, s end
      end
      local fs = get(summary, chosen, "both", metric)
      c.margin = fs.mean - bu.mean
      c.holds = c.margin > 0
      c.compared = { chosen, best_uni }
      local beat = {}
      for _, n in ipairs(fus) do
        if get(summary, n, "both", metric).mean > bu.mean then beat[#beat + 1] = n end
      end
      c.detail = ("%s: %s (%s) %s %s %s, the stronger single modality, by %s%s. "
        .. "%d of %d fusion models beat both single modalities%s.")
        :format(label, chosen, how, fmt(fs), c.holds and "beats" or "does NOT beat", best_uni .. " " .. fmt(bu),
          signed(c.margin), noise_note(c.margin, fs, bu), #beat, #fus,
          #beat > 0 and (": " .. table.concat(beat, ", ")) or "")
    end
    claims[#claims + 1] = c
  end

  -- C2: joint / common-space beat early / late (test, both modalities).
  do
    local c = { id = "C2", metric = metric,
                title = "Joint and common-space fusion beat early and late fusion (test, text + image)" }
    local j = present(summary, roles.joint, "both", metric)
    local k = present(summary, roles.classic, "both", metric)
    if #j == 0 or #k == 0 then
      c.detail = "not tested: needs joint/common-space and early/late results"
    else
      local bj = experiment.select(summary, j, metric)
      local bk = experiment.select(summary, k, metric)
      local how = "each chosen on validation"
      if not bj or not bk then bj, bk, how = j[1], k[1], "no validation scores: first of each family" end
      local sj, sk = get(summary, bj, "both", metric), get(summary, bk, "both", metric)
      c.margin = sj.mean - sk.mean
      c.holds = c.margin > 0
      c.compared = { bj, bk }
      -- every pair, so a reader sees whether the family-level result is uniform
      local wins, pairs_ = 0, 0
      for _, a in ipairs(j) do
        for _, b in ipairs(k) do
          pairs_ = pairs_ + 1
          if get(summary, a, "both", metric).mean > get(summary, b, "both", metric).mean then wins = wins + 1 end
        end
      end
      c.detail = ("%s: %s %s %s %s (%s) by %s%s. Pairwise, joint/common-space wins %d of %d comparisons.")
        :format(label, bj, fmt(sj), c.holds and "beats" or "does NOT beat", bk .. " " .. fmt(sk), how,
          signed(c.margin), noise_note(c.margin, sj, sk), wins, pairs_)
    end
    claims[#claims + 1] = c
  end

  -- C3: common-space keeps its accuracy when one modality is missing
  -- (common-space vs joint on the text-only and image-only test sets).
  do
    local cs, jr = roles.commonspace, roles.joint_ref
    local c = { id = "C3", metric = metric,
                title = ("Common-space fusion keeps its %s when a modality is missing (vs %s)"):format(label, jr) }
    local parts, margins, ok = {}, {}, true
    for _, cond in ipairs{ "text", "image" } do
      local a, b = get(summary, cs, cond, metric), get(summary, jr, cond, metric)
      if not a or not b then
        ok = false
        break
      end
      local d = a.mean - b.mean
      margins[cond] = d
      local ab, bb = get(summary, cs, "both", metric), get(summary, jr, "both", metric)
      local keep = ""
      if ab and bb and ab.mean > 0 and bb.mean > 0 then
        keep = (" (keeps %.0f%% of its text + image score vs %.0f%%)"):format(100 * a.mean / ab.mean,
          100 * b.mean / bb.mean)
      end
      parts[#parts + 1] = ("%s: %s %s vs %s %s, %s%s%s"):format(COND[cond].label, cs, fmt(a), jr, fmt(b), signed(d),
        keep, noise_note(d, a, b))
    end
    if not ok then
      c.detail = ("not tested: needs %s and %s on the text-only and image-only test sets"):format(cs, jr)
    else
      c.margin = math.min(margins.text, margins.image)
      c.margins = margins
      c.holds = margins.text > 0 and margins.image > 0
      c.compared = { cs, jr }
      c.detail = ("%s: %s. %s"):format(label, table.concat(parts, "; "),
        c.holds and "Common-space is ahead on both." or
        ("Common-space is NOT ahead on both (worst margin %s)."):format(signed(c.margin)))
    end
    claims[#claims + 1] = c
  end
  return claims
end

-- The metrics table an evaluation returns, reduced to numbers we keep.
local function keep_metrics(r, metrics, into)
  for _, m in ipairs(metrics) do
    local v = r[m]
    if type(v) == "number" then into[m] = v end
  end
  return into
end

local function copy(t)
  local o = {}
  for k, v in pairs(t or {}) do o[k] = v end
  return o
end

--- Class name per row from a model's prediction over a dataset, tolerant of
-- the shapes a predict call may return: { label = {...} }, { {class =, ...}, ... },
-- { "name", ... } or 1-based class indices with `classes`.
function experiment.predicted_labels(pred, classes)
  if type(pred) ~= "table" then return nil end
  local list = pred.labels or pred.label or pred.classes_predicted or pred
  local out = {}
  for i, p in ipairs(list) do
    if type(p) == "table" then p = p.class or p.label or p.name end
    if type(p) == "number" and classes then p = classes[p] end
    out[i] = p
  end
  if #out == 0 then return nil end
  return out
end

--- Run the grid. cfg:
--   task, train, valid, test       datasets (valid may be nil: then nothing is chosen)
--   models   { { name =, <mm.model options> }, ... }
--   seeds    { 1, 2, ... }
--   conditions (default both, text, image)
--   metrics  (default accuracy, macro_f1, log_loss)
--   fit      options for model:fit (valid, seed and on_epoch are added)
--   model_defaults  options merged under each model's (e.g. dim, classes)
--   new_model(opts) -> model   (default mm.model; specs pass a fake)
--   on_run_start(info) / on_epoch(info, stats) / on_run_end(info, record)   progress hooks
--   keep_predictions  (default true): the first seed of each model keeps its
--                     per-row test predictions, confusion and configuration for the report
function experiment.run(cfg)
  assert(type(cfg) == "table", "experiment.run: expected a configuration table")
  assert(type(cfg.models) == "table" and #cfg.models > 0, "experiment.run: cfg.models must list at least one model")
  assert(cfg.train and cfg.test, "experiment.run: cfg.train and cfg.test are required")
  local seeds = cfg.seeds or { 1 }
  local names = {}
  for i, c in ipairs(experiment.CONDITIONS) do names[i] = c.name end
  local conditions = cfg.conditions or names
  for _, c in ipairs(conditions) do
    if not COND[c] then
      error(("experiment.run: unknown condition %q (%s)"):format(tostring(c), table.concat(names, ", ")), 2)
    end
  end
  local metrics = cfg.metrics or { "accuracy", "macro_f1", "log_loss" }
  local new_model = cfg.new_model or function(opts) return require("mmfuse").model(opts) end
  local runs, kept, seconds = {}, {}, {}
  local total, index = #cfg.models * #seeds, 0
  for _, spec in ipairs(cfg.models) do
    local name = spec.name or spec.fusion
    for si, seed in ipairs(seeds) do
      index = index + 1
      local info = { task = cfg.task, model = name, seed = seed, run = index, runs = total }
      if cfg.on_run_start then cfg.on_run_start(info) end
      local opts = copy(cfg.model_defaults)
      for k, v in pairs(spec) do if k ~= "name" then opts[k] = v end end
      local model = new_model(opts)
      local fo = copy(cfg.fit)
      fo.valid = cfg.valid
      fo.seed = seed
      if cfg.on_epoch then fo.on_epoch = function(stats) cfg.on_epoch(info, stats) end end
      local fitted = model:fit(cfg.train, fo)
      local record = { model = name, seed = seed, fit = type(fitted) == "table" and fitted or nil }
      if cfg.valid then
        local r = model:evaluate(cfg.valid)
        runs[#runs + 1] = keep_metrics(r, metrics, { model = name, seed = seed, condition = "valid" })
      end
      for _, cond in ipairs(conditions) do
        local drop = COND[cond].drop
        local r = model:evaluate(cfg.test, drop and { drop = drop } or nil)
        runs[#runs + 1] = keep_metrics(r, metrics, { model = name, seed = seed, condition = cond })
        if cond == "both" then record.test = r end
      end
      if si == 1 and cfg.keep_predictions ~= false then
        local keep = { model = name, seed = seed }
        if record.test then
          keep.confusion = record.test.confusion
          keep.per_class = record.test.per_class
        end
        if model.predict then
          local ok, pred = pcall(model.predict, model, cfg.test)
          if ok then keep.predicted = experiment.predicted_labels(pred, cfg.classes) end
        end
        if model.config then keep.config = model:config() end
        kept[name] = keep
      end
      if cfg.on_run_end then seconds[#seconds + 1] = cfg.on_run_end(info, record) end
    end
  end
  local summary = experiment.aggregate(runs, metrics)
  local names = {}
  for _, spec in ipairs(cfg.models) do names[#names + 1] = spec.name or spec.fusion end
  local primary = cfg.primary or "accuracy"
  local res = {
    task = cfg.task,
    classes = cfg.classes,
    metrics = metrics,
    primary = primary,
    models = names,
    conditions = conditions,
    seeds = seeds,
    runs = runs,
    summary = summary,
    kept = kept,
  }
  res.claims = experiment.claims(summary, { metric = primary, roles = cfg.roles })
  -- the model the report shows in detail: best on validation
  res.shown = experiment.select(summary, names, primary) or names[1]
  return res
end

--- Up to n misclassified posts, taking the true classes in turn (a varied
-- sample). posts: { { image =, caption =, truth = }, ... } (the test rows),
-- predicted: a class name per row.
function experiment.misclassified(posts, predicted, n)
  if not predicted or #predicted ~= #posts then return nil end
  local by_class, order = {}, {}
  for i, r in ipairs(posts) do
    if predicted[i] ~= r.truth then
      if not by_class[r.truth] then by_class[r.truth] = {}; order[#order + 1] = r.truth end
      table.insert(by_class[r.truth], { image = r.image, caption = r.caption, truth = r.truth, predicted = predicted[i] })
    end
  end
  local out, k = {}, 1
  while #out < n do
    local added = false
    for _, c in ipairs(order) do
      local p = by_class[c][k]
      if p and #out < n then out[#out + 1] = p; added = true end
    end
    if not added then break end
    k = k + 1
  end
  return out
end

local function totable(x)
  if type(x) == "userdata" and x.totable then return x:totable() end
  return x
end

--- The report's view of one task (mmfuse.report): the tables and claims of a
-- result of experiment.run, and the detail of the model chosen on validation
-- (its first seed): confusion matrix and up to 20 misclassified test posts.
-- o: title, metrics (table columns), split (text), sizes {train, valid, test},
-- posts (the test rows as experiment.misclassified takes them).
function experiment.report_task(res, o)
  local shown = res.shown
  local kept = res.kept[shown] or {}
  local seed = kept.seed or res.seeds[1]
  local sz = o.sizes or {}
  local classes = res.classes or {}
  local task = {
    task = res.task, title = o.title, primary = res.primary, metrics = o.metrics or { "accuracy", "macro_f1" },
    models = res.models, conditions = res.conditions, seeds = res.seeds, summary = res.summary,
    claims = res.claims, runs = res.runs, kept = res.kept,
    description = ("train %d / valid %d / test %d rows%s, %d classes; %d seed(s); model detail below: %s (best on "
      .. "validation), seed %s."):format(sz[1] or 0, sz[2] or 0, sz[3] or 0,
        o.split and (" (split " .. o.split .. ")") or "", #classes, #res.seeds, shown, tostring(seed)),
  }
  local conf = totable(kept.confusion)
  if conf then
    task.confusion = { classes = classes, matrix = conf,
                       title = ("Confusion matrix: %s, seed %s, test, text + image"):format(shown, tostring(seed)) }
  end
  local mis = experiment.misclassified(o.posts or {}, kept.predicted, 20)
  if mis and #mis > 0 then
    task.misclassified = mis
    task.misclassified_title = ("%d misclassified test posts (%s, seed %s)"):format(#mis, shown, tostring(seed))
  end
  return task
end

-- "image: cnn (channels 16-32-64, kernel 3, trained)" etc. for a model:config()
local function describe_encoders(cfg)
  local parts = {}
  for _, m in ipairs(cfg and cfg.modalities or {}) do
    local what
    if cfg.backbone and m.name == cfg.backbone.name then
      what = ("frozen %s backbone (%d px%s)"):format(cfg.backbone.arch, cfg.backbone.size,
        cfg.backbone.random and ", random weights" or "")
    elseif m.encoder == "cnn" then
      what = ("CNN (channels %s, kernel %d, trained from scratch)"):format(table.concat(m.channels, "-"), m.kernel)
    elseif m.encoder == "histogram" then
      what = ("HSV colour histogram (%s bins, no training)"):format(table.concat(m.bins, "x"))
    elseif m.encoder == "text" then
      what = ("bag of words and %d-grams (%d buckets)"):format(cfg.ngrams, cfg.buckets)
    else
      what = ("feature rows of size %s"):format(tostring(m.in_dim))
    end
    parts[#parts + 1] = m.name .. " encoder: " .. what
  end
  return table.concat(parts, "; ")
end

--- One line on how an experiment ran: seeds, epochs, batch, optimiser, dim,
-- the encoders (from the trained model with the most modalities), the split.
-- plan: seeds, fit, model, split, variant (as `mmfuse experiment` plans it);
-- tasks: report tasks (experiment.report_task); defaults: core.fusion.defaults.
function experiment.settings_note(plan, tasks, defaults)
  local fit, f = plan.fit or {}, defaults.fit
  local cfg
  for _, t in ipairs(tasks) do
    for _, k in pairs(t.kept or {}) do
      if k.config and (not cfg or #k.config.modalities > #cfg.modalities) then cfg = k.config end
    end
  end
  local sp = plan.split or {}
  local valid = (sp.valid and #sp.valid > 0) or (sp.ratios and sp.ratios.valid > 0)
  local split
  if sp.by then
    local by = sp.hash and ("fold (FNV-1a 32 of %s mod %d)"):format(sp.by, sp.hash) or sp.by
    split = ("Test = %s %s, validation = %s %s, train = the rest."):format(by, table.concat(sp.test, ","), by,
      valid and table.concat(sp.valid, ",") or "none")
  elseif sp.ratios then
    split = ("Test %g and validation %g of each class (seeded), train the rest."):format(sp.ratios.test, sp.ratios.valid)
  end
  local note = ("%s: %d seed(s), up to %d epochs%s, batch %d, %s lr %g, dim %d%s."):format(
    plan.variant and (plan.variant .. " variant") or "Settings", #plan.seeds, fit.epochs or f.epochs,
    valid and (" (early stopping on validation macro-F1%s)"):format((fit.patience or f.patience or 0) > 0
      and (", patience " .. (fit.patience or f.patience)) or "") or "", fit.batch or f.batch, fit.optimizer or f.optimizer, fit.lr or f.lr,
    (plan.model or {}).dim or defaults.dim, cfg and ("; " .. describe_encoders(cfg)) or "")
  return split and (note .. " " .. split) or note
end

return experiment
