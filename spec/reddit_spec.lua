-- mmfuse.reddit: the importer for the paper's Reddit CSVs, offline, against a
-- local HTTP server on 127.0.0.1 (Debian's python3 -m http.server).
local reddit = require "mmfuse.reddit"
local util = require "util"

local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS"
local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local read = util.read

local write = util.write

local function manifest_rows(path)
  local rows, header = {}, nil
  for line in io.lines(path) do
    local cells = {}
    for c in (line .. "\t"):gmatch("([^\t]*)\t") do cells[#cells + 1] = c end
    if not header then header = cells else
      local r = {}
      for j, h in ipairs(header) do r[h] = cells[j] end
      rows[r.id] = r
      rows[#rows + 1] = r
    end
  end
  return header, rows
end

describe("reddit.parse_csv", function()
  it("reads RFC 4180: quotes, doubled quotes, commas and newlines in fields, CRLF", function()
    local h, rows = reddit.parse_csv('id,title\r\n1,"a, ""b""\r\nc"\r\n2,plain\r\n\r\n', "t.csv")
    assert.same({ "id", "title" }, h)
    assert.same({ { "1", 'a, "b"\r\nc' }, { "2", "plain" } }, rows)
  end)

  it("names the file and line of broken input", function()
    local ok, err = pcall(reddit.parse_csv, 'id,title\n1,"open\n', "bad.csv")
    assert.is_false(ok)
    assert.truthy(err:find("bad.csv:2: a quoted field is not closed", 1, true))
    ok, err = pcall(reddit.parse_csv, "id,title\n1,2,3\n", "ragged.csv")
    assert.is_false(ok)
    assert.truthy(err:find("ragged.csv: row 1 has 3 fields, the header 2", 1, true))
    ok, err = pcall(reddit.parse_csv, "", "empty.csv")
    assert.is_false(ok)
    assert.truthy(err:find("empty.csv: empty file", 1, true))
  end)

  it("hashes ids with FNV-1a 32", function()
    assert.equal(0x811c9dc5, reddit.fnv1a(""))
    assert.equal(0xe40c292c, reddit.fnv1a("a"))
    assert.equal(0xbf9cf968, reddit.fnv1a("foobar"))
  end)
end)

describe("reddit.import", function()
  local dir, port, pid

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh_quote(dir .. "/csv")))
    for attempt = 1, 5 do
      port = 20000 + (os.time() * 7919 + attempt * 104729 + math.random(0, 9999)) % 40000
      local p = io.popen(("%s /usr/bin/python3 -m http.server %d --bind 127.0.0.1 --directory %s >/dev/null 2>&1 & echo $!")
        :format(CLEAN_ENV, port, sh_quote("spec/fixtures/reddit/www")))
      pid = tonumber(p:read("l"))
      p:close()
      local up = false
      for _ = 1, 50 do
        if os.execute(("%s curl -sf -o /dev/null http://127.0.0.1:%d/img/cat.png"):format(CLEAN_ENV, port)) == true then
          up = true
          break
        end
        os.execute("sleep 0.1")
      end
      if up then break end
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
      pid = nil
    end
    assert(pid, "could not start python3 -m http.server on 127.0.0.1")
    for _, sub in ipairs{ "happy", "creepy", "rage", "gore" } do
      local text = read("spec/fixtures/reddit/" .. sub .. ".csv"):gsub("HOST", "127.0.0.1:" .. port)
      write(dir .. "/csv/" .. sub .. ".csv", text)
    end
  end)

  teardown(function()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  local function fetch(url, path) return reddit.curl(url, path, 5, CLEAN_ENV) end

  it("writes a manifest, downloads what it can and marks the rest missing", function()
    local out = dir .. "/m1/manifest.tsv"
    os.execute("mkdir -p " .. sh_quote(dir .. "/m1"))
    local stats = reddit.import{ dir = dir .. "/csv", out = out, fetch = fetch }
    assert.equal(6, stats.rows)
    assert.equal(2, stats.images)
    assert.equal(4, stats.missing)
    local header, rows = manifest_rows(out)
    assert.same({ "id", "subreddit", "label", "title", "url", "image", "fold" }, header)
    assert.equal(6, #rows)
    assert.equal("joy", rows.h1.label)
    assert.equal("fear", rows.c1.label)
    assert.equal("anger", rows.r1.label)
    assert.equal("disgust", rows.g1.label)
    assert.equal("Finally, a sunny day", rows.h1.title)
    assert.equal('She said "yes"!', rows.h2.title)
    assert.equal("dark hallway", rows.c1.title)       -- newline inside quotes flattened
    assert.equal(" tabs inside title", rows.r1.title) -- tabs cannot break the TSV
    assert.equal("images/h1.png", rows.h1.image)
    assert.equal("images/r1.png", rows.r1.image)
    assert.equal(read("spec/fixtures/reddit/www/img/smile.png"), read(dir .. "/m1/images/h1.png"))
    assert.equal("", rows.h2.image) -- 404
    assert.equal("", rows.c1.image) -- served, but not an image
    assert.equal("", rows.c2.image) -- no URL
    assert.equal("", rows.g1.image) -- ftp refused
    assert.equal(tostring(reddit.fnv1a("h1") % 5), rows.h1.fold)
    assert.is_nil(io.open(dir .. "/m1/images/c1.png", "rb"))  -- the non-image was not kept
    assert.is_nil(io.open(dir .. "/m1/images/h2.jpg.part", "rb"))
    local why = {}
    for _, f in ipairs(stats.failed) do why[f.id] = f.error end
    assert.equal("not an image", why.c1)
    assert.equal("download failed", why.h2)
    assert.equal("not an http(s) URL", why.g1)
  end)

  it("offline: keeps every post with its text, images missing; reuses the cache later", function()
    os.execute("mkdir -p " .. sh_quote(dir .. "/m2/images"))
    local out = dir .. "/m2/manifest.tsv"
    local stats = reddit.import{ dir = dir .. "/csv", out = out, download = false }
    assert.equal(6, stats.rows)
    assert.equal(0, stats.images)
    local _, rows = manifest_rows(out)
    for _, r in ipairs(rows) do assert.equal("", r.image) end
    -- an image already in the cache is used without a network
    write(dir .. "/m2/images/r1.png", read("spec/fixtures/reddit/www/img/cat.png"))
    stats = reddit.import{ dir = dir .. "/csv", out = out, download = false }
    assert.equal(1, stats.images)
    _, rows = manifest_rows(out)
    assert.equal("images/r1.png", rows.r1.image)
  end)

  it("loads into mm.data with the image modality missing where it is", function()
    local mm = require "mmfuse"
    local ds = mm.data.load(dir .. "/m1/manifest.tsv", { text = "title", image = "image", label = "label" })
    assert.equal(6, #ds)
    assert.same({ "anger", "disgust", "fear", "joy" }, ds.classes)
    local present = 0
    for _, m in ipairs(ds:mask("image")) do if m then present = present + 1 end end
    assert.equal(2, present)
  end)

  it("rejects a CSV without the needed columns, duplicate ids and unknown subreddits", function()
    write(dir .. "/bad.csv", "id,link\nx1,http://a/b.png\n")
    local ok, err = pcall(reddit.import, { csv = { happy = dir .. "/bad.csv" }, out = dir .. "/bad.tsv", download = false })
    assert.is_false(ok)
    assert.truthy(err:find("bad.csv: no column 'url'", 1, true))
    write(dir .. "/dup.csv", "id,url,title\nx1,,a\nx1,,b\n")
    ok, err = pcall(reddit.import, { csv = { happy = dir .. "/dup.csv" }, out = dir .. "/dup.tsv", download = false })
    assert.is_false(ok)
    assert.truthy(err:find("row 2: id 'x1' appears twice", 1, true))
    ok, err = pcall(reddit.import, { csv = { funny = dir .. "/dup.csv" }, out = dir .. "/x.tsv" })
    assert.is_false(ok)
    assert.truthy(err:find("unknown subreddit 'funny'", 1, true))
    write(dir .. "/evil.csv", "id,url,title\n../../etc,,a\n")
    ok, err = pcall(reddit.import, { csv = { gore = dir .. "/evil.csv" }, out = dir .. "/e.tsv", download = false })
    assert.is_false(ok)
    assert.truthy(err:find("id '../../etc' must be letters", 1, true))
  end)
end)
