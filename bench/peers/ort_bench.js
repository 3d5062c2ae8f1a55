#!/usr/bin/env node
/* P6, the ONNX Runtime side: the torchvision backbones exported by backbone_bench.py, run by
 * onnxruntime-node 1.30.0 (npm) on its bundled Linux x64 CPU library.
 *
 *   node bench/peers/ort_bench.js --install
 *   node bench/peers/ort_bench.js WORK MODEL --batch B --threads T [--seconds 4]
 *
 * --install puts onnxruntime-node and its dependencies into ~/.cache/mmfuse/node (install
 * scripts off: the package's own script downloads a GPU build, which fails here; the CPU library
 * is in the tarball) and prints where its native library is.
 * A run loads WORK/p6/MODEL.onnx (intraOpNumThreads T, interOpNumThreads 1, sequential
 * execution, all graph optimisations), runs one warm-up batch, then batches until at least
 * --seconds and 3 runs have passed, on a fixed pseudo-random [B, 3, S, S] input. It prints one
 * JSON line: images/s per run, CPU images/s, peak RSS (VmHWM) and the path of the
 * libonnxruntime.so the process mapped (checked to be the bundled one).
 */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const npm = require("../../tools/npm_pin.js");

const SIZES = { inception_v3: 299, resnet18: 224, mobilenet_v2: 224 };
const ORT = "onnxruntime-node";
const CACHE = path.join(os.homedir(), ".cache", "mmfuse");

function ort() {
  const mods = npm.install(path.join(CACHE, "npm"), path.join(CACHE, "node"), ORT);
  return { mods, ort: require(path.join(mods, ORT)) };
}

/* the libonnxruntime.so this process mapped; it must come from the installed package */
function mappedLib(mods) {
  const lib = fs.readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.split(/\s+/)[5])
    .find((p) => p && /libonnxruntime\.so/.test(p));
  if (!lib || !lib.startsWith(fs.realpathSync(mods)))
    throw new Error(`libonnxruntime.so not mapped from ${mods} (mapped: ${lib || "none"})`);
  return lib;
}

function vmHwmKb() {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : -1;
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === "--install") {
    const { mods, ort: o } = ort();
    const x = new o.Tensor("float32", new Float32Array(4), [4]); // touches the native binding
    console.log(`${ORT} ${o.env.versions.node}: ${x.dims}, library ${mappedLib(mods)}`);
    return;
  }
  const a = { work: argv[0], model: argv[1], batch: 16, threads: 1, seconds: 4 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    if (!(k in a) || i + 1 >= argv.length) throw new Error(`unknown argument ${argv[i]}`);
    a[k] = Number(argv[i + 1]);
  }
  if (!(a.model in SIZES)) throw new Error(`unknown model ${a.model} (${Object.keys(SIZES).join(", ")})`);
  const size = SIZES[a.model];
  const { mods, ort: o } = ort();
  const file = path.join(a.work, "p6", a.model + ".onnx");
  if (!fs.existsSync(file)) throw new Error(`${file} missing (backbone_bench.py WORK export)`);
  const session = await o.InferenceSession.create(file, { intraOpNumThreads: a.threads, interOpNumThreads: 1,
    executionMode: "sequential", graphOptimizationLevel: "all" });
  const data = new Float32Array(a.batch * 3 * size * size);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s / 4294967296;
  }
  const feeds = { [session.inputNames[0]]: new o.Tensor("float32", data, [a.batch, 3, size, size]) };
  let out = await session.run(feeds);
  const rates = [], cpu = [];
  const tAll = process.hrtime.bigint();
  while (rates.length < 3 || Number(process.hrtime.bigint() - tAll) / 1e9 < a.seconds) {
    const t0 = process.hrtime.bigint(), c0 = cpuSeconds();
    out = await session.run(feeds);
    rates.push(a.batch / (Number(process.hrtime.bigint() - t0) / 1e9));
    cpu.push(a.batch / Math.max(cpuSeconds() - c0, 1e-9));
  }
  console.log(JSON.stringify({ bench: "p6", side: "ort", model: a.model, size, batch: a.batch, threads: a.threads,
    images_per_s: rates, images_per_cpu_s: cpu, out_shape: out[session.outputNames[0]].dims,
    rss_kb: vmHwmKb(), ort: o.env.versions.node, lib: mappedLib(mods) }));
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: ${e.message}\n`);
  process.exit(1);
});
