-- mm.help: the topics exist, say only true things about the API (every name
-- they mention resolves), and work from the REPL (`lua5.4 -i -l mm=mmfuse`).
local mm = require "mmfuse"
local help = require "mmfuse.help"

local CPATH = os.getenv("MMFUSE_CPATH") or package.cpath:match("[^;]+")
local MANIFEST = "spec/fixtures/cli/posts.tsv"

-- what help prints, captured
local function printed(...)
  local path = os.tmpname()
  local old = io.output()
  io.output(path)
  local ok, err = pcall(help, ...)
  io.output():close()
  io.output(old)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  os.remove(path)
  assert(ok, err)
  return s
end

local function all_text()
  local parts = {}
  for _, t in ipairs(help.topics) do parts[#parts + 1] = assert(help.text(t)) end
  return table.concat(parts, "\n")
end

-- a small trained model, dataset and result for the method checks
local fixture
local function trained()
  if not fixture then
    local ds = mm.data.load(MANIFEST, { text = "text", image = "image", label = "label" })
    local train, valid, test = ds:split { by = "fold", test = { 0 }, valid = { 1 } }
    local model = mm.model { fusion = "joint", dim = 8, classes = ds.classes, text = { buckets = 100 } }
    model:fit(train, { epochs = 1, valid = valid })
    fixture = { ds = ds, model = model, result = model:evaluate(test) }
  end
  return fixture
end

describe("mm.help", function()
  it("lists every topic with a one-line summary", function()
    local s = printed()
    for _, t in ipairs(help.topics) do
      assert.truthy(s:find("\n  " .. t .. " ", 1, true), "topic " .. t .. " listed")
    end
    assert.are.equal(help.text(), s)
  end)

  it("covers the topics the issue names", function()
    local want = { "tensor", "nn", "text", "image", "data", "model", "fusion", "evaluate", "save", "cli" }
    for _, t in ipairs(want) do
      local s = help.text(t)
      assert.is_string(s)
      assert.truthy(#s > 100, t .. " has real text")
      assert.are.equal(s, printed(t))
      local n = 0
      for line in s:gmatch("[^\n]*\n") do
        n = n + 1
        assert.truthy(utf8.len(line) <= 100, t .. ": line too wide: " .. line)
      end
      assert.truthy(n <= 30, t .. " stays short (" .. n .. " lines)")
    end
  end)

  it("is case- and space-tolerant and searches other words", function()
    assert.are.equal(help.text("model"), help.text(" Model "))
    local s = help.text("softmax")
    assert.is_string(s)
    for line in s:gmatch("[^\n]+") do
      assert.truthy(line:lower():find("softmax", 1, true))
      assert.truthy(line:match("^%[%a+%] "), "tagged with its topic: " .. line)
    end
  end)

  it("says so for an unknown topic, without an error", function()
    local s, msg = help.text("no-such-thing")
    assert.is_nil(s)
    assert.truthy(msg:find("no help on 'no-such-thing'", 1, true))
    assert.truthy(msg:find("tensor, nn, text", 1, true))
    assert.truthy(printed("no-such-thing"):find("topics:", 1, true))
    local s2, msg2 = help.text(42)
    assert.is_nil(s2)
    assert.truthy(msg2:find("no help for a number", 1, true))
  end)

  it("finds the topic of a value", function()
    assert.are.equal(help.text("nn"), help.text(mm.nn.linear))
    assert.are.equal(help.text("nn"), help.text(mm.nn))
    assert.are.equal(help.text("tensor"), help.text(mm.tensor { 1, 2 }))
    assert.are.equal(help.text("tensor"), help.text(mm.randn))
    assert.are.equal(help.text("text"), help.text(mm.text.tokenize))
    assert.are.equal(help.text("image"), help.text(mm.image.load))
    assert.are.equal(help.text("model"), help.text(mm.model))
    assert.are.equal(help.text("save"), help.text(mm.load))
    local f = trained()
    assert.are.equal(help.text("data"), help.text(f.ds))
    assert.are.equal(help.text("model"), help.text(f.model))
    assert.are.equal(help.text("evaluate"), help.text(f.result))
  end)

  it("names only functions that exist: mm.area.name and mm.name", function()
    local text, n = all_text(), 0
    for area, name in text:gmatch("mm%.([%a_][%w_]*)%.([%a_][%w_]*)") do
      assert.is_table(mm[area], "mm." .. area)
      assert.is_not_nil(mm[area][name], ("mm.%s.%s is in the help but not in the API"):format(area, name))
      n = n + 1
    end
    for name in text:gmatch("mm%.([%a_][%w_]*)[%({\"]") do
      assert.is_not_nil(mm[name], ("mm.%s is in the help but not in the API"):format(name))
      n = n + 1
    end
    assert.truthy(n > 40, "checked " .. n .. " names")
  end)

  it("names only methods that exist on tensors, vocabularies, datasets, models", function()
    local text = all_text()
    local f = trained()
    local objects = {
      t = mm.tensor { { 1, 2 }, { 3, 4 } },
      v = mm.text.vocab({ "cat face" }, {}),
      ds = f.ds, train = f.ds, test = f.ds,
      model = f.model,
      b = mm.image.backbone("mobilenet_v2"),
      net = mm.image.backbone("spec/fixtures/tfjs_layers/sequential_small/model.json"),
    }
    local n = 0
    for obj, method in text:gmatch("%f[%w_]([%a_]+):([%a_][%w_]*)%(") do
      local o = objects[obj]
      assert.is_not_nil(o, "an object the spec knows: " .. obj)
      assert.is_function(o[method], ("%s:%s is in the help but not in the API"):format(obj, method))
      n = n + 1
    end
    for field in text:gmatch("%f[%w_]r%.([%a_][%w_]*)") do
      assert.is_not_nil(f.result[field], "r." .. field .. " is in the help but not in a result")
      n = n + 1
    end
    assert.truthy(n > 30, "checked " .. n .. " methods")
  end)

  it("lists every fusion mm.model accepts, and nothing else", function()
    local fusion = help.text("fusion")
    for name in fusion:gmatch('"(%a+)"') do
      if name ~= "max" and name ~= "mean" and name ~= "sum" and name ~= "missing" then
        local ok, err = pcall(mm.model, { fusion = name, classes = { "a", "b" } })
        assert.is_true(ok, "fusion " .. name .. ": " .. tostring(err))
      end
    end
    assert.is_false(pcall(mm.model, { fusion = "nope", classes = { "a", "b" } }))
  end)

  it("works in the REPL: lua5.4 -i -l mm=mmfuse", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write("mm.help = mm.help or require 'mmfuse.help'\n", "mm.help()\n", "mm.help('fusion')\n",
      "print(mm.tensor{ {1, 2}, {3, 4} }:sum())\n", "os.exit(0)\n")
    f:close()
    local out = os.tmpname()
    local cmd = ("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='%s;;' lua5.4 -i -l mm=mmfuse < %s > %s 2>&1")
      :format(CPATH, script, out)
    local ok = os.execute(cmd)
    local r = assert(io.open(out, "rb"))
    local s = r:read("a")
    r:close()
    os.remove(script)
    os.remove(out)
    assert.is_true(ok == true or ok == 0, s)
    assert.truthy(s:find("mm.help(topic) with topic one of:", 1, true), s)
    assert.truthy(s:find('"commonspace"', 1, true), s)
    assert.truthy(s:find("10", 1, true), s)
  end)
end)
