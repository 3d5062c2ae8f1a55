--- mmfuse.model: the Lua face of the model area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.model or {}
