-- A folder of posts (ID.txt + ID.jpg|png + a label file) imported as a dataset: text encodings
-- (UTF-8 with or without a BOM, GB18030, Latin-1), missing and broken pictures, junk paths, label
-- files in CSV and TSV, and the manifest `mmfuse import` writes. Every fixture is made here: the
-- texts are written for this spec, the GB18030 bytes are those of these texts, the pictures are
-- the image fixtures of spec/fixtures/image.
local mm = require "mmfuse"
local util = require "util"
local core = require "mmfuse.core"

local q = util.sh_quote

local TEXT = {
  utf8 = "Sunny morning at the lake 🌞 #weekend",
  gb = "\189\241\204\236\204\236\198\248\186\220\186\195 #\214\220\196\169", -- "今天天气很好 #周末" in GB18030
  gb_utf8 = "今天天气很好 #周末",
  latin = "caf\233 cr\232me", -- "café crème" in Latin-1
  latin_utf8 = "café crème",
}
local RGB, CORRUPT = "spec/fixtures/image/rgb.png", "spec/fixtures/image/corrupt.png"

local function copy(src, dst) util.write(dst, util.read(src)) end

-- the folder every test starts from; returns its path (posts in DIR/data, labels in DIR/labels.csv)
local function make_folder()
  local dir = util.tmpdir()
  local d = dir .. "/data"
  assert(os.execute("mkdir " .. q(d)))
  util.write(d .. "/1.txt", "\239\187\191" .. TEXT.utf8) -- UTF-8 with a BOM
  copy(RGB, d .. "/1.png")
  util.write(d .. "/2.txt", TEXT.gb)
  copy("spec/fixtures/image/gradient.jpg", d .. "/2.JPG") -- extensions in any letter case
  util.write(d .. "/3.txt", TEXT.latin) -- no picture
  util.write(d .. "/4.txt", "a broken picture")
  copy(CORRUPT, d .. "/4.png")
  copy(RGB, d .. "/5.png") -- no text
  util.write(d .. "/6.txt", "   \n") -- an empty text
  copy(RGB, d .. "/6.jpg")
  util.write(d .. "/8.txt", "nobody labelled me")
  util.write(dir .. "/labels.csv", table.concat({
    "guid,tag",
    "1,positive",
    '"2",negative', -- a quoted field
    '3,"neutral"',
    "4,positive",
    "5,negative",
    "6,neutral",
    "7,positive", -- names no post
    "1,negative", -- a duplicate
    "9,", -- no label
  }, "\r\n") .. "\r\n")
  return dir
end

describe("mm.text.decode", function()
  it("keeps valid UTF-8, drops a BOM, falls back to GB18030 then Latin-1", function()
    assert.are.same({ TEXT.utf8, "utf-8", false }, { mm.text.decode(TEXT.utf8) })
    assert.are.same({ TEXT.utf8, "utf-8", true }, { mm.text.decode("\239\187\191" .. TEXT.utf8) })
    assert.are.same({ TEXT.gb_utf8, "gb18030", false }, { mm.text.decode(TEXT.gb) })
    assert.are.same({ TEXT.latin_utf8, "latin-1", false }, { mm.text.decode(TEXT.latin) })
    assert.are.same({ "", "utf-8", false }, { mm.text.decode("") })
  end)

  it("refuses ill-formed UTF-8 (overlong, surrogate, above U+10FFFF, truncated, lone continuation)", function()
    for _, bad in ipairs { "\192\128", "\224\128\128", "\237\160\128", "\244\144\128\128", "ab\226\130", "\128" } do
      local s, enc = mm.text.decode(bad, { "utf-8", "latin-1" })
      assert.are.equal("latin-1", enc)
      assert.truthy(utf8.len(s), "the result is valid UTF-8")
    end
    util.assert_mentions(util.errors_with(mm.text.decode, "\255", { "utf-8", "gb18030" }), "not valid utf-8, gb18030")
  end)

  it("the order of the list decides", function()
    assert.are.same({ "\195\140\195\176", "latin-1", false }, { mm.text.decode("\204\240", { "latin-1", "gb18030" }) })
    assert.are.equal("gb18030", select(2, mm.text.decode("\204\240")))
    util.assert_mentions(util.errors_with(mm.text.decode, "x", { "ebcdic" }), "unknown encoding 'ebcdic'")
    util.assert_mentions(util.errors_with(mm.text.decode, "x", {}), "encodings must list")
  end)
end)

