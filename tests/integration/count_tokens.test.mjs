// Issue 15, items 2 and 3: POST /v1/messages/count_tokens (the upstream's
// own count for Anthropic, Gemini and Bedrock deployments, the gateway's estimate
// for the others and when the upstream's count fails, X-AIGW-Token-Count
// saying which; auth applies, rate limits do not), GET /v1/models in
// Anthropic's shape for a client that sends anthropic-version, and prompt
// caching carried through: cache_control marks reach Anthropic deployments
// (passed through and after translation) and Bedrock ones as cachePoint
// blocks, prompt_cache_key reaches OpenAI deployments, and cache reads and
// writes come back in the client's usage shape and land in usage_records.
// The upstream is one `aigw mock-provider`: with cache marks it reports half
// the prompt's words read from the cache and a quarter written to it.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  after, assert, before, describe, eventually, it, nonce, readSSE, request, startGateway,
  startMock,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const PRICE_IN = 2;
const PRICE_CACHED = 0.5;
const PRICE_OUT = 8;
const AWS_KEY_ID = 'AKIDCOUNTTOKENS';
const AWS_SECRET = `aws-secret-${nonce(10)}`;

function deployment(name, mock) {
  const prices = { price_in: PRICE_IN, price_out: PRICE_OUT, price_cached_in: PRICE_CACHED };
  switch (name) {
    case 'openai': return { id: 'dep-openai', provider: 'openai_compatible', model: 'gpt-4o-mini',
                            base_url: mock.baseURL, api_key: mock.apiKey, ...prices };
    case 'anthropic': return { id: 'dep-anthropic', provider: 'anthropic', model: 'claude-up',
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

// Words the mock counts as prompt tokens (it counts words of every message
// and the system text).
const words = (...texts) => texts.join(' ').split(/\s+/).filter(Boolean).length;

async function record(pg, id) {
  let out = '';
  await eventually(async () => {
    out = pg.sql(`SELECT prompt_tokens, completion_tokens, cached_tokens, cost_usd
                    FROM usage_records WHERE request_id = '${id}'`).trim();
    return out !== '';
  }, 20000, 100);
  const [pin, pout, cached, cost] = out.split('|').map(Number);
  return { pin, pout, cached, cost };
}

function assertCost(row) {
  const want = ((row.pin - row.cached) * PRICE_IN + row.cached * PRICE_CACHED
                + row.pout * PRICE_OUT) / 1e6;
  assert.ok(Math.abs(row.cost - want) < 1e-9, `cost ${row.cost}, want ${want}`);
}

describe('count_tokens, Anthropic models list, prompt caching carried through', () => {
  let pg, mock, gw, anthropic, openai;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    mock = await startMock({ name: 'count-tokens-mock' });
    gw = await startGateway({
      name: 'count-tokens', mock, env: { DATABASE_URL: pg.url },
      config: {
        cache: { enabled: false },
        auth: { keys: [{ name: 'slow', tenant: 'count-slow', role: 'developer', rpm: 2 }] },
        providers: {
          bedrock: { region: 'us-east-1', access_key_id: AWS_KEY_ID, secret_access_key: AWS_SECRET },
        },
        models: PROVIDERS.map((p) => ({ name: `c-${p}`, deployments: [deployment(p, mock)] })),
        usage: { batch_ms: 50 },
      },
    });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0 });
    openai = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey, maxRetries: 0 });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
    if (pg) pg.destroy();
  });

  // ---- count_tokens ------------------------------------------------------

  it('Anthropic SDK countTokens on an Anthropic-format model: the upstream counts', async () => {
    const tag = nonce();
    const system = 'You count words carefully';
    const text = `how many tokens is this ${tag}`;
    const { data, response } = await anthropic.messages.countTokens({
      model: 'c-anthropic', system,
      messages: [{ role: 'user', content: text }],
    }).withResponse();
    assert.equal(data.input_tokens, words(system, text));
    assert.equal(response.headers.get('x-aigw-token-count'), 'upstream');
    assert.equal(response.headers.get('x-aigw-provider'), 'dep-anthropic');
    const up = await mock.saw(tag);
    assert.equal(up.path, '/v1/messages/count_tokens');
    assert.equal(up.body.model, 'claude-up', 'the upstream model name');
    assert.equal(up.body.max_tokens, undefined);
  });

  it('a Gemini-format model: countTokens with the whole generateContent request', async () => {
    const tag = nonce();
    const text = `gemini counts these words ${tag}`;
    const { data, response } = await anthropic.messages.countTokens({
      model: 'c-gemini', system: 'be brief', messages: [{ role: 'user', content: text }],
    }).withResponse();
    assert.equal(response.headers.get('x-aigw-token-count'), 'upstream');
    assert.equal(data.input_tokens, words('be brief', text));
    const up = await mock.saw(tag);
    assert.match(up.path, /\/v1beta\/models\/gemini-2\.0-flash:countTokens$/);
    assert.equal(up.body.generateContentRequest?.model, 'models/gemini-2.0-flash');
    assert.ok(up.body.generateContentRequest?.systemInstruction, JSON.stringify(up.body));
  });

  it('a Bedrock model: CountTokens, SigV4-signed, with the Converse request in input.converse', async () => {
    const tag = nonce();
    const system = 'answer like a sailor';
    const text = `bedrock counts these words ${tag}`;
    const { data, response } = await anthropic.messages.countTokens({
      model: 'c-bedrock', system, messages: [{ role: 'user', content: text }],
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }],
    }).withResponse();
    assert.equal(response.headers.get('x-aigw-token-count'), 'upstream');
    assert.equal(response.headers.get('x-aigw-provider'), 'dep-bedrock');
    assert.equal(data.input_tokens, words(system, text));
    const up = await mock.saw(tag);
    assert.equal(up.path, '/model/anthropic.claude-3-haiku-20240307-v1:0/count-tokens');
    assert.match(up.headers.authorization,
                 /^AWS4-HMAC-SHA256 Credential=.*\/us-east-1\/bedrock\/aws4_request/);
    assert.ok(!JSON.stringify(up).includes(AWS_SECRET));
    // The mock refuses what ConverseTokensRequest does not take
    // (inferenceConfig, modelId), so an upstream count proves the shape.
    const converse = up.body.input.converse;
    assert.deepEqual(Object.keys(up.body), ['input']);
    assert.deepEqual(converse.system, [{ text: system }]);
    assert.deepEqual(converse.messages, [{ role: 'user', content: [{ text }] }]);
    assert.equal(converse.toolConfig.tools[0].toolSpec.name, 'get_weather');
  });

  it('a Bedrock count that fails gives the estimate, one try', async () => {
    const tag = nonce();
    const { data, response } = await anthropic.messages.countTokens({
      model: 'c-bedrock', messages: [{ role: 'user', content: `mock:status=400 ${tag}` }],
    }).withResponse();
    assert.equal(response.headers.get('x-aigw-token-count'), 'estimated');
    assert.ok(data.input_tokens > 0);
    const seen = await mock.requests(tag);
    assert.equal(seen.length, 1, 'one try, no retry');
    assert.match(seen[0].path, /\/count-tokens$/);
  });

  it('an OpenAI-format model: the estimate, and the upstream sees nothing', async () => {
    for (const model of ['c-openai']) {
      const tag = nonce();
      const text = `estimate the tokens of this sentence ${tag}`;
      const ask = { model, messages: [{ role: 'user', content: text }] };
      const { data, response } = await anthropic.messages.countTokens(ask).withResponse();
      assert.equal(response.headers.get('x-aigw-token-count'), 'estimated', model);
      assert.ok(data.input_tokens >= words(text) && data.input_tokens < 50, JSON.stringify(data));
      // Tools count too (Anthropic adds its tool-use prompt).
      const tools = await anthropic.messages.countTokens({ ...ask,
        tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: {} } }] });
      assert.ok(tools.input_tokens > data.input_tokens + 10, JSON.stringify(tools));
      assert.deepEqual(await mock.requests(tag), [], `${model}: the mock was called`);
    }
  });

  it('an upstream count that fails gives the estimate, and says so', async () => {
    const tag = nonce();
    const { data, response } = await anthropic.messages.countTokens({
      model: 'c-anthropic', messages: [{ role: 'user', content: `mock:status=500 ${tag}` }],
    }).withResponse();
    assert.equal(response.headers.get('x-aigw-token-count'), 'estimated');
    assert.ok(data.input_tokens > 0);
    assert.equal((await mock.requests(tag)).length, 1, 'one try, no retry');
  });

  it('a model the key may not use: 403 in the error shape; unknown model 404; no key 401', async () => {
    const t = await gw.fetch('/api/v1/admin/tenants', { body: { name: `count-${nonce()}` } });
    assert.equal(t.status, 201, t.text);
    const k = await gw.fetch('/api/v1/admin/keys', {
      body: { tenant_id: t.json.id, name: 'narrow', role: 'developer', models: ['c-openai'] } });
    assert.equal(k.status, 201, k.text);
    const narrow = new Anthropic({ baseURL: gw.url, apiKey: k.json.key, maxRetries: 0 });
    const ok = await narrow.messages.countTokens({
      model: 'c-openai', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(ok.input_tokens > 0);
    await assert.rejects(
      narrow.messages.countTokens({ model: 'c-anthropic', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof Anthropic.PermissionDeniedError && e.status === 403
             && e.error?.error?.code === 'model_not_allowed');
    await assert.rejects(
      anthropic.messages.countTokens({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof Anthropic.NotFoundError && e.error?.error?.code === 'model_not_found');
    const none = await request(gw.url, '/v1/messages/count_tokens', {
      body: { model: 'c-openai', messages: [{ role: 'user', content: 'hi' }] } });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.type, 'authentication_error');
  });

  it('bad bodies: 400 naming the field; GET is 405', async () => {
    const cases = [
      [{ messages: [{ role: 'user', content: 'hi' }] }, 'model'],
      [{ model: 'c-openai' }, 'messages'],
      [{ model: 'c-openai', messages: [] }, 'messages'],
    ];
    for (const [body, param] of cases) {
      const r = await gw.fetch('/v1/messages/count_tokens', { body });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.param, param, r.text);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.ok(r.json.error.request_id);
    }
    const bad = await gw.fetch('/v1/messages/count_tokens', {
      body: { model: 'c-openai', messages: [{ role: 'robot', content: 'hi' }] } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.error.message, /role/);
    const json = await gw.fetch('/v1/messages/count_tokens', { body: '{"model":' });
    assert.equal(json.status, 400);
    assert.equal(json.json.error.code, 'invalid_json');
    const get = await gw.fetch('/v1/messages/count_tokens', { method: 'GET' });
    assert.equal(get.status, 405);
  });

  it('count_tokens spends no rate limit and makes no usage record', async () => {
    const slow = new Anthropic({ baseURL: gw.url, apiKey: gw.key('slow'), maxRetries: 0 });
    const ids = [];
    for (let i = 0; i < 6; i++) {
      const { response } = await slow.messages.countTokens({
        model: 'c-openai', messages: [{ role: 'user', content: `count ${i}` }] }).withResponse();
      ids.push(response.headers.get('x-request-id'));
    }
    // rpm 2: both messages still pass after six counts, the third does not.
    const ask = () => slow.messages.create({ model: 'c-openai', max_tokens: 10,
                                             messages: [{ role: 'user', content: 'hello' }] });
    await ask();
    await ask();
    await assert.rejects(ask(), (e) => e.status === 429);
    await new Promise((r) => setTimeout(r, 500));
    const rows = pg.sql(`SELECT count(*) FROM usage_records
                          WHERE request_id IN (${ids.map((id) => `'${id}'`).join(',')})`).trim();
    assert.equal(rows, '0');
  });

  // ---- models list -------------------------------------------------------

  it('Anthropic SDK models.list: Anthropic shape; without anthropic-version, OpenAI shape', async () => {
    const seen = [];
    for await (const m of anthropic.models.list()) seen.push(m);
    assert.deepEqual(seen.map((m) => m.id).sort(), PROVIDERS.map((p) => `c-${p}`).sort());
    for (const m of seen) {
      assert.equal(m.type, 'model');
      assert.equal(m.display_name, m.id);
      assert.ok(!Number.isNaN(Date.parse(m.created_at)), m.created_at);
    }
    const raw = await gw.fetch('/v1/models', { method: 'GET', headers: { 'anthropic-version': '2023-06-01' } });
    assert.equal(raw.status, 200);
    assert.equal(raw.json.has_more, false);
    assert.equal(raw.json.first_id, raw.json.data[0].id);
    assert.equal(raw.json.last_id, raw.json.data.at(-1).id);
    const plain = await gw.fetch('/v1/models', { method: 'GET' });
    assert.equal(plain.json.object, 'list');
    assert.ok(plain.json.data.every((m) => m.object === 'model' && 'owned_by' in m));
  });

  // ---- prompt caching ----------------------------------------------------

  const SYSTEM = 'A long stable system prompt to cache';
  const marked = (tag) => ({
    system: [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: [
      { type: 'text', text: `first part ${tag}`, cache_control: { type: 'ephemeral' } },
      { type: 'text', text: 'second part' }] }],
    tools: [{ name: 'lookup', input_schema: { type: 'object', properties: {} },
              cache_control: { type: 'ephemeral' } }],
  });

  it('cache_control passes to an Anthropic deployment untouched; the client sees reads and writes', async () => {
    const tag = nonce();
    const { data, response } = await anthropic.messages.create({
      model: 'c-anthropic', max_tokens: 20, ...marked(tag) }).withResponse();
    const up = await mock.saw(tag);
    assert.deepEqual(up.body.system, marked(tag).system);
    assert.deepEqual(up.body.messages[0].content[0].cache_control, { type: 'ephemeral' });
    assert.deepEqual(up.body.tools[0].cache_control, { type: 'ephemeral' });
    const prompt = words(SYSTEM, `first part ${tag}`, 'second part');
    assert.equal(data.usage.cache_read_input_tokens, Math.floor(prompt / 2));
    assert.equal(data.usage.cache_creation_input_tokens, Math.floor(prompt / 4));
    const row = await record(pg, response.headers.get('x-request-id'));
    assert.equal(row.pin, prompt);
    assert.equal(row.cached, Math.floor(prompt / 2));
    assertCost(row);
  });

  for (const p of ['bedrock', 'anthropic-translated']) {
    it(`cache_control survives translation (${p}): marks at the upstream, counts back in both client shapes, streams too`, async () => {
      // An Anthropic client to Bedrock goes through the gateway's OpenAI
      // form; an OpenAI client to Anthropic does the same the other way.
      const tag = nonce();
      const prompt = words(SYSTEM, `first part ${tag}`, 'second part');
      const read = Math.floor(prompt / 2), written = Math.floor(prompt / 4);
      if (p === 'bedrock') {
        const { data, response } = await anthropic.messages.create({
          model: 'c-bedrock', max_tokens: 20, ...marked(tag) }).withResponse();
        const up = await mock.saw(tag);
        assert.deepEqual(up.body.system, [{ text: SYSTEM }, { cachePoint: { type: 'default' } }]);
        assert.deepEqual(up.body.messages[0].content, [
          { text: `first part ${tag}` }, { cachePoint: { type: 'default' } }, { text: 'second part' }]);
        assert.deepEqual(up.body.toolConfig.tools[1], { cachePoint: { type: 'default' } });
        assert.equal(data.usage.cache_read_input_tokens, read);
        assert.equal(data.usage.cache_creation_input_tokens, written);
        assert.equal(data.usage.input_tokens, prompt - read - written);
        const row = await record(pg, response.headers.get('x-request-id'));
        assert.deepEqual([row.pin, row.cached], [prompt, read]);
        assertCost(row);
        // Streamed: message_delta carries the counts.
        const stream = anthropic.messages.stream({ model: 'c-bedrock', max_tokens: 20, ...marked(tag) });
        const final = await stream.finalMessage();
        assert.equal(final.usage.cache_read_input_tokens, read);
        assert.equal(final.usage.cache_creation_input_tokens, written);
        // An OpenAI client to Bedrock: cached_tokens.
        const chat = await openai.chat.completions.create({
          model: 'c-bedrock', messages: [
            { role: 'system', content: [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }] },
            { role: 'user', content: `first part ${tag} second part` }] });
        assert.equal(chat.usage.prompt_tokens_details.cached_tokens, read);
        assert.equal(chat.usage.prompt_tokens, prompt);
      } else {
        const body = {
          model: 'c-anthropic', messages: [
            { role: 'system', content: [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }] },
            { role: 'user', content: [{ type: 'text', text: `first part ${tag}`, cache_control: { type: 'ephemeral' } },
                                      { type: 'text', text: 'second part' }] }],
          tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } },
                    cache_control: { type: 'ephemeral' } }],
        };
        const { data, response } = await openai.chat.completions.create(body).withResponse();
        const up = await mock.saw(tag);
        assert.deepEqual(up.body.system, [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }]);
        assert.deepEqual(up.body.messages[0].content[0].cache_control, { type: 'ephemeral' });
        assert.equal(up.body.messages[0].content[1].cache_control, undefined);
        assert.deepEqual(up.body.tools[0].cache_control, { type: 'ephemeral' });
        assert.equal(data.usage.prompt_tokens, prompt);
        assert.equal(data.usage.prompt_tokens_details.cached_tokens, read);
        const row = await record(pg, response.headers.get('x-request-id'));
        assert.deepEqual([row.pin, row.cached], [prompt, read]);
        assertCost(row);
        const stream = await openai.chat.completions.create({
          ...body, stream: true, stream_options: { include_usage: true } });
        let usage = null;
        for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
        assert.equal(usage?.prompt_tokens_details?.cached_tokens, read, JSON.stringify(usage));
      }
    });
  }

  it('marks on an assistant turn survive translation: Bedrock cachePoints, Anthropic marks, none to OpenAI', async () => {
    const mark = { type: 'ephemeral' };
    const tools = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
    const conversation = (tag) => [
      { role: 'user', content: `look it up ${tag}` },
      { role: 'assistant', content: [
        { type: 'text', text: 'Let me look.', cache_control: mark },
        { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'x' }, cache_control: mark }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'found' }] },
    ];
    // An Anthropic client to Bedrock: a cachePoint after each marked block.
    let tag = nonce();
    await anthropic.messages.create({ model: 'c-bedrock', max_tokens: 20, tools,
                                      messages: conversation(tag) });
    let up = await mock.saw(tag);
    assert.equal(up.body.messages[1].role, 'assistant');
    assert.deepEqual(up.body.messages[1].content, [
      { text: 'Let me look.' }, { cachePoint: { type: 'default' } },
      { toolUse: { toolUseId: 'toolu_1', name: 'lookup', input: { q: 'x' } } },
      { cachePoint: { type: 'default' } }]);
    // To an OpenAI-format deployment: no marks, the text a plain string.
    tag = nonce();
    await anthropic.messages.create({ model: 'c-openai', max_tokens: 20, tools,
                                      messages: conversation(tag) });
    up = await mock.saw(tag);
    assert.ok(!JSON.stringify(up.body).includes('cache_control'), JSON.stringify(up.body));
    assert.equal(up.body.messages[1].content, 'Let me look.');
    // An OpenAI client's marked assistant part and tool call to Anthropic.
    tag = nonce();
    await openai.chat.completions.create({
      model: 'c-anthropic',
      tools: [{ type: 'function', function: { name: 'lookup', parameters: tools[0].input_schema } }],
      messages: [
        { role: 'user', content: `look it up ${tag}` },
        { role: 'assistant', content: [{ type: 'text', text: 'Let me look.', cache_control: mark }],
          tool_calls: [{ id: 'toolu_1', type: 'function', cache_control: mark,
                         function: { name: 'lookup', arguments: '{"q":"x"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'found' }] });
    up = await mock.saw(tag);
    assert.deepEqual(up.body.messages[1].content, [
      { type: 'text', text: 'Let me look.', cache_control: mark },
      { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'x' }, cache_control: mark }]);
  });

  it('an OpenAI-format deployment: prompt_cache_key passes, cache_control does not; cached_tokens back', async () => {
    const tag = nonce();
    const text = `cache me by key ${tag} please now`;
    const res = await gw.fetch('/v1/chat/completions', { body: {
      model: 'c-openai', prompt_cache_key: `k-${tag}`,
      messages: [{ role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] }] } });
    assert.equal(res.status, 200, res.text);
    const up = await mock.saw(tag);
    assert.equal(up.body.prompt_cache_key, `k-${tag}`);
    assert.ok(!JSON.stringify(up.body).includes('cache_control'), JSON.stringify(up.body));
    assert.equal(res.json.usage.prompt_tokens_details.cached_tokens, Math.floor(words(text) / 2));
    const row = await record(pg, res.headers.get('x-request-id'));
    assert.equal(row.cached, Math.floor(words(text) / 2));
    assertCost(row);
    // Streamed through /v1/messages: cache_read_input_tokens.
    const m = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': gw.masterKey,
                 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'c-openai', max_tokens: 20, stream: true,
                             messages: [{ role: 'user', content: `mock:cached=2 ${tag}` }] }),
    });
    const s = await readSSE(m);
    assert.ok(s.events.some((e) => e.json?.usage?.cache_read_input_tokens === 2),
              JSON.stringify(s.events.map((e) => e.data)));
  });
});
