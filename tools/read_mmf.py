#!/usr/bin/python3
"""Read an mmfuse model file (.mmf, safetensors layout) with numpy only.

Layout: 8-byte little-endian header length N, N bytes of JSON, then the raw
little-endian float32 tensors at header[name]["data_offsets"] (relative to
the end of the header). header["__metadata__"] holds JSON strings: config,
classes, vocabulary, tokenizer. Usage: read_mmf.py model.mmf
"""
import json
import struct
import sys

import numpy as np


def read_mmf(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = {k: json.loads(v) if k in ("config", "classes", "vocabulary", "tokenizer") else v
            for k, v in header.pop("__metadata__").items()}
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {t['dtype']}")
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(blob[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"])
    return meta, tensors


if __name__ == "__main__":
    meta, tensors = read_mmf(sys.argv[1])
    print(json.dumps({"fusion": meta["config"]["fusion"], "classes": meta["classes"],
                      "tensors": {k: {"shape": list(v.shape), "sum": float(v.astype(np.float64).sum())}
                                  for k, v in sorted(tensors.items())}}))
