#!/usr/bin/env lua5.4
-- tools/sweep_defaults.lua - the sweep that chose mmfuse's untuned defaults
-- (csrc/model/config.c, mm_model_defaults), judged on VALIDATION splits only.
--
--   lua5.4 tools/sweep_defaults.lua [--splits emoji32-v1,emoji32-v2,mvsa-v1]
--                                   [--configs base,long,...] [--mvsa MANIFEST] [--seed 1 | --seeds 1,2,3,4,5]
--                                   [--fusions joint,commonspace] [--out docs/defaults-sweep.md]
--
-- Every configuration trains the six fusions (text, image, early, late, joint
-- with max pooling, common-space) with exactly the options it names on top of
-- the current defaults (`fusion_model`: options of one fusion only; with --seeds,
-- each cell is the mean over the seeds), and scores each on the validation split with both
-- modalities, and joint / common-space also with the image and with the text
-- removed. Test folds are never loaded into a model or scored:
--   emoji32-v1  data/emoji32, test fold 0 (left out), valid fold 1, train folds 2-9
--   emoji32-v2  data/emoji32, test fold 0 (left out), valid fold 2, train folds 1, 3-9
--   mvsa-v1     an MVSA manifest (--mvsa PATH: guid, text, image, label columns), the fold
--               of a post FNV-1a 32 of its guid mod 10: test fold 0 (left out), valid fold
--               1, train folds 2-9; the encoders mmfuse learns (pictures read at 32 px)
--   mvsa-pre-v1 the same split with the paper's encoders: GloVe 6B 100d text embeddings
--               (dim 100) and frozen Inception-v3 pooled features (make pretrained; cached
--               in ~/.cache/mmfuse/mvsa)
--   mvsa-pre-v2, mvsa-pre-v3  the same with fold 2 / fold 3 as the validation fold (train:
--               the folds 1-9 left)
--   emoji32-mob-v1, emoji32-mob-v2  emoji32's folds with frozen pretrained image features:
--               nsfwjs's MobileNetV2 (make pretrained; 1280-d, cached in ~/.cache/mmfuse/emoji32)
-- Cells are validation accuracy / macro-F1. Per split the table says whether the
-- untuned-defaults conditions hold:
--   U  every fusion >= the best single modality (validation accuracy; and macro-F1)
--   C3 common-space >= joint-max with the image removed and with the text removed
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("MMFUSE_CPATH") or "./build/?.so") .. ";" .. package.cpath
local mm = require "mmfuse"

local CONFIGS = {
  { name = "base", note = "the defaults as they are" },
  { name = "e30p5", fit = { epochs = 30, patience = 5 }, note = "30 epochs, stop after 5 without a better valid macro-F1" },
  { name = "e30p5-lr3", fit = { epochs = 30, patience = 5, lr = 3e-3 } },
  { name = "e30p5-drop", fit = { epochs = 30, patience = 5 }, model = { dropout = { text = 0.25, image = 0.25 } } },
  { name = "e30p5-lr3-drop", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.25, image = 0.25 } } },
  { name = "e30p5-lr3-l2", fit = { epochs = 30, patience = 5, lr = 3e-3 }, model = { lambda = 2 } },
  { name = "e30p5-lr3-l05", fit = { epochs = 30, patience = 5, lr = 3e-3 }, model = { lambda = 0.5 } },
  { name = "e30p5-lr3-m05", fit = { epochs = 30, patience = 5, lr = 3e-3 }, model = { margin = 0.5 } },
  { name = "e30p5-lr3-hard", fit = { epochs = 30, patience = 5, lr = 3e-3 }, model = { hardest = true } },
  { name = "e30p5-lr3-bal", fit = { epochs = 30, patience = 5, lr = 3e-3, class_weights = "balanced" } },
  { name = "e30p5-lr3-drop-bal", fit = { epochs = 30, patience = 5, lr = 3e-3, class_weights = "balanced" },
    model = { dropout = { text = 0.25, image = 0.25 } } },
  { name = "e30p5-lr3-drop-l05", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.25, image = 0.25 }, lambda = 0.5 } },
  { name = "e30p5-lr3-drop-d128", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.25, image = 0.25 }, dim = 128 } },
  { name = "e30p5-lr3-drop10", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.1, image = 0.1 } } },
  { name = "e30p5-lr3-drop-l2", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.25, image = 0.25 }, lambda = 2 } },
  -- modality dropout for common-space fusion alone (the other fusions as they are): none (the
  -- defaults before common-space got its own), on every modality, or on the picture only (the
  -- modality a post lacks most often; the default is 0.1 on the picture)
  { name = "cs-d10", fusion_model = { commonspace = { dropout = { text = 0.1, image = 0.1 } } } },
  { name = "cs-d15", fusion_model = { commonspace = { dropout = { text = 0.15, image = 0.15 } } } },
  { name = "cs-i20", fusion_model = { commonspace = { dropout = { text = 0, image = 0.2 } } } },
  { name = "cs-none", fusion_model = { commonspace = { dropout = { text = 0, image = 0 } } } },
  -- the learning rate of the projection of frozen image features (joint / common space):
  -- the full rate (the behaviour before project_lr), or a fixed 0.03 (the default is
  -- 1 / the mean norm of the training rows)
  { name = "plr1", model = { project_lr = { image = 1 } } },
  { name = "plr03", model = { project_lr = { image = 0.03 } } },
  { name = "e30p5-lr3-drop-hist", fit = { epochs = 30, patience = 5, lr = 3e-3 },
    model = { dropout = { text = 0.25, image = 0.25 }, image = { encoder = "histogram" } } },
}

