#!/usr/bin/python3
"""Build mmfuse's real datasets from pinned npm tarballs.

  build_emoji32.py emoji32 --out DIR        write manifest.tsv + images/ (the committed data/emoji32)
  build_emoji32.py check  --against DIR     rebuild into a temp dir, compare byte for byte with DIR
  build_emoji32.py bench  --out DIR [--skins]  four vendors at 64 px + multilingual captions

Every tarball named in tools/npm_sources.txt is fetched with `npm pack NAME@VERSION` into the
cache folder (--cache, default ~/.cache/mmfuse/npm) when absent, and its sha256 must match the
pinned value. Members are read straight from the tarballs with tarfile (no unpacking to disk).
The output depends only on the tarballs, the constants below, Pillow and zlib: two runs write
identical bytes. See data/emoji32/README.md for the columns and the rules.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(HERE, "npm_sources.txt")
USES = ("emoji32", "bench", "pretrained", "fixtures", "peers")   # the last three: the Node tools

CAPTION_SEED = "mmfuse-emoji32-v1"   # changing it changes every caption
VENDOR = "twitter"                   # the committed set
BENCH_VENDORS = ("twitter", "google", "apple", "facebook")
SIZE = 32                            # committed image size (from the 64 px PNGs)
RESAMPLE = Image.BOX                 # exact 2x2 mean (Pillow premultiplies alpha for RGBA)
EXCLUDED_GROUPS = ("Component",)
COLUMNS = ("unified", "name", "tags", "caption", "group", "subgroup", "sentiment", "fold", "image")


def die(msg):
    sys.exit("build_emoji32: " + msg)


# ---------------------------------------------------------------- sources and tarballs

def read_sources():
    """[(spec, sha256, use)] from tools/npm_sources.txt."""
    out = []
    with open(SOURCES, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3 or parts[2] not in USES or "@" not in parts[0][1:]:
                die("%s:%d: expected 'name@version sha256 %s'" % (SOURCES, n, "|".join(USES)))
            out.append(tuple(parts))
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tarball(cache, name):
    """Path of the verified tarball for package `name` (fetched with npm pack when absent)."""
    for spec, sha, _use in read_sources():
        pkg, ver = spec.rsplit("@", 1)
        if pkg == name:
            break
    else:
        die("package %s is not pinned in %s" % (name, SOURCES))
    path = os.path.join(cache, "%s-%s.tgz" % (pkg, ver))
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        print("fetching %s with npm pack" % spec, file=sys.stderr)
        r = subprocess.run(["npm", "pack", "--silent", spec], cwd=cache,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0 or not os.path.exists(path):
            die("npm pack %s failed (no network?): %s" % (spec, r.stderr.decode(errors="replace").strip()))
    got = sha256_file(path)
    if got != sha:
        die("%s: sha256 %s does not match the pinned %s (delete it to refetch)" % (path, got, sha))
    return path


def tar_members(path, wanted):
    """{member name: bytes} for the names in `wanted` (a set); one pass over the tarball."""
    out = {}
    with tarfile.open(path, "r:gz") as t:
        for m in t:
            if m.name in wanted and m.isfile():
                out[m.name] = t.extractfile(m).read()
    missing = sorted(set(wanted) - set(out))
    if missing:
        die("%s lacks %d member(s), e.g. %s" % (path, len(missing), missing[0]))
    return out


def tar_matching(path, pattern):
    """{member name: bytes} for member names matching the regex `pattern`."""
    rx = re.compile(pattern)
    out = {}
    with tarfile.open(path, "r:gz") as t:
        for m in t:
            if m.isfile() and rx.fullmatch(m.name):
                out[m.name] = t.extractfile(m).read()
    return out


# ---------------------------------------------------------------- text helpers

def clean(s):
    """One line of text: tabs/newlines/other control characters become spaces, runs collapse."""
    s = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in s)
    return " ".join(s.split())


def clean_tag(s):
    return clean(s).replace("|", "/")


def strip_fe0f(hexcode):
    """Code point key without variation selector 16, e.g. 2764-FE0F -> 2764."""
    return "-".join(p for p in hexcode.upper().split("-") if p != "FE0F")


def fnv1a32(s):
    h = 2166136261
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def fold_of(unified):
    return fnv1a32(unified) % 5


def caption_of(key, label, tags):
    """Two distinct tags picked by a seeded hash of the emoji (in hash order); the label when
    fewer than two tags exist."""
    uniq = []
    for t in tags:
        if t and t not in uniq:
            uniq.append(t)
    if len(uniq) < 2:
        return label

    def rank(t):
        return hashlib.sha256(("%s\0%s\0%s" % (CAPTION_SEED, key, t)).encode("utf-8")).digest()
    return " ".join(sorted(uniq, key=rank)[:2])


def sentiment_of(score):
    if score is None:
        return ""
    if score < 0:
        return "negative"
    return "neutral" if score <= 1 else "positive"


def parse_wink(js):
    """{FE0F-stripped hexcode: integer ESR score} from wink-sentiment's src/emojis.js."""
    m = re.search(r"var emojis = \{\n(.*?)\n\};", js, re.S)
    if not m:
        die("wink-sentiment src/emojis.js: object literal not found")
    out = {}
    for n, line in enumerate(m.group(1).split("\n"), 1):
        if not line.strip():
            continue
        e = re.fullmatch(r"\s*'([^'\\]+)':\s*(-?\d+),?\s*", line)
        if not e:
            die("wink-sentiment src/emojis.js: unparsed entry line %d: %r" % (n, line))
        key = strip_fe0f("-".join("%04X" % ord(c) for c in e.group(1)))
        score = int(e.group(2))
        if key in out and out[key] != score:
            die("wink-sentiment: conflicting scores for %s" % key)
        out[key] = score
    return out


