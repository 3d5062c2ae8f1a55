-- busted output handler: a dot per test, every failure and error named with
-- its place and message, then the one closing line CI reads:
-- "N passed, N failed" (errors count as failed).
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.base'()
  local out = io.stdout

  local function show(kind, t)
    local message = t.message
    if type(message) ~= 'string' then message = tostring(message) end
    out:write(("\n%s: %s\n"):format(kind, t.name or '?'))
    local tr = t.trace or (t.element and t.element.trace)
    if tr and tr.short_src then out:write(("  at %s:%s\n"):format(tr.short_src, tostring(tr.currentline))) end
    out:write("  " .. message:gsub("\n", "\n  ") .. "\n")
  end

  handler.testEnd = function(element, parent, status)
    out:write(status == 'success' and '.' or status == 'pending' and '*' or 'F')
    out:flush()
    return nil, true
  end

  handler.suiteEnd = function()
    out:write("\n")
    for _, t in ipairs(handler.failures) do show("FAIL", t) end
    for _, t in ipairs(handler.errors) do show("ERROR", t) end
    local passed = #handler.successes
    local failed = #handler.failures + #handler.errors
    if #handler.pendings > 0 then out:write(("(%d pending)\n"):format(#handler.pendings)) end
    -- which dispatch path ran: a failure report from another machine says where it came from
    local ok, core = pcall(require, "mmfuse.core")
    if ok then
      local c = core.cpu()
      out:write(("kernel level %s%s (CPU %s, %s; best %s; OpenBLAS core %s)\n"):format(c.kernel,
        os.getenv("MMFUSE_KERNEL") and " (MMFUSE_KERNEL)" or "", c.brand, c.vendor, c.hw_best, c.blas_core))
    end
    out:write(("%d passed, %d failed\n"):format(passed, failed))
    out:flush()
    return nil, true
  end

  busted.subscribe({ 'test', 'end' }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ 'suite', 'end' }, handler.suiteEnd)
  return handler
end
