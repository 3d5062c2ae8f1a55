-- The mmfuse command: every subcommand run as a real process (lua5.4 bin/mmfuse),
-- checking stdout, stderr and exit codes; plus the parser and the config
-- sandbox in-process.
local cli = require "mmfuse.cli"
local util = require "util"

local FIX = "spec/fixtures/cli"
local MANIFEST = FIX .. "/posts.tsv"
local CPATH = os.getenv("MMFUSE_CPATH") or package.cpath:match("[^;]+")

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local spit = util.write

local tmpdir
local function tmp(name)
  if not tmpdir then
    tmpdir = util.tmpdir()
  end
  return tmpdir .. "/" .. name
end

-- Run bin/mmfuse with the given arguments (a list); returns code, stdout, stderr.
local function run(args, stdin)
  local parts = { "MMFUSE_CPATH=" .. q(CPATH), "lua5.4", "bin/mmfuse" }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local out, err = tmp("stdout"), tmp("stderr")
  local inp = "/dev/null"
  if stdin then
    inp = tmp("stdin")
    spit(inp, stdin)
  end
  local cmd = table.concat(parts, " ") .. " <" .. q(inp) .. " >" .. q(out) .. " 2>" .. q(err)
  local _, how, code = os.execute(cmd)
  assert(how == "exit", "mmfuse died from a signal: " .. tostring(code))
  return code, slurp(out) or "", slurp(err) or ""
end

-- every failure: the code, one "mmfuse: " message, no traceback
local function assert_fails(code, want_code, err, pattern)
  assert.are.equal(want_code, code)
  assert.truthy(err:match("^mmfuse: "), "stderr should start with 'mmfuse: ', got: " .. err)
  assert.is_nil(err:find("stack traceback", 1, true), "no traceback without --debug: " .. err)
  assert.is_nil(err:find("%.lua:%d+:"), "no Lua source position in the message: " .. err)
  if pattern then
    assert.truthy(err:find(pattern), ("stderr should mention %q, got: %s"):format(pattern, err))
  end
end

describe("mmfuse help", function()
  it("with no arguments prints the usage on stderr and exits 2", function()
    local code, out, err = run {}
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.truthy(err:find("usage: mmfuse COMMAND", 1, true))
  end)

  it("--help lists every command and exits 0", function()
    local code, out, err = run { "--help" }
    assert.are.equal(0, code)
    assert.are.equal("", err)
    for _, name in ipairs(cli.commands()) do
      assert.truthy(out:find("\n  " .. name .. " ", 1, true), "command " .. name .. " listed")
    end
  end)

  for _, name in ipairs(cli.commands()) do
    it(name .. " --help shows its usage and every option", function()
      local code, out, err = run { name, "--help" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.truthy(out:find("usage: mmfuse " .. name, 1, true))
      for _, opt in ipairs(cli.spec(name).options) do
        assert.truthy(out:find("--" .. opt.name, 1, true), "--" .. opt.name .. " in the help of " .. name)
      end
      local code2, out2 = run { "help", name }
      assert.are.equal(0, code2)
      assert.are.equal(out, out2)
      local code3, out3 = run { name, "-h" }
      assert.are.equal(0, code3)
      assert.are.equal(out, out3)
    end)
  end

  it("--version prints the module's version", function()
    local code, out = run { "--version" }
    assert.are.equal(0, code)
    assert.are.equal("mmfuse " .. require("mmfuse").version .. "\n", out)
  end)
end)

describe("mmfuse usage errors exit 2", function()
  local cases = {
    { { "bogus" }, "unknown command 'bogus'" },
    { { "--bogus" }, "unknown option %-%-bogus" },
    { { "help", "bogus" }, "unknown command 'bogus'" },
    { { "train" }, "missing MANIFEST" },
    { { "train", MANIFEST, "--out", "x.mmf" }, "%-%-fusion is required" },
    { { "train", MANIFEST, "--fusion", "joint" }, "%-%-out is required" },
    { { "train", MANIFEST, "--fusion", "fancy", "--out", "x.mmf" }, "%-%-fusion must be one of" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--epochs", "abc" }, "%-%-epochs needs an integer" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--epochs", "0" }, "%-%-epochs must be >= 1" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--epochs", "2.5" }, "%-%-epochs needs an integer" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--lr", "-1" }, "%-%-lr must be > 0" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--lr", "nan" }, "%-%-lr needs a number" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--split", "fold" }, "%-%-split must be" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--split", "ratio:0.7:0.5" }, "TEST %+ VALID < 1" },
    { { "train", MANIFEST, "--fusion", "joint", "--out" }, "%-%-out needs a value" },
    { { "train", MANIFEST, "extra", "--fusion", "joint", "--out", "x.mmf" }, "unexpected argument 'extra'" },
    { { "train", MANIFEST, "--quiet=yes", "--fusion", "joint", "--out", "x.mmf" }, "%-%-quiet takes no value" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--tokenizer", "tweets" }, "%-%-tokenizer must be one of" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--class-weights", "inverse" },
      "%-%-class%-weights must be one of" },
    { { "train", MANIFEST, "--fusion", "joint", "--out", "x.mmf", "--vectors", "spec/fixtures/glove/sample.txt", "--dim", "8" },
      "%-%-dim 8 differs from the 100 dimensions of the word vectors" },
    { { "eval", "model.mmf" }, "missing MANIFEST" },
    { { "eval", "model.mmf", MANIFEST, "--part", "middle" }, "%-%-part must be one of" },
    { { "predict" }, "missing MODEL" },
    { { "predict", "a.mmf", "b.mmf" }, "unexpected argument 'b.mmf'" },
    { { "predict", "a.mmf", "--top", "0" }, "%-%-top must be >= 1" },
    { { "experiment" }, "missing CONFIG" },
    { { "info" }, "missing MODEL" },
    { { "info", "a.mmf", "--threads", "0" }, "%-%-threads must be >= 1" },
  }
  for _, c in ipairs(cases) do
    it(table.concat(c[1], " "), function()
      local code, out, err = run(c[1])
      assert_fails(code, 2, err, c[2])
      assert.are.equal("", out)
      assert.truthy(err:find("mmfuse [%w ]*%-%-help"), "points to --help: " .. err)
    end)
  end
