// Rate limits that are exact across every instance (issue 11,
// schemas/limits.md): 3 edges and 2 rate-limit processes in front of one
// rpm limit let exactly that many through; an owner killed after a
// snapshot hands its counts to the next owner. The suites of the limits
// that need auth's `lm` (tpm settle, budgets, concurrency, ceilings) are
// todo until the control plane and the edge's settle are merged.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  startGateway, startMock, nonce, freePort, waitFor, spawnProcess, intHeader, it,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const RPM = 100;
const REQUESTS = 1000;
const EDGES = 3;
const CONNECTIONS = 10;  // per edge

// Start one more edge of GW on a free port (as startGateway starts its own).
async function startEdge(gw, i) {
  const port = await freePort();
  const proc = gw.spawn(`edge${i}`, ['edge', '--broker', gw.brokerEndpoint, '--port', String(port),
                                     '--config', gw.configFile]);
  gw.procs.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, 200, 20000, { procs: [proc] });
  return url;
}

// POST a chat to URL through AGENT; resolves { status, headers, json }.
function post(url, agent, key, content) {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/chat/completions`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`,
                 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, json, text });
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

// A header as an integer (node:http's lower-case names).
const num = (res, name) => Number.parseInt(res.headers[name], 10);

// Wait until the wall clock is early in a minute: rpm windows are whole
// minutes (limits.md 1), and a burst that crosses one lets the next
// minute's share through, so "exactly RPM" holds within one window.
async function earlyInMinute(latest = 20) {
  const s = new Date().getUTCSeconds();
  if (s >= 1 && s <= latest) return;
  const wait = ((60 - s + 1) % 60) * 1000;
  await new Promise((r) => setTimeout(r, wait));
}

describe('rate limits exact across 3 edges and 2 rate-limit processes', () => {
  let gw, mock, edges, agents;
  before(async () => {
    mock = await startMock({ name: 'limits-mock' });
    gw = await startGateway({
      mode: 'split', name: 'limits-exact', mock, actors: { ratelimit: 2 },
      config: {
        cache: { enabled: false },
        ratelimit: { default_rpm: 600, master_rpm: 100000 },
        auth: { keys: [{ name: 'limited', tenant: 'acme', role: 'developer', rpm: RPM }] },
      },
    });
    edges = [gw.url];
    for (let i = 1; i < EDGES; i++) edges.push(await startEdge(gw, i));
    agents = edges.map(() => new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS }));
  }, { timeout: 90000 });
  after(async () => {
    for (const a of agents || []) a.destroy();
    if (gw) await gw.stop();
    if (mock) await mock.stop();
  });

  it(`lets exactly ${RPM} of ${REQUESTS} concurrent requests through; the rest are 429 with the headers`,
     { timeout: 180000 }, async () => {
    const key = gw.key('limited');
    await earlyInMinute();
    const all = await Promise.all(Array.from({ length: REQUESTS }, (_, i) =>
      post(edges[i % EDGES], agents[i % EDGES], key, `burst ${i} ${nonce()}`)));
    const ok = all.filter((r) => r.status === 200);
    const limited = all.filter((r) => r.status === 429);
    assert.equal(ok.length, RPM, `answered 200: ${ok.length}; statuses: ${
      [...new Set(all.map((r) => r.status))].join(',')}`);
    assert.equal(limited.length, REQUESTS - RPM);
    // Every edge served some of the 200s: the owner is one, the edges many.
    for (const url of edges) {
      const port = new URL(url).port;
      assert.ok(all.some((r, i) => r.status === 200 && new URL(edges[i % EDGES]).port === port),
                `no 200 through ${url}`);
    }
    const remaining = ok.map((r) => num(r, 'x-ratelimit-remaining')).sort((a, b) => a - b);
    assert.deepEqual(remaining, Array.from({ length: RPM }, (_, i) => i),
                     'each admitted request saw its own remaining count');
    for (const r of ok) assert.equal(num(r, 'x-ratelimit-limit'), RPM);
    for (const r of limited) {
      assert.equal(r.json?.error?.type, 'rate_limit_error', r.text);
      assert.equal(r.json.error.code, 'rpm');
      assert.equal(r.json.error.param, 'key');
      assert.ok(num(r, 'retry-after') >= 1 && num(r, 'retry-after') <= 60,
                `Retry-After ${r.headers['retry-after']}`);
      assert.equal(num(r, 'x-ratelimit-limit'), RPM);
      assert.equal(num(r, 'x-ratelimit-remaining'), 0);
      assert.ok(num(r, 'x-ratelimit-reset') > Date.now() / 1000 - 1);
    }
  });
});

