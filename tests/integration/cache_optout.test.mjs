// Turning the response cache off for a key or a tenant through the admin
// API (issue 13 item 5; schemas/sql/014_cache_optout.sql), and for a config
// key (auth.keys[].cache). A key whose cache is off is answered
// X-Cache: BYPASS and every request reaches the upstream; turning it back
// on, or a tenant's off, takes effect within the auth cache's NOTIFY.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database per gateway (pgtest.mjs freshDatabase).
import {
  assert, after, before, describe, eventually, it, nonce, startGateway,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

describe('cache opt-out (run)', () => {
  let db;
  let gw;
  let tenant;
  const k = {};
  const ids = {};
  const admin = (p, opts = {}) => gw.fetch(`/api/v1/admin/${p}`, opts);
  const sql = (text) => db.sql(text).trim();

  // Ask QUESTION twice as KEY: the two X-Cache values and the upstream
  // chat requests the two made.
  async function twice(key, question) {
    const s0 = await gw.mock.stats();
    const one = await gw.chat(question, { key });
    assert.equal(one.status, 200, one.text);
    const two = await gw.chat(question, { key });
    assert.equal(two.status, 200, two.text);
    const s1 = await gw.mock.stats();
    return { first: one.headers.get('x-cache'), second: two.headers.get('x-cache'),
             upstream: s1.chat - s0.chat };
  }

  before(async () => {
    db = await freshDatabase('aigw_cache_optout');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'cache-optout', env: { DATABASE_URL: db.url },
      config: {
        cache: { enabled: true },
        auth: { keys: [{ name: 'cfg-off', tenant: 'cfg', role: 'developer', cache: false },
                       { name: 'cfg-on', tenant: 'cfg', role: 'developer' }] },
      },
    });
    const created = await admin('tenants', { body: { name: `optout-${nonce()}` } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.cache, true, 'a tenant\'s cache is on by default');
    tenant = created.json.id;
    for (const [name, extra] of [['off', { cache: false }], ['on', {}], ['tadmin', { role: 'tenant-admin' }]]) {
      const res = await admin('keys', { body: { name, tenant_id: tenant, role: 'developer', ...extra } });
      assert.equal(res.status, 201, res.text);
      k[name] = res.json.key;
      ids[name] = res.json.id;
      assert.equal(res.json.cache, name !== 'off');
    }
  }, { timeout: 120000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('shows the setting in GET and refuses a value that is not a boolean', async () => {
    const got = await admin(`keys/${ids.off}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.cache, false);
    const listed = await admin(`keys?tenant_id=${tenant}`);
    assert.equal(listed.json.data.find((x) => x.id === ids.on).cache, true);
    const bad = await admin(`keys/${ids.on}`, { method: 'PATCH', body: { cache: 'off' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.param, 'cache');
    const badTenant = await admin(`tenants/${tenant}`, { method: 'PATCH', body: { cache: 0 } });
    assert.equal(badTenant.status, 400, badTenant.text);
    assert.equal(badTenant.json.error.param, 'cache');
    // Only tenants:write changes a tenant's: a tenant-admin cannot.
    const denied = await admin(`tenants/${tenant}`, { method: 'PATCH', key: k.tadmin,
                                                      body: { cache: false } });
    assert.equal(denied.status, 403, denied.text);
    assert.equal((await admin(`tenants/${tenant}`)).json.cache, true);
  });

  it('bypasses the cache for a key with it off; its tenant\'s other keys still hit', async () => {
    const question = `opt-out ${nonce()}`;
    const off = await twice(k.off, question);
    assert.deepEqual(off, { first: 'BYPASS', second: 'BYPASS', upstream: 2 });
    const on = await twice(k.on, question);
    assert.deepEqual(on, { first: 'MISS', second: 'HIT', upstream: 1 });
    // The off key's requests were not stored either: the on key's first
    // request above missed.
  });

  it('takes a key\'s change within the NOTIFY, audited', async () => {
    const patched = await admin(`keys/${ids.off}`, { method: 'PATCH', body: { cache: true } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.cache, true);
    const audit = JSON.parse(sql(`SELECT json_build_object ('before', before->'cache',
                                    'after', after->'cache') FROM audit_log
                                   WHERE action = 'keys.update' AND target_id = '${ids.off}'`));
    assert.deepEqual(audit, { before: false, after: true });
    await eventually(async () => {
      const r = await twice(k.off, `turned on ${nonce()}`);
      return r.first === 'MISS' && r.second === 'HIT' && r.upstream === 1;
    }, 10000, 200);
  });

  it('turns the cache off for every key of a tenant, whatever the key says', async () => {
    const patched = await admin(`tenants/${tenant}`, { method: 'PATCH', body: { cache: false } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.cache, false);
    assert.equal((await admin(`keys/${ids.on}`)).json.cache, true, 'the key keeps its own');
    await eventually(async () => {
      const r = await twice(k.on, `tenant off ${nonce()}`);
      return r.first === 'BYPASS' && r.second === 'BYPASS' && r.upstream === 2;
    }, 10000, 200);
    const again = await twice(k.off, `tenant off, other key ${nonce()}`);
    assert.deepEqual(again, { first: 'BYPASS', second: 'BYPASS', upstream: 2 });
    const audit = JSON.parse(sql(`SELECT json_build_object ('before', before->'cache',
                                    'after', after->'cache') FROM audit_log
                                   WHERE action = 'tenants.update' AND target_id = '${tenant}'`));
    assert.deepEqual(audit, { before: true, after: false });
    // And back on.
    await admin(`tenants/${tenant}`, { method: 'PATCH', body: { cache: true } });
    await eventually(async () => {
      const r = await twice(k.on, `tenant on ${nonce()}`);
      return r.first === 'MISS' && r.second === 'HIT';
    }, 10000, 200);
  });

  it('honours cache: false on a config key', async () => {
    const question = `config key ${nonce()}`;
    assert.deepEqual(await twice(gw.key('cfg-off'), question),
                     { first: 'BYPASS', second: 'BYPASS', upstream: 2 });
    assert.deepEqual(await twice(gw.key('cfg-on'), question),
                     { first: 'MISS', second: 'HIT', upstream: 1 });
  });
});
