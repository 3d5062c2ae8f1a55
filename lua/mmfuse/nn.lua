--- mmfuse.nn: the Lua face of the nn area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.nn or {}
