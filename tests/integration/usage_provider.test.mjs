// Usage records, the provider's part (issue 10): tokens for every stream
// (OpenAI-format upstreams are asked for stream_options.include_usage, and
// a client that did not ask never sees the usage chunk), Anthropic, Gemini
// and Bedrock streams through /v1/chat/completions and /v1/messages, cached
// prompt tokens priced at price_cached_in, attempts of a fallback, and the
// traceparent the upstream receives.
import fs from 'node:fs';
import path from 'node:path';
import {
  SRC, after, assert, before, describe, eventually, it, nonce, readSSE, request, startGateway,
  startMock,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const PRICE_IN = 2;        // USD per million prompt tokens
const PRICE_CACHED = 0.5;  // USD per million prompt tokens read from the upstream's cache
const PRICE_OUT = 8;       // USD per million completion tokens
const AWS_KEY_ID = 'AKIDUSAGEPROVIDER';
const AWS_SECRET = `aws-secret-${nonce(10)}`;
const CACHED = 3;          // mock:cached=CACHED

// A deployment of provider NAME on MOCK, with the prices.
function deployment(name, mock) {
  const prices = { price_in: PRICE_IN, price_out: PRICE_OUT, price_cached_in: PRICE_CACHED };
  switch (name) {
    case 'openai': return { id: 'dep-openai', provider: 'openai_compatible', model: 'gpt-4o-mini',
                            base_url: mock.baseURL, api_key: mock.apiKey, ...prices };
    case 'anthropic': return { id: 'dep-anthropic', provider: 'anthropic', model: 'claude-3-5-haiku-latest',
                               base_url: mock.url, api_key: mock.apiKey, ...prices };
    case 'gemini': return { id: 'dep-gemini', provider: 'gemini', model: 'gemini-2.0-flash',
                            base_url: mock.url, api_key: mock.apiKey, ...prices };
    case 'bedrock': return { id: 'dep-bedrock', provider: 'bedrock',
                             model: 'anthropic.claude-3-haiku-20240307-v1:0', base_url: mock.url,
                             region: 'us-east-1', ...prices };
    default: throw new Error(name);
  }
}
const PROVIDERS = ['openai', 'anthropic', 'gemini', 'bedrock'];

function config(mock, extra = {}) {
  return {
    cache: { enabled: false },
    router: { max_attempts: 3, retry_base_ms: 10, retry_cap_ms: 50,
              breaker: { consecutive_failures: 0, error_rate: 0 } },
    providers: {
      bedrock: { region: 'us-east-1', access_key_id: AWS_KEY_ID, secret_access_key: AWS_SECRET },
    },
    models: [
      ...PROVIDERS.map((p) => ({ name: `u-${p}`, deployments: [deployment(p, mock)] })),
      // Its one deployment (the mock's Azure route, made to answer 500)
      // fails; the model falls back to u-openai.
      { name: 'u-fallback', fallbacks: ['u-openai'],
        deployments: [{ id: 'dep-failing', provider: 'azure', model: 'my-gpt4o', base_url: mock.url,
                        api_key: mock.apiKey, api_version: '2024-10-21', price_in: PRICE_IN }] },
      { name: 'text-embedding-3-small', provider: 'openai' },
    ],
    usage: { batch_ms: 50 },
    ...extra,
  };
}

// The usage record of request ID, once written.
async function record(pg, id) {
  let out = '';
  await eventually(async () => {
    out = pg.sql(`SELECT status, coalesce (deployment, ''), prompt_tokens, completion_tokens,
                         cached_tokens, cost_usd, attempts, stream
                    FROM usage_records WHERE request_id = '${id}'`).trim();
    return out !== '';
  }, 20000, 100);
  const [status, deployment, pin, pout, cached, cost, attempts, stream] = out.split('|');
  return { status: Number(status), deployment, pin: Number(pin), pout: Number(pout),
           cached: Number(cached), cost: Number(cost), attempts: Number(attempts), stream };
}

const costOf = (pin, pout, cached = 0) =>
  ((pin - cached) * PRICE_IN + cached * PRICE_CACHED + pout * PRICE_OUT) / 1e6;

function assertCost(row, cached = 0) {
  const want = costOf(row.pin, row.pout, cached);
  assert.ok(Math.abs(row.cost - want) < 1e-9, `cost ${row.cost}, want ${want}`);
}

// What the mock received last for a request mentioning NEEDLE.
async function received(mock, needle) {
  const r = await request(mock.url, '/mock/requests', { key: mock.apiKey });
  assert.equal(r.status, 200, r.text);
  const hit = r.json.filter((x) => JSON.stringify(x.body ?? '').includes(needle));
  assert.ok(hit.length > 0, `the mock saw no request mentioning ${needle}`);
  return hit.at(-1);
}

// A streamed /v1/messages call (Anthropic's client format).
async function messagesStream(gw, model, content, headers = {}) {
  const res = await fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': gw.masterKey,
               'anthropic-version': '2023-06-01', ...headers },
    body: JSON.stringify({ model, max_tokens: 100, stream: true,
                           messages: [{ role: 'user', content }] }),
    signal: AbortSignal.timeout(30000),
  });
  assert.equal(res.status, 200, await (res.ok ? '' : res.text()));
  return readSSE(res);
}

