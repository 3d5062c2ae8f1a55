--- The mmfuse side of bench/ (see bench/README.md): the same models and data as
-- bench/peers/torch_bench.py, one thread unless --threads says otherwise.
--
--   lua5.4 bench/mm_bench.lua WORK p1 --fusion joint|commonspace [--epochs 3]
--   lua5.4 bench/mm_bench.lua WORK p2 [--epochs 5]
--   lua5.4 bench/mm_bench.lua WORK p3 [--epochs 2]
--   lua5.4 bench/mm_bench.lua WORK p4 [--reps 3]
--   lua5.4 bench/mm_bench.lua WORK conv
--   lua5.4 bench/mm_bench.lua WORK p6 --model inception_v3|resnet18|mobilenet_v2|mobilenet_v2_tfjs
--                                   [--batch 16] [--threads 1] [--seconds 4]
--   lua5.4 bench/mm_bench.lua WORK p6layers --model inception_v3|mobilenet_v2_tfjs [--batch 16]
--   lua5.4 bench/mm_bench.lua WORK p6folder [--model inception_v3] [--folder DIR] [--n 256] [--batch 16]
--
-- Prints one JSON line (seconds, kB). Module search: MMFUSE_CPATH (default
-- ./build-bench/?.so) and ./lua/.
local common = dofile("bench/common.lua")
local mm = require "mmfuse"
local core = require "mmfuse.core"
local cjson = require "cjson"
-- the model constructor (mm.model; taken from mmfuse.model if a core field of that name shadows it)
local new_model = type(mm.model) == "function" and mm.model or require("mmfuse.model").model

local die = common.die_with("mm_bench")

-- arguments
local WORK, WHAT = arg[1], arg[2]
if not WORK or not WHAT then die("usage: mm_bench.lua WORK p1|p2|p3|p4|conv|p6|p6layers|p6folder [--opt value]...") end
local opt = { fusion = "joint", epochs = nil, batch = nil, dim = 128, reps = 3, seed = 1, threads = 1,
              optimizer = nil, lr = nil, model = "inception_v3", seconds = 4, folder = nil, n = 256 }
do
  local i = 3
  while i <= #arg do
    local k = arg[i]:match("^%-%-(.+)$")
    if not k or opt[k] == nil and k ~= "epochs" and k ~= "batch" and k ~= "optimizer" and k ~= "lr" then
      die("unknown option " .. arg[i])
    end
    local v = arg[i + 1]
    opt[k] = tonumber(v) or v
    i = i + 2
  end
end
mm.threads(opt.threads)

-- wall clock: the core's if it has one, else date(1) (called a few times per run)
local clock = core.clock or function()
  local p = io.popen("date +%s.%N")
  local s = p:read("l")
  p:close()
  return tonumber(s)
end

local function emit(t)
  t.side = "mmfuse"
  t.rss_kb = common.status_kb("VmHWM")
  t.threads = opt.threads
  io.write(cjson.encode(t), "\n")
  io.stdout:flush()
end

