// Streams benchmark: one provider process holding 10,000 concurrent
// streaming chat requests, beside the same load sent straight at the mock,
// in one run. Run it through bench/streams.sh (it builds a Release binary
// and raises the file limit); Node built-ins only.
//
//   AIGW_BIN=build-bench/aigw node bench/streams.mjs [--streams N]
//       [--latency-ms MS] [--ramp-ms MS] [--chunks N] [--chunk-delay-ms MS]
//       [--mock-threads N] [--timeout-ms MS]
//
// Starts `aigw mock-provider` (upstream latency --latency-ms) and a split
// deployment configured by bench/streams.yaml: `aigw broker`, `aigw edge`
// and one process each of `aigw actor auth|ratelimit|guardrail|cache|
// provider`. Then three phases with the same load, one after the other:
//   direct   N streams straight at the mock
//   cold     N streams through the edge (and the one provider process),
//            which opens its N upstream connections during the phase
//   warm     the same again, on the upstream connections curl kept alive
// Each phase opens N raw TCP connections, staggered evenly over --ramp-ms,
// writes a hand-made HTTP/1.1 request on each (stream: true, with
// mock:chunks and mock:chunk_delay in the prompt so every stream lasts
// latency + (chunks+1) x chunk delay), and reads the SSE answer.
// Prints, per phase: success (HTTP 200 and data: [DONE] seen), failures by
// kind, the ramp (opens, connects, peak streams open at once, peak upstream
// in flight from the mock's /mock/stats), time to first token (request
// start to the first non-empty delta.content) p50/p95/p99, the client's
// event-loop delay, the kernel's accept-queue counters, the gateway's own
// gauges (provider stage in flight and queued), per process CPU seconds and
// peak RSS (VmHWM); then the added TTFT (gateway minus direct) at each
// percentile, cold and warm.
// Figures only: nothing here asserts a timing.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '..');
const BIN = process.env.AIGW_BIN || path.join(SRC, 'build-bench', 'aigw');
const CONFIG = path.join(HERE, 'streams.yaml');

const { values: opt } = parseArgs({
  options: {
    streams: { type: 'string', default: '10000' },
    'latency-ms': { type: 'string', default: '1500' },
    'ramp-ms': { type: 'string', default: '1000' },
    chunks: { type: 'string', default: '10' },
    'chunk-delay-ms': { type: 'string', default: '100' },
    'mock-threads': { type: 'string', default: '12000' },
    'timeout-ms': { type: 'string', default: '90000' },
  },
});
const STREAMS = Number(opt.streams);
const LATENCY_MS = Number(opt['latency-ms']);
const RAMP_MS = Number(opt['ramp-ms']);
const CHUNKS = Number(opt.chunks);
const CHUNK_DELAY_MS = Number(opt['chunk-delay-ms']);
const MOCK_THREADS = Number(opt['mock-threads']);
const TIMEOUT_MS = Number(opt['timeout-ms']);
const READY_TIMEOUT_MS = 180000;    // ready within this (10,000 threads start slowly here)
const SAMPLE_MS = 250;              // RSS and upstream in-flight sampling
const SETTLE_MS = 3000;             // pause between phases: sockets close
const FAILURES_SHOWN = 5;           // failure details printed per phase

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-streams-'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nonce = () => crypto.randomBytes(8).toString('hex');

// ---------------------------------------------------------------------------
// Processes

const procs = [];
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

// Start BIN ARGS as NAME with ENV added, output to TMP/NAME.log; the kernel
// kills it if we die (setpriv --pdeathsig).
function start(name, args, env = {}) {
  const log = path.join(TMP, `${name}.log`);
  const fd = fs.openSync(log, 'a');
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', BIN, ...args]]
    : [BIN, args];
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const p = { name, child, pid: child.pid, log, exited: false };
  child.on('exit', (code, signal) => { p.exited = true; p.how = signal || `code ${code}`; });
  procs.push(p);
  return p;
}