# ---------------------------------------------------------------- the rows

def load_metadata(cache):
    ds = tarball(cache, "emoji-datasource")
    eb = tarball(cache, "emojibase-data")
    wk = tarball(cache, "wink-sentiment")
    emoji = json.loads(tar_members(ds, {"package/emoji.json"})["package/emoji.json"])
    locales = {}
    for name, data in tar_matching(eb, r"package/([a-z-]+)/data\.json").items():
        locales[name.split("/")[1]] = json.loads(data)
    if "en" not in locales:
        die("emojibase-data: en/data.json missing")
    js = tar_members(wk, {"package/src/emojis.js"})["package/src/emojis.js"].decode("utf-8")
    return emoji, locales, parse_wink(js)


def index_locale(entries, with_skins=False):
    """{FE0F-stripped hexcode: (label, tags)} for one emojibase locale."""
    out = {}
    for e in entries:
        out[strip_fe0f(e["hexcode"])] = (e.get("label", ""), e.get("tags") or [])
        if with_skins:
            for s in e.get("skins") or []:
                out[strip_fe0f(s["hexcode"])] = (s.get("label", ""), s.get("tags") or e.get("tags") or [])
    return out


def base_rows(emoji, locales, wink, vendor):
    """Manifest rows (dicts) for the base emoji with an image of `vendor`, in Unicode order."""
    en = index_locale(locales["en"])
    rows = []
    for e in sorted(emoji, key=lambda e: (e["sort_order"], e["unified"])):
        if e["category"] in EXCLUDED_GROUPS or not e.get("has_img_" + vendor):
            continue
        key = strip_fe0f(e["unified"])
        if key not in en:
            die("emojibase-data en has no entry for %s (%s)" % (e["unified"], e["name"]))
        label, tags = en[key]
        label = clean(label)
        tags = [clean_tag(t) for t in tags]
        rows.append({
            "unified": e["unified"],
            "name": label,
            "tags": "|".join(t for t in tags if t),
            "caption": clean(caption_of(e["unified"], label, tags)),
            "group": e["category"],
            "subgroup": clean(e["subcategory"]),
            "sentiment": sentiment_of(wink.get(key)),
            "fold": str(fold_of(e["unified"])),
            "image": "images/%s.png" % e["unified"],
            "_src": e["image"],
            "_entry": e,
        })
    return rows


