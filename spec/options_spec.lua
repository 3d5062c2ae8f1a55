-- The option reader every binding function uses (csrc/lua/mm_lua.c,
-- mm_lua_readopts): unknown keys, wrong types, ranges and enums are errors that
-- name the function, the option and what was expected.
local mm = require "mmfuse"
local util = require "util"

local function err(fn, ...) return util.errors_with(fn, ...) end

describe("option tables", function()
  local C, A, B = mm.zeros(2, 3), mm.zeros(2, 2), mm.zeros(2, 3)

  it("names an unknown option and lists the known ones", function()
    assert.equal("addmm: unknown option 'alhpa' (known: ta, tb, alpha, beta)", err(C.addmm, C, A, B, { alhpa = 2 }))
  end)

  it("refuses a key that is not a name", function()
    util.assert_mentions(err(C.addmm, C, A, B, { true }), "addmm: options must be named", "[1]", "known: ta")
  end)

  it("names the option and the type expected", function()
    assert.equal("addmm: option 'ta' must be a boolean, got number", err(C.addmm, C, A, B, { ta = 1 }))
    assert.equal("addmm: option 'alpha' must be a number, got string", err(C.addmm, C, A, B, { alpha = "2" }))
    assert.equal("addmm: option 'beta' must be a number, got NaN", err(C.addmm, C, A, B, { beta = 0 / 0 }))
  end)

  it("refuses options that are not a table", function()
    assert.equal("addmm: options (argument #4) must be a table, got string", err(C.addmm, C, A, B, "tb"))
  end)

  it("reads every option given, and the defaults for the others", function()
    local c = mm.ones(2, 2)
    c:addmm(mm.tensor{ { 1, 2 }, { 3, 4 } }, mm.tensor{ { 1, 0 }, { 0, 1 } }, { ta = true, alpha = 2 })
    assert.same({ { 3, 7 }, { 5, 9 } }, c:totable())
  end)
end)
