// POST /v1/responses (OpenAI's Responses API) with the official `openai`
// SDK against three models: one on an "openai" deployment (the request
// passes through to the mock's own /v1/responses), one on an Anthropic-
// format and one on a Gemini-format deployment (translated through the
// gateway's chat form). Plain, streamed (every event in order with its
// sequence_number), a function tool and its output on the next turn, what
// the mock upstream received, usage records, and 400s naming the param.
import fs from 'node:fs';
import path from 'node:path';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import YAML from 'yaml';
import {
  SRC, after, assert, before, describe, it, nonce, readSSE, request, startGateway, startMock,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const TOOL_ARGS = { city: 'Paris', unit: 'celsius' };
const TOOLS = [
  { type: 'function', name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } },
                  required: ['city'] } },
];

// Models: the name the client asks for, the deployment, the mock route and path.
const TARGETS = [
  { model: 'r-openai', dep: 'dep-r-openai', route: 'responses', path: '/v1/responses' },
  { model: 'r-claude', dep: 'dep-r-claude', route: 'anthropic', path: '/v1/messages' },
  { model: 'r-gemini', dep: 'dep-r-gemini', route: 'gemini' },
];

// The events a streamed text answer must send, in order (deltas repeat).
const TEXT_EVENTS = [
  'response.created', 'response.in_progress', 'response.output_item.added',
  'response.content_part.added', 'response.output_text.delta', 'response.output_text.done',
  'response.content_part.done', 'response.output_item.done', 'response.completed',
];
const TOOL_EVENTS = [
  'response.created', 'response.in_progress', 'response.output_item.added',
  'response.function_call_arguments.delta', 'response.function_call_arguments.done',
  'response.output_item.done', 'response.completed',
];

// The text of a Response's message items (the SDK's stream helper leaves
// out the output_text convenience that responses.create adds).
const textOf = (response) => response.output.filter((o) => o.type === 'message')
  .flatMap((o) => o.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');

// Event types with consecutive repeats folded into one.
const folded = (events) => events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]);

