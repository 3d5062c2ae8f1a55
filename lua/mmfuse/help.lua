--- Help in the REPL: `mm.help()` lists the topics, `mm.help("model")` shows one.
--
--     $ lua5.4 -i -l mm=mmfuse   -- the module as the global `mm`
--     > mm.help()                -- topics
--     > mm.help("fusion")        -- one topic
--     > mm.help(mm.nn.linear)    -- the topic of a function, tensor or model
--     > mm.help("softmax")       -- any other word: the lines that mention it
--
-- `help.text(topic)` returns the text instead of printing it.
-- @module mmfuse.help

local help = {}

-- the names and defaults of the model's settings (csrc/model/config.h)
local SETTINGS = require("mmfuse.core").fusion
local D = SETTINGS.defaults

--- Topic names, in the order `mm.help()` lists them.
-- @table topics
help.topics = { "tensor", "nn", "text", "image", "data", "model", "fusion", "evaluate", "save", "cli" }

local summary = {
  tensor = "float32 n-d tensors: creation, shape, indexing, arithmetic, reductions",
  nn = "functional layers (torch.nn.functional style), forward and backward",
  text = "tokenizer, vocabulary with hashed n-grams, pretrained word vectors",
  image = "decode, resize, normalise, augment, colour histograms",
  data = "datasets from TSV/CSV/JSONL manifests, splits, dropping a modality",
  model = "mm.model{...}, model:fit, model:predict",
  fusion = table.concat(SETTINGS.names, ", ") .. ": what each does",
  evaluate = "model:evaluate, metrics, the missing-modality ablation",
  save = "model:save(path), mm.load(path): the .mmf file",
  cli = "the mmfuse command: train, eval, predict, experiment, info",
}

local text = {}

text.tensor = [[
Tensors (float32, row-major, contiguous). Indices are 1-based.

  t = mm.tensor{ {1, 2}, {3, 4} }      from nested tables
  mm.zeros(2, 3)  mm.ones{2, 3}  mm.full({2, 3}, 7)  mm.arange(5)  mm.arange(1, 2, 0.25)
  mm.seed(1); mm.rand(2, 3); mm.randn(2, 3)       seeded generator
  t:shape() -> {2, 2}   t:size(1)   t:numel()   t:dim()   #t (rows)
  t:get(1, 2)   t:set(1, 2, 9)   t[1] (row copy)   t[{1, 2}]   t:item()
  t:reshape(4, 1)  t:reshape{-1}  t:transpose()  t:rows(1, 2)  t:clone()  t:totable()
  t + u, t - 1, t * u, t / 2, -t     same shape, scalars, or a row vector broadcast
  t:matmul(u)                        matrix product (mm_sgemm: AVX-512/AVX2 kernels)
  t:addmm(a, b, {ta=, tb=, alpha=1, beta=1})   t = beta*t + alpha*op(a).op(b), in place
  t:sum()  t:sum(2)  t:mean(1)  t:max()  t:min()  t:argmax(2)  t:argmin()
  t:exp()  t:log()  t:tanh()  t:relu()  t:sigmoid()  t:abs()  t:sqrt()  t:pow(2)
  mm.allclose(a, b, 1e-5)   mm.is_tensor(x)   print(t) shows values and shape
  mm.threads(n)             threads of the C core and of OpenBLAS, one count for both
                            (default 1, at most 256); the extra threads are kept between
                            calls (they spin ~0.2 ms, then sleep)
  mm.gemm_kernel()          kernel level: "avx512", "avx2" or "generic" (OpenBLAS + C);
                            mm.gemm_kernel("avx2") switches every kernel; MMFUSE_KERNEL=avx2
                            at load makes the process behave as an AVX2-only CPU
  mm.cpu()                  vendor, brand, best level, kernel level, OpenBLAS core, features
]]

