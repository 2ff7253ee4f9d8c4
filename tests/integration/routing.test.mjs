// The router: fallback across deployments and models, no fallback on the
// client's own 4xx, circuit breakers seen through router/health and
// /metrics, Retry-After, first-token timeouts and streams that die mid-way.
// Upstreams are `aigw mock-provider` processes; one deployment points at a
// port nobody listens on.
import {
  assert, assertError, describe, freePort, it, nonce, readSSE, sleep, startGateway,
  startMock, before, after,
} from './lib.mjs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const COOLDOWN_MS = 1500;

describe('router: fallback, breakers, retries, timeouts', () => {
  let gw, good, silent, deadPort;
  const held = new Set();

  before(async () => {
    good = await startMock({ name: 'good' });
    // An upstream that accepts connections and never answers.
    silent = net.createServer((sock) => { held.add(sock); sock.on('close', () => held.delete(sock)); });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const slow = { baseURL: `http://127.0.0.1:${silent.address().port}/v1`, apiKey: 'sk-silent' };
    deadPort = await freePort();
    const dead = `http://127.0.0.1:${deadPort}/v1`;
    const dep = (id, mock, extra = {}) => ({
      id, provider: 'openai_compatible', model: 'gpt-4o-mini',
      base_url: mock ? mock.baseURL : dead, api_key: mock ? mock.apiKey : 'sk-nobody', ...extra,
    });
    gw = await startGateway({
      mock: good,
      config: {
        cache: { enabled: false },
        router: {
          max_attempts: 3, retry_base_ms: 50, retry_cap_ms: 200, first_token_timeout_ms: 1000,
          report_ms: 200,
          breaker: { consecutive_failures: 2, cooldown_ms: COOLDOWN_MS, min_samples: 100 },
        },
        models: [
          { name: 'gpt-4o-mini', provider: 'openai' },
          // Priority 0 is down (nobody listens); priority 1 answers.
          { name: 'tiered', deployments: [dep('tier-dead', null), dep('tier-good', good, { priority: 1 })] },
          // A model whose only deployment is down falls back to another model.
          { name: 'primary', fallbacks: ['backup'], deployments: [dep('primary-dead', null)] },
          { name: 'backup', deployments: [dep('backup-good', good)] },
          // The silent upstream misses the first-token timeout; the good one answers.
          { name: 'hasty', deployments: [dep('hasty-slow', slow), dep('hasty-good', good, { priority: 1 })] },
          // One deployment, for the breaker and Retry-After.
          { name: 'fragile', deployments: [dep('fragile-1', good)] },
          { name: 'single', deployments: [dep('single-1', good)] },
          { name: 'streamer', deployments: [dep('streamer-1', good)] },
          // RPM capacity: the first deployment takes one request a minute.
          { name: 'capped', deployments: [dep('capped-1', good, { rpm: 1 }),
                                          dep('capped-2', good, { rpm: 1, priority: 1 })] },
        ],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await good?.stop();
    for (const sock of held) sock.destroy();
    silent?.close();
  });

  const chat = (model, content, opts = {}) => gw.chat(`${content} ${nonce()}`, { model, ...opts });

  async function health() {
    const r = await gw.fetch('/api/v1/admin/router/health');
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json.deployments), r.text);
    return r.json.deployments;
  }

  // Poll router/health until deployment ID satisfies FN (reports arrive on a schedule).
  async function healthOf(id, fn, timeoutMs = 5000) {
    const end = performance.now() + timeoutMs;
    let last;
    while (performance.now() < end) {
      last = (await health()).find((d) => d.id === id);
      if (last && fn(last)) return last;
      await sleep(100);
    }
    assert.fail(`router/health never showed ${id} as expected; last: ${JSON.stringify(last)}`);
  }

  it('falls back to the next priority when a deployment cannot be reached', async () => {
    const res = await chat('tiered', 'hello');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-aigw-provider'), 'tier-good');
    assert.ok(res.json.choices[0].message.content.length > 0);
  });

  it('falls back across models by the configured chain', async () => {
    const res = await chat('primary', 'hello');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-aigw-provider'), 'backup-good');
  });

  it('never falls back on the client\'s own 400', async () => {
    const before = (await good.stats()).chat;
    const res = await chat('tiered', 'mock:status=400');
    assertError(res, { status: 400, type: 'invalid_request_error', code: 'upstream_rejected' });
    const after = (await good.stats()).chat;
    assert.equal(after - before, 1, 'the 400 was retried');
  });

  it('fails over when the first token is late', async () => {
    const t0 = performance.now();
    const res = await chat('hasty', 'hello');
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-aigw-provider'), 'hasty-good');
    assert.ok(ms < 3500, `took ${ms.toFixed(0)} ms: the silent upstream was waited out`);
  });

  it('honours Retry-After between attempts, within the deadline', async () => {
    const before = (await good.stats()).chat;
    const t0 = performance.now();
    const res = await chat('single', 'mock:status=429');
    const ms = performance.now() - t0;
    assertError(res, { status: 429, type: 'rate_limit_error', code: 'upstream_rate_limited' });
    assert.ok(Number(res.headers.get('retry-after')) >= 1, 'no Retry-After on the 429');
    const attempts = (await good.stats()).chat - before;
    assert.ok(attempts >= 2, `only ${attempts} attempt(s)`);
    // Each retry waited at least the upstream's Retry-After (1 s).
    assert.ok(ms >= 1000 * (attempts - 1) - 50, `${attempts} attempts in ${ms.toFixed(0)} ms`);
  });

  it('opens the breaker, reports it, and closes it after recovery', async () => {
    // Retries inside one request count towards the breaker too: the first
    // failing request may already open it.
    const first = await chat('fragile', 'mock:status=500');
    assertError(first, { status: 502, type: 'upstream_error', code: 'upstream_error' });
    for (let i = 0; i < 3; i++) {
      const r = await chat('fragile', 'mock:status=500');
      if (r.status === 503) break;
      assert.equal(r.status, 502, r.text);
    }
    const refused = await chat('fragile', 'hello');
    assertError(refused, { status: 503, type: 'service_unavailable', code: 'no_healthy_deployment' });
    const open = await healthOf('fragile-1', (d) => d.circuit === 'open');
    assert.equal(open.status, 'down');
    assert.equal(open.model, 'fragile');
    assert.equal(open.provider, 'openai_compatible');
    assert.ok(open.error_rate > 0, JSON.stringify(open));
    assert.ok(open.last_error.includes('500'), open.last_error);
    const metrics = await gw.fetch('/metrics', { key: null });
    assert.match(metrics.text,
                 /aigw_deployment_up\{model="fragile",deployment="fragile-1",provider="openai_compatible"\} 0/);
    await sleep(COOLDOWN_MS + 200);
    const probe = await chat('fragile', 'hello again');
    assert.equal(probe.status, 200, probe.text);
    const closed = await healthOf('fragile-1', (d) => d.circuit === 'closed');
    assert.notEqual(closed.status, 'down');
    assert.ok(closed.latency_ms.p50 >= 0);
  });

  it('reports every deployment with latency and in-flight figures', async () => {
    const list = await health();
    const good1 = list.find((d) => d.id === 'tier-good');
    assert.ok(good1, JSON.stringify(list));
    assert.equal(good1.status, 'healthy');
    assert.equal(typeof good1.in_flight, 'number');
    assert.ok(good1.latency_ms.p95 >= good1.latency_ms.p50);
    const dead = list.find((d) => d.id === 'tier-dead');
    assert.ok(dead.error_rate > 0);
  });

  it('ends a stream that dies mid-way with an error event, not a hang', async () => {
    const s = await gw.chatStream(`story ${nonce()} mock:chunks=20 mock:die_after=3`, {
      model: 'streamer', timeoutMs: 15000 });
    assert.equal(s.status, 200, s.text);
    assert.ok(s.contents.length >= 1 && s.contents.length < 20, `${s.contents.length} chunks`);
    const last = s.events[s.events.length - 1];
    assert.ok(last?.json?.error, `last event: ${JSON.stringify(last)}`);
    assert.equal(s.done, false);
  });

  it('spills over to the next deployment at RPM capacity, then answers 429', async () => {
    const first = await chat('capped', 'one');
    assert.equal(first.headers.get('x-aigw-provider'), 'capped-1', first.text);
    const second = await chat('capped', 'two');
    assert.equal(second.headers.get('x-aigw-provider'), 'capped-2', second.text);
    const third = await chat('capped', 'three');
    assertError(third, { status: 429, type: 'rate_limit_error', code: 'deployment_capacity' });
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
  });

  it('streams fail over while nothing reached the client', async () => {
    const s = await gw.chatStream(`hello ${nonce()}`, { model: 'tiered' });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.headers.get('x-aigw-provider'), 'tier-good');
    assert.ok(s.done);
    assert.ok(s.contents.length > 0);
  });
});
