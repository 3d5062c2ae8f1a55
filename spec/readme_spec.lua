-- Every ```lua block of README.md runs as written (from the checkout root).
local function blocks(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local out = {}
  for code in text:gmatch("```lua\n(.-)```") do out[#out + 1] = code end
  return out
end

describe("README examples", function()
  local list = blocks("README.md")
  -- a block may point package.path/cpath at ./build; keep the suite on the
  -- core it was started with (e.g. the ASan build)
  require "mmfuse"
  local saved_path, saved_cpath = package.path, package.cpath
  after_each(function()
    package.path, package.cpath = saved_path, saved_cpath
  end)
  it("has Lua examples", function()
    assert.is_true(#list >= 1)
  end)
  for i, code in ipairs(list) do
    it("block " .. i .. " runs", function()
      -- its own globals, with a quiet print (the output is not what is tested)
      local env = setmetatable({ print = function() end }, { __index = _G })
      local chunk, err = load(code, "=README.md block " .. i, "t", env)
      assert(chunk, err)
      local ok, run_err = pcall(chunk)
      assert(ok, run_err)
    end)
  end
end)
