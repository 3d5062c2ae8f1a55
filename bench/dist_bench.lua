-- One process of `make bench-dist` (bench/dist_run.sh starts it alone or under mpirun):
--   lua5.4 bench/dist_bench.lua CASE key=value ...
-- CASE
--   head   the fusion head on fixed features: joint fusion (dim 64, 9 classes) of a
--          2048-d and a 128-d feature modality (a ResNet pooled row and a small dense
--          row), rows=20000 synthetic rows with class signal
--   text   fastText-style text model: 200 k buckets x dim 64 (word + bigram rows of a
--          Zipf vocabulary of 50 k words, 12-20 words a post), rows=20000
-- options: batch= (per process), epochs=, threads=, dist=0|1, sparse=auto|rows|table
-- Rank 0 prints one JSON line: samples/s of the last epochs (the first warms up), the
-- steps, and what this process handed to MPI per step (bytes and seconds).
--   lua5.4 bench/dist_bench.lua table FILE   the medians (and ranges) of FILE's rows by label
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local case = arg[1]

if case == "table" then
  local cjson = require "cjson"
  local rows, order = {}, {}
  for line in io.lines(arg[2]) do
    local r = cjson.decode(line)
    if not rows[r.label] then
      rows[r.label] = {}
      order[#order + 1] = r.label
    end
    table.insert(rows[r.label], r)
  end
  local function stat(list, key)
    local v = {}
    for i, r in ipairs(list) do v[i] = r[key] end
    table.sort(v)
    local n = #v
    return (v[(n + 1) // 2] + v[n // 2 + 1]) / 2, v[1], v[n]
  end
  print("| configuration | processes x threads | batch per process | samples/s median (range) | "
    .. "bytes to MPI per step | MPI ms per step median (range) | reps |")
  print("|---|---|---|---|---|---|---|")
  for _, label in ipairs(order) do
    local list = rows[label]
    local r = list[1]
    local s, s0, s1 = stat(list, "samples_per_s")
    local m, m0, m1 = stat(list, "mpi_ms_per_step")
    print(("| %s | %d x %d | %d | %.0f (%.0f-%.0f) | %.0f | %.2f (%.2f-%.2f) | %d |"):format(label, r.np, r.threads,
      r.batch, s, s0, s1, r.bytes_per_step, m, m0, m1, #list))
  end
  return
end

local mm = require "mmfuse"
local o = { batch = 32, epochs = 3, threads = 1, dist = 1, rows = 20000, sparse = "auto" }
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  o[k] = tonumber(v) or v
end
mm.threads(o.threads)
local dist = o.dist == 1 and require "mmfuse.dist" or nil
local N, C = o.rows, 9

local ds, model
local labels = {}
local state = 42
local function rnd(n)
  state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 63)
  return (state >> 20) % n + 1
end
for i = 1, N do labels[i] = rnd(C) end
local names = {}
for c = 1, C do names[c] = "c" .. c end

if case == "head" then
  mm.seed(7)
  local onehot = {}
  for i = 1, N do
    local r = {}
    for c = 1, C do r[c] = c == labels[i] and 1 or 0 end
    onehot[i] = r
  end
  -- class signal: a third of a random class mean added to every feature row
  local big = mm.randn(N, 2048) + mm.tensor(onehot):matmul(mm.randn(C, 2048)) * (1 / 3)
  local small = mm.randn(N, 128)
  ds = mm.data.new { labels = labels, classes = names, features = { img = big, meta = small } }
  model = mm.model { fusion = "joint", dim = 64, classes = names, features = { "img", "meta" } }
elseif case == "text" then
  local V = 50000
  local text = {}
  for i = 1, N do
    local w = {}
    for _ = 1, 12 + rnd(9) - 1 do
      local r = rnd(V) -- Zipf-like: a word's rank is the product of two uniform draws
      local z = ((r * rnd(V)) % V) // (1 + rnd(8))
      w[#w + 1] = (z % 7 == 0 and ("c" .. labels[i] .. "w") or "w") .. z
    end
    text[i] = table.concat(w, " ")
  end
  ds = mm.data.new { labels = labels, classes = names, text = text }
  model = mm.model { fusion = "text", dim = 64, classes = names, text = { buckets = 200000, ngrams = 2 } }
else
  error("bench: case head or text")
end

local times, steps = {}, 0
local fit = { epochs = 1, batch = o.batch, lr = 1e-3, seed = 1, dist = dist ~= nil, dist_sparse = o.sparse }
local reset = dist and dist.reset_stats or function() end
local stats = dist and dist.stats or function() return { bytes = 0, seconds = 0, calls = 0 } end
local sent, mpisecs, calls = 0, 0, 0
for e = 1, o.epochs do
  reset()
  local h = model:fit(ds, fit)
  fit.seed = fit.seed + 1
  if e > 1 then
    times[#times + 1] = h[1].seconds
    steps = steps + h[1].batches
    local s = stats()
    sent, mpisecs, calls = sent + s.bytes, mpisecs + s.seconds, calls + s.calls
  end
end
local secs = 0
for _, t in ipairs(times) do secs = secs + t end
if not dist or dist.rank == 0 then
  print(("{\"case\": \"%s\", \"np\": %d, \"threads\": %d, \"batch\": %d, \"sparse\": \"%s\", \"samples_per_s\": %.1f, "
    .. "\"steps\": %d, \"bytes_per_step\": %.0f, \"mpi_calls_per_step\": %.2f, \"mpi_ms_per_step\": %.4f}")
    :format(case, dist and dist.size or 1, o.threads, o.batch, o.sparse, N * #times / secs, steps,
      steps > 0 and sent / steps or 0, steps > 0 and calls / steps or 0, steps > 0 and 1000 * mpisecs / steps or 0))
end
