-- mmfuse.report: Markdown tables, claims text, HTML (escaping, charts, images), atomic writes.
local report = require "mmfuse.report"
local util = require "util"

local function results() return dofile("spec/fixtures/report/results.lua") end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

local read = util.read

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

describe("report.fmt and escape", function()
  it("formats mean ± std, a single run and a missing cell", function()
    assert.equal("0.712 ± 0.010", report.fmt{ mean = 0.7123, std = 0.0101, n = 5 })
    assert.equal("0.500", report.fmt{ mean = 0.5, std = 0, n = 1 })
    assert.equal("—", report.fmt(nil))
    assert.equal("0.71 ± 0.01", report.fmt({ mean = 0.7123, std = 0.0101, n = 5 }, 2))
  end)

  it("escapes the five HTML specials", function()
    assert.equal("&lt;a href=&quot;x&quot;&gt;&amp;&#39;", report.escape("<a href=\"x\">&'"))
    assert.equal("42", report.escape(42))
  end)

  it("encodes base64 like RFC 4648", function()
    assert.equal("", report.base64(""))
    assert.equal("Zg==", report.base64("f"))
    assert.equal("Zm8=", report.base64("fo"))
    assert.equal("Zm9v", report.base64("foo"))
    assert.equal("Zm9vYmFy", report.base64("foobar"))
    assert.equal("AP8=", report.base64("\0\255"))
  end)
end)

