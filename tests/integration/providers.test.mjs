// One gateway in front of ONE `aigw mock-provider`, with a model on every
// provider adapter: openai_compatible, azure, anthropic, gemini, bedrock.
// For each: chat, streaming, tool calls (plain and streamed), a tool result
// round trip, upstream errors mapped to the gateway's statuses, and what the
// upstream received (auth header, path, body shape) through GET
// /mock/requests. Then the Anthropic client format (/v1/messages) against
// every provider, embeddings where a provider has them (400 where not),
// /v1/models, and streams whose upstream dies mid-way.
//
// The mock answers every format with the same text as its OpenAI route
// ("Mock reply to: PROMPT"), so the gateway's translation is checked by
// comparing with a direct call to the mock's OpenAI route.
import {
  MODES, after, assert, assertDataPlaneHeaders, assertError, before, describe, it,
  nonce, readSSE, redacted, request, startGateway, startMock,
} from './lib.mjs';

const TOOL_ARGS = { city: 'Paris', unit: 'celsius' };
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } },
                  required: ['city'] } } },
  { type: 'function', function: { name: 'other', parameters: { type: 'object', properties: {} } } },
];
const ANTHROPIC_TOOLS = TOOLS.map((t) => ({
  name: t.function.name, description: t.function.description || 'a tool',
  input_schema: t.function.parameters,
}));
const BEDROCK_MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const AZURE_VERSION = '2024-10-21';
const AWS_KEY_ID = 'AKIDPROVIDERSTEST';
const AWS_SECRET = `aws-secret-${nonce(10)}`;

// Every provider under test: model names, the deployment id, the mock route
// it must reach, and whether it serves embeddings.
const PROVIDERS = [
  { name: 'openai', provider: 'openai_compatible', route: 'openai', upstream: 'gpt-4o-mini',
    embed: 'text-embedding-3-small' },
  { name: 'azure', provider: 'azure', route: 'azure', upstream: 'my-gpt4o',
    embed: 'my-embedder' },
  { name: 'anthropic', provider: 'anthropic', route: 'anthropic',
    upstream: 'claude-3-5-haiku-latest' },
  { name: 'gemini', provider: 'gemini', route: 'gemini', upstream: 'gemini-2.0-flash',
    embed: 'text-embedding-004' },
  { name: 'bedrock', provider: 'bedrock', route: 'bedrock', upstream: BEDROCK_MODEL },
].map((p) => ({ ...p, model: `m-${p.name}`, dep: `dep-${p.name}`,
                embedModel: p.embed ? `e-${p.name}` : null, embedDep: `dep-e-${p.name}` }));

// The gateway's deployment for provider P, upstream model MODEL, id ID.
function deployment(p, mock, model, id) {
  const d = { id, provider: p.provider, model };
  switch (p.name) {
    case 'openai': return { ...d, base_url: mock.baseURL, api_key: mock.apiKey };
    case 'azure': return { ...d, base_url: mock.url, api_key: mock.apiKey, api_version: AZURE_VERSION };
    case 'anthropic': return { ...d, base_url: mock.url, api_key: mock.apiKey };
    case 'gemini': return { ...d, base_url: mock.url, api_key: mock.apiKey };
    case 'bedrock': return { ...d, base_url: mock.url, region: 'us-east-1' };
    default: throw new Error(p.name);
  }
}

function gatewayConfig(mock) {
  const models = [];
  for (const p of PROVIDERS) {
    models.push({ name: p.model, deployments: [deployment(p, mock, p.upstream, p.dep)] });
    if (p.embedModel) {
      models.push({ name: p.embedModel, deployments: [deployment(p, mock, p.embed, p.embedDep)] });
    }
  }
  return {
    cache: { enabled: false },
    router: { max_attempts: 3, retry_base_ms: 10, retry_cap_ms: 50,
              breaker: { consecutive_failures: 0, error_rate: 0 } },
    providers: {
      bedrock: { region: 'us-east-1', access_key_id: AWS_KEY_ID, secret_access_key: AWS_SECRET },
    },
    models,
  };
}