def write_tsv(path, rows, columns):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(columns) + "\n")
        for r in rows:
            vals = [r[c] for c in columns]
            for v in vals:
                if "\t" in v or "\n" in v or "\r" in v:
                    die("internal: unescaped field %r" % v)
            f.write("\t".join(vals) + "\n")


# ---------------------------------------------------------------- images

def png32(data, what):
    """Deterministic 32x32 RGBA PNG bytes from a 64 px vendor PNG (no metadata chunks)."""
    im = Image.open(io.BytesIO(data))
    if im.size != (64, 64):
        die("%s: expected a 64x64 PNG, got %dx%d" % (what, im.size[0], im.size[1]))
    im = im.convert("RGBA").resize((SIZE, SIZE), RESAMPLE)
    fresh = Image.frombytes("RGBA", im.size, im.tobytes())   # drops info (icc, gamma, dpi)
    buf = io.BytesIO()
    fresh.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


# ---------------------------------------------------------------- commands

def build_emoji32(cache, out):
    emoji, locales, wink = load_metadata(cache)
    rows = base_rows(emoji, locales, wink, VENDOR)
    tw = tarball(cache, "emoji-datasource-" + VENDOR)
    prefix = "package/img/%s/64/" % VENDOR
    imgs = tar_members(tw, {prefix + r["_src"] for r in rows})
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    for r in rows:
        with open(os.path.join(out, r["image"]), "wb") as f:
            f.write(png32(imgs[prefix + r["_src"]], prefix + r["_src"]))
    write_tsv(os.path.join(out, "manifest.tsv"), rows, COLUMNS)
    return rows


def list_files(root):
    out = []
    for d, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def check(cache, against):
    """Rebuild into a temp dir; compare manifest.tsv and images/ byte for byte with `against`."""
    tmp = tempfile.mkdtemp(prefix="emoji32-")
    try:
        rows = build_emoji32(cache, tmp)
        new = [p for p in list_files(tmp)]
        old = [p for p in list_files(against) if p == "manifest.tsv" or p.startswith("images" + os.sep)]
        problems = []
        for p in sorted(set(new) - set(old)):
            problems.append("missing from %s: %s" % (against, p))
        for p in sorted(set(old) - set(new)):
            problems.append("not produced by the builder: %s" % p)
        for p in sorted(set(new) & set(old)):
            with open(os.path.join(tmp, p), "rb") as a, open(os.path.join(against, p), "rb") as b:
                x, y = a.read(), b.read()
            if x != y:
                note = ""
                if p.endswith(".png"):
                    same = (Image.open(io.BytesIO(x)).convert("RGBA").tobytes()
                            == Image.open(io.BytesIO(y)).convert("RGBA").tobytes())
                    note = (" (pixels identical: only the PNG encoding differs, a different zlib/Pillow?)"
                            if same else " (pixels differ)")
                problems.append("differs: %s%s" % (p, note))
        for p in ("ATTRIBUTION", "README.md"):   # hand-written, not generated
            if not os.path.exists(os.path.join(against, p)):
                problems.append("missing hand-written file: %s" % os.path.join(against, p))
        if problems:
            for p in problems[:20]:
                print(p, file=sys.stderr)
            die("%s is NOT what the builder produces (%d problem(s)); "
                "rerun `%s emoji32 --out %s` to regenerate" % (against, len(problems), sys.argv[0], against))
        print("%s: %d rows, %d files, byte-identical to a fresh build" % (against, len(rows), len(new)))
    finally:
        shutil.rmtree(tmp)


def fasttext_label(group):
    return "__label__" + re.sub(r"[^a-z0-9]+", "_", group.lower()).strip("_")