local FUSIONS = { "text", "image", "early", "late", "joint", "commonspace" }

local function parse_args(argv)
  local o = { splits = "emoji32-v1,emoji32-v2", seed = 1 }
  local i = 1
  while i <= #argv do
    local k, v = argv[i]:match("^%-%-([%w-]+)$"), argv[i + 1]
    if not k or v == nil then
      error("usage: sweep_defaults.lua [--splits a,b] [--configs a,b] [--mvsa PATH] [--seed N | --seeds 1,2,3] [--fusions a,b] [--out FILE]")
    end
    o[k == "seeds" and "seeds_list" or k] = v
    i = i + 2
  end
  o.seeds = {}
  for x in tostring(o.seeds_list or o.seed):gmatch("[^,]+") do o.seeds[#o.seeds + 1] = math.tointeger(tonumber(x)) end
  return o
end

local function list(s)
  local t = {}
  for x in s:gmatch("[^,]+") do t[#t + 1] = x end
  return t
end

local INCEPTION, GLOVE = "data/pretrained/inception_v3/model.json", "data/pretrained/glove-6B-100d.bin"
local MOBILENET = "data/pretrained/mobilenet_v2/model.json"

local function cache_of(what)
  local dir = (os.getenv("XDG_CACHE_HOME") or (os.getenv("HOME") .. "/.cache")) .. "/mmfuse/" .. what
  os.execute("mkdir -p '" .. dir .. "'")
  return dir
end

local function split_of(name, o)
  if name == "emoji32-v1" or name == "emoji32-v2" then
    local ds = mm.data.load("data/emoji32/manifest.tsv", { text = "caption", image = "image", label = "group" })
    local train, valid = ds:split{ by = "fold", test = { 0 }, valid = { name == "emoji32-v1" and 1 or 2 } }
    return ds.classes, train, valid
  elseif name == "mvsa-v1" then
    if not o.mvsa then error("mvsa-v1 needs --mvsa MANIFEST (guid, text, image, label, fold columns)") end
    local ds = mm.data.load(o.mvsa, { text = "text", image = "image", label = "label", image_size = 32 })
    local train, valid = ds:split{ by = "guid", hash = 10, test = { 0 }, valid = { 1 } }
    return ds.classes, train, valid
  elseif name:match("^emoji32%-mob%-v[12]$") then
    local man = "data/emoji32/manifest.tsv"
    local _, info = mm.features.extract(man, { encoder = MOBILENET, image = "image", cache = cache_of("emoji32") })
    local ds = mm.data.load(man, { text = "caption", label = "group", image_features = info.path })
    local train, valid = ds:split{ by = "fold", test = { 0 }, valid = { tonumber(name:sub(-1)) } }
    return ds.classes, train, valid
  elseif name:match("^mvsa%-pre%-v[123]$") then
    if not o.mvsa then error(name .. " needs --mvsa MANIFEST (guid, text, image, label columns)") end
    local _, info = mm.features.extract(o.mvsa, { encoder = INCEPTION, image = "image", cache = cache_of("mvsa") })
    local ds = mm.data.load(o.mvsa, { text = "text", label = "label", image_features = info.path })
    local train, valid = ds:split{ by = "guid", hash = 10, test = { 0 }, valid = { tonumber(name:sub(-1)) } }
    return ds.classes, train, valid, { dim = 100, text = { vectors = GLOVE } }
  end
  error("unknown split " .. name)
end

local function merged(a, b)
  local t = {}
  for k, v in pairs(a or {}) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

-- one configuration on one split: scores[fusion] = {acc, f1, text = acc, image = acc}
-- with several seeds, every cell is the mean over the seeds
local same_as_defaults = {} -- [split .. fusion]: scores of a fusion no configuration of the run changes
local function run(cfg, classes, train, valid, seeds, base, fusions, split)
  local scores = {}
  for _, f in ipairs(fusions) do
    local plain = not cfg.model and not cfg.fit and not (cfg.fusion_model and cfg.fusion_model[f])
    local s = plain and same_as_defaults[split .. f]
    if not s then
      s = { acc = 0, f1 = 0, text = 0, image = 0 }
      for _, seed in ipairs(seeds) do
        local fm = cfg.fusion_model and cfg.fusion_model[f]
        local mo = merged(merged(merged(base, cfg.model), fm), { fusion = f, classes = classes })
        local m = mm.model(mo)
        m:fit(train, merged(cfg.fit, { valid = valid, seed = seed }))
        local r = m:evaluate(valid)
        s.acc, s.f1 = s.acc + r.accuracy / #seeds, s.f1 + r.macro_f1 / #seeds
        if f == "joint" or f == "commonspace" then
          s.text = s.text + m:evaluate(valid, { drop = "image" }).accuracy / #seeds
          s.image = s.image + m:evaluate(valid, { drop = "text" }).accuracy / #seeds
        end
      end
      if plain then same_as_defaults[split .. f] = s end
    end
    scores[f] = s
  end
  local u, uf, c3 -- nil: not every fusion the condition needs was trained
  if scores.text and scores.image then
    local uni = math.max(scores.text.acc, scores.image.acc)
    local unif = math.max(scores.text.f1, scores.image.f1)
    for _, f in ipairs { "early", "late", "joint", "commonspace" } do
      if scores[f] then
        u = (u == nil or u) and scores[f].acc >= uni
        uf = (uf == nil or uf) and scores[f].f1 >= unif
      end
    end
  end
  if scores.joint and scores.commonspace then
    c3 = scores.commonspace.text >= scores.joint.text and scores.commonspace.image >= scores.joint.image
  end
  return scores, u, c3, uf
end

local function row(cfg, split, sc, u, c3, uf, secs)
  local cells = { cfg.name, split }
  local function yn(x) return x == nil and "-" or x and "yes" or "no" end
  for _, f in ipairs(FUSIONS) do cells[#cells + 1] = sc[f] and ("%.3f / %.3f"):format(sc[f].acc, sc[f].f1) or "-" end
  for _, f in ipairs { "joint", "commonspace" } do
    cells[#cells + 1] = sc[f] and ("%.3f / %.3f"):format(sc[f].text, sc[f].image) or "-"
  end
  cells[#cells + 1] = yn(u)
  cells[#cells + 1] = yn(uf)
  cells[#cells + 1] = yn(c3)
  cells[#cells + 1] = ("%.0f"):format(secs)
  return "| " .. table.concat(cells, " | ") .. " |"
end

local o = parse_args(arg)
local want = o.configs and list(o.configs)
local fusions = o.fusions and list(o.fusions) or FUSIONS
local lines = {
  "| config | split | text | image | early | late | joint | common-space | joint text/image only | "
    .. "common-space text/image only | U acc | U F1 | C3 | CPU s |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
}
print(lines[1])
print(lines[2])
local out = o.out and assert(io.open(o.out, "a"))
for _, sname in ipairs(list(o.splits)) do
  local classes, train, valid, base = split_of(sname, o)
  for _, cfg in ipairs(CONFIGS) do
    local chosen = not want
    for _, w in ipairs(want or {}) do chosen = chosen or w == cfg.name end
    if chosen then
      local t0 = os.clock()
      local sc, u, c3, uf = run(cfg, classes, train, valid, o.seeds, base, fusions, sname)
      local line = row(cfg, sname, sc, u, c3, uf, os.clock() - t0)
      print(line)
      io.stdout:flush()
      if out then out:write(line, "\n"); out:flush() end
    end
  end
end
if out then out:close() end
