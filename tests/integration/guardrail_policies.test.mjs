// Guardrail policies in PostgreSQL through the admin API
// (/api/v1/admin/guardrails/policies), as an operator's script drives them:
// create, list (config, built-in, database), get, patch, delete, with the
// rows and audit rows that land in the database; compile errors naming the
// field in `param` without echoing a pattern; 409 for a binding another
// policy holds (database or config) and for a config policy's name;
// permissions (a viewer cannot write; a tenant-admin binds only its tenant
// and its keys); and a policy created over the API usable by
// guardrails/test within a second (the admin's guardset reloads on NOTIFY).
//
// Needs PostgreSQL: DATABASE_URL's server (tests/run.sh) or a private cluster
// (pgtest.mjs).
import fs from 'node:fs';
import {
  assert, after, before, describe, it, startGateway, assertError, eventually, nonce,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const SECRET_PATTERN = 'hunter2-[0-9]{4}-topsecret';
// Webhook header values: one the config loader expands from the
// environment, one written through the API.
const CONFIG_TOKEN = `cfgtok-${nonce(12)}`;
const DB_TOKEN = `dbtok-${nonce(12)}`;

describe('admin API: guardrail policies', () => {
  let db;
  let gw;
  const answers = [];

  before(async () => {
    db = await freshDatabase('aigw_grpol');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'grpol', env: { DATABASE_URL: db.url, GRPOL_HOOK_TOKEN: CONFIG_TOKEN },
      config: {
        guardrail: {
          policies: {
            cfg: {
              guardrails: [{ detector: 'pii', action: 'block', rules: ['email'] }],
            },
            hooked: {
              guardrails: [{ detector: 'webhook', action: 'block', url: 'http://127.0.0.1:9/check',
                             headers: { Authorization: 'Bearer ${GRPOL_HOOK_TOKEN}' } }],
            },
          },
        },
      },
    });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  async function admin(method, p, { body, key } = {}) {
    const res = await gw.fetch(`/api/v1/admin/${p}`, { method, body, ...(key ? { key } : {}) });
    answers.push(res.text);
    return res;
  }

  async function tenantWithKey(role) {
    const tenant = await admin('POST', 'tenants', { body: { name: `gp-${nonce()}` } });
    assert.equal(tenant.status, 201, tenant.text);
    const key = await admin('POST', 'keys', { body: { tenant_id: tenant.json.id, name: role, role } });
    assert.equal(key.status, 201, key.text);
    return { tenant: tenant.json.id, keyId: key.json.id, key: key.json.key };
  }

  const auditRows = (name) => db.sql(
    `SELECT action || '|' || target_type || '|' || coalesce (before->>'name', '') || '|'`
    + ` || coalesce (after->>'name', '') FROM audit_log WHERE target_id = '${name}' ORDER BY id`,
  ).trim().split('\n').filter(Boolean);

  const pii = (action) => ({ detector: 'pii', action });

  it('creates, reads, lists, patches and deletes a policy, with rows and audit', async () => {
    const name = `team-${nonce()}`;
    const created = await admin('POST', 'guardrails/policies', {
      body: { name, description: 'support team', guardrails: [pii('redact')],
              bindings: { models: [`model-${name}`] } },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.name, name);
    assert.equal(created.json.source, 'database');
    assert.equal(created.json.description, 'support team');
    assert.deepEqual(created.json.guardrails, [pii('redact')]);
    assert.deepEqual(created.json.bindings, { tenants: [], keys: [], models: [`model-${name}`] });
    assert.match(created.json.created_at, /^\d{4}-\d\d-\d\dT/);
    assert.match(created.json.created_by, /^master:/);

    const row = JSON.parse(db.sql(
      `SELECT json_build_object ('d', definition, 't', tenant_id) FROM guardrail_policies`
      + ` WHERE name = '${name}'`,
    ));
    assert.deepEqual(row.d.guardrails, [pii('redact')]);
    assert.equal(row.t, null);
    assert.equal(db.sql(`SELECT policy FROM guardrail_policy_bindings WHERE kind = 'models'`
                        + ` AND value = 'model-${name}'`).trim(), name);

    const got = await admin('GET', `guardrails/policies/${name}`);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json, created.json);

    const list = await admin('GET', 'guardrails/policies');
    assert.equal(list.status, 200, list.text);
    const sources = list.json.data.map((p) => [p.name, p.source]);
    assert.deepEqual(sources.slice(0, 3),
                     [['cfg', 'config'], ['hooked', 'config'], ['default', 'builtin']]);
    assert.ok(sources.some(([n, s]) => n === name && s === 'database'), list.text);
    assert.equal(list.json.next_cursor, null);

    const patched = await admin('PATCH', `guardrails/policies/${name}`, {
      body: { guardrails: [pii('block')], description: null },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.json.guardrails, [pii('block')]);
    assert.equal(patched.json.description, null);
    assert.deepEqual(patched.json.bindings.models, [`model-${name}`]);  // not given: kept

    const gone = await admin('DELETE', `guardrails/policies/${name}`);
    assert.equal(gone.status, 204, gone.text);
    assert.equal(gone.text, '');
    // RFC 9110 8.6: a 204 carries no Content-Length.
    assert.equal(gone.headers.get('content-length'), null);
    assert.equal(db.sql(`SELECT count (*) FROM guardrail_policies WHERE name = '${name}'`).trim(), '0');
    assert.equal(db.sql(`SELECT count (*) FROM guardrail_policy_bindings WHERE policy = '${name}'`)
      .trim(), '0');
    assertError(await admin('GET', `guardrails/policies/${name}`),
                { status: 404, type: 'not_found_error' });
    assertError(await admin('DELETE', `guardrails/policies/${name}`), { status: 404 });

    assert.deepEqual(auditRows(name), [
      `guardrails.create|guardrail_policy||${name}`,
      `guardrails.update|guardrail_policy|${name}|${name}`,
      `guardrails.delete|guardrail_policy|${name}|`,
    ]);
  });

  it('a bad definition is 400 naming the field, never the pattern', async () => {
    const cases = [
      [{ name: 'bad1', guardrails: [{ detector: 'pii', action: 'deny' }] }, 'guardrails[0].action'],
      [{ name: 'bad2', guardrails: [pii('block'), { detector: 'dlp', action: 'block' }] },
       'guardrails[1].detector'],
      [{ name: 'bad3', guardrails: [] }, 'guardrails'],
      [{ name: 'bad4', guardrails: [pii('block')], bindings: { keys: [''] } }, 'bindings.keys[0]'],
      [{ name: 'bad5', guardrails: [pii('block')], bindings: { users: ['x'] } }, 'bindings'],
      [{ name: 'bad6', guardrails: [pii('block')], extra: 1 }, 'extra'],
      [{ name: 'bad/7', guardrails: [pii('block')] }, 'name'],
      [{ name: 'none', guardrails: [pii('block')] }, 'name'],
    ];
    for (const [body, param] of cases) {
      assertError(await admin('POST', 'guardrails/policies', { body }),
                  { status: 400, type: 'invalid_request_error', param });
    }
    const res = await admin('POST', 'guardrails/policies', {
      body: { name: 'bad8', guardrails: [{ detector: 'patterns', action: 'block',
                                           patterns: [{ name: 'p', regex: `(${SECRET_PATTERN}` }] }] },
    });
    const e = assertError(res, { status: 400, type: 'invalid_request_error' });
    assert.equal(e.param, 'guardrails[0].patterns[0]');
    assert.ok(!res.text.includes('topsecret'), res.text);
    assertError(await admin('POST', 'guardrails/policies', { body: { guardrails: [pii('block')] } }),
                { status: 400, code: 'missing_field', param: 'name' });
    assert.equal(db.sql(`SELECT count (*) FROM guardrail_policies WHERE name LIKE 'bad%'`).trim(), '0');
  });

  it('409: a binding another policy holds, a config name, a config policy', async () => {
    const key = `key-${nonce()}`;
    const first = await admin('POST', 'guardrails/policies', {
      body: { name: `one-${nonce()}`, guardrails: [pii('flag')], bindings: { keys: [key] } },
    });
    assert.equal(first.status, 201, first.text);
    const second = `two-${nonce()}`;
    const e = assertError(await admin('POST', 'guardrails/policies', {
      body: { name: second, guardrails: [pii('flag')], bindings: { keys: ['other', key] } },
    }), { status: 409, code: 'conflict', param: 'bindings.keys' });
    assert.ok(e.message.includes(key) && e.message.includes(first.json.name), e.message);
    assert.equal(db.sql(`SELECT count (*) FROM guardrail_policies WHERE name = '${second}'`).trim(), '0');
    // The same through PATCH.
    const ok = await admin('POST', 'guardrails/policies', {
      body: { name: second, guardrails: [pii('flag')] },
    });
    assert.equal(ok.status, 201, ok.text);
    assertError(await admin('PATCH', `guardrails/policies/${second}`, {
      body: { bindings: { keys: [key] } },
    }), { status: 409, code: 'conflict', param: 'bindings.keys' });
    // A config policy's name, and the config policy itself.
    assertError(await admin('POST', 'guardrails/policies', {
      body: { name: 'cfg', guardrails: [pii('flag')] },
    }), { status: 409, code: 'conflict', param: 'name' });
    assertError(await admin('PATCH', 'guardrails/policies/cfg', { body: { guardrails: [pii('flag')] } }),
                { status: 409, code: 'conflict' });
    assertError(await admin('DELETE', 'guardrails/policies/cfg'), { status: 409, code: 'conflict' });
    const cfg = await admin('GET', 'guardrails/policies/cfg');
    assert.equal(cfg.status, 200, cfg.text);
    assert.equal(cfg.json.source, 'config');
    assert.equal(cfg.json.name, 'cfg');
  });

  it('permissions: a viewer cannot write; a tenant-admin binds only its tenant and keys', async () => {
    const viewer = await tenantWithKey('viewer');
    assertError(await admin('POST', 'guardrails/policies', {
      key: viewer.key, body: { name: `v-${nonce()}`, guardrails: [pii('flag')] },
    }), { status: 403, type: 'permission_error', message: /guardrails:write/ });
    assertError(await admin('GET', 'guardrails/policies', { key: viewer.key }),
                { status: 403, message: /guardrails:read/ });

    const ta = await tenantWithKey('tenant-admin');
    const other = await tenantWithKey('developer');
    const mine = `mine-${nonce()}`;
    const res = await admin('POST', 'guardrails/policies', {
      key: ta.key,
      body: { name: mine, guardrails: [pii('block')],
              bindings: { tenants: [ta.tenant], keys: [ta.keyId] } },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.tenant_id, ta.tenant);
    assert.deepEqual(res.json.bindings, { tenants: [ta.tenant], keys: [ta.keyId], models: [] });
    for (const [bindings, param] of [
      [{ tenants: [other.tenant] }, 'bindings.tenants[0]'],
      [{ keys: [ta.keyId, other.keyId] }, 'bindings.keys[1]'],
      [{ models: ['gpt-4o-mini'] }, 'bindings.models[0]'],
    ]) {
      assertError(await admin('POST', 'guardrails/policies', {
        key: ta.key, body: { name: `no-${nonce()}`, guardrails: [pii('block')], bindings },
      }), { status: 403, type: 'permission_error', param });
      assertError(await admin('PATCH', `guardrails/policies/${mine}`, {
        key: ta.key, body: { bindings },
      }), { status: 403, type: 'permission_error', param });
    }
    assertError(await admin('POST', 'guardrails/policies', {
      key: ta.key, body: { name: 'default', guardrails: [pii('block')] },
    }), { status: 403, param: 'name' });
    // A global policy is the tenant-admin's to read, not to change.
    const global = `global-${nonce()}`;
    assert.equal((await admin('POST', 'guardrails/policies', {
      body: { name: global, guardrails: [pii('flag')], bindings: { tenants: [other.tenant] } },
    })).status, 201);
    const seen = await admin('GET', `guardrails/policies/${global}`, { key: ta.key });
    assert.equal(seen.status, 200, seen.text);
    assert.deepEqual(seen.json.bindings.tenants, []);  // another tenant's binding is not shown
    assertError(await admin('DELETE', `guardrails/policies/${global}`, { key: ta.key }),
                { status: 403 });
    assert.equal((await admin('DELETE', `guardrails/policies/${mine}`, { key: ta.key })).status, 204);
    assert.deepEqual(auditRows(mine).map((r) => r.split('|')[0]),
                     ['guardrails.create', 'guardrails.delete']);
  });

  it('a policy created over the API is live in guardrails/test within a second', async () => {
    const name = `live-${nonce()}`;
    const text = 'order TCK-123456 for bob@example.com';
    const body = { name, guardrails: [{ detector: 'patterns', action: 'block',
                                        patterns: [{ name: 'ticket', regex: 'TCK-[0-9]{6}' }] }] };
    assertError(await admin('POST', 'guardrails/test', { body: { text, policy: name } }),
                { status: 404, code: 'policy_not_found' });
    const created = await admin('POST', 'guardrails/policies', { body });
    assert.equal(created.status, 201, created.text);
    let verdict;
    const live = await eventually(async () => {
      const res = await admin('POST', 'guardrails/test', { body: { text, policy: name } });
      verdict = res.json;
      return res.status === 200;
    }, 1000, 50);
    assert.ok(live, `not live within a second: ${JSON.stringify(verdict)}`);
    assert.equal(verdict.action, 'block');
    assert.deepEqual(verdict.triggered.map((t) => [t.guardrail, t.rule]), [['patterns', 'ticket']]);
    // A change is live too, then the delete.
    assert.equal((await admin('PATCH', `guardrails/policies/${name}`, {
      body: { guardrails: [pii('redact')] },
    })).status, 200);
    const changed = await eventually(async () => {
      const res = await admin('POST', 'guardrails/test', { body: { text, policy: name } });
      verdict = res.json;
      return res.status === 200 && res.json.action === 'redact';
    }, 1000, 50);
    assert.ok(changed, JSON.stringify(verdict));
    assert.equal(verdict.text, 'order TCK-123456 for [EMAIL]');
    assert.equal((await admin('DELETE', `guardrails/policies/${name}`)).status, 204);
    const removed = await eventually(async () => {
      const res = await admin('POST', 'guardrails/test', { body: { text, policy: name } });
      return res.status === 404;
    }, 1000, 50);
    assert.ok(removed);
  });

  it('guardrails/test serves a tenant-admin only the policies it may read', async () => {
    const a = await tenantWithKey('tenant-admin');
    const b = await tenantWithKey('tenant-admin');
    const theirs = `theirs-${nonce()}`;
    const global = `shared-${nonce()}`;
    const text = 'write to bob@example.com';
    for (const [name, key] of [[theirs, a.key], [global, undefined]]) {
      const res = await admin('POST', 'guardrails/policies',
                              { key, body: { name, guardrails: [pii('flag')] } });
      assert.equal(res.status, 201, res.text);
    }
    const test = (policy, key) => admin('POST', 'guardrails/test', { key, body: { text, policy } });
    // Its owner and a principal of every tenant test it, once live.
    assert.ok(await eventually(async () => (await test(theirs, a.key)).status === 200, 1000, 50));
    const mine = await test(theirs, a.key);
    assert.equal(mine.json.action, 'flag', mine.text);
    assert.equal((await test(theirs)).status, 200);
    // Another tenant's principal: as if it did not exist, as GET says.
    assertError(await admin('GET', `guardrails/policies/${theirs}`, { key: b.key }),
                { status: 404 });
    assertError(await test(theirs, b.key), { status: 404, code: 'policy_not_found',
                                             param: 'policy' });
    // Global, config and built-in policies are everyone's.
    for (const policy of [global, 'cfg', 'default']) {
      const res = await test(policy, b.key);
      assert.equal(res.status, 200, `${policy}: ${res.text}`);
    }
    for (const [name, key] of [[theirs, a.key], [global, undefined]]) {
      assert.equal((await admin('DELETE', `guardrails/policies/${name}`, { key })).status, 204);
    }
  });

  it('a database default replaces the built-in in the list and in guardrails/test', async () => {
    const res = await admin('POST', 'guardrails/policies', {
      body: { name: 'default', guardrails: [pii('flag')] },
    });
    assert.equal(res.status, 201, res.text);
    const list = await admin('GET', 'guardrails/policies');
    const defaults = list.json.data.filter((p) => p.name === 'default');
    assert.deepEqual(defaults.map((p) => p.source), ['database']);
    const ok = await eventually(async () => {
      const v = await admin('POST', 'guardrails/test', { body: { text: 'a@example.com' } });
      return v.status === 200 && v.json.action === 'flag';
    }, 1000, 50);
    assert.ok(ok);
    assert.equal((await admin('DELETE', 'guardrails/policies/default')).status, 204);
    const builtin = await admin('GET', 'guardrails/policies/default');
    assert.equal(builtin.json.source, 'builtin');
  });

  it('policies bound to a key and to a tenant apply on the chat path, live', async () => {
    const a = await tenantWithKey('developer');
    const b = await tenantWithKey('developer');
    const byKey = `bykey-${nonce()}`;
    const byTenant = `bytenant-${nonce()}`;
    const secret = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD';
    let res = await admin('POST', 'guardrails/policies', {
      body: { name: byKey, guardrails: [{ detector: 'secrets', action: 'block' }],
              bindings: { keys: [a.keyId] } } });
    assert.equal(res.status, 201, res.text);
    res = await admin('POST', 'guardrails/policies', {
      body: { name: byTenant, guardrails: [pii('redact')], bindings: { tenants: [b.tenant] } } });
    assert.equal(res.status, 201, res.text);
    // Every process (here the guardrail stage and the edge) reloads within a second.
    const blocked = await eventually(async () => {
      const r = await gw.chat(`use ${secret} ${nonce()}`, { key: a.key });
      return r.status === 400 ? r : null;
    }, 2000, 50);
    assert.ok(blocked, 'the key-bound policy never applied');
    assertError(blocked, { status: 400, type: 'guardrail_error', code: 'secrets',
                           message: new RegExp(`policy "${byKey}", input`) });
    const redacted = await eventually(async () => {
      const r = await gw.chat(`mail ann@example.com ${nonce()}`, { key: b.key });
      return r.headers.get('x-aigw-guardrail') === 'redact:pii:email' ? r : null;
    }, 2000, 50);
    assert.ok(redacted, 'the tenant-bound policy never applied');
    assert.match(redacted.json.choices[0].message.content, /mail \[EMAIL\]/);
    // Tenant b's key is not bound to the secrets policy.
    res = await gw.chat(`use ${secret} ${nonce()}`, { key: b.key });
    assert.equal(res.status, 200, res.text);
    // Unbound, the key passes again.
    assert.equal((await admin('DELETE', `guardrails/policies/${byKey}`)).status, 204);
    const freed = await eventually(async () => {
      const r = await gw.chat(`use ${secret} ${nonce()}`, { key: a.key });
      return r.status === 200;
    }, 2000, 50);
    assert.ok(freed, 'a deleted policy still applied');
    assert.equal((await admin('DELETE', `guardrails/policies/${byTenant}`)).status, 204);
  });

  it('a policy changed or deleted while an answer streams under it: the stream ends whole', async () => {
    const a = await tenantWithKey('developer');
    const name = `streaming-${nonce()}`;
    let res = await admin('POST', 'guardrails/policies', { body: {
      name, guardrails: [{ detector: 'pii', action: 'redact', on: 'output' }],
      bindings: { keys: [a.keyId] } } });
    assert.equal(res.status, 201, res.text);
    const applied = await eventually(async () => {
      const r = await gw.chat(`mail eve@example.com ${nonce()}`, { key: a.key });
      return r.headers.get('x-aigw-guardrail') === 'out:redact:pii:email';
    }, 2000, 50);
    assert.ok(applied, 'the policy never applied');
    // 30 chunks 100 ms apart; the policy changes, then goes, meanwhile.
    const streaming = gw.chatStream(`mail eve@example.com mock:chunks=30 mock:chunk_delay=100 ${nonce()}`,
                                    { key: a.key });
    await new Promise((r) => setTimeout(r, 800));
    res = await admin('PATCH', `guardrails/policies/${name}`, { body: {
      guardrails: [{ detector: 'pii', action: 'redact', on: 'output' },
                   { detector: 'secrets', action: 'block', on: 'output' }] } });
    assert.equal(res.status, 200, res.text);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await admin('DELETE', `guardrails/policies/${name}`)).status, 204);
    const s = await streaming;
    assert.equal(s.status, 200);
    assert.ok(s.done, `the stream did not end with [DONE]: ${s.events.slice(-3).map((e) => e.data).join(' | ')}`);
    const text = s.contents.map((c) => c.text).join('');
    assert.ok(!text.includes('eve@'), text);
    assert.equal((await gw.fetch('/healthz')).status, 200);
    assert.equal((await gw.chat(`still there? ${nonce()}`, { key: a.key })).status, 200);
  });

  it('shows every webhook header value masked, config and database alike, audit too', async () => {
    const masked = { Authorization: '***' };
    const cfg = await admin('GET', 'guardrails/policies/hooked');
    assert.equal(cfg.status, 200, cfg.text);
    assert.deepEqual(cfg.json.guardrails[0].headers, masked);

    const name = `hook-${nonce()}`;
    const url = 'http://127.0.0.1:9/check';
    const hook = (headers, extra = {}) => ({ detector: 'webhook', action: 'flag', url, headers,
                                             ...extra });
    const created = await admin('POST', 'guardrails/policies', {
      body: { name, guardrails: [hook({ Authorization: `Bearer ${DB_TOKEN}`, 'X-Team': 'blue' })] },
    });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.json.guardrails[0].headers, { Authorization: '***', 'X-Team': '***' });
    const got = await admin('GET', `guardrails/policies/${name}`);
    assert.deepEqual(got.json.guardrails, created.json.guardrails);
    const list = await admin('GET', 'guardrails/policies');
    const shown = Object.fromEntries(list.json.data.map((p) => [p.name, p]));
    assert.deepEqual(shown.hooked.guardrails[0].headers, masked);
    assert.deepEqual(shown[name].guardrails, created.json.guardrails);
    const stored = () => JSON.parse(db.sql(
      `SELECT definition->'guardrails'->0 FROM guardrail_policies WHERE name = '${name}'`));

    // What GET showed, written back with a change: the stored values stay.
    const back = { ...got.json.guardrails[0], timeout_ms: 700 };
    const patched = await admin('PATCH', `guardrails/policies/${name}`,
                                { body: { guardrails: [back] } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.guardrails[0].timeout_ms, 700);
    assert.deepEqual(patched.json.guardrails[0].headers, { Authorization: '***', 'X-Team': '***' });
    assert.deepEqual(stored().headers, { Authorization: `Bearer ${DB_TOKEN}`, 'X-Team': 'blue' });
    // A mask with no value to keep (a new header, another URL, a new
    // policy) is refused, naming the header.
    assertError(await admin('PATCH', `guardrails/policies/${name}`, {
      body: { guardrails: [{ ...back, headers: { ...back.headers, 'X-New': '***' } }] },
    }), { status: 400, param: 'guardrails[0].headers.X-New' });
    const moved = assertError(await admin('PATCH', `guardrails/policies/${name}`, {
      body: { guardrails: [{ ...back, url: 'http://127.0.0.1:10/other' }] },
    }), { status: 400 });
    assert.match(moved.param, /^guardrails\[0\]\.headers\.(Authorization|X-Team)$/);
    assertError(await admin('POST', 'guardrails/policies', {
      body: { name: `${name}-copy`, guardrails: [hook(masked)] },
    }), { status: 400, param: 'guardrails[0].headers.Authorization' });
    assert.equal(stored().timeout_ms, 700);
    assert.equal((await admin('DELETE', `guardrails/policies/${name}`)).status, 204);

    // The audit log keeps the changes, masked.
    const audit = await admin('GET', `audit?target_id=${name}`);
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(audit.json.data.map((e) => e.action),
                     ['guardrails.delete', 'guardrails.update', 'guardrails.create']);
    for (const e of audit.json.data) {
      for (const side of [e.before, e.after].filter(Boolean)) {
        assert.deepEqual(side.definition.guardrails[0].headers,
                         { Authorization: '***', 'X-Team': '***' });
      }
    }
    assert.equal(db.sql(`SELECT count (*) FROM audit_log WHERE before::text LIKE '%${DB_TOKEN}%'`
                        + ` OR after::text LIKE '%${DB_TOKEN}%'`).trim(), '0');
  });

  it('never answers a pattern or a header value that could be a secret', () => {
    for (const text of answers) {
      assert.ok(!text.includes('topsecret'), text);
      assert.ok(!text.includes(CONFIG_TOKEN) && !text.includes(DB_TOKEN), text);
    }
  });
});

// guardrail.default_policy naming a policy that is not there (never made,
// or a database policy deleted): no policy applies, and each guardrail
// process says so in its log once per set of policies, not per request.
describe('guardrail.default_policy naming a missing policy', () => {
  let db;
  let gw;
  before(async () => {
    db = await freshDatabase('aigw_grpol_fallback');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'grpol-fallback', env: { DATABASE_URL: db.url },
      config: { cache: { enabled: false }, guardrail: { default_policy: 'fallback' } },
    });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  const noted = () => gw.procs.map((p) => fs.readFileSync(p.logFile, 'utf8')).join('\n')
    .split('\n').filter((l) => / warn .*default_policy names fallback, which does not exist/
      .test(l)).length;
  const mail = () => `write to bob-${nonce()}@example.com`;

  it('applies none and warns once per change of the policies', async () => {
    // Warned at the first request after the database's policies came.
    assert.ok(await eventually(async () => {
      const res = await gw.chat(mail());
      assert.equal(res.status, 200, res.text);
      return noted() >= 1;
    }, 5000, 100), 'no warning in the log');
    for (let i = 0; i < 5; i++) assert.equal((await gw.chat(mail())).status, 200);
    assert.equal(noted(), 1);

    // Made: it applies, and nothing more is said.
    const made = await gw.fetch('/api/v1/admin/guardrails/policies', {
      method: 'POST',
      body: { name: 'fallback', guardrails: [{ detector: 'pii', action: 'block' }] },
    });
    assert.equal(made.status, 201, made.text);
    assert.ok(await eventually(async () => (await gw.chat(mail())).status === 400, 2000, 50));
    assertError(await gw.chat(mail()), { status: 400, type: 'guardrail_error', code: 'pii' });

    // Deleted: none again, said once more.
    const gone = await gw.fetch('/api/v1/admin/guardrails/policies/fallback', { method: 'DELETE' });
    assert.equal(gone.status, 204, gone.text);
    assert.ok(await eventually(async () => (await gw.chat(mail())).status === 200, 2000, 50));
    for (let i = 0; i < 5; i++) assert.equal((await gw.chat(mail())).status, 200);
    assert.equal(noted(), 2);
  });
});