function tail(p, lines = 20) {
  try {
    return fs.readFileSync(p.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch { return ''; }
}

function stopAll() {
  for (const p of procs) if (!p.exited) { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(130); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(url, headers = {}) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  for (;;) {
    const dead = procs.find((p) => p.exited);
    if (dead) throw new Error(`${dead.name} exited (${dead.how})\n${tail(dead)}`);
    try {
      const r = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
      last = `${r.status} ${(await r.text()).slice(0, 300)}`;
      if (r.status === 200) return;
    } catch (e) { last = e.cause?.code || e.name; }
    if (Date.now() > deadline) throw new Error(`${url} not ready in ${READY_TIMEOUT_MS} ms: ${last}`);
    await sleep(100);
  }
}

// /proc figures of PID: { hwmKiB, rssKiB, threads, cpuS }.
const TICKS = 100;      // USER_HZ on Linux
function procStat(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number((status.match(new RegExp(`${k}:\\s+(\\d+)`)) || [])[1] || 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS'), threads: kib('Threads'),
             cpuS: (Number(f[11]) + Number(f[12])) / TICKS };
  } catch { return { hwmKiB: 0, rssKiB: 0, threads: 0, cpuS: 0 }; }
}

// ---------------------------------------------------------------------------
// The load: N raw-socket streams

// One streaming request on a fresh connection to PORT. Resolves with
// { ok, status, done, error, connectMs, ttftMs, endMs } (times from open).
function oneStream(port, headers, index, live) {
  return new Promise((resolve) => {
    const body = JSON.stringify({
      model: 'gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: `stream ${index} ${nonce()} mock:chunks=${CHUNKS} ` +
                                          `mock:chunk_delay=${CHUNK_DELAY_MS}` }],
    });
    const request = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Content-Type: application/json\r\nAccept: text/event-stream\r\n${headers}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const t0 = performance.now();
    const r = { ok: false, status: 0, done: false, error: null, connectMs: null, ttftMs: null,
                endMs: null, bodyHead: '' };
    let head = '';                // response bytes before the body
    let headerDone = false;
    let chunked = false;
    let raw = '';                 // body bytes not yet de-chunked
    let sse = '';                 // de-chunked SSE text not yet split into events
    let ended = false;
    let counted = false;
    const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const finish = (error) => {
      if (ended) return;
      ended = true;
      if (counted) live.open--;
      r.endMs = performance.now() - t0;
      if (error && !r.error) r.error = error;
      r.ok = r.status === 200 && r.done && !r.error;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('timeout'), TIMEOUT_MS);
    const onEvent = (block) => {
      let data = null;
      for (const line of block.split('\n')) {
        if (line.startsWith('data:')) data = line.slice(line[5] === ' ' ? 6 : 5);
      }
      if (data === null) return;
      if (data === '[DONE]') { r.done = true; return; }
      if (r.ttftMs === null) {
        try {
          const j = JSON.parse(data);
          const c = j.choices?.[0]?.delta?.content;
          if (typeof c === 'string' && c.length > 0) r.ttftMs = performance.now() - t0;
          if (j.error) r.error = `error event: ${data.slice(0, 200)}`;
        } catch { r.error = `bad event: ${data.slice(0, 200)}`; }
      }
    };
    const onBody = (text) => {
      sse += text.replace(/\r\n/g, '\n');
      let cut;
      while ((cut = sse.indexOf('\n\n')) >= 0) {
        onEvent(sse.slice(0, cut));
        sse = sse.slice(cut + 2);
      }
    };
    // Decode as much of RAW (chunked framing) as is whole; true at the end.
    const dechunk = () => {
      for (;;) {
        const eol = raw.indexOf('\r\n');
        if (eol < 0) return false;
        const size = parseInt(raw.slice(0, eol), 16);
        if (Number.isNaN(size)) { finish(`bad chunk size ${raw.slice(0, 20)}`); return true; }
        if (size === 0) return true;
        if (raw.length < eol + 2 + size + 2) return false;
        onBody(raw.slice(eol + 2, eol + 2 + size));
        raw = raw.slice(eol + 2 + size + 2);
      }
    };
    sock.setEncoding('latin1');   // byte-exact lengths for the chunk framing
    sock.on('connect', () => {
      r.connectMs = performance.now() - t0;
      live.open++;
      counted = true;
      if (live.open > live.peak) live.peak = live.open;
      sock.write(request);
    });
    sock.on('data', (d) => {
      if (!headerDone) {
        head += d;
        const cut = head.indexOf('\r\n\r\n');
        if (cut < 0) return;
        const lines = head.slice(0, cut).split('\r\n');
        r.status = Number(lines[0].split(' ')[1]);
        chunked = lines.some((l) => /^transfer-encoding:\s*chunked/i.test(l));
        headerDone = true;
        d = head.slice(cut + 4);
        head = '';
      }
      if (r.status !== 200 && r.bodyHead.length < 300) r.bodyHead += d.slice(0, 300);
      if (chunked) {
        raw += d;
        if (dechunk()) finish(null);
      } else {
        onBody(Buffer.from(d, 'latin1').toString('utf8'));
      }
    });
    sock.on('end', () => finish(chunked ? 'closed before the last chunk' : null));
    sock.on('error', (e) => finish(e.code || e.message));
    sock.on('close', () => finish('closed'));
  });
}

