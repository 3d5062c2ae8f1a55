// make_tfjs_layer_fixtures.js - small TensorFlow.js layers models covering every layer class,
// option and weight encoding mmfuse's reader implements, with their outputs computed by
// @tensorflow/tfjs 4.22.0 itself (CPU backend, pure JavaScript), for spec/tfjs_layers_spec.lua.
//
//   npm install @tensorflow/tfjs@4.22.0      (in any folder; NODE_PATH or TFJS= points at it)
//   TFJS=/path/node_modules/@tensorflow/tfjs node tools/make_tfjs_layer_fixtures.js spec/fixtures/tfjs_layers
//
// Writes, per model <name>/: model.json and its shards (as TF.js writes them, with each weight
// stored in turn as float32, uint8, uint16 or float16 - the last three dequantised exactly as
// TF.js reads them, and the model run with those values), x.npy (a batch of inputs, NHWC) and
// y_<layer>.npy for the model's outputs and a few inner layers. Weights come from a seeded
// generator: reruns write the same bytes.
"use strict";
const fs = require("fs");
const path = require("path");
const tf = require(process.env.TFJS || "@tensorflow/tfjs");

const out = process.argv[2] || "spec/fixtures/tfjs_layers";

// xorshift32 -> uniform [0, 1)
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function writeNpy(p, shape, data) {
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  while ((10 + h.length + 1) % 64) h += " ";
  h += "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head.writeUInt16LE(h.length, 8);
  const f = Float32Array.from(data);
  fs.writeFileSync(p, Buffer.concat([head, Buffer.from(h, "latin1"), Buffer.from(f.buffer)]));
}

// float -> IEEE half (round to nearest even), and back
function toHalf(v) {
  const f = new Float32Array([v]), u = new Uint32Array(f.buffer)[0];
  const s = (u >>> 16) & 0x8000, e = ((u >>> 23) & 0xff) - 127 + 15, m = u & 0x7fffff;
  if (e <= 0) {
    if (e < -10) return s;
    const mm = (m | 0x800000) >>> (1 - e + 13), rem = (m | 0x800000) & ((1 << (1 - e + 13)) - 1), half = 1 << (1 - e + 12);
    return s | (mm + (rem > half || (rem === half && (mm & 1)) ? 1 : 0));
  }
  if (e >= 31) return s | 0x7c00;
  let r = s | (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return r;
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (m + 1024) * Math.pow(2, e - 25);
}

// the weights of `model` in turn as float32 / uint8 / uint16 / float16; returns manifest
// entries, the bytes, and the values TF.js decodes (set into the model before it runs)
function encode(model) {
  const specs = [], bufs = [], values = [];
  model.weights.forEach((w, i) => {
    const v = w.read().dataSync();
    const spec = { name: w.originalName, shape: w.shape, dtype: "float32" };
    const kind = ["float32", "uint8", "uint16", "float16"][i % 4];
    let bytes, dec = new Float32Array(v.length);
    if (kind === "float32") {
      bytes = Buffer.from(Float32Array.from(v).buffer);
      dec.set(v);
    } else if (kind === "float16") {
      const q = new Uint16Array(v.length);
      for (let j = 0; j < v.length; j++) { q[j] = toHalf(v[j]); dec[j] = fromHalf(q[j]); }
      bytes = Buffer.from(q.buffer);
      spec.quantization = { dtype: "float16" };
    } else {
      const levels = kind === "uint8" ? 255 : 65535;
      let lo = Infinity, hi = -Infinity;
      for (const x of v) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
      const scale = hi > lo ? (hi - lo) / levels : 1;
      const q = kind === "uint8" ? new Uint8Array(v.length) : new Uint16Array(v.length);
      for (let j = 0; j < v.length; j++) {
        q[j] = Math.round((v[j] - lo) / scale);
        dec[j] = q[j] * scale + lo; // as tfjs-core io_utils decodeWeight (then stored as float32)
      }
      bytes = Buffer.from(q.buffer);
      spec.quantization = { dtype: kind, scale, min: lo };
    }
    specs.push(spec);
    bufs.push(bytes);
    values.push(tf.tensor(dec, w.shape));
  });
  model.setWeights(values);
  return { specs, data: Buffer.concat(bufs) };
}

function randomize(model, seed) {
  const r = rng(seed);
  model.setWeights(model.weights.map((w) => {
    const n = w.shape.reduce((a, b) => a * b, 1), v = new Float32Array(n), nm = w.originalName;
    for (let j = 0; j < n; j++) {
      if (/moving_variance/.test(nm)) v[j] = 0.5 + r();
      else if (/gamma/.test(nm)) v[j] = 0.5 + r();
      else v[j] = (r() - 0.5) * (/kernel/.test(nm) ? 0.8 : 0.4);
    }
    return tf.tensor(v, w.shape);
  }));
}

async function save(model, name, seed, inner, shardBytes) {
  randomize(model, seed);
  const { specs, data } = encode(model);
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  let topology;
  await model.save(tf.io.withSaveHandler(async (a) => { topology = a.modelTopology; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } }; }));
  const paths = [];
  for (let o = 0, k = 1; o < data.length || k === 1; o += shardBytes, k++) {
    const n = Math.ceil(data.length / shardBytes) || 1;
    const p = `group1-shard${k}of${n}`;
    fs.writeFileSync(path.join(dir, p), data.slice(o, o + shardBytes));
    paths.push(p);
    if (o + shardBytes >= data.length) break;
  }
  const mj = { format: "layers-model", generatedBy: "TensorFlow.js tfjs-layers v4.22.0", convertedBy: null,
    modelTopology: topology, weightsManifest: [{ paths, weights: specs }] };
  fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify(mj));
  // the inputs: 2 images
  const shape = [2, ...model.inputs[0].shape.slice(1)];
  const r = rng(seed + 1000), n = shape.reduce((a, b) => a * b, 1), xv = new Float32Array(n);
  for (let j = 0; j < n; j++) xv[j] = r();
  writeNpy(path.join(dir, "x.npy"), shape, xv);
  const x = tf.tensor(xv, shape);
  const names = model.outputNames.map((o) => o.split("/")[0]).concat(inner);
  const probe = tf.model({ inputs: model.inputs, outputs: names.map((nm) => model.getLayer(nm).output) });
  let ys = probe.predict(x);
  if (!Array.isArray(ys)) ys = [ys];
  names.forEach((nm, i) => writeNpy(path.join(dir, `y_${nm}.npy`), ys[i].shape, ys[i].dataSync()));
  console.log(name, specs.length, "weights,", data.length, "bytes in", paths.length, "shards; outputs", names.join(" "));
}

