// Provider credentials at rest: an api_key written through the admin API is
// stored sealed (AES-256-GCM under AIGW_SECRET_KEY, aigw:v1:KID:...), never
// in clear (pg_dump), and still reaches the upstream. Keys rotate: restart
// with a new key and the old one as previous, `aigw secrets rotate`, then
// the new key alone. A key that does not open a value makes that deployment
// answer 503 while the other models serve. Without a key, storing an
// api_key is refused. The mock shows credentials redacted.
//
// Needs PostgreSQL: DATABASE_URL's server (tests/run.sh) or a private cluster
// (pgtest.mjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import {
  BIN, after, assert, assertError, before, describe, eventually, it, nonce, openSecret,
  redacted, request, secretKey, startGateway, startMock,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

describe('secrets at rest: provider api_keys sealed in the database', () => {
  let db, mock, upstream, gw;
  const A = secretKey();
  const B = secretKey();
  const name = `sealed-${nonce()}`;
  let modelId, deploymentId;

  before(async () => {
    db = await freshDatabase('aigw_secrets');
    migrate(db.url);
    mock = await startMock({ name: 'secrets-mock' });
    // The database model's upstream: it answers only its own key.
    upstream = await startMock({ name: 'secrets-upstream' });
  }, { timeout: 90000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    await upstream?.stop();
    db?.destroy();
  });

  // (Re)start the gateway with ENV (its secret keys).
  async function restart(env, label) {
    await gw?.stop();
    gw = await startGateway({ mode: 'run', name: `secrets-${label}`, mock,
                              env: { DATABASE_URL: db.url, ...env } });
  }

  // The stored value of the deployment's api_key.
  const stored = () =>
    db.sql(`SELECT api_key FROM model_deployments WHERE id = '${deploymentId}'`).trim();

  // `aigw secrets rotate` with ENV; { status, stdout, stderr }.
  function rotate(env) {
    const r = spawnSync(BIN, ['secrets', 'rotate'], {
      encoding: 'utf8', timeout: 30000,
      env: { ...process.env, DATABASE_URL: db.url, AIGW_SECRET_KEY: '',
             AIGW_SECRET_PREVIOUS_KEYS: '', ...env },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  // Chat with the database model until it answers STATUS (a reload after a
  // restart or a change may take a moment); the last answer.
  async function askUntil(status) {
    let last;
    const ok = await eventually(async () => {
      last = await gw.chat(`secret ${nonce()}`, { model: name });
      return last.status === status;
    }, 10000, 200);
    assert.ok(ok, `expected ${status}, got ${last?.status}: ${last?.text}`);
    return last;
  }

  it('without a secret key, storing an api_key is refused with a 400 naming AIGW_SECRET_KEY', async () => {
    await restart({}, 'nokey');
    const res = await gw.fetch('/api/v1/admin/models', { method: 'POST', body: {
      name: `refused-${nonce()}`, deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                                                  base_url: upstream.baseURL, api_key: upstream.apiKey }] } });
    assertError(res, { status: 400, param: 'deployments[0].api_key' });
    assert.match(res.json.error.message, /AIGW_SECRET_KEY/);
    assert.ok(!res.text.includes(upstream.apiKey));
    assert.equal(db.sql('SELECT count (*) FROM model_deployments').trim(), '0');
    // A key named by environment variable needs no sealing.
    const env = await gw.fetch('/api/v1/admin/models', { method: 'POST', body: {
      name: `by-env-${nonce()}`, deployments: [{ provider: 'openai', model: 'gpt-4o-mini',
                                                 api_key_env: 'SOME_KEY' }] } });
    assert.equal(env.status, 201, env.text);
  });

  it('a bad AIGW_SECRET_KEY stops start-up with a clear message that does not echo it', () => {
    for (const bad of ['too-short', `${A}00`, 'x'.repeat(43)]) {
      const r = spawnSync(BIN, ['run'], { encoding: 'utf8', timeout: 20000,
                                          env: { ...process.env, AIGW_SECRET_KEY: bad, AIGW_PORT: '1' } });
      assert.equal(r.status, 2, `${bad}: ${r.status} ${r.stderr}`);
      assert.match(r.stderr, /AIGW_SECRET_KEY: expected a 32-byte key as 64 hex digits or base64/);
      assert.ok(!r.stderr.includes(bad), r.stderr);
    }
  });

  it('stores the api_key sealed under key A: pg_dump shows no plaintext, the upstream gets the key', async () => {
    await restart({ AIGW_SECRET_KEY: A }, 'a');
    const res = await gw.fetch('/api/v1/admin/models', { method: 'POST', body: {
      name, deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                            base_url: upstream.baseURL, api_key: upstream.apiKey }] } });
    assert.equal(res.status, 201, res.text);
    modelId = res.json.id;
    deploymentId = res.json.deployments[0].id;
    assert.equal(res.json.deployments[0].api_key_set, true);

    const value = stored();
    assert.match(value, /^aigw:v1:[0-9a-f]{8}:[A-Za-z0-9+/]+=*$/);
    assert.equal(openSecret(value, A, deploymentId), upstream.apiKey);
    const dump = db.dump();
    assert.ok(!dump.includes(upstream.apiKey), 'pg_dump shows the api_key');
    assert.ok(dump.includes(value));

    // The upstream answers only its own key: a 200 proves it was sent.
    const answer = await askUntil(200);
    assert.equal(answer.headers.get('x-aigw-provider'), deploymentId);
    const seen = (await request(upstream.url, '/mock/requests', { key: upstream.apiKey })).json;
    const last = seen.filter((x) => x.route === 'openai').at(-1);
    assert.equal(last.headers.authorization, `Bearer ${redacted(upstream.apiKey)}`);
    assert.ok(!JSON.stringify(seen).includes(upstream.apiKey), 'the mock shows the key');
  });

  it('a value moved to another row does not open: that deployment answers 503, others serve', async () => {
    // A second model whose row gets a copy of the first one's sealed value.
    const other = `moved-${nonce()}`;
    const res = await gw.fetch('/api/v1/admin/models', { method: 'POST', body: {
      name: other, deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                                   base_url: upstream.baseURL, api_key: `sk-other-${nonce()}` }] } });
    assert.equal(res.status, 201, res.text);
    db.sql(`UPDATE model_deployments SET api_key = '${stored()}' WHERE id = '${res.json.deployments[0].id}'`);
    let last;
    assert.ok(await eventually(async () => {
      last = await gw.chat(`moved ${nonce()}`, { model: other });
      return last.status === 503;
    }, 10000, 200), `${last?.status} ${last?.text}`);
    assert.equal(last.json.error.code, 'deployment_credentials_unreadable');
    assert.equal((await gw.chat('still fine', { model: name })).status, 200);
    db.sql(`DELETE FROM models WHERE id = '${res.json.id}'`);
  });

  it('rotates: B current with A previous serves; `aigw secrets rotate` reseals under B; then B alone serves', async () => {
    const underA = stored();
    await restart({ AIGW_SECRET_KEY: B, AIGW_SECRET_PREVIOUS_KEYS: A }, 'b-then-a');
    await askUntil(200);

    // Rotating needs the new key...
    let r = rotate({});
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /AIGW_SECRET_KEY/);
    // ...and opens every value with whichever key sealed it.
    r = rotate({ AIGW_SECRET_KEY: B, AIGW_SECRET_PREVIOUS_KEYS: A });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 value\(s\) encrypted under key [0-9a-f]{8}, 0 already were/);
    const underB = stored();
    assert.notEqual(underB, underA);
    assert.equal(openSecret(underB, B, deploymentId), upstream.apiKey);
    assert.throws(() => openSecret(underB, A, deploymentId));
    // Idempotent: a second run changes nothing.
    r = rotate({ AIGW_SECRET_KEY: B, AIGW_SECRET_PREVIOUS_KEYS: A });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /0 value\(s\) encrypted under key [0-9a-f]{8}, 1 already were/);
    assert.equal(stored(), underB);
    // An audit row per value rewritten, without the value.
    const audit = db.sql("SELECT count (*) FROM audit_log WHERE action = 'secrets.rotate'").trim();
    assert.equal(audit, '1');

    await restart({ AIGW_SECRET_KEY: B }, 'b');
    await askUntil(200);
  });

  it('the wrong key: that model answers 503 with a clear message and a log line; the others serve', async () => {
    await restart({ AIGW_SECRET_KEY: A }, 'wrong');
    const res = await askUntil(503);
    assert.equal(res.json.error.code, 'deployment_credentials_unreadable');
    assert.match(res.json.error.message, /cannot be decrypted.*AIGW_SECRET_KEY/);
    const ok = await gw.chat('config model', { model: 'gpt-4o-mini' });
    assert.equal(ok.status, 200, ok.text);
    const log = gw.procs.map((p) => fs.readFileSync(p.logFile, 'utf8')).join('\n');
    assert.match(log, new RegExp(`deployment ${deploymentId}: its stored api_key cannot be decrypted: ` +
                                 'it was sealed with key id [0-9a-f]{8}, which is not configured'));
    for (const k of [A, B, upstream.apiKey]) assert.ok(!log.includes(k), 'a key in the log');
  });

  it('a legacy plaintext value still works (logged), and rotate seals it', async () => {
    db.sql(`UPDATE model_deployments SET api_key = '${upstream.apiKey}' WHERE id = '${deploymentId}'`);
    await askUntil(200);
    const log = gw.procs.map((p) => fs.readFileSync(p.logFile, 'utf8')).join('\n');
    assert.match(log, /api_key is stored unencrypted/);
    const r = rotate({ AIGW_SECRET_KEY: A });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(openSecret(stored(), A, deploymentId), upstream.apiKey);
    await askUntil(200);
    assert.ok(!db.dump().includes(upstream.apiKey));
    assert.ok(modelId);
  });
});
