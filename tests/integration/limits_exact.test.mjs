// Rate limits that are exact across every instance (issue 11,
// schemas/limits.md): 3 edges and 2 rate-limit processes in front of one
// rpm limit let exactly that many through; an owner killed after a
// snapshot hands its counts to the next owner. Then, over 2 edges and 2
// rate-limit processes with PostgreSQL: a tpm reservation given back by the
// settle of a stream cut short, budgets that concurrency cannot overshoot
// (config-file and database models), a concurrency cap at the upstream,
// tenant ceilings, GET rate-limits, budgets rebuilt from the roll-ups by a
// new owner, and past ratelimit_state rows deleted.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  startGateway, startMock, nonce, freePort, waitFor, spawnProcess, intHeader, it, assertError,
  eventually, request, sleep,
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

// Prices that let exactly 20 requests into a $0.05 budget: each reserves
// its prompt's estimate (about 22 tokens) at $1/M plus max_tokens 20 at
// $120/M, about $0.002422 (21 of them: $0.0509), and really costs its 4
// prompt words and 20 completion words (mock:chunks cuts at max_tokens):
// about $0.002404 (limits.md 3).
const PRICE = { price_in: 1, price_out: 120 };
const BUDGET_USD = 0.05;
const FIT = 20;
const budgetBody = () => ({ max_tokens: 20 });
const budgetText = (i) => `budget ${i} ${nonce()} mock:chunks=40`;

// A GET rate-limits figure of KIND at LEVEL ('key', 'tenant') from BODY.
const figure = (body, level, kind) => (body[level]?.limits ?? []).find((l) => l.kind === kind);

