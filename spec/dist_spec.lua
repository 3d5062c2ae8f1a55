-- mmfuse.dist: data-parallel training, evaluation and prediction over Open MPI processes.
-- Every job runs under `mpirun -np 2` (spec/fixtures/dist/job.lua and bin/mmfuse), with a
-- timeout around it, so a regression that hangs fails instead of stopping the suite. Under
-- `make asan` the jobs run the suite's (ASan) build too, with LeakSanitizer off in them:
-- Open MPI's own allocations outlive MPI_Finalize; mpirun itself runs uninstrumented.
local util = require "util"

local TIMEOUT = 90 -- seconds a job may take before it counts as hung

local sh_quote, tmpdir = util.sh_quote, util.tmpdir

local function have(cmd)
  local p = io.popen("command -v " .. cmd .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out ~= ""
end

local CPATH = (os.getenv("MMFUSE_CPATH") or "./build/?.so") .. ";;"
local PRELOAD = os.getenv("LD_PRELOAD")

-- Run argv (a list) as np processes under mpirun (np = nil: one process, no mpirun).
-- stdin: a file for the job's standard input (mpirun hands it to rank 0).
-- Returns exit code, stdout, stderr, seconds.
local function run(np, argv, dir, stdin)
  local words = {}
  for i, a in ipairs(argv) do words[i] = sh_quote(a) end
  local env = "LUA_CPATH=" .. sh_quote(CPATH) .. " MMFUSE_CPATH=" .. sh_quote(os.getenv("MMFUSE_CPATH") or "./build/?.so")
  local inner = table.concat(words, " ")
  local cmd
  if np then
    local x = ""
    if PRELOAD and PRELOAD ~= "" then -- the processes under ASan, mpirun without it
      x = "-x LD_PRELOAD=" .. sh_quote(PRELOAD) .. " -x ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:exitcode=23 "
    end
    cmd = ("env -u LD_PRELOAD %s timeout -k 5 %d mpirun --allow-run-as-root --oversubscribe -np %d -x LUA_CPATH "
      .. "-x MMFUSE_CPATH %s%s"):format(env, TIMEOUT, np, x, inner)
  else
    cmd = ("env %s timeout -k 5 %d %s"):format(env, TIMEOUT, inner)
  end
  local out, err = dir .. "/stdout", dir .. "/stderr"
  local script = ("t0=$(date +%%s%%N); %s <%s >%s 2>%s; rc=$?; t1=$(date +%%s%%N); echo $rc $(( (t1 - t0) / 1000000 ))")
    :format(cmd, sh_quote(stdin or "/dev/null"), sh_quote(out), sh_quote(err))
  local p = io.popen(script)
  local rc, ms = p:read("a"):match("(%d+) (%d+)")
  p:close()
  return tonumber(rc), util.read(out), util.read(err), tonumber(ms) / 1000
end

local JOB = "spec/fixtures/dist/job.lua"

-- a JSON value as text with its keys sorted and numbers in full: cjson's key order follows
-- the hash order of the process that wrote it
local function canon(v)
  if type(v) == "number" then return ("%.17g"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for i, k in ipairs(keys) do out[i] = tostring(k) .. "=" .. canon(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

-- two `mmfuse eval --json` outputs: the same metrics, the log-loss within rel (a reordered sum)
local function assert_same_eval(out1, out2, rel)
  local cjson = require "cjson"
  local j1, j2 = cjson.decode(out1), cjson.decode(out2)
  assert(math.abs(j2.log_loss - j1.log_loss) <= rel * j1.log_loss)
  j2.log_loss, j1.log_loss = nil, nil
  assert.are.equal(canon(j1), canon(j2))
end

local function json_lines(text)
  local cjson, out = require "cjson", {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = canon(cjson.decode(l)) end
  return out
end

describe("mmfuse.dist (mpirun -np 2)", function()
  local mm, dir
  setup(function()
    assert(have("mpirun"), "mpirun is missing: make deps installs Open MPI (openmpi-bin, libopenmpi-dev)")
    mm = require "mmfuse"
    dir = tmpdir()
  end)
  teardown(function() if dir then os.execute("rm -rf " .. sh_quote(dir)) end end)

  local function params(tag)
    local out = {}
    for i = 1, 64 do
      local path = ("%s/%s_p%d.npy"):format(dir, tag, i)
      local f = io.open(path, "rb")
      if not f then break end
      f:close()
      out[i] = path
    end
    return out
  end

  it("trains the same weights on every process, as one process does with the doubled batch", function()
    -- one sum per step, in rank order on every process (sync.c): the two processes' weights
    -- are the same bits; against one process with batch 16 the float sums run in another
    -- order (measured: at most 4.4e-7 of the largest weight with Adam, 8e-8 with SGD, for
    -- 3 epochs of the text, early, late and joint fusions): 1e-5 leaves a margin of 20.
    -- The text embedding's rows are summed by gathering the touched rows (what "auto" picks
    -- for these small batches) or by an allreduce of the whole table: both are checked.
    for _, case in ipairs { { fusion = "joint", optimizer = "adam", sparse = "auto" },
      { fusion = "text", optimizer = "sgd", sparse = "rows" }, { fusion = "text", optimizer = "adam", sparse = "table" } } do
      os.execute("rm -f " .. sh_quote(dir) .. "/*.npy")
      local common = { "fusion=" .. case.fusion, "optimizer=" .. case.optimizer, "epochs=3" }
      local rc, out, err = run(2, { "lua5.4", JOB, "train", dir, "batch=8", "sparse=" .. case.sparse,
        table.unpack(common) }, dir)
      assert(rc == 0, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[l:match("^r(%d)")] = l:gsub("^r%d ", "") end
      assert.are.equal(lines["0"], lines["1"]) -- the job's statistics, the same on both
      rc, out, err = run(nil, { "lua5.4", JOB, "train", dir, "batch=16", "local=1", table.unpack(common) }, dir)
      assert(rc == 0, err)
      local r0, r1, one = params("r0"), params("r1"), params("local")
      assert.is_true(#r0 >= 2)
      assert.are.equal(#r0, #r1)
      assert.are.equal(#r0, #one)
      for i = 1, #r0 do
        assert(util.read(r0[i]) == util.read(r1[i]), ("%s: parameter %d differs between the processes"):format(case.fusion, i))
        util.assert_close(mm.io.load_npy(r0[i]), mm.io.load_npy(one[i]), case.fusion .. " parameter " .. i, 1e-5)
      end
    end
  end)

  it("evaluates and predicts as one process does", function()
    -- 700 rows: three prediction batches of 256, split 1 / 2 between the processes
    local rc, _, err = run(2, { "lua5.4", JOB, "train", dir, "rows=700", "epochs=1" }, dir)
    assert(rc == 0, err)
    for r = 0, 1 do
      -- the probabilities of the job and of this process alone, bit for bit
      assert(util.read(("%s/r%d_probs.npy"):format(dir, r)) == util.read(("%s/r%d_probs1.npy"):format(dir, r)))
      local job, one = util.read(("%s/r%d_eval.txt"):format(dir, r)), util.read(("%s/r%d_eval1.txt"):format(dir, r))
      local strip = function(s) return (s:gsub("log_loss [^\n]+\n", "")) end
      assert.are.equal(strip(one), strip(job)) -- n, accuracy, macro-F1, confusion, the predicted names
      local lj, lo = tonumber(job:match("log_loss (%S+)")), tonumber(one:match("log_loss (%S+)"))
      assert(math.abs(lj - lo) <= 1e-12 * lo, ("log-loss %.17g vs %.17g"):format(lj, lo)) -- a sum of 700 doubles, reordered
    end
  end)

  it("ends every process with the message of a process whose gradient is not finite", function()
    local rc, out, err, secs = run(2, { "lua5.4", JOB, "nan", dir }, dir)
    assert(rc == 0, err) -- the error is agreed: both catch it and meet again in a barrier
    for r = 0, 1 do
      util.assert_mentions(out, ("rank %d: "):format(r), ("rank %d after"):format(r))
      assert(out:match(("rank %d: [^\n]*rank 1 of 2: fit: gradient is not finite"):format(r)), out)
    end
    assert(secs < 30, ("took %.1f s"):format(secs))
  end)

  it("ends the job within seconds when one process cannot read its file", function()
    local rc, out, err, secs = run(2, { "lua5.4", JOB, "badfile", dir }, dir)
    assert.are_not.equal(0, rc)
    assert.is_nil(out:find("trained on rank", 1, true)) -- rank 0 never gets past the first collective
    util.assert_mentions(err, dir .. "/missing.tsv: cannot open")
    assert(secs < 30, ("took %.1f s"):format(secs))
  end)

  it("runs mmfuse train --stream and eval --stream as one job under mpirun", function()
    local data = { "spec/fixtures/cli/posts.tsv", "--split", "fold:0:1" }
    local m2 = dir .. "/cli-stream.mmf"
    local rc, out, err = run(2, { "bin/mmfuse", "train", data[1], "--stream", "--fusion", "joint", "--dim", "8",
      "--buckets", "100", "--epochs", "2", "--batch", "4", "--quiet", "--split", "fold:0:1", "--out", m2 }, dir)
    assert(rc == 0, err)
    local _, nprinted = out:gsub("trained joint on 18 rows", "") -- the job's rows, printed by rank 0 alone
    assert.are.equal(1, nprinted, out)
    local eval = { "bin/mmfuse", "eval", m2, data[1], "--split", "fold:0:1", "--json" }
    local rc1, out1, err1 = run(nil, eval, dir) -- one process, in memory
    assert(rc1 == 0, err1)
    eval[#eval + 1] = "--stream"
    local rc2, out2, err2 = run(2, eval, dir)
    assert(rc2 == 0, err2)
    assert_same_eval(out1, out2, 1e-6)
  end)

  it("runs mmfuse train, eval and predict as one job under mpirun", function()
    local data = { "data/emoji32/manifest.tsv", "--text-col", "caption", "--label-col", "group" }
    local m2 = dir .. "/cli2.mmf"
    local rc, out, err = run(2, { "bin/mmfuse", "train", data[1], "--fusion", "text", "--text-col", "caption",
      "--label-col", "group", "--epochs", "2", "--batch", "8", "--out", m2 }, dir)
    assert(rc == 0, err)
    local _, nprinted = out:gsub("trained text on 1906 rows", "")
    assert.are.equal(1, nprinted, out) -- rank 0 alone prints
    util.assert_mentions(err, "epoch 2/2")
    assert(select(2, err:gsub("epoch 1/2", "")) == 1, err)
    assert(io.open(m2, "rb")):close()
    local leftovers = io.popen("ls " .. sh_quote(dir) .. " | grep -c '^cli2.mmf.' ; true"):read("a")
    assert.are.equal("0", leftovers:match("%d+")) -- no temporary file beside the model
    -- eval: the job's metrics are this process's (the log-loss sum reordered)
    local eval = { "bin/mmfuse", "eval", m2, table.unpack(data) }
    eval[#eval + 1] = "--json"
    local rc2, out2, err2 = run(2, eval, dir)
    assert(rc2 == 0, err2)
    local rc1, out1, err1 = run(nil, eval, dir)
    assert(rc1 == 0, err1)
    assert_same_eval(out1, out2, 1e-12)
    local cjson = require "cjson"
    -- predict: 600 posts from stdin, three blocks of 256 lines, in input order with their errors
    local posts = dir .. "/posts.jsonl"
    local f = assert(io.open(posts, "w"))
    local n = 0
    for line in io.lines(data[1]) do
      local cap = n > 0 and line:match("^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)")
      if cap then f:write(cjson.encode { id = n, text = cap }, "\n") end
      if n == 300 then f:write("not json\n\n") end
      n = n + 1
      if n > 600 then break end
    end
    f:close()
    rc2, out2, err2 = run(2, { "bin/mmfuse", "predict", m2 }, dir, posts)
    assert.are.equal(1, rc2) -- a line failed
    util.assert_mentions(err2, "1 of 602 lines failed")
    rc1, out1, err1 = run(nil, { "bin/mmfuse", "predict", m2 }, dir, posts)
    assert.are.equal(1, rc1)
    local p2, p1 = json_lines(out2), json_lines(out1)
    assert.are.equal(601, #p1)
    assert.are.same(p1, p2) -- the same probabilities, bit for bit, in the same order
  end)

  it("ends the command on every process when the manifest is missing", function()
    local rc, _, err, secs = run(2, { "bin/mmfuse", "train", dir .. "/none.tsv", "--fusion", "text", "--out",
      dir .. "/none.mmf" }, dir)
    assert.are.equal(1, rc)
    util.assert_mentions(err, dir .. "/none.tsv")
    assert.is_nil(io.open(dir .. "/none.mmf", "rb"))
    assert(secs < 30, ("took %.1f s"):format(secs))
  end)

  -- ---- a stream across processes (spec/fixtures/dist/stream_job.lua) ----

  local SJOB = "spec/fixtures/dist/stream_job.lua"

  -- n synthetic posts (the generator of job.lua) as sub/s.tsv (text, label, r: the row of
  -- sub/feat.npy, 6 features with class signal); returns the directory
  local function corpus(sub, n)
    local d = dir .. "/" .. sub
    assert(os.execute("mkdir -p " .. sh_quote(d)))
    local words = { { "sun", "beach", "warm", "happy" }, { "rain", "grey", "cold", "wet" },
      { "snow", "ice", "white", "frost" } }
    local shared = { "day", "today", "photo", "my", "the", "look" }
    local state = 12345
    local function rnd(k)
      state = (state * 1103515245 + 12345) % 2147483648
      return state % k + 1
    end
    local f = assert(io.open(d .. "/s.tsv", "w"))
    f:write("text\tlabel\tr\n")
    local F = {}
    for i = 1, n do
      local y = rnd(3)
      local t = {}
      for _ = 1, 2 + rnd(3) do t[#t + 1] = rnd(3) == 1 and words[rnd(3)][rnd(4)] or words[y][rnd(4)] end
      for _ = 1, rnd(3) do t[#t + 1] = shared[rnd(#shared)] end
      f:write(table.concat(t, " "), "\t", ({ "a", "b", "c" })[y], "\t", i - 1, "\n")
      local row = {}
      for j = 1, 6 do row[j] = (j == y and 1.0 or 0.0) + (rnd(1000) - 500) / 1000 end
      F[i] = row
    end
    f:close()
    mm.io.save_npy(d .. "/feat.npy", mm.tensor(F))
    return d
  end

  -- the manifest d/name with the rows first..last of d/s.tsv (none: the header alone)
  local function rows_of(d, name, first, last)
    local out = assert(io.open(d .. "/" .. name, "w"))
    local i = 0
    for line in io.lines(d .. "/s.tsv") do
      if i == 0 or (first and i >= first and i <= last) then out:write(line, "\n") end
      i = i + 1
    end
    out:close()
  end

  -- each process's line of a train job (the job's samples/batches per epoch, the loss)
  local function job_lines(out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do
      local r, rest = l:match("^r(%d) (.*)$")
      if r then lines[tonumber(r)] = rest end
    end
    return lines
  end

  it("trains on a stream across processes: the same weights everywhere, as one process on the rows in memory with the doubled batch", function()
    -- shuffle off: step s of the job trains on rows [16 s, 16 (s + 1)) of the stream (each
    -- process the rows of its part there, rows r, r + 2, ...), the batch of one process with
    -- batch 16. The float sums run in another order (the rows interleaved, the two halves
    -- summed by sync.c): measured 3.0e-7 of the largest weight after 2 epochs of a joint model
    -- with Adam; 1e-5 as the in-memory case above, a margin of 30.
    local d = corpus("st", 300)
    local rc, out, err = run(2, { "lua5.4", SJOB, "train", d, "batch=8" }, dir)
    assert(rc == 0, err)
    local lines = job_lines(out)
    assert.are.equal(lines[0], lines[1])
    assert.is_truthy(lines[0]:match("^epochs 300/19 300/19 "), lines[0])
    rc, out, err = run(nil, { "lua5.4", SJOB, "train", d, "batch=8", "local=1" }, dir)
    assert(rc == 0, err)
    assert.is_truthy(out:match("^local epochs 300/19 300/19 "), out)
    local n = 0
    for i = 1, 64 do
      local p0 = ("%s/r0_p%d.npy"):format(d, i)
      if not io.open(p0, "rb") then break end
      n = i
      assert(util.read(p0) == util.read(("%s/r1_p%d.npy"):format(d, i)), ("parameter %d differs between the processes"):format(i))
      util.assert_close(mm.io.load_npy(p0), mm.io.load_npy(("%s/local_p%d.npy"):format(d, i)), "parameter " .. i, 1e-5)
    end
    assert.is_true(n >= 4)
  end)

  it("ends a stream's epoch on every process at the same step when the parts differ, or one is empty", function()
    -- parts by files: 150 rows and 147 (3 more on rank 0), then 150 and none; batch 8, shuffled
    local d = corpus("uneven", 297)
    rows_of(d, "a.tsv", 1, 150)
    rows_of(d, "b.tsv", 151, 297)
    rows_of(d, "empty.tsv")
    for _, case in ipairs { { "a.tsv,b.tsv", "epochs 297/19 297/19 " }, { "a.tsv,empty.tsv", "epochs 150/19 150/19 " },
      { "empty.tsv,a.tsv", "epochs 150/19 150/19 " } } do
      local rc, out, err, secs = run(2, { "lua5.4", SJOB, "train", d, "files=" .. case[1], "part=files", "shuffle=1" }, dir)
      assert(rc == 0, err)
      local lines = job_lines(out)
      assert.are.equal(lines[0], lines[1]) -- the job's statistics: every process the same steps
      assert(lines[0]:sub(1, #case[2]) == case[2], case[1] .. ": " .. lines[0])
      assert(secs < 30, ("took %.1f s"):format(secs))
    end
  end)

  it("ends every process with the message of a bad row in one process's part of a stream", function()
    -- row 6 of the manifest (line 7) is rank 1's (rows 1, 3, 5, ... 0-based): its feature
    -- row is not finite, which only the process building that row's chunk sees
    local d = corpus("bad", 300)
    local F = mm.io.load_npy(d .. "/feat.npy"):totable()
    F[6][3] = 0 / 0
    mm.io.save_npy(d .. "/bad.npy", mm.tensor(F))
    local rc, out, err, secs = run(2, { "lua5.4", SJOB, "bad", d, "npy=bad.npy" }, dir)
    assert(rc == 0, err) -- the error is agreed: both catch it and meet again in a barrier
    for r = 0, 1 do
      util.assert_mentions(out, ("rank %d after"):format(r))
      assert(out:find(("rank %d: [^\n]*rank 1 of 2: [^\n]*/bad/s%%.tsv:7: feature 'feat' %%(row 5 of [^\n]*bad%%.npy%%) "
        .. "is not finite"):format(r)), out)
    end
    assert(secs < 30, ("took %.1f s"):format(secs))
  end)

  it("evaluates and predicts a stream across processes as one process does", function()
    -- 700 rows: prediction batches of 256 rows, blocks 1 and 3 on rank 0, block 2 on rank 1
    local d = corpus("eval", 700)
    local rc, _, err = run(2, { "lua5.4", SJOB, "eval", d, "epochs=1" }, dir)
    assert(rc == 0, err)
    for r = 0, 1 do
      -- the same batches as one process: the probabilities bit for bit, in the stream's order
      assert(util.read(("%s/r%d_job_probs.npy"):format(d, r)) == util.read(("%s/r%d_one_probs.npy"):format(d, r)))
      local job, one = util.read(("%s/r%d_job_eval.txt"):format(d, r)), util.read(("%s/r%d_one_eval.txt"):format(d, r))
      local strip = function(s) return (s:gsub("log_loss [^\n]+\n", "")) end
      assert.are.equal(strip(one), strip(job)) -- n, accuracy, macro-F1, confusion, the predicted names
      assert.is_truthy(job:match("^n 700\n"))
      local lj, lo = tonumber(job:match("log_loss (%S+)")), tonumber(one:match("log_loss (%S+)"))
      assert(math.abs(lj - lo) <= 1e-12 * lo, ("log-loss %.17g vs %.17g"):format(lj, lo)) -- a sum of 700 doubles, reordered
    end
  end)

  it("runs README's script examples (its ```lua mpirun blocks) under mpirun", function()
    local f = assert(io.open("README.md", "rb"))
    local text = f:read("a")
    f:close()
    local n = 0
    for code in text:gmatch("```lua mpirun\n(.-)```") do
      n = n + 1
      local model = ("%s/readme%d.mmf"):format(dir, n)
      local saves = code:find('"emoji.mmf"', 1, true)
      code = code:gsub('"emoji%.mmf"', '"' .. model .. '"')
      local script = ("%s/readme%d.lua"):format(dir, n)
      f = assert(io.open(script, "w"))
      f:write(code)
      f:close()
      local rc, out, err = run(2, { "lua5.4", script }, dir)
      assert(rc == 0, err)
      assert.is_truthy(out:match("^[%d.]+\t[%d.]+\n$"), out) -- rank 0 alone prints
      if saves then assert(io.open(model, "rb")):close() end
    end
    assert.are.equal(2, n)
  end)
end)
