#!/usr/bin/env python3
"""A synthetic corpus of N posts for `make bench-scale` (deterministic for a seed).

Each post: a short text of 1-3 captions of one Unicode group drawn from
data/bench64/captions_multi.tsv (its label: the group), a fold (0-9), an id
and its row in features.npy (so any subset of the shards reads its rows
from the one file); its 128-d feature row (float32) = the class's mean direction x SIGNAL + N(0, 1)
noise, in features.npy (one row per post, in the order of the shards' rows).
The manifest is split into shards of --shard posts (posts-000.tsv, ...).

    python3 tools/gen_scale.py --out build-scale --posts 10000000 [--seed 1]

Writes in blocks of 100,000 posts; the .npy is filled through a memory map
(np.lib.format.open_memmap), so the generator's memory does not grow with N.
"""
import argparse
import os
import shutil
import sys

import numpy as np

DIM = 128
SIGNAL = 0.35
BLOCK = 100_000


def read_captions(path):
    by_group = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        gi, ci = header.index("group"), header.index("caption")
        for line in f:
            r = line.rstrip("\n").split("\t")
            cap = r[ci].replace("\t", " ").strip()
            if cap:
                by_group.setdefault(r[gi], []).append(cap)
    groups = sorted(by_group)
    return groups, [np.array(by_group[g], dtype=object) for g in groups]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--posts", type=int, default=10_000_000)
    ap.add_argument("--shard", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--captions", default="data/bench64/captions_multi.tsv")
    a = ap.parse_args()
    need = a.posts * (DIM * 4 + 90) + (1 << 30)
    os.makedirs(a.out, exist_ok=True)
    free = shutil.disk_usage(a.out).free
    if free < need:
        sys.exit(f"gen_scale: {a.out} has {free / 1e9:.1f} GB free, the corpus needs about {need / 1e9:.1f} GB")
    groups, caps = read_captions(a.captions)
    C = len(groups)
    rng = np.random.default_rng(a.seed)
    means = rng.standard_normal((C, DIM)).astype(np.float32) * SIGNAL
    feats = np.lib.format.open_memmap(os.path.join(a.out, "features.tmp.npy"), mode="w+", dtype=np.float32,
                                      shape=(a.posts, DIM))
    shard, out = -1, None
    for start in range(0, a.posts, BLOCK):
        n = min(BLOCK, a.posts - start)
        y = rng.integers(0, C, n)
        k = rng.integers(1, 4, n)
        picks = rng.random((n, 3))
        x = rng.standard_normal((n, DIM), dtype=np.float32)
        x += means[y]
        feats[start:start + n] = x
        lines = []
        for i in range(n):
            pool = caps[y[i]]
            words = [pool[int(picks[i, j] * len(pool))] for j in range(k[i])]
            pid = start + i
            lines.append(f"p{pid}\t{' '.join(words)}\t{groups[y[i]]}\t{pid % 10}\t{pid}\n")
        # shards start at multiples of --shard
        for i in range(n):
            s = (start + i) // a.shard
            if s != shard:
                if out:
                    out.close()
                shard = s
                out = open(os.path.join(a.out, f"posts-{s:03d}.tsv"), "w", encoding="utf-8")
                out.write("id\ttext\tlabel\tfold\trow\n")
            out.write(lines[i])
    out.close()
    feats.flush()
    del feats
    os.replace(os.path.join(a.out, "features.tmp.npy"), os.path.join(a.out, "features.npy"))
    with open(os.path.join(a.out, "corpus.txt"), "w") as f:
        f.write(f"posts {a.posts} shard {a.shard} seed {a.seed} classes {C} dim {DIM}\n")
    print(f"gen_scale: {a.posts} posts, {shard + 1} shards, {C} classes, features {a.posts}x{DIM} in {a.out}")


if __name__ == "__main__":
    main()
