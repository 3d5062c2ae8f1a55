#!/usr/bin/python3
"""Write the small image and .npy fixtures under spec/fixtures/{image,npy}/.

Run from the repository root:  /usr/bin/python3 tools/make_image_fixtures.py
Needs python3-pil and python3-numpy (not needed by the specs themselves).
Everything is derived from a fixed seed, so a rerun writes the same files
(PIL's JPEG encoder may vary across versions; the specs compare JPEG with a
tolerance).

Expected values go to expected.lua files the specs read:
  - decoded pixels of the lossless formats (as PIL decodes them, with our
    colour rule: grey -> RGB, alpha composited over white);
  - the HSV histogram, computed with float32 arithmetic in the same order as
    csrc/image/histogram.c so bin edges agree exactly.
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
IMG = os.path.join(ROOT, "spec", "fixtures", "image")
NPY = os.path.join(ROOT, "spec", "fixtures", "npy")
rng = np.random.default_rng(20170830)


def lua_list(vals, fmt=None):
    return "{" + ", ".join((fmt % v) if fmt else repr(float(v)) for v in vals) + "}"


def composite_white(a):
    """uint8 HxWxC (C in 1..4) -> HxWx3 with the rule of csrc/image/decode.c"""
    a = a.astype(np.uint32)
    if a.ndim == 2:
        a = a[:, :, None]
    c = a.shape[2]
    if c <= 2:
        rgb = np.repeat(a[:, :, :1], 3, axis=2)
    else:
        rgb = a[:, :, :3]
    if c in (2, 4):
        al = a[:, :, c - 1:c]
        rgb = (rgb * al + 255 * (255 - al) + 127) // 255
    return rgb.astype(np.uint8)


def hsv_hist(rgb, hb, sb, vb):
    """float32 replica of mm_image_hsv_histogram_rgb8"""
    f = np.float32
    k = f(1.0) / f(255.0)
    out = np.zeros(hb * sb * vb, dtype=np.float64)

    def binof(v, n):
        i = int(f(v) * f(n))
        return 0 if i < 0 else (n - 1 if i >= n else i)

    for p in rgb.reshape(-1, 3):
        r, g, b = f(p[0]) * k, f(p[1]) * k, f(p[2]) * k
        mx = max(r, g, b)
        mn = min(r, g, b)
        d = f(mx - mn)
        h = f(0.0)
        if d > 0:
            if mx == r:
                h = f((g - b) / d)
            elif mx == g:
                h = f(f(2.0) + f((b - r) / d))
            else:
                h = f(f(4.0) + f((r - g) / d))
            if h < 0:
                h = f(h + f(6.0))
        s = f(d / mx) if mx > 0 else f(0.0)
        idx = (binof(f(h / f(6.0)), hb) * sb + binof(s, sb)) * vb + binof(mx, vb)
        out[idx] += 1
    return (out / (rgb.shape[0] * rgb.shape[1])).astype(np.float32)


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def main():
    os.makedirs(IMG, exist_ok=True)
    os.makedirs(NPY, exist_ok=True)
    expected = {}

    # --- lossless images: 6 wide x 4 high, distinct colours
    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[0, 3] = (255, 255, 255)
    rgb[0, 4] = (0, 0, 0)
    rgb[0, 5] = (128, 128, 128)
    Image.fromarray(rgb, "RGB").save(os.path.join(IMG, "rgb.png"))
    Image.fromarray(rgb, "RGB").save(os.path.join(IMG, "rgb.bmp"))
    Image.fromarray(rgb, "RGB").save(os.path.join(IMG, "rgb.tga"))
    expected["rgb"] = rgb

    rgba = np.concatenate([rgb, rng.integers(0, 256, size=(4, 6, 1), dtype=np.uint8)], axis=2)
    rgba[0, 0, 3] = 0      # fully transparent -> white
    rgba[0, 1, 3] = 255    # opaque -> unchanged
    Image.fromarray(rgba, "RGBA").save(os.path.join(IMG, "rgba.png"))
    expected["rgba"] = composite_white(rgba)

    grey = rng.integers(0, 256, size=(4, 6), dtype=np.uint8)
    Image.fromarray(grey, "L").save(os.path.join(IMG, "grey.png"))
    expected["grey"] = composite_white(grey)

    la = np.stack([grey, rng.integers(0, 256, size=(4, 6), dtype=np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(os.path.join(IMG, "grey_alpha.png"))
    expected["grey_alpha"] = composite_white(la)

    # GIF: a palette image (exact colours through the palette)
    pal = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 200, 10]], dtype=np.uint8)
    idx = rng.integers(0, 4, size=(4, 6), dtype=np.uint8)
    g = Image.fromarray(idx, "P")
    g.putpalette(pal.flatten().tolist() + [0] * (768 - 12))
    g.save(os.path.join(IMG, "palette.gif"))
    expected["palette"] = pal[idx]

    # JPEG: a smooth 16x16 gradient (decoders agree closely on smooth content)
    yy, xx = np.mgrid[0:16, 0:16]
    grad = np.stack([xx * 15, yy * 15, np.full_like(xx, 128)], axis=2).astype(np.uint8)
    Image.fromarray(grad, "RGB").save(os.path.join(IMG, "gradient.jpg"), quality=95, subsampling=0)
    ref = np.asarray(Image.open(os.path.join(IMG, "gradient.jpg")).convert("RGB"))
    expected["gradient_jpg"] = ref

    # solid colour 10x7 (resize must keep the colour)
    solid = np.zeros((7, 10, 3), dtype=np.uint8)
    solid[:] = (40, 160, 220)
    Image.fromarray(solid, "RGB").save(os.path.join(IMG, "solid.png"))

    # --- bad inputs
    good_png = open(os.path.join(IMG, "rgb.png"), "rb").read()
    good_jpg = open(os.path.join(IMG, "gradient.jpg"), "rb").read()
    open(os.path.join(IMG, "empty.png"), "wb").close()
    open(os.path.join(IMG, "truncated.png"), "wb").write(good_png[: len(good_png) // 2])
    open(os.path.join(IMG, "truncated.jpg"), "wb").write(good_jpg[: len(good_jpg) // 2])
    # corrupt PNG: valid signature + IHDR, then an IDAT whose zlib stream is garbage
    ihdr = struct.pack(">IIBBBBB", 6, 4, 8, 2, 0, 0, 0)
    bad_idat = b"\x78\x9c" + bytes(rng.integers(0, 256, size=40, dtype=np.uint8))
    open(os.path.join(IMG, "corrupt.png"), "wb").write(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", bad_idat) + png_chunk(b"IEND", b""))
    # corrupt JPEG: SOI, then garbage
    open(os.path.join(IMG, "corrupt.jpg"), "wb").write(b"\xff\xd8" + bytes(rng.integers(0, 256, size=64, dtype=np.uint8)))
    # a PNG declaring 100000 x 100000 (valid CRCs, a tiny IDAT)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    open(os.path.join(IMG, "huge.png"), "wb").write(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b""))
    # a JPEG whose SOF declares 60000 x 60000
    j = bytearray(good_jpg)
    for m in (0xC0, 0xC1, 0xC2):
        p = j.find(bytes([0xFF, m]))
        if p > 0:
            j[p + 5:p + 9] = struct.pack(">HH", 60000, 60000)
            break
    open(os.path.join(IMG, "huge.jpg"), "wb").write(bytes(j))
    # a GIF declaring a 9000 x 9000 logical screen
    gif = bytearray(open(os.path.join(IMG, "palette.gif"), "rb").read())
    gif[6:10] = struct.pack("<HH", 9000, 9000)
    open(os.path.join(IMG, "huge.gif"), "wb").write(bytes(gif))
    # not an image at all
    open(os.path.join(IMG, "not_an_image.txt"), "wb").write(b"hello, I am a caption, not a picture\n")
    # a format stb does not read (WebP header)
    open(os.path.join(IMG, "unsupported.webp"), "wb").write(b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(28))

    with open(os.path.join(IMG, "expected.lua"), "w") as f:
        f.write("-- written by tools/make_image_fixtures.py: decoded pixels (HxWx3, uint8,\n")
        f.write("-- row-major) and float32-replica HSV histograms; do not edit\n")
        f.write("return {\n")
        for name, a in expected.items():
            f.write("  %s = { h = %d, w = %d, px = %s,\n" % (name, a.shape[0], a.shape[1], lua_list(a.flatten(), "%d")))
            f.write("    hist884 = %s,\n" % lua_list(hsv_hist(a, 8, 4, 4)))
            f.write("    hist222 = %s },\n" % lua_list(hsv_hist(a, 2, 2, 2)))
        f.write("}\n")

    # --- .npy
    a32 = rng.standard_normal((3, 4)).astype(np.float32)
    np.save(os.path.join(NPY, "f32_3x4.npy"), a32)
    a64 = rng.standard_normal((2, 3, 2)).astype(np.float64)
    np.save(os.path.join(NPY, "f64_2x3x2.npy"), a64)
    np.save(os.path.join(NPY, "f32_scalar.npy"), np.array(2.5, dtype=np.float32))
    np.save(os.path.join(NPY, "f32_empty.npy"), np.zeros((0, 5), dtype=np.float32))
    np.save(os.path.join(NPY, "int64.npy"), np.arange(6, dtype=np.int64).reshape(2, 3))
    np.save(os.path.join(NPY, "bigendian.npy"), a32.astype(">f4"))
    np.save(os.path.join(NPY, "fortran.npy"), np.asfortranarray(a32))
    np.save(os.path.join(NPY, "nine_dims.npy"), np.zeros((1,) * 9, dtype=np.float32))
    np.save(os.path.join(NPY, "structured.npy"), np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    good = open(os.path.join(NPY, "f32_3x4.npy"), "rb").read()
    open(os.path.join(NPY, "truncated.npy"), "wb").write(good[:-5])
    open(os.path.join(NPY, "trailing.npy"), "wb").write(good + b"\0\0\0\0")
    open(os.path.join(NPY, "bad_magic.npy"), "wb").write(b"\x93NUMPZ" + good[6:])
    hdr = good[:10]
    hl = struct.unpack("<H", good[8:10])[0]
    body = good[10:10 + hl]
    garbage = body.replace(b"'shape': (3, 4)", b"'shape': [3, 4]")
    open(os.path.join(NPY, "bad_header.npy"), "wb").write(hdr + garbage + good[10 + hl:])
    open(os.path.join(NPY, "header_cut.npy"), "wb").write(good[:30])
    open(os.path.join(NPY, "empty.npy"), "wb").close()
    np.save(os.path.join(NPY, "f32_vec5.npy"), rng.standard_normal(5).astype(np.float32))
    with open(os.path.join(NPY, "expected.lua"), "w") as f:
        f.write("-- written by tools/make_image_fixtures.py; do not edit\n")
        f.write("return {\n")
        f.write("  f32_3x4 = %s,\n" % lua_list(a32.flatten()))
        f.write("  f64_2x3x2 = %s,\n" % lua_list(a64.astype(np.float32).flatten()))
        f.write("}\n")


if __name__ == "__main__":
    main()
