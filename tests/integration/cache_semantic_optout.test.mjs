// Semantic lookups turned off (or back on) for a key or a tenant through
// the admin API (issue 13: "and per key or tenant through the admin API";
// schemas/sql/016_cache_semantic.sql), and for a config key
// (auth.keys[].cache_semantic), with the local embedder over the real word
// vectors as cache_semantic.test.mjs sets it up. cache_semantic null
// follows the config, false keeps a key to exact matches (a paraphrase is
// a MISS, its answer is kept for exact hits), true on a key overrides its
// tenant's false; cache: false wins over all of it. A change takes effect
// within the auth cache's NOTIFY. The mock answers "Mock reply to: PROMPT",
// so an answer names the prompt it was made for.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database per gateway (pgtest.mjs freshDatabase).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  SRC, assert, after, before, describe, eventually, it, nonce, sharedVectors, startGateway,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const said = (r) => r.json?.choices?.[0]?.message?.content;

// The question, and paraphrases the verifier passes (aigw embeddings
// similarity: "verify same", cosine 0.85 to 0.99 over the 0.75 threshold).
const Q = 'How do I reverse a list in Python?';
const HEY = 'Hey, how do I reverse a list in Python?';
const HELLO = 'Hello, how do I reverse a list in Python?';
const HI = 'Hi, how do I reverse a list in Python?';
// Fresh paraphrases for the waits on a NOTIFY: each asked once per tenant
// (once asked, it is an exact entry).
const MORE = ['Please, how do I reverse a list in Python?', 'So how do I reverse a list in Python?',
              'How can I reverse a list in Python?', 'How do I reverse a list in Python? Thanks',
              'How do I reverse a list in Python? Thank you'];