describe('limits that need auth\'s lm and the edge\'s settle (2 edges, 2 rate-limit processes, PostgreSQL)', () => {
  let gw, mock, db, edge2;
  const limited = (name, tenant, limits) => ({ name, tenant, role: 'developer', limits });
  before(async () => {
    db = await freshDatabase('aigw_limits_settle');
    migrate(db.url);
    mock = await startMock({ name: 'limits-settle-mock' });
    gw = await startGateway({
      mode: 'split', name: 'limits-settle', mock, actors: { ratelimit: 2 },
      env: { DATABASE_URL: db.url },
      config: {
        cache: { enabled: false },
        ratelimit: { default_rpm: 600, master_rpm: 100000, snapshot_ms: 200,
                     tenants: [{ name: 'lx-report', limits: { rpm: 500 } }] },
        usage: { batch_ms: 50 },
        models: [
          { name: 'gpt-4o-mini', provider: 'openai' },
          { name: 'priced', deployments: [{ id: 'priced-mock', provider: 'openai',
                                            model: 'gpt-4o-mini', ...PRICE }] },
        ],
        auth: {
          keys: [
            limited('tpm', 'lx-tpm', { tpm: 1500 }),
            limited('budget', 'lx-budget', { budget: { usd: BUDGET_USD, period: 'month' } }),
            limited('dbbudget', 'lx-dbbudget', { budget: { usd: BUDGET_USD, period: 'month' } }),
            limited('move', 'lx-move', { budget: { usd: BUDGET_USD, period: 'month' } }),
            limited('conc', 'lx-conc', { concurrency: 3 }),
            limited('report', 'lx-report', { rpm: 50, tpm: 100000,
                                             models: { 'gpt-4o-mini': { rpm: 20 } } }),
          ],
        },
      },
    });
    edge2 = await startEdge(gw, 1);
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
    if (db) db.destroy();
  });

  const rateLimits = async (url, key) => {
    const res = await request(url, '/api/v1/admin/rate-limits', { key });
    assert.equal(res.status, 200, res.text);
    return res.json;
  };
  // One number from SQL.
  const sqlNumber = (text) => Number(db.sql(text).trim() || 0);

  // A stream of KEY that stays open until ABORT resolves or the mock ends it.
  async function openStream(key, content, maxTokens) {
    const controller = new AbortController();
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', signal: controller.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, max_tokens: maxTokens,
                             messages: [{ role: 'user', content }] }),
    });
    return { res, controller };
  }

  it('a TPM limit with streamed requests cut short: the unused reservation comes back',
     { timeout: 120000 }, async () => {
    const key = gw.key('tpm');
    await earlyInMinute(40);
    const tpmUsed = async () => figure(await rateLimits(gw.url, key), 'key', 'tpm').used;
    // Each request reserves its prompt (~20) plus max_tokens 1000 of 1500:
    // two do not fit together, one does with the other's settled.
    const big = (content) => gw.chat(content, { key, extra: { max_tokens: 1000 } });

    // A stream whose completion ends at 5 of its 1000 tokens, held open a while.
    const a = gw.chatStream(`cut short ${nonce()} mock:chunks=5 mock:chunk_delay=400`,
                            { key, extra: { max_tokens: 1000 } });
    assert.ok(await eventually(async () => (await tpmUsed()) >= 1000, 1500, 50),
              'the stream does not hold its reservation');
    const meanwhile = await big(`meanwhile ${nonce()}`);
    assertError(meanwhile, { status: 429, type: 'rate_limit_error', code: 'tpm', param: 'key' });
    assert.equal(intHeader(meanwhile, 'x-ratelimit-limit-tokens'), 1500);
    assert.ok(intHeader(meanwhile, 'x-ratelimit-remaining-tokens') < 1000,
              meanwhile.headers.get('x-ratelimit-remaining-tokens'));
    const done = await a;
    assert.equal(done.status, 200);
    assert.equal(done.contents.map((c) => c.text).join('').split(/\s+/).filter(Boolean).length, 5, 'cut at 5 tokens');
    // The settle replaces 1000 reserved by the 5 used: the next fits.
    let after = null;
    assert.ok(await eventually(async () => {
      after = await big(`after the settle ${nonce()} mock:chunks=3`);
      return after.status === 200;
    }, 3000, 50), `the reservation did not come back: ${after?.status} ${after?.text}`);
    assert.ok(intHeader(after, 'x-ratelimit-remaining-tokens') >= 300,
              after.headers.get('x-ratelimit-remaining-tokens'));

    // A stream the client leaves after its first event: settled with what
    // it used so far.
    const left = await openStream(key, `left ${nonce()} mock:chunks=50 mock:chunk_delay=200`, 1000);
    assert.equal(left.res.status, 200);
    const reader = left.res.body.getReader();
    await reader.read();
    const blocked = await big(`blocked ${nonce()}`);
    assertError(blocked, { status: 429, code: 'tpm' });
    left.controller.abort();
    await reader.read().catch(() => {});
    let back = null;
    assert.ok(await eventually(async () => {
      back = await big(`back ${nonce()} mock:chunks=3`);
      return back.status === 200;
    }, 3000, 50), `the abandoned stream kept its reservation: ${back?.status} ${back?.text}`);
    // What stays counted is what was used, far below one reservation.
    assert.ok(await eventually(async () => (await tpmUsed()) < 500, 3000, 100),
              `tpm used ${await tpmUsed()}`);
  });

  // Fire 2 * FIT budget requests of KEY on MODEL at once through both
  // edges; check that FIT (at least FIT - 1) answered and the rest are 429
  // budget, then that what usage_records and usage_rollups hold for MODEL is
  // within the budget.
  async function budgetBurst(key, model) {
    const all = await Promise.all(Array.from({ length: 2 * FIT }, (_, i) =>
      request(i % 2 ? edge2 : gw.url, '/v1/chat/completions', {
        key, body: { model, messages: [{ role: 'user', content: budgetText(i) }], ...budgetBody(i) },
      })));
    const ok = all.filter((r) => r.status === 200).length;
    assert.ok(ok >= FIT - 1 && ok <= FIT, `answered ${ok}: ${all.map((r) => r.status).join(',')}`);
    for (const r of all.filter((x) => x.status !== 200)) {
      assertError(r, { status: 429, type: 'rate_limit_error', code: 'budget', param: 'key' });
      assert.ok(intHeader(r, 'retry-after') >= 1, r.headers.get('retry-after'));
    }
    // Every answer has its record; the spend is the sum of their costs.
    assert.ok(await eventually(() => sqlNumber(
      `SELECT count(*) FROM usage_records WHERE model = '${model}'`) === 2 * FIT, 10000, 100),
              'the usage records were not all written');
    const spent = sqlNumber(`SELECT sum(cost_usd) FROM usage_records WHERE model = '${model}'`);
    assert.ok(spent <= BUDGET_USD, `spent $${spent} of $${BUDGET_USD}`);
    assert.ok(spent >= (FIT - 1) * 0.0024, `spent only $${spent}`);
    const rolled = sqlNumber(
      `SELECT sum(cost_usd) FROM usage_rollups WHERE period = 'day' AND model = '${model}'`);
    assert.ok(Math.abs(rolled - spent) < 1e-9, `roll-ups $${rolled}, records $${spent}`);
    // And the owner refuses the next one.
    const next = await request(gw.url, '/v1/chat/completions', {
      key, body: { model, messages: [{ role: 'user', content: budgetText('next') }], ...budgetBody() },
    });
    assertError(next, { status: 429, code: 'budget' });
  }

  it(`a budget of $${BUDGET_USD} against ${2 * FIT} concurrent requests priced so that ${FIT} fit`,
     { timeout: 60000 }, async () => {
    await budgetBurst(gw.key('budget'), 'priced');
  });

  it('a budget on a database model (POST models) refuses once spent, concurrency not overshooting',
     { timeout: 60000 }, async () => {
    const created = await gw.fetch('/api/v1/admin/models', {
      method: 'POST',
      body: { name: 'db-priced', deployments: [{ provider: 'openai', model: 'gpt-4o-mini', ...PRICE }] },
    });
    assert.equal(created.status, 201, created.text);
    // Served by the provider (its NOTIFY), then the owners' watch of the
    // prices (the same NOTIFY) has had a second.
    assert.ok(await eventually(async () => (await gw.chat(`served ${nonce()}`,
                                                          { model: 'db-priced' })).status === 200,
                               5000, 100), 'the database model is not served');
    await sleep(1000);
    // The master key's request above has no budget; its record is not the key's.
    db.sql(`DELETE FROM usage_records WHERE model = 'db-priced'`);
    db.sql(`DELETE FROM usage_rollups WHERE model = 'db-priced'`);
    await budgetBurst(gw.key('dbbudget'), 'db-priced');
  });

  it('a concurrency cap of 3 with 10 slow requests: exactly 3 in flight at the mock',
     { timeout: 60000 }, async () => {
    const key = gw.key('conc');
    const before = await mock.stats();
    let most = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        most = Math.max(most, (await mock.stats()).in_flight);
        await sleep(25);
      }
    })();
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      request(i % 2 ? edge2 : gw.url, '/v1/chat/completions', {
        key, body: { model: 'gpt-4o-mini',
                     messages: [{ role: 'user', content: `slow ${i} ${nonce()} mock:latency=2500` }] },
      })));
    polling = false;
    await poll;
    const ok = all.filter((r) => r.status === 200);
    assert.equal(ok.length, 3, all.map((r) => r.status).join(','));
    for (const r of all.filter((x) => x.status !== 200)) {
      assertError(r, { status: 429, type: 'rate_limit_error', code: 'concurrency', param: 'key' });
      assert.equal(intHeader(r, 'retry-after'), 1);
      assert.equal(intHeader(r, 'x-ratelimit-limit-requests'), 3);
      assert.equal(intHeader(r, 'x-ratelimit-remaining-requests'), 0);
    }
    assert.equal(most, 3, 'requests in flight at the mock');
    assert.equal((await mock.stats()).chat - before.chat, 3, 'requests the mock received');
    // The settles give the slots back.
    assert.ok(await eventually(async () =>
      figure(await rateLimits(gw.url, key), 'key', 'concurrency').used === 0, 3000, 50));
    const again = await gw.chat(`again ${nonce()}`, { key });
    assert.equal(again.status, 200, again.text);
  });

  it('tenant ceilings over the admin API (limits_admin checks every field)', async () => {
    const admin = (method, p, body, key) => gw.fetch(`/api/v1/admin/${p}`, { method, body, ...(key ? { key } : {}) });
    const tenant = await admin('POST', 'tenants', { name: `ceiling-${nonce()}`, limits: { rpm: 100 } });
    assert.equal(tenant.status, 201, tenant.text);
    const ta = await admin('POST', 'keys', { tenant_id: tenant.json.id, name: 'ta', role: 'tenant-admin',
                                             rpm: 100 });
    assert.equal(ta.status, 201, ta.text);
    const above = await admin('PATCH', `keys/${ta.json.id}`, { rpm: 100000 }, ta.json.key);
    assertError(above, { status: 403, type: 'permission_error', code: 'limit_above_tenant', param: 'rpm' });
    const within = await admin('POST', 'keys', { name: 'dev', role: 'developer', limits: { rpm: 2 } },
                               ta.json.key);
    assert.equal(within.status, 201, within.text);
    // The key's own limit binds on the data plane, whatever edge.
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await request(i % 2 ? edge2 : gw.url, '/v1/chat/completions', {
        key: within.json.key, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `c ${nonce()}` }] },
      })).status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
  });

  it('GET /api/v1/admin/rate-limits: the owner\'s figures per level, the same through every edge',
     { timeout: 90000 }, async () => {
    const key = gw.key('report');
    await earlyInMinute(45);
    for (let i = 0; i < 3; i++) {
      const res = await request(i % 2 ? edge2 : gw.url, '/v1/chat/completions', {
        key, body: { model: 'gpt-4o-mini', max_tokens: 10,
                     messages: [{ role: 'user', content: `report ${i} ${nonce()} mock:chunks=2` }] },
      });
      assert.equal(res.status, 200, res.text);
    }
    // The tpm settles are one-way: wait until the owner has them all; then
    // both edges show the one owner's figures.
    let one = null;
    let two = null;
    assert.ok(await eventually(async () => {
      one = await rateLimits(gw.url, key);
      two = await rateLimits(edge2, key);
      return figure(one, 'key', 'tpm').used < 100 && JSON.stringify(one) === JSON.stringify(two);
    }, 3000, 50), `two edges, one owner: ${JSON.stringify(one)} ${JSON.stringify(two)}`);
    const rpm = figure(one, 'key', 'rpm');
    assert.deepEqual([rpm.limit, rpm.used, rpm.remaining], [50, 3, 47], JSON.stringify(rpm));
    const minute = Math.floor(Date.now() / 60000) * 60 + 60;
    assert.ok(Math.abs(rpm.reset - minute) <= 1, `reset ${rpm.reset}, minute ends ${minute}`);
    const tpm = figure(one, 'key', 'tpm');
    assert.equal(tpm.limit, 100000);
    assert.ok(tpm.used > 6 && tpm.remaining === 100000 - tpm.used, JSON.stringify(tpm));
    const tenantRpm = figure(one, 'tenant', 'rpm');
    assert.deepEqual([tenantRpm.limit, tenantRpm.used], [500, 3], JSON.stringify(one.tenant));
    const model = one.models['gpt-4o-mini'];
    assert.ok(model, JSON.stringify(one));
    const modelRpm = model.key.find((l) => l.kind === 'rpm');
    assert.deepEqual([modelRpm?.limit, modelRpm?.used], [20, 3], JSON.stringify(model));
  });

  it('a new owner rebuilds a budget from the roll-ups and refuses at the same total; past rows are deleted',
     { timeout: 120000 }, async () => {
    const key = gw.key('move');
    const spend = () => request(gw.url, '/v1/chat/completions', {
      key, body: { model: 'priced', messages: [{ role: 'user', content: budgetText('move') }], ...budgetBody() },
    });
    const HALF = FIT / 2;
    for (let i = 0; i < HALF; i++) {
      const res = await spend();
      assert.equal(res.status, 200, res.text);
    }
    const tenant = (await rateLimits(gw.url, key)).tenant.id;
    assert.ok(tenant, 'no tenant id');
    // The roll-ups hold the spend.
    assert.ok(await eventually(() => sqlNumber(`SELECT sum(requests) FROM usage_rollups
      WHERE period = 'day' AND tenant_id = '${tenant}'`) === HALF, 10000, 100),
              'the roll-ups do not hold the spend');
    // Past rows of another tenant: over (deleted by the next owner) and live (kept).
    const sep = "chr (31)";
    const row = (name, start) => `('lx-stale', ${name}, ${start}, 5, 0, 0)`;
    db.sql(`INSERT INTO ratelimit_state (tenant_id, limit_key, window_start, current, previous, spent_nusd)
            VALUES ${[
              row(`'00' || ${sep} || 'k1' || ${sep} || ${sep}`, "now () - interval '1 hour'"),
              row(`'10' || ${sep} || 'k1' || ${sep} || ${sep}`, "now () - interval '2 days'"),
              row(`'40' || ${sep} || 'k1' || ${sep} || ${sep} || 'day'`, "now () - interval '3 days'"),
              row(`'41' || ${sep} || 't' || ${sep} || ${sep} || '7d@1764547200'`, "now () - interval '10 days'"),
              row(`'02' || ${sep} || 'k2' || ${sep} || ${sep}`, 'now ()'),
              row(`'40' || ${sep} || 'k2' || ${sep} || ${sep} || 'month'`, "date_trunc ('month', now ())"),
              row(`'41' || ${sep} || 't' || ${sep} || ${sep} || '30d@1764547200'`, "now () - interval '10 days'"),
            ].join(', ')}`);

    // Kill every rate-limit process; the snapshot goes too, so the spend
    // can only come from the roll-ups.
    await gw.killActor('ratelimit');
    // Not ready once the broker has noticed (its liveness, 2 s): no request
    // then goes to a dead owner.
    assert.ok(await eventually(async () => (await request(gw.url, '/readyz')).status === 503,
                               10000, 100), 'still ready without a rate-limit process');
    db.sql(`DELETE FROM ratelimit_state WHERE tenant_id = '${tenant}'`);
    gw.startActor('ratelimit');
    await gw.waitReady();

    const after = [];
    for (let i = 0; i < FIT; i++) {
      const res = await spend();
      after.push(res.status);
      if (res.status !== 200) {
        assertError(res, { status: 429, code: 'budget', param: 'key' });
        break;
      }
    }
    // Both owners together let through what one would have: FIT.
    assert.deepEqual(after, [...Array(FIT - HALF).fill(200), 429], JSON.stringify({
      rollups: db.sql(`SELECT key_id, model, bucket, requests, cost_usd FROM usage_rollups
                       WHERE period = 'day' AND tenant_id = '${tenant}'`),
      records: db.sql(`SELECT status, cost_usd FROM usage_records WHERE tenant_id = '${tenant}'`),
      state: db.sql(`SELECT tenant_id, limit_key, current, spent_nusd FROM ratelimit_state
                     WHERE limit_key LIKE '4%'`),
      owner: await rateLimits(gw.url, key),
    }));
    const spent = sqlNumber(`SELECT sum(cost_usd) FROM usage_records WHERE tenant_id = '${tenant}'`);
    assert.ok(spent <= BUDGET_USD, `spent $${spent}`);

    // The new owner deleted the rows that are over, and only those.
    const left = () => db.sql(`SELECT left (limit_key, 2) || split_part (limit_key, chr (31), 2)
                               FROM ratelimit_state WHERE tenant_id = 'lx-stale' ORDER BY 1`)
      .trim().split('\n').filter(Boolean);
    assert.ok(await eventually(() => left().length === 3, 10000, 200), left().join(','));
    assert.deepEqual(left(), ['02k2', '40k2', '41t']);
  });
});
