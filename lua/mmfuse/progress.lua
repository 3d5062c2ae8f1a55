--- mmfuse.progress: training progress on a terminal, plain lines elsewhere.
--
--   local progress = require "mmfuse.progress"
--   local p = progress.new{ label = "joint-max seed 1", epochs = 10, batches = 40,
--                           runs = 70, run = 12 }
--   p:update{ epoch = 3, batch = 17, loss = 0.52, accuracy = 0.81, samples = 544 }
--   p:done("valid macro-F1 0.78")
--
-- Mode: MMFUSE_PROGRESS=bar|plain|off, else "bar" when the output stream is a
-- terminal (TERM set, not "dumb", and `test -t <fd>` succeeds), else "plain".
-- Bar mode redraws one line (\r) at most every `interval` seconds; plain mode
-- prints a line for a finished epoch when `plain_interval` seconds (default
-- 10) have passed since its last line, and one line per finished run (so a
-- log stays short when runs are quick). Progress goes
-- to stderr by default so that stdout (the Markdown tables) stays clean.
local progress = {}

local MODES = { bar = true, plain = true, off = true }

--- Is the given stream (io.stdout or io.stderr) a terminal?
function progress.isatty(stream)
  local fd = (stream == io.stdout) and 1 or 2
  -- os.execute runs the shell with our own descriptors (io.popen would
  -- replace fd 1 with its pipe), so `test -t` sees the real stream.
  local ok = os.execute("test -t " .. fd)
  return ok == true or ok == 0
end

--- The mode to use: an explicit value, MMFUSE_PROGRESS, or terminal detection.
function progress.mode(explicit, stream, env)
  env = env or os.getenv
  local m = explicit or env("MMFUSE_PROGRESS")
  if m ~= nil and m ~= "" then
    if not MODES[m] then
      error(("progress mode must be 'bar', 'plain' or 'off' (got %q)"):format(tostring(m)), 2)
    end
    return m
  end
  local term = env("TERM")
  if term == nil or term == "" or term == "dumb" then return "plain" end
  return progress.isatty(stream or io.stderr) and "bar" or "plain"
end

--- Seconds as "m:ss" or "h:mm:ss".
function progress.hms(s)
  if s == nil or s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end

local function wallclock()
  -- a monotonic wall clock from the core when it has one, else the CPU
  -- clock (sub-second; an over-estimate when several threads work, which
  -- only scales the ETA and samples/s)
  local ok, core = pcall(require, "mmfuse.core")
  if ok and type(core) == "table" and type(core.clock) == "function" then return core.clock end
  return os.clock
end

local Progress = {}
Progress.__index = Progress

--- New progress display. opts: label, epochs, batches (per epoch, optional),
-- runs / run (position in a grid, for a whole-grid ETA), mode, out (stream),
-- width (bar cells), interval (s between redraws), clock (function -> seconds).
function progress.new(opts)
  opts = opts or {}
  local out = opts.out or io.stderr
  local self = setmetatable({
    label = opts.label or "",
    epochs = opts.epochs or 1,
    batches = opts.batches,
    runs = opts.runs or 1,
    run = opts.run or 1,
    out = out,
    width = opts.width or 24,
    interval = opts.interval or 0.2,
    plain_interval = opts.plain_interval or 10,
    clock = opts.clock or wallclock(),
    mode = opts.mode or progress.mode(nil, out),
    grid_start = opts.grid_start,
    grid_done = opts.grid_done, -- seconds spent on earlier runs (for ETA)
    state = {},
  }, Progress)
  if not MODES[self.mode] then
    error(("progress mode must be 'bar', 'plain' or 'off' (got %q)"):format(tostring(self.mode)), 2)
  end
  self.start = self.clock()
  self.last_draw = -math.huge
  self.last_plain = self.start
  return self
end

-- fraction of this run that is done
function Progress:fraction()
  local s = self.state
  local e = s.epoch or 0
  local f
  if s.batch and self.batches and self.batches > 0 and not s.epoch_done then
    f = ((e - 1) + s.batch / self.batches) / self.epochs
  else
    f = e / self.epochs
  end
  if f < 0 then f = 0 elseif f > 1 then f = 1 end
  return f
