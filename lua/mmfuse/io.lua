--- mmfuse.io: the Lua face of the io area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.io or {}