def build_bench(cache, out, skins):
    emoji, locales, wink = load_metadata(cache)
    os.makedirs(out, exist_ok=True)
    shutil.rmtree(os.path.join(out, "images"), ignore_errors=True)   # no stale files from a --skins run
    en_all = index_locale(locales["en"], with_skins=True)
    columns = COLUMNS + ("vendor",)
    rows = []
    for vendor in BENCH_VENDORS:
        base = base_rows(emoji, locales, wink, vendor)
        vrows = []
        for r in base:
            vrows.append(dict(r, vendor=vendor, image="images/%s/%s.png" % (vendor, r["unified"])))
            if not skins:
                continue
            for sv in sorted((r["_entry"].get("skin_variations") or {}).values(), key=lambda s: s["unified"]):
                if not sv.get("has_img_" + vendor):
                    continue
                label, tags = en_all.get(strip_fe0f(sv["unified"]), (r["name"], r["tags"].split("|")))
                label = clean(label)
                tags = [clean_tag(t) for t in tags]
                vrows.append(dict(r, unified=sv["unified"], name=label, _src=sv["image"],
                                  tags="|".join(t for t in tags if t), vendor=vendor,
                                  caption=clean(caption_of(sv["unified"], label, tags)),
                                  image="images/%s/%s.png" % (vendor, sv["unified"])))
                # fold stays the base emoji's: every variant of one emoji shares its fold
        path = tarball(cache, "emoji-datasource-" + vendor)
        prefix = "package/img/%s/64/" % vendor
        imgs = tar_members(path, {prefix + r["_src"] for r in vrows})
        os.makedirs(os.path.join(out, "images", vendor), exist_ok=True)
        for r in vrows:
            with open(os.path.join(out, r["image"]), "wb") as f:
                f.write(imgs[prefix + r["_src"]])
        rows += vrows
        print("bench: %s %d rows" % (vendor, len(vrows)), file=sys.stderr)
    write_tsv(os.path.join(out, "manifest.tsv"), rows, columns)

    # multilingual caption corpus (the base emoji of the Twitter set, every locale)
    base = base_rows(emoji, locales, wink, VENDOR)
    with open(os.path.join(out, "captions_multi.txt"), "w", encoding="utf-8", newline="\n") as ft, \
            open(os.path.join(out, "captions_multi.fold"), "w", encoding="utf-8", newline="\n") as ff, \
            open(os.path.join(out, "captions_multi.tsv"), "w", encoding="utf-8", newline="\n") as fm:
        fm.write("unified\tlocale\tgroup\tfold\tcaption\n")
        n = 0
        for loc in sorted(locales):
            idx = index_locale(locales[loc])
            for r in base:
                hit = idx.get(strip_fe0f(r["unified"]))
                if not hit:
                    continue
                label = clean(hit[0])
                tags = [clean_tag(t) for t in hit[1]]
                # English keeps the manifest's caption; other locales get their own draw
                key = r["unified"] if loc == "en" else loc + ":" + r["unified"]
                cap = clean(caption_of(key, label, tags))
                if not cap:
                    continue
                ft.write("%s %s\n" % (fasttext_label(r["group"]), cap))
                ff.write(r["fold"] + "\n")
                fm.write("\t".join((r["unified"], loc, r["group"], r["fold"], cap)) + "\n")
                n += 1
    print("bench: %d manifest rows, %d multilingual captions (%d locales) in %s"
          % (len(rows), n, len(locales), out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "mmfuse", "npm"),
                    help="folder for the npm tarballs")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("emoji32", help="write data/emoji32 (manifest.tsv, images/)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("check", help="rebuild to a temp dir and compare with a committed copy")
    p.add_argument("--against", required=True)
    p = sub.add_parser("bench", help="four vendors at 64 px + multilingual captions")
    p.add_argument("--out", required=True)
    p.add_argument("--skins", action="store_true", help="also the skin-tone variants")
    a = ap.parse_args()
    if a.cmd == "emoji32":
        rows = build_emoji32(a.cache, a.out)
        print("%s: %d rows" % (a.out, len(rows)))
    elif a.cmd == "check":
        check(a.cache, a.against)
    else:
        build_bench(a.cache, a.out, a.skins)


if __name__ == "__main__":
    main()
