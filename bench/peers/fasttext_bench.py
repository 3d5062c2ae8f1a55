#!/usr/bin/python3
"""The fastText side of P2: `fasttext supervised` (dim 100, wordNgrams 2, 5 epochs,
one thread, other options at their defaults unless given) on p2_train.txt, then
`fasttext test` on p2_test.txt. Prints one JSON line.

  fasttext_bench.py WORK [--bucket N] [--fasttext /usr/bin/fasttext]
"""
import argparse
import json
import os
import resource
import subprocess
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--bucket", type=int, default=None)
    ap.add_argument("--fasttext", default="fasttext")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmfuse-ft-") as tmp:
        out = os.path.join(tmp, "model")
        cmd = [a.fasttext, "supervised", "-input", os.path.join(a.work, "p2_train.txt"), "-output", out,
               "-dim", "100", "-wordNgrams", "2", "-epoch", "5", "-lr", "0.1", "-thread", "1", "-verbose", "0"]
        if a.bucket is not None:
            cmd += ["-bucket", str(a.bucket)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        train_s = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        r = subprocess.run([a.fasttext, "test", out + ".bin", os.path.join(a.work, "p2_test.txt")], check=True,
                           stdout=subprocess.PIPE, text=True)
        acc = None
        for line in r.stdout.splitlines():
            if line.startswith("P@1"):
                acc = float(line.split()[1])
    print(json.dumps({"bench": "p2", "side": "fasttext", "total_s": train_s, "accuracy": acc,
                      "bucket": a.bucket or 2000000, "rss_kb": rss}))


if __name__ == "__main__":
    main()