text.nn = [[
mm.nn: functional layers, argument conventions of torch.nn.functional,
weights laid out as PyTorch lays them; labels and ids are 1-based.

  mm.nn.linear(x, w, b)                        w [out, in]
  mm.nn.conv2d(x, w, b, {stride=, padding=, groups=})   NCHW, im2col + sgemm
  mm.nn.cnn_forward(x, {{weight=, bias=, pool=}, ...}[, {winograd=}])  CNN inference, global avg
  mm.nn.max_pool2d(x, {kernel=, stride=, padding=})   mm.nn.avg_pool2d(...)
  mm.nn.global_avg_pool(x)                     [N, C, H, W] -> [N, C]
  mm.nn.relu / tanh / sigmoid (x)   mm.nn.dropout(x, p, training)
  mm.nn.softmax(x)  mm.nn.log_softmax(x)       last dim, numerically stable
  mm.nn.nll_loss(logp, labels)  mm.nn.cross_entropy(logits, labels)   mean over batch
  mm.nn.embedding_bag(weight, ids, offsets)    mean of rows, CSR offsets
  mm.nn.modality_pool(vectors, mask, "max"|"mean"|"sum")   K modalities per sample
  mm.nn.cosine_similarity(a, b)   mm.nn.ranking_loss(...)  (common-space hinge)
Every op f has f_backward(<same inputs>, grad_out) returning the input
gradients in order, e.g. gx, gw, gb = mm.nn.linear_backward(x, w, b, gy).
Bad shapes raise an error naming the op, the argument and the shapes.
Option tables are checked too: a misspelt key is an error that lists the
options the op knows, e.g. conv2d: unknown option 'paddding' (known: ...).
]]

text.text = [[
mm.text: the text pipeline (UTF-8 aware, in C).

  mm.text.tokenize("Cat face! 🐱")  -> {"cat", "face", "🐱"}
      lowercases; splits on whitespace and punctuation; emoji and non-Latin
      scripts are tokens; invalid UTF-8 bytes are replaced, never over-read.
  mm.text.tokenize(s, {tokenizer = "posts"})   for social-media posts:
      urls=true        URLs (also cut short with "…") -> "<url>"
      mentions="user"  @name -> "<user>" ("keep": "@name"; "off": "name")
      rt=true          a standalone "RT" -> "<rt>"
      hashtags=true    #legday -> "legday" and "#legday"
      emoticons=true   :) :-( :D <3 ;) :P xD ^_^ ... as tokens (":-)" -> ":)")
      tones=true       skin tones folded: every 👍🏽 is 👍
      elongation=true  "soooo" -> "soo" (runs of 3+ letters keep 2)
      default tokenizer = "plain": all of them off (each can be set alone);
      the same keys in mm.text.vocab and in mm.model{ text = {...} }, whose
      file records them: a loaded model tokenizes as it was trained.
  v = mm.text.vocab(texts, {min_count=1, max_size=0, ngrams=2, buckets=2000000})
      v:size()  v:id("cat")  v:word(1)  v:words()  v:tokenize(s)
      ids, offsets, missing = v:encode(texts)      -- for mm.nn.embedding_bag
  emb, cov = mm.text.load_vectors("glove.txt", v)  -- GloVe, word2vec (text/bin),
      fastText .vec; streamed; cov.coverage = share of the vocabulary found
A model's text encoder is a mean bag of word + hashed n-gram embeddings
(fastText style); an empty text means the text modality is absent.
]]

