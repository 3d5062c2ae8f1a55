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
  -- Under ASan (make asan) the pretrained-encoder block runs the nsfwjs MobileNetV2 in place of
  -- Inception-v3: the same code path (a TF.js layers model as backbone, features extracted and
  -- cached, a model with encoder = path) at a tenth of the multiply-adds, since Inception-v3 on
  -- 96 pictures takes minutes under ASan. Inception-v3 itself runs under ASan in tfjs_spec, and
  -- this block runs as written in every `make test`.
  if os.getenv("MMFUSE_ASAN") then
    for i, code in ipairs(list) do
      list[i] = code:gsub("data/pretrained/inception_v3/model%.json", "data/pretrained/mobilenet_v2/model.json")
    end
  end
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
