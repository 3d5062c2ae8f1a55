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

--- fn over every item of iter, in blocks of k items: block b runs on rank b % size, and
-- rank 0 passes every block's text to write in input order (the other ranks send theirs).
-- fn(item, index) -> text, failed (a boolean); returns, on rank 0, the items and the
-- failures of all ranks (elsewhere: the items, and this rank's failures).
function M.ordered_blocks(d, iter, k, fn, write)
  local b, block, items, failed = 0, {}, 0, 0
  local function flush()
    local owner = b % d.size
    if owner == d.rank then
      local out, bad = {}, 0
      for i, it in ipairs(block) do
        local text, f = fn(it[1], it[2])
        out[i] = text
        if f then bad = bad + 1 end
      end
      failed = failed + bad
      if d.rank == 0 then
        write(table.concat(out))
      else
        d.send(bad .. "\n" .. table.concat(out), 0, TAG)
      end
    elseif d.rank == 0 then
      local msg = d.recv(owner, TAG)
      local nl = msg:find("\n", 1, true)
      failed = failed + tonumber(msg:sub(1, nl - 1))
      write(msg:sub(nl + 1))
    end
    b, block = b + 1, {}
  end
  for item in iter do
    items = items + 1
    block[#block + 1] = { item, items }
    if #block == k then flush() end
  end
  if #block > 0 then flush() end
  return items, failed
end

return M
