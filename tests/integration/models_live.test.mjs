// Models managed in the database take effect on every provider process
// without a restart: created, changed and deleted through the admin API
// while two provider processes serve (split deployment). Router health is
// merged across those processes.
//
// Needs PostgreSQL: DATABASE_URL's server (tests/run.sh) or a private cluster
// (pgtest.mjs).
import {
  assert, after, before, describe, it, eventually, freePort, nonce, secretKey, startGateway,
  startMock,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

// How long a change may take to reach every provider process.
const PROPAGATE_MS = 5000;

describe('database models, live, across two provider processes', () => {
  let db, gw, mock, other;

  before(async () => {
    db = await freshDatabase('aigw_models_live');
    migrate(db.url);
    mock = await startMock({ name: 'live-mock' });
    other = await startMock({ name: 'live-other' });
    gw = await startGateway({
      mode: 'split', name: 'live', mock, actors: { provider: 2 },
      env: { DATABASE_URL: db.url, AIGW_SECRET_KEY: secretKey() },
      config: { cache: { enabled: false }, router: { report_ms: 200 } },
    });
  }, { timeout: 90000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    await other?.stop();
    db?.destroy();
  });

  const admin = (method, p, body) => gw.fetch(`/api/v1/admin/${p}`, { method, body });

  // Ask NAME N times (two provider processes share the work); every answer's
  // status and X-AIGW-Provider.
  async function ask(name, n = 6) {
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = await gw.chat(`live ${nonce()}`, { model: name });
      out.push({ status: r.status, provider: r.headers.get('x-aigw-provider'), text: r.text });
    }
    return out;
  }

  let id, deploymentId;

  it('serves a model created through the API, on every provider process', async () => {
    const name = `live-${nonce()}`;
    const created = await admin('POST', 'models', {
      name, deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                            base_url: mock.baseURL, api_key: mock.apiKey }] });
    assert.equal(created.status, 201, created.text);
    id = created.json.id;
    deploymentId = created.json.deployments[0].id;
    const ok = await eventually(async () => (await ask(name)).every((a) => a.status === 200),
                                PROPAGATE_MS);
    const seen = JSON.stringify(await ask(name, 2));
    assert.ok(ok, `the new model was not served by every provider process: ${seen}`);
    const answers = await ask(name, 8);
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
      assert.equal(a.provider, deploymentId);
    }
    gw.createdName = name;
  });

  it('reports router health merged across both provider processes', async () => {
    const ok = await eventually(async () => {
      const r = await admin('GET', 'router/health');
      const d = r.json?.deployments?.find((x) => x.id === deploymentId);
      return d && d.instances === 2 && d.requests_total >= 8;
    }, PROPAGATE_MS);
    const r = await admin('GET', 'router/health');
    assert.ok(ok, `router/health: ${r.text}`);
    const d = r.json.deployments.find((x) => x.id === deploymentId);
    assert.equal(d.model, gw.createdName);
    assert.equal(d.status, 'healthy');
    assert.equal(d.circuit, 'closed');
    assert.ok(d.latency_ms.p50 !== null && d.latency_ms.p95 >= d.latency_ms.p50);
  });

  it('takes a changed deployment list into use without a restart', async () => {
    const before = (await other.stats()).chat;
    const patched = await admin('PATCH', `models/${id}`, {
      deployments: [{ id: 'moved', provider: 'openai_compatible', model: 'gpt-4o-mini',
                      base_url: other.baseURL, api_key: other.apiKey }] });
    assert.equal(patched.status, 400, 'an unknown deployment id must be refused');
    const ok2 = await admin('PATCH', `models/${id}`, {
      deployments: [{ provider: 'openai_compatible', model: 'gpt-4o-mini',
                      base_url: other.baseURL, api_key: other.apiKey }] });
    assert.equal(ok2.status, 200, ok2.text);
    const newId = ok2.json.deployments[0].id;
    const moved = await eventually(async () => (await ask(gw.createdName)).every(
      (a) => a.status === 200 && a.provider === newId), PROPAGATE_MS);
    assert.ok(moved, 'requests still went to the old deployment');
    assert.ok((await other.stats()).chat > before, 'the new upstream was never called');
  });

  it('stops serving a deleted model', async () => {
    const deleted = await admin('DELETE', `models/${id}`);
    assert.equal(deleted.status, 200, deleted.text);
    const gone = await eventually(async () => (await ask(gw.createdName, 4)).every(
      (a) => a.status === 404), PROPAGATE_MS);
    assert.ok(gone, 'the deleted model was still served');
    const r = await gw.chat('x', { model: gw.createdName });
    assert.equal(r.json.error.code, 'model_not_found');
  });

  it('lists database models in /v1/models', async () => {
    const name = `listed-${nonce()}`;
    const created = await admin('POST', 'models', {
      name, deployments: [{ provider: 'openai_compatible', model: 'm', base_url: mock.baseURL }] });
    assert.equal(created.status, 201, created.text);
    const listed = await eventually(async () => {
      const r = await gw.fetch('/v1/models');
      return r.json?.data?.some((m) => m.id === name);
    }, PROPAGATE_MS);
    assert.ok(listed, `${name} never appeared in /v1/models`);
  });
});
