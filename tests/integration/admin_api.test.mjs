// The admin API (/api/v1/admin) against a real PostgreSQL, the way an
// operator's script drives it: tenants and keys created over HTTP and used on
// the data plane, auth/me, tenant isolation and role limits, expiry,
// revocation and rotation, secrets never stored, exact round trips of hostile
// names, errors naming their field, pagination, the audit log, and every
// operation of schemas/openapi.yaml answering as the spec says.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database for this file; without it, a private cluster is
// started (pgtest.mjs freshDatabase).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import {
  assert, after, before, describe, it, SRC, startGateway, assertError, eventually,
  freePort, spawnProcess, waitFor, startMock, request, nonce, writeConfig,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const SECRET_RE = /^sk-aigw-[0-9a-f]{48}$/;
// How long a key change may take to reach the auth stage (LISTEN/NOTIFY).
const PROPAGATION_MS = 3000;

describe('admin API', () => {
  let db;
  let gw;
  const secrets = [];          // every secret this file saw: none may be stored

  before(async () => {
    db = await freshDatabase('aigw_admin');
    migrate(db.url);
    gw = await startGateway({ mode: 'run', name: 'admin', env: { DATABASE_URL: db.url } });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  // One admin call; KEY defaults to the master key.
  const admin = (method, p, { body, key } = {}) =>
    gw.fetch(`/api/v1/admin/${p}`, { method, body, ...(key ? { key } : {}) });

  async function createTenant(name = `tenant-${nonce()}`, extra = {}) {
    const res = await admin('POST', 'tenants', { body: { name, ...extra } });
    assert.equal(res.status, 201, res.text);
    return res.json;
  }

  async function createKey(body, key) {
    const res = await admin('POST', 'keys', { body: { name: `key-${nonce()}`, ...body }, key });
    assert.equal(res.status, 201, res.text);
    assert.match(res.json.key, SECRET_RE);
    secrets.push(res.json.key);
    return res.json;
  }

  // Poll until KEY's chat answers STATUS (auth caches keys; changes reach it
  // by NOTIFY).
  async function chatStatusBecomes(key, status) {
    let last = null;
    const ok = await eventually(async () => {
      last = await gw.chat(`ping ${nonce()}`, { key });
      return last.status === status;
    }, PROPAGATION_MS, 100);
    assert.ok(ok, `expected ${status}, still ${last.status}: ${last.text.slice(0, 300)}`);
    return last;
  }

  it('creates a tenant and a key over the API, and the key calls a model', async () => {
    const tenant = await createTenant();
    assert.match(tenant.id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(tenant.created_at)), tenant.created_at);
    const key = await createKey({ tenant_id: tenant.id, role: 'developer', rpm: 100,
                                  models: ['gpt-4o-mini'], budget_usd: 12.5 });
    assert.equal(key.prefix, key.key.slice(0, 12));
    assert.equal(key.tenant_id, tenant.id);
    assert.equal(key.role, 'developer');
    assert.equal(key.rpm, 100);
    assert.deepEqual(key.models, ['gpt-4o-mini']);
    assert.equal(key.budget_usd, 12.5);
    const chat = await gw.chat('hello from a new key', { key: key.key });
    assert.equal(chat.status, 200, chat.text);
    // The secret is shown once: never on read.
    const read = await admin('GET', `keys/${key.id}`);
    assert.equal(read.status, 200, read.text);
    assert.ok(!('key' in read.json), 'GET keys/{id} shows the secret');
    assert.ok(!read.text.includes(key.key));
    const list = await admin('GET', `keys?tenant_id=${tenant.id}`);
    assert.ok(!list.text.includes(key.key), 'GET keys shows a secret');
  });

  it('auth/me reports the principal, tenant, role, permissions and expiry', async () => {
    const me = await admin('GET', 'auth/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.principal.type, 'master');
    assert.equal(me.json.tenant.id, '*');
    assert.deepEqual(me.json.permissions, ['*']);
    assert.equal(me.json.expires_at, null);

    const tenant = await createTenant();
    const expires = new Date(Date.now() + 86400000);
    expires.setUTCMilliseconds(0);
    const key = await createKey({ tenant_id: tenant.id, role: 'tenant-admin', name: 'ops',
                                  expires_at: expires.toISOString() });
    const res = await admin('GET', 'auth/me', { key: key.key });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.principal, { type: 'key', id: key.id, name: 'ops' });
    assert.deepEqual(res.json.tenant, { id: tenant.id, name: tenant.name });
    assert.equal(res.json.role, 'tenant-admin');
    assert.ok(res.json.permissions.includes('keys:write'), res.text);
    assert.ok(!res.json.permissions.includes('*'), res.text);
    assert.equal(Date.parse(res.json.expires_at), expires.getTime());
  });

  it('a viewer key may read keys but gets 403 creating one', async () => {
    const tenant = await createTenant();
    const viewer = await createKey({ tenant_id: tenant.id, role: 'viewer' });
    const list = await admin('GET', 'keys', { key: viewer.key });
    assert.equal(list.status, 200, list.text);
    const res = await admin('POST', 'keys', { key: viewer.key,
                                              body: { name: 'nope', role: 'viewer' } });
    assertError(res, { status: 403, type: 'permission_error', code: 'permission_denied' });
  });

  it('a tenant-admin sees and touches only its own tenant, and grants no more than it holds', async () => {
    const a = await createTenant();
    const b = await createTenant();
    const adminA = await createKey({ tenant_id: a.id, role: 'tenant-admin' });
    const devA = await createKey({ tenant_id: a.id, role: 'developer' });
    const devB = await createKey({ tenant_id: b.id, role: 'developer' });
    const as = { key: adminA.key };

    const list = await admin('GET', 'keys?limit=200', as);
    assert.equal(list.status, 200, list.text);
    const ids = list.json.data.map((k) => k.id);
    assert.ok(ids.includes(devA.id) && ids.includes(adminA.id), list.text);
    assert.ok(!ids.includes(devB.id), 'another tenant\'s key is listed');
    assert.ok(list.json.data.every((k) => k.tenant_id === a.id), list.text);
    const filtered = await admin('GET', `keys?tenant_id=${b.id}`, as);
    assert.equal(filtered.status, 200, filtered.text);
    assert.deepEqual(filtered.json.data, []);

    assertError(await admin('GET', `keys/${devB.id}`, as), { status: 404, code: 'not_found' });
    assertError(await admin('PATCH', `keys/${devB.id}`, { ...as, body: { name: 'x' } }),
                { status: 404 });
    assertError(await admin('POST', `keys/${devB.id}/rotate`, as), { status: 404 });
    assertError(await admin('DELETE', `keys/${devB.id}`, as), { status: 404 });
    assertError(await admin('GET', `tenants/${b.id}`, as), { status: 404 });
    const tenants = await admin('GET', 'tenants', as);
    assert.deepEqual(tenants.json.data.map((t) => t.id), [a.id]);

    assertError(await admin('POST', 'keys', { ...as, body: { tenant_id: b.id, name: 'x',
                                                             role: 'developer' } }),
                { status: 403, type: 'permission_error' });
    assertError(await admin('POST', 'keys', { ...as, body: { name: 'x', role: 'admin' } }),
                { status: 403, type: 'permission_error' });
    assertError(await admin('PATCH', `keys/${devA.id}`, { ...as, body: { role: 'admin' } }),
                { status: 403, type: 'permission_error' });
    assertError(await admin('POST', 'tenants', { ...as, body: { name: `x-${nonce()}` } }),
                { status: 403, type: 'permission_error' });
    // Within its tenant and its rights, it works; tenant_id defaults to its own.
    const own = await createKey({ role: 'viewer' }, adminA.key);
    assert.equal(own.tenant_id, a.id);
    const patched = await admin('PATCH', `keys/${devA.id}`, { ...as, body: { rpm: 7 } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.rpm, 7);
  });

  it('an expired key and a revoked key get 401', async () => {
    const tenant = await createTenant();
    // A key cannot be born expired (400); one that expires in a moment
    // shows how an expired key is answered.
    const past = new Date(Date.now() - 60000).toISOString();
    assertError(await admin('POST', 'keys', { body: { tenant_id: tenant.id, name: 'born-expired',
                                                      role: 'developer', expires_at: past } }),
                { status: 400, code: 'invalid_field', param: 'expires_at' });
    const expired = await createKey({ tenant_id: tenant.id, role: 'developer',
                                      expires_at: new Date(Date.now() + 1500).toISOString() });
    await chatStatusBecomes(expired.key, 401);
    assert.equal((await admin('GET', `keys/${expired.id}`)).json.status, 'expired');
    assertError(await gw.chat('x', { key: expired.key }), { status: 401 });
    assertError(await admin('GET', 'auth/me', { key: expired.key }), { status: 401 });

    const live = await createKey({ tenant_id: tenant.id, role: 'developer' });
    assert.equal((await gw.chat('before revoke', { key: live.key })).status, 200);
    const revoked = await admin('PATCH', `keys/${live.id}`, { body: { revoked: true } });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.revoked, true);
    assert.equal(revoked.json.status, 'revoked');
    assert.ok(revoked.json.revoked_at);
    const res = await chatStatusBecomes(live.key, 401);
    assertError(res, { status: 401, type: 'authentication_error' });
    // Revocation is permanent.
    assertError(await admin('PATCH', `keys/${live.id}`, { body: { revoked: false } }),
                { status: 400, param: 'revoked' });
    assertError(await admin('POST', `keys/${live.id}/rotate`), { status: 409, code: 'conflict' });
    const list = await admin('GET', `keys?tenant_id=${tenant.id}&revoked=true`);
    assert.deepEqual(list.json.data.map((k) => k.id), [live.id]);
  });

  it('rotation: the old secret gets 401, the new one 200', async () => {
    const tenant = await createTenant();
    const key = await createKey({ tenant_id: tenant.id, role: 'developer' });
    assert.equal((await gw.chat('before rotate', { key: key.key })).status, 200);
    const res = await admin('POST', `keys/${key.id}/rotate`);
    assert.equal(res.status, 200, res.text);
    assert.match(res.json.key, SECRET_RE);
    secrets.push(res.json.key);
    assert.notEqual(res.json.key, key.key);
    assert.equal(res.json.id, key.id);
    assert.equal(res.json.prefix, res.json.key.slice(0, 12));
    assert.ok(res.json.rotated_at);
    await chatStatusBecomes(key.key, 401);
    const fresh = await gw.chat('after rotate', { key: res.json.key });
    assert.equal(fresh.status, 200, fresh.text);
  });

  it('stores names full of quotes, SQL and Unicode exactly, and finds them by name', async () => {
    const names = [
      "Robert'); DROP TABLE tenants; --",
      '"double" \'single\' `back` \\ back\\slash $1 %s %n {{x}}',
      'emoji 🚀 漢字 ünïcödé Ωμέγα עברית العربية',
      "tab\there, newline\nthere, bell\u0007, e\u0301 (combining)",
      '  leading and trailing spaces  ',
      '漢'.repeat(200),
      "' OR '1'='1",
    ];
    for (const name of names) {
      const tenant = await createTenant(name, { metadata: { note: name, nested: { n: [name] } } });
      assert.equal(tenant.name, name);
      const read = await admin('GET', `tenants/${tenant.id}`);
      assert.equal(read.json.name, name);
      assert.deepEqual(read.json.metadata, { note: name, nested: { n: [name] } });
      const found = await admin('GET', `tenants?name=${encodeURIComponent(name)}`);
      assert.equal(found.status, 200, found.text);
      assert.deepEqual(found.json.data.map((t) => t.id), [tenant.id], `by name: ${name}`);
      const key = await createKey({ tenant_id: tenant.id, role: 'viewer', name,
                                    models: [name.slice(0, 200)] });
      assert.equal(key.name, name);
      const byName = await admin('GET', `keys?name=${encodeURIComponent(name)}&tenant_id=${tenant.id}`);
      assert.deepEqual(byName.json.data.map((k) => k.name), [name]);
      assert.deepEqual(byName.json.data[0].models, [name.slice(0, 200)]);
    }
    // The tables are all still there.
    assert.equal(db.sql('SELECT count (*) FROM roles').trim(), '4');
  });

  it('answers 400 naming the offending field', async () => {
    const tenant = await createTenant();
    const good = { tenant_id: tenant.id, name: 'k', role: 'developer' };
    const cases = [
      [{ ...good, tenant_id: 'not-a-uuid' }, 'invalid_field', 'tenant_id'],
      [{ ...good, tenant_id: crypto.randomUUID() }, 'invalid_field', 'tenant_id'],
      [{ ...good, role: 'no-such-role' }, 'invalid_field', 'role'],
      [{ ...good, role: 'Bad Role!' }, 'invalid_field', 'role'],
      [{ ...good, expires_at: '31/12/2030' }, 'invalid_field', 'expires_at'],
      [{ ...good, expires_at: '2030-02-30T00:00:00Z' }, 'invalid_field', 'expires_at'],
      [{ ...good, rpm: 0 }, 'invalid_field', 'rpm'],
      [{ ...good, rpm: -5 }, 'invalid_field', 'rpm'],
      [{ ...good, tpm: 1.5 }, 'invalid_field', 'tpm'],
      [{ ...good, budget_usd: -1 }, 'invalid_field', 'budget_usd'],
      [{ ...good, models: 'gpt-4o' }, 'invalid_field', 'models'],
      [{ ...good, metadata: [1] }, 'invalid_field', 'metadata'],
      [{ ...good, name: '' }, 'invalid_field', 'name'],
      [{ ...good, name: 'x'.repeat(201) }, 'invalid_field', 'name'],
      [{ ...good, colour: 'red' }, 'invalid_field', 'colour'],
      [{ tenant_id: tenant.id, role: 'developer' }, 'missing_field', 'name'],
      [{ tenant_id: tenant.id, name: 'k' }, 'missing_field', 'role'],
      [{ name: 'k', role: 'developer' }, 'missing_field', 'tenant_id'],
    ];
    for (const [body, code, param] of cases) {
      const res = await admin('POST', 'keys', { body });
      assertError(res, { status: 400, type: 'invalid_request_error', code, param });
    }
    assertError(await admin('POST', 'keys', { body: '{"name": ' }),
                { status: 400, code: 'invalid_json' });
    assertError(await admin('POST', 'tenants', { body: '[]' }), { status: 400, code: 'invalid_json' });
    assertError(await admin('POST', 'tenants', { body: { name: 'x'.repeat(201) } }),
                { status: 400, param: 'name' });
    assertError(await admin('PATCH', `tenants/${tenant.id}`, { body: {} }),
                { status: 400, code: 'missing_field' });
    assertError(await admin('GET', 'keys?limit=0'), { status: 400, param: 'limit' });
    assertError(await admin('GET', 'keys?limit=201'), { status: 400, param: 'limit' });
    assertError(await admin('GET', 'keys?cursor=garbage'), { status: 400, param: 'cursor' });
    assertError(await admin('GET', 'keys?revoked=maybe'), { status: 400, param: 'revoked' });
    assertError(await admin('GET', 'keys?tenant_id=x'), { status: 400, param: 'tenant_id' });
    assertError(await admin('GET', 'keys?colour=red'), { status: 400, param: 'colour' });
    // Nothing was created by any of them.
    const list = await admin('GET', `keys?tenant_id=${tenant.id}`);
    assert.deepEqual(list.json.data, []);
  });

  it('answers 404 for unknown paths and objects, 405 for wrong methods, 409 for a taken name', async () => {
    assertError(await admin('GET', 'no-such-thing'), { status: 404, type: 'not_found_error',
                                                       code: 'not_found' });
    assertError(await admin('GET', 'keys/1/2/3'), { status: 404, code: 'not_found' });
    assertError(await admin('GET', 'keys/not-a-uuid'), { status: 404, code: 'not_found' });
    assertError(await admin('GET', `keys/${crypto.randomUUID()}`), { status: 404, code: 'not_found' });
    assertError(await admin('DELETE', `tenants/${crypto.randomUUID()}`), { status: 404 });
    // RFC 9110: a 405 names the methods its path takes.
    for (const [method, path, allow] of [['PUT', 'tenants', 'GET, HEAD, POST'],
                                         ['DELETE', 'keys', 'GET, HEAD, POST'],
                                         ['GET', `keys/${crypto.randomUUID()}/rotate`, 'POST'],
                                         ['POST', `tenants/${crypto.randomUUID()}`,
                                          'GET, HEAD, PATCH, DELETE']]) {
      const res = await admin(method, path, method === 'PUT' ? { body: {} } : {});
      assertError(res, { status: 405, code: 'method_not_allowed' });
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
    }
    const name = `taken-${nonce()}`;
    const first = await createTenant(name);
    assertError(await admin('POST', 'tenants', { body: { name } }),
                { status: 409, type: 'conflict_error', code: 'conflict' });
    const other = await createTenant();
    assertError(await admin('PATCH', `tenants/${other.id}`, { body: { name } }),
                { status: 409, code: 'conflict' });
    // Deleting a tenant deletes its keys.
    const key = await createKey({ tenant_id: first.id, role: 'developer' });
    const gone = await admin('DELETE', `tenants/${first.id}`);
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(gone.json, { id: first.id, deleted: true });
    assertError(await admin('GET', `keys/${key.id}`), { status: 404 });
    assertError(await admin('GET', `tenants/${first.id}`), { status: 404 });
  });

  it('pagination walks every page once, in creation order', async () => {
    const tenant = await createTenant();
    const created = [];
    for (let i = 0; i < 23; i++) {
      created.push((await createKey({ tenant_id: tenant.id, role: 'viewer', name: `page-${i}` })).id);
    }
    const seen = [];
    const sizes = [];
    let cursor = null;
    for (let pages = 0; pages < 20; pages++) {
      const q = `keys?tenant_id=${tenant.id}&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await admin('GET', q);
      assert.equal(res.status, 200, res.text);
      sizes.push(res.json.data.length);
      seen.push(...res.json.data.map((k) => k.id));
      cursor = res.json.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
    assert.equal(new Set(seen).size, seen.length, 'a key appeared twice');
    assert.deepEqual(seen, created, 'pages are not in creation order');
    // Tenants too, one at a time.
    const tenants = [];
    cursor = null;
    for (let pages = 0; pages < 1000; pages++) {
      const res = await admin('GET', `tenants?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200, res.text);
      tenants.push(...res.json.data.map((t) => t.id));
      cursor = res.json.next_cursor;
      if (cursor === null) break;
    }
    assert.equal(new Set(tenants).size, tenants.length);
    const all = await admin('GET', 'tenants?limit=200');
    assert.deepEqual(tenants, all.json.data.map((t) => t.id));
  });

  it('writes an audit row for every change, with no secret in it', async () => {
    const tenant = await createTenant();
    const key = await createKey({ tenant_id: tenant.id, role: 'developer' });
    const rotated = await admin('POST', `keys/${key.id}/rotate`);
    secrets.push(rotated.json.key);
    await admin('PATCH', `keys/${key.id}`, { body: { name: 'renamed' } });
    await admin('PATCH', `keys/${key.id}`, { body: { revoked: true } });
    await admin('DELETE', `keys/${key.id}`);
    const rows = db.sql(`SELECT action || '|' || actor_type || '|' || actor_id || '|' ||
                                coalesce (before::text, '') || '|' || coalesce (after::text, '')
                         FROM audit_log WHERE target_id = '${key.id}' ORDER BY id`).trim().split('\n');
    assert.deepEqual(rows.map((r) => r.split('|')[0]),
                     ['keys.create', 'keys.rotate', 'keys.update', 'keys.revoke', 'keys.delete']);
    for (const row of rows) {
      assert.equal(row.split('|')[1], 'master', row);
      assert.ok(!row.includes('secret_sha256'), `audit row holds the hash: ${row}`);
    }
    assert.ok(rows[2].includes('renamed'));
    const tenantRows = db.sql(`SELECT action FROM audit_log WHERE target_id = '${tenant.id}'`);
    assert.match(tenantRows, /tenants\.create/);

    // Over the API: newest first, paged, and a tenant-admin sees its own tenant only.
    const res = await admin('GET', `audit?target_id=${key.id}&limit=2`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.data.map((e) => e.action), ['keys.delete', 'keys.revoke']);
    const rest = await admin('GET', `audit?target_id=${key.id}&limit=2&cursor=${res.json.next_cursor}`);
    assert.deepEqual(rest.json.data.map((e) => e.action), ['keys.update', 'keys.rotate']);
    assert.ok(!res.text.includes('secret_sha256') && !rest.text.includes('secret_sha256'));
    const other = await createTenant();
    const otherAdmin = await createKey({ tenant_id: other.id, role: 'tenant-admin' });
    const scoped = await admin('GET', 'audit?limit=200', { key: otherAdmin.key });
    assert.equal(scoped.status, 200, scoped.text);
    assert.ok(scoped.json.data.length >= 1, scoped.text);
    assert.ok(scoped.json.data.every((e) => e.tenant_id === other.id), scoped.text);
    const viewer = await createKey({ tenant_id: other.id, role: 'viewer' });
    assertError(await admin('GET', 'audit', { key: viewer.key }), { status: 403 });
    assertError(await admin('GET', `audit?cursor=${encodeURIComponent(rest.json.next_cursor ?? 'x')}x`),
                { status: 400, param: 'cursor' });
  });

  it('keeps no plaintext secret in any table', () => {
    assert.ok(secrets.length >= 5, `only ${secrets.length} secrets seen`);
    const dump = db.dump();
    assert.ok(dump.includes('api_keys'), 'the dump holds no api_keys data');
    for (const secret of secrets) {
      assert.ok(!dump.includes(secret), 'a secret is stored in plain text');
      assert.ok(!dump.includes(secret.slice(8)), 'a secret\'s random part is stored');
    }
  });

  it('answers every operation of schemas/openapi.yaml as the spec says', async () => {
    const spec = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));
    const resolve = (node) => {
      let n = node;
      while (n && n.$ref) {
        n = n.$ref.replace(/^#\//, '').split('/').reduce((o, k) => o[k], spec);
      }
      return n;
    };
    // Required properties of a schema, allOf merged.
    const required = (schema) => {
      const s = resolve(schema);
      if (!s) return [];
      return [...(s.required || []), ...(s.allOf || []).flatMap(required)];
    };
    // Objects for the {id} paths, each used by one path only.
    const tenant = await createTenant();
    const forPath = {
      '/tenants/{id}': (await createTenant()).id,
      '/keys/{id}': (await createKey({ tenant_id: tenant.id, role: 'developer' })).id,
      '/keys/{id}/rotate': (await createKey({ tenant_id: tenant.id, role: 'developer' })).id,
    };
    const model = (name) => ({ name, deployments: [{ provider: 'openai', model: 'gpt-4o-mini' }] });
    const created = await admin('POST', 'models', { body: model(`spec-model-${nonce()}`) });
    assert.equal(created.status, 201, created.text);
    forPath['/models/{id}'] = created.json.id;
    const policy = await admin('POST', 'guardrails/policies', {
      body: { name: `spec-policy-${nonce()}`, guardrails: [{ detector: 'pii', action: 'flag' }] },
    });
    assert.equal(policy.status, 201, policy.text);
    forPath['/guardrails/policies/{name}'] = policy.json.name;
    const bodies = {
      'POST /tenants': () => ({ name: `spec-${nonce()}` }),
      'PATCH /tenants/{id}': () => ({ name: `spec-${nonce()}` }),
      'POST /keys': () => ({ tenant_id: tenant.id, name: 'spec', role: 'viewer' }),
      'PATCH /keys/{id}': () => ({ name: 'spec-renamed' }),
      'POST /models': () => model(`spec-model-${nonce()}`),
      'PATCH /models/{id}': () => ({ name: `spec-model-${nonce()}`, strategy: 'least_latency' }),
      'POST /guardrails/test': () => ({ text: 'mail alice@example.com', policy: 'default' }),
      'POST /guardrails/policies': () => ({ name: `spec-policy-${nonce()}`,
                                             guardrails: [{ detector: 'secrets', action: 'block' }] }),
      'PATCH /guardrails/policies/{name}': () => ({ description: 'spec' }),
    };
    const order = { get: 0, post: 1, patch: 2, put: 3, delete: 4 };
    const operations = [];
    for (const [p, item] of Object.entries(spec.paths)) {
      // Data-plane paths (servers of their own) have suites of their own.
      if (item.servers) continue;
      for (const method of Object.keys(item)) {
        if (method in order) operations.push([p, method]);
      }
    }
    operations.sort((x, y) => order[x[1]] - order[y[1]]);
    assert.ok(operations.length >= 14, `only ${operations.length} operations in the spec`);
    for (const [p, method] of operations) {
      // The rate-limit owner answers GET /rate-limits: limits_admin checks it.
      if (p === '/rate-limits') continue;
      const op = spec.paths[p][method];
      const url = p.replace(/\{(id|name)\}/, forPath[p] || crypto.randomUUID()).replace(/^\//, '');
      const make = bodies[`${method.toUpperCase()} ${p}`];
      const res = await admin(method.toUpperCase(), url, make ? { body: make() } : {});
      const where = `${method.toUpperCase()} ${p}: ${res.status} ${res.text.slice(0, 300)}`;
      assert.ok(String(res.status) in op.responses, `status not in the spec: ${where}`);
      assert.ok(res.status < 300, `expected success: ${where}`);
      const content = resolve(op.responses[String(res.status)]).content?.['application/json'];
      if (content) {
        for (const prop of required(content.schema)) {
          assert.ok(res.json && prop in res.json, `missing required ${prop}: ${where}`);
        }
      }
      if (res.json?.key) secrets.push(res.json.key);
      // Errors keep the spec's error shape too.
      const bad = await request(gw.url, `/api/v1/admin/${url}`, { method: method.toUpperCase(),
                                                                 key: 'sk-not-a-key' });
      assert.ok(String(bad.status) in op.responses, `401 not in the spec for ${method} ${p}`);
      for (const prop of required(spec.components.schemas.Error.properties.error)) {
        assert.ok(prop in bad.json.error, `error.${prop} missing for ${method} ${p}`);
      }
    }
  });
});