end)

describe("mmfuse runtime errors exit 1 without a traceback", function()
  it("a missing manifest", function()
    local code, _, err = run { "train", FIX .. "/nope.tsv", "--fusion", "joint", "--out", tmp("m.mmf") }
    assert_fails(code, 1, err, "nope.tsv")
  end)

  it("a missing word vectors file or image encoder", function()
    local code, _, err = run { "train", MANIFEST, "--fusion", "joint", "--vectors", FIX .. "/nope.vec", "--out", tmp("m.mmf") }
    assert_fails(code, 1, err, "word vectors '" .. FIX .. "/nope.vec'")
    code, _, err = run { "train", MANIFEST, "--fusion", "joint", "--image-encoder", FIX .. "/nope.json", "--out", tmp("m.mmf") }
    assert_fails(code, 1, err, "image encoder '" .. FIX .. "/nope.json'")
  end)

  it("a column the manifest does not have", function()
    local code, _, err = run { "train", MANIFEST, "--fusion", "joint", "--label-col", "colour", "--out", tmp("m.mmf") }
    assert_fails(code, 1, err, "no column 'colour'")
    assert.truthy(err:find("id, text, image, label, fold", 1, true), "lists the columns: " .. err)
  end)

  it("a missing model file (info, eval, predict)", function()
    local missing = tmp("missing.mmf")
    for _, args in ipairs { { "info", missing }, { "eval", missing, MANIFEST }, { "predict", missing, "--text", "x" } } do
      local code, _, err = run(args)
      assert_fails(code, 1, err, "missing.mmf")
    end
  end)

  it("a model file that is not one", function()
    local bad = tmp("garbage.mmf")
    spit(bad, ("\0\1garbage"):rep(20))
    local code, _, err = run { "info", bad }
    assert_fails(code, 1, err)
  end)

  it("--debug shows the traceback", function()
    local code, _, err = run { "info", tmp("missing.mmf"), "--debug" }
    assert.are.equal(1, code)
    assert.truthy(err:match("^mmfuse: "))
    assert.truthy(err:find("stack traceback", 1, true))
    local code2, _, err2 = run { "--debug", "info", tmp("missing.mmf") }
    assert.are.equal(1, code2)
    assert.truthy(err2:find("stack traceback", 1, true))
  end)
end)

