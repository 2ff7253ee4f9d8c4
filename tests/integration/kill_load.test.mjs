// What clients see when a stage process is killed (SIGKILL) under load, in
// the split deployment (one process per actor) and the colocated one (several
// actors per process).
//
// 64 client loops (Node fetch, keep-alive) send chat completions with unique
// prompts (cache misses), one loop in eight streaming, for a bounded time;
// while they run one stage process is killed. Every request must be answered:
// 200 with the right body, or 503 in the SPEC's error shape with the request's
// X-Request-ID, quickly (a 503 comes back within ERROR_MS_MAX of being sent).
// A stream cut by the kill must end with an SSE error event, never hang or
// stop silently. Nothing may time out on the client (CLIENT_TIMEOUT_MS), 429
// never comes (the limits are set out of reach), and once the killed process
// is back a run of requests all answer 200.
//
// The measured figures (503 latency, when the 503s stopped, recovery time)
// are printed as test diagnostics.
import { performance } from 'node:perf_hooks';
import {
  MODES, assert, describe, eventually, it, nonce, readSSE, sleep, useGateway, useMock,
} from './lib.mjs';

const LOOPS = 64;                 // concurrent client loops
const STREAM_EVERY = 8;           // every 8th loop streams
const STREAM_CHUNKS = 8;          // chunks per streamed answer in the load
const STREAM_CHUNK_DELAY_MS = 40; // so a streamed answer lasts about 350 ms
const MAX_PER_LOOP = 400;         // bound on requests per loop and run
const CLIENT_TIMEOUT_MS = 10000;  // any request slower than this fails the test
const ERROR_BACKOFF_MS = 50;      // a loop's pause after an error (clients back off)
const ERROR_MS_MAX = 1000;        // a 503 must come back within this of being sent
// With a live second instance, the 503s of a kill must stop within this of
// it: a dead TCP peer is noticed at the broker's next heartbeat (250 ms), the
// protocol's worst case is heartbeat x liveness (2 s; the requirement is 3 s).
const ERRORS_STOP_MS = 3000;
const RECOVERY_MS = 10000;        // after a restart, all 200 again within this
const RATE_OUT_OF_REACH = 100000000;
// Requests a window must hold to show traffic flowed (not a throughput
// figure: bench/ measures those; a loaded 2-core machine serves few).
const SOME_TRAFFIC = LOOPS / 8;

const ACCEPTED = new Set(['ok', 'ok-stream', 'error-503', 'stream-error']);

