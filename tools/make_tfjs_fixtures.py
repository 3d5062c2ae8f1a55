#!/usr/bin/python3
"""Golden outputs of the nsfwjs image models from the original implementation, TensorFlow.js.

  make_tfjs_fixtures.py [--out spec/fixtures/tfjs]   write the fixtures
  make_tfjs_fixtures.py --check                      regenerate into a temp folder and compare
                                                     byte for byte with the committed ones

Needs data/pretrained (make pretrained), Pillow and numpy (/usr/bin/python3), node + npm.
Inputs (committed as PNG at each network size, so both sides read exactly the same pixels):
  - 8 public-domain / CC0 photos from the Debian package python3-skimage (its data folder;
    the .deb is fetched with `apt-get download` into ~/.cache/mmfuse/deb, sha256-checked, and
    read without installing it): the centre square, resized with Pillow's LANCZOS;
  - 8 emoji from data/emoji32 (32 px Twemoji, CC BY 4.0), composited over white, resized with
    BICUBIC.
The network input is float32(pixel) / 255, RGB, channels last (what nsfwjs feeds the models).
tools/make_tfjs_fixtures.js runs @tensorflow/tfjs 4.22.0 (CPU backend, pure JavaScript) on
them; this script writes its outputs as little-endian float32 .npy files and manifest.json.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAINED = os.path.join(ROOT, "data", "pretrained")
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mmfuse")
DEB = ("python3-skimage", "0.19.3-8", "728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9")
DEB_DATA = "./usr/lib/python3/dist-packages/skimage/data/"
# (file in skimage/data, what it shows, source and licence as scikit-image's data docs state them)
PHOTOS = [
    ("astronaut.png", "astronaut Eileen Collins",
     "NASA Great Images database (https://flic.kr/p/r9qvLn); no known copyright restrictions, released into the public domain"),
    ("chelsea.png", "Chelsea the cat", "photographer Stefan van der Walt; CC0"),
    ("coffee.png", "coffee cup", "courtesy of Pikolo Espresso Bar; photographer Rachel Michetti; CC0"),
    ("rocket.jpg", "launch of DSCOVR on a Falcon 9",
     "SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/); released into the public domain by SpaceX"),
    ("hubble_deep_field.jpg", "Hubble eXtreme Deep Field",
     "NASA (http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/); public domain (NASA media guidelines)"),
    ("retina.jpg", "human retina (fundus photograph)",
     "Mikael Häggström, Wikimedia Commons (File:Fundus_photograph_of_normal_left_eye.jpg); CC0 1.0"),
    ("camera.png", "man with a camera (grey)", "photographer Lav Varshney; CC0"),
    ("grass.png", "grass (grey texture)",
     "DeviantArt linolafett, Grass-01 (https://www.deviantart.com/linolafett/art/Grass-01-434853879); CC0; "
     "cropped and converted to grey by scikit-image"),
]
# the first emoji of 8 of the 9 Unicode groups in data/emoji32's manifest order
EMOJI = ["1F600", "1F44B", "1F435", "1F347", "1F383", "1F453", "1F3E7", "1F3C1"]
MODELS = {
    # model: (input size, pooled-feature layer, the average pool it flattens, debugging layers)
    "inception_v3": (299, "flatten_1", "average_pooling2d_10", ["activation_1", "mixed0", "mixed5", "mixed10"]),
    "mobilenet_v2": (224, "flatten_1", "average_pooling2d_1",
                     ["Conv1_relu", "block_1_depthwise_relu", "block_2_add", "out_relu"]),
}
PROBS = "dense_3"
DEBUG_INPUT = 8          # emoji_1F600
DEBUG_CROP = 8           # top-left and bottom-right 8 x 8 windows
DEBUG_CHANNELS = 16      # channels floor(i * C / 16), i = 0..15 (all when C < 16)


def die(msg):
    sys.exit("make_tfjs_fixtures: " + msg)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- inputs

def skimage_deb():
    """{file name: bytes} of PHOTOS from the pinned python3-skimage .deb (not installed)."""
    name, ver, want = DEB
    folder = os.path.join(CACHE, "deb")
    path = os.path.join(folder, "%s_%s_all.deb" % (name, ver))
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=folder)
        try:
            r = subprocess.run(["apt-get", "download", "%s=%s" % (name, ver)], cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            got = os.path.join(tmp, os.path.basename(path))
            if r.returncode != 0 or not os.path.exists(got):
                die("apt-get download %s=%s failed: %s" % (name, ver, r.stderr.strip()))
            os.rename(got, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    with open(path, "rb") as f:
        data = f.read()
    if sha256(data) != want:
        die("%s: sha256 %s, expected %s (delete it to refetch)" % (path, sha256(data), want))
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", path], stdout=subprocess.PIPE, check=True).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t:
            base = m.name[len(DEB_DATA):] if m.name.startswith(DEB_DATA) else None
            if base in {p[0] for p in PHOTOS}:
                out[base] = t.extractfile(m).read()
    missing = [p[0] for p in PHOTOS if p[0] not in out]
    if missing:
        die("%s lacks %s" % (path, ", ".join(missing)))
    return out


def photo(data, n):
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.crop((left, top, left + s, top + s)).resize((n, n), Image.LANCZOS)


def emoji(unified, n):
    im = Image.open(os.path.join(ROOT, "data", "emoji32", "images", unified + ".png")).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB").resize((n, n), Image.BICUBIC)


def png_bytes(im):
    b = io.BytesIO()
    im.save(b, "PNG", optimize=True)
    return b.getvalue()


def input_names():
    return ["photo_" + os.path.splitext(p[0])[0] for p in PHOTOS] + ["emoji_" + u for u in EMOJI]


def write_inputs(out, sizes):
    """inputs/<size>/<name>.png; returns {size: N x size x size x 3 uint8} decoded from those PNGs"""
    photos = skimage_deb()
    arrays = {}
    for n in sizes:
        folder = os.path.join(out, "inputs", str(n))
        os.makedirs(folder, exist_ok=True)
        ims = [photo(photos[p[0]], n) for p in PHOTOS] + [emoji(u, n) for u in EMOJI]
        rows = []
        for name, im in zip(input_names(), ims):
            data = png_bytes(im)
            with open(os.path.join(folder, name + ".png"), "wb") as f:
                f.write(data)
            back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.uint8)
            if back.shape != (n, n, 3):
                die("%s: decoded as %s" % (name, back.shape))
            rows.append(back)
        arrays[n] = np.stack(rows)
    return arrays


# ---------------------------------------------------------------- outputs

def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype="<f4"))


def debug_dump(full):
    """[2, k, k, c] crops of a [1, H, W, C] map: top-left and bottom-right k x k windows
    (k = min(8, H, W)) of the channels floor(i * C / 16), i = 0..15 (all channels when C < 16)."""
    _, H, W, C = full.shape
    k = min(DEBUG_CROP, H, W)
    ch = list(range(C)) if C < DEBUG_CHANNELS else [i * C // DEBUG_CHANNELS for i in range(DEBUG_CHANNELS)]
    tl = full[0, :k, :k][:, :, ch]
    br = full[0, H - k:, W - k:][:, :, ch]
    return np.stack([tl, br]), ch, [[0, 0], [H - k, W - k]], k


def layer_class(model_json, name):
    with open(model_json) as f:
        layers = json.load(f)["modelTopology"]["model_config"]["config"]["layers"]
    for l in layers:
        if l["name"] == name:
            return l["class_name"]
    die("%s has no layer %s" % (model_json, name))


def run_model(model, arrays, out, work):
    size, pooled, avgpool, dbg = MODELS[model]
    model_json = os.path.join(PRETRAINED, model, "model.json")
    x = arrays[size]
    inp = os.path.join(work, "%s.u8" % model)
    x.tofile(inp)
    job = os.path.join(work, "%s.json" % model)
    res_dir = os.path.join(work, model)
    with open(job, "w") as f:
        json.dump({"cache": os.path.join(CACHE, "npm"), "node_root": os.path.join(CACHE, "node"),
                   "model_json": model_json, "input": inp, "n": int(x.shape[0]), "size": size,
                   "outputs": [pooled, PROBS], "debug": {"index": DEBUG_INPUT, "layers": dbg}, "out": res_dir}, f)
    t0 = time.time()
    r = subprocess.run(["node", os.path.join(ROOT, "tools", "make_tfjs_fixtures.js"), job],
                       stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        die("tools/make_tfjs_fixtures.js failed on %s" % model)
    secs = time.time() - t0
    with open(os.path.join(res_dir, "result.json")) as f:
        res = json.load(f)

    def raw(key):
        a = np.fromfile(os.path.join(res_dir, key + ".f32"), dtype="<f4")
        return a.reshape(res["shapes"][key])

    mdir = os.path.join(out, model)
    os.makedirs(mdir, exist_ok=True)
    n = x.shape[0]
    feats, probs = raw(pooled), raw(PROBS)
    if feats.ndim != 2 or feats.shape[0] != n or probs.shape != (n, 5):
        die("%s: unexpected output shapes %s %s" % (model, feats.shape, probs.shape))
    save_npy(os.path.join(mdir, "pooled.npy"), feats)
    save_npy(os.path.join(mdir, "probs.npy"), probs)
    debug = []
    for layer in dbg:
        full = raw("debug_" + layer)
        crop, ch, corners, k = debug_dump(full)
        f = "debug_%s.npy" % layer
        save_npy(os.path.join(mdir, f), crop)
        d64 = full.astype(np.float64)
        debug.append({"layer": layer, "class": layer_class(model_json, layer), "shape": list(full.shape),
                      "file": "%s/%s" % (model, f), "dump_shape": list(crop.shape), "window": k,
                      "corners": corners, "channels": ch,
                      "sum": float(d64.sum()), "sum_sq": float((d64 * d64).sum()),
                      "min": float(full.min()), "max": float(full.max())})
    files = {}
    for fn in sorted(os.listdir(os.path.dirname(model_json))):
        with open(os.path.join(os.path.dirname(model_json), fn), "rb") as f:
            files[fn] = sha256(f.read())
    with open(os.path.join(PRETRAINED, "manifest.json")) as f:
        classes = json.load(f)["models"][model]["classes"]
    entry = {
        "model": "data/pretrained/%s/model.json" % model,
        "model_sha256": files,
        "input_size": size,
        "inputs": "inputs/%d" % size,
        "pooled": {"file": "%s/pooled.npy" % model, "layer": pooled, "shape": list(feats.shape),
                   "what": "%s (%s over the whole last feature map) flattened" % (avgpool, layer_class(model_json, avgpool))},
        "probs": {"file": "%s/probs.npy" % model, "layer": PROBS, "shape": list(probs.shape), "classes": classes},
        "debug": {"input": input_names()[DEBUG_INPUT], "layers": debug},
    }
    return entry, res["tfjs"], secs


def generate(out):
    t0 = time.time()
    if not os.path.exists(os.path.join(PRETRAINED, ".stamp")):
        die("data/pretrained is missing: run `make pretrained` first")
    os.makedirs(out, exist_ok=True)
    arrays = write_inputs(out, sorted({m[0] for m in MODELS.values()}))
    work = tempfile.mkdtemp(prefix="tfjs-fixtures-")
    try:
        models, tfjs, times = {}, None, {}
        for m in MODELS:
            models[m], tfjs, times[m] = run_model(m, arrays, out, work)
            print("%s: %.1f s in TensorFlow.js" % (m, times[m]), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    node = subprocess.run(["node", "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    man = {
        "generator": "tools/make_tfjs_fixtures.py (+ tools/make_tfjs_fixtures.js)",
        "reference": "@tensorflow/tfjs %s, backend cpu (pure JavaScript), Node %s" % (tfjs, node),
        "preprocess": "RGB uint8 from the PNG, float32(pixel) / 255 (computed in float32), NHWC",
        "inputs": input_names(),
        "debug_dump": "[2, k, k, c]: [0] = rows 0..k-1, cols 0..k-1; [1] = rows H-k..H-1, cols W-k..W-1 "
                      "(k = window); channel j of the dump = channel channels[j] of the map; sum, sum_sq, "
                      "min, max are over the whole [1, H, W, C] map (float64 sums)",
        "models": models,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    write_attribution(out)
    return time.time() - t0


def write_attribution(out):
    lines = ["Sources of spec/fixtures/tfjs/inputs (written by tools/make_tfjs_fixtures.py)", "",
             "Photos: the scikit-image sample images shipped in the Debian package %s %s" % DEB[:2],
             "(/usr/lib/python3/dist-packages/skimage/data/; .deb sha256 %s)," % DEB[2],
             "centre square resized to 299 and 224 px. Source and licence of each, as scikit-image states them:", ""]
    for (fn, what, lic), name in zip(PHOTOS, input_names()):
        lines.append("  %s.png  <- skimage/data/%s: %s. %s." % (name, fn, what, lic))
    lines += ["", "Emoji: %s from data/emoji32/images/ (Twemoji by Twitter, Inc and other contributors," % ", ".join(EMOJI),
              "CC BY 4.0, https://creativecommons.org/licenses/by/4.0/; via emoji-datasource-twitter 16.0.0;",
              "see data/emoji32/ATTRIBUTION), composited over white and resized from 32 px; the resized",
              "pictures are adaptations of the Twemoji graphics under the same licence.", "",
              "The .npy outputs are computations of TensorFlow.js on these inputs with the nsfwjs models",
              "(nsfwjs, MIT, Copyright (c) 2019 Infinite Red, Inc.; see data/pretrained/ATTRIBUTION).", ""]
    with open(os.path.join(out, "ATTRIBUTION"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def files_under(root):
    out = []
    for d, _, fs in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in fs]
    return sorted(out)


def check(committed):
    tmp = tempfile.mkdtemp(prefix="tfjs-check-")
    try:
        secs = generate(tmp)
        new = [p for p in files_under(tmp)]
        old = [p for p in files_under(committed) if p != "README.md"]
        bad = sorted(set(new) ^ set(old))
        for p in sorted(set(new) & set(old)):
            with open(os.path.join(tmp, p), "rb") as a, open(os.path.join(committed, p), "rb") as b:
                if a.read() != b.read():
                    bad.append(p)
        if bad:
            die("%d file(s) differ from %s: %s" % (len(bad), committed, ", ".join(bad[:10])))
        print("%s: %d files bit-identical to a fresh run (%.0f s)" % (committed, len(new), secs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "spec", "fixtures", "tfjs"))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with --out")
    a = ap.parse_args()
    if a.check:
        check(a.out)
    else:
        secs = generate(a.out)
        total = sum(os.path.getsize(os.path.join(a.out, p)) for p in files_under(a.out))
        print("%s: %d files, %.2f MB, %.0f s" % (a.out, len(files_under(a.out)), total / 1e6, secs))


if __name__ == "__main__":
    main()