text.image = [[
mm.image: pictures as 3xHxW float tensors in [0, 1] (stb_image: PNG, JPEG,
BMP, GIF, TGA; grey/RGBA -> RGB; sides > 8192 or more than mm.image.max_pixels
(32 Mi) pixels refused from the header, before decoding).

  img = mm.image.load("data/emoji32/images/1F431.png", {size = 32})
      a file above max_bytes (default mm.image.max_bytes, 32 MiB) is refused unread
  img = mm.image.decode(bytes, {size = 32})          from a Lua string
  w, h, c = mm.image.info(path)                      header only
  mm.image.normalize(img, "imagenet")                or (img, mean, std)
  mm.image.augment(img, {crop=, pad=, flip=, seed=}) seeded crop + flip
  mm.image.histogram(img, {bins = {8, 4, 4}})        HSV colour histogram
  mm.image.batch{img1, img2}                         -> N x 3 x H x W
  b = mm.image.backbone("resnet18", {weights = "r18.safetensors"})
      b:forward(batch) -> N x 512 features (also "mobilenet_v2")
  net = mm.image.backbone("data/pretrained/inception_v3/model.json", {layer =})
      a TF.js / Keras layers model (`make pretrained`): net:forward(batch) -> N x 2048
      (pictures as mm.image.load gives them: RGB / 255), net:predict(path) -> its own
      5 classes, net:head(batch), net:describe(), net:layers()
  mm.io.load_npy(path) / mm.io.save_npy(path, t)     precomputed features
  F, info = mm.features.extract(ds, {encoder = "mobilenet_v2", cache = "cache/"})
      a frozen encoder run once over a dataset, stored as .npy and reused
Image encoders of a model: image = {encoder = "cnn"} (trained here),
"histogram" (no training), "resnet18" / "mobilenet_v2" (frozen backbones,
weights = "x.safetensors"), a model.json path (a frozen TF.js layers model,
layer = to pick its feature layer), "features" (a .npy row per sample given to
mm.data.load as image_features = "x.npy").
]]

text.data = [[
Datasets: one C object per manifest (labels, modality masks, token ids,
pixels or feature rows), read from TSV, CSV or JSONL (by extension).

  ds = mm.data.load("data/emoji32/manifest.tsv",
                    { text = "caption", image = "image", label = "group" })
      more options: image_size = 32, image_features = "x.npy",
      features = { name = "x.npy" or {"col1", "col2"} }, classes = {...}
  print(ds)          rows, classes, modality coverage
  #ds  ds.classes  ds:modalities()  ds:labels()  ds:mask("image")
  train, valid, test = ds:split{ by = "fold", test = {0}, valid = {1} }
  train, valid, test = ds:split{ ratios = {0.8, 0.1, 0.1}, seed = 1 }  (stratified)
  ds:drop("image")   the same rows without their images (ablation)
  ds:subset{1, 2, 3}  mm.data.load_fasttext("x.txt")  mm.data.new{...}
  ds, report = mm.data.import_posts(dir, { labels = "labels.csv" })
      a folder of posts: ID.txt + ID.jpg|jpeg|png + a CSV/TSV label file
      (id_column, label_column, encodings = {"utf-8", "gb18030", "latin-1"},
      max_image_bytes, max_text_bytes, classes, image_size); ds.columns.id;
      report: encodings, text_/image_missing|undecodable|refused, no_post,
      no_label, unknown_label, duplicate, unlabelled (lua/mmfuse/posts.lua)
  mm.text.decode(bytes) -> UTF-8 text, encoding (utf-8, gb18030, latin-1)
Image paths are relative to the manifest. An empty text or image cell means
that modality is missing for the row; every model copes with that.
Junk paths: every file mmfuse reads (manifests, images, vectors, .npy, model
files) must be a regular file; a FIFO, a device such as /dev/zero or a folder
is refused without being read, and an image file larger than max_image_bytes
(default mm.image.max_bytes, 32 MiB) too. mm.io.stat(path) says what a path
is; mm.io.read_file(path, {max_bytes=}) reads one the same way.
]]

