--- bench-scale (see bench/README.md): one epoch of a joint model over the synthetic corpus of
-- tools/gen_scale.py, streamed from disk (mm.data.stream) or loaded in memory first.
--
--   lua5.4 bench/scale.lua one DIR stream|memory SHARDS   one process: prints one JSON line
--   lua5.4 bench/scale.lua table DIR FIRST REPS           the table: memory vs stream on the
--        first FIRST shards (alternating, REPS processes each), then the stream over every shard
--
-- Every measurement runs in its own process (peak RSS = its VmHWM). The model: fusion "joint",
-- dim 128, text { ngrams = 2, buckets = 100000, max_vocab = 200000 }, the 128-d feature rows
-- (encoder "features"); Adam lr 1e-3, batch 32, one epoch, shuffle off (the stream reads the
-- shards in order, the in-memory side trains on its rows in the same order), mm.threads(1):
-- the stream's reader and builder threads come on top. Module search: MMFUSE_CPATH (default
-- ./build-bench/?.so) and ./lua/.
local common = dofile("bench/common.lua")
local mm = require "mmfuse"
local core = require "mmfuse.core"
local cjson = require "cjson"

local die, status_kb = common.die_with("scale"), common.status_kb

local function shards(dir, k)
  local all = core.stream.glob(dir .. "/posts-*.tsv")
  if #all == 0 then die("no posts-*.tsv in " .. dir .. " (tools/gen_scale.py writes them)") end
  local out = {}
  for i = 1, math.min(k or #all, #all) do out[i] = all[i] end
  return out
end

local SPEC = { text = "text", label = "label", row = "row", features = { feat = "features.npy" } }

local function one(dir, side, nshards)
  mm.threads(1)
  local files = shards(dir, nshards)
  local t0 = core.clock()
  local s = mm.data.stream(files, SPEC)
  local data = s
  local load_s = 0
  if side == "memory" then
    data = s:load()
    load_s = core.clock() - t0
  end
  local m = mm.model { fusion = "joint", classes = s.classes, dim = 128,
    text = { ngrams = 2, buckets = 100000, max_vocab = 200000 }, features = { feat = { encoder = "features" } } }
  local t1 = core.clock()
  local h = m:fit(data, { epochs = 1, batch = 32, lr = 1e-3, shuffle = false, seed = 1 })
  local wall = core.clock() - t0
  local train_s = h[1].seconds
  local t2 = core.clock()
  local st = side == "stream" and s:stats() or {}
  io.write(cjson.encode {
    side = side, shards = #files, posts = h[1].samples, load_s = load_s, build_s = (t2 - t1) - train_s,
    train_s = train_s, posts_per_s = h[1].samples / train_s, wall_s = wall, rss_kb = status_kb("VmHWM"),
    loss = h[1].loss, wait_s = st.wait,
  }, "\n")
end

local function run(dir, side, nshards)
  local lua = os.getenv("LUA") or "lua5.4"
  local cmd = ("%s bench/scale.lua one %q %s %d"):format(lua, dir, side, nshards)
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok = p:close()
  local line = out:match("(%b{})%s*$")
  if not ok or not line then die("failed: " .. cmd .. "\n" .. out) end
  return cjson.decode(line)
end

local function median(v)
  local t = {}
  for i, x in ipairs(v) do t[i] = x end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end

local function range(v)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(v) do lo, hi = math.min(lo, x), math.max(hi, x) end
  return lo, hi
end

local function table_(dir, first, reps)
  local all = shards(dir)
  local f = io.open(dir .. "/corpus.txt")
  local corpus = f and f:read("l") or "?"
  if f then f:close() end
  io.write(("corpus: %s (%s); %d shards\n"):format(dir, corpus, #all))
  local res = { memory = {}, stream = {} }
  for r = 1, reps do -- alternate the sides, so load on the machine falls on both
    for _, side in ipairs(r % 2 == 1 and { "memory", "stream" } or { "stream", "memory" }) do
      local x = run(dir, side, first)
      res[side][#res[side] + 1] = x
      io.stderr:write(("  %s %d: %.0f posts/s, RSS %.0f MB, wall %.1f s\n"):format(side, r, x.posts_per_s,
        x.rss_kb / 1024, x.wall_s))
    end
  end
  local full = first < #all and run(dir, "stream", #all) or nil
  local function col(list, k)
    local v = {}
    for i, x in ipairs(list) do v[i] = x[k] end
    return v
  end
  io.write("\n| run | posts | posts/s (median; range) | peak RSS MB (max) | wall s (median) | train s | load s |\n")
  io.write("|---|---|---|---|---|---|---|\n")
  local function row(name, list)
    local pps = col(list, "posts_per_s")
    local lo, hi = range(pps)
    local _, rss = range(col(list, "rss_kb"))
    io.write(("| %s | %d | %.0f (%.0f-%.0f) | %.0f | %.1f | %.1f | %.1f |\n"):format(name, list[1].posts,
      median(pps), lo, hi, rss / 1024, median(col(list, "wall_s")), median(col(list, "train_s")),
      median(col(list, "load_s"))))
  end
  row(("in memory, first %d shard%s"):format(first, first == 1 and "" or "s"), res.memory)
  row(("stream, first %d shard%s"):format(first, first == 1 and "" or "s"), res.stream)
  if full then row(("stream, all %d shards"):format(#all), { full }) end
  local ratio = median(col(res.stream, "posts_per_s")) / median(col(res.memory, "posts_per_s"))
  io.write(("\nstream / in-memory throughput on the first %d shard%s: %.2fx (goal >= 0.8x)\n"):format(first,
    first == 1 and "" or "s", ratio))
  local top = full or res.stream[#res.stream]
  io.write(("peak RSS streaming %d posts: %.0f MB (goal <= 1024 MB)\n"):format(top.posts, top.rss_kb / 1024))
end

local mode = arg[1]
if mode == "one" then
  one(arg[2], arg[3], tonumber(arg[4]))
elseif mode == "table" then
  table_(arg[2], tonumber(arg[3]) or 1, tonumber(arg[4]) or 3)
else
  die("usage: scale.lua one DIR stream|memory SHARDS | table DIR FIRST REPS")
end
