--- mmfuse.model: fusion models (fields merged into `mm`: mm.model{...}, mm.load(path)).
--
--   local model = mm.model{ fusion = "commonspace", pool = "max", dim = 64,
--                           text = { ngrams = 2 }, image = { encoder = "cnn" }, classes = ds.classes }
--   model:fit(train, { valid = valid, epochs = 20, batch = 32, lr = 1e-3, seed = 1 })
--   local r = model:evaluate(test, { drop = "text" })
--   print(model:predict{ text = "cat face", image = "cat.png" })
--   model:save("emoji.mmf"); local again = mm.load("emoji.mmf")
--
-- Everything per sample (encoders, fusion, losses, optimisers, metrics) runs
-- in C (core.fusion); this file keeps options, the epoch loop (early stopping,
-- learning-rate schedule, the per-epoch callback) and the file header.
local core = require "mmfuse.core"
local data = require "mmfuse.data"
local stream = require "mmfuse.stream"
local features = require "mmfuse.features"
local ranks = require "mmfuse.ranks"
local C = core.fusion
local function is_stream(ds) return getmetatable(ds) == stream.Stream end

local M = {}
local Model = {}
Model.__index = Model

-- names and defaults of every setting come from the core (csrc/model/config.h)
local DEFAULTS = C.defaults
local function set_of(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end
local FUSIONS, POOLS = set_of(C.names), set_of(C.pools)
local FORMAT, VERSION = "mmfuse-model", "1"

local function copy(t)
  if type(t) ~= "table" then return t end
  local o = {}
  for k, v in pairs(t) do o[k] = copy(v) end
  return o
end

local function check_classes(classes, lvl)
  if type(classes) ~= "table" or #classes < 2 then
    error("mm.model: 'classes' must list at least 2 class names (e.g. classes = ds.classes)", lvl + 1)
  end
  local seen = {}
  for i, c in ipairs(classes) do
    if type(c) ~= "string" then error(("mm.model: class %d must be a string"):format(i), lvl + 1) end
    if seen[c] then error(("mm.model: class '%s' listed twice"):format(c), lvl + 1) end
    seen[c] = true
  end
end

-- ---------------------------------------------------------------------------
-- frozen backbones as the image encoder. The model holds a mmfuse.features encoder; datasets
-- with image files get a copy carrying the backbone rows as a dense modality named
-- "image:<arch>" (the C model's "features" encoder reads it), computed once per dataset
-- object (and kept on disk when image.cache is given). The model file records the arch, the
-- size, the seed and the weights file (path, bytes, fingerprint), not the backbone weights
-- (11M / 3.5M floats): mm.load rebuilds the backbone from them.

-- A TF.js layers model (image = { encoder = "x/model.json", layer = }) is a backbone too: the
-- file records its path, layer, size and the fingerprint of model.json and its shards.
local BACKBONES = { resnet18 = true, mobilenet_v2 = true }
local function is_backbone(enc) return BACKBONES[enc] or require("mmfuse.tfjs").is_model(enc) end

local function self_backbone(self, b)
  local enc = features.encoder(b.arch, { weights = b.weights, size = b.size, seed = b.seed, layer = b.layer })
  b.size, b.seed, b.random = enc.size, enc.seed, enc.random or false
  b.bytes, b.fingerprint = enc.weights_size, enc.weights_hash
  b.tfjs = enc.tfjs
  b.name = "image:" .. (enc.stem or b.arch)
  self.backbone, self._enc = b, enc
  self._feats = setmetatable({}, { __mode = "k" })
end

-- ds with the backbone rows added (cached per dataset object); ds itself without a backbone
local function with_backbone(self, ds, what, lvl)
  if not self.backbone or self.fusion == "text" then return ds end
  if self.options.modalities then
    local uses = false
    for _, nm in ipairs(self.options.modalities) do uses = uses or nm == "image" end
    if not uses then return ds end
  end
  if is_stream(ds) then
    error(("%s: an image backbone runs on a dataset in memory; stream its features instead (mm.features, then "
      .. "features = { name = \"x.npy\" })"):format(what), lvl + 1)
  end
  local hit = self._feats[ds]
  if hit then return hit end
  local b = self.backbone
  local ok, f, info = pcall(features.extract, ds, { encoder = b.arch, encoder_object = self._enc, cache = b.cache,
    batch = b.batch })
  if not ok then
    error(("%s: the image encoder %s needs image files: %s"):format(what, b.arch, tostring(f):gsub("^features: ", "")),
      lvl + 1)
  end
  local copy = core.data.drop(ds._c, {})
  core.data.add_dense(copy, b.name, f, info.mask)
  local out = setmetatable({ _c = copy, classes = ds.classes, columns = ds.columns, images = ds.images,
    source = ds.source }, data.Dataset)
  self._feats[ds] = out
  return out
end

--- mm.model{ fusion=, pool=, dim=, classes=, text={ngrams=, buckets=, min_count=, max_vocab=, dropout=,
--                                                  vectors="file.vec", vectors_format="auto", freeze=false,
--                                                  unk=false, lowercase=true, keep_punct=false,
--                                                  tokenizer="plain"|"posts", urls=, mentions=, rt=,
--                                                  hashtags=, emoticons=, tones=, elongation=},
--            image={encoder="cnn"|"histogram"|"features", channels=, kernel=, bins=, augment=, dropout=,
--                   project_lr=},
--              or image={encoder="resnet18"|"mobilenet_v2", weights="x.safetensors" (random init without),
--                        size=224, seed=1, cache=dir, batch=16, dropout=}: a frozen backbone (see below),
--            features={"name", ...} or { name = {dropout=} }, modalities={"text", ...},
--            missing="learned"|"zeros", lambda=, margin=, hardest=, dropout={ text = p, ... },
--            project_lr={ image = s, ... } }
-- project_lr (joint / common space): the learning rate of a modality's projection into the
-- common space is fit's lr times s. Default: 1 / (the mean L2 norm of the training rows) for
-- feature rows and a frozen backbone's features whose mean norm is above 1, else 1 (with Adam
-- a projection's output moves by about lr times its input's norm a step; the text's by lr).
-- model:config() shows the value a built model uses.
-- Options left out take the core's defaults (mm.settings.defaults; mm.help("model")).
local function check_project_lr(o, lvl)
  local function check(name, v)
    if v ~= nil and (type(v) ~= "number" or not (v >= 0 and v <= 1e6)) then
      error(("mm.model: project_lr of '%s' must be a number in [0, 1e6] (got %s)"):format(name, tostring(v)), lvl + 2)
    end
  end
  if o.project_lr ~= nil then
    if type(o.project_lr) ~= "table" then error("mm.model: project_lr must be a table { modality = multiplier }", lvl + 1) end
    for k, v in pairs(o.project_lr) do check(tostring(k), v) end
  end
  for _, k in ipairs { "text", "image" } do
    if type(o[k]) == "table" then check(k, o[k].project_lr) end
  end
  if type(o.features) == "table" then
    for k, v in pairs(o.features) do
      if type(v) == "table" then check(tostring(k), v.project_lr) end
    end
  end
end

function M.model(o)
  if type(o) ~= "table" then error("mm.model: expects an option table", 2) end
  local fusion = o.fusion or DEFAULTS.fusion
  if not FUSIONS[fusion] then
    error(("mm.model: unknown fusion '%s' (%s)"):format(tostring(fusion), table.concat(C.names, ", ")), 2)
  end
  check_classes(o.classes, 2)
  if o.pool and not POOLS[o.pool] then
    error(("mm.model: unknown pool '%s' (%s)"):format(tostring(o.pool), table.concat(C.pools, ", ")), 2)
  end
  local dim = o.dim or DEFAULTS.dim
  if math.type(dim) ~= "integer" or dim < 1 then error("mm.model: dim must be a positive integer", 2) end
  for _, k in ipairs { "text", "image" } do
    if o[k] ~= nil and o[k] ~= false and type(o[k]) ~= "table" then
      error(("mm.model: '%s' must be an option table or false"):format(k), 2)
    end
  end
  check_project_lr(o, 2)
  local self = setmetatable({ options = copy(o), classes = copy(o.classes), fusion = fusion }, Model)
  self.options.classes = nil
  if type(o.image) == "table" and is_backbone(o.image.encoder) then
    local im = o.image
    if im.cache ~= nil and type(im.cache) ~= "string" then error("mm.model: image.cache must be a directory or an .npy path", 2) end
    local ok, err = pcall(self_backbone, self, { arch = im.encoder, weights = im.weights, size = im.size, seed = im.seed,
      cache = im.cache, batch = im.batch, layer = im.layer })
    if not ok then error("mm.model: " .. tostring(err):gsub("^features: ", "image: "), 2) end
  end
  return self
end

-- the list of modality configurations for the C model, given the training data
local function modality_list(self, ds)
  local o = self.options
  local names = {}
  if o.modalities then
    names = copy(o.modalities)
  elseif self.fusion == "text" then
    names = { "text" }
  elseif self.fusion == "image" then
    names = { "image" }
  else
    local have = {}
    for _, m in ipairs(ds:modalities()) do have[m.name] = true end
    if o.text ~= false and (o.text or have.text) then names[#names + 1] = "text" end
    if o.image ~= false and (o.image or have.image) then names[#names + 1] = "image" end
    if o.features then
      for k, v in pairs(o.features) do
        if type(k) == "number" then names[#names + 1] = v end
      end
      local extra = {}
      for k in pairs(o.features) do if type(k) == "string" then extra[#extra + 1] = k end end
      table.sort(extra)
      for _, k in ipairs(extra) do names[#names + 1] = k end
    elseif not o.text and not o.image then
      -- nothing named: every further modality of the data
      local extra = {}
      for _, m in ipairs(ds:modalities()) do
        if m.name ~= "text" and m.name ~= "image" then extra[#extra + 1] = m.name end
      end
      for _, k in ipairs(extra) do names[#names + 1] = k end
    end
  end
  if #names == 0 then error("mm.model: no modality to use (the data has none the model asks for)", 3) end
  local drops = o.dropout or {}
  local plrs = o.project_lr or {}
  -- a modality given no dropout of its own takes the default one when the model has two or
  -- more; common-space fusion's default for every modality but the text is its own
  local function default_drop(name)
    if #names < 2 then return 0 end
    if self.fusion == "commonspace" and name ~= "text" then return DEFAULTS.commonspace_dropout end
    return DEFAULTS.modality_dropout
  end
  local list = {}
  for _, name in ipairs(names) do
    local spec = {}
    if name == "text" and type(o.text) == "table" then spec = o.text end
    if name == "image" and type(o.image) == "table" then spec = o.image end
    if type(o.features) == "table" and type(o.features[name]) == "table" then spec = o.features[name] end
    local enc, given = spec.encoder, drops[name]
    local plr = spec.project_lr
    if plr == nil then plr = plrs[name] end
    if name == "image" and self.backbone then name, enc = self.backbone.name, "features" end
    if name == "text" then enc = enc or "text" end
    if enc == "features" then enc = "features" end
    list[#list + 1] = {
      name = name, encoder = enc or "auto", dropout = spec.dropout or given or drops[name] or default_drop(name),
      project_lr = plr,
      channels = spec.channels, kernel = spec.kernel, bins = spec.bins, augment = spec.augment,
    }
  end
  return list
end

local function c_config(self, mods)
  local o = self.options
  local t = type(o.text) == "table" and o.text or {}
  return {
    fusion = self.fusion, pool = o.pool, dim = o.dim, nclasses = #self.classes,
    missing = o.missing, lambda = o.lambda, margin = o.margin, hardest = o.hardest,
    ngrams = t.ngrams, buckets = t.buckets, min_count = t.min_count, max_vocab = t.max_vocab,
    unk = t.unk, lowercase = t.lowercase, keep_punct = t.keep_punct,
    tokenizer = t.tokenizer, urls = t.urls, mentions = t.mentions, rt = t.rt, hashtags = t.hashtags,
    emoticons = t.emoticons, tones = t.tones, elongation = t.elongation,
    modalities = mods,
  }
end

local function check_data(self, ds, what, lvl)
  if getmetatable(ds) ~= data.Dataset and not is_stream(ds) then
    error(("%s: expects a dataset (mm.data.load / mm.data.new) or a stream (mm.data.stream)"):format(what), lvl + 1)
  end
  if #ds.classes ~= #self.classes then
    error(("%s: the data has %d classes, the model %d"):format(what, #ds.classes, #self.classes), lvl + 1)
  end
  for i, c in ipairs(self.classes) do
    if ds.classes[i] ~= c then
      error(("%s: class %d of the data is '%s', of the model '%s' (same names, same order needed)"):format(what, i,
        tostring(ds.classes[i]), c), lvl + 1)
    end
  end
end

local function balanced_weights(ds, C)
  local counts = {}
  for c = 1, C do counts[c] = 0 end
  local n = 0
  for _, y in ipairs(ds:labels()) do
    if y > 0 then counts[y] = counts[y] + 1; n = n + 1 end
  end
  local w = {}
  for c = 1, C do w[c] = counts[c] > 0 and n / (C * counts[c]) or 0 end
  return w
end

--- model:fit(train, { valid=, epochs=, batch=, shuffle=true, lr=, optimizer="adam"|"sgd", momentum=, weight_decay=,
--                    clip=, lr_decay=number|"linear", class_weights="balanced"|"none"|{...}, patience=, seed=1,
--                    on_epoch=function(stats) end, on_batch=function(p) end, progress_interval=,
--                    dist=true, dist_sparse="auto"|"rows"|"table", dist_part="rows"|"files" })
--   -> history (stats per epoch; history.best_epoch)
-- Options left out take the core's defaults (mm.settings.defaults.fit).
-- With `valid`, the weights of the epoch with the best validation macro-F1 are kept, and
-- training stops after `patience` epochs without a better one (0: never).
-- shuffle = false trains on the rows in the data's order (every epoch the same batches).
-- on_epoch may return false to stop. on_batch gets {epoch, epochs, batch, batches, samples,
-- loss, accuracy, seconds} (running values of the epoch) at most every progress_interval
-- seconds and after the last batch of an epoch; returning false ends training there.
-- Calling fit again continues from the current weights (a new seed re-seeds shuffling).
-- dist = true (under mpirun, every process the same call on the same data): data-parallel
-- training over the processes of the job (mmfuse.dist): each takes its slice of every
-- global batch of batch x processes rows, the gradients are summed, the weights stay the
-- same everywhere; the statistics, the validation and the stopping are the job's.
-- A stream with dist = true (every process the same stream): the model is built from the
-- whole stream on every process, then each process trains on its part (rows r, r + P, ...,
-- or whole files with dist_part = "files"), `batch` rows of it every step, until every part
-- has run out; a valid stream is evaluated part by part and the counts summed.
-- The core's evaluate on a dataset or a stream (with comm: over the processes of the job):
-- the metrics, and the probabilities when want_probs (never across processes: nil).
local function core_evaluate(self, ds, comm, want_probs)
  return C.evaluate(self._c, ds._c, comm, want_probs and true or false)
end

function Model:fit(train, o)
  if o ~= nil and type(o) ~= "table" then error("fit: options must be a table, got " .. type(o), 2) end
  o = o or {}
  check_data(self, train, "fit", 2)
  if o.valid then check_data(self, o.valid, "fit (valid)", 2) end
  local raw_train = train
  train = with_backbone(self, train, "fit", 2)
  if o.valid then
    local shallow = {}
    for k, v in pairs(o) do shallow[k] = v end
    o = shallow
    o.valid = with_backbone(self, o.valid, "fit (valid)", 2)
  end
  local seed = o.seed or 1
  if math.type(seed) ~= "integer" then error("fit: seed must be an integer", 2) end
  local dist = o.dist and ranks.module("fit", 2) or nil
  if not self._c then
    local cfg = c_config(self, modality_list(self, raw_train))
    self._c = C.new(cfg)
    for _, m in ipairs(train:modalities()) do
      if m.kind == "image" then self.image_size = m.size end
    end
  end
  C.build(self._c, train._c, seed)
  local topt = type(self.options.text) == "table" and self.options.text or {}
  for _, m in ipairs(C.config(self._c).modalities) do
    if m.encoder == "text" then
      if topt.vectors and not self.vectors then
        if type(topt.vectors) ~= "string" then error("fit: text.vectors must be a path", 2) end
        local found, total, d = C.load_vectors(self._c, topt.vectors, topt.vectors_format)
        self.vectors = { path = topt.vectors, found = found, total = total, dim = d,
          coverage = total > 0 and found / total or 0 }
      end
      C.freeze(self._c, m.name .. ".embedding", topt.freeze and true or false)
    end
  end
  C.seed(self._c, seed)
  local epochs = o.epochs or DEFAULTS.fit.epochs
  if math.type(epochs) ~= "integer" or epochs < 1 then error("fit: epochs must be a positive integer", 2) end
  local lr = o.lr or DEFAULTS.fit.lr
  if type(lr) ~= "number" or not (lr > 0) then error("fit: lr must be a number > 0", 2) end
  local cw = o.class_weights
  if cw == nil then cw = DEFAULTS.fit.class_weights end
  if cw == "balanced" then
    if is_stream(train) then error("fit: class_weights = \"balanced\" needs a dataset in memory; give the weights", 2) end
    cw = balanced_weights(train, #self.classes)
  elseif cw == "none" then
    cw = nil
  elseif cw ~= nil and type(cw) ~= "table" then
    error("fit: class_weights must be \"balanced\", \"none\" or a list of numbers", 2)
  end
  local patience = o.patience
  if patience == nil then patience = DEFAULTS.fit.patience end
  if math.type(patience) ~= "integer" or patience < 0 then
    error("fit: patience must be an integer >= 0 (0: never stop early)", 2)
  end
  local opts = {
    batch = o.batch, shuffle = o.shuffle, optimizer = o.optimizer, momentum = o.momentum,
    weight_decay = o.weight_decay, clip = o.clip, class_weights = cw,
    beta1 = o.beta1, beta2 = o.beta2, eps = o.eps, comm = dist and dist.comm, dist_sparse = o.dist_sparse,
  }
  -- a stream across processes: built from the whole stream on every process (above, so the
  -- vocabulary and the weights are the same everywhere), trained on this process's part
  local train_c = train._c
  if o.dist_part ~= nil and o.dist_part ~= "rows" and o.dist_part ~= "files" then
    error("fit: dist_part must be \"rows\" or \"files\"", 2)
  end
  if dist and is_stream(train) then
    local ok, part = pcall(train.part, train, dist.rank + 1, dist.size, o.dist_part == "files")
    if not ok then error("fit: " .. tostring(part), 2) end
    train = part
    train_c = part._c
  end
  local history = {}
  local best_f1, best_epoch, snap, bad = -1, nil, nil, 0
  for e = 1, epochs do
    local lr_e = lr
    if type(o.lr_decay) == "number" then
      lr_e = lr * o.lr_decay ^ (e - 1)
    elseif o.lr_decay == "linear" then
      lr_e = lr * (1 - (e - 1) / epochs)
    elseif o.lr_decay ~= nil then
      error("fit: lr_decay must be a number (factor per epoch) or 'linear'", 2)
    end
    opts.lr = lr_e
    if o.on_batch then
      opts.on_batch = function(p)
        p.epoch, p.epochs = e, epochs
        return o.on_batch(p)
      end
      opts.progress_interval = o.progress_interval
    end
    local st = C.train_epoch(self._c, train_c, opts)
    st.epoch, st.lr = e, lr_e
    if is_stream(train) then st.stream = train:stats() end
    if o.valid then
      local r = core_evaluate(self, o.valid, dist and dist.comm, false)
      -- an empty validation part would keep the first epoch's weights
      if r.n == 0 then error("fit: the validation data has no rows", 2) end
      st.valid_accuracy, st.valid_macro_f1, st.valid_loss = r.accuracy, r.macro_f1, r.log_loss
      if r.macro_f1 > best_f1 then
        best_f1, best_epoch, bad = r.macro_f1, e, 0
        snap = C.snapshot(self._c)
      else
        bad = bad + 1
      end
    end
    history[#history + 1] = st
    local stop = o.on_epoch ~= nil and o.on_epoch(st) == false
    if dist then stop = dist.any(stop) end -- every process stops after the same epoch
    if stop then break end
    if st.stopped then break end
    if patience > 0 and bad >= patience then break end
  end
  if snap then C.restore(self._c, snap) end
  history.best_epoch = best_epoch
  history.vectors = self.vectors
  history.best_valid_macro_f1 = snap and best_f1 or nil
  self.history = history
  self._dist = dist -- save() writes from rank 0 only
  return history
end

local Result = {}
Result.__index = Result
function Result.__tostring(r)
  local lines = { ("accuracy %.4f  macro-F1 %.4f  log-loss %.4f  (%d rows)"):format(r.accuracy, r.macro_f1,
    r.log_loss, r.n) }
  lines[#lines + 1] = ("  %-16s %9s %9s %9s %8s"):format("class", "precision", "recall", "f1", "support")
  for i, c in ipairs(r.classes) do
    lines[#lines + 1] = ("  %-16s %9.3f %9.3f %9.3f %8d"):format(c:sub(1, 16), r.precision[i], r.recall[i], r.f1[i],
      r.support[i])
  end
  return table.concat(lines, "\n")
end

local function need_built(self, what)
  if not self._c or not C.built(self._c) then error(what .. ": the model is not trained yet (fit or mm.load first)", 3) end
end

--- model:evaluate(ds, { drop = "text" | {"text", ...}, dist = true }) -> result table:
-- accuracy, macro_f1, log_loss, n, precision/recall/f1/support (per class, in class order),
-- per_class[name] = {precision, recall, f1, support}, confusion[true][pred], classes, probs (tensor).
-- dist = true (every process the same call on the same data or the same stream): each process
-- predicts its part and the counts are summed, so every process gets the one-process metrics;
-- probs is then nil.
function Model:evaluate(ds, o)
  if o ~= nil and type(o) ~= "table" then error("evaluate: options must be a table, got " .. type(o), 2) end
  o = o or {}
  need_built(self, "evaluate")
  check_data(self, ds, "evaluate", 2)
  ds = with_backbone(self, ds, "evaluate", 2)
  if o.drop then
    local names = type(o.drop) == "string" and { o.drop } or o.drop
    if type(names) ~= "table" then error("evaluate: drop must name modalities", 2) end
    if self.backbone then -- dropping the image drops the backbone rows too
      local more = copy(names)
      for _, nm in ipairs(names) do
        if nm == "image" or nm == self.backbone.name then more[#more + 1] = "image"; more[#more + 1] = self.backbone.name end
      end
      names = more
    end
    local have = {}
    for _, m in ipairs(ds:modalities()) do have[m.name] = true end
    local keep = {}
    for _, nm in ipairs(names) do if have[nm] then keep[#keep + 1] = nm end end
    for _, nm in ipairs(names) do
      if type(nm) ~= "string" then error("evaluate: drop must name modalities", 2) end
    end
    ds = ds:drop(keep)
  end
  local r, probs = core_evaluate(self, ds, o.dist and ranks.module("evaluate", 2).comm or nil, true)
  r.classes = self.classes
  r.probs = probs
  r.per_class = {}
  for i, c in ipairs(self.classes) do
    r.per_class[c] = { precision = r.precision[i], recall = r.recall[i], f1 = r.f1[i], support = r.support[i] }
  end
  return setmetatable(r, Result)
end

local function looks_like_image_bytes(s)
  return s:sub(1, 8) == "\137PNG\r\n\26\n" or s:sub(1, 3) == "\255\216\255" or s:sub(1, 4) == "GIF8"
    or s:sub(1, 2) == "BM" and #s > 26 or s:find("\0", 1, true) ~= nil
end

--- model:predict{ text = "...", image = path_or_bytes, <feature> = {...} } -> class name, probabilities
--  (a table class -> p); model:predict(ds [, { dist = true }]) -> array of class names, probabilities
--  tensor [N, C] (dist: each process predicts its part, every process gets all the rows, in the
--  data's order; ds may be a stream, the same on every process).
function Model:predict(x, o)
  need_built(self, "predict")
  if getmetatable(x) == data.Dataset or is_stream(x) then
    if o ~= nil and type(o) ~= "table" then error("predict: options must be a table, got " .. type(o), 2) end
    check_data(self, x, "predict", 2)
    x = with_backbone(self, x, "predict", 2)
    local probs = C.predict(self._c, x._c, o and o.dist and ranks.module("predict", 2).comm or nil)
    local names = {}
    local P = probs:totable()
    for i, row in ipairs(P) do
      local best = 1
      for c = 2, #row do if row[c] > row[best] then best = c end end
      names[i] = self.classes[best]
    end
    return names, probs
  end
  if type(x) ~= "table" then error("predict: expects a table {text=, image=} or a dataset", 2) end
  -- the modalities (names, encoders, sizes) are fixed once the model is built: read
  -- them once per model core rather than once per post (4.5 us of a ~95 us call)
  if self._pcfg_c ~= self._c then self._pcfg, self._pcfg_c = C.config(self._c), self._c end
  local cfg = self._pcfg
  local t = { n = 1, classes = self.classes, labels = { false } }
  local feats = {}
  for _, m in ipairs(cfg.modalities) do
    local v = x[m.name]
    if self.backbone and m.name == self.backbone.name then
      v = x.image
      if v ~= nil then
        if type(v) ~= "string" then error("predict: image must be a path or the image bytes", 2) end
        local ok, row = pcall(self._enc.encode, self._enc, { v }, nil, { bytes = looks_like_image_bytes(v) })
        if not ok then error("predict: " .. tostring(row):gsub("^features: row 1: ", ""), 2) end
        feats[m.name] = row
      end
    elseif m.encoder == "text" then
      if v ~= nil and type(v) ~= "string" then error("predict: text must be a string", 2) end
      t.text, t.text_name = { v or false }, m.name
    elseif m.encoder == "cnn" or m.encoder == "histogram" then
      if v ~= nil and type(v) ~= "string" then error("predict: image must be a path or the image bytes", 2) end
      t.image, t.image_name = { v or false }, m.name
      t.image_bytes = v ~= nil and looks_like_image_bytes(v)
      t.image_size = m.height or self.image_size or 32
    else
      if v ~= nil then
        if type(v) ~= "table" and type(v) ~= "userdata" then
          error(("predict: %s must be a table of %d numbers"):format(m.name, m.in_dim), 2)
        end
        local row = type(v) == "table" and (type(v[1]) == "table" and v or { v }) or v
        feats[m.name] = row
      end
    end
  end
  if next(feats) then t.features = feats end
  for k in pairs(x) do
    local known = k == "text" or k == "image" -- a unimodal model ignores the other one
    for _, m in ipairs(cfg.modalities) do if m.name == k then known = true end end
    if not known then error(("predict: the model has no modality '%s'"):format(tostring(k)), 2) end
  end
  local ok, ds = pcall(data.new, t)
  if not ok then error("predict: " .. tostring(ds), 2) end
  local probs = C.predict(self._c, ds._c):totable()[1]
  local best, out = 1, {}
  for c, p in ipairs(probs) do
    out[self.classes[c]] = p
    if p > probs[best] then best = c end
  end
  return self.classes[best], out
end

--- The configuration: resolved (encoders, sizes) once the model is built, else the options.
function Model:config()
  if self._c then
    local c = C.config(self._c)
    c.classes = self.classes
    c.image_size = self.image_size
    c.backbone = copy(self.backbone)
    return c
  end
  local c = copy(self.options)
  c.fusion, c.classes = self.fusion, self.classes
  c.backbone = copy(self.backbone)
  return c
end

--- Number of parameters.
function Model:nparams() return self._c and C.nparams(self._c) or 0 end

--- Weights of one parameter as a tensor (a copy).
function Model:param(name)
  need_built(self, "param")
  return C.param(self._c, name)
end

--- Overwrite the weights of one parameter (same number of values).
function Model:set_param(name, t)
  need_built(self, "set_param")
  C.set_param(self._c, name, t)
end

function Model:params()
  need_built(self, "params")
  return C.params(self._c)
end

local function fmt_int(n)
  local s = tostring(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

function Model.__tostring(self)
  local o = self.options
  local head = ("mmfuse model: %s fusion%s, dim %d, %d classes"):format(self.fusion,
    (self.fusion == "joint" or self.fusion == "commonspace") and (", pool " .. (o.pool or DEFAULTS.pool)) or "",
    o.dim or DEFAULTS.dim, #self.classes)
  local warn = ""
  if self.backbone then
    local b = self.backbone
    warn = ("\n  image backbone %s, %dpx, %s"):format(b.arch, b.size, b.tfjs and ("pretrained TF.js layers model, layer "
      .. tostring(self._enc.layer)) or b.random
      and ("RANDOM weights (seed " .. b.seed .. "; no weights file given: the features carry no ImageNet knowledge)")
      or ("weights " .. b.weights))
  end
  if not self._c or not C.built(self._c) then return head .. warn .. "\n  (not built yet: fit builds it from the data)" end
  local lines = { head .. warn }
  local cfg = C.config(self._c)
  for _, m in ipairs(cfg.modalities) do
    local extra = m.encoder == "cnn" and ("channels " .. table.concat(m.channels, "-") .. ", " .. m.height .. "px")
      or m.encoder == "histogram" and ("bins " .. table.concat(m.bins, "x"))
      or m.encoder == "text" and ("vocabulary+buckets " .. m.in_dim .. ", ngrams " .. cfg.ngrams)
      or ("size " .. tostring(m.in_dim))
    lines[#lines + 1] = ("  modality %-8s encoder %-9s -> %d  (%s%s)"):format(m.name, m.encoder, m.out_dim, extra,
      (m.dropout > 0 and (", dropout %g"):format(m.dropout) or "")
        .. ((m.project_lr or 1) ~= 1 and (", projection lr x %g"):format(m.project_lr) or ""))
  end
  for _, p in ipairs(C.params(self._c)) do
    lines[#lines + 1] = ("  %-28s %-14s %12s"):format(p.name, table.concat(p.shape, "x"), fmt_int(p.count))
  end
  lines[#lines + 1] = ("  %-28s %-14s %12s"):format("total", "", fmt_int(C.nparams(self._c)))
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------------------
-- files: safetensors with the configuration in __metadata__

local function cjson()
  local ok, cj = pcall(require, "cjson")
  if not ok then error("model files need lua-cjson (Debian: lua-cjson)", 3) end
  return cj
end

--- model:save(path): one safetensors file, written atomically. After fit{ dist = true } only
-- rank 0 writes it; the other processes return at once (dist.barrier() before they read it).
function Model:save(path)
  if type(path) ~= "string" then error("save: expects a path", 2) end
  need_built(self, "save")
  local cj = cjson()
  local cfg = C.config(self._c)
  cfg.built = nil
  local header = {}
  local off = 0
  for _, p in ipairs(C.params(self._c)) do
    header[p.name] = { dtype = "F32", shape = p.shape, data_offsets = { off, off + 4 * p.count } }
    off = off + 4 * p.count
  end
  local lua_opts = copy(self.options)
  lua_opts.features = nil
  lua_opts.text, lua_opts.image = nil, nil
  header.__metadata__ = {
    format = FORMAT, version = VERSION,
    config = cj.encode(cfg),
    classes = cj.encode(self.classes),
    vocabulary = cj.encode(C.vocab(self._c)),
    tokenizer = cj.encode { rule = "mmfuse-text-1 (csrc/text/tokenize.h)", lowercase = cfg.lowercase,
      keep_punct = cfg.keep_punct, urls = cfg.urls, mentions = cfg.mentions, rt = cfg.rt, hashtags = cfg.hashtags,
      emoticons = cfg.emoticons, tones = cfg.tones, elongation = cfg.elongation,
      unk = cfg.unk, ngrams = cfg.ngrams, buckets = cfg.buckets,
      hash = "fnv1a-32 tokens, n-gram h*116049371+t (csrc/text/ngram.h)" },
    image_size = tostring(self.image_size or 0),
    backbone = self.backbone and cj.encode { arch = self.backbone.arch, size = self.backbone.size,
      seed = self.backbone.seed, random = self.backbone.random, weights = self.backbone.weights,
      bytes = self.backbone.bytes, fingerprint = self.backbone.fingerprint, name = self.backbone.name,
      layer = self.backbone.layer } or nil,
  }
  local json = cj.encode(header)
  if not self._dist or self._dist.rank == 0 then C.save(self._c, path, json) end
  return path
end

local function fail(path, msg, lvl) error(("%s: %s"):format(path, msg), lvl + 1) end

local function int_of(v) return type(v) == "number" and math.tointeger(v) or nil end

--- mm.load(path) -> model. Checks every size, offset, dtype and shape; never runs code from the file.
function M.load(path)
  if type(path) ~= "string" then error("mm.load: expects a path", 2) end
  local cj = cjson()
  local header, file, data_bytes = C.read(path)
  local ok, h = pcall(cj.decode, header)
  if not ok or type(h) ~= "table" then fail(path, "the header is not valid JSON", 2) end
  local meta = h.__metadata__
  if type(meta) ~= "table" then fail(path, "no __metadata__ in the header (not an mmfuse model)", 2) end
  for k, v in pairs(meta) do
    if type(v) ~= "string" then fail(path, ("__metadata__.%s must be a string"):format(tostring(k)), 2) end
  end
  if meta.format ~= FORMAT then fail(path, ("format '%s' is not %s"):format(tostring(meta.format), FORMAT), 2) end
  if meta.version ~= VERSION then
    fail(path, ("model file version '%s' is not supported (this mmfuse reads %s)"):format(tostring(meta.version),
      VERSION), 2)
  end
  local function dec(key)
    if type(meta[key]) ~= "string" then fail(path, ("__metadata__.%s is missing"):format(key), 3) end
    local okd, v = pcall(cj.decode, meta[key])
    if not okd or type(v) ~= "table" then fail(path, ("__metadata__.%s is not valid JSON"):format(key), 3) end
    return v
  end
  local cfg, classes, vocab = dec("config"), dec("classes"), dec("vocabulary")
  local seen = {}
  for i = 1, #classes do
    if type(classes[i]) ~= "string" then fail(path, "class names must be strings", 2) end
    if seen[classes[i]] then fail(path, ("class '%s' is listed twice"):format(classes[i]), 2) end
    seen[classes[i]] = true
  end
  if type(cfg.modalities) ~= "table" then fail(path, "config.modalities is missing", 2) end
  if cfg.nclasses ~= #classes then fail(path, ("config says %s classes, the file lists %d"):format(
    tostring(cfg.nclasses), #classes), 2) end
  for i = 1, #vocab do
    if type(vocab[i]) ~= "string" then fail(path, "vocabulary entries must be strings", 2) end
  end
  -- tensors: sanitise numbers (cjson gives floats) and refuse extra entries
  -- the model the config describes may not need more floats than the file's
  -- data section holds: checked before any parameter is allocated
  local budget = math.max(1, data_bytes // 4)
  local tensors, count = {}, 0
  for name, t in pairs(h) do
    if name ~= "__metadata__" then
      if type(t) ~= "table" or type(t.shape) ~= "table" or type(t.data_offsets) ~= "table" then
        fail(path, ("tensor '%s' needs dtype, shape and data_offsets"):format(tostring(name)), 2)
      end
      local shape, offs = {}, {}
      for i, v in ipairs(t.shape) do
        shape[i] = int_of(v)
        if not shape[i] or shape[i] < 0 then fail(path, ("tensor '%s' has a bad shape"):format(name), 2) end
      end
      for i, v in ipairs(t.data_offsets) do
        offs[i] = int_of(v)
        if not offs[i] then fail(path, ("tensor '%s' has bad data_offsets"):format(name), 2) end
      end
      tensors[name] = { dtype = t.dtype, shape = shape, data_offsets = offs }
      count = count + 1
      if offs[2] and offs[2] > data_bytes then
        fail(path, ("tensor '%s' has data_offsets past the end of the data (%d > %d bytes): the file is truncated or damaged"):format(
          name, offs[2], data_bytes), 2)
      end
    end
  end
  local self = setmetatable({ classes = classes, fusion = cfg.fusion, options = {
    fusion = cfg.fusion, pool = cfg.pool, dim = cfg.dim, missing = cfg.missing, lambda = cfg.lambda,
    margin = cfg.margin, hardest = cfg.hardest,
  } }, Model)
  if not FUSIONS[cfg.fusion] then fail(path, ("unknown fusion '%s'"):format(tostring(cfg.fusion)), 2) end
  local okc, err = pcall(function()
    for _, m in ipairs(cfg.modalities) do
      if type(m) ~= "table" then error("a modality entry is not a table") end
      if m.encoder == "auto" then error("modality '" .. tostring(m.name) .. "' has no resolved encoder") end
    end
    -- out_dim is derived from the other settings: checked against the built model, not set
    local out_dims = {}
    for i, m in ipairs(cfg.modalities) do out_dims[i], m.out_dim = m.out_dim, nil end
    self._c = C.new(cfg)
    C.build_resolved(self._c, vocab, budget)
    for i, m in ipairs(C.config(self._c).modalities) do
      if out_dims[i] ~= nil and out_dims[i] ~= m.out_dim then
        error(("modality '%s': the file's out_dim %s is not the %d its encoder gives"):format(m.name,
          tostring(math.tointeger(out_dims[i]) or out_dims[i]), m.out_dim))
      end
    end
  end)
  if not okc then fail(path, tostring(err):gsub("^[^:]*:%d+: ", ""), 2) end
  if count ~= #C.params(self._c) then
    fail(path, ("holds %d tensors, the configuration needs %d"):format(count, #C.params(self._c)), 2)
  end
  C.load_weights(self._c, file, tensors, path)
  self.image_size = tonumber(meta.image_size) or 32
  if self.image_size == 0 then self.image_size = nil end
  if meta.backbone then
    local b = dec("backbone")
    if type(b.arch) ~= "string" or not is_backbone(b.arch) then
      fail(path, ("unknown image backbone '%s'"):format(tostring(b.arch)), 2)
    end
    local w = b.weights
    if w ~= nil and type(w) ~= "string" then fail(path, "backbone.weights must be a path", 2) end
    if b.layer ~= nil and type(b.layer) ~= "string" then fail(path, "backbone.layer must be a layer name", 2) end
    local function exists(p) return core.io.stat(p) == "file" end
    local function beside(p) -- a relative path that does not resolve: next to the model file
      if p and not exists(p) and p:sub(1, 1) ~= "/" then
        local alt = (path:match("^(.*)/[^/]*$") or ".") .. "/" .. p
        if exists(alt) then return alt end
      end
      return p
    end
    w = beside(w)
    local arch = BACKBONES[b.arch] and b.arch or beside(b.arch)
    local spec = { arch = arch, weights = w, size = int_of(b.size), seed = int_of(b.seed), cache = nil, layer = b.layer }
    local okb, err = pcall(self_backbone, self, spec)
    if not okb then fail(path, "rebuilding the image backbone: " .. tostring(err):gsub("^features: ", ""), 2) end
    if (w or self.backbone.tfjs) and (self.backbone.bytes ~= int_of(b.bytes) or self.backbone.fingerprint ~= b.fingerprint) then
      fail(path, ("the backbone weights %s are not the %s the model was trained with (size or fingerprint differ)")
        :format(w or arch, w and "file" or "files"), 2)
    end
    if self.backbone.name ~= b.name then fail(path, "backbone modality name mismatch", 2) end
    self.options.image = { encoder = arch, weights = w, size = spec.size, seed = spec.seed, layer = b.layer }
  end
  return self
end

M.Model = Model
--- The names and defaults of every setting, from the core (csrc/model/config.h):
-- fusions, encoders, pools, optimizers, missing (lists of names) and defaults
-- (the settings of model:config(), plus cnn, histogram and fit).
M.settings = { fusions = C.names, encoders = C.encoders, pools = C.pools, optimizers = C.optimizers,
  missing = C.missing, defaults = DEFAULTS }
return M
