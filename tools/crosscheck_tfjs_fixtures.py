#!/usr/bin/python3
"""An independent evaluation of the nsfwjs layers models, to check the TensorFlow.js golden
outputs in spec/fixtures/tfjs and to measure how far float32 arithmetic moves them.

  crosscheck_tfjs_fixtures.py [--fixtures spec/fixtures/tfjs] [--dtype float64|float32] [--fold-bn]

Reads data/pretrained/<model>/model.json and its shards (uint8 weights dequantised as TF.js
does: float32(q * scale + min)), runs the Keras graph with PyTorch ops (Debian python3-torch)
in the chosen precision, NCHW inside, on the fixture PNGs (float32(pixel) / 255), and prints,
per model, the largest difference to the fixtures of the pooled features (relative to the
largest pooled value of the same input) and of the probabilities (absolute).
--fold-bn folds each BatchNormalization into the convolution before it, as an inference
engine does. Layer kinds: InputLayer, Conv2D, DepthwiseConv2D, BatchNormalization,
Activation, ReLU, ZeroPadding2D, Max/AveragePooling2D, Concatenate, Add, Flatten, Dense,
Dropout - the ones these two models use; anything else stops with its name.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"float32": (np.float32, 4), "int32": (np.int32, 4)}
QUANT = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def load_weights(model_json):
    with open(model_json) as f:
        j = json.load(f)
    out = {}
    for g in j["weightsManifest"]:
        data = b"".join(open(os.path.join(os.path.dirname(model_json), p), "rb").read() for p in g["paths"])
        off = 0
        for w in g["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                qt = np.dtype(QUANT[q["dtype"]])
                raw = np.frombuffer(data, qt, n, off)
                off += n * qt.itemsize
                if q["dtype"] == "float16":
                    v = raw.astype(np.float32)
                else:  # TF.js: Float32Array.from(q, v => v * scale + min), in double, stored as float32
                    v = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            else:
                dt, size = DTYPES[w["dtype"]]
                v = np.frombuffer(data, dt, n, off).astype(np.float32)
                off += n * size
            out[w["name"]] = v.reshape(w["shape"])
        if off != len(data):
            sys.exit("%s: weights take %d bytes, shards hold %d" % (model_json, off, len(data)))
    return j["modelTopology"]["model_config"]["config"], out


def same_pad(size, k, s):
    """TF 'same' padding (before, after) for one dimension."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def run_graph(cfg, W, x, dt, fold_bn, want):
    """outputs of the layers in `want` for input x [N, H, W, 3] (NHWC numpy float32)"""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dt)
    vals = {}
    layers = {l["name"]: l for l in cfg["layers"]}
    consumers = {}
    for l in cfg["layers"]:
        for nodes in l["inbound_nodes"]:
            for src in nodes:
                consumers.setdefault(src[0], []).append(l["name"])
    folded = set()
    for l in cfg["layers"]:
        name, kind, c = l["name"], l["class_name"], l["config"]
        ins = [vals[src[0]] for nodes in l["inbound_nodes"] for src in nodes]
        if kind == "InputLayer":
            y = t(x).permute(0, 3, 1, 2)
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            if c.get("dilation_rate", [1, 1]) != [1, 1] or c.get("data_format") != "channels_last":
                sys.exit("%s: dilation / data_format not supported here" % name)
            a = ins[0]
            kh, kw = c["kernel_size"]
            sh, sw = c["strides"]
            if c["padding"] == "same":
                (pt, pb), (pl, pr) = same_pad(a.shape[2], kh, sh), same_pad(a.shape[3], kw, sw)
                a = F.pad(a, (pl, pr, pt, pb))
            if kind == "Conv2D":
                k = t(W[name + "/kernel"]).permute(3, 2, 0, 1)          # [kh,kw,ci,co] -> [co,ci,kh,kw]
                groups = 1
            else:
                dk = W[name + "/depthwise_kernel"]                        # [kh,kw,ci,mult]
                k = t(dk.transpose(2, 3, 0, 1).reshape(-1, 1, kh, kw))   # [ci*mult,1,kh,kw]
                groups = dk.shape[2]
            b = t(W[name + "/bias"]) if c.get("use_bias") else torch.zeros(k.shape[0], dtype=dt)
            nxt = consumers.get(name, [])
            if fold_bn and len(nxt) == 1 and layers[nxt[0]]["class_name"] == "BatchNormalization":
                bn = layers[nxt[0]]
                g, beta, mu, var = bn_params(bn, W, k.shape[0], t, dt)
                s = g / torch.sqrt(var + bn["config"]["epsilon"])
                k = k * s.view(-1, 1, 1, 1)
                b = (b - mu) * s + beta
                folded.add(nxt[0])
            y = F.conv2d(a, k, b, stride=(sh, sw), groups=groups)
            y = activation(y, c.get("activation", "linear"), name)
        elif kind == "BatchNormalization":
            if name in folded:
                y = ins[0]
            else:
                g, beta, mu, var = bn_params(l, W, ins[0].shape[1], t, dt)
                s = g / torch.sqrt(var + c["epsilon"])
                y = (ins[0] - mu.view(1, -1, 1, 1)) * s.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
        elif kind == "Activation":
            y = activation(ins[0], c["activation"], name)
        elif kind == "ReLU":
            if c.get("negative_slope", 0) != 0 or c.get("threshold", 0) != 0:
                sys.exit("%s: ReLU options not supported here" % name)
            y = torch.relu(ins[0])
            if c.get("max_value") is not None:
                y = torch.clamp(y, max=c["max_value"])
        elif kind == "ZeroPadding2D":
            (pt, pb), (pl, pr) = c["padding"]
            y = F.pad(ins[0], (pl, pr, pt, pb))
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            a = ins[0]
            kh, kw = c["pool_size"]
            sh, sw = c["strides"]
            if c["padding"] == "same":
                (pt, pb), (pl, pr) = same_pad(a.shape[2], kh, sh), same_pad(a.shape[3], kw, sw)
            else:
                pt = pb = pl = pr = 0
            if kind == "MaxPooling2D":
                y = F.max_pool2d(F.pad(a, (pl, pr, pt, pb), value=-math.inf), (kh, kw), (sh, sw))
            else:  # TF averages over the window's valid (unpadded) elements
                ones = F.pad(torch.ones_like(a[:1, :1]), (pl, pr, pt, pb))
                y = (F.avg_pool2d(F.pad(a, (pl, pr, pt, pb)), (kh, kw), (sh, sw)) /
                     F.avg_pool2d(ones, (kh, kw), (sh, sw)))
        elif kind == "Concatenate":
            if c["axis"] not in (-1, 3):
                sys.exit("%s: axis %s" % (name, c["axis"]))
            y = torch.cat(ins, 1)
        elif kind == "Add":
            y = ins[0]
            for o in ins[1:]:
                y = y + o
        elif kind == "Flatten":
            y = ins[0].permute(0, 2, 3, 1).reshape(ins[0].shape[0], -1)   # NHWC order
        elif kind == "Dense":
            y = ins[0] @ t(W[name + "/kernel"])
            if c.get("use_bias"):
                y = y + t(W[name + "/bias"])
            y = activation(y, c["activation"], name)
        elif kind == "Dropout":
            y = ins[0]
        else:
            sys.exit("%s: layer kind %s not supported here" % (name, kind))
        vals[name] = y
    return {k: (vals[k].permute(0, 2, 3, 1) if vals[k].dim() == 4 else vals[k]).numpy() for k in want}