end

--- Seconds left for the whole grid (nil when nothing is known yet).
function Progress:eta()
  local f = self:fraction()
  local elapsed = self.clock() - self.start
  if f <= 0 or elapsed <= 0 then return nil end
  local per_run = elapsed / f
  local left = per_run * (1 - f)
  if self.runs > self.run then
    -- later runs: use the mean of finished runs when known, else this one
    local mean_run = per_run
    if self.grid_done and self.run > 1 then mean_run = self.grid_done / (self.run - 1) end
    left = left + mean_run * (self.runs - self.run)
  end
  return left
end

function Progress:line()
  local s = self.state
  local parts = {}
  if self.runs > 1 then parts[#parts + 1] = ("[%d/%d]"):format(self.run, self.runs) end
  if self.label ~= "" then parts[#parts + 1] = self.label end
  parts[#parts + 1] = ("epoch %d/%d"):format(s.epoch or 0, self.epochs)
  if s.batch and self.batches then parts[#parts + 1] = ("batch %d/%d"):format(s.batch, self.batches) end
  if s.loss then parts[#parts + 1] = ("loss %.4f"):format(s.loss) end
  if s.accuracy then parts[#parts + 1] = ("acc %.3f"):format(s.accuracy) end
  if s.valid then parts[#parts + 1] = ("valid %.3f"):format(s.valid) end
  if s.rate then parts[#parts + 1] = ("%.0f samples/s"):format(s.rate) end
  parts[#parts + 1] = "ETA " .. progress.hms(self:eta())
  return table.concat(parts, "  ")
end

function Progress:draw(force)
  if self.mode ~= "bar" then return end
  local now = self.clock()
  if not force and now - self.last_draw < self.interval then return end
  self.last_draw = now
  local f = self:fraction()
  local n = math.floor(f * self.width + 0.5)
  local bar = "[" .. string.rep("#", n) .. string.rep(".", self.width - n) .. "] "
  self.out:write("\r\27[K", bar, self:line())
  self.out:flush()
end

--- Record progress. fields: epoch, batch, loss, accuracy, valid (a validation
-- score), samples (seen so far in this epoch or the epoch size when it ends),
-- seconds (time of this epoch, when the trainer measured it), epoch_done.
function Progress:update(f)
  local s = self.state
  if f.epoch and f.epoch ~= s.epoch then
    s.epoch_start = self.clock()
    s.batch = nil
  end
  for k, v in pairs(f) do s[k] = v end
  if f.samples then
    local secs = f.seconds or (self.clock() - (s.epoch_start or self.start))
    if secs and secs > 0 then s.rate = f.samples / secs end
  end
  if self.mode == "bar" then
    self:draw(f.epoch_done)
  elseif self.mode == "plain" and f.epoch_done then
    local now = self.clock()
    if now - self.last_plain >= self.plain_interval then
      self.last_plain = now
      self.out:write(self:line(), "\n")
      self.out:flush()
    end
  end
end

--- One finished epoch (what a trainer's per-epoch callback reports).
function Progress:epoch(e, fields)
  local f = { epoch = e, epoch_done = true }
  for k, v in pairs(fields or {}) do f[k] = v end
  self:update(f)
end

--- The run is over: close the bar line, print a summary in plain mode.
-- Returns the seconds this run took.
function Progress:done(msg)
  local secs = self.clock() - self.start
  if self.mode == "bar" then
    self.state.epoch = self.state.epoch or self.epochs
    self:draw(true)
    self.out:write(msg and ("  " .. msg) or "", "\n")
    self.out:flush()
  elseif self.mode == "plain" then
    local line = self:line():gsub("  ETA [%d:?]+$", "")
    self.out:write(line, "  done in ", progress.hms(secs), msg and ("  " .. msg) or "", "\n")
    self.out:flush()
  end
  return secs
end

return progress
