#!/usr/bin/python3
"""Write the bad-input corpus of spec/bad_input_spec.lua under spec/fixtures/bad/.

Run from the repository root:  /usr/bin/python3 tools/make_bad_fixtures.py
Python standard library only; deterministic (a rerun writes the same bytes).
The JPEG cases are cut out of spec/fixtures/image/gradient.jpg.

Every file is small (< 1 KB) and wrong in one way; the spec says which Lua
error each one must end in. Model files truncated at every tenth or with
flipped bytes are made by the spec itself from a freshly saved model (their
exact bytes depend on the model), the framing cases are here.
"""
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "spec", "fixtures", "bad")


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- images
def chunk(kind, body):
    c = kind + body
    return struct.pack(">I", len(body)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def png(w, h, raw=None, depth=8, ctype=2):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    if raw is None:
        raw = b"".join(b"\0" + bytes((x * 40 + y * 7) & 255 for x in range(w * 3)) for y in range(h))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


good_png = png(4, 4)
write("image/png_zero.png", b"")
write("image/png_truncated.png", good_png[: len(good_png) // 2])
write("image/png_header_only.png", good_png[:8])
write("image/png_corrupt_idat.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
      + chunk(b"IDAT", b"\x78\x9c" + bytes(range(200, 250))) + chunk(b"IEND", b""))
write("image/png_huge.png", png(100000, 100000, raw=b"\0"))
write("image/png_bad_depth.png", png(4, 4, depth=7))

with open(os.path.join(ROOT, "spec", "fixtures", "image", "gradient.jpg"), "rb") as f:
    jpg = f.read()
sof = jpg.find(b"\xff\xc0")
sos = jpg.find(b"\xff\xda")
assert sof > 0 and sos > sof
write("image/jpg_zero.jpg", b"")
write("image/jpg_truncated.jpg", jpg[: sos - 10])
write("image/jpg_soi_only.jpg", jpg[:2])
bad = bytearray(jpg)
for i in range(sof + 2, sof + 12):  # the frame header turned into garbage
    bad[i] = 0xFF if i % 2 else 0x00
write("image/jpg_corrupt_sof.jpg", bytes(bad))
huge = bytearray(jpg)
huge[sof + 5: sof + 9] = struct.pack(">HH", 65000, 65000)  # height, width
write("image/jpg_huge.jpg", bytes(huge))

# GIF: 2x2, global palette of 2 colours, one image, LZW min code size 2
gif_body = (b"GIF89a" + struct.pack("<HH", 2, 2) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
            + b"\x2c" + struct.pack("<HHHH", 0, 0, 2, 2) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b")
write("image/gif_zero.gif", b"")
write("image/gif_truncated.gif", gif_body[:13])
write("image/gif_corrupt_lzw.gif", gif_body[:-6] + b"\x0f\x02\xff\xff\x00\x3b")
write("image/gif_huge.gif", b"GIF89a" + struct.pack("<HH", 65535, 65535) + gif_body[10:27]
      + struct.pack("<HHHH", 0, 0, 65535, 65535) + gif_body[35:])
write("image/text_named.png", "this is not a picture\n")

# ---------------------------------------------------------------- text
write("text/invalid_utf8.txt", b"caf\xc3 \xff\xfe dog \xed\xa0\x80 cat \xc0\xaf end")
write("text/nul.txt", b"cat\0dog\0\0 face\0")

# ---------------------------------------------------------------- manifests
write("manifest/zero.tsv", b"")
write("manifest/missing_column.tsv", "text\tfold\ncat face\t0\n")
write("manifest/ragged.tsv", "text\tlabel\ncat face\tcat\ndog face\n")
write("manifest/ragged.csv", "text,label\n\"cat, face\",cat\ndog,face,dog,extra\n")
write("manifest/unterminated.csv", "text,label\n\"cat face,cat\n")
write("manifest/unknown_label.tsv", "text\tlabel\ncat face\tcat\nbird face\tbird\n")
write("manifest/missing_image.tsv", "text\timage\tlabel\ncat\t\tcat\n"
      "dog\tnot_there.png\tdog\n")
write("manifest/bad_image.tsv", "text\timage\tlabel\ncat\t\tcat\ndog\t../image/png_truncated.png\tdog\n")
write("manifest/not_json.jsonl", '{"text": "cat", "label": "cat"}\n{"text": "dog", "label": \n')
write("manifest/nested.jsonl", '{"text": "cat", "label": "cat"}\n{"text": {"a": 1}, "label": "dog"}\n')
write("manifest/bad_number.csv", "x,y,label\n1,2,cat\n3,nan,dog\n")
write("manifest/bad_text.tsv", b"text\tlabel\ncat \xff\xfe face\tcat\ndog\0face\tdog\n\xc0\xaf\tcat\n")

# ---------------------------------------------------------------- word vectors
write("vectors/zero.vec", b"")
write("vectors/wrong_dim.txt", "cat 0.1 0.2 0.3\ndog 0.1 0.2\n")
write("vectors/garbage.txt", bytes((i * 37 + 11) & 255 for i in range(300)))
write("vectors/header_lies.vec", "3 4\ncat 0.1 0.2 0.3 0.4\ndog 0.5 0.6\n")
write("vectors/not_numbers.txt", "cat 0.1 zebra 0.3\n")
write("vectors/w2v_truncated.bin", b"2 4\ncat " + struct.pack("<4f", 1, 2, 3, 4) + b"dog " + struct.pack("<2f", 1, 2))


# ---------------------------------------------------------------- .npy
def npy(descr, shape, payload, fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False",
                                                                   repr(tuple(shape)))
    pad = 64 - (10 + len(d) + 1) % 64
    h = d + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload


write("npy/zero.npy", b"")
write("npy/wrong_dtype.npy", npy("<i4", (2, 2), struct.pack("<4i", 1, 2, 3, 4)))
write("npy/object_dtype.npy", npy("|O", (2,), b"\0" * 16))
write("npy/wrong_shape.npy", npy("<f4", (2, 2, 2), struct.pack("<8f", *range(8))))
write("npy/truncated.npy", npy("<f4", (3, 4), struct.pack("<5f", *range(5))))
write("npy/huge_shape.npy", npy("<f4", (1 << 40, 1 << 40), b"\0" * 16))
write("npy/bad_magic.npy", b"\x93NUMPX\x01\x00" + npy("<f4", (1,), b"\0\0\0\0")[8:])
write("npy/nan_rows.npy", npy("<f4", (3, 2), struct.pack("<6f", 1, 2, 3, float("nan"), 5, 6)))


# ---------------------------------------------------------------- model framing
def st(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header, sort_keys=True).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


meta = {"format": "mmfuse-model", "version": "1", "config": "{}", "classes": "[]", "vocabulary": "[]"}
write("model/zero.mmf", b"")
write("model/short.mmf", b"\x10\x00\x00")
write("model/header_past_end.mmf", st({"__metadata__": meta}, length=1 << 30))
write("model/header_len_huge.mmf", st({"__metadata__": meta}, length=(1 << 64) - 8))
write("model/header_not_json.mmf", st(b"{this is not json}   "))
write("model/header_not_brace.mmf", st(b"[1, 2, 3]"))
write("model/wrong_version.mmf", st({"__metadata__": dict(meta, version="99")}))
write("model/wrong_format.mmf", st({"__metadata__": dict(meta, format="pytorch")}))
write("model/no_metadata.mmf", st({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
write("model/bad_config.mmf", st({"__metadata__": dict(meta, config="{not json")}))

n = sum(len(fs) for _, _, fs in os.walk(OUT))
print("wrote %d files under %s" % (n, os.path.relpath(OUT, ROOT)))
