-- mmfuse.progress: mode detection, plain lines, the bar, ETA with a fake clock.
local progress = require "mmfuse.progress"

local function sink()
  local s = { buf = {} }
  function s:write(...) for _, v in ipairs{ ... } do self.buf[#self.buf + 1] = tostring(v) end return self end
  function s:flush() end
  function s:text() return table.concat(self.buf) end
  return s
end

local function env(t) return function(k) return t[k] end end

local function fake_clock()
  local c = { now = 100 }
  c.fn = function() return c.now end
  return c
end

describe("progress.mode", function()
  it("obeys MMFUSE_PROGRESS and an explicit mode", function()
    assert.equal("off", progress.mode(nil, nil, env{ MMFUSE_PROGRESS = "off", TERM = "xterm" }))
    assert.equal("bar", progress.mode(nil, nil, env{ MMFUSE_PROGRESS = "bar" }))
    assert.equal("plain", progress.mode("plain", nil, env{ MMFUSE_PROGRESS = "bar" }))
  end)

  it("is plain without a usable TERM", function()
    assert.equal("plain", progress.mode(nil, nil, env{}))
    assert.equal("plain", progress.mode(nil, nil, env{ TERM = "dumb" }))
  end)

  it("is plain when the stream is not a terminal (busted's output is captured)", function()
    -- stdout of this process under the spec runner is a pipe or file when
    -- run by make; either way the answer must agree with test -t
    local tty = os.execute("test -t 1") == true
    assert.equal(tty and "bar" or "plain", progress.mode(nil, io.stdout, env{ TERM = "xterm" }))
  end)

  it("rejects an unknown mode", function()
    local ok, err = pcall(progress.mode, nil, nil, env{ MMFUSE_PROGRESS = "fancy" })
    assert.is_false(ok)
    assert.truthy(err:find("'bar', 'plain' or 'off'", 1, true))
    assert.truthy(err:find('"fancy"', 1, true))
  end)
end)

describe("progress.hms", function()
  it("formats seconds", function()
    assert.equal("0:07", progress.hms(7))
    assert.equal("2:05", progress.hms(125))
    assert.equal("1:01:01", progress.hms(3661))
    assert.equal("?", progress.hms(nil))
    assert.equal("?", progress.hms(0 / 0))
  end)
end)

describe("progress display", function()
  it("prints one plain line per finished epoch and one per run", function()
    local out, clk = sink(), fake_clock()
    local p = progress.new{ label = "joint-max seed 1", epochs = 2, mode = "plain", out = out, clock = clk.fn,
                            plain_interval = 0 }
    p:update{ epoch = 1, batch = 3 } -- mid-epoch: nothing in plain mode
    assert.equal("", out:text())
    clk.now = 110
    p:epoch(1, { loss = 0.5, accuracy = 0.75, samples = 1000, seconds = 10 })
    assert.equal("joint-max seed 1  epoch 1/2  loss 0.5000  acc 0.750  100 samples/s  ETA 0:10\n", out:text())
    clk.now = 120
    p:epoch(2, { loss = 0.25 })
    p:done("valid 0.8")
    local lines = {}
    for l in out:text():gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(3, #lines)
    assert.equal("joint-max seed 1  epoch 2/2  loss 0.2500  acc 0.750  100 samples/s  done in 0:20  valid 0.8", lines[3])
  end)

  it("keeps plain logs short: epoch lines at most every plain_interval seconds", function()
    local out, clk = sink(), fake_clock()
    local p = progress.new{ label = "x", epochs = 10, mode = "plain", out = out, clock = clk.fn, plain_interval = 10 }
    for e = 1, 10 do
      clk.now = 100 + 3 * e
      p:epoch(e, { loss = 1 / e })
    end
    p:done()
    local n = 0
    for _ in out:text():gmatch("\n") do n = n + 1 end
    -- epochs end at 103..130: lines at 3 s intervals => at 112, 124, plus the done line
    assert.equal(3, n)
    assert.truthy(out:text():find("x  epoch 4/10", 1, true))
    assert.truthy(out:text():find("x  epoch 8/10", 1, true))
  end)

  it("draws a bar with \\r, epoch, batch, loss, accuracy, samples/s and ETA", function()
    local out, clk = sink(), fake_clock()
    local p = progress.new{ label = "text", epochs = 4, batches = 10, mode = "bar", out = out, clock = clk.fn,
                            width = 10, interval = 0 }
    clk.now = 105
    p:update{ epoch = 1, batch = 5, loss = 1.25, accuracy = 0.5, samples = 160 }
    local t = out:text()
    assert.truthy(t:find("\r\27[K[#.........] text  epoch 1/4  batch 5/10  loss 1.2500  acc 0.500", 1, true))
    -- 1/8 of the run done in 5 s: 35 s left
    assert.truthy(t:find("ETA 0:35", 1, true))
    assert.is_nil(t:find("\n", 1, true))
    p:done()
    assert.equal("\n", out:text():sub(-1))
  end)

  it("estimates the ETA of a whole grid of runs", function()
    local out, clk = sink(), fake_clock()
    local p = progress.new{ epochs = 2, mode = "plain", out = out, clock = clk.fn, runs = 4, run = 2, grid_done = 30 }
    clk.now = 110
    p:epoch(1, {})
    -- this run: 10 s for half => 10 s left; two more runs at 30 s each
    assert.equal(70, p:eta())
    assert.truthy(out:text():find("^%[2/4%]"))
  end)

  it("is silent when off", function()
    local out = sink()
    local p = progress.new{ epochs = 1, mode = "off", out = out }
    p:epoch(1, { loss = 1 })
    p:done("x")
    assert.equal("", out:text())
  end)
end)
