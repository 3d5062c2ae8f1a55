--- gradcheck: finite-difference checks of the nn kernels against plain-Lua
-- double-precision references.
--
-- Every reference takes flat 1-based arrays of Lua numbers (doubles) plus the
-- sizes, and returns a flat array (or a number for losses). `G.numgrad`
-- differentiates such a function by central differences; `G.check` compares
-- the result with a gradient the C backward returned.
local G = {}

-- ---------------------------------------------------------------- tensors --

--- flat array of a tensor's values (row-major) and its shape
function G.flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then
      for i = 1, #v do walk(v[i]) end
    else
      out[#out + 1] = v
    end
  end
  walk(t:totable())
  return out, t:shape()
end

--- tensor of a given shape from a flat array
function G.tensor(mm, flat, shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  assert(#flat == n, ("G.tensor: %d values for %d elements"):format(#flat, n))
  if #shape == 1 then return mm.tensor(flat) end
  return mm.tensor(flat):reshape(shape)
end

--- largest |a_i - b_i| / max(max |b|, floor)
function G.relerr(a, b, floor)
  assert(#a == #b, ("relerr: %d vs %d values"):format(#a, #b))
  local worst, scale = 0, floor or 1e-3
  for i = 1, #b do scale = math.max(scale, math.abs(b[i])) end
  for i = 1, #a do
    local d = math.abs(a[i] - b[i])
    if d ~= d then return math.huge end
    worst = math.max(worst, d)
  end
  return worst / scale
end

local function dot(out, gout)
  if type(out) == "number" then return out * gout end
  local s = 0
  for i = 1, #out do s = s + out[i] * gout[i] end
  return s
end

--- numerical gradient of  sum(f(args) * gout)  with respect to args[which]
-- (central differences in double precision)
function G.numgrad(f, args, which, gout, h)
  h = h or 1e-5
  local x = args[which]
  local g = {}
  for i = 1, #x do
    local old = x[i]
    x[i] = old + h
    local fp = dot(f(table.unpack(args, 1, args.n or #args)), gout)
    x[i] = old - h
    local fm = dot(f(table.unpack(args, 1, args.n or #args)), gout)
    x[i] = old
    g[i] = (fp - fm) / (2 * h)
  end
  return g
end

--- relative error between an analytic gradient (flat array) and the numeric one
function G.check(f, args, which, gout, analytic, h)
  local num = G.numgrad(f, args, which, gout, h)
  return G.relerr(analytic, num)
end

-- ------------------------------------------------------------- references --
local R = {}
G.ref = R

function R.linear(x, w, b, n, nin, nout)
  local y = {}
  for i = 0, n - 1 do
    for o = 0, nout - 1 do
      local s = b and b[o + 1] or 0
      for k = 0, nin - 1 do s = s + x[i * nin + k + 1] * w[o * nin + k + 1] end
      y[i * nout + o + 1] = s
    end
  end
  return y
end

-- s = {n, c, h, w, o, kh, kw, stride, pad, groups}
function R.conv2d(x, w, b, s)
  local oh = (s.h + 2 * s.pad - s.kh) // s.stride + 1
  local ow = (s.w + 2 * s.pad - s.kw) // s.stride + 1
  local cg, og = s.c // s.groups, s.o // s.groups
  local y = {}
  for n = 0, s.n - 1 do
    for o = 0, s.o - 1 do
      local g = o // og
      for oy = 0, oh - 1 do
        for ox = 0, ow - 1 do
          local acc = b and b[o + 1] or 0
          for ci = 0, cg - 1 do
            local c = g * cg + ci
            for ki = 0, s.kh - 1 do
              local iy = oy * s.stride - s.pad + ki
              if iy >= 0 and iy < s.h then
                for kj = 0, s.kw - 1 do
                  local ix = ox * s.stride - s.pad + kj
                  if ix >= 0 and ix < s.w then
                    acc = acc + x[((n * s.c + c) * s.h + iy) * s.w + ix + 1] *
                      w[((o * cg + ci) * s.kh + ki) * s.kw + kj + 1]
                  end
                end
              end
            end
          end
          y[((n * s.o + o) * oh + oy) * ow + ox + 1] = acc
        end
      end
    end
  end
  return y, oh, ow
end

-- s = {n, c, h, w, k, stride, pad}; kind "max" | "avg" (avg counts padding)
function R.pool2d(x, s, kind)
  local oh = (s.h + 2 * s.pad - s.k) // s.stride + 1
  local ow = (s.w + 2 * s.pad - s.k) // s.stride + 1
  local y = {}
  for p = 0, s.n * s.c - 1 do
    for oy = 0, oh - 1 do
      for ox = 0, ow - 1 do
        local best, sum = -math.huge, 0
        local y0, x0 = oy * s.stride - s.pad, ox * s.stride - s.pad
        local y1 = math.min(y0 + s.k, s.h + s.pad)
        local x1 = math.min(x0 + s.k, s.w + s.pad)
        local count = (y1 - y0) * (x1 - x0)
        for iy = math.max(y0, 0), math.min(y1, s.h) - 1 do
          for ix = math.max(x0, 0), math.min(x1, s.w) - 1 do
            local v = x[(p * s.h + iy) * s.w + ix + 1]
            if v > best then best = v end
            sum = sum + v
          end
        end
        y[(p * oh + oy) * ow + ox + 1] = kind == "max" and best or sum / count
      end
    end
  end
  return y, oh, ow
end

function R.global_avg_pool(x, n, c, hw)
  local y = {}
  for p = 0, n * c - 1 do
    local s = 0
    for j = 1, hw do s = s + x[p * hw + j] end
    y[p + 1] = s / hw
  end
  return y
end

local function map(f)
  return function(x)
    local y = {}
    for i = 1, #x do y[i] = f(x[i]) end
    return y
  end
end
R.relu = map(function(v) return v > 0 and v or 0 end)
R.relu6 = map(function(v) return math.min(math.max(v, 0), 6) end)
R.tanh = map(function(v)
  local e = math.exp(-2 * math.abs(v))
  local t = (1 - e) / (1 + e)
  return v < 0 and -t or t
end)
R.sigmoid = map(function(v) return 1 / (1 + math.exp(-v)) end)

function R.log_softmax(x, rows, cols)
  local y = {}
  for r = 0, rows - 1 do
    local m = -math.huge
    for j = 1, cols do m = math.max(m, x[r * cols + j]) end
    local s = 0
    for j = 1, cols do s = s + math.exp(x[r * cols + j] - m) end
    local ls = math.log(s)
    for j = 1, cols do y[r * cols + j] = x[r * cols + j] - m - ls end
  end
  return y
end

function R.softmax(x, rows, cols)
  local y = R.log_softmax(x, rows, cols)
  for i = 1, #y do y[i] = math.exp(y[i]) end
  return y
end

-- labels 1-based; weight optional per class
function R.nll_loss(logp, labels, n, c, weight)
  local s, ws = 0, 0
  for i = 0, n - 1 do
    local w = weight and weight[labels[i + 1]] or 1
    s = s - w * logp[i * c + labels[i + 1]]
    ws = ws + w
  end
  return s / ws
end

function R.cross_entropy(logits, labels, n, c, weight)
  return R.nll_loss(R.log_softmax(logits, n, c), labels, n, c, weight)
end

-- ids 1-based; offsets 0-based with nbags+1 entries
function R.embedding_bag(w, dim, ids, offsets)
  local y = {}
  for b = 1, #offsets - 1 do
    local lo, hi = offsets[b], offsets[b + 1]
    for j = 1, dim do
      local s = 0
      for k = lo + 1, hi do s = s + w[(ids[k] - 1) * dim + j] end
      y[(b - 1) * dim + j] = hi > lo and s / (hi - lo) or 0
    end
  end
  return y
end

-- mask: flat n*k array of 0/1
function R.modality_pool(x, mask, n, k, d, mode)
  local y = {}
  for i = 0, n - 1 do
    for j = 1, d do
      local best, sum, cnt = -math.huge, 0, 0
      for m = 0, k - 1 do
        if mask[i * k + m + 1] ~= 0 then
          local v = x[(i * k + m) * d + j]
          best = math.max(best, v)
          sum = sum + v
          cnt = cnt + 1
        end
      end
      y[i * d + j] = mode == "max" and best or mode == "sum" and sum or sum / cnt
    end
  end
  return y
end

local function cos_rows(a, ai, b, bi, d)
  local ab, aa, bb = 0, 0, 0
  for j = 1, d do
    local x, y = a[ai * d + j], b[bi * d + j]
    ab, aa, bb = ab + x * y, aa + x * x, bb + y * y
  end
  return ab / math.max(math.sqrt(aa) * math.sqrt(bb), 1e-8)
end

function R.cosine(a, b, n, d)
  local s = {}
  for i = 0, n - 1 do s[i + 1] = cos_rows(a, i, b, i, d) end
  return s
end

-- vmask/tmask: flat arrays of 0/1 or nil
function R.ranking(v, t, labels, n, d, margin, hardest, vmask, tmask)
  local total, anchors = 0, 0
  for i = 0, n - 1 do
    if (not vmask or vmask[i + 1] ~= 0) and (not tmask or tmask[i + 1] ~= 0) then
      local cpos = cos_rows(v, i, t, i, d)
      local sum, cnt, best = 0, 0, -math.huge
      for j = 0, n - 1 do
        if j ~= i and labels[j + 1] ~= labels[i + 1] and (not tmask or tmask[j + 1] ~= 0) then
          local l = math.max(0, margin - cpos + cos_rows(v, i, t, j, d))
          sum, cnt, best = sum + l, cnt + 1, math.max(best, l)
        end
      end
      if cnt > 0 then
        anchors = anchors + 1
        total = total + (hardest and best or sum / cnt)
      end
    end
  end
  return anchors > 0 and total / anchors or 0, anchors
end

function R.margin_ranking(x1, x2, y, margin)
  local s = 0
  for i = 1, #x1 do s = s + math.max(0, -y[i] * (x1[i] - x2[i]) + margin) end
  return s / #x1
end

-- ----------------------------------------------------------------- models --

--- a model parameter's gradient (after the last C.loss_grad) and values, flat,
-- with the parameter's shape and size: gflat, flat, shape, n
function G.model_param(C, m, name)
  local g = C.grad(m._c, name)
  local n = g:numel()
  local w0 = m:param(name)
  return g:reshape(n):totable(), w0:reshape(n):totable(), w0:shape(), n
end

--- central difference of a whole model's loss in parameter `name`, element i:
-- flat/shape are the parameter's values (restored afterwards); C is core.fusion
function G.model_fd(mm, C, m, ds, name, flat, shape, i, eps)
  local keep = flat[i]
  local function loss_at(v)
    flat[i] = v
    m:set_param(name, mm.tensor(flat):reshape(table.unpack(shape)))
    return C.loss_grad(m._c, ds._c)
  end
  local lp, lm = loss_at(keep + eps), loss_at(keep - eps)
  loss_at(keep)
  return (lp - lm) / (2 * eps)
end

return G
