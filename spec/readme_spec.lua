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
  it("has Lua examples", function()
    assert.is_true(#list >= 1)
  end)
  for i, code in ipairs(list) do
    it("block " .. i .. " runs", function()
      local chunk, err = load(code, "=README.md block " .. i, "t", setmetatable({}, { __index = _G }))
      assert(chunk, err)
      local saved_print = print
      print = function() end -- keep the test output quiet
      local ok, run_err = pcall(chunk)
      print = saved_print
      assert(ok, run_err)
    end)
  end
end)
