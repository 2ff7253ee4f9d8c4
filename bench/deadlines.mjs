// Figures that the integration suites check only as behaviour (it happens,
// before a generous deadline), printed here instead of asserted there:
//  1. cancel: from a client leaving (before the first byte, and mid-stream)
//     until the upstream's connection closes (tests: cancel.test.mjs);
//  2. admin API without its database: time to the 503 database_unavailable
//     (tests: admin_api.test.mjs; the default connect timeout is 3 s).
// Revocation propagation across auth processes is in bench/auth_db.mjs.
// Usage: node bench/deadlines.mjs [rounds]   (AIGW_BIN: the build to measure)
import {
  freePort, nonce, request, sleep, spawnProcess, startGateway, startMock, stopAll, waitFor,
  writeConfig,
} from '../tests/integration/lib.mjs';

const rounds = Number(process.argv[2] || 10);
const POLL_MS = 5;
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const show = (label, xs) => console.log(`${label}: p50 ${pct(xs, 0.5).toFixed(0)} ms, ` +
                                        `max ${Math.max(...xs).toFixed(0)} ms (${xs.length} rounds)`);

// Milliseconds from aborting a chat request to the mock having nothing in flight.
async function cancelMs(gw, content, { stream, first }) {
  const ac = new AbortController();
  const res = fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content }] }),
    signal: ac.signal,
  });
  if (first) await (await res).body.getReader().read();
  else await sleep(400);
  const t0 = performance.now();
  ac.abort();
  await res.then(() => {}, () => {});
  while ((await gw.mock.stats()).in_flight !== 0) {
    if (performance.now() - t0 > 60000) throw new Error('the upstream call never closed');
    await sleep(POLL_MS);
  }
  return performance.now() - t0;
}

try {
  for (const mode of ['run', 'split']) {
    const gw = await startGateway({ mode, name: `bench-cancel-${mode}`,
                                    config: { router: { first_token_timeout_ms: 60000 } } });
    const before = [], mid = [];
    for (let i = 0; i < rounds; i++) {
      before.push(await cancelMs(gw, `wait ${nonce()} mock:hang`, { stream: false }));
      mid.push(await cancelMs(gw, `talk ${nonce()} mock:chunks=40 mock:chunk_delay=250`,
                              { stream: true, first: true }));
    }
    show(`cancel before the first byte (${mode})`, before);
    show(`cancel mid-stream (${mode})`, mid);
    await gw.stop();
  }

  // Nothing listens on the database's port; the gateway is live, not ready.
  const mock = await startMock({ name: 'bench-admin-mock' });
  const port = await freePort();
  const masterKey = `sk-master-${nonce(16)}`;
  const config = writeConfig('bench-admin.yaml', { server: { host: '127.0.0.1', port, threads: 64 } });
  const proc = spawnProcess('bench-admin', ['run', '--config', config], {
    env: { AIGW_PORT: String(port), AIGW_MASTER_KEY: masterKey,
           DATABASE_URL: `postgresql://postgres@127.0.0.1:${await freePort()}/none`,
           OPENAI_BASE_URL: mock.baseURL, OPENAI_API_KEY: mock.apiKey },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`, 200, 20000, { procs: [proc] });
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const res = await request(url, '/api/v1/admin/tenants', { key: masterKey, timeoutMs: 130000 });
    if (res.status !== 503) throw new Error(`admin API without a database answered ${res.status}`);
    times.push(res.ms);
  }
  show('admin API 503 without its database', times);
  await proc.stop();
  await mock.stop();
} finally {
  await stopAll();
}