// The mock's own answer on its OpenAI route for one user message TEXT.
async function direct(mock, text, extra = {}) {
  const r = await request(mock.url, '/v1/chat/completions', {
    key: mock.apiKey, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], ...extra },
  });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// Per-route request counts of the mock.
async function routeCounts(mock) {
  return (await mock.stats()).routes;
}

// POST BODY to the gateway's /v1/messages the way Anthropic clients do.
function messages(gw, body, { key = gw.masterKey, timeoutMs = 20000 } = {}) {
  return fetch(`${gw.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key,
               'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

// An OpenAI chat stream's pieces: text, tool call name and argument deltas,
// finish_reason, error events.
function openaiStream(s) {
  const chunks = s.events.filter((e) => e.json && !e.json.error);
  const deltas = chunks.map((e) => e.json.choices?.[0]?.delta).filter(Boolean);
  const toolDeltas = deltas.flatMap((d) => d.tool_calls || []);
  return {
    text: deltas.map((d) => d.content || '').join(''),
    toolName: toolDeltas.map((t) => t.function?.name).find(Boolean),
    argDeltas: toolDeltas.map((t) => t.function?.arguments || '').filter(Boolean),
    finish: chunks.map((e) => e.json.choices?.[0]?.finish_reason).filter(Boolean).at(-1),
    errors: s.events.filter((e) => e.json?.error),
  };
}

// An Anthropic stream's pieces.
function anthropicStream(s) {
  const names = s.events.map((e) => e.event);
  const deltas = s.events.filter((e) => e.event === 'content_block_delta').map((e) => e.json.delta);
  const starts = s.events.filter((e) => e.event === 'content_block_start').map((e) => e.json.content_block);
  const messageDelta = s.events.find((e) => e.event === 'message_delta')?.json;
  return {
    names,
    text: deltas.filter((d) => d.type === 'text_delta').map((d) => d.text).join(''),
    partialJson: deltas.filter((d) => d.type === 'input_json_delta').map((d) => d.partial_json),
    toolStart: starts.find((b) => b.type === 'tool_use'),
    stopReason: messageDelta?.delta?.stop_reason,
    usage: messageDelta?.usage,
    start: s.events.find((e) => e.event === 'message_start')?.json,
    errors: s.events.filter((e) => e.event === 'error'),
  };
}

// TEXT matched literally in a RegExp.
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// The upstream's credential for provider P, as the mock recorded it.
function assertUpstreamAuth(p, rec, mock, gw) {
  const h = rec.headers;
  const all = JSON.stringify(rec);
  assert.ok(!all.includes(gw.masterKey), `the client's key went upstream: ${all}`);
  assert.ok(!all.includes(mock.apiKey), `the mock showed the upstream key: ${all}`);
  switch (p.name) {
    case 'openai':
      assert.equal(h.authorization, `Bearer ${redacted(mock.apiKey)}`);
      assert.ok(!('x-api-key' in h) && !('api-key' in h), JSON.stringify(h));
      break;
    case 'azure':
      assert.equal(h['api-key'], redacted(mock.apiKey));
      assert.ok(!('authorization' in h), `azure got Authorization: ${h.authorization}`);
      assert.equal(rec.query, `api-version=${AZURE_VERSION}`);
      break;
    case 'anthropic':
      assert.equal(h['x-api-key'], redacted(mock.apiKey));
      assert.match(h['anthropic-version'] || '', /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(!('authorization' in h), `anthropic got Authorization: ${h.authorization}`);
      break;
    case 'gemini':
      assert.equal(h['x-goog-api-key'], redacted(mock.apiKey));
      assert.ok(!('authorization' in h), `gemini got Authorization: ${h.authorization}`);
      break;
    case 'bedrock':
      // The key id and the signature come redacted (lib.mjs redacted()): the
      // key id exactly, the signature by its length (64: hex SHA-256).
      assert.match(h.authorization || '',
                   new RegExp(`^AWS4-HMAC-SHA256 Credential=${escapeRegExp(redacted(AWS_KEY_ID))}` +
                              '/\\d{8}/us-east-1/bedrock/' +
                              'aws4_request, ?SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, ?' +
                              'Signature=[0-9a-f]{4}\\.\\.\\.\\[64 chars, sha256:[0-9a-f]{8}\\]$'));
      assert.match(h['x-amz-date'] || '', /^\d{8}T\d{6}Z$/);
      assert.ok(!all.includes(AWS_SECRET), 'the AWS secret went upstream');
      break;
    default: throw new Error(p.name);
  }
}

// The path the upstream must see for provider P, plain or streamed.
function upstreamPath(p, stream) {
  switch (p.name) {
    case 'openai': return '/v1/chat/completions';
    case 'azure': return `/openai/deployments/${p.upstream}/chat/completions`;
    case 'anthropic': return '/v1/messages';
    case 'gemini': return `/v1beta/models/${p.upstream}:${stream ? 'streamGenerateContent' : 'generateContent'}`;
    case 'bedrock': return `/model/${p.upstream}/${stream ? 'converse-stream' : 'converse'}`;
    default: throw new Error(p.name);
  }
}

// The user text of the request body the mock recorded, in P's format.
function upstreamUserText(p, body) {
  switch (p.name) {
    case 'openai':
    case 'azure': {
      const m = body.messages.filter((x) => x.role === 'user').at(-1);
      return typeof m.content === 'string' ? m.content : m.content.map((c) => c.text).join('');
    }
    case 'anthropic': {
      const m = body.messages.filter((x) => x.role === 'user').at(-1);
      return typeof m.content === 'string' ? m.content : m.content.map((c) => c.text || '').join('');
    }
    case 'gemini':
      return body.contents.filter((x) => x.role !== 'model').at(-1).parts.map((x) => x.text || '').join('');
    case 'bedrock':
      return body.messages.filter((x) => x.role === 'user').at(-1).content.map((x) => x.text || '').join('');
    default: throw new Error(p.name);
  }
}

// The names of the tools declared upstream, in P's format.
function upstreamToolNames(p, body) {
  switch (p.name) {
    case 'openai':
    case 'azure': return (body.tools || []).map((t) => t.function.name);
    case 'anthropic': return (body.tools || []).map((t) => t.name);
    case 'gemini': return (body.tools || []).flatMap((t) => t.functionDeclarations || []).map((f) => f.name);
    case 'bedrock': return (body.toolConfig?.tools || []).map((t) => t.toolSpec.name);
    default: throw new Error(p.name);
  }
}

// The conversation of a tool result round trip, OpenAI format.
function toolRoundTrip(question, result) {
  return [
    { role: 'user', content: question },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc123', type: 'function',
      function: { name: 'get_weather', arguments: JSON.stringify(TOOL_ARGS) } }] },
    { role: 'tool', tool_call_id: 'call_abc123', content: result },
  ];
}

