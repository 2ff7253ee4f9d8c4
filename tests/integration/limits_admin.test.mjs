// Limits on the control plane (schemas/limits.md 1a, 4a, 7): `limits` on
// keys and tenants through POST/PATCH/GET, the SPEC's rpm/tpm/budget_usd
// kept equal to them, 400s naming the member, a tenant-admin's ceilings
// (403 limit_above_tenant), keys born expired refused, a change reaching the
// data plane within a second or two, limits in the config file, and GET
// rate-limits' scope checks.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database for this file (pgtest.mjs freshDatabase).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  assert, after, before, describe, it, SRC, startGateway, assertError, eventually, nonce,
  spawnProcess, writeConfig,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const openapi = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));

// VALUE fits SCHEMA of the OpenAPI file ($ref, required, properties,
// additionalProperties, items, type).
function checkSchema(schema, value, where) {
  let s = schema;
  while (s && s.$ref) s = s.$ref.replace(/^#\//, '').split('/').reduce((o, k) => o[k], openapi);
  if (!s) return;
  if (value === null) {
    assert.ok(s.nullable, `${where}: null where the spec has no nullable`);
    return;
  }
  const types = { object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
                  array: Array.isArray, string: (v) => typeof v === 'string',
                  integer: Number.isInteger, number: (v) => typeof v === 'number' };
  if (s.type) assert.ok(types[s.type](value), `${where}: ${JSON.stringify(value)} is no ${s.type}`);
  if (s.enum) assert.ok(s.enum.includes(value), `${where}: ${value} not in ${s.enum}`);
  for (const prop of s.required || []) assert.ok(prop in value, `${where}: missing required ${prop}`);
  for (const [prop, sub] of Object.entries(s.properties || {})) {
    if (prop in value) checkSchema(sub, value[prop], `${where}.${prop}`);
  }
  if (s.additionalProperties && typeof s.additionalProperties === 'object') {
    for (const [prop, v] of Object.entries(value)) {
      if (!(prop in (s.properties || {}))) checkSchema(s.additionalProperties, v, `${where}.${prop}`);
    }
  }
  if (s.items) value.forEach((v, i) => checkSchema(s.items, v, `${where}[${i}]`));
}

// How long a change may take to reach the auth stage (LISTEN/NOTIFY).
const PROPAGATION_MS = 3000;
const TENANT_LIMITS = {
  rpm: 100, tpm: 10000, budget: { usd: 50, period: 'month' },
  models: { 'gpt-4o-mini': { rpm: 50 } },
};

describe('limits on the admin API', () => {
  let db;
  let gw;

  before(async () => {
    db = await freshDatabase('aigw_limits');
    migrate(db.url);
    // A role without ratelimits:read, for GET rate-limits' 403.
    db.sql("INSERT INTO roles (name, permissions) VALUES ('no-limits', ARRAY['inference'])");
    gw = await startGateway({ mode: 'run', name: 'limits', env: { DATABASE_URL: db.url } });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  const admin = (method, p, { body, key } = {}) =>
    gw.fetch(`/api/v1/admin/${p}`, { method, body, ...(key ? { key } : {}) });

  async function createTenant(extra = {}) {
    const res = await admin('POST', 'tenants', { body: { name: `limits-${nonce()}`, ...extra } });
    assert.equal(res.status, 201, res.text);
    return res.json;
  }

  async function createKey(body, key) {
    const res = await admin('POST', 'keys', { body: { name: `key-${nonce()}`, ...body }, key });
    assert.equal(res.status, 201, res.text);
    return res.json;
  }

  // A tenant with TENANT_LIMITS and a tenant-admin key in it that may use
  // gpt-4o-mini only, its rpm set by the admin to 100.
  async function tenantWithAdmin() {
    const tenant = await createTenant({ limits: TENANT_LIMITS });
    const ta = await createKey({ tenant_id: tenant.id, role: 'tenant-admin', rpm: 100,
                                 models: ['gpt-4o-mini'] });
    return { tenant, ta };
  }

  it('round-trips limits through POST, PATCH and GET of tenants', async () => {
    const tenant = await createTenant({ limits: { ...TENANT_LIMITS, rpd: null } });
    assert.deepEqual(tenant.limits, TENANT_LIMITS, 'null members are dropped');
    const got = await admin('GET', `tenants/${tenant.id}`);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json.limits, TENANT_LIMITS);
    const nd = { budget: { usd: 7.123456, period: '7d', reset: '2026-12-01T00:00:00Z' } };
    const patched = await admin('PATCH', `tenants/${tenant.id}`, { body: { limits: nd } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.json.limits, nd, 'limits are replaced whole');
    const cleared = await admin('PATCH', `tenants/${tenant.id}`, { body: { limits: null } });
    assert.equal(cleared.status, 200, cleared.text);
    assert.deepEqual(cleared.json.limits, {});
    const plain = await createTenant();
    assert.deepEqual(plain.limits, {});
  });

  it('round-trips key limits, with rpm, tpm and budget_usd kept equal to them', async () => {
    const tenant = await createTenant();
    const key = await createKey({
      tenant_id: tenant.id, role: 'developer', rpm: 40, budget_usd: 12.5,
      limits: { rpm: 40, concurrency: 3, models: { 'gpt-4o-mini': { tpm: 900 } } },
    });
    assert.deepEqual(key.limits, { rpm: 40, concurrency: 3, budget: { usd: 12.5, period: 'month' },
                                   models: { 'gpt-4o-mini': { tpm: 900 } } });
    assert.equal(key.rpm, 40);
    assert.equal(key.tpm, null);
    assert.equal(key.budget_usd, 12.5);

    // The SPEC's field alone changes its member and keeps the rest.
    let res = await admin('PATCH', `keys/${key.id}`, { body: { tpm: 5000 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.tpm, 5000);
    assert.equal(res.json.limits.tpm, 5000);
    assert.equal(res.json.limits.concurrency, 3);

    // limits replaces the whole object; the columns follow.
    res = await admin('PATCH', `keys/${key.id}`,
                      { body: { limits: { rpm: 7, budget: { usd: 3, period: 'day' } } } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.limits, { rpm: 7, budget: { usd: 3, period: 'day' } });
    assert.equal(res.json.rpm, 7);
    assert.equal(res.json.tpm, null);
    assert.equal(res.json.budget_usd, null, 'a daily budget is not budget_usd (a month\'s)');
    const got = await admin('GET', `keys/${key.id}`);
    assert.deepEqual(got.json.limits, res.json.limits);
    const row = db.sql(`SELECT rpm, tpm, budget_usd, limits->>'rpm' FROM api_keys WHERE id = '${key.id}'`);
    assert.equal(row.trim(), '7|||7');

    // null on a SPEC field removes that member; null limits clears them all.
    res = await admin('PATCH', `keys/${key.id}`, { body: { rpm: null } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.rpm, null);
    assert.deepEqual(res.json.limits, { budget: { usd: 3, period: 'day' } });
    res = await admin('PATCH', `keys/${key.id}`, { body: { limits: null } });
    assert.deepEqual(res.json.limits, {});

    // Every change is audited with the limits before and after.
    const audit = await admin('GET', `audit?target_id=${key.id}&action=keys.update&limit=10`);
    assert.equal(audit.status, 200, audit.text);
    assert.ok(audit.json.data.some((e) => e.before?.limits?.rpm === 7 && e.after?.limits?.rpm === undefined),
              JSON.stringify(audit.json.data).slice(0, 600));
  });

  it('refuses invalid limits with 400 naming the member', async () => {
    const tenant = await createTenant();
    const cases = [
      [{ limits: { rpm: 0 } }, 'limits.rpm'],
      [{ limits: { rpm: -5 } }, 'limits.rpm'],
      [{ limits: { tpm: '100' } }, 'limits.tpm'],
      [{ limits: { concurrency: 1.5 } }, 'limits.concurrency'],
      [{ limits: { burst: 10 } }, 'limits.burst'],
      [{ limits: [] }, 'limits'],
      [{ limits: { models: { 'gpt-4o': { rpm: 0 } } } }, 'limits.models.gpt-4o.rpm'],
      [{ limits: { models: { 'gpt-4o': { models: {} } } } }, 'limits.models.gpt-4o.models'],
      [{ limits: { budget: { usd: -1 } } }, 'limits.budget.usd'],
      [{ limits: { budget: { usd: 0.0000001 } } }, 'limits.budget.usd'],
      [{ limits: { budget: { usd: 1, period: 'year' } } }, 'limits.budget.period'],
      [{ limits: { budget: { usd: 1, period: '7d' } } }, 'limits.budget.reset'],
      [{ limits: { budget: { usd: 1, period: '7d', reset: 'soon' } } }, 'limits.budget.reset'],
      [{ limits: { budget: { usd: 1, reset: '2026-01-01T00:00:00Z' } } }, 'limits.budget.reset'],
      [{ rpm: 5, limits: { rpm: 6 } }, 'rpm'],
      [{ budget_usd: 5, limits: { budget: { usd: 5, period: 'week' } } }, 'budget_usd'],
    ];
    for (const [extra, param] of cases) {
      const res = await admin('POST', 'keys', {
        body: { tenant_id: tenant.id, name: `bad-${nonce()}`, role: 'developer', ...extra } });
      assertError(res, { status: 400, type: 'invalid_request_error', code: 'invalid_field', param });
    }
    for (const [extra, param] of cases.filter(([e]) => !('rpm' in e) && !('budget_usd' in e))) {
      const res = await admin('PATCH', `tenants/${tenant.id}`, { body: extra });
      assertError(res, { status: 400, code: 'invalid_field', param });
    }
    const stored = await admin('GET', `tenants/${tenant.id}`);
    assert.deepEqual(stored.json.limits, {}, 'nothing refused was stored');
  });

  it('refuses a key that would be born expired, on POST and PATCH', async () => {
    const tenant = await createTenant();
    const past = new Date(Date.now() - 60000).toISOString();
    let res = await admin('POST', 'keys', { body: { tenant_id: tenant.id, name: 'old',
                                                    role: 'developer', expires_at: past } });
    assertError(res, { status: 400, code: 'invalid_field', param: 'expires_at' });
    const key = await createKey({ tenant_id: tenant.id, role: 'developer',
                                  expires_at: new Date(Date.now() + 3600000).toISOString() });
    res = await admin('PATCH', `keys/${key.id}`, { body: { expires_at: past } });
    assertError(res, { status: 400, code: 'invalid_field', param: 'expires_at' });
    res = await admin('GET', `keys/${key.id}`);
    assert.equal(res.json.status, 'active');
  });

  it('holds a tenant-admin to its tenant\'s limits and its own models', async () => {
    const { tenant, ta } = await tenantWithAdmin();
    const asTa = (method, p, body) => admin(method, p, { body, key: ta.key });

    // Within the ceilings: allowed, values equal to the tenant's included.
    let res = await asTa('POST', 'keys', { name: `ok-${nonce()}`, role: 'developer', rpm: 100,
                                           models: ['gpt-4o-mini'],
                                           limits: { rpm: 100, models: { 'gpt-4o-mini': { rpm: 50 } } } });
    assert.equal(res.status, 201, res.text);
    const shared = res.json;
    res = await asTa('PATCH', `keys/${shared.id}`, { limits: { rpm: 20, tpm: 10000,
                                                               budget: { usd: 50 } } });
    assert.equal(res.status, 200, res.text);

    // Above them: 403 limit_above_tenant naming the field, and nothing changes.
    const above = [
      ['POST', 'keys', { name: 'x', role: 'developer', rpm: 101 }, 'rpm'],
      ['PATCH', `keys/${ta.id}`, { rpm: 100000 }, 'rpm'],
      ['PATCH', `keys/${ta.id}`, { limits: { tpm: 10001 } }, 'limits.tpm'],
      ['PATCH', `keys/${ta.id}`, { budget_usd: 51 }, 'budget_usd'],
      ['PATCH', `keys/${ta.id}`, { limits: { models: { 'gpt-4o-mini': { rpm: 51 } } } },
       'limits.models.gpt-4o-mini.rpm'],
      ['PATCH', `keys/${shared.id}`, { limits: { models: { 'other-model': { rpm: 101 } } } },
       'limits.models.other-model.rpm'],
      ['PATCH', `keys/${ta.id}`, { models: ['gpt-4o-mini', 'gpt-4o'] }, 'models'],
      ['PATCH', `keys/${ta.id}`, { models: null }, 'models'],
      ['POST', 'keys', { name: 'y', role: 'developer', models: ['gpt-4o'] }, 'models'],
    ];
    for (const [method, p, body, param] of above) {
      res = await asTa(method, p, body);
      assertError(res, { status: 403, type: 'permission_error', code: 'limit_above_tenant', param });
    }
    const own = await admin('GET', `keys/${ta.id}`);
    assert.equal(own.json.rpm, 100);
    assert.deepEqual(own.json.models, ['gpt-4o-mini']);

    // The tenant's own limits are not a tenant-admin's to change.
    res = await asTa('PATCH', `tenants/${tenant.id}`, { limits: { rpm: 100000 } });
    assertError(res, { status: 403, code: 'permission_denied' });
    const t = await admin('GET', `tenants/${tenant.id}`);
    assert.deepEqual(t.json.limits, TENANT_LIMITS);

    // An admin may set anything.
    res = await admin('PATCH', `keys/${ta.id}`, { body: { rpm: 100000, models: null } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.rpm, 100000);
  });

  it('carries a PATCH of a key\'s limits to the data plane within seconds', async () => {
    const tenant = await createTenant();
    const key = await createKey({ tenant_id: tenant.id, role: 'developer', limits: { rpm: 1000 } });
    for (let i = 0; i < 2; i++) {
      const res = await gw.chat(`warm ${nonce()}`, { key: key.key });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-ratelimit-limit'), '1000');
    }
    const res = await admin('PATCH', `keys/${key.id}`, { body: { limits: { rpm: 2 } } });
    assert.equal(res.status, 200, res.text);
    let last = null;
    const limited = await eventually(async () => {
      last = await gw.chat(`after ${nonce()}`, { key: key.key });
      return last.status === 429;
    }, PROPAGATION_MS, 100);
    assert.ok(limited, `still ${last.status} after the limit fell to 2 rpm: ${last.text.slice(0, 300)}`);
    assertError(last, { status: 429, type: 'rate_limit_error' });
    assert.equal(last.headers.get('x-ratelimit-limit'), '2');
    assert.ok(Number(last.headers.get('retry-after')) >= 1);
  });

  describe('GET rate-limits', () => {
    it('checks its target: 400 for both, 403 without ratelimits:read, 404 outside the scope', async () => {
      const { tenant, ta } = await tenantWithAdmin();
      const other = await createTenant();
      const foreign = await createKey({ tenant_id: other.id, role: 'developer' });
      const limited = await createKey({ tenant_id: tenant.id, role: 'no-limits' });
      const get = (query, key = ta.key) => admin('GET', `rate-limits${query}`, { key });

      assertError(await get(`?key_id=${ta.id}&tenant_id=${tenant.id}`),
                  { status: 400, code: 'invalid_field', param: 'tenant_id' });
      assertError(await get('?colour=red'), { status: 400, code: 'invalid_field', param: 'colour' });
      assertError(await get(`?key_id=${ta.id}`, limited.key),
                  { status: 403, type: 'permission_error', code: 'permission_denied' });
      assertError(await get(`?tenant_id=${tenant.id}`, limited.key),
                  { status: 403, code: 'permission_denied' });
      assertError(await get(`?key_id=${foreign.id}`), { status: 404, code: 'not_found' });
      assertError(await get(`?tenant_id=${other.id}`), { status: 404, code: 'not_found' });
      assertError(await get('?key_id=not-a-uuid'), { status: 404, code: 'not_found' });
      assertError(await get(`?key_id=${ta.id}`, 'sk-not-a-key'), { status: 401 });
    });

    // The rate-limit owner writes the answer (limits.md 7); the admin side
    // is checked above and in the admin selftest (the envelope it hands on).
    it('answers the caller\'s, a key\'s and a tenant\'s limits as the owner counts them',
       async () => {
         const { tenant, ta } = await tenantWithAdmin();
         const chat = await gw.chat(`count ${nonce()}`, { key: ta.key });
         assert.equal(chat.status, 200, chat.text);
         const find = (limits, kind) => limits.find((l) => l.kind === kind);
         for (const query of ['', `?key_id=${ta.id}`, `?tenant_id=${tenant.id}`]) {
           const res = await admin('GET', `rate-limits${query}`, { key: ta.key });
           assert.equal(res.status, 200, `${query}: ${res.status} ${res.text.slice(0, 300)}`);
           checkSchema(openapi.components.schemas.RateLimits, res.json, `GET rate-limits${query}`);
           const body = JSON.stringify(res.json);
           assert.equal(res.json.tenant.id, tenant.id, body);
           const rpm = find(res.json.tenant.limits, 'rpm');
           assert.ok(rpm, body);
           assert.equal(rpm.limit, TENANT_LIMITS.rpm, body);
           assert.ok(rpm.used >= 1 && rpm.remaining === rpm.limit - rpm.used, JSON.stringify(rpm));
           assert.ok(rpm.reset > Date.now() / 1000 - 1 && rpm.reset <= Date.now() / 1000 + 61,
                     JSON.stringify(rpm));
           const modelRpm = find(res.json.models['gpt-4o-mini']?.tenant ?? [], 'rpm');
           assert.equal(modelRpm?.limit, 50, body);
           assert.ok(modelRpm.used >= 1, body);
           const budget = find(res.json.tenant.limits, 'budget');
           assert.equal(budget?.limit, TENANT_LIMITS.budget.usd, body);
           assert.equal(budget.period, 'month', body);
           if (query === `?tenant_id=${tenant.id}`) {
             assert.equal(res.json.key.id, null, body);
             assert.deepEqual(res.json.key.limits, [], `a tenant's report has no key: ${body}`);
           } else {
             assert.equal(res.json.key.id, ta.id, body);
             const own = find(res.json.key.limits, 'rpm');
             assert.equal(own?.limit, 100, body);
             assert.ok(own.used >= 1, body);
           }
         }
       });
  });
});

describe('limits in the config file', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      mode: 'run', name: 'limits-config',
      config: {
        auth: { keys: [{ name: 'capped', tenant: 'acme', role: 'developer', limits: { rpm: 2 } },
                       { name: 'plain', tenant: 'acme', role: 'developer', rpm: 3 }] },
        ratelimit: { default: { rpm: 500 }, tenants: [{ name: 'acme', limits: { rpm: 1000 } }],
                     default_max_tokens: 2048, settle_grace_ms: 4000, snapshot_ms: 500 },
      },
    });
  }, { timeout: 60000 });
  after(async () => { if (gw) await gw.stop(); });

  it('limits a config key by its limits, and keeps rpm working', async () => {
    for (const [name, limit] of [['capped', 2], ['plain', 3]]) {
      const statuses = [];
      for (let i = 0; i <= limit; i++) {
        const res = await gw.chat(`cfg ${nonce()}`, { key: gw.key(name) });
        statuses.push(res.status);
        if (res.status === 200) assert.equal(res.headers.get('x-ratelimit-limit'), String(limit));
      }
      assert.deepEqual(statuses, [...Array(limit).fill(200), 429], name);
    }
  });

  it('refuses invalid limits in the file, naming the line and the member', async () => {
    const file = writeConfig('limits-bad.yaml', [
      'auth:',
      '  keys:',
      '    - name: k',
      '      key: sk-limits-bad-0123456789',
      '      tenant: acme',
      '      limits:',
      '        models:',
      '          gpt-4o: {rpm: 0}',
      '',
    ].join('\n'));
    const proc = spawnProcess('limits-bad-config', ['run', '--config', file], { splitStderr: true });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await proc.done;
    clearTimeout(timer);
    const log = fs.readFileSync(proc.stderrFile, 'utf8');
    assert.equal(proc.signal, null, `aigw did not exit by itself:\n${log}`);
    assert.notEqual(proc.exitCode, 0, `aigw exited 0 with bad limits:\n${log}`);
    assert.match(log, /limits-bad\.yaml:7: auth\.keys\[0\]\.limits: .*limits\.models\.gpt-4o\.rpm/,
                 log);
    assert.ok(!log.includes('sk-limits-bad'), 'the key reached the log');
  });
});