describe("report.markdown", function()
  it("has one row per model and one column per metric x condition, mean ± std", function()
    local md = report.markdown_table(results().tasks[1])
    local lines = {}
    for l in md:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(2 + 4, #lines) -- header, rule, 4 models
    assert.equal(
      "| model | accuracy, text + image | accuracy, text only | accuracy, image only | macro-F1, text + image | "
        .. "macro-F1, text only | macro-F1, image only |", lines[1])
    assert.equal("| text | 0.712 ± 0.010 | 0.700 ± 0.010 | 0.100 ± 0.000 | 0.650 ± 0.020 | 0.640 ± 0.020 | "
      .. "0.020 ± 0.000 |", lines[3])
    -- a model with only one condition shows dashes elsewhere
    assert.equal("| a<b>&c | 0.500 | — | — | 0.400 | — | — |", lines[6])
  end)

  it("states each claim's verdict and margin plainly", function()
    local md = report.markdown(results())
    assert.truthy(md:find("# Hand-made <report> & friends", 1, true))
    assert.truthy(md:find("> demo mode: 2 seeds, 3 epochs <fast>", 1, true))
    assert.truthy(md:find("- **C1 holds** (margin +0.098) — Fusion beats each single modality.", 1, true))
    assert.truthy(md:find("- **C2 does NOT hold** (margin -0.012) — Joint beats early/late.", 1, true))
    assert.truthy(md:find("- **C3 not tested** — Common-space keeps accuracy. not tested: needs commonspace", 1, true))
    assert.truthy(md:find("test accuracy", 1, true))
  end)

  it("keeps table rows intact when a name holds a pipe", function()
    local r = results()
    r.tasks[1].models = { "x|y" }
    r.tasks[1].summary["x|y"] = r.tasks[1].summary.text
    local md = report.markdown_table(r.tasks[1])
    assert.truthy(md:find("| x\\|y | 0.712", 1, true))
  end)
end)

describe("report.html", function()
  local html
  setup(function() html = report.html(results()) end)

  it("is one self-contained document: inline style, no external resources", function()
    assert.truthy(html:match("^<!DOCTYPE html>"))
    assert.equal(1, count(html, "<style>"))
    assert.is_nil(html:find("<link", 1, true))
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("https?://[^\"]*%.css"))
  end)

  it("escapes every piece of text from the data", function()
    assert.truthy(html:find("<title>Hand-made &lt;report&gt; &amp; friends</title>", 1, true))
    assert.truthy(html:find("<td>a&lt;b&gt;&amp;c</td>", 1, true))
    assert.truthy(html:find("teeth &lt;laugh&gt;", 1, true))
    assert.truthy(html:find("cat &quot;face&quot;", 1, true))
    assert.truthy(html:find("Animals &lt;Nature&gt;", 1, true))
    assert.truthy(html:find("beats text by +0.098 &lt;ok&gt;", 1, true))
    assert.is_nil(html:find("<report>", 1, true))
    assert.is_nil(html:find("<laugh>", 1, true))
    assert.is_nil(html:find("<Nature>", 1, true))
    assert.is_nil(html:find("a<b>", 1, true))
  end)

  it("has the results table with every model and the numbers", function()
    assert.equal(1, count(html, '<table class="results">'))
    assert.equal(4, count(html, "<tr><td>"))
    assert.truthy(html:find("<td>0.810 ± 0.015</td>", 1, true))
  end)

  it("has a bar chart per metric with a bar per (model, condition) and whiskers", function()
    assert.equal(2, count(html, '<svg[^>]-class="chart"'))
    -- accuracy: 3 models x 3 conditions + 1 model x 1 condition; the same for macro-F1
    assert.equal(2 * (3 * 3 + 1), count(html, '<rect class="bar"'))
    assert.truthy(count(html, '<line class="err"') > 0)
  end)

  it("has a confusion-matrix heat map with one cell per pair and counts", function()
    assert.equal(1, count(html, '<svg[^>]-class="heatmap"'))
    assert.equal(9, count(html, '<rect class="cell"'))
    assert.truthy(html:find("true Smileys &amp; Emotion, predicted Food: 0", 1, true))
    -- the darkest cell (row share 1.0) is the full-row Food diagonal
    assert.truthy(html:find('fill="rgb(30,80,160)"><title>true Food, predicted Food: 9', 1, true))
  end)

  it("shows misclassified posts with embedded images, captions, true and predicted labels", function()
    assert.equal(3, count(html, '<div class="post">'))
    assert.equal(2, count(html, '<img src="data:image/png;base64,'))
    -- an unreadable image falls back to its path
    assert.truthy(html:find('<img src="spec/fixtures/report/missing.png"', 1, true))
    local b64 = html:match('<img src="data:image/png;base64,([^"]+)"')
    assert.equal(report.base64(read("spec/fixtures/report/face.png")), b64)
    assert.truthy(html:find("true: Smileys &amp; Emotion", 1, true))
    assert.truthy(html:find("predicted: Food", 1, true))
  end)

  it("has the claims section with verdicts", function()
    assert.truthy(html:find('data-claim="C1" data-holds="true"', 1, true))
    assert.truthy(html:find('data-claim="C2" data-holds="false"', 1, true))
    assert.truthy(html:find('data-claim="C3" data-holds="nil"', 1, true))
    assert.truthy(html:find("C2 does NOT hold (margin -0.012)", 1, true))
  end)
end)

describe("report writing", function()
  it("writes the HTML atomically and leaves no temp file", function()
    local path = tmpname() .. ".html"
    local dir = path:match("^(.*)/")
    report.write_html(path, results())
    assert.equal(report.html(results()), read(path))
    local base, n = path:match("[^/]+$"), 0
    local p = io.popen("ls -a '" .. dir .. "'")
    for name in p:lines() do
      if name:sub(1, #base + 4) == base .. ".tmp" then n = n + 1 end
    end
    p:close()
    assert.equal(0, n)
    os.remove(path)
  end)

  it("replaces an existing file whole", function()
    local path = tmpname()
    local f = assert(io.open(path, "w")); f:write(string.rep("old ", 10000)); f:close()
    report.write_markdown(path, results())
    assert.equal(report.markdown(results()), read(path))
    os.remove(path)
  end)

  it("raises an error naming the path when the folder does not exist", function()
    local ok, err = pcall(report.write_html, "/nonexistent-dir-mmfuse/r.html", results())
    assert.is_false(ok)
    assert.truthy(tostring(err):find("/nonexistent-dir-mmfuse/r.html", 1, true))
  end)
end)
