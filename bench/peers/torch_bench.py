#!/usr/bin/python3
"""The PyTorch (eager, one thread) side of bench/: the same models mmfuse trains.

  torch_bench.py WORK p1 --fusion joint|commonspace [--epochs 3]
  torch_bench.py WORK p3 [--epochs 2]
  torch_bench.py WORK p4 [--reps 3]
  torch_bench.py WORK conv

Each prints one JSON line on stdout (times in seconds, peak RSS in kB).
Models (identical shapes, init scale and optimiser to mmfuse's csrc/model):
  text encoder  EmbeddingBag(V + 100000 buckets, d, mean, sparse) over words + hashed bigrams
  image (P1)    fixed 512-d features -> Linear(512, d)
  image (P3/4)  3 x [conv3x3 pad 1 -> ReLU -> maxpool 2] with 16/32/64 channels -> global avg pool
  joint         masked element-wise max over the modalities present -> Linear(d, C)
  commonspace   joint + 1.0 * hinge ranking loss on cosine (margin 0.2, negatives = batch
                rows of other classes, mean over negatives, mean over anchors)
  optimiser     Adam lr 1e-3 (SparseAdam on the embedding: lazy rows, as mmfuse), batch 32
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MEAN, STD = 0.5, 0.25


class CNN(nn.Module):
    def __init__(self, chans=(16, 32, 64)):
        super().__init__()
        layers, cin = [], 3
        for c in chans:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            cin = c
        self.body = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x):
        return self.body(x).mean((2, 3))


class Fusion(nn.Module):
    """joint / commonspace head over a text bag and an image vector (features or CNN)."""

    def __init__(self, rows, d, C, image_in=None, cnn=False):
        super().__init__()
        self.emb = nn.EmbeddingBag(rows + 1, d, mode="mean", sparse=True, padding_idx=rows)
        nn.init.uniform_(self.emb.weight, -1 / d ** 0.5, 1 / d ** 0.5)
        with torch.no_grad():
            self.emb.weight[rows].zero_()
        self.cnn = CNN() if cnn else None
        self.proj = nn.Linear(self.cnn.out_dim if cnn else image_in, d)
        self.cls = nn.Linear(d, C)

    def forward(self, ids, img, mask):
        t = self.emb(ids)
        v = self.proj(self.cnn(img) if self.cnn is not None else img)
        x = torch.stack([t, v], 1).masked_fill(~mask.unsqueeze(2), float("-inf"))
        z = x.max(1).values
        z = torch.where(torch.isinf(z), torch.zeros_like(z), z)
        return self.cls(z), v, t


def ranking_loss(v, t, y, margin=0.2):
    S = F.normalize(v, dim=1, eps=1e-8) @ F.normalize(t, dim=1, eps=1e-8).t()
    neg = (y[:, None] != y[None, :]).float()
    cnt = neg.sum(1)
    has = cnt > 0
    if not bool(has.any()):
        return S.sum() * 0
    L = (margin - S.diagonal()[:, None] + S).clamp(min=0) * neg
    return (L.sum(1)[has] / cnt[has]).mean()


def optimisers(model, lr=1e-3):
    sparse = [model.emb.weight] if hasattr(model, "emb") else []
    dense = [p for p in model.parameters() if all(p is not s for s in sparse)]
    opts = [torch.optim.Adam(dense, lr=lr)]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    return opts


def emit(d):
    d["rss_kb"] = common.vm_hwm_kb()
    d["side"] = "torch"
    print(json.dumps(d), flush=True)


def p1(a):
    rows = common.read_tsv(os.path.join(a.work, "p1.tsv"))
    cls = common.classes(a.work)
    ci = {c: i for i, c in enumerate(cls)}
    texts = [r["caption"] for r in rows]
    y = torch.tensor([ci[r["group"]] for r in rows])
    feat = torch.from_numpy(np.load(os.path.join(a.work, "p1_feat.npy")))
    bag = common.TextBag(texts)
    ids = bag.padded(texts)
    N = len(rows)
    mask = torch.ones(N, 2, dtype=torch.bool)
    torch.manual_seed(a.seed)
    model = Fusion(bag.rows, a.dim, len(cls), image_in=feat.shape[1])
    opts = optimisers(model)
    times, losses, cpu = [], [], []
    g = torch.Generator().manual_seed(a.seed)
    for ep in range(a.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(N, generator=g)
        tot, correct = 0.0, 0
        for s in range(0, N, a.batch):
            idx = perm[s:s + a.batch]
            logits, v, t = model(ids[idx], feat[idx], mask[idx])
            yb = y[idx]
            loss = F.cross_entropy(logits, yb)
            if a.fusion == "commonspace":
                loss = loss + 1.0 * ranking_loss(v, t, yb)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            tot += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        losses.append(tot / N)
    emit({"bench": "p1", "fusion": a.fusion, "epoch_s": times, "epoch_cpu_s": cpu, "loss": losses, "train_acc": correct / N,
          "n": N, "threads": torch.get_num_threads()})


def load_images(rows):
    from PIL import Image
    out = np.zeros((len(rows), 3, 32, 32), np.float32)
    for i, r in enumerate(rows):
        out[i] = pil_tensor(Image, r["image"])
    return torch.from_numpy(out)


def pil_tensor(Image, path):
    im = Image.open(path)
    im = im.convert("RGBA")
    if im.size != (32, 32):
        im = im.resize((32, 32), Image.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    rgb = a[:, :, :3] * a[:, :, 3:4] + (1.0 - a[:, :, 3:4])  # over white
    return ((rgb - MEAN) / STD).transpose(2, 0, 1)


class ImageOnly(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.cnn = CNN()
        self.cls = nn.Linear(self.cnn.out_dim, C)

    def forward(self, x):
        return self.cls(self.cnn(x))


def p3(a):
    rows = common.read_tsv(os.path.join(a.work, "p3.tsv"))
    cls = common.classes(a.work)
    ci = {c: i for i, c in enumerate(cls)}
    x = load_images(rows)
    y = torch.tensor([ci[r["group"]] for r in rows])
    torch.manual_seed(a.seed)
    model = ImageOnly(len(cls))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    N = len(rows)
    g = torch.Generator().manual_seed(a.seed)
    times, cpu = [], []
    for ep in range(a.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(N, generator=g)
        for s in range(0, N, a.batch):
            idx = perm[s:s + a.batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    emit({"bench": "p3", "epoch_s": times, "samples_per_s": [N / t for t in times],
          "samples_per_cpu_s": [N / c for c in cpu], "n": N})


def conv(a):
    """conv2d forward GFLOP/s of the three CNN layers at batch 32 (PyTorch's own, for reference)."""
    torch.manual_seed(a.seed)
    shapes = [(3, 16, 32), (16, 32, 16), (32, 64, 8)]
    res = []
    with torch.inference_mode():
        for cin, cout, hw in shapes:
            x = torch.randn(32, cin, hw, hw)
            w = torch.randn(cout, cin, 3, 3)
            b = torch.randn(cout)
            flops = 2.0 * 32 * cout * hw * hw * cin * 9
            F.conv2d(x, w, b, padding=1)
            best = []
            for _ in range(5):
                t0 = time.perf_counter()
                k = 0
                while True:
                    F.conv2d(x, w, b, padding=1)
                    k += 1
                    if time.perf_counter() - t0 > 0.2:
                        break
                best.append(flops * k / (time.perf_counter() - t0) / 1e9)
            res.append(float(np.median(best)))
        n = 512
        A, B, C = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.5:
            torch.mm(A, B, out=C)  # into a preallocated C, like the mmfuse side
            k += 1
        gemm = 2.0 * n ** 3 * k / (time.perf_counter() - t0) / 1e9
    emit({"bench": "conv", "conv_gflops": res, "sgemm_gflops": gemm})


def p4(a):
    """End-to-end inference over the emoji32 posts: PNG decode (PIL) + tokenize + encode + fuse."""
    from PIL import Image
    rows = common.read_tsv(os.path.join(a.work, "p3.tsv"))
    cls = common.classes(a.work)
    texts = [r["caption"] for r in rows]
    bag = common.TextBag(texts)
    torch.manual_seed(a.seed)
    model = Fusion(bag.rows, a.dim, len(cls), cnn=True).eval()
    times, cpu = [], []
    for rep in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        preds = []
        with torch.inference_mode():
            for s in range(0, len(rows), a.batch):
                chunk = rows[s:s + a.batch]
                img = torch.from_numpy(np.stack([pil_tensor(Image, r["image"]) for r in chunk]))
                ids = bag.padded([r["caption"] for r in chunk])
                mask = torch.ones(len(chunk), 2, dtype=torch.bool)
                logits, _, _ = model(ids, img, mask)
                preds.append(F.softmax(logits, 1).argmax(1))
        torch.cat(preds)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    emit({"bench": "p4", "run_s": times, "posts_per_s": [len(rows) / t for t in times],
          "posts_per_cpu_s": [len(rows) / c for c in cpu], "n": len(rows)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("what", choices=["p1", "p3", "p4", "conv"])
    ap.add_argument("--fusion", default="joint", choices=["joint", "commonspace"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.batch is None:
        a.batch = 64 if a.what == "p4" else 32
    torch.set_num_threads(a.threads)
    {"p1": p1, "p3": p3, "p4": p4, "conv": conv}[a.what](a)


if __name__ == "__main__":
    main()
