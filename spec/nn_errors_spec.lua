-- Bad input to mm.nn: each is a Lua error that names the op, the argument and
-- the shapes — never a crash.
local mm = require "mmfuse"

-- assert that f(...) raises an error whose message contains every pattern (plain text)
local function fails(f, ...)
  local pats = { ... }
  return function(...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    err = tostring(err)
    for _, p in ipairs(pats) do
      assert.is_truthy(err:find(p, 1, true), ("message %q lacks %q"):format(err, p))
    end
  end
end

local function raises(pats, f, ...)
  fails(f, table.unpack(pats))(...)
end

describe("nn bad input", function()
  local x23, w45 = mm.randn(2, 3), mm.randn(4, 5)

  describe("wrong shapes", function()
    it("linear: x and weight disagree", function()
      raises({ "linear", "x has shape 2x3", "weight has shape 4x5" }, mm.nn.linear, x23, w45)
    end)
    it("conv2d: weight is not 4-d", function()
      raises({ "conv2d", "weight must be 4-d", "3x3x3" }, mm.nn.conv2d, mm.randn(1, 3, 5, 5), mm.randn(3, 3, 3))
    end)
    it("conv2d: x is 2-d", function()
      raises({ "conv2d", "x must be 4-d", "2x3" }, mm.nn.conv2d, x23, mm.randn(1, 1, 1, 1))
    end)
    it("modality_pool: vectors is not [N, K, D]", function()
      raises({ "modality_pool", "vectors must be 3-d", "2x3" }, mm.nn.modality_pool, x23, { { 1, 1, 1 } })
    end)
    it("global_avg_pool: x is not 4-d", function()
      raises({ "global_avg_pool", "4-d", "2x3" }, mm.nn.global_avg_pool, x23)
    end)
    it("backward: grad_out of the wrong shape", function()
      raises({ "linear_backward", "grad_out has shape 3x3" }, mm.nn.linear_backward, x23, mm.randn(4, 3), nil,
        mm.randn(3, 3))
      raises({ "conv2d_backward", "grad_out", "1x2x9x9" }, mm.nn.conv2d_backward, mm.randn(1, 1, 5, 5),
        mm.randn(2, 1, 3, 3), nil, mm.randn(1, 2, 9, 9), {})
      raises({ "max_pool2d_backward", "grad_out" }, mm.nn.max_pool2d_backward, mm.randn(1, 1, 4, 4), mm.randn(1, 1, 4, 4),
        { kernel = 2 })
    end)
    it("softmax over a dimension other than the last", function()
      raises({ "softmax", "last dimension", "2x3" }, mm.nn.softmax, x23, 1)
    end)
  end)

  describe("wrong types", function()
    it("a string for a tensor", function()
      raises({ "x", "string" }, mm.nn.linear, "x", w45)
      raises({ "weight", "boolean" }, mm.nn.conv2d, mm.randn(1, 1, 3, 3), true)
    end)
    it("an option of the wrong type", function()
      raises({ "conv2d", "stride", "integer", "string" }, mm.nn.conv2d, mm.randn(1, 1, 3, 3), mm.randn(1, 1, 3, 3),
        nil, { stride = "2" })
      raises({ "conv2d", "options", "table" }, mm.nn.conv2d, mm.randn(1, 1, 3, 3), mm.randn(1, 1, 3, 3), nil, 5)
      raises({ "ranking_loss", "hardest", "boolean" }, mm.nn.ranking_loss, x23, x23, { 1, 2 }, { hardest = 1 })
    end)
    it("labels that are not integers", function()
      raises({ "cross_entropy", "labels[2]", "not an integer" }, mm.nn.cross_entropy, x23, { 1, 1.5 })
      raises({ "cross_entropy", "labels[1]", "string" }, mm.nn.cross_entropy, x23, { "a", 1 })
    end)
    it("an unknown pooling mode", function()
      raises({ "modality_pool", "mode", "median" }, mm.nn.modality_pool, mm.randn(1, 2, 3), { { 1, 1 } }, "median")
      raises({ "modality_pool", "mode", "number" }, mm.nn.modality_pool, mm.randn(1, 2, 3), { { 1, 1 } }, 5)
    end)
    it("a mask entry that is neither boolean nor number", function()
      raises({ "modality_pool", "mask", "string" }, mm.nn.modality_pool, mm.randn(1, 2, 3), { { "yes", 1 } })
    end)
  end)

  describe("mismatched sizes", function()
    it("cosine_similarity of 2x3 and 2x4", function()
      raises({ "cosine_similarity", "2x3", "2x4" }, mm.nn.cosine_similarity, x23, mm.randn(2, 4))
    end)
    it("conv2d channels", function()
      raises({ "conv2d", "x has shape 1x3x5x5", "weight has shape 2x2x3x3" }, mm.nn.conv2d, mm.randn(1, 3, 5, 5),
        mm.randn(2, 2, 3, 3))
    end)
    it("conv2d groups that do not divide the channels", function()
      raises({ "conv2d", "groups = 2" }, mm.nn.conv2d, mm.randn(1, 3, 5, 5), mm.randn(3, 1, 3, 3), nil, { groups = 2 })
    end)
    it("a bias of the wrong length", function()
      raises({ "linear", "bias has shape 3", "expected 4" }, mm.nn.linear, mm.randn(2, 5), w45, mm.randn(3))
    end)
    it("labels of the wrong length", function()
      raises({ "cross_entropy", "labels has 3 entries", "2x3" }, mm.nn.cross_entropy, x23, { 1, 2, 3 })
    end)
    it("class weights of the wrong length", function()
      raises({ "nll_loss", "weight has shape 2", "expected 3" }, mm.nn.nll_loss, x23, { 1, 2 },
        { weight = mm.ones(2) })
    end)
    it("a modality mask of the wrong shape", function()
      raises({ "modality_pool", "mask has shape 2x2", "expected 2x3" }, mm.nn.modality_pool, mm.randn(2, 3, 4),
        mm.ones(2, 2))
      raises({ "modality_pool", "mask[2] has 2 entries", "expected 3" }, mm.nn.modality_pool, mm.randn(2, 3, 4),
        { { 1, 1, 1 }, { 1, 1 } })
    end)
    it("a kernel larger than the padded input", function()
      raises({ "conv2d", "larger than the padded input" }, mm.nn.conv2d, mm.randn(1, 1, 2, 2), mm.randn(1, 1, 5, 5))
      raises({ "max_pool2d", "larger than the padded input", "1x1x2x2" }, mm.nn.max_pool2d, mm.randn(1, 1, 2, 2),
        { kernel = 3 })
    end)
    it("margin_ranking_loss inputs of different lengths", function()
      raises({ "margin_ranking_loss", "x2 has shape 3", "x1 has shape 2" }, mm.nn.margin_ranking_loss,
        mm.randn(2), mm.randn(3), mm.ones(2))
    end)
  end)

  describe("negative sizes", function()
    it("pool kernel, stride and padding", function()
      local x = mm.randn(1, 1, 4, 4)
      raises({ "max_pool2d", "kernel size -1" }, mm.nn.max_pool2d, x, { kernel = -1 })
      raises({ "avg_pool2d", "stride -2" }, mm.nn.avg_pool2d, x, { kernel = 2, stride = -2 })
      raises({ "max_pool2d", "padding -1" }, mm.nn.max_pool2d, x, { kernel = 2, padding = -1 })
      raises({ "max_pool2d", "padding 2", "half the kernel" }, mm.nn.max_pool2d, x, { kernel = 3, padding = 2 })
    end)
    it("conv2d stride, padding and groups", function()
      local x, w = mm.randn(1, 1, 4, 4), mm.randn(1, 1, 3, 3)
      raises({ "conv2d", "padding must be >= 0, got -1", "1x1x4x4" }, mm.nn.conv2d, x, w, nil, { padding = -1 })
      raises({ "conv2d", "stride must be >= 1, got 0" }, mm.nn.conv2d, x, w, nil, { stride = 0 })
      raises({ "conv2d", "groups must be >= 1" }, mm.nn.conv2d, x, w, nil, { groups = -1 })
    end)
    it("dropout probability outside [0, 1]", function()
      raises({ "dropout", "p must be in [0, 1]", "2x3" }, mm.nn.dropout, x23, 1.5)
      raises({ "dropout", "p must be in [0, 1]" }, mm.nn.dropout, x23, -0.1)
    end)
  end)

  describe("out-of-range labels and ids", function()
    it("class labels 0 and C+1", function()
      raises({ "cross_entropy", "labels[2] = 0", "out of range 1..3", "2x3" }, mm.nn.cross_entropy, x23, { 1, 0 })
      raises({ "nll_loss", "labels[1] = 4", "out of range 1..3" }, mm.nn.nll_loss, x23, mm.tensor { 4, 1 })
    end)
    it("embedding ids and offsets", function()
      local w = mm.randn(5, 2)
      raises({ "embedding_bag", "ids[2] = 6", "out of range 1..5", "5x2" }, mm.nn.embedding_bag, w, { 1, 6 }, { 0 })
      raises({ "embedding_bag", "ids[1] = 0" }, mm.nn.embedding_bag, w, { 0 }, { 0 })
      raises({ "embedding_bag", "non-decreasing" }, mm.nn.embedding_bag, w, { 1, 2, 3 }, { 0, 2, 1 })
      raises({ "embedding_bag", "offsets[2] = 9", "out of range" }, mm.nn.embedding_bag, w, { 1, 2 }, { 0, 9 })
      raises({ "embedding_bag", "offsets[1] = 3" }, mm.nn.embedding_bag, w, { 1, 2 }, { 3 })
    end)
    it("margin_ranking_loss targets other than 1 and -1", function()
      raises({ "margin_ranking_loss", "y[2]", "expected 1 or -1" }, mm.nn.margin_ranking_loss, mm.randn(2),
        mm.randn(2), mm.tensor { 1, 0 })
    end)
  end)

  describe("NaN in a loss", function()
    it("cross_entropy names the NaN's row", function()
      local logits = mm.tensor { { 1, 2, 3 }, { 0, 0 / 0, 1 } }
      raises({ "cross_entropy", "loss is NaN", "logits (2x3)", "row 2" }, mm.nn.cross_entropy, logits, { 1, 2 })
      raises({ "cross_entropy", "NaN" }, mm.nn.cross_entropy_backward, logits, { 1, 2 })
    end)
    it("nll_loss of log(0) is an infinite loss", function()
      local logp = mm.tensor { { 0, -math.huge } }
      raises({ "nll_loss", "loss is infinite", "logp (1x2)", "column 2" }, mm.nn.nll_loss, logp, { 2 })
    end)
    it("ranking_loss on NaN vectors", function()
      local v = mm.tensor { { 0 / 0, 1 }, { 1, 0 } }
      raises({ "ranking_loss", "NaN", "2x2" }, mm.nn.ranking_loss, v, v, { 1, 2 })
    end)
  end)

  it("modality_pool with a sample that has nothing present", function()
    raises({ "modality_pool", "sample 2 has no modality present", "2x2" }, mm.nn.modality_pool, mm.randn(2, 2, 3),
      { { true, false }, { false, false } })
    raises({ "modality_pool", "sample 1 has no modality present" }, mm.nn.modality_pool_backward, mm.randn(1, 2, 3), { { 0, 0 } },
      mm.randn(1, 3), "mean")
  end)

  it("missing arguments", function()
    raises({ "cross_entropy", "labels missing" }, mm.nn.cross_entropy, x23)
    raises({ "max_pool2d", "kernel" }, mm.nn.max_pool2d, mm.randn(1, 1, 4, 4))
    raises({ "x", "nil" }, mm.nn.relu)
  end)

  it("the state is intact after errors: the ops still work", function()
    for _ = 1, 50 do pcall(mm.nn.conv2d, mm.randn(1, 3, 5, 5), mm.randn(2, 2, 3, 3)) end
    assert.same({ 2, 4 }, mm.nn.linear(mm.randn(2, 5), w45):shape())
  end)
end)