describe("mmfuse experiment config sandbox", function()
  local function config(name, src)
    local p = tmp(name)
    spit(p, src)
    return p
  end

  local refused = {
    { "io.lua", "io.open('/tmp/x', 'w')\nreturn {}", "io" },
    { "os.lua", "os.execute('true')\nreturn {}", "os" },
    { "require.lua", "local x = require('os')\nreturn {}", "require" },
    { "load.lua", "load('return 1')()\nreturn {}", "load" },
    { "debug.lua", "debug.sethook()\nreturn {}", "debug" },
    { "meta.lua", "return setmetatable({}, {})", "setmetatable" },
    { "loop.lua", "while true do end", "runs too long" },
    { "syntax.lua", "return {\n  models = { 'text' \n", "syntax.lua:3:" },
    { "func.lua", "return { models = { function() end } }", "config.models%[1%] is a function" },
    { "number.lua", "return 42", "returns a table" },
    { "rep.lua", "return { x = string.rep('x', 1 << 30) }", "too large" },
  }
  for _, c in ipairs(refused) do
    it("refuses " .. c[1], function()
      local code, _, err = run { "experiment", config(c[1], c[2]) }
      assert.are.equal(1, code)
      assert.truthy(err:match("^mmfuse: "))
      assert.is_nil(err:find("stack traceback", 1, true))
      assert.truthy(err:find(c[3]), ("%s: want %q in: %s"):format(c[1], c[3], err))
      assert.truthy(err:find(c[1], 1, true), "names the file: " .. err)
    end)
  end

  it("refuses a binary chunk", function()
    local p = config("binary.lua", string.dump(function() return {} end))
    local code, _, err = run { "experiment", p }
    assert_fails(code, 1, err, "binary chunks are not accepted")
  end)

  it("reports a config without data", function()
    local code, _, err = run { "experiment", config("nodata.lua", "return { models = { 'text' } }") }
    assert_fails(code, 1, err, "config.data must be a table")
  end)

  it("reports an unknown fusion", function()
    local p = config("badmodel.lua", ([[return { data = { manifest = %q, split = "fold:0:1" },
      models = { "text", "quantum" } }]]):format(os.getenv("PWD") .. "/" .. MANIFEST))
    local code, _, err = run { "experiment", p }
    assert_fails(code, 1, err, "config.models%[2%]: unknown fusion 'quantum'")
  end)

  it("loads plain data, from a returned table or from globals", function()
    local a = cli.load_config(config("ret.lua", "local n = 3\nreturn { seeds = { 1, n }, fit = { epochs = 2 * n } }"))
    assert.are.same({ seeds = { 1, 3 }, fit = { epochs = 6 } }, a)
    local b = cli.load_config(config("glob.lua", "seeds = { 7 }\nmodels = { ('joint'):upper():lower() }"))
    assert.are.same({ seeds = { 7 }, models = { "joint" } }, b)
  end)

  it("cannot change the real libraries", function()
    cli.load_config(config("mutate.lua", "string.format = nil\nmath.floor = nil\nreturn {}"))
    assert.is_function(string.format)
    assert.is_function(math.floor)
  end)
end)