// ---------------------------------------------------------------------------
// One request of the load, classified by what the client saw:
//   ok            200, the mock's answer to exactly this prompt
//   ok-stream     200, SSE with every chunk, [DONE]
//   error-503     503, the SPEC's error shape, request_id = our X-Request-ID
//   stream-error  200 SSE that ended with one error event (SPEC shape), no [DONE]
//   timeout       no (complete) answer within CLIENT_TIMEOUT_MS
//   fetch-error   the connection failed
//   bad           anything else (detail says what)
async function oneRequest(gw, loop, seq, stream) {
  const rid = `kl-${loop}-${seq}-${nonce(4)}`;
  const word = `w${nonce(6)}`;
  const content = stream
    ? `${word} stream mock:chunks=${STREAM_CHUNKS} mock:chunk_delay=${STREAM_CHUNK_DELAY_MS}`
    : `${word} load ${loop}/${seq}`;
  const rec = { loop, seq, rid, stream, sentAt: performance.now(), doneAt: 0, ms: 0,
                status: 0, outcome: 'bad', detail: '' };
  const where = () => `${rec.stream ? 'stream' : 'chat'} ${rid}: status ${rec.status}`;
  try {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}`,
                 'x-request-id': rid },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream,
                             messages: [{ role: 'user', content }] }),
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    rec.status = res.status;
    const ctype = res.headers.get('content-type') || '';
    const hrid = res.headers.get('x-request-id');
    if (stream && res.status === 200 && ctype.includes('text/event-stream')) {
      const s = await readSSE(res);
      const last = s.events[s.events.length - 1];
      const text = s.contents.map((c) => c.text).join('');
      if (s.error) {
        rec.outcome = s.error.name === 'TimeoutError' ? 'timeout' : 'fetch-error';
        rec.detail = `${where()} stream broke after ${s.contents.length} chunks: ` +
                     `${s.error.name} ${s.error.message} ${s.error.cause?.code ?? ''}`;
      } else if (hrid !== rid) {
        rec.detail = `${where()} X-Request-ID ${hrid}`;
      } else if (s.done) {
        if (s.contents.length === STREAM_CHUNKS && text.includes(word) &&
            s.events.every((e) => e.data === '[DONE]' || !e.json?.error)) {
          rec.outcome = 'ok-stream';
        } else {
          rec.detail = `${where()} [DONE] after ${s.contents.length} chunks ` +
                       `(asked ${STREAM_CHUNKS}): ${JSON.stringify(text.slice(0, 300))}`;
        }
      } else if (last?.json?.error) {
        const e = last.json.error;
        if (typeof e.message === 'string' && e.message && typeof e.type === 'string' &&
            'param' in e && e.request_id === rid) {
          rec.outcome = 'stream-error';
          rec.detail = `${e.type}/${e.code}: ${e.message}`;
        } else {
          rec.detail = `${where()} error event not in the SPEC's shape: ${last.data}`;
        }
      } else {
        rec.detail = `${where()} stream ended after ${s.contents.length} chunks with ` +
                     `neither [DONE] nor an error event (last: ${last?.data})`;
      }
    } else {
      const text = await res.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      const body = text.slice(0, 300);
      if (hrid !== rid) {
        rec.detail = `${where()} X-Request-ID ${hrid}: ${body}`;
      } else if (res.status === 200 && !stream) {
        const answer = json?.choices?.[0]?.message?.content;
        if (answer === `Mock reply to: ${content}`) rec.outcome = 'ok';
        else rec.detail = `${where()} answer is not for this prompt: ${body}`;
      } else if (res.status === 503) {
        const e = json?.error;
        if (ctype.includes('application/json') && e && typeof e.message === 'string' &&
            e.message && e.type === 'service_unavailable' && 'param' in e &&
            e.request_id === rid) {
          rec.outcome = 'error-503';
          rec.detail = `${e.type}/${e.code}: ${e.message}`;
        } else {
          rec.detail = `${where()} 503 not in the SPEC's shape (${ctype}): ${body}`;
        }
      } else {
        rec.detail = `${where()}: ${body}`;
      }
    }
  } catch (err) {
    rec.outcome = err.name === 'TimeoutError' ? 'timeout' : 'fetch-error';
    rec.detail = `${where()}: ${err.name} ${err.message} ${err.cause?.code ?? ''}`;
  }
  rec.doneAt = performance.now();
  rec.ms = rec.doneAt - rec.sentAt;
  return rec;
}

// Run the load for DURATION_MS; ACTIONS ([{ name, at (ms from the start),
// run (async) }]) run in order at their times. Returns { t0, records, marks }:
// marks[name] is when an action started, marks[name + 'Done'] when it ended
// (performance.now() times).
async function runLoad(gw, { durationMs, actions = [] }) {
  const t0 = performance.now();
  const end = t0 + durationMs;
  const records = [];
  const marks = {};
  const loops = Array.from({ length: LOOPS }, async (_, loop) => {
    const stream = loop % STREAM_EVERY === STREAM_EVERY - 1;
    for (let seq = 0; seq < MAX_PER_LOOP && performance.now() < end; seq++) {
      const rec = await oneRequest(gw, loop, seq, stream);
      records.push(rec);
      if (rec.outcome !== 'ok' && rec.outcome !== 'ok-stream') await sleep(ERROR_BACKOFF_MS);
    }
  });
  let actionError = null;
  const script = (async () => {
    for (const a of actions) {
      const wait = t0 + a.at - performance.now();
      if (wait > 0) await sleep(wait);
      marks[a.name] = performance.now();
      await a.run();
      marks[`${a.name}Done`] = performance.now();
    }
  })().catch((err) => { actionError = err; });
  await Promise.all([...loops, script]);
  if (actionError) throw actionError;
  return { t0, records, marks };
}