local function read_tsv(path)
  local f = assert(io.open(path))
  local head = {}
  for h in f:read("l"):gmatch("[^\t]+") do head[#head + 1] = h end
  local cols = {}
  for _, h in ipairs(head) do cols[h] = {} end
  local n = 0
  for line in f:lines() do
    n = n + 1
    local j = 1
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      if head[j] then cols[head[j]][n] = field end
      j = j + 1
    end
  end
  f:close()
  return cols, n
end

local function classes()
  local list, index = {}, {}
  for l in io.lines(WORK .. "/classes.txt") do
    if l ~= "" then
      list[#list + 1] = l
      index[l] = #list
    end
  end
  return list, index
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end


local function class_list() return (classes()) end

-- model:fit with one fit call (fit re-seeds the optimiser); epoch seconds from on_epoch
-- (and process CPU seconds per epoch from os.clock: robust on a busy machine, one thread only;
-- the first epoch's CPU time includes fit's build of the model)
local function fit_timed(model, ds, o)
  local times, losses, acc, cpu = {}, {}, 0, {}
  local c0 = os.clock()
  o.on_epoch = function(st)
    times[#times + 1], losses[#losses + 1], acc = st.seconds, st.loss, st.train_accuracy
    local c = os.clock()
    cpu[#cpu + 1] = c - c0
    c0 = c
  end
  model:fit(ds, o)
  return times, losses, acc, cpu
end

-- P1: joint / commonspace head on fixed 512-d features + a text bag
local function p1()
  local cls = class_list()
  local ds = mm.data.load(WORK .. "/p1.tsv", { label = "group", text = "caption",
                                               image_features = "p1_feat.npy", classes = cls })
  collectgarbage()
  local model = new_model { fusion = opt.fusion, dim = opt.dim, classes = ds.classes,
                           text = { ngrams = 2, buckets = 100000 }, image = { encoder = "features" } }
  local times, losses, acc, cpu = fit_timed(model, ds, { epochs = opt.epochs or 3, batch = opt.batch or 32,
                                                         lr = opt.lr or 1e-3, optimizer = opt.optimizer or "adam",
                                                         seed = opt.seed })
  emit { bench = "p1", fusion = opt.fusion, epoch_s = times, epoch_cpu_s = cpu, loss = losses, train_acc = acc,
         n = #ds }
end

-- P2: fastText-style text classifier on the multilingual captions, from the same
-- fastText-format files fasttext reads; the model file is written as fasttext does.
local function p2()
  local t0 = clock()
  local train = mm.data.load(WORK .. "/p2_train.txt")
  local model = new_model { fusion = "text", dim = 100, classes = train.classes,
                           text = { ngrams = 2, buckets = opt.buckets or 100000 } }
  -- fastText's own settings: plain SGD, lr 0.1, one post per update (fastText
  -- also decays lr linearly; mmfuse keeps it constant)
  local lr, batch, optim = opt.lr or 0.1, opt.batch or 1, opt.optimizer or "sgd"
  local t1 = clock()
  local times = fit_timed(model, train, { epochs = opt.epochs or 5, batch = batch, lr = lr, optimizer = optim,
                                          seed = opt.seed })
  local t2 = clock()
  local path = os.tmpname()
  model:save(path)
  local t3 = clock()
  local size = 0
  local f = io.open(path, "rb")
  if f then
    size = f:seek("end")
    f:close()
  end
  os.remove(path)
  local test = mm.data.load(WORK .. "/p2_test.txt", { classes = train.classes })
  local r = model:evaluate(test)
  emit { bench = "p2", load_s = t1 - t0, train_s = t2 - t1, save_s = t3 - t2, total_s = t3 - t0, epoch_s = times,
         accuracy = r.accuracy, n_train = #train, n_test = #test, model_bytes = size,
         config = string.format("%s batch %d lr %g", optim, batch, lr) }
end

-- P3: CNN image encoder (3 x conv3x3/ReLU/maxpool2, 16/32/64) + linear, on 32 px images
local function p3()
  local cls = class_list()
  local ds = mm.data.load(WORK .. "/p3.tsv", { label = "group", image = "image", image_size = 32, classes = cls })
  local model = new_model { fusion = "image", classes = ds.classes,
                           image = { encoder = "cnn", channels = { 16, 32, 64 } } }
  local times, _, _, cpu = fit_timed(model, ds, { epochs = opt.epochs or 2, batch = opt.batch or 32, lr = 1e-3,
                                                  seed = opt.seed })
  local sps, spc = {}, {}
  for i, t in ipairs(times) do sps[i], spc[i] = #ds / t, #ds / cpu[i] end
  emit { bench = "p3", epoch_s = times, samples_per_s = sps, samples_per_cpu_s = spc, n = #ds }
end

-- conv2d forward GFLOP/s of the three CNN layers at batch 32, and sgemm GFLOP/s
local function conv()
  mm.seed(opt.seed)
  local shapes = { { 3, 16, 32 }, { 16, 32, 16 }, { 32, 64, 8 } }
  local res = {}
  local function rate(flops, fn)
    fn()
    local best = {}
    for r = 1, 5 do
      local k, t0 = 0, clock()
      local t
      repeat
        for _ = 1, 10 do fn() end
        k = k + 10
        t = clock() - t0
      until t > 0.2
      best[r] = flops * k / t / 1e9
    end
    return median(best)
  end
  for i, s in ipairs(shapes) do
    local cin, cout, hw = s[1], s[2], s[3]
    local x = mm.randn(32, cin, hw, hw)
    local w = mm.randn(cout, cin, 3, 3)
    local b = mm.randn(cout)
    local flops = 2.0 * 32 * cout * hw * hw * cin * 9
    res[i] = rate(flops, function() return mm.nn.conv2d(x, w, b, { padding = 1 }) end)
  end
  local N = 512
  local A, B, C = mm.randn(N, N), mm.randn(N, N), mm.zeros(N, N)
  local into = { beta = 0 } -- C = A.B into a preallocated C: the kernel's rate, no allocation
  local gemm = rate(2.0 * N * N * N, function() return C:addmm(A, B, into) end)
  -- the same product through OpenBLAS (cblas_sgemm), for reference
  local kernel = mm.gemm_kernel()
  mm.gemm_kernel("generic")
  local blas = rate(2.0 * N * N * N, function() return C:addmm(A, B, into) end)
  mm.gemm_kernel(kernel)
  emit { bench = "conv", conv_gflops = res, sgemm_gflops = gemm, blas_gflops = blas, gemm_kernel = kernel }
end

-- P4: end-to-end inference: PNG decode + tokenize + encode + fuse, posts/s.
-- Batches of 64 posts through mm.data.new + model:predict(ds); also the
-- one-post-at-a-time API model:predict{text=, image=} on the first 256 posts.
local function p4()
  local cls = class_list()
  local cols, n = read_tsv(WORK .. "/p3.tsv")
  local ds = mm.data.load(WORK .. "/p3.tsv", { label = "group", text = "caption", image = "image",
                                               image_size = 32, classes = cls })
  local model = new_model { fusion = "joint", dim = opt.dim, classes = ds.classes,
                           text = { ngrams = 2, buckets = 100000 }, image = { encoder = "cnn", channels = { 16, 32, 64 } } }
  model:fit(ds, { epochs = 1, seed = opt.seed }) -- builds it (weights do not change the cost)
  ds = nil
  collectgarbage()
  local times, pps, ppc = {}, {}, {}
  local B = opt.batch or 64
  for r = 1, opt.reps do
    local t0, c0 = clock(), os.clock()
    for s = 1, n, B do
      local e = math.min(n, s + B - 1)
      local txt, img = {}, {}
      for i = s, e do
        txt[#txt + 1] = cols.caption[i]
        img[#img + 1] = cols.image[i]
      end
      local batch = mm.data.new { n = #txt, classes = cls, text = txt, image = img, image_size = 32 }
      model:predict(batch)
    end
    times[r] = clock() - t0
    pps[r], ppc[r] = n / times[r], n / (os.clock() - c0)
  end
  local m1 = math.min(n, 256)
  local t0 = clock()
  for i = 1, m1 do model:predict { text = cols.caption[i], image = cols.image[i] } end
  local single = m1 / (clock() - t0)
  emit { bench = "p4", run_s = times, posts_per_s = pps, posts_per_cpu_s = ppc, single_posts_per_s = single, n = n }
end

-- P6: image backbones at inference. inception_v3: the nsfwjs Keras Inception-v3 of
-- data/pretrained (TF.js layers model, up to its 5-class head; `make pretrained`); resnet18,
-- mobilenet_v2: torchvision's architectures (mm.image.backbone, random weights: the time does not
-- depend on them) up to the pooled features; mobilenet_v2_tfjs: the nsfwjs MobileNetV2 up to its
-- head. The peers run torchvision's models with their 1000-class heads (a fully connected layer:
-- 0.5-2 M multiply-adds of 1.8-5.7 G).
local P6 = { inception_v3 = { 299, "data/pretrained/inception_v3/model.json" }, resnet18 = { 224 },
             mobilenet_v2 = { 224 }, mobilenet_v2_tfjs = { 224, "data/pretrained/mobilenet_v2/model.json" } }

local function p6_net(name)
  local m = P6[name]
  if not m then die("unknown model " .. tostring(name)) end
  if m[2] then
    local net = mm.image.backbone(m[2])
    return m[1], function(x) return net:head(x) end, net
  end
  local b = mm.image.backbone(name)
  mm.seed(1)
  for _, p in ipairs(b:params()) do
    if #p.shape == 4 then b:set(p.name, mm.randn(p.shape) * math.sqrt(2 / (p.shape[2] * p.shape[3] * p.shape[4]))) end
  end
  return m[1], function(x) return b:forward(x) end, b
end

-- a fixed pseudo-random batch in [0, 1)
local function p6_input(B, S)
  mm.seed(12345)
  return (mm.randn(B, 3, S, S) * 0.25 + 0.5):relu()
end

local function p6()
  local B = opt.batch or 16
  local S, run = p6_net(opt.model)
  local x = p6_input(B, S)
  run(x) -- warm-up: plans and allocates
  local rates, cpu, calls, t_all = {}, {}, 0, clock()
  while calls < 3 or clock() - t_all < opt.seconds do
    local t0, c0 = clock(), os.clock()
    run(x)
    rates[#rates + 1], cpu[#cpu + 1] = B / (clock() - t0), B / (os.clock() - c0)
    calls = calls + 1
  end
  emit { bench = "p6", model = opt.model, size = S, batch = B, images_per_s = rates, images_per_cpu_s = cpu }
end

-- per-layer classes of a TF.js model (one thread): seconds and GFLOP/s of its steps by op and
-- window (CPU time of the steps)
local function p6layers()
  local B = opt.batch or 16
  local S, run, net = p6_net(opt.model)
  if not net._c then die("p6layers: a TF.js model (inception_v3, mobilenet_v2_tfjs)") end
  local x = p6_input(B, S)
  run(x)
  net._c:profile(true)
  for _ = 1, opt.reps do run(x) end
  local by, total = {}, 0
  for _, r in ipairs(net._c:profile_report()) do
    local key = r.op
    if r.op == "conv" then key = (r.kh == 1 and r.kw == 1) and "conv 1x1" or "conv kxk" end
    if r.op == "dwconv" then key = "depthwise " .. r.kh .. "x" .. r.kw end
    local e = by[key] or { seconds = 0, macs = 0, steps = 0 }
    e.seconds, e.macs, e.steps = e.seconds + r.seconds, e.macs + r.macs, e.steps + 1
    by[key] = e
    total = total + r.seconds
  end
  local classes = {}
  for k, e in pairs(by) do
    classes[#classes + 1] = { op = k, steps = e.steps / 1, seconds_per_image = e.seconds / (opt.reps * B),
      share = e.seconds / total, gflops = e.macs > 0 and 2 * e.macs / e.seconds / 1e9 or nil }
  end
  table.sort(classes, function(a, b) return a.seconds_per_image > b.seconds_per_image end)
  -- the reference: mm_sgemm (through t:matmul) on square 1024 matrices and on the shape of a
  -- 3x3 convolution of 64 channels over 56x56 pixels as one GEMM (3136 x 576 . 576 x 64),
  -- best of 5, CPU time
  local function sgemm(m, k, n)
    local a, w = mm.randn(m, k), mm.randn(k, n)
    a:matmul(w)
    local best = math.huge
    for _ = 1, 5 do
      local c0 = os.clock()
      a:matmul(w)
      best = math.min(best, os.clock() - c0)
    end
    return 2 * m * k * n / best / 1e9
  end
  emit { bench = "p6layers", model = opt.model, size = S, batch = B, classes = classes,
         images_per_cpu_s = opt.reps * B / total, sgemm_gflops_1024 = sgemm(1024, 1024, 1024),
         sgemm_gflops_conv_shape = sgemm(3136, 576, 64) }
end

-- feature extraction of a folder of JPEG photos: decode + resize + the network's features, in
-- batches (mm.features' encoder, as features.extract runs it)
local function p6folder()
  local dir = opt.folder or os.getenv("MMFUSE_JPEG_DIR") or "../shared/data/mvsa/data"
  local list = {}
  local ls = io.popen("ls " .. dir .. " 2>/dev/null")
  for f in ls:lines() do
    if f:match("%.jpe?g$") then list[#list + 1] = dir .. "/" .. f end
  end
  ls:close()
  table.sort(list)
  if #list == 0 then die("p6folder: no JPEG files in " .. dir .. " (--folder DIR)") end
  while #list > opt.n do list[#list] = nil end
  local m = P6[opt.model]
  if not m or not m[2] then die("p6folder: a TF.js model (inception_v3, mobilenet_v2_tfjs)") end
  local enc = mm.features.encoder(m[2])
  enc:encode({ list[1] }) -- warm-up
  local t0, c0 = clock(), os.clock()
  local y = enc:encode(list, nil, { batch = opt.batch or 16 })
  local secs, cpu = clock() - t0, os.clock() - c0
  emit { bench = "p6folder", model = opt.model, posts = #list, dim = y:shape()[2], seconds = secs,
         posts_per_s = #list / secs, posts_per_cpu_s = #list / cpu, folder = dir }
end

local fns = { p1 = p1, p2 = p2, p3 = p3, p4 = p4, conv = conv, p6 = p6, p6layers = p6layers, p6folder = p6folder }
if not fns[WHAT] then die("unknown benchmark " .. WHAT) end
fns[WHAT]()
