#!/usr/bin/python3
"""Medians and ratios from bench/run.sh's results.jsonl; prints one Markdown table.

  summary.py RESULTS.jsonl

Per run: P1 s/epoch and P3 samples/s are medians over the epochs after the first
(the first carries one-off work on both sides: mmfuse caches the text ids, PyTorch
warms its allocator); P4 posts/s the median of the in-process repetitions. Across
runs: the median, and the spread (max - min) / median in per cent, as a noise gauge.
"""
import json
import statistics
import sys
from collections import defaultdict

CONV_FLOPS = [2.0 * 32 * o * hw * hw * c * 9 for c, o, hw in [(3, 16, 32), (16, 32, 16), (32, 64, 8)]]


def after_first(xs):
    return xs[1:] if len(xs) > 1 else xs


def conv_total(rates):
    return sum(CONV_FLOPS) / sum(f / r for f, r in zip(CONV_FLOPS, rates))


def main():
    runs = defaultdict(list)
    with open(sys.argv[1]) as f:
        for line in f:
            d = json.loads(line)
            runs[d["tag"]].append(d)

    def vals(tag, fn):
        return [fn(d) for d in runs.get(tag, [])]

    def med(tag, fn):
        v = [x for x in vals(tag, fn) if x is not None]
        return statistics.median(v) if v else None

    def spread(*tags_fns):
        out = []
        for tag, fn in tags_fns:
            v = vals(tag, fn)
            if len(v) > 1 and statistics.median(v):
                out.append("%.0f%%" % (100.0 * (max(v) - min(v)) / statistics.median(v)))
        return "/".join(out) if out else "-"

    rows = []

    def row(name, unit, mm, peer, ratio, target, ok, sp, cpu=None):
        fmt = lambda x: "-" if x is None else ("%.4g" % x)
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, unit, fmt(mm), fmt(peer), "-" if ratio is None else "%.2fx" % ratio,
            "-" if cpu is None else "%.2fx" % cpu, target, "-" if ok is None else ("yes" if ok else "NO"), sp))

    def cpu_ratio(ta, tb, fn, inverse=False):
        a, b = med(ta, fn), med(tb, fn)
        if not a or not b:
            return None
        return a / b if inverse else b / a

    ep = lambda d: statistics.median(after_first(d["epoch_s"]))
    epc = lambda d: statistics.median(after_first(d["epoch_cpu_s"]))
    spc = lambda d: statistics.median(after_first(d["samples_per_cpu_s"]))
    ppc = lambda d: statistics.median(d["posts_per_cpu_s"])
    for f in ("joint", "commonspace"):
        a, b = med("p1-%s-mmfuse" % f, ep), med("p1-%s-torch" % f, ep)
        if a and b:
            row("P1 %s head, N=20000 b32 d128" % f, "s/epoch", a, b, b / a, ">= 10x", b / a >= 10,
                spread(("p1-%s-mmfuse" % f, ep), ("p1-%s-torch" % f, ep)),
                cpu_ratio("p1-%s-mmfuse" % f, "p1-%s-torch" % f, epc))
    tot = lambda d: d["total_s"]
    acc = lambda d: d["accuracy"]
    a, b = med("p2-mmfuse", tot), med("p2-fasttext", tot)
    if a and b:
        row("P2 text train time vs fasttext (default bucket 2M)", "s", a, b, a / b, "<= 1.0x", a / b <= 1.0,
            spread(("p2-mmfuse", tot), ("p2-fasttext", tot)))
        c = med("p2-fasttext-b100k", tot)
        if c:
            row("P2 text train time vs fasttext -bucket 100000", "s", a, c, a / c, "(same buckets)", None,
                spread(("p2-fasttext-b100k", tot)))
        aa, ab = med("p2-mmfuse", acc), med("p2-fasttext", acc)
        row("P2 test accuracy (fold 0), mmfuse vs fasttext", "acc", aa, ab, None, ">= ft - 0.005",
            aa >= ab - 0.005, "-")
        ac = med("p2-fasttext-b100k", acc)
        if ac is not None:
            row("P2 test accuracy, fasttext -bucket 100000", "acc", aa, ac, None, "-", None, "-")
    sps = lambda d: statistics.median(after_first(d["samples_per_s"]))
    a, b = med("p3-mmfuse", sps), med("p3-torch", sps)
    if a and b:
        row("P3 CNN training, 32 px, b32", "samples/s", a, b, a / b, ">= 1.0x", a / b >= 1.0,
            spread(("p3-mmfuse", sps), ("p3-torch", sps)), cpu_ratio("p3-mmfuse", "p3-torch", spc, True))
    cv = lambda d: conv_total(d["conv_gflops"])
    sg = lambda d: d["sgemm_gflops"]
    a, g = med("conv-mmfuse", cv), med("conv-mmfuse", sg)
    if a and g:
        row("P3 conv2d fwd GFLOP/s / own sgemm (512^3)", "GFLOP/s", a, g, a / g, ">= 60%", a / g >= 0.6,
            spread(("conv-mmfuse", cv), ("conv-mmfuse", sg)))
        for i, name in enumerate(["3->16 @32", "16->32 @16", "32->64 @8"]):
            row("  conv %s (mmfuse vs torch/oneDNN)" % name, "GFLOP/s", med("conv-mmfuse", lambda d: d["conv_gflops"][i]),
                med("conv-torch", lambda d: d["conv_gflops"][i]), None, "-", None, "-")
        row("  sgemm 512^3 (mmfuse vs torch matmul)", "GFLOP/s", g, med("conv-torch", sg), None, "-", None, "-")
        bl = med("conv-mmfuse", lambda d: d.get("blas_gflops"))
        if bl:
            kern = next((d.get("gemm_kernel") for d in runs.get("conv-mmfuse", []) if d.get("gemm_kernel")), "?")
            row("  sgemm 512^3: mm_sgemm (%s kernel) vs OpenBLAS cblas_sgemm" % kern, "GFLOP/s", g, bl, g / bl, "-",
                None, "-")
    pps = lambda d: statistics.median(d["posts_per_s"])
    a, b = med("p4-mmfuse", pps), med("p4-torch", pps)
    if a and b:
        row("P4 inference: decode+tokenize+encode+fuse", "posts/s", a, b, a / b, ">= 5x", a / b >= 5,
            spread(("p4-mmfuse", pps), ("p4-torch", pps)), cpu_ratio("p4-mmfuse", "p4-torch", ppc, True))
        one = med("p4-mmfuse", lambda d: d["single_posts_per_s"])
        row("P4 one post per call: model:predict{text=, image=} vs torch batched", "posts/s", one, b, one / b, "-",
            None, spread(("p4-mmfuse", lambda d: d["single_posts_per_s"])))
    rss = lambda d: d["rss_kb"] / 1024.0
    for tag, name in (("p1-joint", "P5 peak RSS, P1 joint training"), ("p1-commonspace", "P5 peak RSS, P1 commonspace"),
                      ("p3", "P5 peak RSS, P3 CNN training")):
        a, b = med(tag + "-mmfuse", rss), med(tag + "-torch", rss)
        if a and b:
            row(name, "MB", a, b, a / b, "<= 0.25x", a / b <= 0.25, "-")
    for tag, base, fn, unit, name in (("p1-joint-mmfuse-t2", "p1-joint-mmfuse", ep, "s/epoch", "P1 joint"),
                                      ("p3-mmfuse-t2", "p3-mmfuse", sps, "samples/s", "P3 CNN"),
                                      ("p4-mmfuse-t2", "p4-mmfuse", pps, "posts/s", "P4 inference")):
        a, b = med(tag, fn), med(base, fn)
        if a and b:
            sp = b / a if unit == "s/epoch" else a / b
            rows.append("| %s, 2 threads vs 1 (mmfuse) | %s | %.4g | %.4g | %.2fx | - | report | - | %s |" % (
                name, unit, a, b, sp, spread((tag, fn), (base, fn))))
    # P6: image backbones at inference; the anchor is ONNX Runtime, PyTorch is shown beside it.
    # Rows appear for every configuration a peer ran; the mmfuse column fills in from
    # "p6-<model>-b<B>-t<T>-mmfuse" runs (same JSON fields: images_per_s, rss_kb).
    ips = lambda d: statistics.median(d["images_per_s"])
    ipc = lambda d: statistics.median(d["images_per_cpu_s"])
    for m, px in (("inception_v3", 299), ("resnet18", 224), ("mobilenet_v2", 224)):
        for t in (1, 2):
            for b in (16, 1):
                tag = "p6-%s-b%d-t%d-" % (m, b, t)
                mm_, ort, pt = med(tag + "mmfuse", ips), med(tag + "ort", ips), med(tag + "torch", ips)
                if ort is None and pt is None:
                    continue
                ok = None if mm_ is None or ort is None else mm_ / ort >= 1.0
                row("P6 %s %d px, b%d, %d thread%s, vs ONNX Runtime" % (m, px, b, t, "s" if t > 1 else ""),
                    "images/s", mm_, ort, mm_ / ort if mm_ and ort else None, ">= 1.0x", ok,
                    spread((tag + "mmfuse", ips), (tag + "ort", ips)) if mm_ else spread((tag + "ort", ips)),
                    cpu_ratio(tag + "mmfuse", tag + "ort", ipc, True) if mm_ else None)
                row("  the same, vs PyTorch 1.13 eager", "images/s", mm_, pt, mm_ / pt if mm_ and pt else None,
                    "-", None, spread((tag + "torch", ips)))
        tag = "p6-%s-b16-t1-" % m
        a, o, p_ = med(tag + "mmfuse", rss), med(tag + "ort", rss), med(tag + "torch", rss)
        if o is not None:
            row("P6 peak RSS, %s b16 1 thread, vs ONNX Runtime (PyTorch: %s MB)" % (m, "-" if p_ is None else "%.0f" % p_),
                "MB", a, o, a / o if a else None, "<= 1.0x", None if a is None else a / o <= 1.0, "-")
    nrep = max((len(v) for v in runs.values()), default=0)
    print("| benchmark | unit | mmfuse | peer | ratio | CPU-time ratio | target | met | spread |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nratio: speed-up of mmfuse (peer time / mmfuse time, or mmfuse rate / peer rate); for P2 time and P5 "
          "RSS mmfuse / peer. Medians of %d runs; spread = (max - min) / median per side (mmfuse/peer). CPU-time ratio: the same "
          "from process CPU seconds (one thread), less sensitive to other load on the machine." % nrep)


if __name__ == "__main__":
    main()
