#!/usr/bin/python3
"""Write the benchmark inputs both sides read (mmfuse and its peers) into WORK.

  prep.py WORK [--n 20000] [--seed 1]

Everything comes from data/bench64 (make bench-data) and data/emoji32:
  p1.tsv, p1_feat.npy   P1: N posts = bench64 caption + 9-way group label, and a
                        fixed 512-d image feature per post (a fixed random ReLU
                        projection of the post's 16x16 image, so features carry
                        the image's content); rows sampled with replacement.
  p2_train.tsv/.txt,    P2: the multilingual caption corpus, fold 0 = test, rest
  p2_test.tsv/.txt      train; .txt in fastText's __label__ format, .tsv for mmfuse.
  p3.tsv                P3/P4: emoji32 manifest rows (32 px PNGs), absolute paths.
  classes.txt           the 9 group names in a fixed order.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = []
        for line in f:
            parts = line.rstrip("\n").split("\t")
            rows.append(dict(zip(head, parts)))
    return rows


def clean(s):
    return s.replace("\t", " ").replace("\n", " ").strip()


def ft_label(g):
    return "__label__" + "".join(c if c.isalnum() else "_" for c in g.lower()).replace("__", "_")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    b64 = os.path.join(ROOT, "data", "bench64")
    man = read_tsv(os.path.join(b64, "manifest.tsv"))
    classes = sorted({r["group"] for r in man})
    with open(os.path.join(a.work, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(classes) + "\n")

    # P1: features = relu(P x) for x = the 16x16 RGB image in [0,1], P fixed random
    rng = np.random.default_rng(a.seed)
    man = [r for r in man if clean(r["caption"])]
    imgs = np.zeros((len(man), 16 * 16 * 3), np.float32)
    for i, r in enumerate(man):
        im = Image.open(os.path.join(b64, r["image"])).convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im).convert("RGB").resize((16, 16), Image.BILINEAR)
        imgs[i] = np.asarray(im, np.float32).reshape(-1) / 255.0
    proj = rng.standard_normal((imgs.shape[1], 512)).astype(np.float32) / np.sqrt(imgs.shape[1])
    feats = np.maximum((imgs - imgs.mean(0)) @ proj, 0).astype(np.float32)
    pick = rng.integers(0, len(man), a.n)
    np.save(os.path.join(a.work, "p1_feat.npy"), np.ascontiguousarray(feats[pick]))
    with open(os.path.join(a.work, "p1.tsv"), "w", encoding="utf-8") as f:
        f.write("caption\tgroup\n")
        for i in pick:
            f.write("%s\t%s\n" % (clean(man[i]["caption"]), man[i]["group"]))

    # P2: multilingual captions
    cap = read_tsv(os.path.join(b64, "captions_multi.tsv"))
    out = {s: (open(os.path.join(a.work, "p2_%s.tsv" % s), "w", encoding="utf-8"),
               open(os.path.join(a.work, "p2_%s.txt" % s), "w", encoding="utf-8")) for s in ("train", "test")}
    for s in out:
        out[s][0].write("caption\tgroup\n")
    counts = {"train": 0, "test": 0}
    for r in cap:
        c = clean(r["caption"])
        if not c:
            continue
        s = "test" if r["fold"] == "0" else "train"
        counts[s] += 1
        out[s][0].write("%s\t%s\n" % (c, r["group"]))
        out[s][1].write("%s %s\n" % (ft_label(r["group"]), c))
    for t, x in out.values():
        t.close()
        x.close()

    # P3/P4: emoji32 with absolute image paths
    e32 = os.path.join(ROOT, "data", "emoji32")
    rows = read_tsv(os.path.join(e32, "manifest.tsv"))
    with open(os.path.join(a.work, "p3.tsv"), "w", encoding="utf-8") as f:
        f.write("caption\tgroup\timage\n")
        for r in rows:
            f.write("%s\t%s\t%s\n" % (clean(r["caption"]), r["group"], os.path.join(e32, r["image"])))
    print("prep: P1 %d rows, P2 %d train / %d test captions, P3 %d images -> %s"
          % (a.n, counts["train"], counts["test"], len(rows), a.work), file=sys.stderr)


if __name__ == "__main__":
    main()
