--- mmfuse.text: the Lua face of the text area (placeholder until the area lands).
local core = require "mmfuse.core"
return core.text or {}