// The kernel's TCP counters that show a flooded accept queue (this network
// namespace, so other processes on the machine count too).
const TCP_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'SyncookiesSent',
                      'TCPTimeouts'];
function tcpCounters() {
  const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
  const names = lines[i].split(' '), values = lines[i + 1].split(' ');
  return Object.fromEntries(TCP_COUNTERS.map((n) => [n, Number(values[names.indexOf(n)])]));
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// N streams at PORT, opened evenly over RAMP_MS; samples the processes of
// WATCH and the mock's in-flight count meanwhile. Returns the phase figures.
async function phase(name, port, headers, watch, mockStats, gatewayMetrics) {
  const live = { open: 0, peak: 0 };
  const gauges = {};      // peak of each sampled gateway gauge
  const client0 = process.cpuUsage();
  const tcp0 = tcpCounters();
  const load0 = os.loadavg()[0];
  const cpu0 = Object.fromEntries(watch.map((p) => [p.name, procStat(p.pid).cpuS]));
  const peakRss = Object.fromEntries(watch.map((p) => [p.name, 0]));
  let upstreamPeak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const p of watch) peakRss[p.name] = Math.max(peakRss[p.name], procStat(p.pid).rssKiB);
      try {
        const s = await mockStats();
        upstreamPeak = Math.max(upstreamPeak, s.in_flight ?? 0);
      } catch { /* the mock is busy: skip this sample */ }
      if (gatewayMetrics) {
        try {
          for (const [k, v] of Object.entries(await gatewayMetrics())) gauges[k] = Math.max(gauges[k] ?? 0, v);
        } catch { /* the edge is busy: skip this sample */ }
      }
      await sleep(SAMPLE_MS);
    }
  })();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const t0 = performance.now();
  const pending = [];
  let opened = 0;
  let lastOpenMs = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(STREAMS, Math.floor(((performance.now() - t0) / RAMP_MS) * STREAMS) + 1);
      while (opened < due) pending.push(oneStream(port, headers, opened++, live));
      if (opened < STREAMS) setTimeout(tick, 1);
      else { lastOpenMs = performance.now() - t0; resolve(); }
    };
    tick();
  });
  const results = await Promise.all(pending);
  const wallMs = performance.now() - t0;
  lag.disable();
  sampling = false;
  await sampler;
  const ok = results.filter((r) => r.ok);
  const failures = results.filter((r) => !r.ok);
  const kinds = {};
  for (const f of failures) {
    const k = f.error ? String(f.error).slice(0, 60) : `status ${f.status}${f.done ? '' : ', no [DONE]'}`;
    kinds[k] = (kinds[k] || 0) + 1;
  }
  const ttft = ok.map((r) => r.ttftMs).filter((x) => x !== null).sort((a, b) => a - b);
  const connects = results.map((r) => r.connectMs).filter((x) => x !== null).sort((a, b) => a - b);
  const lastConnect = Math.max(...results.map((r, i) => (r.connectMs ?? 0) + (i * RAMP_MS) / STREAMS));
  const cpu = Object.fromEntries(watch.map((p) => [p.name, procStat(p.pid).cpuS - cpu0[p.name]]));
  const c = process.cpuUsage(client0);
  const tcp1 = tcpCounters();
  const tcp = Object.fromEntries(TCP_COUNTERS.map((n) => [n, tcp1[n] - tcp0[n]]));
  cpu.client = (c.user + c.system) / 1e6;
  return { name, results, ok: ok.length, failures, kinds, ttft, connects, lastOpenMs, lastConnect,
           peakOpen: live.peak, upstreamPeak, wallMs, cpu, peakRss, gauges,
           load: [load0, os.loadavg()[0]], tcp,
           lag: { p50: lag.percentile(50) / 1e6, p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 } };
}