def bn_params(l, W, n, t, dt):
    name, c = l["name"], l["config"]
    g = t(W[name + "/gamma"]) if c.get("scale", True) else torch.ones(n, dtype=dt)
    beta = t(W[name + "/beta"]) if c.get("center", True) else torch.zeros(n, dtype=dt)
    return g, beta, t(W[name + "/moving_mean"]), t(W[name + "/moving_variance"])


def activation(y, a, name):
    if a == "linear":
        return y
    if a == "relu":
        return torch.relu(y)
    if a == "softmax":
        return torch.softmax(y, -1)
    sys.exit("%s: activation %s not supported here" % (name, a))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "spec", "fixtures", "tfjs"))
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--fold-bn", action="store_true")
    a = ap.parse_args()
    dt = torch.float64 if a.dtype == "float64" else torch.float32
    torch.set_num_threads(1)
    with open(os.path.join(a.fixtures, "manifest.json")) as f:
        man = json.load(f)
    for model, fm in man["models"].items():
        cfg, W = load_weights(os.path.join(ROOT, fm["model"]))
        x = np.stack([np.asarray(Image.open(os.path.join(a.fixtures, fm["inputs"], n + ".png")).convert("RGB"))
                      for n in man["inputs"]]).astype(np.float32) / np.float32(255)
        pooled, probs = fm["pooled"]["layer"], fm["probs"]["layer"]
        got = run_graph(cfg, W, x, dt, a.fold_bn, [pooled, probs])
        fp = np.load(os.path.join(a.fixtures, fm["pooled"]["file"]))
        fq = np.load(os.path.join(a.fixtures, fm["probs"]["file"]))
        rel = (np.abs(got[pooled] - fp).max(1) / np.abs(fp).max(1)).max()
        print("%s (%s%s): pooled max |diff| / max |row| %.3g; probabilities max |diff| %.3g; argmax agrees %d/16" % (
            model, a.dtype, ", BN folded" if a.fold_bn else "", rel, np.abs(got[probs] - fq).max(),
            int((got[probs].argmax(1) == fq.argmax(1)).sum())))
        dbg = fm["debug"]
        i = man["inputs"].index(dbg["input"])
        full = run_graph(cfg, W, x[i:i + 1], dt, a.fold_bn, [d["layer"] for d in dbg["layers"]])
        for d in dbg["layers"]:
            m = full[d["layer"]]
            k, ch = d["window"], d["channels"]
            crop = np.stack([m[0, :k, :k][:, :, ch], m[0, -k:, -k:][:, :, ch]])
            dump = np.load(os.path.join(a.fixtures, d["file"]))
            print("  %-24s dump max |diff| %.3g (map max |x| %.3g); sum %.6g vs %.6g" % (
                d["layer"], np.abs(crop - dump).max(), np.abs(m).max(), m.astype(np.float64).sum(), d["sum"]))


if __name__ == "__main__":
    main()