describe("mm.data.import_posts", function()
  local dir
  before_each(function() dir = make_folder() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("imports texts in three encodings and lists every post that lost something", function()
    local ds, rep = mm.data.import_posts(dir)
    assert.are.equal(rep, ds.import)
    assert.are.same({ "1", "2", "3", "4", "5", "6" }, ds.columns.id)
    assert.are.same({ "negative", "neutral", "positive" }, ds.classes)
    local want = { "positive", "negative", "neutral", "positive", "negative", "neutral" }
    local labels = ds:labels()
    for i, w in ipairs(want) do assert.are.equal(w, ds.classes[labels[i]]) end
    assert.are.same({ TEXT.utf8, TEXT.gb_utf8, TEXT.latin_utf8, "a broken picture", "", "" },
      { ds:text("text", 1), ds:text("text", 2), ds:text("text", 3), ds:text("text", 4), ds:text("text", 5),
        ds:text("text", 6) })
    assert.are.same({ true, true, true, true, false, false }, ds:mask("text"))
    assert.are.same({ true, true, false, false, true, true }, ds:mask("image"))
    assert.are.same({ ["utf-8"] = 3, gb18030 = 1, ["latin-1"] = 1 }, rep.encodings)
    assert.are.equal(1, rep.bom)
    assert.are.same({ "5" }, rep.text_missing)
    assert.are.same({ "6" }, rep.text_empty)
    assert.are.same({ "3" }, rep.image_missing)
    assert.are.same({ "4" }, rep.image_undecodable)
    util.assert_mentions(rep.reasons["4"], "4.png")
    assert.are.same({ { line = 8, id = "7" } }, rep.no_post)
    assert.are.same({ { line = 9, id = "1" } }, rep.duplicate)
    assert.are.same({ { line = 10, id = "9" } }, rep.no_label)
    assert.are.same({ "8" }, rep.unlabelled)
    assert.are.same({ 10 - 1, 6 }, { rep.rows, rep.posts })
    assert.are.equal(dir .. "/data/2.JPG", ds.images.list[2])
    assert.is_false(ds.images.list[4]) -- undecodable: image-absent
    -- a summary names each list
    local s = require("mmfuse.posts").summary(rep)
    util.assert_mentions(s, "gb18030 1", "image_undecodable     1  4", "no_post", "7 (line 8)")
  end)

  it("refuses junk pictures and texts without reading them (a FIFO, a folder, above the caps)", function()
    local d = dir .. "/data"
    os.remove(d .. "/3.txt")
    assert(os.execute("mkfifo " .. q(d .. "/3.txt"))) -- a FIFO as the text
    assert(os.execute("mkfifo " .. q(d .. "/3.jpg"))) -- and as the picture
    assert(os.execute("mkdir " .. q(d .. "/5.txt"))) -- a folder named like a text
    util.write(d .. "/4.txt", ("x"):rep(100))
    -- in a child under `timeout 10`: a regression hangs on the FIFO and fails instead of hanging the suite
    local script = dir .. "/child.lua"
    util.write(script, ([[
package.path = %q
package.cpath = %q
local mm = require "mmfuse"
local ds, rep = mm.data.import_posts(%q, { max_text_bytes = 50, max_image_bytes = %d })
local function ids(t) return table.concat(t, ",") end
print("text_refused", ids(rep.text_refused))
print("image_refused", ids(rep.image_refused))
print("image_missing", ids(rep.image_missing))
print("mask", table.concat((function() local t = {} for i, m in ipairs(ds:mask("image")) do t[i] = tostring(m) end return t end)(), ","))
print("why3", rep.reasons["3"])
print("why2", rep.reasons["2"])
]]):format(package.path, package.cpath, dir, #util.read("spec/fixtures/image/gradient.jpg") - 1))
    local p = io.popen("timeout 10 lua5.4 " .. q(script) .. " 2>&1; echo \"exit $?\"")
    local out = p:read("a")
    p:close()
    assert.are.equal("0", out:match("exit (%d+)\n$"), out)
    local got = {}
    for k, v in out:gmatch("([%w_]+)\t([^\n]*)\n") do got[k] = v end
    -- 3: a FIFO text, 4: above max_text_bytes, 5: a folder as its text
    assert.are.equal("3,4,5", got.text_refused)
    -- 2: above max_image_bytes, 3: a FIFO picture
    assert.are.equal("2,3", got.image_refused)
    assert.are.equal("", got.image_missing)
    assert.are.equal("true,false,false,false,true,true", got.mask)
    util.assert_mentions(got.why3, "a FIFO", "refused without reading it")
    util.assert_mentions(got.why2, "more than the limit")
  end)

  it("reads TSV label files with other column names, a labels table, fixed classes, fewer encodings", function()
    util.write(dir .. "/my labels.tsv", "Post\tSentiment\tnote\n1\tpositive\ta, b\n2\tnegative\t\n3\tneutral\t\"\n")
    local ds, rep = mm.data.import_posts(dir, { labels = "my labels.tsv" })
    assert.are.same({ "1", "2", "3" }, ds.columns.id)
    assert.are.equal(dir .. "/my labels.tsv", rep.labels)
    util.write(dir .. "/other.csv", "key,class,label\n1,x,positive\n2,y,negative\n")
    ds = mm.data.import_posts(dir, { labels = dir .. "/other.csv", id_column = "key", label_column = "label" })
    assert.are.same({ "positive", "negative" }, { ds.classes[ds:labels()[1]], ds.classes[ds:labels()[2]] })
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir, { labels = "other.csv", id_column = "guid" }),
      "other.csv", "no id column 'guid'", "key, class, label")
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir, { labels = "my labels.tsv", id_colum = "x" }),
      "unknown option 'id_colum'")

    ds, rep = mm.data.import_posts(dir, { labels = { [2] = "negative", ["1"] = "positive", ["5"] = "happy" },
      classes = { "negative", "positive" } })
    assert.are.same({ "1", "2" }, ds.columns.id)
    assert.are.same({ { line = 3, id = "5", label = "happy" } }, rep.unknown_label)

    ds, rep = mm.data.import_posts(dir, { encodings = { "utf-8" } })
    assert.are.same({ "2", "3" }, rep.text_undecodable)
    assert.are.same({ true, false, false, true, false, false }, ds:mask("text"))
    util.assert_mentions(rep.reasons["2"], "2.txt", "not valid utf-8")
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir, { encodings = { "utf-16" } }),
      "unknown encoding 'utf-16'")
  end)

  it("errors name the problem: not a folder, no label file, a FIFO as the label file", function()
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir .. "/labels.csv"), "not a folder (file)")
    os.remove(dir .. "/labels.csv")
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir), "no labels.csv or labels.tsv")
    assert(os.execute("mkfifo " .. q(dir .. "/labels.csv")))
    util.assert_mentions(util.errors_with(mm.data.import_posts, dir), "labels.csv", "a FIFO")
  end)

  it("mmfuse import writes a manifest mm.data.load reads back into the same dataset", function()
    util.write(dir .. "/data/4.txt", "tab\tand\nnew line, \"quoted\"")
    local cpath = os.getenv("MMFUSE_CPATH") or package.cpath:match("[^;]+")
    for _, ext in ipairs { "tsv", "csv" } do
      local man = dir .. "/posts." .. ext
      local p = io.popen(("MMFUSE_CPATH=%s lua5.4 bin/mmfuse import %s --out %s 2>&1; echo \"exit $?\"")
        :format(q(cpath), q(dir), q(man)))
      local out = p:read("a")
      p:close()
      assert.are.equal("0", out:match("exit (%d+)\n$"), out)
      util.assert_mentions(out, "6 posts", "utf-8 3", "gb18030 1", "latin-1 1", "wrote " .. man)
      local a = mm.data.import_posts(dir)
      local b = mm.data.load(man, { text = "text", image = "image", label = "label" })
      assert.are.same(a.columns.id, b.columns.id)
      assert.are.same(a:mask("text"), b:mask("text"))
      assert.are.same(a:mask("image"), b:mask("image"))
      for i = 1, #a do
        assert.are.equal(a.classes[a:labels()[i]], b.classes[b:labels()[i]])
        local want = a:text("text", i)
        if ext == "tsv" then want = want:gsub("[\t\n]", " ") end
        assert.are.equal(want, b:text("text", i))
      end
    end
    -- --json prints the report
    local p = io.popen(("MMFUSE_CPATH=%s lua5.4 bin/mmfuse import %s --out %s --json --encodings utf-8,latin-1")
      :format(q(cpath), q(dir), q(dir .. "/j.tsv")))
    local rep = require("cjson").decode(p:read("a"))
    p:close()
    assert.are.same({ ["utf-8"] = 3, ["latin-1"] = 2 }, rep.encodings)
  end)

  it("core.io.list names a folder's entries, sorted", function()
    assert.are.same({ "1.png", "1.txt", "2.JPG", "2.txt", "3.txt", "4.png", "4.txt", "5.png", "6.jpg", "6.txt",
      "8.txt" }, core.io.list(dir .. "/data"))
    util.assert_mentions(util.errors_with(core.io.list, dir .. "/labels.csv"), "cannot list the folder")
  end)
end)