// The usage-only chunks of an OpenAI stream: no choices, a usage object.
const usageChunks = (s) => s.events.filter((e) => e.json && Array.isArray(e.json.choices)
                                                 && e.json.choices.length === 0 && e.json.usage);

describe('usage records: the provider part', () => {
  let pg, mock, gw;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    mock = await startMock({ name: 'usage-provider-mock' });
    const r = await request(mock.url, '/mock/config', {
      key: mock.apiKey, body: { route: 'azure', fail_rate: 1, fail_status: 500 } });
    assert.equal(r.status, 200, r.text);
    gw = await startGateway({ name: 'usage-provider', mock, config: config(mock),
                              env: { DATABASE_URL: pg.url } });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
    if (pg) pg.destroy();
  });

  it('a stream to an OpenAI deployment records the tokens; the client, who did not ask, gets no usage chunk', async () => {
    const tag = nonce();
    const text = `count these words please ${tag}`;
    const plain = await gw.chat(text, { model: 'u-openai' });
    assert.equal(plain.status, 200, plain.text);
    const s = await gw.chatStream(text, { model: 'u-openai', headers: { 'x-request-id': `s-${tag}` } });
    assert.equal(s.status, 200);
    assert.ok(s.done, 'no [DONE]');
    assert.deepEqual(usageChunks(s), [], 'a usage chunk the client did not ask for');
    assert.ok(s.events.filter((e) => e.json).every((e) => e.json.choices.length === 1));
    assert.ok(s.events.every((e) => !e.json?.usage), 'a usage object in the stream');
    // The gateway asked the upstream for the usage itself.
    const up = await received(mock, tag);
    assert.equal(up.body.stream, true);
    assert.equal(up.body.stream_options?.include_usage, true, JSON.stringify(up.body));
    const row = await record(pg, `s-${tag}`);
    assert.equal(row.stream, 't');
    assert.equal(row.deployment, 'dep-openai');
    assert.equal(row.pin, plain.json.usage.prompt_tokens);
    assert.equal(row.pout, plain.json.usage.completion_tokens);
    assert.ok(row.pin > 0 && row.pout > 0);
    assert.equal(row.cached, 0);
    assertCost(row);
  });

  it('a client that asks for include_usage gets the usage chunk, with the recorded tokens', async () => {
    const tag = nonce();
    const s = await gw.chatStream(`with usage ${tag}`, {
      model: 'u-openai', headers: { 'x-request-id': `su-${tag}` },
      extra: { stream_options: { include_usage: true } } });
    assert.equal(s.status, 200);
    const chunks = usageChunks(s);
    assert.equal(chunks.length, 1, JSON.stringify(s.events.map((e) => e.data)));
    const row = await record(pg, `su-${tag}`);
    assert.equal(row.pin, chunks[0].json.usage.prompt_tokens);
    assert.equal(row.pout, chunks[0].json.usage.completion_tokens);
    assert.ok(row.pin > 0 && row.pout > 0);
  });

  for (const p of PROVIDERS) {
    it(`${p}: streams through /v1/chat/completions and /v1/messages record the tokens`, async () => {
      const tag = nonce();
      const text = `tokens for ${p} please ${tag}`;
      const plain = await gw.chat(text, { model: `u-${p}` });
      assert.equal(plain.status, 200, plain.text);
      const { prompt_tokens: pin, completion_tokens: pout } = plain.json.usage;
      assert.ok(pin > 0 && pout > 0, plain.text);

      const s = await gw.chatStream(text, { model: `u-${p}`, headers: { 'x-request-id': `c-${p}-${tag}` } });
      assert.equal(s.status, 200);
      assert.ok(s.done, `${p}: no [DONE]`);
      assert.deepEqual(usageChunks(s), [], `${p}: a usage chunk the client did not ask for`);
      const c = await record(pg, `c-${p}-${tag}`);
      assert.equal(c.deployment, `dep-${p}`);
      assert.deepEqual([c.pin, c.pout], [pin, pout], `${p}: chat stream tokens`);
      assertCost(c);

      const m = await messagesStream(gw, `u-${p}`, text, { 'x-request-id': `m-${p}-${tag}` });
      assert.equal(m.error, null);
      assert.ok(m.events.some((e) => e.event === 'message_stop'), `${p}: no message_stop`);
      const mr = await record(pg, `m-${p}-${tag}`);
      assert.equal(mr.deployment, `dep-${p}`);
      assert.deepEqual([mr.pin, mr.pout], [pin, pout], `${p}: messages stream tokens`);
      assertCost(mr);
    });

    it(`${p}: cached prompt tokens are recorded and priced at price_cached_in`, async () => {
      const tag = nonce();
      const text = `some cached words mock:cached=${CACHED} ${tag}`;
      const plain = await gw.chat(text, { model: `u-${p}`, headers: { 'x-request-id': `pc-${p}-${tag}` } });
      assert.equal(plain.status, 200, plain.text);
      assert.equal(plain.json.usage.prompt_tokens_details?.cached_tokens, CACHED, plain.text);
      const pr = await record(pg, `pc-${p}-${tag}`);
      assert.equal(pr.pin, plain.json.usage.prompt_tokens);
      assert.equal(pr.cached, CACHED);
      assertCost(pr, CACHED);
      assert.ok(pr.cost < costOf(pr.pin, pr.pout), 'cached tokens cost as much as the others');

      const s = await gw.chatStream(text, { model: `u-${p}`, headers: { 'x-request-id': `sc-${p}-${tag}` } });
      assert.equal(s.status, 200);
      const sr = await record(pg, `sc-${p}-${tag}`);
      assert.deepEqual([sr.pin, sr.pout, sr.cached], [pr.pin, pr.pout, CACHED], `${p}: stream`);
      assertCost(sr, CACHED);

      const m = await messagesStream(gw, `u-${p}`, text, { 'x-request-id': `mc-${p}-${tag}` });
      // The client sees its cache reads too (message_start on pass-through,
      // message_delta when translated).
      assert.ok(m.events.some((e) => (e.json?.message?.usage ?? e.json?.usage)
        ?.cache_read_input_tokens === CACHED), JSON.stringify(m.events.map((e) => e.data)));
      const mr = await record(pg, `mc-${p}-${tag}`);
      assert.deepEqual([mr.pin, mr.pout, mr.cached], [pr.pin, pr.pout, CACHED], `${p}: messages`);
      assertCost(mr, CACHED);
    });
  }

  it('embeddings record the prompt tokens of the answer', async () => {
    const tag = nonce();
    const res = await gw.fetch('/v1/embeddings', {
      headers: { 'x-request-id': `e-${tag}` },
      body: { model: 'text-embedding-3-small', input: `embed these four ${tag}` } });
    assert.equal(res.status, 200, res.text);
    const row = await record(pg, `e-${tag}`);
    assert.ok(res.json.usage.prompt_tokens > 0);
    assert.equal(row.pin, res.json.usage.prompt_tokens);
  });

  it('a fallback: the first deployment answers 500, the fallback model answers; two attempts', async () => {
    const tag = nonce();
    const before = (await mock.stats()).routes.azure;
    const res = await gw.chat(`fall back ${tag}`, { model: 'u-fallback', headers: { 'x-request-id': `f-${tag}` } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-aigw-provider'), 'dep-openai');
    assert.equal((await mock.stats()).routes.azure, before + 1, 'the failing deployment was not tried once');
    const row = await record(pg, `f-${tag}`);
    assert.equal(row.attempts, 2);
    assert.equal(row.deployment, 'dep-openai');
    assert.equal(row.pin, res.json.usage.prompt_tokens);
    assertCost(row);
  });

  it('tracing off: the upstream gets the client traceparent unchanged; an invalid one never', async () => {
       const tag = nonce();
       const tp = `00-${'4bf92f3577b34da6a3ce929d0e0e4736'}-${'00f067aa0ba902b7'}-01`;
       const res = await gw.chat(`trace off ${tag}`, { model: 'u-openai', headers: { traceparent: tp } });
       assert.equal(res.status, 200, res.text);
       assert.equal((await received(mock, tag)).headers?.traceparent, tp);
       const bad = `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`;
       const tag2 = nonce();
       const res2 = await gw.chat(`trace bad ${tag2}`, { model: 'u-openai', headers: { traceparent: bad } });
       assert.equal(res2.status, 200, res2.text);
       const got = (await received(mock, tag2)).headers?.traceparent;
       assert.notEqual(got, bad);
     });
});

describe('usage records: traceparent with tracing on', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock({ name: 'usage-trace-mock' });
    // Nothing listens there: exporting is the edge's business, not this test's.
    gw = await startGateway({ name: 'usage-trace', mock,
                              config: config(mock, { tracing: { endpoint: 'http://127.0.0.1:9' } }) });
  }, { timeout: 60000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
  });

  it('the upstream gets the client trace id and flags with a new parent id per attempt', async () => {
       const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
       const parent = '00f067aa0ba902b7';
       const tag = nonce();
       const res = await gw.chat(`trace on ${tag}`, { model: 'u-openai',
                                                      headers: { traceparent: `00-${trace}-${parent}-01` } });
       assert.equal(res.status, 200, res.text);
       const got = (await received(mock, tag)).headers?.traceparent || '';
       const m = got.match(/^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/);
       assert.ok(m, `traceparent ${got}`);
       assert.equal(m[1], trace);
       assert.notEqual(m[2], parent);
       assert.notEqual(m[2], '0'.repeat(16));
       assert.equal(m[3], '01');
     });
});