text.model = [[
Models: mm.model{...} builds one; model:fit trains it (the loop is in C).

  model = mm.model{ fusion = "commonspace", pool = "max", dim = 32,
                    classes = train.classes,
                    text = { ngrams = 2, buckets = 20000 },
                    image = { encoder = "cnn" } }       -- or "histogram"
  history = model:fit(train, { valid = valid, epochs = 20, batch = 32,
                               lr = 1e-3, seed = 1 })
  print(model)       architecture with parameter counts; model:nparams()
  name, probs = model:predict{ text = "cat face", image = "cat.png" }
      either modality may be left out; probs[class] = probability
  names, P = model:predict(ds)          a class per row, P is N x classes
fit options: epochs, batch, lr, seed, valid (keeps the epoch with the best
validation macro-F1), patience, shuffle = false (the rows in the data's
order), optimizer = "adam" | "sgd", momentum,
weight_decay, clip, lr_decay, class_weights = "balanced" | "none", on_epoch(stats).
Model options: missing = "learned" | "zeros", lambda, margin, hardest,
dropout = { text = p, image = p } (modality dropout while training; a model
with two or more modalities gives each the default unless told; common-space
fusion gives every modality but the text its own default),
project_lr = { image = s } (joint / common space: the projection of the
modality learns at lr * s; default 1 / the mean L2 norm of the training rows
for feature rows with a mean norm above 1, else 1).
One seed and one thread give bit-identical results.
]] .. ([[
Defaults (mm.settings.defaults, from the C core; chosen by tools/sweep_defaults.lua
on validation folds, docs/defaults.md): fusion %s, pool %s, dim %d, missing %s,
lambda %g, margin %g, modality dropout %g (common-space: %g on all but the text);
text ngrams %d, buckets %d, min_count %d; image encoder %s, cnn channels %s,
kernel %d; histogram bins %s;
fit epochs %d, patience %d, batch %d, optimizer %s, lr %g, class weights %s.
]]):format(D.fusion, D.pool, D.dim, D.missing, D.lambda, D.margin, D.modality_dropout, D.commonspace_dropout, D.ngrams, D.buckets,
  D.min_count, D.image_encoder, table.concat(D.cnn.channels, "-"), D.cnn.kernel, table.concat(D.histogram.bins, "x"),
  D.fit.epochs, D.fit.patience, D.fit.batch, D.fit.optimizer, D.fit.lr, D.fit.class_weights)

text.fusion = [[
fusion = ... in mm.model{}:
  "text", "image"  one modality, linear softmax classifier (the baselines)
  "early"          concatenate the modality vectors, classify; a missing
                   modality is a learned "missing" vector
  "late"           one classifier per modality; average their probabilities
                   over the modalities present
  "joint"          project each modality to dim d, pool element-wise over
                   the modalities present (pool = "max" | "mean" | "sum"),
                   classify the pooled vector
  "commonspace"    joint + an auxiliary ranking loss that pulls a post's
                   image and text vectors together (cosine, margin, in-batch
                   negatives of other classes): loss = NLL + lambda * aux;
                   one modality alone then lands where the classifier looks
After Duong, Lebret & Aberer, ECML-PKDD 2017 (arXiv 1708.02099).
]]

text.evaluate = [[
  r = model:evaluate(test)                      both modalities
  r = model:evaluate(test, { drop = "image" })  text only: the ablation
  r = model:evaluate(test, { drop = "text" })   image only
  r.accuracy  r.macro_f1  r.log_loss  r.n
  r.precision[i]  r.recall[i]  r.f1[i]  r.support[i]   in class order
  r.per_class["Animals & Nature"].f1   r.confusion[true][predicted]
  print(r)                                      a small table
Grids of models x seeds x conditions: require "mmfuse.experiment" (or
`mmfuse experiment config.lua`); examples/paper.lua is the paper's config.
]]

text.save = [[
  model:save("emoji.mmf")      one file, safetensors layout: a JSON header
                               (config, class names, vocabulary, tokenizer
                               settings) then float32 weights; written to a
                               temp file, fsync'ed, renamed (atomic)
  model = mm.load("emoji.mmf") checks every size, offset, dtype and shape;
                               never executes anything from the file
Being safetensors, the weights open in any safetensors reader (or a few
lines of Python + numpy). From the shell: `mmfuse info emoji.mmf`.
]]

