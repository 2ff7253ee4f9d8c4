// Usage records (issue 10): one row per answered data-plane request in
// PostgreSQL (usage_records), with its fields and cost; none lost or
// doubled while the database is stopped, or when the usage actor is killed
// with kill -9 and started again.
import os from 'node:os';
import path from 'node:path';
import {
  assert, after, before, describe, eventually, it, nonce, sleep, startGateway,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const PRICE_IN = 2;     // USD per million prompt tokens
const PRICE_OUT = 8;    // USD per million completion tokens

function config(name) {
  return {
    auth: { keys: [{ name: 'limited', tenant: 'team-limited', role: 'developer', rpm: 2 }] },
    guardrail: { deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }] },
    models: [
      { name: 'gpt-4o-mini',
        deployments: [{ id: 'mock-mini', provider: 'openai', model: 'gpt-4o-mini',
                        price_in: PRICE_IN, price_out: PRICE_OUT }] },
      { name: 'text-embedding-3-small', provider: 'openai' },
    ],
    usage: { batch_ms: 50, spool_path: path.join(os.tmpdir(), `aigw-usage-${name}-${nonce()}.spool`) },
  };
}

const rows = (pg, where = 'true') => Number(pg.sql(`SELECT count (*) FROM usage_records WHERE ${where}`).trim());

// Wait until the table holds WANT rows (and no more).
async function expectRows(pg, want, timeoutMs = 30000) {
  let got = -1;
  await eventually(async () => (got = rows(pg)) >= want, timeoutMs, 100);
  await sleep(300);
  got = rows(pg);
  assert.equal(got, want, `usage_records holds ${got} rows for ${want} answered requests: ${
    got < 40 ? pg.sql('SELECT request_id, status FROM usage_records ORDER BY ts').replace(/\n/g, ' ') : ''}`);
  const distinct = Number(pg.sql('SELECT count (DISTINCT record_id) FROM usage_records').trim());
  assert.equal(distinct, want, 'a record id appears twice');
}

// Light load: one request at a time until STOP() is true; counts answers.
async function load(gw, stop) {
  let answered = 0;
  while (!stop()) {
    try {
      const res = await gw.chat(`load ${nonce()}`, { headers: { 'cache-control': 'no-store' } });
      if (res.status) answered++;
    } catch { /* no answer: no record either */ }
    await sleep(20);
  }
  return answered;
}