describe('an owner killed after a snapshot: the next owner keeps the counts', () => {
  const TENANTS = 12;
  const FIRST = 30;
  let gw, mock, db;
  before(async () => {
    db = await freshDatabase('aigw_limits');
    migrate(db.url);
    mock = await startMock({ name: 'limits-kill-mock' });
    gw = await startGateway({
      mode: 'split', name: 'limits-kill', mock, actors: { ratelimit: 2 }, env: { DATABASE_URL: db.url },
      config: {
        cache: { enabled: false },
        ratelimit: { default_rpm: 600, master_rpm: 100000, snapshot_ms: 200 },
        auth: {
          keys: Array.from({ length: TENANTS }, (_, i) =>
            ({ name: `k${i}`, tenant: `tenant-${i}`, role: 'developer', rpm: RPM })),
        },
      },
    });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
    if (db) db.destroy();
  });

  it('counts survive the move within snapshot_ms (none lost after a quiet snapshot)',
     { timeout: 180000 }, async () => {
    await earlyInMinute(15);
    // Every tenant spends FIRST of its RPM; each tenant is a shard, so both
    // rate-limit processes own some.
    for (let i = 0; i < TENANTS; i++) {
      const res = await Promise.all(Array.from({ length: FIRST }, (_, j) =>
        gw.chat(`first ${i} ${j} ${nonce()}`, { key: gw.key(`k${i}`) })));
      assert.deepEqual(res.map((r) => r.status), Array(FIRST).fill(200));
    }
    // The owners wrote them: one row per tenant's rpm counter.
    await new Promise((r) => setTimeout(r, 1000));
    const rows = db.sql(`SELECT tenant_id, current FROM ratelimit_state ORDER BY tenant_id`)
      .trim().split('\n').filter(Boolean).map((l) => l.split('|'));
    assert.equal(rows.length, TENANTS, `rows: ${JSON.stringify(rows)}`);
    for (const [, current] of rows) assert.equal(Number(current), FIRST);

    // Kill one of the two: its shards move to the other.
    const [victim] = gw.actorProcs('ratelimit');
    victim.kill('SIGKILL');
    await victim.done;
    await gw.waitReady();

    // Each tenant now has exactly RPM - FIRST left, wherever its owner is.
    for (let i = 0; i < TENANTS; i++) {
      const res = [];
      for (let j = 0; j < RPM - FIRST + 5; j++) {
        res.push(await gw.chat(`second ${i} ${j} ${nonce()}`, { key: gw.key(`k${i}`) }));
      }
      const statuses = res.map((r) => r.status);
      const ok = statuses.filter((s) => s === 200).length;
      assert.equal(ok, RPM - FIRST, `tenant ${i}: ${statuses.join(',')}`);
      assert.deepEqual(statuses.slice(RPM - FIRST), Array(5).fill(429));
      assert.equal(intHeader(res.at(-1), 'x-ratelimit-remaining'), 0);
    }
  });
});

describe('limits that need auth\'s lm and the edge\'s settle (issue 11, after the merge)', () => {
  test.todo('a TPM limit with streamed requests cut short: the unused reservation comes back '
            + '(x-ratelimit-remaining-tokens rises after the settle; the next request that fits '
            + 'only with it returned is 200)');
  test.todo('a budget of $0.05 against concurrent requests priced so that 20 fit: total spend '
            + 'in usage_records <= $0.05 and at least 19 answered 200, the rest 429 code budget');
  test.todo('a concurrency cap of 3 with 10 slow requests: exactly 3 in flight at the mock, '
            + 'the other 7 answered 429 code concurrency with Retry-After');
  test.todo('tenant ceilings over the admin API: a tenant-admin raising a key above its tenant '
            + 'gets 403 limit_above_tenant naming the field');
  test.todo('GET /api/v1/admin/rate-limits: the owner\'s figures (limit, used, remaining, reset) '
            + 'per level, the same through every edge');
});