describe("mmfuse.cli in-process", function()
  it("parses --name value, --name=value, flags, lists and --", function()
    local cmd = { name = "t", args = { "A" }, rest = true, options = {
      { name = "n", type = "int", default = 5 },
      { name = "x", type = "number" },
      { name = "f", type = "flag" },
      { name = "d", type = "list" },
      { name = "s", short = "s" },
    } }
    local o = cli.parse(cmd, { "a", "--x=0.5", "--f", "--d", "text,image", "--d", "audio", "-s", "-v", "--", "--n" })
    assert.are.equal(5, o.n)
    assert.are.equal(0.5, o.x)
    assert.is_true(o.f)
    assert.are.same({ "text", "image", "audio" }, o.d)
    assert.are.equal("-v", o.s)
    assert.are.same({ "a", "--n" }, o.args)
  end)

  it("parses splits", function()
    assert.is_nil(cli.parse_split("none"))
    assert.are.same({ by = "fold", test = { 0 }, valid = { 1 } }, cli.parse_split("fold:0:1"))
    assert.are.same({ by = "fold", test = { 0, 1 } }, cli.parse_split("fold:0,1"))
    assert.are.same({ by = "split", test = { "test" }, valid = { "dev" } }, cli.parse_split("split:test:dev"))
    assert.are.same({ ratios = { test = 0.2, valid = 0.1 } }, cli.parse_split("ratio:0.2:0.1"))
    assert.has_error(function() cli.parse_split("fold:") end)
    assert.has_error(function() cli.parse_split("ratio:2") end)
  end)

  it("guesses columns and honours explicit ones", function()
    assert.are.same({ text = "text", image = "image", label = "label" }, cli.columns(MANIFEST, {}, true))
    assert.are.same({ image = "image", label = "fold" },
      cli.columns(MANIFEST, { ["text-col"] = "none", ["label-col"] = "fold" }, true))
    assert.has_error(function() cli.columns(MANIFEST, { ["text-col"] = "none", ["image-col"] = "none" }) end)
  end)

  it("aligns tables", function()
    local s = cli.table_text({ "class", "F1" }, { { "a", 0.5 }, { "longer", 1 } })
    local lines = {}
    for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    assert.are.equal(#lines[2], #lines[3])
    assert.truthy(lines[2]:find("0.500", 1, true))
  end)

  it("strips source positions from messages", function()
    assert.are.equal("boom", cli.clean_message("lua/mmfuse/model.lua:12: boom"))
    assert.are.equal("x.tsv:3: bad row", cli.clean_message("x.tsv:3: bad row"))
  end)
end)

describe("mmfuse with a trained model", function()
  local cjson = require "cjson"
  local mm = require "mmfuse"
  local model_path
  local train_out, train_err

  local function model_file()
    if not model_path then
      model_path = tmp("posts.mmf")
      local code
      code, train_out, train_err = run { "train", MANIFEST, "--fusion", "joint", "--split", "fold:0:1", "--epochs", "2",
        "--dim", "8", "--buckets", "100", "--seed", "3", "--out", model_path }
      assert.are.equal(0, code, train_err)
    end
    return model_path
  end

  -- the same data as the command sees it, in-process
  local function test_part(model)
    local ds = mm.data.load(MANIFEST, { text = "text", image = "image", label = "label", classes = model.classes })
    local _, _, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
    return test
  end

  it("train saves a model, reports progress on stderr and test metrics on stdout", function()
    local path = model_file()
    assert.is_string(slurp(path))
    assert.truthy(train_out:find("trained joint on 18 rows", 1, true), train_out)
    assert.truthy(train_out:find("test part (9 rows)", 1, true), train_out)
    assert.truthy(train_out:find("\naccuracy ", 1, true), train_out)
    assert.truthy(train_err:find("epoch 1/2", 1, true), train_err)
    assert.truthy(train_err:find("epoch 2/2", 1, true), train_err)
    local model = mm.load(path)
    assert.are.same({ "blue", "green", "red" }, model.classes)
  end)

  it("train --quiet prints no progress; a ratio split and a CSV-free guess of columns work", function()
    local out = tmp("ratio.mmf")
    local code, stdout, err = run { "train", MANIFEST, "--fusion", "text", "--split", "ratio:0.25:0.25", "--epochs", "1",
      "--buckets", "50", "--dim", "4", "--quiet", "--out", out }
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    assert.truthy(stdout:find("trained text on 18 rows", 1, true), stdout)
  end)

  it("train --tokenizer posts --vectors --class-weights --image-encoder: the model records them, eval agrees", function()
    local path, cache = tmp("pre.mmf"), tmp("cache/features")
    local enc = "spec/fixtures/tfjs_layers/sequential_small/model.json"
    local code, out, err = run { "train", MANIFEST, "--fusion", "early", "--split", "fold:0:1", "--epochs", "2",
      "--tokenizer", "posts", "--vectors", "spec/fixtures/glove/sample.txt", "--class-weights", "balanced",
      "--image-encoder", enc, "--cache", cache, "--quiet", "--out", path }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("trained early on 18 rows", 1, true), out)
    local model = mm.load(path)
    local c = model:config()
    assert.are.equal(100, c.dim) -- the vectors' dimension
    assert.are.equal("user", c.mentions) -- the post tokenizer's options
    assert.is_true(c.hashtags and c.urls and c.emoticons)
    assert.are.equal(enc, c.backbone.arch)
    local cached = 0
    for f in io.popen("ls " .. q(cache)):lines() do cached = cached + (f:match("%.npy$") and 1 or 0) end
    assert.is_true(cached >= 1, "the encoder's features are cached in --cache")
    local want = model:evaluate(test_part(model))
    local code2, out2, err2 = run { "eval", path, MANIFEST, "--split", "fold:0:1", "--json" }
    assert.are.equal(0, code2, err2)
    local r = cjson.decode(out2)
    assert.are.same(want.confusion, r.confusion)
  end)

  it("train --stream and eval --stream: the manifest read as a stream, the metrics of the in-memory eval", function()
    local path = tmp("stream.mmf")
    local code, out, err = run { "train", MANIFEST, "--stream", "--fusion", "joint", "--split", "fold:0:1", "--epochs", "2",
      "--dim", "8", "--buckets", "100", "--quiet", "--out", path }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("trained joint on 18 rows", 1, true), out) -- the rows an epoch of the training part read
    assert.truthy(out:find("test part (9 rows)", 1, true), out)
    local code1, mem = run { "eval", path, MANIFEST, "--split", "fold:0:1", "--json" }
    local code2, str, err2 = run { "eval", path, MANIFEST, "--split", "fold:0:1", "--json", "--stream" }
    assert.are.equal(0, code1)
    assert.are.equal(0, code2, err2)
    mem, str = cjson.decode(mem), cjson.decode(str)
    assert.are.same(mem.confusion, str.confusion)
    assert.are.equal(mem.n, str.n)
    assert.is_true(math.abs(mem.log_loss - str.log_loss) <= 1e-6 * math.max(1, mem.log_loss))
  end)

  it("train --stream reads a quoted glob of shards; no match, an empty part: exit 1", function()
    local lines = {}
    for l in io.lines(MANIFEST) do lines[#lines + 1] = l:gsub("\t[^\t]*\t([^\t]*\t[^\t]*)$", "\t%1") end
    -- two shards without the image column (its paths are relative to the fixture's folder)
    local a, b = { lines[1] }, { lines[1] }
    for i = 2, #lines do table.insert(i <= 14 and a or b, lines[i]) end
    spit(tmp("shard-1.tsv"), table.concat(a, "\n") .. "\n")
    spit(tmp("shard-2.tsv"), table.concat(b, "\n") .. "\n")
    local code, out, err = run { "train", tmp("shard-*.tsv"), "--stream", "--fusion", "text", "--epochs", "1",
      "--buckets", "50", "--dim", "4", "--quiet", "--out", tmp("shards.mmf") }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("trained text on " .. (#lines - 1) .. " rows", 1, true), out)
    code, _, err = run { "train", tmp("none-*.tsv"), "--stream", "--fusion", "text", "--out", tmp("x.mmf") }
    assert_fails(code, 1, err, "no manifest matches")
    code, _, err = run { "train", MANIFEST, "--stream", "--fusion", "text", "--split", "fold:7:8", "--out", tmp("x.mmf") }
    assert_fails(code, 1, err, "validation data has no rows")
    code, _, err = run { "eval", tmp("shards.mmf"), tmp("shard-*.tsv"), "--stream", "--split", "fold:7" }
    assert_fails(code, 1, err, "the test part is empty")
  end)

  it("train into a folder that does not exist fails with exit 1", function()
    local code, _, err = run { "train", MANIFEST, "--fusion", "text", "--epochs", "1", "--buckets", "50", "--quiet",
      "--out", tmp("no/such/dir/m.mmf") }
    assert_fails(code, 1, err, "no/such/dir")
  end)

  it("eval prints the metrics of model:evaluate", function()
    local path = model_file()
    local model = mm.load(path)
    local want = model:evaluate(test_part(model))
    local code, out, err = run { "eval", path, MANIFEST, "--split", "fold:0:1", "--confusion" }
    assert.are.equal(0, code, err)
    assert.truthy(out:find(("accuracy    %.4f"):format(want.accuracy), 1, true), out)
    assert.truthy(out:find(("macro-F1    %.4f"):format(want.macro_f1), 1, true), out)
    for i, c in ipairs(model.classes) do
      assert.truthy(out:find("\n" .. c .. " ", 1, true), "row for class " .. c)
      assert.truthy(out:find(("\n%d %s "):format(i, c), 1, true), "confusion row for class " .. c)
    end
  end)

  it("eval --drop and --json agree with model:evaluate{drop=}", function()
    local path = model_file()
    local model = mm.load(path)
    for _, drop in ipairs { "image", "text" } do
      local want = model:evaluate(test_part(model), { drop = drop })
      local code, out, err = run { "eval", path, MANIFEST, "--split", "fold:0", "--drop", drop, "--json" }
      assert.are.equal(0, code, err)
      local r = cjson.decode(out)
      assert.are.equal(want.n, r.n)
      assert.is_true(math.abs(want.accuracy - r.accuracy) < 1e-9)
      assert.is_true(math.abs(want.log_loss - r.log_loss) < 1e-6)
      assert.are.same(want.confusion, r.confusion)
    end
  end)

  it("eval --drop of a modality the model does not have is a usage error", function()
    local code, _, err = run { "eval", model_file(), MANIFEST, "--drop", "audio" }
    assert_fails(code, 2, err, "the model has no modality 'audio' %(it has text, image%)")
  end)

  it("eval on a manifest with a label the model does not know fails with exit 1", function()
    local bad = tmp("unknown.tsv")
    spit(bad, "text\timage\tlabel\nfire\t\tred\nsky\t\tpurple\n")
    local code, _, err = run { "eval", model_file(), bad }
    assert_fails(code, 1, err, "purple")
  end)

  it("predict one post: the class model:predict gives, then the top probabilities", function()
    local path = model_file()
    local model = mm.load(path)
    local img = FIX .. "/img/red2.png"
    local name, probs = model:predict { text = "fire rose", image = img }
    local code, out, err = run { "predict", path, "--text", "fire rose", "--image", img }
    assert.are.equal(0, code, err)
    assert.are.equal(name, out:match("^([^\n]+)"))
    assert.truthy(out:find(("%.4f"):format(probs[name]), 1, true))
    local code2, out2 = run { "predict", path, "--text", "fire rose", "--json" }
    assert.are.equal(0, code2)
    local rec = cjson.decode(out2)
    local sum = 0
    for _, c in ipairs(model.classes) do sum = sum + rec.probs[c] end
    assert.is_true(math.abs(sum - 1) < 1e-5)
    assert.are.equal((model:predict { text = "fire rose" }), rec.label)
  end)

  it("predict --image of a missing file fails with exit 1", function()
    local code, _, err = run { "predict", model_file(), "--image", tmp("none.png") }
    assert_fails(code, 1, err, "none.png")
  end)

  it("predict reads JSONL on stdin and writes one JSON line per post", function()
    local path = model_file()
    local model = mm.load(path)
    local posts = {
      { id = 1, text = "sea sky" },
      { id = "b", image = FIX .. "/img/green3.png" },
      { id = 3, text = "leaf", image = FIX .. "/img/green4.png" },
    }
    local lines = {}
    for i, p in ipairs(posts) do lines[i] = cjson.encode(p) end
    local code, out, err = run({ "predict", path }, table.concat(lines, "\n") .. "\n\n")
    assert.are.equal(0, code, err)
    local got = {}
    for l in out:gmatch("[^\n]+") do got[#got + 1] = cjson.decode(l) end
    assert.are.equal(#posts, #got)
    for i, p in ipairs(posts) do
      assert.are.equal(p.id, got[i].id)
      assert.are.equal((model:predict { text = p.text, image = p.image }), got[i].label)
    end
  end)

  it("predict in a batch reports bad lines and exits 1, keeping the good ones", function()
    local input = table.concat({
      '{"id": 1, "text": "fire"}',
      "this is not json",
      '{"id": 2, "text": 5}',
      '{"id": 3, "image": "' .. tmp("absent.png") .. '"}',
      "[1, 2]",
      "{\"id\": 5, \"text\": null}",
      '{"id": 4, "text": "ice"}',
    }, "\n")
    local code, out, err = run({ "predict", model_file() }, input)
    assert.are.equal(1, code)
    assert.truthy(err:find("mmfuse: 5 of 7 lines failed", 1, true), err)
    local got = {}
    for l in out:gmatch("[^\n]+") do got[#got + 1] = cjson.decode(l) end
    assert.are.equal(7, #got)
    assert.is_string(got[1].label)
    assert.are.equal(2, got[2].line)
    assert.truthy(got[2].error:find("not a JSON object", 1, true))
    assert.truthy(got[3].error:find('"text" must be a string', 1, true))
    assert.are.equal(3, got[4].id)
    assert.truthy(got[4].error:find("absent.png", 1, true))
    assert.is_nil(got[4].error:find("%.lua:%d+"), "no source positions: " .. got[4].error)
    assert.truthy(got[5].error:find("not a JSON object", 1, true))
    assert.are.equal(5, got[6].id)
    assert.truthy(got[6].error:find('needs "text" and/or "image"', 1, true))
    assert.is_string(got[7].label)
  end)

  it("info shows classes, parameter count, configuration and the architecture", function()
    local path = model_file()
    local model = mm.load(path)
    local code, out, err = run { "info", path }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("classes     3: blue, green, red", 1, true), out)
    assert.truthy(out:find("parameters  " .. model:nparams(), 1, true), out)
    assert.truthy(out:find("fusion       joint", 1, true), out)
    assert.truthy(out:find(tostring(model), 1, true), out)
    local code2, out2 = run { "info", path, "--json" }
    assert.are.equal(0, code2)
    local info = cjson.decode(out2)
    assert.are.same(model.classes, info.classes)
    assert.are.equal(#slurp(path), info.bytes)
    assert.are.equal("joint", info.config.fusion)
  end)

  it("a truncated or corrupted model file is an error naming the file", function()
    local bytes = slurp(model_file())
    local cut = tmp("cut.mmf")
    spit(cut, bytes:sub(1, #bytes // 2))
    for _, args in ipairs { { "info", cut }, { "eval", cut, MANIFEST }, { "predict", cut, "--text", "x" } } do
      local code, _, err = run(args)
      assert_fails(code, 1, err, "cut.mmf")
    end
    local bad = tmp("garbage2.mmf")
    spit(bad, ("\0\1garbage"):rep(20))
    local code, _, err = run { "info", bad }
    assert_fails(code, 1, err, "garbage2.mmf")
  end)
end)

describe("mmfuse experiment", function()
  local cjson = require "cjson"
  it("runs the grid of a config and prints the tables and claims", function()
    local json_path = tmp("grid.json")
    local code, out, err = run { "experiment", FIX .. "/grid.lua", "--results", json_path }
    assert.are.equal(0, code, err)
    local cfg = cli.load_config(FIX .. "/grid.lua")
    for _, m in ipairs(cfg.models) do
      assert.truthy(out:find("\n| " .. m .. " |", 1, true), "a table row for " .. m)
    end
    assert.truthy(out:find("**C1 ", 1, true))
    assert.truthy(err:find(("[%d/%d]"):format(#cfg.models * #cfg.seeds, #cfg.models * #cfg.seeds), 1, true), err)
    local res = cjson.decode(slurp(json_path)).tasks[1]
    -- one run per model x seed x (conditions + validation)
    assert.are.equal(#cfg.models * #cfg.seeds * (#cfg.conditions + 1), #res.runs)
    for _, r in ipairs(res.runs) do
      assert.is_true(r.accuracy >= 0 and r.accuracy <= 1)
    end
  end)

  it("--check validates without training", function()
    local code, out, err = run { "experiment", FIX .. "/grid.lua", "--check", "--quiet" }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("config ok: 3 models x 2 seeds x 3 conditions; 18 train, 9 valid, 9 test rows", 1, true), out)
    assert.are.equal("", err)
  end)

  it("runs a config's variant, narrowed from the command line", function()
    local p = tmp("variants.lua")
    spit(p, ([[return { data = { manifest = %q, text = "text", image = "image", split = "fold:0:1" },
      tasks = { { name = "colour", label = "label" }, { name = "again", label = "label", fit = { epochs = 1 } } },
      models = { "text", "joint-max", "commonspace" }, seeds = { 1, 2, 3 }, fit = { epochs = 3 },
      variants = { quick = { seeds = { 4 }, fit = { batch = 4 } } } }]]):format(os.getenv("PWD") .. "/" .. MANIFEST))
    local code, out, err = run { "experiment", p, "--variant", "quick", "--check" }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("config ok (colour): 3 models x 1 seeds x 3 conditions", 1, true), out)
    assert.truthy(out:find("config ok (again): 3 models x 1 seeds", 1, true), out)
    local dir = tmp("variant-out")
    code, out, err = run { "experiment", p, "--variant", "quick", "--tasks", "again", "--models", "joint-max",
      "--epochs", "2", "--out", dir }
    assert.are.equal(0, code, err)
    assert.truthy(out:find("quick variant: 1 seed(s), up to 2 epochs", 1, true), out)
    assert.truthy(out:find("\n| joint-max |", 1, true), out)
    assert.is_nil(out:find("\n| text |", 1, true), out)
    local res = cjson.decode(slurp(dir .. "/results.json"))
    assert.are.equal(1, #res.tasks)
    assert.are.equal("again", res.tasks[1].task)
    assert.are.same({ 4 }, res.tasks[1].seeds)
    assert.truthy(slurp(dir .. "/report.html"):find("<svg", 1, true))
    assert.truthy(slurp(dir .. "/results.md"):find("| joint-max |", 1, true))
    for _, c in ipairs {
      { { "--variant", "nope" }, "no variant 'nope' %(the config has: quick%)" },
      { { "--tasks", "colour,nope" }, "no task 'nope' %(the config has: again, colour%)" },
      { { "--models", "late" }, "no model 'late'" },
    } do
      local args = { "experiment", p, "--check" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      code, _, err = run(args)
      assert_fails(code, 1, err, c[2])
    end
  end)
end)

describe("mmfuse examples in the docs", function()
  -- words of a shell line (plain, '...' and "..." words)
  local function words(line)
    local out, i = {}, 1
    while i <= #line do
      local c = line:sub(i, i)
      if c:match("%s") then
        i = i + 1
      elseif c == "'" or c == '"' then
        local j = line:find(c, i + 1, true) or (#line + 1)
        out[#out + 1] = line:sub(i + 1, j - 1)
        i = j + 1
      else
        local j = line:find("[%s'\"]", i) or (#line + 1)
        out[#out + 1] = line:sub(i, j - 1)
        i = j
      end
    end
    return out
  end

  -- every "mmfuse COMMAND ..." invocation in a text (continuation lines joined)
  local function invocations(text)
    text = text:gsub("%s*\\\n%s*", " ")
    local found = {}
    for line in text:gmatch("[^\n]+") do
      local rest = line:match("%f[%w/]bin/mmfuse (.*)$") or line:match("^%s*mmfuse (.*)$")
        or line:match("%$ mmfuse (.*)$")
      if rest then
        -- drop redirections/pipes and a trailing comment set off by 2+ spaces
        rest = rest:gsub("%s*[<>|].*$", ""):gsub("%s%s+%S.*$", "")
        local argv, synopsis = words(rest), rest:find("[", 1, true) ~= nil
        for _, w in ipairs(argv) do
          -- a synopsis line (metavars like MANIFEST, N, CONFIG.lua) is not a runnable example
          if w:match("^%u[%u_]*$") or w:match("^%u+%.%a+$") then synopsis = true end
        end
        if not synopsis then found[#found + 1] = argv end
      end
    end
    return found
  end

  local sources = {
    { "README.md", slurp("README.md") },
    { "mm.help('cli')", require("mmfuse.help").text("cli") },
    { "mmfuse --help", cli.help() },
  }
  for _, name in ipairs(cli.commands()) do sources[#sources + 1] = { "mmfuse " .. name .. " --help", cli.help(name) } end

  it("parse with the options the commands really have", function()
    local n = 0
    for _, src in ipairs(sources) do
      for _, argv in ipairs(invocations(src[2] or "")) do
        local name = table.remove(argv, 1)
        local spec = cli.spec(name)
        if name and name:match("^%l+$") then
          assert.is_table(spec, ("%s: unknown command '%s'"):format(src[1], tostring(name)))
          local ok, err = pcall(cli.parse, spec, argv)
          assert.is_true(ok, ("%s: mmfuse %s %s: %s"):format(src[1], name, table.concat(argv, " "), tostring(err)))
          n = n + 1
        end
      end
    end
    assert.truthy(n >= 12, "checked " .. n .. " examples")
  end)

  it("name files that exist", function()
    for _, argv in ipairs(invocations(slurp("README.md"))) do
      for _, a in ipairs(argv) do
        if a:match("^[%w_./-]+/[%w_.-]+%.%a+$") and not a:match("%.mmf$") and not a:match("%.html$") then
          assert.is_string(slurp(a), "README.md names " .. a)
        end
      end
    end
  end)
end)

teardown(function()
  if tmpdir and tmpdir:match("^/tmp/") then os.execute("rm -rf " .. q(tmpdir)) end
end)
