#!/usr/bin/python3
"""Print the machine the benchmarks ran on (Markdown bullet list): CPU, cores, memory,
OpenBLAS build and the kernel it picked, peer versions, load average."""
import ctypes
import glob
import json
import os
import platform
import subprocess


def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip()
    except OSError:
        return "?"


def main():
    cpu = "?"
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    fam = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("cpu family", "model", "flags") and k not in fam:
                fam[k] = v.strip()
    avx = [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if x in fam.get("flags", "").split()]
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        blas = "%s; kernel in use: %s" % (lib.openblas_get_config().decode(), lib.openblas_get_corename().decode())
    except OSError:
        blas = "libopenblas.so.0 not found"
    env = ", ".join("%s=%s" % (k, os.environ[k]) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    ft = sh(["dpkg-query", "-W", "-f=${Version}", "fasttext"])
    ort = "not installed"
    for d in sorted(glob.glob(os.path.expanduser("~/.cache/mmfuse/node/onnxruntime-node-*/node_modules/onnxruntime-node/package.json"))):
        with open(d) as f:
            ort = "%s (onnxruntime-node, npm, its bundled CPU library)" % json.load(f)["version"]
    print("- CPU: %s (family %s model %s), %d logical CPUs, %s; %.1f GiB RAM; kernel %s" % (
        cpu, fam.get("cpu family"), fam.get("model"), os.cpu_count(), "/".join(avx) or "no AVX2", mem,
        platform.release()))
    print("- OpenBLAS: %s%s" % (blas, ("; " + env) if env else "; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE not set"))
    kern = sh(["lua5.4", "-e", 'package.cpath = (os.getenv("MMFUSE_CPATH") or "./build-bench/?.so") .. ";" .. '
               'package.cpath; local c = require("mmfuse.core").cpu(); '
               'io.write(("%s (best on this CPU: %s; CPU brand: %s)"):format(c.kernel, c.hw_best, c.brand))'])
    forced = " - forced by MMFUSE_KERNEL=%s" % os.environ["MMFUSE_KERNEL"] if os.environ.get("MMFUSE_KERNEL") else ""
    print("- mmfuse kernel level: %s%s (generic = OpenBLAS products, portable C elsewhere)" % (kern, forced))
    print("- peers: PyTorch %s (Debian), fastText %s (Debian), ONNX Runtime %s, %s" % (
        tv, ft, ort, sh(["lua5.4", "-v"]).split("  ")[0]))
    print("- load average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
