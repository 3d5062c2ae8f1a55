--- mmfuse.image: the Lua face of the image area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.image or {}
