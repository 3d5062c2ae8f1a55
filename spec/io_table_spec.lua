-- mm.io.read_table: the C reader of TSV and CSV manifests (csrc/io/table.h) that mm.data.load
-- and mm.data.stream share. Values written by the spec are read back exactly, across the
-- reader's 1 MB buffer and past it; malformed rows name the file and line.
local mm = require "mmfuse"
local util = require "util"

local function tmp(ext, s)
  local p = os.tmpname() .. ext
  util.write(p, s)
  return p
end

local function read(ext, s)
  local p = tmp(ext, s)
  local ok, h, rows, lines = pcall(mm.io.read_table, p, ext == ".csv" and "csv" or "tsv")
  os.remove(p)
  if not ok then error(h, 0) end
  return h, rows, lines
end

local function csv_field(s)
  if s:find('[,"\r\n]') or s == "" and math.random(2) == 1 then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

describe("the table reader", function()
  it("reads TSV: header, fields, the line of every row, blank lines, CRLF and a BOM", function()
    local h, rows, lines = read(".tsv", "\239\187\191a\tb\tc\r\n1\t\tx y\r\n\n\n2\t3\t\r\n4\t5\t6")
    assert.are.same({ "a", "b", "c" }, h)
    assert.are.same({ { "1", "", "x y" }, { "2", "3", "" }, { "4", "5", "6" } }, rows)
    assert.are.same({ 2, 5, 6 }, lines)
  end)

  it("reads CSV with quotes, escaped quotes, commas and line breaks inside fields", function()
    local s = 'id,"te,xt",n\n1,"say ""hi"", then\ngo",3\r\n\n"",,\r2,plain,"x"\n""\n3,"a\r\nb",'
    local h, rows, lines = read(".csv", s)
    assert.are.same({ "id", "te,xt", "n" }, h)
    assert.are.same({ { "1", 'say "hi", then\ngo', "3" }, { "", "", "" }, { "2", "plain", "x" },
      { "3", "a\r\nb", "" } }, rows)
    -- the line where each row starts (the quoted line break counts)
    assert.are.same({ 2, 5, 6, 8 }, lines)
  end)

  it("names the file and line of a malformed row", function()
    local function err(ext, s) return util.errors_with(read, ext, s) end
    util.assert_mentions(err(".tsv", "a\tb\n1\t2\n3\n"), ".tsv:3: expected 2 fields, got 1")
    util.assert_mentions(err(".csv", "a,b\n1,2,3\n"), ".csv:2: expected 2 fields, got 3")
    util.assert_mentions(err(".csv", 'a,b\n1,x"y\n'), ".csv:2: a quote inside an unquoted field")
    util.assert_mentions(err(".csv", 'a,b\n1,"x"y\n'), ".csv:2: unexpected character after a closing quote")
    util.assert_mentions(err(".csv", 'a,b\n1,2\n3,"never\nclosed\n'), ".csv:3: unterminated quoted field")
    util.assert_mentions(err(".tsv", ""), "empty file (a header line is needed)")
    util.assert_mentions(err(".csv", "\n\n"), "empty file")
    util.assert_mentions(util.errors_with(mm.io.read_table, "/nonexistent/x.tsv", "tsv"), "x.tsv: cannot open")
    util.assert_mentions(util.errors_with(mm.io.read_table, "x.tsv", "xml"), "invalid option 'xml'")
  end)

  it("reads back every value written, through buffer refills and a row longer than the buffer", function()
    math.randomseed(7)
    local alphabet = { "a", "b", ",", '"', "\n", "\r\n", " ", "é", "\t" }
    local rows, out = {}, { "k,v,w\n" }
    for r = 1, 6000 do
      local row = { tostring(r) }
      for c = 2, 3 do
        local n = math.random(0, 400)
        local t = {}
        for i = 1, n do t[i] = alphabet[math.random(#alphabet)] end
        row[c] = table.concat(t)
      end
      if r == 3000 then row[2] = ("x"):rep(3 << 20) .. '"' end -- a row of 3 MB: the buffer grows
      rows[r] = row
      out[#out + 1] = table.concat({ row[1], csv_field(row[2]), csv_field(row[3]) }, ",") .. "\n"
    end
    local h, got = read(".csv", table.concat(out))
    assert.are.same({ "k", "v", "w" }, h)
    assert.are.equal(#rows, #got)
    for r = 1, #rows do
      if got[r][2] ~= rows[r][2] or got[r][3] ~= rows[r][3] then
        error(("row %d differs"):format(r))
      end
    end
  end)
end)