// A server that accepts connections and never says a word: the worst kind
// of database outage. Returns { port, close() }.
async function blackHole() {
  const sockets = new Set();
  const server = net.createServer((socket) => { sockets.add(socket); socket.on('error', () => {}); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

for (const outage of ['refused', 'silent']) {
  describe(`admin API without its database (${outage})`, () => {
    let proc;
    let mock;
    let hole;
    let url;
    const masterKey = `sk-master-${nonce(16)}`;
    before(async () => {
      mock = await startMock({ name: `admin-${outage}-mock` });
      const port = await freePort();
      // Nothing listens on a free port; the black hole listens and is silent.
      hole = outage === 'silent' ? await blackHole() : null;
      const dbPort = hole ? hole.port : await freePort();
      url = `http://127.0.0.1:${port}`;
      // Few edge threads: start-up time grows with them.
      const config = writeConfig(`admin-${outage}.yaml`,
                                 { server: { host: '127.0.0.1', port, threads: 64 } });
      proc = spawnProcess(`admin-${outage}`, ['run', '--config', config], {
        env: { AIGW_PORT: String(port), AIGW_MASTER_KEY: masterKey,
               DATABASE_URL: `postgresql://postgres@127.0.0.1:${dbPort}/none`,
               OPENAI_BASE_URL: mock.baseURL, OPENAI_API_KEY: mock.apiKey },
      });
      // Not ready without the database: live is enough here.
      await waitFor(`${url}/healthz`, 200, 20000, { procs: [proc] });
    }, { timeout: 60000 });
    after(async () => {
      if (proc) await proc.stop();
      if (mock) await mock.stop();
      if (hole) hole.close();
    });

    it('answers 503 database_unavailable within the connect timeout, and auth/me still works', async () => {
      for (const p of ['tenants', 'keys', `keys/${crypto.randomUUID()}/rotate`]) {
        // The default connect timeout is 3 s: the answer comes before this
        // client gives up, never at the request's 120 s. How long it takes
        // is a figure for bench/deadlines.mjs, not an assertion.
        const res = await request(url, `/api/v1/admin/${p}`,
                                  { key: masterKey, method: p.endsWith('rotate') ? 'POST' : 'GET',
                                    timeoutMs: 15000 });
        assertError(res, { status: 503, code: 'database_unavailable' });
      }
      const me = await request(url, '/api/v1/admin/auth/me', { key: masterKey });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.principal.type, 'master');
    });
  });
}
