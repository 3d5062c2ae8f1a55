--- mmfuse.report: Markdown tables and a self-contained HTML report of an experiment.
--
--   local report = require "mmfuse.report"
--   print(report.markdown(results))
--   report.write_html("report.html", results)   -- atomic: temp file + rename
--
-- `results` is plain data (specs build it by hand):
--   { title = "...", notes = { "..." },
--     tasks = { { task = "group", title = "...", primary = "accuracy",
--                 metrics = { "accuracy", "macro_f1" },        -- table columns
--                 models = { "text", ... }, conditions = { "both", "text", "image" },
--                 summary = { [model] = { [condition] = { [metric] = { mean =, std =, n = } } } },
--                 claims = { { id =, title =, holds =, margin =, detail = } },
--                 confusion = { classes = {...}, matrix = { {..}, .. }, title = "..." },
--                 misclassified = { { image = "path.png", caption =, truth =, predicted = } } } } }
-- The HTML has inline CSS, inline SVG charts and images as data: URIs (PNG
-- files that cannot be read are linked by their path instead). Every piece of
-- text from the data is escaped.
local report = {}

local COND_LABEL = { both = "text + image", text = "text only", image = "image only", valid = "validation" }
local METRIC_LABEL = { accuracy = "accuracy", macro_f1 = "macro-F1", log_loss = "log-loss" }
local COLORS = { both = "#3b6ea5", text = "#e07b39", image = "#5aa469", valid = "#888888" }

function report.cond_label(c) return COND_LABEL[c] or tostring(c) end
function report.metric_label(m) return METRIC_LABEL[m] or tostring(m) end

--- HTML-escape any value's string form.
function report.escape(s)
  return (tostring(s):gsub("[&<>\"']", {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;",
  }))
end
local esc = report.escape

-- Markdown table cells: pipes and newlines would break the row.
local function mdcell(s)
  return (tostring(s):gsub("|", "\\|"):gsub("[\r\n]+", " "))
end

--- "0.812 ± 0.013" (no ± for a single run, "—" when missing).
function report.fmt(s, digits)
  if type(s) ~= "table" or s.mean == nil then return "—" end
  local d = digits or 3
  if (s.n or 1) > 1 then return ("%." .. d .. "f ± %." .. d .. "f"):format(s.mean, s.std or 0) end
  return ("%." .. d .. "f"):format(s.mean)
end

local function cell(task, model, cond, metric)
  local m = task.summary and task.summary[model]
  local c = m and m[cond]
  return c and c[metric]
end

local function table_metrics(task)
  return task.table_metrics or task.metrics or { task.primary or "accuracy" }
end

local function table_conditions(task)
  return task.conditions or { "both", "text", "image" }
end

