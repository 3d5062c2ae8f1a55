#!/usr/bin/python3
"""Write PyTorch reference fixtures for the nn specs (spec/fixtures/torch/*.json).

Run with Debian's python3 + python3-torch:  /usr/bin/python3 tools/make_torch_fixtures.py
The suite reads the committed JSON files with lua-cjson and never needs torch.

Every file holds {"torch": version, "cases": [case, ...]}; a case is
  {"name": str, "args": {name: T}, "opts": {...}, "out": T | number,
   "grad_out": T | number, "grads": {input name: T}}
with T = {"shape": [...], "data": [flat row-major values]}. Values are float32
printed with 9 significant digits (round-trips float32 exactly). Labels and ids
are 1-based, as the Lua face takes them.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures", "torch")
torch.manual_seed(20170901)


def T(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.reshape(-1).tolist()]}


def rnd(*shape, scale=1.0):
    # round-trip through the 9-digit text so torch sees exactly what Lua reads
    t = torch.randn(*shape) * scale
    return torch.tensor([float("%.9g" % v) for v in t.reshape(-1).tolist()], dtype=torch.float32).reshape(shape)


def leaf(t):
    return t.clone().requires_grad_(True)


def case(name, args, fn, grad_names, opts=None, extra=None):
    """args: ordered dict of name -> tensor (or other JSON value); fn(**leaves) -> output."""
    leaves = {}
    for k, v in args.items():
        if isinstance(v, torch.Tensor) and k in grad_names:
            leaves[k] = leaf(v)
        else:
            leaves[k] = v
    out = fn(**leaves)
    if out.dim() == 0:
        g = torch.tensor(float("%.9g" % float(torch.rand(()) + 0.5)))
        out_j, g_j = float(out), float(g)
    else:
        g = rnd(*out.shape)
        out_j, g_j = T(out), T(g)
    out.backward(g)
    c = {
        "name": name,
        "args": {k: (T(v) if isinstance(v, torch.Tensor) else v) for k, v in args.items()},
        "opts": opts or {},
        "out": out_j,
        "grad_out": g_j,
        "grads": {k: T(leaves[k].grad) for k in grad_names},
    }
    if extra:
        c.update(extra)
    return c


def write(op, cases):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, op + ".json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path), len(cases), "cases")


def linear():
    cs = []
    for name, n, i, o, bias in [("basic", 4, 5, 3, True), ("batch1", 1, 6, 2, True), ("nobias", 3, 4, 5, False)]:
        args = {"x": rnd(n, i), "weight": rnd(o, i)}
        if bias:
            args["bias"] = rnd(o)
        gn = list(args.keys())
        cs.append(case(name, args, lambda x, weight, bias=None: F.linear(x, weight, bias), gn))
    write("linear", cs)


def conv2d():
    cs = []
    specs = [
        ("basic", (2, 3, 6, 6), (4, 3, 3, 3), 1, 0, 1),
        ("stride2_pad1", (2, 3, 7, 7), (4, 3, 3, 3), 2, 1, 1),
        ("depthwise", (2, 3, 5, 5), (3, 1, 3, 3), 1, 1, 3),
        ("groups2_rect", (1, 4, 5, 4), (6, 2, 2, 3), 1, 1, 2),
        ("image1x1_k1", (1, 2, 1, 1), (3, 2, 1, 1), 1, 0, 1),
        ("image1x1_k3_pad1", (1, 2, 1, 1), (2, 2, 3, 3), 1, 1, 1),
        ("batch1_stride2", (1, 2, 6, 5), (3, 2, 2, 2), 2, 0, 1),
    ]
    for name, xs, ws, s, p, g in specs:
        args = {"x": rnd(*xs), "weight": rnd(*ws), "bias": rnd(ws[0])}
        cs.append(case(name, args, lambda x, weight, bias, s=s, p=p, g=g: F.conv2d(x, weight, bias, s, p, 1, g),
                       ["x", "weight", "bias"], opts={"stride": s, "padding": p, "groups": g}))
    write("conv2d", cs)


def pools():
    specs = [("k2s2", (2, 3, 6, 6), 2, 2, 0), ("k3s2p1", (2, 2, 7, 7), 3, 2, 1), ("k3s1p1_image1x1", (1, 2, 1, 1), 3, 1, 1),
             ("k2s1p1_batch1", (1, 1, 4, 5), 2, 1, 1)]
    for op, fn in [("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)]:
        cs = []
        for name, xs, k, s, p in specs:
            cs.append(case(name, {"x": rnd(*xs)}, lambda x, k=k, s=s, p=p, fn=fn: fn(x, k, s, p), ["x"],
                           opts={"kernel": k, "stride": s, "padding": p}))
        write(op, cs)
    cs = [case("basic", {"x": rnd(2, 3, 4, 5)}, lambda x: x.mean((2, 3)), ["x"]),
          case("image1x1", {"x": rnd(1, 4, 1, 1)}, lambda x: x.mean((2, 3)), ["x"])]
    write("global_avg_pool", cs)


def activations():
    cs = []
    for op, fn in [("relu", F.relu), ("relu6", F.relu6), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid)]:
        cs.append(case(op, {"x": rnd(3, 4, scale=4.0)}, lambda x, fn=fn: fn(x), ["x"], extra={"op": op}))
    write("activation", cs)


def softmaxes():
    big = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4 + 2.0, -1e4, -1e4 + 1.0], [0.5, -0.5, 1e4, 3.0]])
    for op, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
        cs = [case("basic", {"x": rnd(3, 5, scale=2.0)}, lambda x, fn=fn: fn(x, -1), ["x"]),
              case("large_logits", {"x": big.clone()}, lambda x, fn=fn: fn(x, -1), ["x"]),
              case("vector", {"x": rnd(6)}, lambda x, fn=fn: fn(x, -1), ["x"]),
              case("batch1_3d", {"x": rnd(1, 2, 4)}, lambda x, fn=fn: fn(x, -1), ["x"])]
        write(op, cs)


def losses():
    cs = []
    for name, n, c, weighted, scale in [("basic", 4, 5, False, 1.0), ("weighted", 6, 3, True, 1.0),
                                        ("batch1", 1, 4, False, 1.0), ("large_logits", 3, 4, False, 1e4)]:
        labels = torch.randint(0, c, (n,))
        w = torch.rand(c) + 0.5 if weighted else None
        logits = rnd(n, c, scale=scale)
        opts = {"weight": T(w)} if weighted else {}
        lab = [int(v) + 1 for v in labels]
        cs.append(case(name, {"logits": logits, "labels": lab},
                       lambda logits, labels, w=w, lt=labels: F.cross_entropy(logits, lt, weight=w), ["logits"], opts=opts))
    write("cross_entropy", cs)
    cs = []
    for name, n, c, weighted in [("basic", 4, 5, False), ("weighted", 6, 3, True), ("batch1", 1, 4, False)]:
        labels = torch.randint(0, c, (n,))
        w = torch.rand(c) + 0.5 if weighted else None
        logp = F.log_softmax(rnd(n, c), -1)
        logp = torch.tensor([float("%.9g" % v) for v in logp.reshape(-1).tolist()]).reshape(n, c)
        opts = {"weight": T(w)} if weighted else {}
        lab = [int(v) + 1 for v in labels]
        cs.append(case(name, {"logp": logp, "labels": lab},
                       lambda logp, labels, w=w, lt=labels: F.nll_loss(logp, lt, weight=w), ["logp"], opts=opts))
    write("nll_loss", cs)


def embedding_bag():
    cs = []
    w = rnd(10, 4)
    ids = torch.tensor([0, 3, 3, 9, 2, 5, 7, 1])
    offsets = torch.tensor([0, 3, 3, 5])  # PyTorch-style starts: bags [0,3) [3,3) (empty) [3,5) [5,8)
    cs.append(case("starts_with_empty_bag", {"weight": w, "ids": [int(v) + 1 for v in ids], "offsets": offsets.tolist()},
                   lambda weight, ids, offsets: F.embedding_bag(torch.tensor([i - 1 for i in ids]), weight,
                                                                torch.tensor(offsets), mode="mean"), ["weight"]))
    ids2 = torch.tensor([4, 4, 0, 8, 6])
    csr = [0, 2, 5]
    cs.append(case("csr_include_last", {"weight": rnd(9, 3), "ids": [int(v) + 1 for v in ids2], "offsets": csr},
                   lambda weight, ids, offsets: F.embedding_bag(torch.tensor([i - 1 for i in ids]), weight,
                                                                torch.tensor(offsets), mode="mean",
                                                                include_last_offset=True), ["weight"]))
    write("embedding_bag", cs)


def modality_pool():
    cs = []
    mask = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=torch.bool)

    def pool(vectors, mask, mode):
        m = torch.tensor(mask, dtype=torch.bool)
        if mode == "max":
            return vectors.masked_fill(~m.unsqueeze(-1), float("-inf")).max(1).values
        s = (vectors * m.unsqueeze(-1)).sum(1)
        if mode == "sum":
            return s
        return s / m.sum(1, keepdim=True)

    for mode in ["max", "mean", "sum"]:
        x = rnd(4, 3, 5)
        cs.append(case(mode, {"vectors": x, "mask": mask.int().tolist()},
                       lambda vectors, mask, mode=mode: pool(vectors, mask, mode), ["vectors"], opts={"mode": mode}))
    write("modality_pool", cs)


def cosine():
    cs = [case("basic", {"a": rnd(4, 6), "b": rnd(4, 6)}, lambda a, b: F.cosine_similarity(a, b, dim=1), ["a", "b"]),
          case("batch1", {"a": rnd(1, 3), "b": rnd(1, 3)}, lambda a, b: F.cosine_similarity(a, b, dim=1), ["a", "b"])]
    write("cosine_similarity", cs)


def ranking():
    def rank(v, t, labels, margin, hardest, vmask=None, tmask=None):
        n = v.shape[0]
        vm = vmask or [1] * n
        tm = tmask or [1] * n
        per = []
        for i in range(n):
            if not (vm[i] and tm[i]):
                continue
            ls = []
            cpos = F.cosine_similarity(v[i:i + 1], t[i:i + 1], dim=1)[0]
            for j in range(n):
                if j == i or labels[j] == labels[i] or not tm[j]:
                    continue
                ls.append(torch.clamp(margin - cpos + F.cosine_similarity(v[i:i + 1], t[j:j + 1], dim=1)[0], min=0))
            if not ls:
                continue
            ls = torch.stack(ls)
            per.append(ls.max() if hardest else ls.mean())
        return torch.stack(per).mean() if per else (v.sum() * 0)

    cs = []
    labels = [1, 2, 1, 3, 2, 3]
    for name, margin, hardest, vmask, tmask in [("mean", 0.5, False, None, None), ("hardest", 0.5, True, None, None),
                                                ("masked", 1.0, False, [1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 1, 1]),
                                                ("masked_hardest", 1.0, True, [1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1])]:
        opts = {"margin": margin, "hardest": hardest}
        if vmask:
            opts["vmask"] = vmask
            opts["tmask"] = tmask
        cs.append(case(name, {"v": rnd(6, 5), "t": rnd(6, 5), "labels": labels},
                       lambda v, t, labels, m=margin, h=hardest, vm=vmask, tm=tmask: rank(v, t, labels, m, h, vm, tm),
                       ["v", "t"], opts=opts))
    write("ranking_loss", cs)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    cs = [case("margin0", {"x1": rnd(7), "x2": rnd(7), "y": y.clone()},
               lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y, margin=0.0), ["x1", "x2"], opts={"margin": 0.0}),
          case("margin05", {"x1": rnd(7), "x2": rnd(7), "y": y.clone()},
               lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y, margin=0.5), ["x1", "x2"], opts={"margin": 0.5})]
    write("margin_ranking_loss", cs)


def batchnorm_optim():
    x = rnd(2, 3, 2, 2)
    rm, rv, g, b = rnd(3), torch.rand(3) + 0.5, rnd(3), rnd(3)
    y = F.batch_norm(x, rm, rv, g, b, training=False, eps=1e-5)
    write("batch_norm", [{"name": "infer", "args": {"x": T(x), "running_mean": T(rm), "running_var": T(rv),
                                                    "weight": T(g), "bias": T(b)}, "opts": {"eps": 1e-5}, "out": T(y)}])
    cs = []
    for name, mk, opts in [
        ("sgd_momentum", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01),
         {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        ("sgd_plain", lambda p: torch.optim.SGD([p], lr=0.05), {"lr": 0.05}),
        ("adam", lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.001),
         {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-8, "weight_decay": 0.001}),
    ]:
        p0 = rnd(5)
        p = p0.clone().requires_grad_(True)
        opt = mk(p)
        grads = [rnd(5) for _ in range(3)]
        for gr in grads:
            opt.zero_grad()
            p.grad = gr.clone()
            opt.step()
        cs.append({"name": name, "opts": opts, "param": T(p0), "grads": [T(gr) for gr in grads], "out": T(p)})
    write("optim", cs)


if __name__ == "__main__":
    if not torch.__version__.startswith("1.13"):
        print("note: fixtures were designed with torch 1.13, this is", torch.__version__, file=sys.stderr)
    linear()
    conv2d()
    pools()
    activations()
    softmaxes()
    losses()
    embedding_bag()
    modality_pool()
    cosine()
    ranking()
    batchnorm_optim()