describe('usage records (run)', () => {
  let pg, gw;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    gw = await startGateway({ mode: 'run', name: 'usage-run', config: config('run'),
                              env: { DATABASE_URL: pg.url } });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (pg) pg.destroy();
  });

  it('writes one row per answered request of every kind, with its fields and cost', async () => {
    const tag = nonce();
    const traceId = `${tag}`.replace(/[^0-9a-f]/g, '').padEnd(32, 'c').slice(0, 32);
    const chat = await gw.chat(`hello ${tag}`, { headers: {
      'x-request-id': `chat-${tag}`, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    assert.equal(chat.status, 200, chat.text);
    const hit = await gw.chat(`hello ${tag}`, { headers: { 'x-request-id': `hit-${tag}` } });
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    const stream = await gw.chatStream(`stream ${tag}`, { headers: { 'x-request-id': `stream-${tag}` } });
    assert.equal(stream.status, 200);
    const messages = await gw.fetch('/v1/messages', {
      headers: { 'x-request-id': `messages-${tag}` },
      body: { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: `m ${tag}` }] } });
    assert.equal(messages.status, 200, messages.text);
    const emb = await gw.fetch('/v1/embeddings', {
      headers: { 'x-request-id': `emb-${tag}` },
      body: { model: 'text-embedding-3-small', input: `e ${tag}` } });
    assert.equal(emb.status, 200, emb.text);
    const bad = await gw.fetch('/v1/chat/completions', { headers: { 'x-request-id': `bad-${tag}` },
                                                         body: '{"model": ' });
    assert.equal(bad.status, 400);
    const unknown = await gw.chat('x', { model: 'no-such-model', headers: { 'x-request-id': `404-${tag}` } });
    assert.equal(unknown.status, 404);
    const fail = await gw.chat(`fail ${tag} mock:status=500`, { headers: { 'x-request-id': `5xx-${tag}` } });
    assert.equal(fail.status, 502);
    const blocked = await gw.chat(`my password: hunter2 ${tag}`, { headers: { 'x-request-id': `gr-${tag}` } });
    assert.equal(blocked.status, 400);
    const limited = [];
    for (let i = 0; i < 3; i++) {
      limited.push(await gw.chat(`limited ${i} ${tag}`, { key: gw.key('limited'),
                                                         headers: { 'x-request-id': `rl${i}-${tag}` } }));
    }
    assert.equal(limited[2].status, 429);
    const n = 12;
    await expectRows(pg, n);

    const row = (id) => {
      const out = pg.sql(`SELECT status, endpoint, stream, model, coalesce (deployment, ''),
                                 coalesce (provider, ''), coalesce (error_type, ''),
                                 coalesce (error_code, ''), prompt_tokens, completion_tokens,
                                 cost_usd, coalesce (cache, ''), attempts, coalesce (tenant, ''),
                                 coalesce (key_name, ''), latency_ms >= 0, ttft_ms IS NOT NULL,
                                 ts > now () - interval '5 minutes'
                            FROM usage_records WHERE request_id = '${id}'`).trim();
      assert.ok(out, `no row for ${id}`);
      const [status, endpoint, stream, model, deployment, provider, errorType, errorCode, pin, pout,
             cost, cache, attempts, tenant, keyName, lat, ttft, recent] = out.split('|');
      return { status: Number(status), endpoint, stream, model, deployment, provider, errorType,
               errorCode, pin: Number(pin), pout: Number(pout), cost: Number(cost), cache,
               attempts: Number(attempts), tenant, keyName, lat, ttft, recent };
    };
    // Where the time went: each stage's microseconds, the guardrail's
    // verdict, the trace id.
    const detail = (id) => {
      const out = pg.sql(`SELECT coalesce (stages::text, ''), coalesce (guardrail, ''), fallbacks,
                                 coalesce (trace_id, '')
                            FROM usage_records WHERE request_id = '${id}'`).trim();
      const [stages, guardrail, fallbacks, traceId] = out.split('|');
      return { stages: stages ? JSON.parse(stages) : null, guardrail, fallbacks: Number(fallbacks), traceId };
    };
    const cd = detail(`chat-${tag}`);
    assert.deepEqual(Object.keys(cd.stages).sort(), ['auth', 'cache', 'guardrail', 'provider', 'ratelimit']);
    assert.ok(Object.values(cd.stages).every((us) => Number.isInteger(us) && us > 0), JSON.stringify(cd.stages));
    assert.equal(cd.guardrail, 'pass');
    assert.equal(cd.fallbacks, 0);
    assert.equal(cd.traceId, traceId, "the client's trace, tracing off here");
    assert.equal(detail(`emb-${tag}`).traceId, '', 'no trace given, none kept');
    const gd = detail(`gr-${tag}`);
    assert.equal(gd.guardrail, 'block:deny_list:no-passwords');
    assert.deepEqual(Object.keys(gd.stages).sort(), ['auth', 'guardrail', 'ratelimit'],
                     'a blocked request stops at the guardrail');
    const hd = detail(`hit-${tag}`);
    assert.ok(!('provider' in hd.stages), 'a cache hit never reaches the provider');
    const c = row(`chat-${tag}`);
    assert.equal(c.status, 200);
    assert.equal(c.endpoint, '/v1/chat/completions');
    assert.equal(c.stream, 'f');
    assert.equal(c.deployment, 'mock-mini');
    assert.equal(c.provider, 'openai');
    assert.equal(c.cache, 'MISS');
    assert.equal(c.attempts, 1);
    assert.equal(c.pin, chat.json.usage.prompt_tokens);
    assert.equal(c.pout, chat.json.usage.completion_tokens);
    assert.ok(c.pin > 0 && c.pout > 0);
    assert.ok(Math.abs(c.cost - (c.pin * PRICE_IN + c.pout * PRICE_OUT) / 1e6) < 1e-9,
              `cost ${c.cost}`);
    assert.equal(c.lat, 't');
    assert.equal(c.recent, 't');
    const h = row(`hit-${tag}`);
    assert.equal(h.status, 200);
    assert.equal(h.cache, 'HIT');
    assert.equal(h.cost, 0);
    const s = row(`stream-${tag}`);
    assert.equal(s.status, 200);
    assert.equal(s.stream, 't');
    assert.equal(s.deployment, 'mock-mini');
    assert.equal(s.ttft, 't');
    const m = row(`messages-${tag}`);
    assert.equal(m.endpoint, '/v1/messages');
    assert.equal(m.pin, messages.json.usage.input_tokens);
    assert.equal(m.pout, messages.json.usage.output_tokens);
    assert.ok(m.cost > 0);
    const e = row(`emb-${tag}`);
    assert.equal(e.endpoint, '/v1/embeddings');
    assert.equal(e.status, 200);
    const b = row(`bad-${tag}`);
    assert.equal(b.status, 400);
    assert.equal(b.errorType, 'invalid_request_error');
    const u = row(`404-${tag}`);
    assert.equal(u.status, 404);
    assert.equal(u.errorCode, 'model_not_found');
    const f = row(`5xx-${tag}`);
    assert.equal(f.status, 502);
    assert.equal(f.errorType, 'upstream_error');
    assert.ok(f.attempts >= 1);
    const g = row(`gr-${tag}`);
    assert.equal(g.status, 400);
    assert.equal(g.errorType, 'guardrail_error');
    const r = row(`rl2-${tag}`);
    assert.equal(r.status, 429);
    assert.equal(r.errorType, 'rate_limit_error');
    assert.equal(r.tenant, 'team-limited');
    assert.equal(r.keyName, 'limited');
    assert.equal(row(`rl0-${tag}`).status, 200);
  });

  it('loses and doubles nothing while PostgreSQL is stopped for 20 s under load', async () => {
    const before = rows(pg);
    let stop = false;
    const running = load(gw, () => stop);
    await sleep(1000);
    pg.stop('fast');
    await sleep(20000);
    pg.start();
    await sleep(1500);
    stop = true;
    const answered = await running;
    assert.ok(answered > 20, `only ${answered} requests answered`);
    await expectRows(pg, before + answered, 60000);
  });
});

describe('usage records (split: the usage actor killed with kill -9)', () => {
  let pg, gw;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    gw = await startGateway({ mode: 'split', name: 'usage-split', config: config('split'),
                              env: { DATABASE_URL: pg.url } });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (pg) pg.destroy();
  });

  it('has a row for every request after the usage actor died mid-load and came back', async () => {
    let stop = false;
    const running = load(gw, () => stop);
    await sleep(1500);
    assert.equal(await gw.killActor('usage', 'SIGKILL'), 1);
    await sleep(1500);
    gw.startActor('usage');
    await sleep(2000);
    stop = true;
    const answered = await running;
    assert.ok(answered > 20, `only ${answered} requests answered`);
    await expectRows(pg, answered, 60000);
  });
});