--- One Markdown table: a row per model, a column per (metric, condition).
function report.markdown_table(task)
  local metrics, conds = table_metrics(task), table_conditions(task)
  local head, rule = { "model" }, { "---" }
  for _, m in ipairs(metrics) do
    if m ~= "log_loss" then
      for _, c in ipairs(conds) do
        head[#head + 1] = report.metric_label(m) .. ", " .. report.cond_label(c)
        rule[#rule + 1] = "---:"
      end
    end
  end
  local lines = { "| " .. table.concat(head, " | ") .. " |", "| " .. table.concat(rule, " | ") .. " |" }
  for _, model in ipairs(task.models or {}) do
    local row = { mdcell(model) }
    for _, m in ipairs(metrics) do
      if m ~= "log_loss" then
        for _, c in ipairs(conds) do row[#row + 1] = report.fmt(cell(task, model, c, m)) end
      end
    end
    lines[#lines + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  return table.concat(lines, "\n")
end

--- A claim as one line: verdict first.
function report.claim_verdict(c)
  if c.holds == true then return "holds" end
  if c.holds == false then return "does NOT hold" end
  return "not tested"
end

function report.markdown_claims(claims)
  local out = {}
  for _, c in ipairs(claims or {}) do
    local by = c.margin and (" (margin %+.3f)"):format(c.margin) or ""
    out[#out + 1] = ("- **%s %s**%s — %s. %s"):format(mdcell(c.id), report.claim_verdict(c), by, mdcell(c.title or ""),
      mdcell(c.detail or ""))
  end
  return table.concat(out, "\n")
end

--- The whole result set as Markdown.
function report.markdown(results)
  local out = {}
  if results.title then out[#out + 1] = "# " .. mdcell(results.title) .. "\n" end
  for _, n in ipairs(results.notes or {}) do out[#out + 1] = "> " .. mdcell(n) end
  if results.notes and #results.notes > 0 then out[#out + 1] = "" end
  for _, task in ipairs(results.tasks or {}) do
    out[#out + 1] = "## " .. mdcell(task.title or task.task or "task") .. "\n"
    if task.description then out[#out + 1] = mdcell(task.description) .. "\n" end
    out[#out + 1] = report.markdown_table(task) .. "\n"
    if task.claims and #task.claims > 0 then
      out[#out + 1] = ("Claims (on test %s, mean over seeds; choices between models made on validation only):\n")
        :format(report.metric_label(task.primary or task.claims[1].metric or "accuracy"))
      out[#out + 1] = report.markdown_claims(task.claims) .. "\n"
    end
  end
  return table.concat(out, "\n")
end

---------------------------------------------------------------------------
-- base64 and images

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function report.base64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = (v >> 18) & 63, (v >> 12) & 63
    local c3, c4 = (v >> 6) & 63, v & 63
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local MIME = { png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif", bmp = "image/bmp" }

--- A src attribute value for an image: a data: URI when the file can be read
-- (and is below max_bytes), else the path as given (relative links work when
-- the report sits next to the data). A value that already is a data: URI is kept.
function report.image_src(path, max_bytes)
  if type(path) ~= "string" or path == "" then return nil end
  if path:sub(1, 5) == "data:" then return path end
  local ext = (path:match("%.(%w+)$") or ""):lower()
  local mime = MIME[ext]
  if mime then -- a regular file of at most max_bytes (anything else is refused unread)
    local ok, bytes = pcall(require("mmfuse.core").io.read_file, path, { max_bytes = max_bytes or 262144 })
    if ok and #bytes > 0 then return "data:" .. mime .. ";base64," .. report.base64(bytes) end
  end
  return path
end

---------------------------------------------------------------------------
-- SVG charts

local function num(x) return ("%.1f"):format(x) end

--- Grouped bar chart of one metric: a group per model, a bar per condition,
-- whiskers at ± std. Values are drawn on a 0..1 axis (or 0..max when larger).
function report.bar_chart(task, metric)
  local models, conds = task.models or {}, table_conditions(task)
  local bw, gap = 18, 22
  local gw = #conds * bw + gap
  local left, top, h = 44, 28, 180
  local width = left + #models * gw + 20
  local height = top + h + 64
  local ymax = 1
  for _, model in ipairs(models) do
    for _, c in ipairs(conds) do
      local s = cell(task, model, c, metric)
      if s and s.mean and s.mean + (s.std or 0) > ymax then ymax = s.mean + (s.std or 0) end
    end
  end
  local function y(v) return top + h - h * (v / ymax) end
  local o = {}
  o[#o + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'role="img" aria-label="%s">'):format(width, height, width, height,
      esc(report.metric_label(metric) .. " per model and condition"))
  o[#o + 1] = ('<text x="%d" y="16" class="title">%s</text>'):format(left, esc(report.metric_label(metric)))
  for i = 0, 4 do
    local v = ymax * i / 4
    o[#o + 1] = ('<line x1="%d" x2="%d" y1="%s" y2="%s" class="grid"/>'):format(left, width - 10, num(y(v)), num(y(v)))
    o[#o + 1] = ('<text x="%d" y="%s" class="tick" text-anchor="end">%.2f</text>'):format(left - 4, num(y(v) + 4), v)
  end
  for mi, model in ipairs(models) do
    local x0 = left + (mi - 1) * gw + gap / 2
    for ci, c in ipairs(conds) do
      local s = cell(task, model, c, metric)
      if s and s.mean then
        local x = x0 + (ci - 1) * bw
        local v = math.max(0, s.mean)
        o[#o + 1] = ('<rect class="bar" x="%s" y="%s" width="%d" height="%s" fill="%s"><title>%s</title></rect>')
          :format(num(x), num(y(v)), bw - 2, num(top + h - y(v)), COLORS[c] or "#999",
            esc(("%s, %s: %s"):format(model, report.cond_label(c), report.fmt(s))))
        if (s.std or 0) > 0 then
          local cx = x + (bw - 2) / 2
          local lo, hi = math.max(0, s.mean - s.std), s.mean + s.std
          o[#o + 1] = ('<line class="err" x1="%s" x2="%s" y1="%s" y2="%s"/>'):format(num(cx), num(cx), num(y(lo)),
            num(y(hi)))
        end
      end
    end
    o[#o + 1] = ('<text x="%s" y="%d" class="label" text-anchor="middle">%s</text>')
      :format(num(x0 + #conds * bw / 2), top + h + 16, esc(model))
  end
  -- legend
  local lx = left
  for _, c in ipairs(conds) do
    o[#o + 1] = ('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'):format(lx, top + h + 34, COLORS[c] or "#999")
    o[#o + 1] = ('<text x="%d" y="%d" class="tick">%s</text>'):format(lx + 14, top + h + 43, esc(report.cond_label(c)))
    lx = lx + 110
  end
  o[#o + 1] = "</svg>"
  return table.concat(o, "\n")
end

--- Confusion-matrix heat map: rows are true classes, columns predicted;
-- colour is the row-normalised share, the number is the count.
function report.heatmap(conf)
  local classes, mat = conf.classes or {}, conf.matrix or {}
  local n = #classes
  local cs = n > 12 and 22 or 34
  local left, top = 170, 130
  local width, height = left + n * cs + 90, top + n * cs + 30 -- room for the last rotated label
  local o = {}
  o[#o + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'role="img" aria-label="confusion matrix">'):format(width, height, width, height)
  o[#o + 1] = ('<text x="%d" y="%d" class="tick" text-anchor="middle">predicted →</text>'):format(left + n * cs // 2,
    height - 8)
  for j, name in ipairs(classes) do
    local x = left + (j - 1) * cs + cs / 2
    o[#o + 1] = ('<text class="tick" transform="translate(%s,%d) rotate(-45)">%s</text>'):format(num(x), top - 6,
      esc(name))
  end
  for i, name in ipairs(classes) do
    local row = mat[i] or {}
    local total = 0
    for j = 1, n do total = total + (row[j] or 0) end
    local yy = top + (i - 1) * cs
    o[#o + 1] = ('<text x="%d" y="%s" class="tick" text-anchor="end">%s</text>'):format(left - 6, num(yy + cs / 2 + 4),
      esc(name))
    for j = 1, n do
      local v = row[j] or 0
      local share = total > 0 and v / total or 0
      -- white -> deep blue; the diagonal in the same scale
      local r = math.floor(255 - share * (255 - 30))
      local g = math.floor(255 - share * (255 - 80))
      local b = math.floor(255 - share * (255 - 160))
      o[#o + 1] = ('<rect class="cell" x="%d" y="%d" width="%d" height="%d" fill="rgb(%d,%d,%d)">'
        .. '<title>%s</title></rect>'):format(left + (j - 1) * cs, yy, cs - 1, cs - 1, r, g, b,
          esc(("true %s, predicted %s: %s"):format(name, classes[j], tostring(v))))
      if v ~= 0 then
        o[#o + 1] = ('<text x="%s" y="%s" class="count%s" text-anchor="middle">%s</text>')
          :format(num(left + (j - 1) * cs + cs / 2), num(yy + cs / 2 + 4), share > 0.5 and " on" or "", esc(v))
      end
    end
  end
  o[#o + 1] = "</svg>"
  return table.concat(o, "\n")
end

---------------------------------------------------------------------------
-- HTML

local CSS = [[
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.note{color:#555;background:#f6f6f6;border-left:4px solid #bbb;padding:.4em .8em;margin:.4em 0}
table.results{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
table.results th,table.results td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
table.results th:first-child,table.results td:first-child{text-align:left}
table.results thead th{background:#f0f3f7}
.claims li{margin:.4em 0} .holds{color:#176b2c;font-weight:600} .fails{color:#a11;font-weight:600}
.untested{color:#777;font-weight:600}
svg text{font:11px sans-serif;fill:#333} svg .title{font-size:13px;font-weight:600}
svg .grid{stroke:#e3e3e3} svg .err{stroke:#222;stroke-width:1.2} svg .count{font-size:10px} svg .count.on{fill:#fff}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}
.posts{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.8em}
.post{border:1px solid #ddd;border-radius:6px;padding:.5em;display:flex;gap:.6em;align-items:center}
.post img{width:64px;height:64px;image-rendering:pixelated;flex:none;background:#fafafa}
.post .cap{font-weight:600} .post .lab{font-size:.85em;color:#555}
.post .pred{color:#a11}
]]

local function html_table(task)
  local metrics, conds = table_metrics(task), table_conditions(task)
  local o = { '<table class="results"><thead><tr><th rowspan="2">model</th>' }
  local shown = {}
  for _, m in ipairs(metrics) do
    if m ~= "log_loss" then
      shown[#shown + 1] = m
      o[#o + 1] = ('<th colspan="%d">%s</th>'):format(#conds, esc(report.metric_label(m)))
    end
  end
  o[#o + 1] = "</tr><tr>"
  for _ = 1, #shown do
    for _, c in ipairs(conds) do o[#o + 1] = "<th>" .. esc(report.cond_label(c)) .. "</th>" end
  end
  o[#o + 1] = "</tr></thead><tbody>"
  for _, model in ipairs(task.models or {}) do
    o[#o + 1] = "<tr><td>" .. esc(model) .. "</td>"
    for _, m in ipairs(shown) do
      for _, c in ipairs(conds) do o[#o + 1] = "<td>" .. esc(report.fmt(cell(task, model, c, m))) .. "</td>" end
    end
    o[#o + 1] = "</tr>"
  end
  o[#o + 1] = "</tbody></table>"
  return table.concat(o)
end

local function html_claims(task)
  local o = { '<ul class="claims">' }
  for _, c in ipairs(task.claims or {}) do
    local cls = c.holds == true and "holds" or (c.holds == false and "fails" or "untested")
    local by = c.margin and (" (margin %+.3f)"):format(c.margin) or ""
    o[#o + 1] = ('<li class="claim" data-claim="%s" data-holds="%s"><span class="%s">%s %s%s</span> — %s<br>%s</li>')
      :format(esc(c.id), esc(tostring(c.holds)), cls, esc(c.id), esc(report.claim_verdict(c)), esc(by),
        esc(c.title or ""), esc(c.detail or ""))
  end
  o[#o + 1] = "</ul>"
  return table.concat(o, "\n")
end

local function html_posts(posts)
  local o = { '<div class="posts">' }
  for _, p in ipairs(posts) do
    local src = report.image_src(p.image)
    o[#o + 1] = '<div class="post">'
    if src then
      o[#o + 1] = ('<img src="%s" alt="%s">'):format(esc(src), esc(p.caption or ""))
    else
      o[#o + 1] = '<div class="noimg">(no image)</div>'
    end
    o[#o + 1] = ('<div><div class="cap">%s</div><div class="lab">true: %s</div>'
      .. '<div class="lab pred">predicted: %s</div></div></div>'):format(esc(p.caption or "(no text)"),
        esc(p.truth or "?"), esc(p.predicted or "?"))
  end
  o[#o + 1] = "</div>"
  return table.concat(o, "\n")
end

--- The report as one HTML string.
function report.html(results)
  local o = {}
  local title = results.title or "mmfuse experiment"
  o[#o + 1] = "<!DOCTYPE html>"
  o[#o + 1] = '<html lang="en"><head><meta charset="utf-8">'
  o[#o + 1] = "<title>" .. esc(title) .. "</title>"
  o[#o + 1] = "<style>" .. CSS .. "</style></head><body>"
  o[#o + 1] = "<h1>" .. esc(title) .. "</h1>"
  for _, n in ipairs(results.notes or {}) do o[#o + 1] = '<p class="note">' .. esc(n) .. "</p>" end
  for ti, task in ipairs(results.tasks or {}) do
    local id = "task-" .. ti
    o[#o + 1] = ('<section class="task" id="%s">'):format(id)
    o[#o + 1] = "<h2>" .. esc(task.title or task.task or "task") .. "</h2>"
    if task.description then o[#o + 1] = "<p>" .. esc(task.description) .. "</p>" end
    o[#o + 1] = "<h3>Results (mean ± std over seeds, test split)</h3>"
    o[#o + 1] = html_table(task)
    if task.claims and #task.claims > 0 then
      o[#o + 1] = ("<h3>The paper's claims (test %s; any choice between models made on validation only)</h3>")
        :format(esc(report.metric_label(task.primary or "accuracy")))
      o[#o + 1] = html_claims(task)
    end
    o[#o + 1] = "<h3>Charts</h3><div class=\"charts\">"
    for _, m in ipairs(table_metrics(task)) do
      if m ~= "log_loss" then o[#o + 1] = report.bar_chart(task, m) end
    end
    o[#o + 1] = "</div>"
    if task.confusion and task.confusion.classes then
      o[#o + 1] = "<h3>" .. esc(task.confusion.title or "Confusion matrix (test)") .. "</h3>"
      o[#o + 1] = report.heatmap(task.confusion)
    end
    if task.misclassified and #task.misclassified > 0 then
      o[#o + 1] = "<h3>" .. esc(task.misclassified_title or
        ("%d misclassified test posts"):format(#task.misclassified)) .. "</h3>"
      o[#o + 1] = html_posts(task.misclassified)
    end
    o[#o + 1] = "</section>"
  end
  o[#o + 1] = "</body></html>\n"
  return table.concat(o, "\n")
end

--- Write `text` to `path` atomically: a temp file in the same folder, then rename.
function report.write_atomic(path, text)
  local tmp = ("%s.tmp-%d-%d"):format(path, os.time(), math.random(1, 1 << 30))
  local f, err = io.open(tmp, "wb")
  if not f then error(("cannot write %s: %s"):format(path, tostring(err)), 2) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    error(("cannot write %s: %s"):format(path, tostring(werr or cerr)), 2)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    error(("cannot rename %s to %s: %s"):format(tmp, path, tostring(rerr)), 2)
  end
  return path
end

function report.write_html(path, results)
  return report.write_atomic(path, report.html(results))
end

function report.write_markdown(path, results)
  return report.write_atomic(path, report.markdown(results))
end

return report
