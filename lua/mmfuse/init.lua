--- mmfuse: multimodal (text + image + features) classification of social-media posts.
-- `local mm = require "mmfuse"`. The C core (mmfuse.core) does the numbers;
-- this file gathers the areas into one table.
local core = require "mmfuse.core"

local mm = {}
-- core.fusion is the model binding that mmfuse.model wraps: not part of the face
for k, v in pairs(core) do
  if k ~= "fusion" then mm[k] = v end
end

mm.nn = require "mmfuse.nn"
mm.text = require "mmfuse.text"
mm.image = require "mmfuse.image"
mm.io = require "mmfuse.io"
mm.data = require "mmfuse.data"
mm.features = require "mmfuse.features"
mm.help = require "mmfuse.help"
local model = require "mmfuse.model"
for k, v in pairs(model) do
  if mm[k] == nil then mm[k] = v end
end

return mm
