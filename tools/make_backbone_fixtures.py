#!/usr/bin/python3
"""Fixture for the resnet18 / mobilenet_v2 backbones: torchvision's output on
deterministic weights.

Run from the repository root after `make`:
    /usr/bin/python3 tools/make_backbone_fixtures.py [build/?.so]
1. lua5.4 + mmfuse fill each backbone with the weights of
   spec/fixtures/image/backbone_weights.lua and dump them (and the input) as .npy
   into a temporary folder;
2. torchvision builds the same architecture (weights=None), loads those tensors
   by state_dict name (strict: every backbone tensor must be there), runs
   eval() up to the global average pool, and this writes
   spec/fixtures/image/<arch>_pooled.npy (N x dim) and <arch>_names.txt (the
   state_dict names and shapes, so the spec checks the naming offline).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "spec", "fixtures", "image")
SEED = {"resnet18": 18, "mobilenet_v2": 2}
N, SIZE = 2, 224

DUMP = r"""
package.path = './lua/?.lua;./lua/?/init.lua;spec/fixtures/image/?.lua;' .. package.path
package.cpath = arg[1] .. ';' .. package.cpath
local mm = require "mmfuse"
local W = require "backbone_weights"
local arch, seed, n, size, dir = arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), arg[6]
local b = mm.image.backbone(arch)
W.fill(mm, b, seed)
local list = io.open(dir .. "/list.txt", "w")
for i, p in ipairs(b:params()) do
  mm.io.save_npy(dir .. "/" .. i .. ".npy", b:get(p.name))
  list:write(p.name, "\n")
end
list:close()
mm.io.save_npy(dir .. "/x.npy", W.input(mm, n, size))
"""


def main():
    cpath = sys.argv[1] if len(sys.argv) > 1 else "./build/?.so"
    torch.set_num_threads(1)
    for arch in ("resnet18", "mobilenet_v2"):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["lua5.4", "-", cpath, arch, str(SEED[arch]), str(N), str(SIZE), d],
                           input=DUMP.encode(), cwd=ROOT, check=True)
            names = open(os.path.join(d, "list.txt")).read().split()
            mine = {n: torch.from_numpy(np.load(os.path.join(d, "%d.npy" % (i + 1)))) for i, n in enumerate(names)}
            x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
        model = torchvision.models.get_model(arch, weights=None)
        sd = model.state_dict()
        backbone_names = [n for n in sd if not n.endswith("num_batches_tracked")
                          and not n.startswith("fc.") and not n.startswith("classifier.")]
        assert backbone_names == names, "name/order mismatch: %s" % (set(backbone_names) ^ set(names))
        for n in names:
            assert tuple(sd[n].shape) == tuple(mine[n].shape), n
            sd[n] = mine[n]
        model.load_state_dict(sd)
        if arch == "resnet18":
            model.fc = torch.nn.Identity()
        else:
            model.classifier = torch.nn.Identity()
        model.eval()
        with torch.no_grad():
            y = model(x).numpy().astype(np.float32)
        np.save(os.path.join(FIX, "%s_pooled.npy" % arch), y)
        with open(os.path.join(FIX, "%s_names.txt" % arch), "w") as f:
            for n in names:
                f.write("%s %s\n" % (n, "x".join(str(s) for s in sd[n].shape)))
        print(arch, "pooled", y.shape, "range", float(y.min()), float(y.max()))


if __name__ == "__main__":
    main()