function report(r) {
  const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
  console.log(`\n== ${r.name}: ${STREAMS} streams`);
  console.log(`  success (200 + [DONE]): ${r.ok}/${STREAMS} (${((100 * r.ok) / STREAMS).toFixed(2)}%)`);
  for (const [k, n] of Object.entries(r.kinds)) console.log(`  failed: ${n} x ${k}`);
  for (const x of r.failures.slice(0, FAILURES_SHOWN)) {
    console.log(`    e.g. status ${x.status} done ${x.done} error ${x.error} ` +
                `after ${f(x.endMs)} ms ${x.bodyHead.replace(/\s+/g, ' ').slice(0, 160)}`);
  }
  console.log(`  ramp: ${STREAMS} opens over ${f(r.lastOpenMs)} ms, last connect at ${f(r.lastConnect)} ms; ` +
              `connect p50/p99/max ${f(pct(r.connects, 50))}/${f(pct(r.connects, 99))}/` +
              `${f(r.connects[r.connects.length - 1])} ms`);
  console.log(`  peak streams open at once: ${r.peakOpen}; peak upstream in flight (mock): ` +
              `${r.upstreamPeak}; phase took ${f(r.wallMs)} ms`);
  if (Object.keys(r.gauges).length) {
    console.log(`  gateway gauges, peak of samples: ${Object.entries(r.gauges).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  console.log(`  TTFT p50/p95/p99/max: ${f(pct(r.ttft, 50))}/${f(pct(r.ttft, 95))}/` +
              `${f(pct(r.ttft, 99))}/${f(r.ttft[r.ttft.length - 1])} ms (${r.ttft.length} streams)`);
  console.log(`  client event-loop delay p50/p99/max: ${r.lag.p50.toFixed(1)}/${r.lag.p99.toFixed(1)}/` +
              `${r.lag.max.toFixed(1)} ms`);
  console.log(`  kernel TCP counters in this phase: ${Object.entries(r.tcp).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  machine load average (1 min) before/after: ${r.load.map((x) => x.toFixed(1)).join('/')}`);
  console.log(`  CPU s in this phase: ${Object.entries(r.cpu).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  console.log(`  peak RSS sampled (MiB): ${Object.entries(r.peakRss).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)}`).join(', ')}`);
}

// ---------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`no aigw binary at ${BIN}: build it or set AIGW_BIN`);
  const limit = fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)[1];
  console.log(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
              `Linux ${os.release()}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ` +
              `open files ${limit}`);
  console.log(`load: ${STREAMS} streams, ramp ${RAMP_MS} ms, upstream latency ${LATENCY_MS} ms, ` +
              `${CHUNKS} chunks ${CHUNK_DELAY_MS} ms apart, mock threads ${MOCK_THREADS}; logs ${TMP}`);

  const mockKey = `sk-upstream-${nonce()}`;
  const masterKey = `sk-master-${nonce()}`;
  const mockPort = await freePort();
  const mock = start('mock', ['mock-provider', '--port', String(mockPort), '--latency-ms',
                              String(LATENCY_MS), '--threads', String(MOCK_THREADS)],
                     { AIGW_MOCK_API_KEY: mockKey });
  const mockUrl = `http://127.0.0.1:${mockPort}`;
  const mockAuth = { authorization: `Bearer ${mockKey}` };
  await waitFor(`${mockUrl}/v1/models`, mockAuth);
  const mockStats = async () => {
    const r = await fetch(`${mockUrl}/mock/stats`, { headers: mockAuth, signal: AbortSignal.timeout(SAMPLE_MS * 4) });
    return r.json();
  };

  const port = await freePort();
  const broker = `tcp://127.0.0.1:${await freePort()}`;
  const env = { OPENAI_BASE_URL: `${mockUrl}/v1`, OPENAI_API_KEY: mockKey,
                AIGW_MASTER_KEY: masterKey, AIGW_LOG_LEVEL: 'info' };
  const gw = [start('broker', ['broker', '--bind', broker, '--config', CONFIG], env),
              start('edge', ['edge', '--broker', broker, '--port', String(port), '--config', CONFIG], env)];
  for (const actor of ['auth', 'ratelimit', 'guardrail', 'cache', 'provider']) {
    gw.push(start(actor, ['actor', actor, '--broker', broker, '--config', CONFIG], env));
  }
  const t = performance.now();
  await waitFor(`http://127.0.0.1:${port}/readyz`);
  console.log(`gateway ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const provider = gw.find((p) => p.name === 'provider');
  const edge = gw.find((p) => p.name === 'edge');

  // Warm-up: a few streams through the gateway, the same shape.
  const warm = await Promise.all([0, 1, 2, 3].map((i) =>
    oneStream(port, `Authorization: Bearer ${masterKey}\r\n`, -1 - i, { open: 0, peak: 0 })));
  if (!warm.every((w) => w.ok)) {
    throw new Error(`warm-up failed: ${JSON.stringify(warm.map(({ status, done, error, bodyHead }) =>
      ({ status, done, error, bodyHead })))}`);
  }

  const watch = [mock, ...gw];
  const direct = await phase('direct (client -> mock)', mockPort, `Authorization: Bearer ${mockKey}\r\n`,
                             watch, mockStats);
  report(direct);
  await sleep(SETTLE_MS);
  // The gateway's own gauges: requests queued at and held by the provider
  // stage (broker), and in flight per deployment (the provider's report).
  let lastUpstreamTtft = '-';
  const gatewayMetrics = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${masterKey}` }, signal: AbortSignal.timeout(SAMPLE_MS * 4) });
    const text = await r.text();
    const out = {};
    for (const m of text.matchAll(/^aigw_(stage_queued|stage_in_flight)\{stage="provider"\} (\d+)/gm)) {
      out[`provider ${m[1].replace('stage_', '')}`] = Number(m[2]);
    }
    for (const m of text.matchAll(/^aigw_deployment_in_flight\{[^}]*\} (\d+)/gm)) out['deployment in_flight'] = Number(m[1]);
    const q = [...text.matchAll(/^aigw_deployment_ttft_seconds\{.*quantile="([0-9.]+)"\} ([0-9.e+-]+)/gm)];
    if (q.length) lastUpstreamTtft = q.map((x) => `p${Math.round(Number(x[1]) * 100)} ${Math.round(Number(x[2]) * 1000)}`).join(', ');
    return out;
  };
  // Cold: the provider opens its 10,000 upstream connections during the
  // phase. Warm: the same load again, with the connections curl kept alive.
  const cold = await phase('gateway, cold upstream pool (client -> edge -> broker -> 5 actors -> mock)',
                           port, `Authorization: Bearer ${masterKey}\r\n`, watch, mockStats,
                           gatewayMetrics);
  report(cold);
  console.log(`  provider's upstream TTFT, last sample of /metrics: ${lastUpstreamTtft}`);
  await sleep(SETTLE_MS);
  lastUpstreamTtft = '-';
  // STREAMS_STACKS=1: stacks of the provider (gdb) during the warm phase, to
  // TMP/provider-stacks-N.txt; a diagnostic, it pauses the process.
  if (process.env.STREAMS_STACKS) {
    for (const [i, at] of [2000, 5000, 9000, 14000].entries()) {
      setTimeout(() => {
        const out = fs.openSync(path.join(TMP, `provider-stacks-${i}.txt`), 'w');
        spawn('gdb', ['-p', String(provider.pid), '-batch', '-ex', 'thread apply all bt'],
              { stdio: ['ignore', out, out] });
      }, at);
    }
  }
  const through = await phase('gateway, warm upstream pool', port,
                              `Authorization: Bearer ${masterKey}\r\n`, watch, mockStats,
                              gatewayMetrics);
  report(through);
  console.log(`  provider's upstream TTFT, last sample of /metrics: ${lastUpstreamTtft}`);

  const died = procs.filter((p) => p.exited);
  for (const p of died) console.log(`\n!! ${p.name} exited (${p.how}):\n${tail(p)}`);
  for (const p of gw) {
    const warnings = tail(p, 400).split('\n').filter((l) => /warn|error|dead|expired|silent/i.test(l));
    if (warnings.length) {
      console.log(`\n${p.name} log: ${warnings.length} warnings/errors, last: ${warnings.slice(-3).join(' | ')}`);
    }
  }

  console.log('\n== peak RSS over the whole run (VmHWM), threads now');
  for (const p of watch) {
    const s = procStat(p.pid);
    console.log(`  ${p.name.padEnd(10)} ${String(Math.round(s.hwmKiB / 1024)).padStart(6)} MiB  ` +
                `${String(s.threads).padStart(6)} threads`);
  }
  const row = (label, p) => {
    const d = pct(direct.ttft, p), c = pct(cold.ttft, p), g = pct(through.ttft, p);
    console.log(`  ${label.padEnd(6)} ${d.toFixed(0).padStart(8)} ${c.toFixed(0).padStart(8)} ` +
                `${(c - d).toFixed(0).padStart(8)} ${g.toFixed(0).padStart(8)} ${(g - d).toFixed(0).padStart(8)}`);
  };
  console.log('\n== time to first token (ms), same run\n' +
              '  pct      direct     cold    added     warm    added');
  row('p50', 50); row('p95', 95); row('p99', 99);
  console.log(`\nsummary: success direct ${direct.ok}/${STREAMS}, gateway cold ${cold.ok}/${STREAMS}, ` +
              `warm ${through.ok}/${STREAMS}; ` +
              `provider VmHWM ${Math.round(procStat(provider.pid).hwmKiB / 1024)} MiB, ` +
              `edge VmHWM ${Math.round(procStat(edge.pid).hwmKiB / 1024)} MiB`);
  if (died.length || cold.ok < STREAMS || through.ok < STREAMS) process.exitCode = 1;
}

main().then(() => { stopAll(); if (!process.exitCode) fs.rmSync(TMP, { recursive: true, force: true }); },
  (err) => { console.error(`streams: ${err.stack || err}`); console.error(`logs: ${TMP}`);
             for (const p of procs) console.error(`--- ${p.name}\n${tail(p)}`);
             stopAll(); process.exit(1); });
