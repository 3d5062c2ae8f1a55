-- Fast paths of the nn kernels (csrc/nn: max-pool 2x2/stride 2, depthwise conv,
-- matrix-form ranking loss) against plain-Lua references.
local mm = require "mmfuse"

local flat = require("gradcheck").flat

describe("nn fast paths", function()
  before_each(function() mm.seed(7) end)

  it("max_pool2d 2x2 stride 2: value, argmax (first max wins) and first-NaN propagation", function()
    local n, c, h, w = 2, 3, 5, 6
    local vals = {}
    for i = 1, n * c * h * w do vals[i] = ((i * 37) % 11) - 5.0 end -- many ties
    vals[8] = 0 / 0
    vals[9] = 0 / 0
    vals[40] = -math.huge
    local x = mm.tensor(vals):reshape { n, c, h, w }
    local y = mm.nn.max_pool2d(x, { kernel = 2, stride = 2 })
    assert.same({ n, c, 2, 3 }, y:shape())
    local gy = mm.ones(n, c, 2, 3)
    local gx = flat(mm.nn.max_pool2d_backward(x, gy, { kernel = 2, stride = 2 }))
    local yf = flat(y)
    local k = 0
    local want_gx = {}
    for i = 1, #vals do want_gx[i] = 0 end
    for p = 0, n * c - 1 do
      for oy = 0, 1 do
        for ox = 0, 2 do
          local best, bi = -math.huge, nil
          for dy = 0, 1 do
            for dx = 0, 1 do
              local idx = p * h * w + (2 * oy + dy) * w + 2 * ox + dx + 1
              local v = vals[idx]
              if bi == nil then best, bi = v, idx
              elseif best == best and (v > best or v ~= v) then best, bi = v, idx end
            end
          end
          k = k + 1
          if best ~= best then assert.is_true(yf[k] ~= yf[k], "NaN expected at " .. k)
          else assert.equal(best, yf[k]) end
          want_gx[bi] = want_gx[bi] + 1
        end
      end
    end
    assert.same(want_gx, gx)
  end)

  it("depthwise conv2d (groups == channels, multiplier 2) matches per-group convolutions", function()
    local x, wt, b = mm.randn(2, 3, 7, 6), mm.randn(6, 1, 3, 3), mm.randn(6)
    for _, o in ipairs { { stride = 1, padding = 1 }, { stride = 2, padding = 1 }, { stride = 2, padding = 0 } } do
      local y = mm.nn.conv2d(x, wt, b, { stride = o.stride, padding = o.padding, groups = 3 })
      local yf, xf, wf, bf = flat(y), flat(x), flat(wt), flat(b)
      local sh = y:shape()
      local oh, ow = sh[3], sh[4]
      local k = 0
      for i = 0, 1 do
        for oc = 0, 5 do
          local ci = oc // 2
          for oy = 0, oh - 1 do
            for ox = 0, ow - 1 do
              local s = bf[oc + 1]
              for ki = 0, 2 do
                for kj = 0, 2 do
                  local iy, ix = oy * o.stride - o.padding + ki, ox * o.stride - o.padding + kj
                  if iy >= 0 and iy < 7 and ix >= 0 and ix < 6 then
                    s = s + wf[oc * 9 + ki * 3 + kj + 1] * xf[((i * 3 + ci) * 7 + iy) * 6 + ix + 1]
                  end
                end
              end
              k = k + 1
              assert.is_true(math.abs(yf[k] - s) < 1e-4 * (1 + math.abs(s)), ("y[%d] %g vs %g"):format(k, yf[k], s))
            end
          end
        end
      end
    end
  end)

  it("ranking_loss ignores NaN in rows that take no part (masked)", function()
    local v, t = mm.randn(4, 5), mm.randn(4, 5)
    local v2, t2 = v:clone(), t:clone()
    -- row 3 of v and row 4 of t are masked out: poison them
    for j = 1, 5 do
      v2:set(3, j, 0 / 0)
      t2:set(4, j, 0 / 0)
    end
    local labels = { 1, 2, 1, 2 }
    local opts = { margin = 0.5, vmask = { 1, 1, 0, 1 }, tmask = { 1, 1, 1, 0 } }
    local l1 = mm.nn.ranking_loss(v, t, labels, opts)
    local l2 = mm.nn.ranking_loss(v2, t2, labels, opts)
    assert.equal(l1, l2)
    local gv1, gt1 = mm.nn.ranking_loss_backward(v, t, labels, 1.0, opts)
    local gv2, gt2 = mm.nn.ranking_loss_backward(v2, t2, labels, 1.0, opts)
    assert.same(flat(gv1), flat(gv2))
    assert.same(flat(gt1), flat(gt2))
  end)

  it("ranking_loss above 4096 rows (the per-pair form) agrees with the matrix form", function()
    -- 4100 rows, only the first 12 present in t: the same anchors and negatives as the
    -- 12-row problem, which runs the matrix form
    mm.seed(21)
    local N, n, d = 4100, 12, 6
    local v, t = mm.randn(N, d), mm.randn(N, d)
    local labels, tmask = {}, {}
    for i = 1, N do
      labels[i] = (i % 3) + 1
      tmask[i] = i <= n and 1 or 0
    end
    local opts = { margin = 0.7, tmask = tmask }
    local small = { margin = 0.7 }
    local vs, ts = v:rows(1, n), t:rows(1, n)
    local lab = { table.unpack(labels, 1, n) }
    local big_loss = mm.nn.ranking_loss(v, t, labels, opts)
    local small_loss = mm.nn.ranking_loss(vs, ts, lab, small)
    assert.is_true(math.abs(big_loss - small_loss) < 1e-5, ("%g vs %g"):format(big_loss, small_loss))
    local gv, gt = mm.nn.ranking_loss_backward(v, t, labels, 1.0, opts)
    local gvs, gts = mm.nn.ranking_loss_backward(vs, ts, lab, 1.0, small)
    assert.is_true(mm.allclose(gv:rows(1, n), gvs, 1e-5))
    assert.is_true(mm.allclose(gt:rows(1, n), gts, 1e-5))
    assert.equal(0, (gv:rows(n + 1, N):abs():max()))
  end)
end)
