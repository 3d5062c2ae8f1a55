"""Shared by the PyTorch peers: data files from prep.py and a fastText-style text bag
(lowercased words split at non-word characters, hashed word bigrams into BUCKETS rows
after the vocabulary: the same shape of input the mmfuse text encoder builds)."""
import os
import re
import time

import numpy as np
import torch

BUCKETS = 100000
_tok = re.compile(r"\w+", re.UNICODE)


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, line.rstrip("\n").split("\t"))) for line in f]


def classes(work):
    with open(os.path.join(work, "classes.txt"), encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def tokens(s):
    return _tok.findall(s.lower())


def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class TextBag:
    def __init__(self, texts, ngrams=2, buckets=BUCKETS):
        self.ngrams, self.buckets = ngrams, buckets
        counts = {}
        for t in texts:
            for w in tokens(t):
                counts[w] = counts.get(w, 0) + 1
        self.words = sorted(counts, key=lambda w: (-counts[w], w))
        self.index = {w: i for i, w in enumerate(self.words)}
        self.rows = len(self.words) + buckets

    def encode(self, s):
        toks = tokens(s)
        ids = [self.index[w] for w in toks if w in self.index]
        V = len(self.words)
        for n in range(2, self.ngrams + 1):
            for i in range(len(toks) - n + 1):
                ids.append(V + fnv(" ".join(toks[i:i + n])) % self.buckets)
        return ids

    def padded(self, texts):
        """[N, L] int64 ids padded with `self.rows` (the padding row), for EmbeddingBag(padding_idx=)."""
        enc = [self.encode(t) for t in texts]
        L = max(1, max(len(e) for e in enc))
        out = np.full((len(enc), L), self.rows, np.int64)
        for i, e in enumerate(enc):
            out[i, :len(e)] = e
        return torch.from_numpy(out)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *a):
        self.s = time.perf_counter() - self.t0
