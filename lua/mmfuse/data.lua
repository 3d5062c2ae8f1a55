--- mmfuse.data: the Lua face of the data area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.data or {}
