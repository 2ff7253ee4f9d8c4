// GET /api/v1/admin/usage and usage/records (issue 10 item 3) against a real
// gateway and PostgreSQL: requests of several kinds from keys in two
// tenants; then the answers' sums equal SQL sums over usage_records and over
// the roll-ups (usage_rollups), per group_by, status and time filter; a
// tenant-admin sees only its tenant, a developer only its key; records page
// by cursor; bad input is 400 naming the parameter; answers match
// schemas/openapi.yaml; and a spool replayed with batches already written
// adds nothing to records or roll-ups.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database for this file; without it, a private cluster is
// started (pgtest.mjs freshDatabase).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  assert, after, before, describe, eventually, it, nonce, sleep, SRC, startGateway, assertError,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const spec = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));

function config(name) {
  return {
    models: [
      { name: 'gpt-4o-mini',
        deployments: [{ id: 'mock-mini', provider: 'openai', model: 'gpt-4o-mini',
                        price_in: 2, price_out: 8 }] },
      { name: 'gpt-4o',
        deployments: [{ id: 'mock-big', provider: 'openai', model: 'gpt-4o',
                        price_in: 5, price_out: 15 }] },
    ],
    usage: { batch_ms: 50,
             spool_path: path.join(os.tmpdir(), `aigw-uapi-${name}-${nonce()}.spool`) },
  };
}

// ---------------------------------------------------------------------------
// OpenAPI: a value against a schema of the spec ($ref, allOf, nullable,
// required, properties, items, type).
function resolve(node) {
  let n = node;
  while (n && n.$ref) n = n.$ref.replace(/^#\//, '').split('/').reduce((o, k) => o[k], spec);
  return n;
}

function checkSchema(schema, value, where) {
  const s = resolve(schema);
  if (!s) return;
  for (const part of s.allOf || []) checkSchema(part, value, where);
  if (value === null) {
    assert.ok(s.nullable || !s.type, `${where}: null where the spec has no nullable`);
    return;
  }
  const types = { object: (v) => typeof v === 'object' && !Array.isArray(v), array: Array.isArray,
                  string: (v) => typeof v === 'string', boolean: (v) => typeof v === 'boolean',
                  integer: Number.isInteger, number: (v) => typeof v === 'number' };
  if (s.type) assert.ok(types[s.type](value), `${where}: ${JSON.stringify(value)} is no ${s.type}`);
  for (const prop of s.required || []) assert.ok(prop in value, `${where}: missing required ${prop}`);
  for (const [prop, sub] of Object.entries(s.properties || {})) {
    if (value && prop in value) checkSchema(sub, value[prop], `${where}.${prop}`);
  }
  if (s.items && Array.isArray(value)) value.forEach((v, i) => checkSchema(s.items, v, `${where}[${i}]`));
}

// RES answers operation GET P as the spec says: its status is listed and
// its body fits the listed schema.
function checkSpec(p, res) {
  const op = spec.paths[p]?.get;
  assert.ok(op, `GET ${p} is not in schemas/openapi.yaml`);
  assert.ok(String(res.status) in op.responses, `GET ${p}: ${res.status} not in the spec`);
  const content = resolve(op.responses[String(res.status)]).content?.['application/json'];
  assert.ok(content, `GET ${p} ${res.status}: no JSON schema`);
  checkSchema(content.schema, res.json, `GET ${p} ${res.status}`);
}

// ---------------------------------------------------------------------------
// A CRC-32 (the spool's frame check), and one spool frame of COPY text.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function spoolFrame(text, records) {
  const payload = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(16);
  head.writeUInt32LE(0x50534741, 0);
  head.writeUInt32LE(payload.length, 4);
  head.writeUInt32LE(records, 8);
  head.writeUInt32LE(crc32(payload), 12);
  return Buffer.concat([head, payload]);
}