text.cli = [[
The mmfuse command (the checkout's bin/mmfuse, or installed by the rock):
  mmfuse train MANIFEST --fusion commonspace --split fold:0:1 --out m.mmf
        [--text-col caption --image-col image --label-col group]
        [--epochs N --seed N --dim N --lr X --batch N]
  mmfuse eval m.mmf MANIFEST [--split fold:0] [--drop image] [--json]
  mmfuse predict m.mmf --text "cat face" [--image cat.png]
  mmfuse predict m.mmf < posts.jsonl > predictions.jsonl
  mmfuse experiment grid.lua          models x seeds x missing modalities
  mmfuse info m.mmf                   config, classes, sizes
  mmfuse import DIR --out posts.tsv   a folder of posts as a manifest
  mmfuse COMMAND --help               every option
Exit codes: 0 ok, 1 runtime error, 2 usage error; --debug shows tracebacks.
]]

local function index_text()
  local lines = { "mmfuse: multimodal (text + image) classification of posts.", "",
    "mm.help(topic) with topic one of:" }
  for _, t in ipairs(help.topics) do
    lines[#lines + 1] = ("  %-9s %s"):format(t, summary[t])
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "mm.help(f) also takes a function, tensor, dataset or model; any other"
  lines[#lines + 1] = "word shows the lines of the help that mention it (mm.help(\"softmax\"))."
  return table.concat(lines, "\n") .. "\n"
end

-- Which topic a value belongs to (a function of mm.nn -> "nn", a tensor -> "tensor", ...).
local function topic_of_value(v)
  local mm = package.loaded["mmfuse"]
  if type(mm) ~= "table" then return nil end
  if type(mm.is_tensor) == "function" and mm.is_tensor(v) then return "tensor" end
  local areas = { nn = "nn", text = "text", image = "image", data = "data", io = "image", help = nil }
  for field, topic in pairs(areas) do
    local t = mm[field]
    if t == v then return topic end
    if type(t) == "table" then
      for _, f in pairs(t) do
        if f == v then return topic end
      end
    end
  end
  if v == mm.model or v == mm.load then return v == mm.load and "save" or "model" end
  local tv = type(v)
  if tv == "table" or tv == "userdata" then
    local ok, is_model = pcall(function() return v.fit ~= nil and v.predict ~= nil end)
    if ok and is_model then return "model" end
    local ok2, is_ds = pcall(function() return v.split ~= nil and v.classes ~= nil end)
    if ok2 and is_ds then return "data" end
    local ok3, is_result = pcall(function() return v.accuracy ~= nil and v.macro_f1 ~= nil end)
    if ok3 and is_result then return "evaluate" end
  end
  if tv == "function" then
    local tensor_fns = { tensor = true, zeros = true, ones = true, full = true, arange = true, rand = true,
      randn = true, seed = true, threads = true, allclose = true, is_tensor = true, gemm_kernel = true, cpu = true }
    for k, f in pairs(mm) do
      if f == v and tensor_fns[k] then return "tensor" end
    end
  end
  return nil
end

-- Lines of every topic that mention `word` (case-insensitive, plain match).
local function search(word)
  local w = word:lower()
  local hits = {}
  for _, t in ipairs(help.topics) do
    for line in text[t]:gmatch("[^\n]+") do
      if line:lower():find(w, 1, true) then hits[#hits + 1] = ("[%s] %s"):format(t, line) end
    end
  end
  return hits
end

--- The help text for a topic, a value, or (no argument) the list of topics.
-- @param[opt] topic a topic name, a word to look up, or a function/tensor/model/dataset
-- @treturn string|nil the text, or nil and a message when nothing matches
function help.text(topic)
  if topic == nil then return index_text() end
  if type(topic) ~= "string" then
    local t = topic_of_value(topic)
    if t then return text[t] end
    return nil, ("no help for a %s; topics: %s"):format(type(topic), table.concat(help.topics, ", "))
  end
  local key = topic:lower():gsub("^%s+", ""):gsub("%s+$", "")
  if text[key] then return text[key] end
  if key == "" then return index_text() end
  local hits = search(key)
  if #hits > 0 then return table.concat(hits, "\n") .. "\n" end
  return nil, ("no help on '%s'; topics: %s"):format(topic, table.concat(help.topics, ", "))
end

--- Print help (what `mm.help(...)` does).
-- @param[opt] topic as for `help.text`
function help.show(topic)
  local s, msg = help.text(topic)
  io.write(s or (msg .. "\n"))
end

return setmetatable(help, {
  __call = function(_, topic) return help.show(topic) end,
  __tostring = function() return "mm.help: call mm.help() or mm.help(\"topic\")" end,
})
