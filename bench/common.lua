--- What the mmfuse bench scripts share (run from the checkout's root: dofile("bench/common.lua")):
-- the module search — MMFUSE_CPATH (default ./build-bench/?.so, the bench build) and ./lua/ —
-- set before the scripts require mmfuse, a fatal usage error, and a line of /proc/self/status.
local cpath = os.getenv("MMFUSE_CPATH") or "./build-bench/?.so"
package.cpath = cpath .. ";" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path

local common = {}

--- A function that prints "prefix: msg" on stderr and exits with status 2.
function common.die_with(prefix)
  return function(msg)
    io.stderr:write(prefix, ": ", msg, "\n")
    os.exit(2)
  end
end

--- The value (kB) of a line of /proc/self/status, e.g. "VmHWM" (peak RSS); -1 without it.
function common.status_kb(key)
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  for line in f:lines() do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then
      f:close()
      return tonumber(v)
    end
  end
  f:close()
  return -1
end

return common
