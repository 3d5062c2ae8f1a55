#!/usr/bin/python3
"""P6, the PyTorch side: image backbones at inference, and their ONNX export for ONNX Runtime.

  backbone_bench.py WORK export                  WORK/p6/<model>.onnx for every model (kept when present)
  backbone_bench.py WORK run MODEL --batch B --threads T [--seconds 4]

Models: torchvision 0.14 (Debian) with weights=None (random weights: the time does not depend
on them), eval mode, global-average-pooled features and the classifier:
  inception_v3  299 px (aux_logits=False, transform_input=False)
  resnet18      224 px
  mobilenet_v2  224 px
`run` times model(x) under torch.inference_mode() on a fixed random batch [B, 3, S, S]: one
warm-up call, then calls until at least --seconds and 3 calls have passed; prints one JSON line
(images/s per call, process CPU seconds, peak RSS). `export` uses torch.onnx.export (opset 13,
batch dimension dynamic, constant folding) so one file serves every batch size.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SIZES = {"inception_v3": 299, "resnet18": 224, "mobilenet_v2": 224}


def build(name):
    torch.manual_seed(1)
    if name == "inception_v3":
        m = torchvision.models.inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=True)
    elif name == "resnet18":
        m = torchvision.models.resnet18(weights=None)
    elif name == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(weights=None)
    else:
        sys.exit("backbone_bench: unknown model %s (%s)" % (name, ", ".join(SIZES)))
    return m.eval()


def export(work):
    out = os.path.join(work, "p6")
    os.makedirs(out, exist_ok=True)
    done = {}
    for name, size in SIZES.items():
        path = os.path.join(out, name + ".onnx")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            tmp = path + ".tmp"
            with torch.no_grad():
                torch.onnx.export(build(name), torch.rand(1, 3, size, size), tmp, opset_version=13,
                                  input_names=["input"], output_names=["output"], do_constant_folding=True,
                                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            os.rename(tmp, path)
            print("bench: exported %s (%.1f s)" % (path, time.perf_counter() - t0), file=sys.stderr)
        done[name] = os.path.getsize(path)
    print(json.dumps({"bench": "p6-export", "files": done, "torch": torch.__version__}))


def run(a):
    torch.set_num_threads(a.threads)
    size = SIZES[a.model]
    model = build(a.model)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(a.batch, 3, size, size, generator=g)
    rates, cpu = [], []
    with torch.inference_mode():
        model(x)
        t_all = time.perf_counter()
        while len(rates) < 3 or time.perf_counter() - t_all < a.seconds:
            t0, c0 = time.perf_counter(), time.process_time()
            y = model(x)
            rates.append(a.batch / (time.perf_counter() - t0))
            cpu.append(a.batch / max(time.process_time() - c0, 1e-9))
    print(json.dumps({"bench": "p6", "side": "torch", "model": a.model, "size": size, "batch": a.batch,
                      "threads": torch.get_num_threads(), "images_per_s": rates, "images_per_cpu_s": cpu,
                      "out_shape": list(y.shape), "rss_kb": common.vm_hwm_kb(), "torch": torch.__version__}),
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("export")
    p = sub.add_parser("run")
    p.add_argument("model", choices=sorted(SIZES))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=4.0)
    a = ap.parse_args()
    if a.cmd == "export":
        export(a.work)
    else:
        run(a)


if __name__ == "__main__":
    main()