(async () => {
  await tf.setBackend("cpu");
  const L = tf.layers;
  // every layer class and option, functional
  {
    const x = tf.input({ shape: [17, 15, 5], name: "image" });
    let a = L.conv2d({ name: "c1", filters: 24, kernelSize: 3, strides: 2, padding: "same", activation: "relu" }).apply(x);
    a = L.batchNormalization({ name: "bn1", epsilon: 1e-3 }).apply(a);
    let b = L.zeroPadding2d({ name: "pad", padding: [[1, 0], [0, 2]] }).apply(a);
    b = L.conv2d({ name: "c2", filters: 20, kernelSize: [3, 2], padding: "valid", useBias: false }).apply(b);
    b = L.batchNormalization({ name: "bn2", scale: false }).apply(b);
    b = L.reLU({ name: "relu6", maxValue: 6 }).apply(b);
    let d = L.depthwiseConv2d({ name: "dw1", kernelSize: 3, padding: "same", activation: "relu6" }).apply(b);
    d = L.batchNormalization({ name: "bn3", center: false }).apply(d);
    const e1 = L.conv2d({ name: "c3", filters: 20, kernelSize: 1, useBias: false }).apply(d);
    let s = L.add({ name: "sum" }).apply([e1, b]);
    s = L.activation({ name: "act", activation: "relu" }).apply(s);
    const br1 = L.conv2d({ name: "b1", filters: 7, kernelSize: [1, 5], padding: "same" }).apply(s);
    const br2 = L.maxPooling2d({ name: "mp_same", poolSize: 3, strides: 1, padding: "same" }).apply(s);
    const br3 = L.averagePooling2d({ name: "ap_same", poolSize: 3, strides: 1, padding: "same" }).apply(s);
    const br4 = L.conv2d({ name: "b4", filters: 5, kernelSize: [5, 1], padding: "same", activation: "relu" }).apply(br1);
    let c = L.concatenate({ name: "cat", axis: -1 }).apply([br1, br2, br3, br4]);
    let f = L.depthwiseConv2d({ name: "dw2", kernelSize: 3, strides: 2, padding: "valid", useBias: false }).apply(c);
    const m = L.maxPooling2d({ name: "mp", poolSize: 2, strides: 1 }).apply(f);
    const g = L.globalAveragePooling2d({ name: "gap" }).apply(m);
    let h = L.dense({ name: "fc1", units: 10, activation: "relu" }).apply(g);
    h = L.dropout({ name: "drop", rate: 0.5 }).apply(h);
    const y1 = L.dense({ name: "fc2", units: 4, activation: "softmax" }).apply(h);
    const p = L.averagePooling2d({ name: "ap", poolSize: 2, strides: 2 }).apply(m);
    const fl = L.flatten({ name: "flat" }).apply(p);
    const y2 = L.dense({ name: "fc3", units: 3 }).apply(fl);
    const y3 = L.softmax({ name: "sm" }).apply(y2);
    const model = tf.model({ inputs: x, outputs: [y1, y3], name: "every_layer" });
    await save(model, "every_layer", 7, ["bn1", "relu6", "bn3", "act", "cat", "gap", "flat"], 4096);
  }
  // a Sequential model
  {
    const model = tf.sequential({ name: "sequential_small" });
    model.add(L.conv2d({ name: "s1", inputShape: [9, 9, 3], filters: 16, kernelSize: 3, padding: "same" }));
    model.add(L.batchNormalization({ name: "sbn" }));
    model.add(L.activation({ name: "sa", activation: "relu6" }));
    model.add(L.maxPooling2d({ name: "smp", poolSize: 2, padding: "same" }));
    model.add(L.globalAveragePooling2d({ name: "sgap" }));
    model.add(L.dense({ name: "sd", units: 3, activation: "softmax" }));
    await save(model, "sequential_small", 11, ["sa", "sgap"], 1 << 20);
  }
})();