describe('semantic cache per key and tenant (run)', () => {
  let db;
  let gw;
  const tenants = {};
  const k = {};
  const ids = {};
  const fresh = {};  // tenant -> paraphrases not yet asked there
  const admin = (p, opts = {}) => gw.fetch(`/api/v1/admin/${p}`, opts);
  const sql = (text) => db.sql(text).trim();
  const openapi = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));

  // Ask QUESTION as KEY: X-Cache, the similarity header, what the answer
  // names, and the upstream chat requests it made.
  async function ask(key, question) {
    const s0 = await gw.mock.stats();
    const r = await gw.chat(question, { key });
    assert.equal(r.status, 200, r.text);
    const s1 = await gw.mock.stats();
    return { cache: r.headers.get('x-cache'), similarity: r.headers.get('x-aigw-cache-similarity'),
             said: said(r), upstream: s1.chat - s0.chat };
  }
  const next = (tenant) => fresh[tenant].shift();
  // Ask KEY fresh paraphrases of TENANT's until one gets X-Cache WANT (a
  // change reaches the cache within the NOTIFY); the last answer.
  async function askUntil(key, tenant, want) {
    let last;
    await eventually(async () => {
      const question = next(tenant);
      assert.ok(question, 'no fresh paraphrase left');
      last = await ask(key, question);
      return last.cache === want;
    }, 10000, 300);
    return last;
  }

  before(async () => {
    db = await freshDatabase('aigw_cache_semantic_optout');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'cache-semantic-optout', env: { DATABASE_URL: db.url },
      config: {
        cache: { enabled: true, ttl_s: 300,
                 semantic: { enabled: true, vectors: sharedVectors(), threshold: 0.75 } },
        auth: { keys: [{ name: 'cfg-exact', tenant: 'cfg', role: 'developer', cache_semantic: false },
                       { name: 'cfg-on', tenant: 'cfg', role: 'developer' }] },
      },
    });
    for (const [name, extra, want] of [['a', {}, null], ['b', { cache_semantic: false }, false]]) {
      const res = await admin('tenants', { body: { name: `semantic-${name}-${nonce()}`, ...extra } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.cache_semantic, want);
      tenants[name] = res.json.id;
      fresh[name] = [...MORE];
    }
    for (const [name, tenant, extra] of [
      ['norm', 'a', {}], ['exact', 'a', { cache_semantic: false }],
      ['offall', 'a', { cache: false, cache_semantic: true }],
      ['tadmin', 'a', { role: 'tenant-admin' }],
      ['bnorm', 'b', {}], ['bover', 'b', { cache_semantic: true }],
    ]) {
      const res = await admin('keys', { body: { name, tenant_id: tenants[tenant], role: 'developer',
                                                ...extra } });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.cache_semantic, extra.cache_semantic ?? null);
      k[name] = res.json.key;
      ids[name] = res.json.id;
    }
  }, { timeout: 300000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('shows the setting in GET, lists it in the OpenAPI file, refuses anything but a boolean or null', async () => {
    assert.equal((await admin(`keys/${ids.exact}`)).json.cache_semantic, false);
    assert.equal((await admin(`keys/${ids.norm}`)).json.cache_semantic, null);
    assert.equal((await admin(`keys/${ids.bover}`)).json.cache_semantic, true);
    const listed = await admin(`keys?tenant_id=${tenants.a}`);
    assert.equal(listed.json.data.find((x) => x.id === ids.exact).cache_semantic, false);
    assert.equal((await admin(`tenants/${tenants.b}`)).json.cache_semantic, false);
    for (const schema of ['Key', 'Tenant']) {
      assert.ok(openapi.components.schemas[schema].required.includes('cache_semantic'), schema);
    }
    for (const schema of ['KeyCreate', 'KeyUpdate', 'TenantCreate', 'TenantUpdate']) {
      assert.ok('cache_semantic' in openapi.components.schemas[schema].properties, schema);
    }
    for (const [p, method, value] of [[`keys/${ids.norm}`, 'PATCH', 'false'],
                                      [`keys/${ids.norm}`, 'PATCH', 0],
                                      [`tenants/${tenants.a}`, 'PATCH', []],
                                      [`tenants/${tenants.a}`, 'PATCH', { on: true }]]) {
      const bad = await admin(p, { method, body: { cache_semantic: value } });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.json.error.type, 'invalid_request_error');
      assert.equal(bad.json.error.code, 'invalid_field');
      assert.equal(bad.json.error.param, 'cache_semantic');
    }
    const badKey = await admin('keys', { body: { name: 'bad', tenant_id: tenants.a, role: 'developer',
                                                 cache_semantic: 'off' } });
    assert.equal(badKey.status, 400, badKey.text);
    assert.equal(badKey.json.error.param, 'cache_semantic');
    const badTenant = await admin('tenants', { body: { name: `bad-${nonce()}`, cache_semantic: 1 } });
    assert.equal(badTenant.status, 400, badTenant.text);
    assert.equal(badTenant.json.error.param, 'cache_semantic');
    // Nothing changed; and only tenants:write changes a tenant's.
    assert.equal((await admin(`keys/${ids.norm}`)).json.cache_semantic, null);
    const denied = await admin(`tenants/${tenants.a}`, { method: 'PATCH', key: k.tadmin,
                                                         body: { cache_semantic: false } });
    assert.equal(denied.status, 403, denied.text);
    assert.equal((await admin(`tenants/${tenants.a}`)).json.cache_semantic, null);
  });

  it('answers a paraphrase from the cache for a key that follows the config', async () => {
    const first = await ask(k.norm, Q);
    assert.equal(first.cache, 'MISS');
    assert.equal(first.upstream, 1);
    assert.deepEqual(await ask(k.norm, Q), { cache: 'HIT', similarity: null, said: first.said,
                                             upstream: 0 });
    const near = await ask(k.norm, HEY);
    assert.equal(near.cache, 'SEMANTIC-HIT');
    assert.ok(Number(near.similarity) >= 0.75, `similarity ${near.similarity}`);
    assert.equal(near.said, first.said);
    assert.equal(near.upstream, 0);
  });

  it('keeps a key with cache_semantic false to exact matches, and keeps its answers', async () => {
    // The tenant's entry for Q (the key above made it) answers Q exactly.
    const exact = await ask(k.exact, Q);
    assert.equal(exact.cache, 'HIT');
    assert.match(exact.said, /How do I reverse a list in Python\?/);
    // A paraphrase that the key above would have had answered from Q's.
    const near = await ask(k.exact, HELLO);
    assert.equal(near.cache, 'MISS');
    assert.equal(near.similarity, null);
    assert.equal(near.upstream, 1);
    assert.match(near.said, /Hello, how do I reverse/);
    // Its answer was kept: an exact repeat is a hit, for it and its tenant.
    assert.deepEqual(await ask(k.exact, HELLO), { cache: 'HIT', similarity: null,
                                                  said: near.said, upstream: 0 });
    assert.equal((await ask(k.norm, HELLO)).cache, 'HIT');
  });

  it('keeps every key of a tenant with cache_semantic false to exact matches; a key\'s true wins', async () => {
    // The key that overrides its tenant keeps a semantic entry for Q.
    const first = await ask(k.bover, Q);
    assert.equal(first.cache, 'MISS');
    assert.equal((await ask(k.bnorm, Q)).cache, 'HIT');
    const near = await ask(k.bnorm, HEY);
    assert.equal(near.cache, 'MISS');
    assert.equal(near.upstream, 1);
    assert.match(near.said, /Hey, how do I reverse/);
    assert.equal((await ask(k.bnorm, HEY)).cache, 'HIT');
    const over = await ask(k.bover, HI);
    assert.equal(over.cache, 'SEMANTIC-HIT');
    assert.equal(over.said, first.said);
  });

  it('lets cache: false win: no lookup at all, whatever cache_semantic says', async () => {
    for (const question of [Q, HEY]) {
      const r = await ask(k.offall, question);
      assert.equal(r.cache, 'BYPASS');
      assert.equal(r.upstream, 1);
    }
  });

  it('takes a key\'s change within the NOTIFY, both ways, audited', async () => {
    // Off for a key that followed the config: its next paraphrase misses.
    let patched = await admin(`keys/${ids.norm}`, { method: 'PATCH', body: { cache_semantic: false } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.cache_semantic, false);
    await askUntil(k.norm, 'a', 'MISS');
    // Back to null for the key that had it off: a paraphrase is a
    // semantic hit again.
    patched = await admin(`keys/${ids.exact}`, { method: 'PATCH', body: { cache_semantic: null } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.cache_semantic, null);
    assert.equal((await admin(`keys/${ids.exact}`)).json.cache_semantic, null);
    const hit = await askUntil(k.exact, 'a', 'SEMANTIC-HIT');
    assert.match(hit.said, /^Mock reply to: How do I reverse a list in Python\?$/);
    const audit = JSON.parse(sql(`SELECT json_agg (json_build_object ('key', target_id,
                                    'before', before->'cache_semantic', 'after', after->'cache_semantic')
                                    ORDER BY id) FROM audit_log WHERE action = 'keys.update'
                                   AND target_id IN ('${ids.norm}', '${ids.exact}')`));
    assert.deepEqual(audit, [{ key: ids.norm, before: null, after: false },
                             { key: ids.exact, before: false, after: null }]);
  });

  it('takes a tenant\'s change within the NOTIFY, audited', async () => {
    const patched = await admin(`tenants/${tenants.b}`, { method: 'PATCH',
                                                          body: { cache_semantic: null } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.cache_semantic, null);
    await askUntil(k.bnorm, 'b', 'SEMANTIC-HIT');
    const audit = JSON.parse(sql(`SELECT json_build_object ('before', before->'cache_semantic',
                                    'after', after->'cache_semantic') FROM audit_log
                                   WHERE action = 'tenants.update' AND target_id = '${tenants.b}'`));
    assert.deepEqual(audit, { before: false, after: null });
  });

  it('honours cache_semantic: false on a config key', async () => {
    assert.equal((await ask(gw.key('cfg-on'), Q)).cache, 'MISS');
    const near = await ask(gw.key('cfg-exact'), HEY);
    assert.equal(near.cache, 'MISS');
    assert.equal(near.upstream, 1);
    assert.equal((await ask(gw.key('cfg-exact'), Q)).cache, 'HIT');
    assert.equal((await ask(gw.key('cfg-on'), HI)).cache, 'SEMANTIC-HIT');
  });
});
