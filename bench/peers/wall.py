#!/usr/bin/python3
"""Run one benchmark process, time it, and append its JSON result to a file.

  wall.py RESULTS.jsonl TAG -- CMD ARGS...

The child prints one JSON line (mm_bench.lua, torch_bench.py, fasttext_bench.py);
this adds tag, wall_s (the whole process, start-up included) and child_rss_kb
(peak RSS of the child from getrusage) and appends it to RESULTS.jsonl.
"""
import json
import resource
import subprocess
import sys
import time


def main():
    out, tag = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode != 0:
        print("bench: %s failed (exit %d): %s" % (tag, p.returncode, " ".join(cmd)), file=sys.stderr)
        sys.exit(1)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        print("bench: %s printed no result" % tag, file=sys.stderr)
        sys.exit(1)
    d = json.loads(lines[-1])
    d.update(tag=tag, wall_s=wall, child_rss_kb=rss)
    with open(out, "a") as f:
        f.write(json.dumps(d) + "\n")
    print("  %-28s %6.2f s wall, %7.1f MB peak" % (tag, wall, rss / 1024.0), file=sys.stderr)


if __name__ == "__main__":
    main()