describe('usage API', () => {
  let db;
  let gw;
  const t = {};           // tenants a, b
  const k = {};           // keys by name: { id, key }
  let total = 0;          // rows this file made

  const admin = (p, key) => gw.fetch(`/api/v1/admin/${p}`, key ? { key } : {});
  const json = (text) => JSON.parse(db.sql(text).trim());

  // Totals per group from SQL: COLS (SQL expressions AS names) over TABLE
  // rows matching WHERE; records by default, or a roll-up period.
  function sqlGroups(cols, where = 'true', period = null) {
    const names = cols.map((c) => c.split(' AS ')[1]);
    const sums = period
      ? `sum (requests) AS requests, sum (errors) AS errors, sum (prompt_tokens) AS prompt_tokens,
         sum (completion_tokens) AS completion_tokens, sum (cached_tokens) AS cached_tokens,
         sum (cost_usd) AS cost_usd`
      : `count (*) AS requests, count (*) FILTER (WHERE status >= 400) AS errors,
         sum (prompt_tokens) AS prompt_tokens, sum (completion_tokens) AS completion_tokens,
         sum (cached_tokens) AS cached_tokens, sum (cost_usd) AS cost_usd`;
    const from = period ? `usage_rollups WHERE period = '${period}' AND ${where}`
                        : `usage_records WHERE ${where}`;
    const rows = json(`SELECT coalesce (json_agg (x), '[]') FROM (SELECT ${cols.join(', ')}${
      cols.length ? ',' : ''} ${sums} FROM ${from}${
      cols.length ? ` GROUP BY ${cols.map((_, i) => i + 1).join(', ')}` : ''}) x`);
    return new Map(rows.map((r) => [JSON.stringify(names.map((n) => r[n] ?? null)), r]));
  }

  // The API's groups, keyed by the group members NAMES.
  function apiGroups(res, names) {
    assert.equal(res.status, 200, res.text);
    return new Map(res.json.data.map((g) => [JSON.stringify(names.map((n) => g.group[n] ?? null)), g]));
  }

  function assertSameTotals(api, want, what) {
    assert.deepEqual([...api.keys()].sort(), [...want.keys()].sort(), `${what}: groups differ`);
    for (const [key, w] of want) {
      const g = api.get(key);
      for (const f of ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cached_tokens']) {
        assert.equal(Number(g[f]), Number(w[f]), `${what} ${key}: ${f}`);
      }
      assert.ok(Math.abs(Number(g.cost_usd) - Number(w.cost_usd)) < 1e-9,
                `${what} ${key}: cost_usd ${g.cost_usd} vs ${w.cost_usd}`);
    }
  }

  async function createTenant(name) {
    const res = await gw.fetch('/api/v1/admin/tenants', { body: { name } });
    assert.equal(res.status, 201, res.text);
    return res.json.id;
  }
  async function createKey(name, tenant, role) {
    const res = await gw.fetch('/api/v1/admin/keys', { body: { name, tenant_id: tenant, role } });
    assert.equal(res.status, 201, res.text);
    k[name] = { id: res.json.id, key: res.json.key };
  }
  const rowCount = () => Number(db.sql('SELECT count (*) FROM usage_records').trim());

  before(async () => {
    db = await freshDatabase('aigw_uapi');
    migrate(db.url);
    gw = await startGateway({ mode: 'run', name: 'usage-api', config: config('main'),
                              env: { DATABASE_URL: db.url } });
    t.a = await createTenant(`usage-a-${nonce()}`);
    t.b = await createTenant(`usage-b-${nonce()}`);
    await createKey('a-dev1', t.a, 'developer');
    await createKey('a-dev2', t.a, 'developer');
    await createKey('a-admin', t.a, 'tenant-admin');
    await createKey('b-dev', t.b, 'developer');

    // Several kinds of answer: success on two models, a cache hit, an
    // upstream 500 (502 to the client), an unknown model, malformed JSON.
    const tag = nonce();
    const expect = async (promise, status) => {
      const res = await promise;
      assert.equal(res.status, status, res.text);
      total++;
      return res;
    };
    const chat = (who, content, opts = {}) => gw.chat(content, { key: k[who].key, ...opts });
    await expect(chat('a-dev1', `one ${tag}`), 200);
    const hit = await expect(chat('a-dev1', `one ${tag}`), 200);
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    await expect(chat('a-dev1', `two ${tag}`, { model: 'gpt-4o' }), 200);
    await expect(chat('a-dev1', `fail ${tag} mock:status=500`), 502);
    await expect(chat('a-dev1', 'x', { model: 'no-such-model' }), 404);
    await expect(chat('a-dev2', `three ${tag}`, { model: 'gpt-4o' }), 200);
    await expect(gw.fetch('/v1/chat/completions', { key: k['a-dev2'].key, body: '{"model": ' }), 400);
    await expect(chat('a-admin', `four ${tag}`), 200);
    await expect(chat('b-dev', `five ${tag}`), 200);
    await expect(chat('b-dev', `six ${tag}`, { model: 'gpt-4o' }), 200);
    await expect(chat('b-dev', `fail ${tag} mock:status=500`, { model: 'gpt-4o' }), 502);
    await eventually(async () => rowCount() >= total, 30000, 100);
    await sleep(300);
    assert.equal(rowCount(), total, 'one row per answered request');
  }, { timeout: 120000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('keeps the roll-ups equal to the records grouped, for every period', () => {
    for (const period of ['hour', 'day', 'month']) {
      const diff = db.sql(`
        WITH r AS (SELECT coalesce (tenant_id, '') AS tenant_id, coalesce (key_id, '') AS key_id,
                          coalesce (model, '') AS model, coalesce (deployment, '') AS deployment,
                          date_trunc ('${period}', ts, 'UTC') AS bucket, count (*) AS requests,
                          count (*) FILTER (WHERE status >= 400) AS errors,
                          sum (prompt_tokens) AS p, sum (completion_tokens) AS c,
                          sum (cached_tokens) AS k, sum (cost_usd) AS cost
                     FROM usage_records GROUP BY 1, 2, 3, 4, 5),
             u AS (SELECT tenant_id, key_id, model, deployment, bucket, requests, errors,
                          prompt_tokens, completion_tokens, cached_tokens, cost_usd
                     FROM usage_rollups WHERE period = '${period}')
        SELECT count (*) FROM ((SELECT * FROM r EXCEPT SELECT * FROM u)
                               UNION ALL (SELECT * FROM u EXCEPT SELECT * FROM r)) d`).trim();
      assert.equal(diff, '0', `roll-ups (${period}) differ from the records`);
    }
    assert.equal(Number(db.sql("SELECT sum (requests) FROM usage_rollups WHERE period = 'month'")),
                 total);
  });

  it('answers totals equal to the rows and the roll-ups, per group_by', async () => {
    const all = await admin('usage');
    checkSpec('/usage', all);
    assert.equal(all.json.next_cursor, null);
    assert.ok(!Number.isNaN(Date.parse(all.json.start)) && !Number.isNaN(Date.parse(all.json.end)));
    assert.equal(Date.parse(all.json.end) - Date.parse(all.json.start), 24 * 3600 * 1000);
    assertSameTotals(apiGroups(all, []), sqlGroups([]), 'no group_by vs records');
    assertSameTotals(apiGroups(all, []), sqlGroups([], 'true', 'hour'), 'no group_by vs roll-ups');
    assert.equal(all.json.data[0].requests, total);

    const cases = [
      ['model', ['model'], ['model AS model'], ["nullif (model, '') AS model"]],
      ['key', ['key_id'], ['key_id AS key_id'], ["nullif (key_id, '') AS key_id"]],
      ['tenant', ['tenant_id'], ['tenant_id AS tenant_id'], ["nullif (tenant_id, '') AS tenant_id"]],
      ['deployment', ['deployment'], ['deployment AS deployment'],
       ["nullif (deployment, '') AS deployment"]],
      ['day', ['day'], [`to_char (date_trunc ('day', ts, 'UTC') AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS day`],
       [`to_char (bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS day`], 'day'],
      ['tenant,key,model,deployment,hour', ['tenant_id', 'key_id', 'model', 'deployment', 'hour'],
       ['tenant_id AS tenant_id', 'key_id AS key_id', 'model AS model', 'deployment AS deployment',
        `to_char (date_trunc ('hour', ts, 'UTC') AT TIME ZONE 'UTC',
                  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS hour`],
       ["nullif (tenant_id, '') AS tenant_id", "nullif (key_id, '') AS key_id",
        "nullif (model, '') AS model", "nullif (deployment, '') AS deployment",
        `to_char (bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS hour`]],
    ];
    for (const [groupBy, names, recordCols, rollupCols, period = 'hour'] of cases) {
      const res = await admin(`usage?group_by=${groupBy}`);
      checkSpec('/usage', res);
      const api = apiGroups(res, names);
      assert.ok(api.size >= (groupBy === 'day' ? 1 : 2), `group_by=${groupBy}: ${api.size} groups`);
      assertSameTotals(api, sqlGroups(recordCols), `group_by=${groupBy} vs records`);
      assertSameTotals(api, sqlGroups(rollupCols, 'true', period), `group_by=${groupBy} vs roll-ups`);
    }
    // Names ride along with ids.
    const byKey = await admin('usage?group_by=key');
    const dev1 = byKey.json.data.find((g) => g.group.key_id === k['a-dev1'].id);
    assert.equal(dev1.group.key_name, 'a-dev1');
    // Percentiles come from the rows.
    const byModel = await admin('usage?group_by=model');
    const pct = json(`SELECT json_object_agg (model, p) FROM (SELECT model, json_build_array (
                        percentile_disc (0.5) WITHIN GROUP (ORDER BY latency_ms),
                        percentile_disc (0.95) WITHIN GROUP (ORDER BY latency_ms),
                        percentile_disc (0.99) WITHIN GROUP (ORDER BY latency_ms)) AS p
                        FROM usage_records WHERE model IS NOT NULL GROUP BY model) x`);
    for (const g of byModel.json.data.filter((x) => x.group.model)) {
      assert.deepEqual([g.latency_ms.p50, g.latency_ms.p95, g.latency_ms.p99], pct[g.group.model],
                       `latency of ${g.group.model}`);
    }
  });

  it('filters by status, model, key, tenant and time (end exclusive)', async () => {
    const filters = [
      ['status=5xx', 'status BETWEEN 500 AND 599'],
      ['status=error', 'status >= 400'],
      ['status=404', 'status = 404'],
      ['status=200', 'status = 200'],
      ['model=gpt-4o', "model = 'gpt-4o'"],
      [`key_id=${k['a-dev1'].id}`, `key_id = '${k['a-dev1'].id}'`],
      [`tenant_id=${t.b}&deployment=mock-big`, `tenant_id = '${t.b}' AND deployment = 'mock-big'`],
    ];
    for (const [q, where] of filters) {
      const res = await admin(`usage?${q}&group_by=model`);
      checkSpec('/usage', res);
      assertSameTotals(apiGroups(res, ['model']), sqlGroups(['model AS model'], where), q);
      assert.ok(res.json.data.length > 0, `${q} found nothing`);
    }
    const errors = await admin('usage?status=error');
    assert.equal(errors.json.data[0].requests, errors.json.data[0].errors);
    assert.equal(errors.json.data[0].requests, Number(db.sql('SELECT count (*) FROM usage_records WHERE status >= 400')));

    // A range that ends at the third-oldest row: the two before it only.
    const times = db.sql(`SELECT to_char (ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                            FROM usage_records ORDER BY ts`).trim().split('\n');
    const start = new Date(Date.parse(times[0]) - 3600 * 1000).toISOString();
    const cut = times[2];
    const head = await admin(`usage?start=${start}&end=${cut}`);
    const want = Number(db.sql(`SELECT count (*) FROM usage_records WHERE ts < '${cut}'`));
    assert.ok(want >= 2 && want < total, `${want} rows before ${cut}`);
    assert.equal(head.json.data[0].requests, want);
    assert.equal(head.json.start, start);
    assert.equal(head.json.end, cut);
    const tail = await admin(`usage?start=${cut}`);
    assert.equal(tail.json.data[0].requests, total - want);
    // A range with no rows: no groups.
    const future = await admin('usage?start=2999-01-01T00:00:00Z&end=2999-01-02T00:00:00Z');
    checkSpec('/usage', future);
    assert.deepEqual(future.json.data, []);
    const past = await admin('usage?end=2000-01-01T00:00:00Z&group_by=model');
    assert.deepEqual(past.json.data, []);
  });

  it('shows a tenant-admin only its tenant, and a developer only its key', async () => {
    const mine = await admin('usage?group_by=tenant,key', k['a-admin'].key);
    checkSpec('/usage', mine);
    assert.ok(mine.json.data.length >= 3);
    for (const g of mine.json.data) assert.equal(g.group.tenant_id, t.a);
    assertSameTotals(apiGroups(mine, ['tenant_id', 'key_id']),
                     sqlGroups(['tenant_id AS tenant_id', 'key_id AS key_id'], `tenant_id = '${t.a}'`),
                     'tenant-admin');
    // Another tenant named: nothing, as other lists answer.
    const other = await admin(`usage?tenant_id=${t.b}`, k['a-admin'].key);
    assert.equal(other.status, 200, other.text);
    assert.deepEqual(other.json.data, []);
    const otherRecords = await admin(`usage/records?tenant_id=${t.b}`, k['a-admin'].key);
    assert.deepEqual(otherRecords.json.data, []);
    const records = await admin('usage/records?limit=200', k['a-admin'].key);
    assert.equal(records.json.data.length,
                 Number(db.sql(`SELECT count (*) FROM usage_records WHERE tenant_id = '${t.a}'`)));
    for (const r of records.json.data) assert.equal(r.tenant_id, t.a);

    const own = await admin('usage?group_by=key', k['a-dev1'].key);
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(own.json.data.map((g) => g.group.key_id), [k['a-dev1'].id]);
    assertSameTotals(apiGroups(own, ['key_id']),
                     sqlGroups(['key_id AS key_id'], `key_id = '${k['a-dev1'].id}'`), 'developer');
    const sibling = await admin(`usage?key_id=${k['a-dev2'].id}`, k['a-dev1'].key);
    assert.deepEqual(sibling.json.data, []);
    const ownRecords = await admin('usage/records', k['a-dev1'].key);
    assert.ok(ownRecords.json.data.length >= 4);
    for (const r of ownRecords.json.data) assert.equal(r.key_id, k['a-dev1'].id);
    const bdev = await admin('usage', k['b-dev'].key);
    assert.equal(bdev.json.data[0].requests,
                 Number(db.sql(`SELECT count (*) FROM usage_records WHERE key_id = '${k['b-dev'].id}'`)));
  });

  it('pages raw records newest first: disjoint pages, all rows, null cursor at the end', async () => {
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const res = await admin(`usage/records?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      checkSpec('/usage/records', res);
      assert.ok(res.json.data.length <= 3);
      for (const r of res.json.data) {
        assert.ok(!('secret' in r) && !JSON.stringify(r).includes('sk-'), 'a record shows a secret');
      }
      seen.push(...res.json.data);
      cursor = res.json.next_cursor;
      pages++;
      assert.ok(pages < 50, 'pagination does not end');
    } while (cursor);
    assert.equal(pages, Math.ceil(total / 3));
    const ids = seen.map((r) => r.record_id);
    assert.equal(new Set(ids).size, ids.length, 'a record on two pages');
    assert.deepEqual([...ids].sort(),
                     db.sql('SELECT record_id FROM usage_records ORDER BY record_id').trim().split('\n'));
    for (let i = 1; i < seen.length; i++) {
      assert.ok(Date.parse(seen[i - 1].ts) >= Date.parse(seen[i].ts), 'not newest first');
    }
    // Filters apply to records too.
    const failed = await admin('usage/records?status=5xx');
    assert.equal(failed.json.data.length, Number(db.sql('SELECT count (*) FROM usage_records WHERE status >= 500')));
    for (const r of failed.json.data) assert.ok(r.status >= 500);
    const one = seen.find((r) => r.status === 200 && r.model === 'gpt-4o');
    assert.ok(one.prompt_tokens > 0 && one.cost_usd > 0 && one.deployment === 'mock-big', JSON.stringify(one));
  });

  it('answers 400 naming the parameter for bad input', async () => {
    const bad = [
      ['usage?group_by=week', 'group_by'],
      ['usage?group_by=model,', 'group_by'],
      ['usage?start=yesterday', 'start'],
      ['usage?end=2025-02-30T00:00:00Z', 'end'],
      ['usage?start=2025-06-02T00:00:00Z&end=2025-06-01T00:00:00Z', 'start'],
      ['usage?status=6xx', 'status'],
      ['usage?status=abc', 'status'],
      ['usage?model=', 'model'],
      ['usage?limit=5', 'limit'],
      ['usage?colour=red', 'colour'],
      ['usage/records?limit=0', 'limit'],
      ['usage/records?limit=201', 'limit'],
      ['usage/records?cursor=not-a-cursor', 'cursor'],
      ['usage/records?group_by=model', 'group_by'],
      ['usage/records?status=99', 'status'],
    ];
    for (const [p, param] of bad) {
      const res = await admin(p);
      assertError(res, { status: 400, type: 'invalid_request_error', param });
      checkSpec(p.startsWith('usage/records') ? '/usage/records' : '/usage', res);
    }
    const anon = await gw.fetch('/api/v1/admin/usage', { key: 'sk-not-a-key' });
    assert.equal(anon.status, 401);
    checkSpec('/usage', anon);
  });

  it('adds nothing to records or roll-ups when a spool replays batches already written', async () => {
    // Spool frames in the actor's COPY text: the table's columns in order
    // (the actor writes them in that order). Frame 1 holds every row
    // already written; frames 2 and 3 the same new rows (fresh record
    // ids), twice.
    const cols = db.sql(`SELECT string_agg (column_name, ', ' ORDER BY ordinal_position)
                           FROM information_schema.columns WHERE table_name = 'usage_records'`).trim();
    const old = db.sql(`COPY (SELECT ${cols} FROM usage_records) TO STDOUT`);
    const fresh = db.sql(`COPY (SELECT ${cols.replace('record_id', 'gen_random_uuid ()')
      .replace('request_id', "'replay-' || request_id")} FROM usage_records) TO STDOUT`);
    assert.equal(old.split('\n').filter(Boolean).length, total);
    const spool = path.join(os.tmpdir(), `aigw-uapi-replay-${nonce()}.spool`);
    fs.writeFileSync(spool, Buffer.concat([spoolFrame(old, total), spoolFrame(fresh, total),
                                           spoolFrame(fresh, total)]));
    const cfg = config('replay');
    cfg.usage.spool_path = spool;
    const second = await startGateway({ mode: 'run', name: 'usage-api-replay', config: cfg,
                                        env: { DATABASE_URL: db.url } });
    try {
      const drained = await eventually(async () => fs.statSync(spool).size === 0, 30000, 100);
      assert.ok(drained, 'the spool was not replayed');
    } finally {
      await second.stop();
      fs.rmSync(spool, { force: true });
    }
    assert.equal(rowCount(), 2 * total, 'the replay doubled or lost rows');
    const monthly = db.sql(`SELECT sum (requests) FROM usage_rollups WHERE period = 'month'`).trim();
    assert.equal(Number(monthly), 2 * total, 'the replay doubled the roll-ups');
    const diff = db.sql(`
      WITH r AS (SELECT coalesce (tenant_id, '') AS t, coalesce (key_id, '') AS k,
                        coalesce (model, '') AS m, coalesce (deployment, '') AS d,
                        date_trunc ('hour', ts, 'UTC') AS b, count (*) AS n,
                        count (*) FILTER (WHERE status >= 400) AS e, sum (prompt_tokens) AS p,
                        sum (completion_tokens) AS c, sum (cost_usd) AS cost
                   FROM usage_records GROUP BY 1, 2, 3, 4, 5),
           u AS (SELECT tenant_id, key_id, model, deployment, bucket, requests, errors,
                        prompt_tokens, completion_tokens, cost_usd
                   FROM usage_rollups WHERE period = 'hour')
      SELECT count (*) FROM ((SELECT * FROM r EXCEPT SELECT * FROM u)
                             UNION ALL (SELECT * FROM u EXCEPT SELECT * FROM r)) x`).trim();
    assert.equal(diff, '0', 'roll-ups differ from the records after the replay');
    const all = await admin('usage');
    assert.equal(all.json.data[0].requests, 2 * total);
  });
});