for (const mode of MODES) {
  describe(`every provider behind one gateway (${mode})`, () => {
    let mock;
    let gw;
    before(async () => {
      mock = await startMock({ name: `${mode}-mock` });
      gw = await startGateway({ mode, mock, config: gatewayConfig(mock), name: `${mode}-providers` });
    }, { timeout: 90000 });
    after(async () => {
      await gw?.stop();
      await mock?.stop();
    });

    for (const p of PROVIDERS) {
      it(`${p.name}: chat answers the mock's text, with usage and X-AIGW-Provider`, async () => {
        const text = `Hello ${p.name} ${nonce()} please`;
        const want = await direct(mock, text);
        const res = await gw.chat(text, { model: p.model });
        assert.equal(res.status, 200, res.text);
        assertDataPlaneHeaders(res, { provider: p.dep });
        const c = res.json;
        assert.equal(c.object, 'chat.completion');
        assert.equal(c.choices[0].message.role, 'assistant');
        assert.equal(c.choices[0].message.content, want.choices[0].message.content);
        assert.equal(c.choices[0].finish_reason, 'stop');
        assert.ok(Number.isInteger(c.usage?.prompt_tokens) && c.usage.prompt_tokens > 0, res.text);
        assert.ok(Number.isInteger(c.usage?.completion_tokens) && c.usage.completion_tokens > 0, res.text);
        assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

        const rec = await mock.saw(text);
        assert.equal(rec.route, p.route, `reached route ${rec.route}`);
        assert.equal(rec.method, 'POST');
        assert.equal(rec.path, upstreamPath(p, false));
        assertUpstreamAuth(p, rec, mock, gw);
        assert.equal(upstreamUserText(p, rec.body), text);
        if (p.name === 'openai' || p.name === 'anthropic') assert.equal(rec.body.model, p.upstream);
        if (p.name === 'anthropic') assert.ok(Number.isInteger(rec.body.max_tokens), 'max_tokens');
        // Gemini, Bedrock and Azure name the model (deployment) in the path:
        // the client's model name stays out of the body.
        if (p.name === 'gemini' || p.name === 'bedrock' || p.name === 'azure') {
          assert.ok(!('model' in rec.body), `${p.name} body names a model: ${JSON.stringify(rec.body)}`);
        }
      });

      it(`${p.name}: streams the same text in chunks, ending with [DONE]`, async () => {
        const text = `Stream ${p.name} ${nonce()} now`;
        const plain = await gw.chat(text, { model: p.model });
        assert.equal(plain.status, 200, plain.text);
        const s = await gw.chatStream(text, { model: p.model });
        assert.equal(s.status, 200, s.text);
        assert.equal(s.headers.get('x-aigw-provider'), p.dep);
        assert.equal(s.error, null, `stream failed: ${s.error}`);
        assert.ok(s.done, 'no data: [DONE]');
        assert.equal(s.events.at(-1).data, '[DONE]');
        const o = openaiStream(s);
        assert.deepEqual(o.errors, []);
        assert.ok(s.contents.length >= 2, `only ${s.contents.length} content chunks`);
        assert.equal(o.text, plain.json.choices[0].message.content);
        assert.equal(o.finish, 'stop');
        for (const e of s.events.filter((x) => x.json)) {
          assert.equal(e.json.object, 'chat.completion.chunk', e.data);
        }
        // The last request that mentions TEXT is the streamed one.
        const streamed = await mock.saw(text);
        assert.equal(streamed.route, p.route);
        assert.equal(streamed.path, upstreamPath(p, true), `streamed to ${streamed.path}`);
        if (p.name === 'gemini') assert.match(streamed.query || '', /alt=sse/);
        if (p.name === 'anthropic' || p.name === 'openai' || p.name === 'azure') {
          assert.equal(streamed.body.stream, true);
        }
      });

      it(`${p.name}: a tool call, plain and streamed`, async () => {
        const text = `weather in Paris? mock:tool ${nonce()}`;
        const res = await gw.chat(text, { model: p.model, extra: { tools: TOOLS } });
        assert.equal(res.status, 200, res.text);
        const choice = res.json.choices[0];
        assert.equal(choice.finish_reason, 'tool_calls', res.text);
        const calls = choice.message.tool_calls;
        assert.ok(Array.isArray(calls) && calls.length === 1, res.text);
        assert.equal(calls[0].type, 'function');
        assert.ok(typeof calls[0].id === 'string' && calls[0].id.length > 0, 'tool call id');
        assert.equal(calls[0].function.name, 'get_weather');
        assert.deepEqual(JSON.parse(calls[0].function.arguments), TOOL_ARGS);
        const rec = await mock.saw(text);
        assert.deepEqual(upstreamToolNames(p, rec.body), ['get_weather', 'other']);

        const s = await gw.chatStream(`weather in Paris? mock:tool ${nonce()}`,
                                      { model: p.model, extra: { tools: TOOLS } });
        assert.equal(s.status, 200, s.text);
        assert.ok(s.done, 'no data: [DONE]');
        const o = openaiStream(s);
        assert.deepEqual(o.errors, []);
        assert.equal(o.toolName, 'get_weather');
        assert.equal(o.finish, 'tool_calls');
        assert.ok(o.argDeltas.length >= 1, 'no argument deltas');
        assert.deepEqual(JSON.parse(o.argDeltas.join('')), TOOL_ARGS);
      });

      it(`${p.name}: a tool result comes back as "tool said: ..."`, async () => {
        const result = `sunny and 21 degrees ${nonce()}`;
        const body = { model: p.model, tools: TOOLS, messages: toolRoundTrip('weather in Paris?', result) };
        const res = await gw.fetch('/v1/chat/completions', { body });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.choices[0].finish_reason, 'stop', res.text);
        // Gemini carries a tool's result as a JSON object; the mock quotes it back.
        const said = res.json.choices[0].message.content;
        if (p.name === 'gemini') assert.ok(said.startsWith('tool said: ') && said.includes(result), said);
        else assert.equal(said, `tool said: ${result}`);
        const rec = await mock.saw(result);
        assert.equal(rec.route, p.route);

        const s = await gw.chatStream('weather in Paris?', {
          model: p.model, extra: { tools: TOOLS, messages: toolRoundTrip('weather in Paris?', result) } });
        assert.equal(s.status, 200, s.text);
        assert.ok(s.done, 'no data: [DONE]');
        assert.equal(openaiStream(s).text, said);
      });

      it(`${p.name}: upstream 400 is the client's 400, not retried; 500 is a 502`, async () => {
        let before = (await routeCounts(mock))[p.route];
        const bad = await gw.chat(`mock:status=400 ${nonce()}`, { model: p.model });
        assertError(bad, { status: 400, type: 'invalid_request_error' });
        assert.equal((await routeCounts(mock))[p.route] - before, 1, 'the 400 was retried');
        assert.equal(bad.headers.get('x-aigw-provider'), p.dep);

        before = (await routeCounts(mock))[p.route];
        const failed = await gw.chat(`mock:status=500 ${nonce()}`, { model: p.model });
        assertError(failed, { status: 502, type: 'upstream_error' });
        assert.ok((await routeCounts(mock))[p.route] - before >= 1, 'never reached the upstream');

        const s = await gw.chatStream(`mock:status=400 ${nonce()}`, { model: p.model });
        assert.equal(s.status, 400, s.text);
      });

      it(`${p.name}: /v1/messages answers an Anthropic message`, async () => {
        const text = `Hello messages ${p.name} ${nonce()}`;
        const want = await direct(mock, text);
        const res = await messages(gw, { model: p.model, max_tokens: 256,
                                         messages: [{ role: 'user', content: text }] });
        const raw = await res.text();
        assert.equal(res.status, 200, raw);
        assert.equal(res.headers.get('x-aigw-provider'), p.dep);
        const m = JSON.parse(raw);
        assert.equal(m.type, 'message', raw);
        assert.equal(m.role, 'assistant');
        assert.match(m.id, /^msg_/);
        // The client's model name or the upstream's: the SPEC fixes neither.
        assert.ok([p.model, p.upstream].includes(m.model), `model ${m.model}`);
        assert.deepEqual(m.content, [{ type: 'text', text: want.choices[0].message.content }]);
        assert.equal(m.stop_reason, 'end_turn');
        assert.ok(Number.isInteger(m.usage?.input_tokens) && m.usage.input_tokens > 0, raw);
        assert.ok(Number.isInteger(m.usage?.output_tokens) && m.usage.output_tokens > 0, raw);
        const rec = await mock.saw(text);
        assert.equal(rec.route, p.route);
        assertUpstreamAuth(p, rec, mock, gw);
      });

      it(`${p.name}: /v1/messages streams message_start .. message_stop`, async () => {
        const text = `Stream messages ${p.name} ${nonce()}`;
        const want = await direct(mock, text);
        const res = await messages(gw, { model: p.model, max_tokens: 256, stream: true,
                                         messages: [{ role: 'user', content: text }] });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') || '', /text\/event-stream/);
        const s = await readSSE(res);
        assert.equal(s.error, null);
        const a = anthropicStream(s);
        assert.deepEqual(a.errors, []);
        assert.equal(a.names[0], 'message_start', a.names.join(' '));
        assert.equal(a.names.at(-1), 'message_stop', a.names.join(' '));
        assert.ok(a.names.includes('content_block_start') && a.names.includes('content_block_stop')
                  && a.names.includes('message_delta'), a.names.join(' '));
        assert.ok(a.names.filter((n) => n === 'content_block_delta').length >= 2, a.names.join(' '));
        assert.ok(!s.events.some((e) => e.data === '[DONE]'), 'an OpenAI [DONE] in an Anthropic stream');
        for (const e of s.events) assert.equal(e.json?.type, e.event, `event ${e.event}: ${e.data}`);
        assert.equal(a.start.message.role, 'assistant');
        assert.equal(a.text, want.choices[0].message.content);
        assert.equal(a.stopReason, 'end_turn');
        assert.ok(Number.isInteger(a.usage?.output_tokens), JSON.stringify(a.usage));
      });

      it(`${p.name}: /v1/messages tool_use, plain and streamed, and a tool_result`, async () => {
        const question = `weather in Paris? mock:tool ${nonce()}`;
        const res = await messages(gw, { model: p.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
                                         messages: [{ role: 'user', content: question }] });
        const raw = await res.text();
        assert.equal(res.status, 200, raw);
        const m = JSON.parse(raw);
        assert.equal(m.stop_reason, 'tool_use', raw);
        const use = m.content.find((b) => b.type === 'tool_use');
        assert.ok(use, raw);
        assert.equal(use.name, 'get_weather');
        assert.deepEqual(use.input, TOOL_ARGS);
        assert.ok(typeof use.id === 'string' && use.id.length > 0);

        const sres = await messages(gw, { model: p.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
                                          stream: true,
                                          messages: [{ role: 'user', content: `${question} again` }] });
        assert.equal(sres.status, 200);
        const a = anthropicStream(await readSSE(sres));
        assert.deepEqual(a.errors, []);
        assert.equal(a.names.at(-1), 'message_stop', a.names.join(' '));
        assert.equal(a.toolStart?.name, 'get_weather', a.names.join(' '));
        assert.ok(a.partialJson.length >= 1, 'no input_json_delta');
        assert.deepEqual(JSON.parse(a.partialJson.join('')), TOOL_ARGS);
        assert.equal(a.stopReason, 'tool_use');

        const result = `cloudy ${nonce()}`;
        const follow = await messages(gw, { model: p.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
          messages: [
            { role: 'user', content: question },
            { role: 'assistant', content: m.content },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: result }] },
          ] });
        const fraw = await follow.text();
        assert.equal(follow.status, 200, fraw);
        const f = JSON.parse(fraw);
        assert.equal(f.stop_reason, 'end_turn', fraw);
        const said = f.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
        if (p.name === 'gemini') assert.ok(said.startsWith('tool said: ') && said.includes(result), said);
        else assert.equal(said, `tool said: ${result}`);
      });

      it(`${p.name}: a stream whose upstream dies mid-way ends with an error, both formats`, async () => {
        const s = await gw.chatStream(`mock:chunks=20 mock:die_after=3 ${nonce()}`,
                                      { model: p.model, timeoutMs: 15000 });
        assert.equal(s.status, 200, s.text);
        assert.ok(s.error === null || s.error.name !== 'TimeoutError', 'the stream hung');
        const o = openaiStream(s);
        assert.ok(s.contents.length >= 1, 'no content before the cut');
        assert.ok(o.errors.length === 1, `no error event: ${s.events.map((e) => e.data).join(' | ')}`);
        const e = o.errors[0].json.error;
        assert.ok(typeof e.message === 'string' && e.message.length > 0, o.errors[0].data);
        assert.ok(typeof e.type === 'string', o.errors[0].data);
        assert.notEqual(o.finish, 'stop', 'a cut stream claims to have finished');

        const res = await messages(gw, { model: p.model, max_tokens: 256, stream: true,
          messages: [{ role: 'user', content: `mock:chunks=20 mock:die_after=3 ${nonce()}` }] },
        { timeoutMs: 15000 });
        assert.equal(res.status, 200);
        const as = await readSSE(res);
        assert.ok(as.error === null || as.error.name !== 'TimeoutError', 'the stream hung');
        const a = anthropicStream(as);
        assert.equal(a.names[0], 'message_start', a.names.join(' '));
        assert.equal(a.errors.length, 1, `no event: error: ${a.names.join(' ')}`);
        assert.equal(a.errors[0].json.type, 'error', a.errors[0].data);
        assert.ok(a.errors[0].json.error?.type && a.errors[0].json.error?.message, a.errors[0].data);
        assert.ok(!a.names.includes('message_stop'), `a cut stream has message_stop: ${a.names.join(' ')}`);
        assert.equal(a.names.at(-1), 'error', a.names.join(' '));
      });

      if (p.embedModel) {
        it(`${p.name}: /v1/embeddings`, async () => {
          const inputs = [`alpha ${nonce()}`, `beta ${nonce()}`];
          const want = await request(mock.url, '/v1/embeddings', {
            key: mock.apiKey, body: { model: 'text-embedding-3-small', input: inputs } });
          assert.equal(want.status, 200, want.text);
          const res = await gw.fetch('/v1/embeddings', { body: { model: p.embedModel, input: inputs } });
          assert.equal(res.status, 200, res.text);
          assertDataPlaneHeaders(res, { provider: p.embedDep });
          assert.equal(res.json.object, 'list');
          assert.equal(res.json.data.length, 2);
          res.json.data.forEach((d, i) => {
            assert.equal(d.object, 'embedding');
            assert.equal(d.index, i);
            // The same float32 vector; formats print it to different precision.
            const expected = want.json.data[i].embedding;
            assert.equal(d.embedding.length, expected.length, `embedding ${i} dimensions`);
            d.embedding.forEach((x, j) => assert.ok(Math.abs(x - expected[j]) < 1e-6,
              `embedding ${i}[${j}]: ${x} vs ${expected[j]}`));
          });
          assert.ok(Number.isInteger(res.json.usage?.prompt_tokens), res.text);
          const rec = await mock.saw(inputs[0]);
          assert.equal(rec.route, p.route);
          if (p.name === 'gemini') assert.equal(rec.path, `/v1beta/models/${p.embed}:batchEmbedContents`);
          if (p.name === 'azure') assert.equal(rec.path, `/openai/deployments/${p.embed}/embeddings`);
          if (p.name === 'openai') assert.equal(rec.path, '/v1/embeddings');
          assertUpstreamAuth(p, rec, mock, gw);
        });
      } else {
        it(`${p.name}: /v1/embeddings is a 400 (no embeddings on this provider)`, async () => {
          const before = (await routeCounts(mock))[p.route];
          const res = await gw.fetch('/v1/embeddings', { body: { model: p.model, input: 'hello' } });
          assertError(res, { status: 400, type: 'invalid_request_error' });
          assert.equal((await routeCounts(mock))[p.route], before, 'the upstream was called');
        });
      }
    }

    it('/v1/models lists every model', async () => {
      const res = await gw.fetch('/v1/models');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.object, 'list');
      const ids = res.json.data.map((m) => m.id).sort();
      const want = PROVIDERS
        .flatMap((p) => [p.model, ...(p.embedModel ? [p.embedModel] : [])]).sort();
      assert.deepEqual(ids, want);
      for (const m of res.json.data) assert.equal(m.object, 'model');
    });
  });
}
