#!/usr/bin/env node
/* make_tfjs_fixtures.js - the TensorFlow.js side of tools/make_tfjs_fixtures.py: runs a layers
 * model with @tensorflow/tfjs 4.22.0 (pure JavaScript CPU backend) and writes raw outputs.
 *
 *   node tools/make_tfjs_fixtures.js JOB.json
 *
 * JOB.json: {cache, node_root, model_json, input, n, size, outputs: [layer...],
 *            debug: {index, layers: [layer...]}, out}
 *   input   N x size x size x 3 uint8 RGB bytes (the decoded fixture PNGs)
 *   writes  <out>/<layer>.f32 for `outputs` (all N inputs), <out>/debug_<layer>.f32 for
 *           `debug.layers` (input number `debug.index` only), raw float32 little-endian, and
 *           <out>/result.json {shapes, tfjs, backend}
 * The model is read from model_json and the shard files its manifest names (tf.io.fromMemory).
 * The input is float32(pixel) / 255 computed by TF.js (toFloat().div(255)), as nsfwjs does.
 * tfjs is installed once from its pinned tarball into node_root (tools/npm_pin.js).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const npm = require("./npm_pin.js");

const TFJS = "@tensorflow/tfjs";

function loadArtifacts(modelJson) {
  const j = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  const dir = path.dirname(modelJson);
  const specs = [], bufs = [];
  for (const g of j.weightsManifest) {
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(bufs);
  return { modelTopology: j.modelTopology, weightSpecs: specs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.length) };
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const mods = npm.install(job.cache, job.node_root, TFJS);
  const tf = require(path.join(mods, TFJS));
  await tf.setBackend("cpu");
  await tf.ready();
  if (tf.version.tfjs !== npm.pin(TFJS).version || tf.version["tfjs-core"] !== npm.pin(TFJS).version)
    throw new Error(`expected tfjs ${npm.pin(TFJS).version}, got ${JSON.stringify(tf.version)}`);
  const model = await tf.loadLayersModel(tf.io.fromMemory(loadArtifacts(job.model_json)));
  const u8 = fs.readFileSync(job.input);
  const { n, size } = job;
  if (u8.length !== n * size * size * 3) throw new Error(`${job.input}: ${u8.length} bytes, expected ${n}x${size}x${size}x3`);
  const x = tf.tidy(() => tf.tensor4d(Int32Array.from(u8), [n, size, size, 3], "int32").toFloat().div(tf.scalar(255)));
  fs.mkdirSync(job.out, { recursive: true });
  const shapes = {};
  const run = (layers, input, prefix) => {
    const sub = tf.model({ inputs: model.inputs, outputs: layers.map((l) => model.getLayer(l).output) });
    let ys = sub.predict(input);
    if (!Array.isArray(ys)) ys = [ys];
    layers.forEach((l, i) => {
      const d = ys[i].dataSync();
      fs.writeFileSync(path.join(job.out, prefix + l + ".f32"), Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      shapes[prefix + l] = ys[i].shape;
      ys[i].dispose();
    });
  };
  run(job.outputs, x, "");
  const one = tf.tidy(() => x.slice([job.debug.index, 0, 0, 0], [1, size, size, 3]));
  run(job.debug.layers, one, "debug_");
  fs.writeFileSync(path.join(job.out, "result.json"),
    JSON.stringify({ shapes, tfjs: tf.version.tfjs, backend: tf.getBackend() }) + "\n");
}

main().catch((e) => {
  process.stderr.write(`make_tfjs_fixtures.js: ${e instanceof npm.PinError ? e.message : e.stack}\n`);
  process.exit(1);
});
