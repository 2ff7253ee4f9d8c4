// Models and deployments through the admin API (/api/v1/admin/models)
// against a real PostgreSQL, the way an operator's script drives them:
// create, list (the config file's models, then the database's), get, patch,
// delete; the rows that land in the database; errors naming the offending
// field by its JSON path; 409 for a taken name and for a config model; 403
// without the permission; hostile names round-tripping; the upstream api_key
// never answered, never audited, never logged; a NOTIFY on aigw_models for
// every change; GET router/health.
//
// Needs PostgreSQL: DATABASE_URL's server (tests/run.sh) or a private cluster
// (pgtest.mjs).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  assert, after, before, describe, it, SRC, MODELS, startGateway, assertError, eventually,
  nonce, openSecret, secretKey,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const SECRET_KEY = secretKey();
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// A config file model whose name holds a slash, as many upstream names do.
const CONFIG_SLASHED = 'team/llama-3';
// How long a NOTIFY may take to reach a listener.
const NOTIFY_MS = 5000;

// psql LISTENing on CHANNEL at URL. notifications() polls (psql reports a
// notification only after running a command) and returns the payloads seen.
function listen(url, channel) {
  const child = spawn('psql', [url, '-X', '-qAt'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  child.stdin.write(`LISTEN ${channel};\n`);
  return {
    // Resolves once the LISTEN has run (psql runs its input in order).
    async ready(timeoutMs = 5000) {
      child.stdin.write("SELECT 'listening';\n");
      const ok = await eventually(async () => out.includes('listening'), timeoutMs, 50);
      assert.ok(ok, `psql did not LISTEN: ${out}`);
    },
    async notifications() {
      child.stdin.write('SELECT 1;\n');
      await new Promise((resolve) => setTimeout(resolve, 100));
      return [...out.matchAll(/Asynchronous notification "([^"]+)" with payload "([^"]*)"/g)]
        .filter((m) => m[1] === channel).map((m) => m[2]);
    },
    stop() { child.stdin.end(); child.kill(); },
  };
}

describe('admin API: models', () => {
  let db;
  let gw;
  const secrets = [];          // every upstream api_key this file wrote
  const answers = [];          // the text of every answer this file got

  before(async () => {
    db = await freshDatabase('aigw_models');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'models', env: { DATABASE_URL: db.url, AIGW_SECRET_KEY: SECRET_KEY },
      config: { models: [...MODELS.map((name) => ({ name, provider: 'openai' })),
                         { name: CONFIG_SLASHED, provider: 'openai' }] },
    });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  // One admin call; KEY defaults to the master key. Every answer is kept.
  async function admin(method, p, { body, key } = {}) {
    const res = await gw.fetch(`/api/v1/admin/${p}`, { method, body, ...(key ? { key } : {}) });
    answers.push(res.text);
    return res;
  }

  const secret = () => {
    const s = `sk-upstream-${nonce(16)}`;
    secrets.push(s);
    return s;
  };
  const deployment = (extra = {}) => ({ provider: 'openai', model: 'gpt-4o-mini', ...extra });

  async function createModel(body) {
    const res = await admin('POST', 'models', { body });
    assert.equal(res.status, 201, res.text);
    return res.json;
  }

  async function createKey(role) {
    const tenant = await admin('POST', 'tenants', { body: { name: `models-${nonce()}` } });
    assert.equal(tenant.status, 201, tenant.text);
    const key = await admin('POST', 'keys', { body: { tenant_id: tenant.json.id, name: role, role } });
    assert.equal(key.status, 201, key.text);
    return key.json.key;
  }

  // The api_key stored for deployment ID, opened (it is stored sealed).
  function storedKey(id) {
    const value = db.sql(`SELECT api_key FROM model_deployments WHERE id = '${id}'`).trim();
    assert.match(value, /^aigw:v1:[0-9a-f]{8}:/);
    return openSecret(value, SECRET_KEY, id);
  }

  // The API view of a deployment never holds the secret, only whether one is set.
  function assertNoSecret(model) {
    for (const d of model.deployments) {
      assert.ok(!('api_key' in d), `api_key shown: ${JSON.stringify(d)}`);
      assert.equal(typeof d.api_key_set, 'boolean');
    }
  }

  it('creates a model with its deployments, and the rows land in the database', async () => {
    const key = secret();
    const name = `fast-${nonce()}`;
    const model = await createModel({
      name, strategy: 'least_latency', fallbacks: ['gpt-4o-mini', 'elsewhere'],
      deployments: [
        deployment({ api_key: key, weight: 3, priority: 1, rpm: 600, tpm: 100000,
                     price_in: 0.15, price_out: 0.6, price_cached_in: 0.075 }),
        { provider: 'openai_compatible', model: 'llama-3-70b', base_url: 'http://127.0.0.1:9/v1',
          api_key_env: 'LLAMA_KEY', api_version: '2024-10-21', region: 'eu-west-1' },
      ],
    });
    assert.match(model.id, UUID_RE);
    assert.equal(model.name, name);
    assert.equal(model.source, 'database');
    assert.equal(model.strategy, 'least_latency');
    assert.deepEqual(model.fallbacks, ['gpt-4o-mini', 'elsewhere']);
    assert.equal(model.deployments.length, 2);
    const [a, b] = model.deployments;
    assert.match(a.id, UUID_RE);
    assert.match(b.id, UUID_RE);
    assert.notEqual(a.id, b.id);
    assert.deepEqual({ ...a, id: undefined }, {
      id: undefined, provider: 'openai', model: 'gpt-4o-mini', base_url: null, api_key_env: null,
      api_key_set: true, api_version: null, region: null, weight: 3, priority: 1, rpm: 600,
      tpm: 100000, price_in: 0.15, price_out: 0.6, price_cached_in: 0.075,
    });
    assert.deepEqual({ ...b, id: undefined }, {
      id: undefined, provider: 'openai_compatible', model: 'llama-3-70b',
      base_url: 'http://127.0.0.1:9/v1', api_key_env: 'LLAMA_KEY', api_key_set: false,
      api_version: '2024-10-21', region: 'eu-west-1', weight: 1, priority: 0, rpm: 0, tpm: 0,
      price_in: 0, price_out: 0, price_cached_in: null,
    });
    assertNoSecret(model);

    // The rows: the model, its deployments in order, the secret stored for
    // the provider processes (and nowhere else).
    assert.equal(db.sql(`SELECT name || '|' || strategy || '|' || array_to_string (fallbacks, ',')
                         FROM models WHERE id = '${model.id}'`).trim(),
                 `${name}|least_latency|gpt-4o-mini,elsewhere`);
    const rows = db.sql(`SELECT id || '|' || position || '|' || provider || '|' || upstream_model
                           || '|' || CASE WHEN api_key IS NULL THEN '-' ELSE 'sealed' END
                           || '|' || weight || '|' || price_in
                         FROM model_deployments WHERE model_id = '${model.id}' ORDER BY position`)
      .trim().split('\n');
    assert.deepEqual(rows, [`${a.id}|0|openai|gpt-4o-mini|sealed|3|0.15`,
                            `${b.id}|1|openai_compatible|llama-3-70b|-|1|0`]);
    assert.equal(storedKey(a.id), key);

    // Read back, alone and in the list.
    const read = await admin('GET', `models/${model.id}`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.json, model);
    const list = await admin('GET', 'models?limit=200');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.data.find((m) => m.id === model.id), model);
  });

  it('lists the config file models first, then the database ones', async () => {
    const model = await createModel({ name: `listed-${nonce()}`, deployments: [deployment()] });
    const res = await admin('GET', 'models?limit=200');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.next_cursor, null);
    const config = [...MODELS, CONFIG_SLASHED];
    assert.deepEqual(res.json.data.slice(0, config.length).map((m) => [m.id, m.name, m.source]),
                     config.map((n) => [`config:${n}`, n, 'config']));
    assert.ok(res.json.data.slice(config.length).every((m) => m.source === 'database'), res.text);
    assert.ok(res.json.data.some((m) => m.id === model.id));
    // A config model's shape is the database one's: one deployment, no secret.
    const cfg = res.json.data[0];
    assert.deepEqual(cfg.deployments, [{
      id: `${MODELS[0]}/0`, provider: 'openai', model: MODELS[0], base_url: null, api_key_env: null,
      api_key_set: false, api_version: null, region: null, weight: 1, priority: 0, rpm: 0, tpm: 0,
      price_in: 0, price_out: 0, price_cached_in: null,
    }]);
    assert.equal(cfg.strategy, null);
    assert.deepEqual(cfg.fallbacks, []);
    // One by id, slash and all; ?name= finds config and database models.
    const slashed = await admin('GET', `models/config:${CONFIG_SLASHED}`);
    assert.equal(slashed.status, 200, slashed.text);
    assert.equal(slashed.json.name, CONFIG_SLASHED);
    const byName = await admin('GET', `models?name=${encodeURIComponent(CONFIG_SLASHED)}`);
    assert.deepEqual(byName.json.data.map((m) => m.id), [`config:${CONFIG_SLASHED}`]);
    const dbByName = await admin('GET', `models?name=${encodeURIComponent(model.name)}`);
    assert.deepEqual(dbByName.json.data.map((m) => m.id), [model.id]);
  });

  it('pages through the database models with the cursor; config models lead the first page only', async () => {
    for (let i = 0; i < 3; i++) await createModel({ name: `page-${i}-${nonce()}`, deployments: [deployment()] });
    const all = (await admin('GET', 'models?limit=200')).json.data.filter((m) => m.source === 'database');
    const seen = [];
    let cursor = null;
    for (let page = 0; page < 200; page++) {
      const res = await admin('GET', `models?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.status, 200, res.text);
      const config = res.json.data.filter((m) => m.source === 'config');
      assert.equal(config.length, page === 0 ? MODELS.length + 1 : 0, res.text);
      const rows = res.json.data.filter((m) => m.source === 'database');
      assert.ok(rows.length <= 2);
      seen.push(...rows.map((m) => m.id));
      cursor = res.json.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, all.map((m) => m.id));
    assertError(await admin('GET', 'models?cursor=garbage'), { status: 400, param: 'cursor' });
    assertError(await admin('GET', 'models?limit=0'), { status: 400, param: 'limit' });
    assertError(await admin('GET', 'models?colour=red'), { status: 400, param: 'colour' });
  });

  it('patches name, strategy, fallbacks and the whole deployment list, keeping ids and secrets asked for', async () => {
    const key = secret();
    const model = await createModel({
      name: `patch-${nonce()}`, strategy: 'weighted',
      deployments: [deployment({ api_key: key }), deployment({ model: 'gpt-4o', weight: 2 })],
    });
    const [kept, dropped] = model.deployments;
    const renamed = `patched-${nonce()}`;
    let res = await admin('PATCH', `models/${model.id}`, { body: { name: renamed, strategy: null } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.name, renamed);
    assert.equal(res.json.strategy, null);
    assert.deepEqual(res.json.deployments, model.deployments);

    res = await admin('PATCH', `models/${model.id}`, { body: {
      fallbacks: ['gpt-4o-mini'],
      deployments: [deployment({ model: 'new-one', priority: 5 }),
                    { id: kept.id, provider: 'openai', model: 'gpt-4o-mini', weight: 7 }],
    } });
    assert.equal(res.status, 200, res.text);
    assertNoSecret(res.json);
    assert.deepEqual(res.json.fallbacks, ['gpt-4o-mini']);
    const [fresh, again] = res.json.deployments;
    assert.match(fresh.id, UUID_RE);
    assert.ok(![kept.id, dropped.id].includes(fresh.id));
    assert.equal(fresh.model, 'new-one');
    assert.equal(fresh.priority, 5);
    assert.equal(again.id, kept.id);
    assert.equal(again.weight, 7);
    assert.equal(again.api_key_set, true, 'the kept deployment lost its api_key');
    assert.equal(storedKey(kept.id), key);
    assert.equal(db.sql(`SELECT count (*) FROM model_deployments WHERE id = '${dropped.id}'`).trim(), '0');
    assert.equal(db.sql(`SELECT string_agg (id || ':' || position, ',' ORDER BY position)
                         FROM model_deployments WHERE model_id = '${model.id}'`).trim(),
                 `${fresh.id}:0,${kept.id}:1`);
    const read = await admin('GET', `models/${model.id}`);
    assert.deepEqual(read.json, res.json);

    // A new secret replaces the old one; null clears it.
    const key2 = secret();
    res = await admin('PATCH', `models/${model.id}`, { body: { deployments: [
      { id: kept.id, provider: 'openai', model: 'gpt-4o-mini', api_key: key2 }] } });
    assert.equal(res.status, 200, res.text);
    assert.equal(storedKey(kept.id), key2);
    res = await admin('PATCH', `models/${model.id}`, { body: { deployments: [
      { id: kept.id.toUpperCase(), provider: 'openai', model: 'gpt-4o-mini', api_key: null }] } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.deployments[0].id, kept.id);
    assert.equal(res.json.deployments[0].api_key_set, false);
    assert.equal(db.sql(`SELECT coalesce (api_key, 'NULL') FROM model_deployments WHERE id = '${kept.id}'`).trim(), 'NULL');

    // An id that is not one of this model's deployments changes nothing.
    const other = await createModel({ name: `other-${nonce()}`, deployments: [deployment()] });
    for (const id of [other.deployments[0].id, crypto.randomUUID(), 'not-an-id']) {
      assertError(await admin('PATCH', `models/${model.id}`, { body: { name: `x-${nonce()}`, deployments: [
        deployment(), { id, provider: 'openai', model: 'x' }] } }),
      { status: 400, code: 'invalid_field', param: 'deployments[1].id' });
    }
    assert.equal((await admin('GET', `models/${model.id}`)).json.name, renamed);
  });

  it('deletes a model and its deployments', async () => {
    const model = await createModel({ name: `doomed-${nonce()}`, deployments: [deployment({ api_key: secret() })] });
    const res = await admin('DELETE', `models/${model.id}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { id: model.id, deleted: true });
    assertError(await admin('GET', `models/${model.id}`), { status: 404, code: 'not_found' });
    assertError(await admin('DELETE', `models/${model.id}`), { status: 404 });
    assert.equal(db.sql(`SELECT count (*) FROM model_deployments WHERE model_id = '${model.id}'`).trim(), '0');
    // The name is free again.
    await createModel({ name: model.name, deployments: [deployment()] });
  });

  it('answers 400 naming the offending field', async () => {
    const good = { name: `bad-${nonce()}`, deployments: [deployment()] };
    const dep = (extra) => ({ ...good, deployments: [deployment(), deployment(extra)] });
    const cases = [
      [{ deployments: good.deployments }, 'missing_field', 'name'],
      [{ ...good, name: '' }, 'invalid_field', 'name'],
      [{ ...good, name: 'x'.repeat(129) }, 'invalid_field', 'name'],
      [{ ...good, name: 'line\nbreak' }, 'invalid_field', 'name'],
      [{ ...good, name: 42 }, 'invalid_field', 'name'],
      [{ name: good.name }, 'missing_field', 'deployments'],
      [{ ...good, deployments: [] }, 'invalid_field', 'deployments'],
      [{ ...good, deployments: Array(17).fill(deployment()) }, 'invalid_field', 'deployments'],
      [{ ...good, colour: 'red' }, 'invalid_field', 'colour'],
      [{ ...good, id: crypto.randomUUID() }, 'invalid_field', 'id'],
      [{ ...good, strategy: 'random' }, 'invalid_field', 'strategy'],
      [{ ...good, fallbacks: 'gpt-4o' }, 'invalid_field', 'fallbacks'],
      [{ ...good, fallbacks: Array.from({ length: 9 }, (_, i) => `m${i}`) }, 'invalid_field', 'fallbacks'],
      [{ ...good, fallbacks: ['a', good.name] }, 'invalid_field', 'fallbacks[1]'],
      [{ ...good, fallbacks: ['a', 'b', 'a'] }, 'invalid_field', 'fallbacks[2]'],
      [{ ...good, fallbacks: [''] }, 'invalid_field', 'fallbacks[0]'],
      [{ ...good, deployments: [deployment(), 'x'] }, 'invalid_field', 'deployments[1]'],
      [{ ...good, deployments: [deployment(), { model: 'x' }] }, 'missing_field', 'deployments[1].provider'],
      [dep({ provider: 'no-such-provider' }), 'invalid_field', 'deployments[1].provider'],
      [dep({ model: undefined }), 'missing_field', 'deployments[1].model'],
      [dep({ model: '' }), 'invalid_field', 'deployments[1].model'],
      [dep({ model: 'x'.repeat(257) }), 'invalid_field', 'deployments[1].model'],
      [dep({ colour: 'red' }), 'invalid_field', 'deployments[1].colour'],
      [dep({ id: crypto.randomUUID() }), 'invalid_field', 'deployments[1].id'],
      [dep({ base_url: 'ftp://example.com' }), 'invalid_field', 'deployments[1].base_url'],
      [dep({ base_url: 'https://exa mple.com' }), 'invalid_field', 'deployments[1].base_url'],
      [dep({ provider: 'openai_compatible' }), 'missing_field', 'deployments[1].base_url'],
      [dep({ api_key_env: 'lower_case' }), 'invalid_field', 'deployments[1].api_key_env'],
      [dep({ api_key_env: '1ABC' }), 'invalid_field', 'deployments[1].api_key_env'],
      [dep({ api_key: 7 }), 'invalid_field', 'deployments[1].api_key'],
      [dep({ api_key: `${secret()}\r\nX-Injected: 1` }), 'invalid_field', 'deployments[1].api_key'],
      [dep({ api_version: 'has space' }), 'invalid_field', 'deployments[1].api_version'],
      [dep({ region: '' }), 'invalid_field', 'deployments[1].region'],
      [dep({ weight: -1 }), 'invalid_field', 'deployments[1].weight'],
      [dep({ weight: 1000001 }), 'invalid_field', 'deployments[1].weight'],
      [dep({ weight: 1.5 }), 'invalid_field', 'deployments[1].weight'],
      [dep({ priority: 1001 }), 'invalid_field', 'deployments[1].priority'],
      [dep({ rpm: -1 }), 'invalid_field', 'deployments[1].rpm'],
      [dep({ tpm: '10' }), 'invalid_field', 'deployments[1].tpm'],
      [dep({ price_in: -0.5 }), 'invalid_field', 'deployments[1].price_in'],
      [dep({ price_out: 'free' }), 'invalid_field', 'deployments[1].price_out'],
      [dep({ price_cached_in: -1 }), 'invalid_field', 'deployments[1].price_cached_in'],
    ];
    for (const [body, code, param] of cases) {
      const res = await admin('POST', 'models', { body });
      const e = assertError(res, { status: 400, type: 'invalid_request_error', code, param });
      for (const s of secrets) assert.ok(!e.message.includes(s), `a secret in an error: ${res.text}`);
    }
    assertError(await admin('POST', 'models', { body: '{"name": ' }), { status: 400, code: 'invalid_json' });
    assertError(await admin('POST', 'models', { body: '[]' }), { status: 400, code: 'invalid_json' });
    // Nothing was created by any of them.
    assert.equal(db.sql(`SELECT count (*) FROM models WHERE name = '${good.name}'`).trim(), '0');

    const model = await createModel({ name: `target-${nonce()}`, deployments: [deployment()] });
    const patches = [
      [{}, 'missing_field', null],
      [{ name: null }, 'invalid_field', 'name'],
      [{ strategy: 'fastest' }, 'invalid_field', 'strategy'],
      [{ fallbacks: [model.name] }, 'invalid_field', 'fallbacks'],
      [{ deployments: null }, 'invalid_field', 'deployments'],
      [{ deployments: [deployment({ weight: -5 })] }, 'invalid_field', 'deployments[0].weight'],
      [{ id: crypto.randomUUID() }, 'invalid_field', 'id'],
    ];
    for (const [body, code, param] of patches) {
      assertError(await admin('PATCH', `models/${model.id}`, { body }),
                  { status: 400, type: 'invalid_request_error', code, param });
    }
    assert.deepEqual((await admin('GET', `models/${model.id}`)).json, model);
  });

  it('answers 409 for a taken name and for a config file model, 404 and 405', async () => {
    const name = `taken-${nonce()}`;
    const first = await createModel({ name, deployments: [deployment()] });
    assertError(await admin('POST', 'models', { body: { name, deployments: [deployment()] } }),
                { status: 409, type: 'conflict_error', code: 'conflict', param: 'name' });
    assertError(await admin('POST', 'models', { body: { name: MODELS[0], deployments: [deployment()] } }),
                { status: 409, code: 'conflict', param: 'name' });
    const second = await createModel({ name: `second-${nonce()}`, deployments: [deployment()] });
    assertError(await admin('PATCH', `models/${second.id}`, { body: { name } }),
                { status: 409, code: 'conflict', param: 'name' });
    assertError(await admin('PATCH', `models/${second.id}`, { body: { name: CONFIG_SLASHED } }),
                { status: 409, code: 'conflict', param: 'name' });
    for (const id of [`config:${MODELS[0]}`, `config:${CONFIG_SLASHED}`]) {
      assertError(await admin('PATCH', `models/${id}`, { body: { strategy: 'weighted' } }),
                  { status: 409, type: 'conflict_error', code: 'model_in_config' });
      assertError(await admin('DELETE', `models/${id}`), { status: 409, code: 'model_in_config' });
    }
    assert.equal((await admin('GET', `models/${first.id}`)).json.name, name);

    for (const id of [crypto.randomUUID(), 'not-a-uuid', 'config:no-such-model', 'a/b/c']) {
      assertError(await admin('GET', `models/${id}`), { status: 404, type: 'not_found_error', code: 'not_found' });
      assertError(await admin('PATCH', `models/${id}`, { body: { strategy: 'weighted' } }), { status: 404 });
      assertError(await admin('DELETE', `models/${id}`), { status: 404 });
    }
    assertError(await admin('PUT', 'models', { body: {} }), { status: 405, code: 'method_not_allowed' });
    assertError(await admin('DELETE', 'models'), { status: 405 });
    assertError(await admin('POST', `models/${first.id}`, { body: {} }), { status: 405 });
    assertError(await admin('POST', 'router/health', { body: {} }), { status: 405 });
  });

  it('answers 403 to keys without models:write (and router:read), and lets readers read', async () => {
    const model = await createModel({ name: `guarded-${nonce()}`, deployments: [deployment()] });
    for (const role of ['tenant-admin', 'developer', 'viewer']) {
      const key = await createKey(role);
      const list = await admin('GET', 'models', { key });
      assert.equal(list.status, 200, `${role}: ${list.text}`);
      assert.equal((await admin('GET', `models/${model.id}`, { key })).status, 200);
      const denied = { status: 403, type: 'permission_error', code: 'permission_denied' };
      assertError(await admin('POST', 'models', { key, body: { name: `no-${nonce()}`, deployments: [deployment()] } }), denied);
      assertError(await admin('PATCH', `models/${model.id}`, { key, body: { strategy: 'weighted' } }), denied);
      assertError(await admin('DELETE', `models/${model.id}`, { key }), denied);
      assertError(await admin('GET', 'router/health', { key }), denied);
    }
    assert.equal((await admin('GET', `models/${model.id}`)).json.name, model.name);
  });

  it('stores names full of quotes, SQL and Unicode exactly, and finds them by name', async () => {
    const names = [
      "Robert'); DROP TABLE models; --",
      '"double" \'single\' `back` \\ back\\slash $1 %s %n {{x}}',
      'emoji 🚀 漢字 ünïcödé Ωμέγα עברית العربية',
      'e\u0301 combining, zero\u200bwidth',
      '  leading and trailing spaces  ',
      '漢'.repeat(128),
      "' OR '1'='1",
    ];
    for (const name of names) {
      const model = await createModel({ name, fallbacks: [`${name.slice(0, 100)}-fb`],
                                        deployments: [deployment({ model: name })] });
      assert.equal(model.name, name);
      assert.equal(model.deployments[0].model, name);
      const read = await admin('GET', `models/${model.id}`);
      assert.equal(read.json.name, name);
      assert.deepEqual(read.json.fallbacks, [`${name.slice(0, 100)}-fb`]);
      const found = await admin('GET', `models?name=${encodeURIComponent(name)}`);
      assert.deepEqual(found.json.data.map((m) => m.id), [model.id], `by name: ${name}`);
      const renamed = await admin('PATCH', `models/${model.id}`, { body: { name: `${name.slice(0, 120)}!` } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.json.name, `${name.slice(0, 120)}!`);
    }
    assert.equal(db.sql("SELECT count (*) FROM pg_tables WHERE tablename IN ('models', 'model_deployments')").trim(), '2');
  });

  it('NOTIFYs aigw_models on every change, with the model id', async () => {
    const listener = listen(db.url, 'aigw_models');
    try {
      await listener.ready();
      const model = await createModel({ name: `notify-${nonce()}`, deployments: [deployment()] });
      const seen = async (n) => eventually(async () => {
        const ids = await listener.notifications();
        return ids.filter((id) => id === model.id).length >= n;
      }, NOTIFY_MS, 100);
      assert.ok(await seen(1), 'no NOTIFY after create');
      const count = async () => (await listener.notifications()).filter((id) => id === model.id).length;
      let before = await count();
      const patched = await admin('PATCH', `models/${model.id}`, { body: { deployments: [deployment({ weight: 9 })] } });
      assert.equal(patched.status, 200, patched.text);
      assert.ok(await seen(before + 1), 'no NOTIFY after patch');
      before = await count();
      assert.equal((await admin('DELETE', `models/${model.id}`)).status, 200);
      assert.ok(await seen(before + 1), 'no NOTIFY after delete');
    } finally {
      listener.stop();
    }
  });

  it('AIGW_MODELS_SQL gives provider processes each model document, ids and sealed api_key included', async () => {
    // The statement as compiled: the C string literals of actors/provider/aigw_models.c.
    const source = fs.readFileSync(path.join(SRC, 'actors', 'provider', 'aigw_models.c'), 'utf8');
    const literal = source.match(/const char AIGW_MODELS_SQL\[\]\s*=\s*((?:"(?:[^"\\]|\\.)*"\s*)+);/);
    assert.ok(literal, 'AIGW_MODELS_SQL not found in actors/provider/aigw_models.c');
    const sql = [...literal[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('');
    assert.ok(!sql.includes('\\'), 'an escape in AIGW_MODELS_SQL: this reader takes none');
    const key = secret();
    const model = await createModel({
      name: `served-${nonce()}`, strategy: 'lowest_cost', fallbacks: ['gpt-4o-mini'],
      deployments: [deployment({ api_key: key, weight: 4, price_in: 0.25, rpm: 60 }),
                    { provider: 'openai_compatible', model: 'm2', base_url: 'http://127.0.0.1:9/v1' }],
    });
    const docs = db.sql(sql).trim().split('\n').map((line) => JSON.parse(line));
    const doc = docs.find((d) => d.id === model.id);
    // The api_key comes sealed, bound to its row; the provider opens it.
    assert.equal(openSecret(doc.deployments[0].api_key, SECRET_KEY, model.deployments[0].id), key);
    doc.deployments[0].api_key = key;
    assert.deepEqual(doc, {
      id: model.id, name: model.name, strategy: 'lowest_cost', fallbacks: ['gpt-4o-mini'],
      deployments: [
        { id: model.deployments[0].id, provider: 'openai', model: 'gpt-4o-mini', api_key: key,
          weight: 4, priority: 0, rpm: 60, price_in: 0.25, price_out: 0 },
        { id: model.deployments[1].id, provider: 'openai_compatible', model: 'm2',
          base_url: 'http://127.0.0.1:9/v1', weight: 1, priority: 0, price_in: 0, price_out: 0 },
      ],
    });
    // Only members aigw_models_from_json takes.
    const members = new Set(['id', 'name', 'strategy', 'fallbacks', 'deployments']);
    const depMembers = new Set(['id', 'provider', 'model', 'base_url', 'api_key', 'api_key_env',
                                'api_version', 'region', 'weight', 'priority', 'rpm', 'tpm',
                                'price_in', 'price_out', 'price_cached_in']);
    for (const d of docs) {
      for (const k of Object.keys(d)) assert.ok(members.has(k), `member ${k}`);
      for (const dep of d.deployments) for (const k of Object.keys(dep)) assert.ok(depMembers.has(k), `member ${k}`);
    }
  });

  it('GET router/health answers 200 with a deployments array', async () => {
    const res = await admin('GET', 'router/health');
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get('content-type') || '', /application\/json/);
    assert.ok(Array.isArray(res.json.deployments), res.text);
  });

  it('writes one audit row per change, with no api_key in it', async () => {
    const key = secret();
    const model = await createModel({ name: `audited-${nonce()}`, deployments: [deployment({ api_key: key })] });
    await admin('PATCH', `models/${model.id}`, { body: { deployments: [
      { id: model.deployments[0].id, provider: 'openai', model: 'gpt-4o', api_key: secret() }] } });
    await admin('DELETE', `models/${model.id}`);
    const rows = db.sql(`SELECT action || '|' || actor_type || '|' || coalesce (before::text, '') || '|'
                                || coalesce (after::text, '')
                         FROM audit_log WHERE target_id = '${model.id}' ORDER BY id`).trim().split('\n');
    assert.deepEqual(rows.map((r) => r.split('|')[0]), ['models.create', 'models.update', 'models.delete']);
    assert.ok(rows.every((r) => r.split('|')[1] === 'master'));
    assert.ok(rows[0].includes('"api_key_set": true'), rows[0]);
    assert.ok(rows[1].includes('"gpt-4o"'), rows[1]);
    const audit = await admin('GET', `audit?target_id=${model.id}`);
    assert.equal(audit.status, 200, audit.text);
    assert.equal(audit.json.data.length, 3);
    assert.ok(audit.json.data.every((e) => e.target_type === 'model'));
  });

  it('never shows an upstream api_key: not in an answer, the audit log or the process log', async () => {
    assert.ok(secrets.length >= 6, `only ${secrets.length} secrets written`);
    const text = answers.join('\n');
    const audit = db.sql('SELECT coalesce (before::text, \'\') || coalesce (after::text, \'\') FROM audit_log');
    const log = gw.procs.map((p) => fs.readFileSync(p.logFile, 'utf8')).join('\n');
    assert.ok(answers.length > 50, `only ${answers.length} answers`);
    for (const s of secrets) {
      assert.ok(!text.includes(s), 'an answer holds an api_key');
      assert.ok(!audit.includes(s), 'the audit log holds an api_key');
      assert.ok(!log.includes(s), 'the process log holds an api_key');
    }
    assert.ok(!/"api_key"\s*:/.test(text), 'an answer has an api_key member');
    assert.ok(!/"api_key"\s*:/.test(audit), 'an audit row has an api_key member');
    // Nor the database itself: pg_dump shows sealed values only.
    const dump = db.dump();
    for (const s of secrets) assert.ok(!dump.includes(s), 'pg_dump shows an api_key');
    assert.ok(/aigw:v1:[0-9a-f]{8}:/.test(dump), 'no sealed api_key in the dump');
  });
});