const pct = (sorted, p) => (sorted.length
  ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');

// Counts per outcome, and the figures of the errors (503s and cut streams)
// relative to KILL_AT.
function summarize(run, killAt) {
  const counts = {};
  for (const r of run.records) counts[r.outcome] = (counts[r.outcome] || 0) + 1;
  const errors = run.records.filter((r) => r.outcome === 'error-503');
  const cut = run.records.filter((r) => r.outcome === 'stream-error');
  const errMs = errors.map((r) => r.ms).sort((a, b) => a - b);
  const allErr = [...errors, ...cut];
  const lastErrorAt = allErr.length ? Math.max(...allErr.map((r) => r.doneAt)) : null;
  return {
    counts,
    errors,
    cut,
    errMsP50: pct(errMs, 0.5),
    errMsMax: errMs.length ? errMs[errMs.length - 1] : NaN,
    // from the kill signal to the last error answer
    errorsStopMs: lastErrorAt === null ? 0 : lastErrorAt - killAt,
    inFlightAtKill: run.records.filter((r) => r.sentAt <= killAt && r.doneAt >= killAt).length,
  };
}

// What every run must show: each request answered as accepted, 503s quickly.
function assertAnswered(run, label) {
  const bad = run.records.filter((r) => !ACCEPTED.has(r.outcome));
  const byOutcome = {};
  for (const r of bad) (byOutcome[r.outcome] ||= []).push(r);
  assert.equal(bad.length, 0, `${label}: ${bad.length} of ${run.records.length} requests ` +
    `not answered 200 or 503: ${Object.entries(byOutcome).map(([k, v]) =>
      `${v.length} ${k}, e.g. ${v.slice(0, 3).map((r) =>
        `[${r.detail} after ${f0(r.ms)} ms, sent at +${f0(r.sentAt - run.t0)} ms]`).join(' ')}`)
      .join('; ')}`);
  const slow = run.records.filter((r) => r.outcome === 'error-503' && r.ms > ERROR_MS_MAX);
  assert.equal(slow.length, 0, `${label}: ${slow.length} 503s took over ${ERROR_MS_MAX} ms, ` +
    `e.g. ${slow.slice(0, 3).map((r) => `${r.rid} ${f0(r.ms)} ms (sent at ` +
      `+${f0(r.sentAt - run.t0)} ms)`).join(', ')}`);
}

// After a restart: a run of 16 concurrent requests (4 of them streams) must
// all answer 200, within RECOVERY_MS. Returns the ms it took.
async function assertRecovers(gw, label) {
  const start = performance.now();
  let last = [];
  const ok = await eventually(async () => {
    last = await Promise.all(Array.from({ length: 16 }, (_, i) =>
      oneRequest(gw, 1000 + i, 0, i % 4 === 3)));
    return last.every((r) => r.outcome === 'ok' || r.outcome === 'ok-stream');
  }, RECOVERY_MS, 100);
  const ms = performance.now() - start;
  assert.ok(ok, `${label}: requests still fail ${RECOVERY_MS} ms after the restart: ` +
    last.filter((r) => r.outcome !== 'ok' && r.outcome !== 'ok-stream').slice(0, 3)
      .map((r) => `${r.outcome} ${r.detail}`).join('; '));
  return ms;
}

// Wait until the broker counts COUNT live workers of every stage in STAGES
// (GET /metrics, aigw_stage_workers).
async function waitWorkers(gw, stages, count, timeoutMs = 10000) {
  let text = '';
  const ok = await eventually(async () => {
    const r = await gw.fetch('/metrics', { timeoutMs: 3000 }).catch(() => null);
    text = r?.text || '';
    return stages.every((s) => {
      const m = text.match(new RegExp(`^aigw_stage_workers\\{stage="${s}"\\} (\\d+)`, 'm'));
      return m && Number(m[1]) >= count;
    });
  }, timeoutMs, 100);
  assert.ok(ok, `the broker does not count ${count} workers of ${stages.join(', ')}: ` +
    text.split('\n').filter((l) => l.startsWith('aigw_stage_workers')).join(' | '));
}

// Start processes of PROC until COUNT run, and wait for the broker to count
// them. Used in finally blocks: after a failed assertion the next test still
// finds the gateway whole (ERR, the pending failure, wins over a new one).
async function restore(gw, proc, stages, count, err = null) {
  while (gw.actorProcs(proc).length < count) gw.startActor(proc);
  try {
    await waitWorkers(gw, stages, count);
  } catch (e) {
    if (!err) throw e;
  }
}

// The mock's count of chat requests (streamed or not).
async function upstreamChats(gw) {
  return (await gw.mock.stats()).chat;
}

// Each client request reaches the upstream at most once: a request that had
// already reached the provider must not be run again (the provider is not
// replay-safe: the upstream call may have cost money).
function assertUpstreamOnce(run, upstream, label) {
  assert.ok(upstream <= run.records.length,
    `${label}: the upstream got ${upstream} chat requests for ${run.records.length} client ` +
    `requests: ${upstream - run.records.length} (at least) were sent upstream twice`);
}

// ---------------------------------------------------------------------------
// The scenarios

const CONFIG = {
  ratelimit: { default_rpm: RATE_OUT_OF_REACH, master_rpm: RATE_OUT_OF_REACH },
};

// Kill one of the two processes of PROC (an actor name, or a colocated list)
// under load; traffic goes on through the other. Then restart it.
async function killOneOfTwo(t, gw, proc, stages, { replaySafe }) {
  assert.equal(gw.actorProcs(proc).length, 2, `two ${proc} processes before the kill`);
  const [victim] = gw.actorProcs(proc);
  const chats0 = await upstreamChats(gw);
  let run = null;
  let upstream = 0;
  let failure = null;
  try {
    run = await runLoad(gw, {
      durationMs: 3000,
      actions: [{ name: 'kill', at: 700,
                  run: async () => { victim.kill('SIGKILL'); await victim.done; } }],
    });
    upstream = (await upstreamChats(gw)) - chats0;
    const s = summarize(run, run.marks.kill);
    t.diagnostic(`${proc} (1 of 2) killed at +${f0(run.marks.kill - run.t0)} ms: ` +
      `${run.records.length} requests ${JSON.stringify(s.counts)}, upstream chats ${upstream}, ` +
      `${s.inFlightAtKill} in flight at the kill; 503 ms p50 ${f0(s.errMsP50)} max ` +
      `${f0(s.errMsMax)}; errors stopped ${f0(s.errorsStopMs)} ms after the kill` +
      (s.cut.length ? `; cut streams: ${s.cut[0].detail}` : ''));
    assert.equal(victim.signal, 'SIGKILL', `${proc} died of ${victim.exitDescription()}`);
    assertAnswered(run, `${proc} killed`);
    assertUpstreamOnce(run, upstream, `${proc} killed`);
    assert.ok(s.inFlightAtKill >= LOOPS / 2,
              `only ${s.inFlightAtKill} requests in flight at the kill: no load`);
    assert.ok(s.errorsStopMs < ERRORS_STOP_MS,
              `errors went on ${f0(s.errorsStopMs)} ms after the kill, with a second ${proc} alive`);
    // Traffic continued through the survivor: the requests sent from 1.5 s
    // after the kill on all succeeded, and there were some.
    const later = run.records.filter((r) => r.sentAt > run.marks.killDone + 1500);
    const laterBad = later.filter((r) => !r.outcome.startsWith('ok'));
    assert.ok(later.length >= SOME_TRAFFIC, `only ${later.length} requests in the last second`);
    assert.equal(laterBad.length, 0, `requests sent 1.5 s after the kill still failed: ` +
      laterBad.slice(0, 3).map((r) => `${r.outcome} ${r.detail}`).join('; '));
    if (replaySafe) {
      // A replay-safe stage's requests in flight on the dead worker are
      // replayed on the live one: a client sees no error at all.
      assert.equal(s.errors.length + s.cut.length, 0,
        `${proc} is replay-safe and has a live second worker, yet ${s.errors.length} 503s ` +
        `and ${s.cut.length} cut streams, e.g. ${[...s.errors, ...s.cut].slice(0, 3)
          .map((r) => `${r.rid}: ${r.detail}`).join('; ')}`);
    }
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    const startedAt = performance.now();
    await restore(gw, proc, stages, 2, failure);
    if (!failure) {
      const registeredMs = performance.now() - startedAt;
      const recoverMs = await assertRecovers(gw, `${proc} restarted`);
      t.diagnostic(`${proc} restarted: registered after ${f0(registeredMs)} ms, then a run of ` +
                   `200s after ${f0(recoverMs)} ms`);
    }
  }
}

// Kill every process of PROC (so the stage has no live worker) under load:
// requests answer 503 at once, until it is restarted; then traffic recovers.
async function killOnly(t, gw, proc, stages) {
  const count = gw.actorProcs(proc).length;
  assert.ok(count >= 1, `no ${proc} process`);
  const chats0 = await upstreamChats(gw);
  let failure = null;
  try {
    const run = await runLoad(gw, {
      durationMs: 4500,
      actions: [
        { name: 'kill', at: 600, run: () => gw.killActor(proc, 'SIGKILL') },
        { name: 'restart', at: 2000, run: async () => {
          for (let i = 0; i < count; i++) gw.startActor(proc);
        } },
      ],
    });
    const upstream = (await upstreamChats(gw)) - chats0;
    const { kill, killDone, restart } = run.marks;
    const s = summarize(run, kill);
    // While no worker is alive (from 300 ms after the kill to the restart),
    // every request is refused, at once.
    const outage = run.records.filter((r) => r.sentAt > killDone + 300 && r.sentAt < restart);
    const outageMs = outage.filter((r) => r.outcome === 'error-503').map((r) => r.ms)
      .sort((a, b) => a - b);
    const firstOk = run.records.filter((r) => r.sentAt > restart && r.outcome.startsWith('ok'))
      .reduce((m, r) => Math.min(m, r.doneAt), Infinity);
    const lastErr = run.records
      .filter((r) => r.outcome === 'error-503' || r.outcome === 'stream-error')
      .reduce((m, r) => Math.max(m, r.doneAt), -Infinity);
    t.diagnostic(`${proc} (all ${count}) killed at +${f0(kill - run.t0)} ms, restarted at ` +
      `+${f0(restart - run.t0)} ms: ${run.records.length} requests ${JSON.stringify(s.counts)}, ` +
      `upstream chats ${upstream}; ${s.inFlightAtKill} in flight at the kill; during the ` +
      `outage ${outage.length} requests, 503 in p50 ${f0(pct(outageMs, 0.5))} max ` +
      `${f0(outageMs[outageMs.length - 1])} ms; all 503s max ${f0(s.errMsMax)} ms; first 200 ` +
      `${f0(firstOk - restart)} ms after the restart, last error ${f0(lastErr - restart)} ms ` +
      `after it`);
    assertAnswered(run, `${proc} killed`);
    assertUpstreamOnce(run, upstream, `${proc} killed`);
    assert.ok(outage.length >= SOME_TRAFFIC, `only ${outage.length} requests during the outage`);
    const notRefused = outage.filter((r) => r.outcome !== 'error-503');
    assert.equal(notRefused.length, 0, `with no ${proc} alive, requests were not answered 503: ` +
      notRefused.slice(0, 3).map((r) => `${r.outcome} ${r.detail}`).join('; '));
    assert.ok(Number.isFinite(firstOk), `no 200 in the ${f0(run.t0 + 4500 - restart)} ms ` +
              `after the restart`);
    // Once the restarted process has had time to register, all succeed.
    const late = run.records.filter((r) => r.sentAt > restart + 1500);
    const lateBad = late.filter((r) => !r.outcome.startsWith('ok'));
    assert.ok(late.length >= SOME_TRAFFIC, `only ${late.length} requests from 1.5 s after the restart`);
    assert.equal(lateBad.length, 0, `requests sent 1.5 s after the restart still failed: ` +
      lateBad.slice(0, 3).map((r) => `${r.outcome} ${r.detail}`).join('; '));
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await restore(gw, proc, stages, count, failure);
  }
  const recoverMs = await assertRecovers(gw, `${proc} restarted`);
  t.diagnostic(`${proc}: a run of 200s ${f0(recoverMs)} ms after the load ended`);
}

// A few long streams in flight when every PROC process is killed: each ends
// with an error event soon after, none hangs or completes. Then restart.
async function killUnderStreams(t, gw, proc, stages) {
  const count = gw.actorProcs(proc).length;
  const CHUNKS = 40;
  let killedAt = null;
  let killing = null;
  let contentSeen = 0;
  let failure = null;
  try {
    const streams = await Promise.all(Array.from({ length: 4 }, (_, i) => {
      const rid = `kl-long-${i}-${nonce(4)}`;
      return gw.chatStream(`long ${nonce()} mock:chunks=${CHUNKS} mock:chunk_delay=100`, {
        headers: { 'x-request-id': rid },
        timeoutMs: CLIENT_TIMEOUT_MS,
        onEvent: (ev) => {
          // Kill once 8 chunks in all have arrived (about two per stream).
          if (ev.json?.choices?.[0]?.delta?.content && ++contentSeen === 8) {
            killedAt = performance.now();
            killing = gw.killActor(proc, 'SIGKILL');
          }
        },
      }).then((s) => ({ ...s, rid }));
    }));
    await killing;
    assert.ok(killedAt !== null, 'the streams did not start before the kill');
    const ends = streams.map((s) => s.endedAt - killedAt);
    t.diagnostic(`${proc} killed under 4 streams: they ended ${ends.map(f0).join(', ')} ms ` +
      `after the kill, with ${streams.map((s) => s.contents.length).join(', ')} of ${CHUNKS} ` +
      `chunks; last event: ${streams[0].events[streams[0].events.length - 1]?.data}`);
    for (const s of streams) {
      const where = `stream ${s.rid}`;
      assert.equal(s.status, 200, `${where}: ${s.text}`);
      assert.ok(!s.error, `${where} did not end cleanly: ${s.error?.name} ${s.error?.message}`);
      assert.ok(!s.done, `${where} completed although its provider died`);
      assert.ok(s.contents.length < CHUNKS, `${where}: ${s.contents.length} chunks`);
      const last = s.events[s.events.length - 1];
      const e = last?.json?.error;
      assert.ok(e, `${where} ended without an error event (last: ${last?.data})`);
      assert.equal(typeof e.message, 'string', `${where}: ${last.data}`);
      assert.equal(e.type, 'service_unavailable', `${where}: ${last.data}`);
      assert.ok('param' in e, `${where}: ${last.data}`);
      assert.equal(e.request_id, s.rid, `${where}: ${last.data}`);
      assert.ok(s.endedAt - killedAt < 2000,
                `${where} ended ${f0(s.endedAt - killedAt)} ms after the kill`);
    }
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await killing?.catch(() => {});
    await restore(gw, proc, stages, count, failure);
  }
  const recoverMs = await assertRecovers(gw, `${proc} restarted`);
  t.diagnostic(`${proc} restarted: a run of 200s after ${f0(recoverMs)} ms`);
}

// ---------------------------------------------------------------------------

const SPLIT_STAGES = ['auth', 'ratelimit', 'guardrail', 'cache', 'provider'];
const REPLAY_SAFE = new Set(['auth', 'ratelimit', 'guardrail', 'cache']);

describe('split: a stage process killed under load', { skip: !MODES.includes('split') }, () => {
  const mock = useMock({ name: 'split-mock', latencyMs: 20 });
  const gw = useGateway({
    mode: 'split',
    mock,
    config: CONFIG,
    actors: Object.fromEntries(SPLIT_STAGES.map((s) => [s, 2])),
  });

  it('serves the load while nothing is killed', { timeout: 30000 }, async (t) => {
    await waitWorkers(gw, SPLIT_STAGES, 2);
    const run = await runLoad(gw, { durationMs: 1500 });
    const ok = run.records.filter((r) => r.outcome.startsWith('ok'));
    const ms = run.records.map((r) => r.ms).sort((a, b) => a - b);
    t.diagnostic(`baseline: ${run.records.length} requests, latency p50 ${f0(pct(ms, 0.5))} ` +
                 `p99 ${f0(pct(ms, 0.99))} ms`);
    assertAnswered(run, 'baseline');
    assert.equal(ok.length, run.records.length, 'a request failed with nothing killed');
  });

  for (const stage of SPLIT_STAGES) {
    it(`kill -9 one of two ${stage} processes: clients see 200${REPLAY_SAFE.has(stage) ? '' : ' or a quick 503'}, then recovery`,
       { timeout: 30000 }, (t) => killOneOfTwo(t, gw, stage, [stage],
                                              { replaySafe: REPLAY_SAFE.has(stage) }));
  }

  for (const stage of ['auth', 'provider']) {
    it(`kill -9 every ${stage} process: 503 at once, recovery on restart`, { timeout: 30000 },
       (t) => killOnly(t, gw, stage, [stage]));
  }

  it('a stream in flight on a killed provider ends with an error event', { timeout: 30000 },
     (t) => killUnderStreams(t, gw, 'provider', ['provider']));
});

describe('colocated: a multi-actor process killed under load', { skip: !MODES.includes('colocated') }, () => {
  const FRONT = 'auth,ratelimit,guardrail';
  const BACK = 'cache,provider';
  const mock = useMock({ name: 'colo-mock', latencyMs: 20 });
  const gw = useGateway({
    mode: 'colocated',
    mock,
    config: CONFIG,
    actors: { [FRONT]: 2, [BACK]: 2 },
  });

  it(`kill -9 one of two ${FRONT} processes: clients see 200, then recovery`, { timeout: 30000 },
     async (t) => {
       await waitWorkers(gw, SPLIT_STAGES, 2);
       await killOneOfTwo(t, gw, FRONT, FRONT.split(','), { replaySafe: true });
     });

  it(`kill -9 one of two ${BACK} processes: clients see 200 or a quick 503, then recovery`,
     { timeout: 30000 }, (t) => killOneOfTwo(t, gw, BACK, BACK.split(','), { replaySafe: false }));

  for (const proc of [FRONT, BACK]) {
    it(`kill -9 every ${proc} process: 503 at once, recovery on restart`, { timeout: 30000 },
       (t) => killOnly(t, gw, proc, proc.split(',')));
  }

  it(`a stream in flight on a killed ${BACK} process ends with an error event`,
     { timeout: 30000 }, (t) => killUnderStreams(t, gw, BACK, BACK.split(',')));
});
