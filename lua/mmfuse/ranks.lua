--- mmfuse.ranks: the Lua side of runs over several processes. The MPI module is
-- mmfuse.dist (csrc/dist, built when Open MPI is installed); model.lua and cli.lua call
-- this file, so a script needs no more than `{ dist = true }` in fit, evaluate and predict.
-- @module mmfuse.ranks
local M = {}

--- The mmfuse.dist module (joining the MPI job); an error naming `what` without it.
function M.module(what, lvl)
  local ok, d = pcall(require, "mmfuse.dist")
  if not ok then
    error(("%s: dist = true needs the mmfuse.dist module (built by make when Open MPI is installed: "
      .. "make deps): %s"):format(what, tostring(d)), (lvl or 1) + 1)
  end
  return d
end

--- The size of the job Open MPI's launcher started this process in (1 outside mpirun),
-- read from its environment without loading MPI.
function M.launched_size()
  return math.tointeger(tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or "")) or 1
end

local TAG = 7

--- fn over every line of next_line (an iterator, read on rank 0 only: mpirun gives stdin
-- to rank 0), in blocks of k lines: rank 0 reads one block for each rank, sends every other
-- rank its block, runs its own, then writes the blocks' texts in input order, receiving the
-- other ranks' results; the other ranks run what they are sent until an empty message.
-- fn(line, number) -> text, failed (a boolean). Returns, on rank 0, the lines and the
-- failures of all ranks; elsewhere 0, 0.
function M.scatter_lines(d, next_line, k, fn, write)
  local function run(first, lines)
    local out, bad = {}, 0
    for i, line in ipairs(lines) do
      local text, f = fn(line, first + i - 1)
      out[i] = text or ""
      if f then bad = bad + 1 end
    end
    return table.concat(out), bad
  end
  if d.rank ~= 0 then
    while true do
      local msg = d.recv(0, TAG)
      if msg == "" then return 0, 0 end
      local nl = msg:find("\n", 1, true)
      local first, lines = tonumber(msg:sub(1, nl - 1)), {}
      for line in (msg:sub(nl + 1) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
      local text, bad = run(first, lines)
      d.send(bad .. "\n" .. text, 0, TAG)
    end
  end
  local n, failed, done = 0, 0, false
  while not done do
    local blocks = {}
    for r = 0, d.size - 1 do
      local b = { first = n + 1 }
      while #b < k do
        local line = next_line()
        if line == nil then done = true break end
        n = n + 1
        b[#b + 1] = line
      end
      if #b == 0 then break end
      blocks[r] = b
      if r > 0 then d.send(b.first .. "\n" .. table.concat(b, "\n"), r, TAG) end
      if done then break end
    end
    if blocks[0] then
      local text, bad = run(blocks[0].first, blocks[0])
      failed = failed + bad
      write(text)
    end
    for r = 1, d.size - 1 do
      if blocks[r] then
        local msg = d.recv(r, TAG)
        local nl = msg:find("\n", 1, true)
        failed = failed + tonumber(msg:sub(1, nl - 1))
        write(msg:sub(nl + 1))
      end
    end
  end
  for r = 1, d.size - 1 do d.send("", r, TAG) end
  return n, failed
end

return M
