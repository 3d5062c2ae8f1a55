-- mm.data.stream: manifests read by C threads while a model trains (csrc/model/stream.h,
-- model_stream.c). The same rows in the same order train the same bits as in memory; a seed
-- fixes the shuffled order; bad rows name file:line or are skipped and counted; splits,
-- shards, .npy rows by a row column; memory stays bounded; the threads stop on errors.
local mm = require "mmfuse"
local util = require "util"

local dir = util.tmpdir()

local WORDS = { pos = { "good", "great", "love", "happy", "nice" }, neg = { "bad", "awful", "hate", "sad", "ugly" },
  neu = { "table", "chair", "blue", "road", "cloud" } }
local CLASSES = { "neg", "neu", "pos" }

-- a deterministic corpus: id, text, label, fold and an .npy of 8-d features with class signal
local function corpus(name, n, o)
  o = o or {}
  local s = o.seed or 7
  local function rnd(k) s = (s * 48271) % 2147483647; return s % k + 1 end
  local lines, F = { "id\ttext\tlabel\tfold" }, {}
  for i = 1, n do
    local c = CLASSES[rnd(3)]
    local t = {}
    for j = 1, 3 + rnd(4) do t[j] = (rnd(3) == 1) and WORDS[c][rnd(5)] or WORDS[CLASSES[rnd(3)]][rnd(5)] end
    lines[#lines + 1] = ("%s%d\t%s\t%s\t%d"):format(o.prefix or "p", i, table.concat(t, " "), c, i % 5)
    local row = {}
    for d = 1, 8 do row[d] = (rnd(1000) / 1000 - 0.5) + ((d == 1 and c == "pos" or d == 2 and c == "neg") and 1 or 0) end
    F[i] = row
  end
  util.write(dir .. "/" .. name .. ".tsv", table.concat(lines, "\n") .. "\n")
  mm.io.save_npy(dir .. "/" .. name .. ".npy", mm.tensor(F))
  return dir .. "/" .. name .. ".tsv", lines
end

local main = corpus("main", 600)
local SPEC = { text = "text", label = "label", features = { f = "main.npy" } }

local function stream(extra, path)
  local o = {}
  for k, v in pairs(SPEC) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return mm.data.stream(path or main, o)
end

local function new(classes) return mm.model { fusion = "joint", classes = classes or CLASSES, dim = 8 } end

local function same_weights(a, b)
  for _, p in ipairs(a:params()) do
    if not mm.allclose(a:param(p.name), b:param(p.name), 0) then return false end
  end
  return true
end

local function saved(m)
  local p = dir .. "/m" .. math.random(1e9) .. ".mmf"
  m:save(p)
  local s = util.read(p)
  os.remove(p)
  return s
end

local function texts(ds)
  local t = {}
  for i = 1, #ds do t[i] = ds:text("text", i) end
  return t
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

describe("mm.data.stream", function()
  it("holds the classes, files and modalities of the manifest", function()
    local s = stream()
    assert.are.same(CLASSES, s.classes)
    assert.are.same({ main }, s.files)
    local mods = s:modalities()
    assert.are.same({ "text", "text" }, { mods[1].name, mods[1].kind })
    assert.are.same({ "f", "features", 8 }, { mods[2].name, mods[2].kind, mods[2].dim })
    assert.truthy(tostring(s):find("1 file, 3 classes", 1, true))
  end)

  it("reads the rows mm.data.load reads, in file order without shuffling", function()
    local ds = mm.data.load(main, SPEC)
    local got = stream({ chunk = 37 }):load()
    assert.are.same(ds:labels(), got:labels())
    assert.are.same(texts(ds), texts(got))
    -- the feature rows, through a model's view of them: the same probabilities
    local m = new()
    m:fit(ds, { epochs = 1, batch = 32, shuffle = false })
    local _, pa = m:predict(ds)
    local _, pb = m:predict(got)
    assert.is_true(mm.allclose(pa, pb, 0))
  end)

  -- bit equality: the stream's batches are the same rows in the same order as the in-memory
  -- batches (shuffle = false), and a batch runs the same code on the same rows either way
  it("trains the same model bytes as the same rows in memory (no shuffle)", function()
    local ds = mm.data.load(main, SPEC)
    local a, b = new(), new()
    local fo = { epochs = 2, batch = 16, shuffle = false, seed = 3 }
    local ha = a:fit(ds, fo)
    local hb = b:fit(stream { chunk = 37, queue = 2 }, fo)
    assert.are.equal(ha[2].loss, hb[2].loss)
    assert.are.equal(600, hb[2].samples)
    assert.are.equal(saved(a), saved(b))
    -- evaluate and predict on the stream equal the in-memory results
    local ra, rb = a:evaluate(ds), b:evaluate(stream())
    assert.are.equal(ra.log_loss, rb.log_loss)
    assert.are.equal(ra.macro_f1, rb.macro_f1)
    assert.are.same(ra.confusion, rb.confusion)
    assert.is_true(mm.allclose(ra.probs, rb.probs, 0))
    local na, pa = a:predict(ds)
    local nb, pb = b:predict(stream { workers = 2 })
    assert.are.same(na, nb)
    assert.is_true(mm.allclose(pa, pb, 0))
  end)

  it("shuffles by shard order and a buffer: the same order and model for a seed, another for another seed",
    function()
      local s = stream { shuffle_buffer = 100, chunk = 50 }
      local a, b = s:load { shuffle = true, seed = 1 }, s:load { shuffle = true, seed = 1 }
      local c = s:load { shuffle = true, seed = 2 }
      assert.are.same(texts(a), texts(b))
      assert.are_not.same(texts(a), texts(c))
      local plain, sa = texts(s:load()), texts(a)
      assert.are_not.same(plain, sa)
      table.sort(plain)
      table.sort(sa)
      assert.are.same(plain, sa) -- a permutation of the rows
      local fo = { epochs = 2, batch = 16, seed = 5 }
      local m1, m2, m3 = new(), new(), new()
      m1:fit(s, fo)
      m2:fit(s, fo)
      fo.seed = 6
      m3:fit(s, fo)
      assert.are.equal(saved(m1), saved(m2))
      assert.is_false(same_weights(m1, m3))
    end)

  it("reads shards given as a glob or a list, in order", function()
    corpus("shard-0", 120, { seed = 11, prefix = "a" })
    corpus("shard-1", 80, { seed = 12, prefix = "b" })
    local o = { text = "text", label = "label", classes = CLASSES }
    local g = mm.data.stream(dir .. "/shard-*.tsv", o)
    assert.are.same({ dir .. "/shard-0.tsv", dir .. "/shard-1.tsv" }, g.files)
    local l = mm.data.stream({ dir .. "/shard-1.tsv", dir .. "/shard-0.tsv" }, o)
    local tg, tl = texts(g:load()), texts(l:load())
    assert.are.equal(200, #tg)
    local t0, t1 = texts(mm.data.load(dir .. "/shard-0.tsv", o)), texts(mm.data.load(dir .. "/shard-1.tsv", o))
    for i = 1, 120 do assert.are.equal(t0[i], tg[i]) end
    for i = 1, 80 do assert.are.equal(t1[i], tg[120 + i]); assert.are.equal(t1[i], tl[i]) end
    assert.truthy(util.errors_with(mm.data.stream, dir .. "/none-*.tsv", o):find("no file matches", 1, true))
  end)

  it("reads .npy feature rows by a row column (memory mapped), and by row order over shards", function()
    -- rows of the .npy in reverse order, found through the column 'r'
    local F = mm.io.load_npy(dir .. "/main.npy"):totable()
    local rev = {}
    for i = 1, #F do rev[#F + 1 - i] = F[i] end
    mm.io.save_npy(dir .. "/rev.npy", mm.tensor(rev))
    local lines = { "text\tlabel\tr" }
    local k = 0
    for line in io.lines(main) do
      k = k + 1
      if k > 1 then
        local _, t, lab = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)")
        lines[#lines + 1] = ("%s\t%s\t%d"):format(t, lab, #F - (k - 1))
      end
    end
    util.write(dir .. "/rev.tsv", table.concat(lines, "\n") .. "\n")
    local m = new()
    local ds = mm.data.load(main, SPEC)
    m:fit(ds, { epochs = 1, batch = 32, shuffle = false })
    local _, pa = m:predict(ds)
    local _, pb = m:predict(mm.data.stream(dir .. "/rev.tsv", { text = "text", label = "label", row = "r",
      features = { f = "rev.npy" } }))
    assert.is_true(mm.allclose(pa, pb, 0))
    -- a row outside the file names the file, line and row
    util.write(dir .. "/far.tsv", "text\tlabel\tr\ngood\tpos\t1\nbad\tneg\t600\n")
    local err = util.errors_with(function()
      mm.data.stream(dir .. "/far.tsv", { text = "text", label = "label", row = "r", features = { f = "main.npy" } })
        :load()
    end)
    util.assert_mentions(err, "far.tsv:3", "600", "main.npy")
    -- row order without a row column: the .npy must hold one row per manifest row
    err = util.errors_with(mm.data.stream, dir .. "/far.tsv", { text = "text", label = "label",
      features = { f = "main.npy" } })
    util.assert_mentions(err, "main.npy", "600 rows", "2")
  end)

  it("splits by a fold column as ds:split does, and by a hash of an id column", function()
    local ds = mm.data.load(main, SPEC)
    local dtr, dva, dte = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
    local s = stream()
    local tr, va, te = s:split { by = "fold", test = { 0 }, valid = { 1 } }
    assert.are.same(texts(dtr), texts(tr:load()))
    assert.are.same(texts(dva), texts(va:load()))
    assert.are.same(texts(dte), texts(te:load()))
    assert.are.equal(#dva + #dte, tr:stats().other) -- the rows of the other parts, read and left
    -- by hash: disjoint parts that cover the rows, each id in the part its hash gives
    local h = { s:split { hash = "id", ratios = { 0.6, 0.2, 0.2 } } }
    local ids = {}
    local k = 0
    for line in io.lines(main) do
      k = k + 1
      if k > 1 then ids[#ids + 1] = line:match("^([^\t]*)") end
    end
    local want = { 0, 0, 0 }
    for _, id in ipairs(ids) do
      local p = require("mmfuse.core").stream.hash_part(id, 0.6, 0.2, 0.2)
      want[p] = want[p] + 1
    end
    local got = { #h[1]:load(), #h[2]:load(), #h[3]:load() }
    assert.are.same(want, got)
    assert.are.equal(600, got[1] + got[2] + got[3])
    assert.is_true(got[1] > 300 and got[2] > 60 and got[3] > 60)
    -- a split of a split, and fit's valid = a stream part
    local m = new()
    local hist = m:fit(tr, { valid = va, epochs = 2, batch = 32 })
    assert.is_number(hist[2].valid_macro_f1)
    assert.are.equal(#dtr, hist[1].samples)
  end)

  it("names the file and line of a bad row, or skips and counts bad rows (bad_rows = 'skip')", function()
    local p = dir .. "/bad.tsv"
    util.write(p, "text\tlabel\ngood\tpos\nbad\tneg\tEXTRA\nsad\tneg\n\nnice\tpso\nugly\tneg\n")
    local o = { text = "text", label = "label", classes = CLASSES }
    local err = util.errors_with(function() mm.data.stream(p, o):load() end)
    util.assert_mentions(err, "bad.tsv:3")
    -- with chunks of one row the error arrives after the good rows, at its place in the stream
    local m = new()
    m:fit(mm.data.stream(main, { text = "text", label = "label" }), { epochs = 1 })
    err = util.errors_with(function() m:fit(mm.data.stream(p, { text = "text", label = "label", classes = CLASSES,
      chunk = 1 }), { epochs = 1, batch = 1 }) end)
    util.assert_mentions(err, "bad.tsv:3")
    o.bad_rows = "skip"
    local s = mm.data.stream(p, o)
    local ds = s:load()
    assert.are.same({ "good", "sad", "ugly" }, texts(ds))
    local st = s:stats()
    assert.are.equal(2, st.bad)
    assert.are.equal(3, st.rows)
    util.assert_mentions(st.first_bad, "bad.tsv:3")
    local h = m:fit(s, { epochs = 1 })
    assert.are.equal(2, h[1].stream.bad)
    -- an unknown label with fixed classes names the line and the classes
    o.bad_rows = nil
    err = util.errors_with(function() mm.data.stream(dir .. "/bad.tsv", o):load() end)
    util.assert_mentions(err, "bad.tsv:3")
    util.write(p, "text\tlabel\ngood\tpos\nnice\tpso\n")
    err = util.errors_with(function() mm.data.stream(p, o):load() end)
    util.assert_mentions(err, "bad.tsv:3", "pso", "neg, neu, pos")
  end)

  it("reads a manifest without rows as an empty stream: fit says so, predict returns no rows", function()
    local p = dir .. "/header_only.tsv"
    util.write(p, "text\tlabel\n")
    local s = mm.data.stream(p, { text = "text", label = "label", classes = CLASSES })
    local m = new()
    util.assert_mentions(util.errors_with(function() m:fit(s, { epochs = 1 }) end), "the training stream has no rows")
    m:fit(stream(), { epochs = 1 })
    local names, probs = m:predict(s)
    assert.are.equal(0, #names)
    assert.are.same({ 0, 3 }, probs:shape())
  end)

  it("reads CSV with quoted fields, and refuses options it does not know the meaning of", function()
    local p = dir .. "/q.csv"
    util.write(p, 'text,label\n"good, ""very"" nice",pos\n"two\nlines",neg\nplain,neu\n')
    local ds = mm.data.stream(p, { text = "text", label = "label" }):load()
    assert.are.same({ 'good, "very" nice', "two\nlines", "plain" }, texts(ds))
    util.assert_mentions(util.errors_with(mm.data.stream, p, { text = "text" }), "label")
    util.assert_mentions(util.errors_with(mm.data.stream, p, { label = "label", bad_rows = "drop" }), "bad_rows")
    util.assert_mentions(util.errors_with(mm.data.stream, p, { label = "nolabel" }), "q.csv", "nolabel")
    util.assert_mentions(util.errors_with(mm.data.stream, p, { label = "label", queue = 0 }), "queue")
    util.write(dir .. "/nolab.tsv", "text\tlabel\na\t\nb\t\n")
    util.assert_mentions(util.errors_with(mm.data.stream, dir .. "/nolab.tsv", { label = "label" }), "nolab.tsv",
      "no row has a label")
    -- a FIFO as manifest or .npy is refused unread (io/file.h), never waited on
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo " .. fifo))
    util.assert_mentions(util.errors_with(mm.data.stream, fifo, { label = "label" }), "fifo", "regular file")
    util.assert_mentions(util.errors_with(mm.data.stream, p, { label = "label", features = { f = fifo } }), "fifo",
      "regular file")
    os.remove(fifo)
  end)

  it("reads JSONL as mm.data.load does, and names the line of a row that is not an object", function()
    local p = dir .. "/j.jsonl"
    util.write(p, '{"text": "good \\"day\\"", "label": "pos", "x": 1.5}\n\n'
      .. '{"label": "neg", "text": "bad", "x": 2}\n'
      .. '{"text": null, "label": "neu", "x": -3}\n{"text": "no label", "label": null, "x": 0}\n')
    local o = { text = "text", label = "label", features = { x = { "x" } } }
    local a, b = mm.data.load(p, o), mm.data.stream(p, o):load()
    assert.are.same({ 'good "day"', "bad", "" }, texts(b))
    assert.are.same(texts(a), texts(b))
    assert.are.same(a:labels(), b:labels())
    local m = new()
    m:fit(a, { epochs = 1, shuffle = false })
    local _, pa = m:predict(a)
    local _, pb = m:predict(mm.data.stream(p, o))
    assert.is_true(mm.allclose(pa, pb, 0))
    util.write(p, '{"text": "a", "label": "pos", "x": 1}\n[1, 2]\n')
    util.assert_mentions(util.errors_with(function() mm.data.stream(p, o):load() end), "j.jsonl:2", "not a JSON object")
    util.write(p, '{"text": "a", "label": "pos", "x": 1}\n{"text": {"a": 1}, "label": "pos", "x": 1}\n')
    util.assert_mentions(util.errors_with(function() mm.data.stream(p, o):load() end), "j.jsonl:2", "'text'")
  end)

  it("stops its threads when fit fails in a callback, and reads again afterwards", function()
    local s = stream { chunk = 16, queue = 2 }
    local m = new()
    local err = util.errors_with(function()
      m:fit(s, { epochs = 1, batch = 8, progress_interval = 0, on_batch = function(p)
        if p.batch == 3 then error("stop here") end
      end })
    end)
    assert.truthy(err:find("stop here", 1, true))
    local h = m:fit(s, { epochs = 1, batch = 8, on_batch = function(p) return p.batch < 5 end, progress_interval = 0 })
    assert.is_true(h[1].stopped)
    assert.are.equal(5, h[1].batches)
    assert.are.equal(600, #s:load())
  end)

  it("keeps memory bounded while streaming a file much larger than its queue", function()
    -- 300,000 rows (~30 MB of text): in memory they would take well over the bound below
    local p = dir .. "/big.tsv"
    local f = assert(io.open(p, "wb"))
    f:write("text\tlabel\n")
    local s = 3
    local row = {}
    for i = 1, 300000 do
      s = (s * 48271) % 2147483647
      local c = CLASSES[s % 3 + 1]
      for j = 1, 12 do
        s = (s * 48271) % 2147483647
        row[j] = WORDS[c][s % 5 + 1] .. (s % 97)
      end
      f:write(table.concat(row, " "), "\t", c, "\n")
    end
    f:close()
    local st = mm.data.stream(p, { text = "text", label = "label", classes = CLASSES, chunk = 1024, queue = 2 })
    local m = mm.model { fusion = "text", classes = CLASSES, dim = 8, text = { max_vocab = 2000 } }
    collectgarbage()
    local before, peak = rss_kb(), 0
    m:fit(st, { epochs = 1, batch = 256, progress_interval = 0, on_batch = function()
      local r = rss_kb()
      if r > peak then peak = r end
    end })
    assert.are.equal(300000, st:stats().rows)
    -- bound: the chunks in flight (queue + 2 of 1024 rows of ~100 bytes of text, their ids) and
    -- the model (2000 words + 8 dims) are well under 1 MB; 20 MB leaves room for the allocator
    -- (under ASan, freed blocks wait in its quarantine, 256 MB by default, before reuse)
    local bound = 20 * 1024 + (os.getenv("MMFUSE_ASAN") and 300 * 1024 or 0)
    assert.is_true(peak - before < bound, ("RSS grew by %d kB"):format(peak - before))
    os.remove(p)
  end)
end)
