#!/usr/bin/python3
"""Export a torchvision backbone's weights to a safetensors file mmfuse loads.

    /usr/bin/python3 tools/export_torchvision.py resnet18 resnet18.safetensors
    /usr/bin/python3 tools/export_torchvision.py mobilenet_v2 mnv2.safetensors --weights DEFAULT

--weights DEFAULT (or IMAGENET1K_V1, ...) downloads torchvision's ImageNet
weights (needs internet once; torch caches them); --weights none (the default
here) writes torchvision's random initialisation, which needs no network.
Every floating-point tensor of the state_dict is written as F32 under its
state_dict name (num_batches_tracked, an int64 counter, is left out). In Lua:

    local b = mm.image.backbone("resnet18", { weights = "resnet18.safetensors" })
    local x = mm.image.normalize(mm.image.load("cat.jpg", { size = 224, fit = "crop" }), "imagenet")
    local v = b:forward(x)   -- 1 x 512
"""
import argparse
import json
import struct

import numpy as np
import torch
import torchvision


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, a in tensors:
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=["resnet18", "mobilenet_v2"])
    ap.add_argument("out")
    ap.add_argument("--weights", default="none", help="torchvision weights name, e.g. DEFAULT; 'none' = random init")
    ap.add_argument("--seed", type=int, default=0, help="torch seed for --weights none")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    w = None if args.weights.lower() == "none" else args.weights
    model = torchvision.models.get_model(args.arch, weights=w)
    tensors = [(n, t.detach().cpu().numpy()) for n, t in model.state_dict().items() if t.is_floating_point()]
    write_safetensors(args.out, tensors, {"arch": args.arch, "weights": str(w),
                                          "torchvision": torchvision.__version__, "format": "pt"})
    print("%s: %d tensors, %d floats" % (args.out, len(tensors), sum(a.size for _, a in tensors)))


if __name__ == "__main__":
    main()