describe('POST /v1/responses', () => {
  let mock;
  let gw;
  let pg;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    mock = await startMock({ name: 'responses-mock' });
    gw = await startGateway({
      mock, name: 'responses', env: { DATABASE_URL: pg.url },
      config: {
        cache: { enabled: true },
        usage: { batch_ms: 50 },
        models: [
          { name: 'r-openai', deployments: [{ id: 'dep-r-openai', provider: 'openai',
            model: 'gpt-4o-mini', base_url: mock.baseURL, api_key: mock.apiKey }] },
          { name: 'r-claude', deployments: [{ id: 'dep-r-claude', provider: 'anthropic',
            model: 'claude-3-5-haiku-latest', base_url: mock.url, api_key: mock.apiKey }] },
          { name: 'r-gemini', deployments: [{ id: 'dep-r-gemini', provider: 'gemini',
            model: 'gemini-2.0-flash', base_url: mock.url, api_key: mock.apiKey }] },
        ],
      },
    });
  }, { timeout: 120000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    pg?.destroy();
  });

  const client = () => new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey, maxRetries: 0,
                                    timeout: 15000 });

  // The text the upstream got as the last user turn, in its own format.
  function lastUserText(seen) {
    if (seen.route === 'responses') {
      const input = seen.body.input;
      return typeof input === 'string' ? input : JSON.stringify(input);
    }
    if (seen.route === 'gemini') return JSON.stringify(seen.body.contents);
    return JSON.stringify(seen.body.messages);
  }

  for (const t of TARGETS) {
    describe(`${t.route}-format deployment`, () => {
      it('responses.create: text, instructions, usage', async () => {
        const question = `Hello Responses ${nonce()}`;
        const { data, response } = await client().responses.create({
          model: t.model, input: question, instructions: 'You are terse.',
          max_output_tokens: 200, metadata: { case: 'plain' },
        }).withResponse();
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-aigw-provider'), t.dep);
        assert.match(data.id, /^resp_/);
        assert.equal(data.object, 'response');
        assert.equal(data.status, 'completed');
        assert.equal(data.output_text, `Mock reply to: ${question}`);
        assert.equal(data.output[0].type, 'message');
        assert.equal(data.output[0].role, 'assistant');
        assert.equal(data.output[0].content[0].type, 'output_text');
        assert.ok(data.usage.input_tokens > 0, JSON.stringify(data.usage));
        assert.ok(data.usage.output_tokens > 0, JSON.stringify(data.usage));
        assert.equal(data.usage.total_tokens, data.usage.input_tokens + data.usage.output_tokens);
        assert.equal(typeof data.usage.input_tokens_details.cached_tokens, 'number');
        // The fields schemas/openapi.yaml says every Response has.
        const spec = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));
        const schema = spec.components.schemas.Response;
        assert.ok(spec.paths['/v1/responses'].post.responses['200']);
        for (const field of schema.required) assert.ok(field in data, `no ${field}`);
        for (const field of schema.properties.usage.required) assert.ok(field in data.usage);
        const seen = await mock.saw(question);
        assert.equal(seen.route, t.route);
        if (t.route === 'responses') {
          // Passed through: the client's body with the upstream's model.
          assert.equal(seen.body.model, 'gpt-4o-mini');
          assert.equal(seen.body.input, question);
          assert.equal(seen.body.instructions, 'You are terse.');
          assert.equal(seen.body.max_output_tokens, 200);
        } else if (t.route === 'anthropic') {
          const system = typeof seen.body.system === 'string' ? seen.body.system
            : (seen.body.system || []).map((b) => b.text).join('');
          assert.equal(system, 'You are terse.');
          assert.equal(seen.body.max_tokens, 200);
          assert.equal(seen.body.model, 'claude-3-5-haiku-latest');
          assert.ok(lastUserText(seen).includes(question));
        } else {
          assert.ok(JSON.stringify(seen.body.systemInstruction).includes('You are terse.'));
          assert.equal(seen.body.generationConfig.maxOutputTokens, 200);
          assert.ok(lastUserText(seen).includes(question));
        }
      });

      it('stream: every event in order, sequence numbers, final text and usage', async () => {
        const question = `Stream Responses ${nonce()}`;
        const stream = await client().responses.create({ model: t.model, input: question,
                                                         stream: true });
        const events = [];
        for await (const event of stream) events.push(event);
        assert.deepEqual(folded(events), TEXT_EVENTS);
        events.forEach((e, i) => assert.equal(e.sequence_number, i, `event ${i}: ${e.type}`));
        const text = events.filter((e) => e.type === 'response.output_text.delta')
          .map((e) => e.delta).join('');
        assert.equal(text, `Mock reply to: ${question}`);
        assert.ok(events.filter((e) => e.type === 'response.output_text.delta').length >= 2);
        const done = events.find((e) => e.type === 'response.output_text.done');
        assert.equal(done.text, text);
        const completed = events.at(-1).response;
        assert.equal(completed.status, 'completed');
        assert.equal(completed.output[0].content[0].text, text);
        assert.ok(completed.usage.input_tokens > 0 && completed.usage.output_tokens > 0,
                  JSON.stringify(completed.usage));

        // The SDK's own helper accumulates the same answer.
        const helper = client().responses.stream({ model: t.model, input: `${question} again` });
        const final = await helper.finalResponse();
        assert.equal(textOf(final), `Mock reply to: ${question} again`);
      });

      it('a function tool, then its output on the next turn (plain and streamed)', async () => {
        const question = `What is the weather in Paris? mock:tool ${nonce()}`;
        const first = await client().responses.create({ model: t.model, input: question,
                                                        tools: TOOLS });
        const call = first.output.find((o) => o.type === 'function_call');
        assert.ok(call, JSON.stringify(first.output));
        assert.equal(call.name, 'get_weather');
        assert.ok(call.call_id, 'no call_id');
        assert.deepEqual(JSON.parse(call.arguments), TOOL_ARGS);
        const seen = await mock.saw(question);
        if (t.route === 'anthropic') {
          assert.deepEqual(seen.body.tools.map((x) => x.name), ['get_weather']);
          assert.deepEqual(seen.body.tools[0].input_schema, TOOLS[0].parameters);
        } else if (t.route === 'responses') {
          assert.deepEqual(seen.body.tools, TOOLS);
        }

        // Streamed: the call arrives as argument deltas.
        const stream = await client().responses.create({
          model: t.model, input: `${question} streamed`, tools: TOOLS, stream: true });
        const events = [];
        for await (const event of stream) events.push(event);
        assert.deepEqual(folded(events), TOOL_EVENTS);
        events.forEach((e, i) => assert.equal(e.sequence_number, i));
        const args = events.filter((e) => e.type === 'response.function_call_arguments.delta')
          .map((e) => e.delta).join('');
        assert.deepEqual(JSON.parse(args), TOOL_ARGS);
        assert.equal(events.at(-1).response.output[0].type, 'function_call');

        // The next turn: the items sent back, the call's output last.
        const result = `21 degrees and sunny ${nonce()}`;
        const input = [
          { role: 'user', content: question },
          ...first.output,
          { type: 'function_call_output', call_id: call.call_id, output: result },
        ];
        const answer = await client().responses.create({ model: t.model, input, tools: TOOLS });
        // The mock answers a Gemini functionResponse with its JSON.
        const said = t.route === 'gemini' ? `tool said: ${JSON.stringify({ content: result })}`
          : `tool said: ${result}`;
        assert.equal(answer.output_text, said);
        const sent = await mock.saw(result);
        if (t.route === 'anthropic') {
          const last = sent.body.messages.at(-1);
          const block = last.content.find((b) => b.type === 'tool_result');
          assert.equal(block.tool_use_id, call.call_id);
          const use = sent.body.messages.at(-2).content.find((b) => b.type === 'tool_use');
          assert.equal(use.id, call.call_id);
          assert.deepEqual(use.input, TOOL_ARGS);
        } else if (t.route === 'gemini') {
          const parts = sent.body.contents.flatMap((c) => c.parts);
          assert.ok(parts.some((p) => p.functionCall?.name === 'get_weather'), JSON.stringify(parts));
          assert.ok(parts.some((p) => p.functionResponse?.name === 'get_weather'),
                    JSON.stringify(parts));
        } else {
          assert.equal(sent.body.input.at(-1).type, 'function_call_output');
          assert.equal(sent.body.input.at(-1).call_id, call.call_id);
        }
        const streamed = await client().responses.stream({ model: t.model, input, tools: TOOLS })
          .finalResponse();
        assert.equal(textOf(streamed), said);
      });
    });
  }

  it('an upstream that dies mid-stream: an error event last (and response.failed when translated)',
     async () => {
       for (const t of TARGETS) {
         const stream = await client().responses.create({
           model: t.model, input: `Die early mock:die_after=2 ${nonce()}`, stream: true });
         const events = [];
         for await (const event of stream) events.push(event);
         const types = events.map((e) => e.type);
         assert.ok(types.includes('response.output_text.delta'), `${t.route}: ${types}`);
         assert.ok(!types.includes('response.completed'), `${t.route}: ${types}`);
         events.forEach((e, i) => assert.equal(e.sequence_number, i, `${t.route}: ${types}`));
         const error = events.find((e) => e.type === 'error');
         assert.ok(error, `${t.route}: ${types}`);
         assert.ok(error.message, JSON.stringify(error));
         if (t.route === 'responses') assert.equal(types.at(-1), 'error');
         else {
           assert.equal(types.at(-1), 'response.failed');
           assert.equal(events.at(-1).response.status, 'failed');
         }
       }
     });

  for (const model of ['r-openai', 'r-claude']) {
    it(`the Vercel AI SDK (openai(model) calls /v1/responses): generateText, streamText (${model})`,
       async () => {
         const openai = createOpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey });
         const question = `Hello AI SDK ${nonce()}`;
         const { text, usage } = await generateText({ model: openai(model), prompt: question,
                                                      maxRetries: 0 });
         assert.equal(text, `Mock reply to: ${question}`);
         assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0, JSON.stringify(usage));
         const seen = await mock.saw(question);
         assert.equal(seen.route, model === 'r-openai' ? 'responses' : 'anthropic');
         const streamed = streamText({ model: openai(model), prompt: `${question} streamed`,
                                       maxRetries: 0 });
         let all = '';
         for await (const delta of streamed.textStream) all += delta;
         assert.equal(all, `Mock reply to: ${question} streamed`);
         assert.ok((await streamed.usage).outputTokens > 0);
       });

    it(`LangChain.js ChatOpenAI with useResponsesApi: invoke and stream (${model})`, async () => {
      const llm = new ChatOpenAI({ model, apiKey: gw.masterKey, useResponsesApi: true,
                                   maxRetries: 0, configuration: { baseURL: gw.baseURL } });
      const question = `Hello LangChain ${nonce()}`;
      const message = await llm.invoke(question);
      assert.equal(message.text, `Mock reply to: ${question}`);
      assert.equal((await mock.saw(question)).route,
                   model === 'r-openai' ? 'responses' : 'anthropic');
      let all = '';
      for await (const chunk of await llm.stream(`${question} streamed`)) all += chunk.text;
      assert.equal(all, `Mock reply to: ${question} streamed`);
    });
  }

  // The AI SDK's anthropic(model) speaks /v1/messages: the gateway serves it
  // for a model of any provider.
  for (const model of ['r-openai', 'r-claude']) {
    it(`the Vercel AI SDK's anthropic(model): generateText, streamText (${model})`, async () => {
      const anthropic = createAnthropic({ baseURL: gw.baseURL, apiKey: gw.masterKey });
      const question = `Hello AI SDK Anthropic ${nonce()}`;
      const { text, usage } = await generateText({ model: anthropic(model), prompt: question,
                                                   maxRetries: 0 });
      assert.equal(text, `Mock reply to: ${question}`);
      assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0, JSON.stringify(usage));
      const streamed = streamText({ model: anthropic(model), prompt: `${question} streamed`,
                                    maxRetries: 0 });
      let all = '';
      for await (const delta of streamed.textStream) all += delta;
      assert.equal(all, `Mock reply to: ${question} streamed`);
      assert.ok((await streamed.usage).outputTokens > 0);
    });
  }

  it('translated requests: items, parts, developer role, text.format and tool_choice', async () => {
    const question = `Describe this ${nonce()}`;
    await client().responses.create({
      model: 'r-claude',
      input: [
        { role: 'developer', content: 'Answer in JSON.' },
        { type: 'message', role: 'user', content: [
          { type: 'input_text', text: question },
          { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' },
        ] },
      ],
      tools: TOOLS, tool_choice: { type: 'function', name: 'get_weather' },
      temperature: 0.25, top_p: 0.5,
      text: { format: { type: 'json_schema', name: 'answer', strict: true,
                        schema: { type: 'object', properties: { a: { type: 'string' } } } } },
    });
    const seen = await mock.saw(question);
    assert.equal(seen.route, 'anthropic');
    const system = typeof seen.body.system === 'string' ? seen.body.system
      : (seen.body.system || []).map((b) => b.text).join('');
    assert.ok(system.includes('Answer in JSON.'), system);
    const user = seen.body.messages.at(-1);
    assert.equal(user.role, 'user');
    assert.ok(user.content.some((b) => b.type === 'image'), JSON.stringify(user.content));
    assert.ok(user.content.some((b) => b.type === 'text' && b.text === question));
    assert.deepEqual(seen.body.tool_choice, { type: 'tool', name: 'get_weather' });
    assert.equal(seen.body.temperature, 0.25);
    assert.equal(seen.body.top_p, 0.5);
  });

  it('bad input: 400 in OpenAI\'s shape naming the param', async () => {
    const cases = [
      [{ model: 'r-claude' }, 'input'],
      [{ model: 'r-claude', input: [{ type: 'computer_call_output', call_id: 'x' }] }, 'input[0].type'],
      [{ model: 'r-claude', input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [{ model: 'r-claude', input: [{ role: 'user', content: [{ type: 'input_audio' }] }] },
       'input[0].content[0].type'],
      [{ model: 'r-claude', input: 'x', previous_response_id: 42 }, 'previous_response_id'],
      [{ model: 'r-claude', input: 'x', temperature: 9 }, 'temperature'],
      [{ model: 'r-openai', input: 'x', no_such_field: 1 }, 'no_such_field'],
      [{ model: 'r-gemini', input: [{ type: 'function_call_output', output: 'x' }] },
       'input[0].call_id'],
    ];
    for (const [body, param] of cases) {
      const r = await request(gw.url, '/v1/responses', { key: gw.masterKey, body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, param, r.text);
      assert.ok(r.json.error.message, r.text);
      assert.ok(r.json.error.request_id, r.text);
    }
    // The SDK raises its BadRequestError with the same param.
    await assert.rejects(
      client().responses.create({ model: 'r-claude', input: 'x', tools: [{ type: 'web_search' }] }),
      (err) => err.status === 400 && err.param === 'tools[0].type');
    // No model: 404 model_not_found, as on every route.
    const missing = await request(gw.url, '/v1/responses',
                                  { key: gw.masterKey, body: { model: 'nope', input: 'x' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'model_not_found');
  });

  it('usage records name the endpoint /v1/responses', async () => {
    const question = `Counted ${nonce()}`;
    const r = await request(gw.url, '/v1/responses',
                            { key: gw.masterKey, body: { model: 'r-claude', input: question } });
    assert.equal(r.status, 200, r.text);
    const id = r.headers.get('x-request-id');
    let row = '';
    for (let i = 0; i < 100 && !row; i++) {
      row = pg.sql(`SELECT endpoint, status, model, deployment, prompt_tokens, completion_tokens
                    FROM usage_records WHERE request_id = '${id}'`).trim();
      if (!row) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(row, 'no usage record');
    assert.equal(row, ['/v1/responses', 200, 'r-claude', 'dep-r-claude', r.json.usage.input_tokens,
                       r.json.usage.output_tokens].join('|'));
  });

  it('a repeated non-streamed request is a cache HIT with the same Response', async () => {
    const body = { model: 'r-gemini', input: `Cache me ${nonce()}` };
    const a = await request(gw.url, '/v1/responses', { key: gw.masterKey, body });
    const b = await request(gw.url, '/v1/responses', { key: gw.masterKey, body });
    assert.equal(a.headers.get('x-cache'), 'MISS');
    assert.equal(b.headers.get('x-cache'), 'HIT');
    assert.deepEqual(b.json, a.json);
  });
});

// The edge's own mid-stream error: the pipeline went silent (here the
// provider process is stopped after the first delta) and the request's
// deadline passed; the client gets an error in its own format, a Responses
// client one whose sequence_number follows the events it got. Split mode,
// with a broker liveness long enough that the deadline, not the worker's
// death, ends the wait.
describe('a deadline passed mid-stream: the edge\'s error in the client\'s format', () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ name: 'deadline-mock' });
    gw = await startGateway({
      mock, mode: 'split', name: 'responses-deadline',
      config: {
        server: { request_timeout_ms: 1500 },
        broker: { liveness: 60 },
        cache: { enabled: false },
        models: [
          { name: 'r-openai', deployments: [{ id: 'dep-r-openai', provider: 'openai',
            model: 'gpt-4o-mini', base_url: mock.baseURL, api_key: mock.apiKey }] },
          { name: 'r-claude', deployments: [{ id: 'dep-r-claude', provider: 'anthropic',
            model: 'claude-3-5-haiku-latest', base_url: mock.url, api_key: mock.apiKey }] },
        ],
      },
    });
  }, { timeout: 120000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  // Stream BODY to PATH; stop the provider at the first text delta, and
  // let it go on once the stream has ended. The events the client got.
  async function stalled(path, body) {
    const [provider] = gw.actorProcs('provider');
    const text = `Slowly mock:chunks=20 mock:chunk_delay=300 ${nonce()}`;
    const res = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json',
                 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ ...body(text), stream: true }),
    });
    assert.equal(res.status, 200);
    let stopped = false;
    try {
      const { events } = await readSSE(res, { onEvent: (e) => {
        if (!stopped && /delta/.test(e.event + e.data)) {
          stopped = true;
          provider.kill('SIGSTOP');
        }
      } });
      assert.ok(stopped, 'no delta came');
      return events;
    } finally {
      if (stopped) provider.kill('SIGCONT');
    }
  }

  for (const model of ['r-openai', 'r-claude']) {
    it(`/v1/responses (${model}): a Responses error event, sequence_number continuing`, async () => {
      const events = await stalled('/v1/responses', (input) => ({ model, input }));
      const last = events.at(-1);
      assert.equal(last.event, 'error', JSON.stringify(events.map((e) => e.event)));
      assert.equal(last.json.type, 'error');
      assert.equal(last.json.code, 'deadline_exceeded');
      assert.match(last.json.message, /deadline/);
      assert.ok(events.some((e) => e.event === 'response.output_text.delta'));
      events.forEach((e, i) => assert.equal(e.json.sequence_number, i, e.data));
    });
  }

  it('/v1/messages: Anthropic\'s error event', async () => {
    const events = await stalled('/v1/messages', (text) => ({
      model: 'r-claude', max_tokens: 100, messages: [{ role: 'user', content: text }] }));
    const last = events.at(-1);
    assert.equal(last.event, 'error', JSON.stringify(events.map((e) => e.event)));
    assert.deepEqual(Object.keys(last.json), ['type', 'error']);
    assert.equal(last.json.type, 'error');
    assert.equal(last.json.error.type, 'timeout_error');
    assert.match(last.json.error.message, /deadline/);
  });

  it('/v1/chat/completions: the chat error chunk, as before', async () => {
    const events = await stalled('/v1/chat/completions', (text) => ({
      model: 'r-openai', messages: [{ role: 'user', content: text }] }));
    const last = events.at(-1);
    assert.equal(last.event, 'message');
    assert.equal(last.json.error.type, 'timeout_error');
    assert.equal(last.json.error.code, 'deadline_exceeded');
    assert.ok(last.json.error.request_id);
  });
});
