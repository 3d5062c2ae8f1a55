-- Import the paper's Reddit CSVs (happy/creepy/rage/gore) into a manifest.
--   lua5.4 tools/import_reddit.lua DIR_WITH_CSVS OUT_MANIFEST [--cache DIR] [--offline] [--timeout S]
-- Images are downloaded with curl into the cache (default: images/ next to the
-- manifest); without a network (or with --offline) posts keep their text and
-- their image is marked missing.
package.path = "./lua/?.lua;" .. package.path
local reddit = require "mmfuse.reddit"

local pos, o = {}, { download = true }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--offline" then o.download = false
  elseif a == "--cache" then i = i + 1; o.cache = arg[i]
  elseif a == "--timeout" then i = i + 1; o.timeout = tonumber(arg[i])
  elseif a == "--help" or a == "-h" then pos = {}; break
  else pos[#pos + 1] = a end
  i = i + 1
end
if #pos ~= 2 then
  io.stderr:write("usage: lua5.4 tools/import_reddit.lua DIR OUT_MANIFEST [--cache DIR] [--offline] [--timeout S]\n")
  os.exit(2)
end
o.dir, o.out = pos[1], pos[2]
local ok, stats = pcall(reddit.import, o)
if not ok then
  io.stderr:write("import_reddit: ", tostring(stats), "\n")
  os.exit(1)
end
print(("%s: %d posts, %d with an image, %d with the image missing"):format(o.out, stats.rows, stats.images,
  stats.missing))
for k, f in ipairs(stats.failed) do
  if k > 10 then print(("  ... and %d more"):format(#stats.failed - 10)) break end
  print(("  %s: %s (%s)"):format(f.id, f.error, f.url))
end
