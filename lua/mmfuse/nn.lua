--- Functional layers, as in `torch.nn.functional` (module `mm.nn`).
--
-- Every op is a C forward/backward pair (csrc/nn/*.c). Tensors are float32,
-- row-major; arguments may be tensors or nested Lua tables. Weights use
-- PyTorch's layouts (linear `[out, in]`, conv2d `[out, in/groups, kh, kw]`),
-- images are NCHW (a 3-d `[C, H, W]` input is one unbatched image).
-- Class labels and embedding ids are **1-based** (a Lua table of integers or
-- a tensor holding integral values).
--
-- **Backward from Lua.** For every op `f` there is `f_backward(<the same
-- inputs>, grad_out[, opts])`, which returns the gradient of each
-- differentiable input, in the order of the inputs (for example
-- `linear_backward(x, w, b, gy)` returns `gx, gw, gb`). Losses take
-- `grad_out` as a number (default 1). Parameter gradients are fresh tensors
-- (the C kernels accumulate into them from zero).
--
-- **Errors.** Bad shapes, types, sizes, ranges and NaN losses raise a Lua
-- error that names the op, the argument and the shapes, e.g.
-- `linear: x has shape 2x3 but weight has shape 4x5 (last dim of x must be 5)`.
--
--     local mm = require "mmfuse"
--     local x = mm.randn(8, 3, 32, 32)
--     local h = mm.nn.relu(mm.nn.conv2d(x, mm.randn(16, 3, 3, 3), nil, { padding = 1 }))
--     local p = mm.nn.global_avg_pool(mm.nn.max_pool2d(h, { kernel = 2 }))
--     local loss = mm.nn.cross_entropy(mm.nn.linear(p, mm.randn(5, 16)), { 1, 2, 3, 4, 5, 1, 2, 3 })
-- @module mmfuse.nn
local core = require "mmfuse.core"
local C = core.nn

local M = {}
for k, v in pairs(C) do M[k] = v end

--- `y = x . w^T + b` over the last dimension of `x` (any leading shape).
-- @function linear
-- @tparam Tensor x `[..., in]`
-- @tparam Tensor w `[out, in]`
-- @tparam[opt] Tensor b `[out]`
-- @treturn Tensor `[..., out]`

--- Gradients of `linear`.
-- @function linear_backward
-- @return gx, gw, gb (gb is nil without a bias)

--- 2-d convolution (cross-correlation, like PyTorch), im2col + sgemm.
-- @function conv2d
-- @tparam Tensor x `[N, C, H, W]` (or `[C, H, W]`)
-- @tparam Tensor w `[O, C/groups, kh, kw]`
-- @tparam[opt] Tensor b `[O]`
-- @tparam[opt] table opts `{ stride = 1, padding = 0, groups = 1 }` (integers)
-- @treturn Tensor `[N, O, OH, OW]`, `OH = (H + 2 padding - kh) // stride + 1`

--- `conv2d_backward(x, w, b, gy, opts)` returns gx, gw, gb.
-- @function conv2d_backward

--- Inference of a small CNN in one call: per block a k x k convolution (stride 1,
-- padding k // 2), bias, ReLU and, with `pool = true`, a 2x2 max pool; then a global
-- average pool. The model's CNN encoder predicts with it. Direct convolution, one image
-- at a time (no im2col): the same sums as `conv2d` + `relu` + `max_pool2d` +
-- `global_avg_pool`, in another order (equal to float rounding). With the AVX-512 kernel,
-- 3x3 blocks with at least 8 input channels run as Winograd F(4x4, 3x3) (36 products
-- per 4x4 outputs instead of 144; about 1e-6 of the output's scale away from the
-- direct sums); `winograd = false` keeps every block direct. Images are split over
-- `mm.threads()`; the result does not depend on the thread count or on how many images
-- are passed at once. (`conv2d` with stride 1 and "same" padding runs on the same code.)
-- @function cnn_forward
-- @tparam Tensor x `[N, C, H, W]`
-- @tparam table blocks 1 to 8 of `{ weight = [O, C, k, k] (k odd, <= 11), bias = [O] (optional), pool = false }`
-- @tparam[opt] table opts `{ winograd = true }`
-- @treturn Tensor `[N, O]` of the last block

--- Max pooling with implicit -inf padding (`padding <= kernel/2`), floor mode.
-- Options as a table `{ kernel =, stride = kernel, padding = 0 }` or
-- positionally `max_pool2d(x, kernel[, stride[, padding]])`.
-- @function max_pool2d

--- `max_pool2d_backward(x, gy, opts)` returns gx.
-- @function max_pool2d_backward

--- Average pooling; padding zeros count in the divisor (PyTorch's default
-- `count_include_pad = true`). Options as for `max_pool2d`.
-- @function avg_pool2d

--- `avg_pool2d_backward(x, gy, opts)` returns gx.
-- @function avg_pool2d_backward

--- Mean over H and W: `[N, C, H, W]` -> `[N, C]`.
-- @function global_avg_pool

--- `global_avg_pool_backward(x, gy)` returns gx.
-- @function global_avg_pool_backward

--- Elementwise activations (any shape): `relu`, `relu6`, `tanh`, `sigmoid`;
-- backward: `relu_backward(x, gy)` etc. return gx.
-- @function relu

--- Inverted dropout: each element is zeroed with probability `p` and the
-- others scaled by `1/(1-p)`, drawn from the global generator (`mm.seed`).
-- @function dropout
-- @tparam Tensor x
-- @tparam[opt=0.5] number p in [0, 1]
-- @tparam[opt=true] boolean training when false, `y` is a copy of `x`
-- @return y, mask (mask is nil when not training)

--- `dropout_backward(x, gy, mask)` returns `gx = gy * mask` (`gy` when mask is nil).
-- @function dropout_backward

--- Softmax over the last dimension, shifted by the row maximum (stable for
-- logits of any magnitude). An optional `dim` must name the last dimension.
-- @function softmax

--- Log-softmax over the last dimension (stable).
-- @function log_softmax

--- `softmax_backward(x, gy)` / `log_softmax_backward(x, gy)` return gx.
-- @function softmax_backward

--- Negative log-likelihood of log-probabilities, mean over the batch
-- (weighted: `sum w[y_i] l_i / sum w[y_i]`, as PyTorch).
-- @function nll_loss
-- @tparam Tensor logp `[N, C]` (or `[C]`)
-- @param labels table or tensor of N class indices in 1..C
-- @tparam[opt] table opts `{ weight = Tensor[C] }`
-- @treturn number the loss; a NaN/Inf loss is an error naming the row

--- `nll_loss_backward(logp, labels, grad_out = 1, opts)` returns glogp.
-- @function nll_loss_backward

--- Cross entropy on logits (log-softmax + NLL), mean over the batch.
-- Arguments as `nll_loss`.
-- @function cross_entropy

--- `cross_entropy_backward(logits, labels, grad_out = 1, opts)` returns glogits.
-- @function cross_entropy_backward

--- Mean of embedding rows per bag.
--
-- `ids` are 1-based row numbers (table or tensor). `offsets` tells where each
-- bag starts in `ids`; both conventions are accepted:
--
--  * PyTorch style: one start per bag, `{0, 3, 5}` (three bags, the last runs
--    to the end of `ids`);
--  * CSR: `nbags + 1` bounds ending with `#ids`, `{0, 3, 5, 8}`.
--
-- When the last offset equals `#ids` (and there are at least two), the CSR
-- reading is used; pass `{ include_last_offset = false }` to force the
-- PyTorch reading (then that last bag is empty), or `true` to force CSR.
-- Offsets may be 0-based counts (first entry 0) or 1-based positions (first
-- entry 1). Without offsets, `ids` must be 2-d (a `[B, L]` tensor or a table
-- of equal-length tables): one bag per row. An empty bag gives a zero row.
-- @function embedding_bag
-- @tparam Tensor weight `[rows, dim]`
-- @param ids
-- @param[opt] offsets
-- @tparam[opt] table opts `{ include_last_offset = bool }`
-- @treturn Tensor `[nbags, dim]`

--- `embedding_bag_backward(weight, ids, offsets, gy[, opts])` returns gweight
-- (dense, `[rows, dim]`).
-- @function embedding_bag_backward

--- Pool K modality vectors per sample over the modalities present.
-- @function modality_pool
-- @tparam Tensor vectors `[N, K, D]`
-- @param mask `[N, K]` tensor (non-zero = present) or table of tables of booleans/numbers
-- @tparam[opt="max"] string mode `"max"`, `"mean"` or `"sum"`
-- @treturn Tensor `[N, D]`; a sample with no modality present is an error

--- `modality_pool_backward(vectors, mask, gy, mode)` returns gvectors.
-- @function modality_pool_backward

--- Row-wise cosine similarity `a.b / max(|a||b|, 1e-8)`.
-- @function cosine_similarity
-- @tparam Tensor a `[N, D]` (or `[D]`)
-- @tparam Tensor b same shape
-- @treturn Tensor `[N]` (shape `[1]` for 1-d inputs)

--- `cosine_similarity_backward(a, b, gs)` returns ga, gb.
-- @function cosine_similarity_backward

--- The common-space auxiliary hinge loss (nn.h, mm_ranking_loss): for each
-- anchor i with image v_i and text t_i present and negatives j (text present,
-- other label), `l_ij = max(0, margin - cos(v_i, t_i) + cos(v_i, t_j))`;
-- mean over negatives (or the hardest), then mean over anchors with at least
-- one negative (0 when there are none).
-- @function ranking_loss
-- @tparam Tensor v `[N, D]`
-- @tparam Tensor t `[N, D]`
-- @param labels N integer labels (only equality matters)
-- @tparam[opt] table opts `{ margin = 0.2, hardest = false, vmask =, tmask = }`
--   (masks: N booleans/numbers or a tensor `[N]`)
-- @return loss (number), anchors (number of anchors used)

--- `ranking_loss_backward(v, t, labels, grad_out = 1, opts)` returns gv, gt.
-- @function ranking_loss_backward

--- `torch.nn.functional.margin_ranking_loss`: `mean(max(0, -y (x1 - x2) + margin))`.
-- @function margin_ranking_loss
-- @tparam Tensor x1
-- @tparam Tensor x2 same shape
-- @tparam Tensor y same shape, entries 1 or -1
-- @param[opt=0] margin a number (or `{ margin = }`)
-- @treturn number

--- `margin_ranking_loss_backward(x1, x2, y, grad_out = 1, margin)` returns g1, g2.
-- @function margin_ranking_loss_backward

--- Batch normalisation with running statistics (inference):
-- `batch_norm(x, running_mean, running_var[, weight[, bias[, eps = 1e-5]]])`.
-- @function batch_norm

--- In-place SGD step with torch.optim.SGD semantics (dampening 0):
-- `sgd_step(param, grad, velocity_or_nil, { lr =, momentum = 0, weight_decay = 0 })`.
-- @function sgd_step

--- In-place Adam step with torch.optim.Adam semantics (L2 weight decay):
-- `adam_step(param, grad, m, v, step, { lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0 })`
-- (`step` counts from 1).
-- @function adam_step
return M
