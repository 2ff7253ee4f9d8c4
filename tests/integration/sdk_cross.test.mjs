// The official SDKs across formats: the `openai` client against a model
// that an Anthropic-format deployment serves, and the `@anthropic-ai/sdk`
// client (baseURL = the gateway root, the master key as its apiKey, sent as
// x-api-key) against models served by an OpenAI-format and an
// Anthropic-format deployment. Chat, streaming, tool calls and tool results
// in each, and the SDK's error classes. The upstream is one
// `aigw mock-provider`, which answers "Mock reply to: PROMPT" in every format.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import {
  MODES, after, assert, before, describe, it, nonce, startGateway, startMock,
} from './lib.mjs';

const TOOL_ARGS = { city: 'Paris', unit: 'celsius' };
const WEATHER_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city'],
};
const OPENAI_TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
                                  parameters: WEATHER_SCHEMA } },
  { type: 'function', function: { name: 'get_time', description: 'Time in a city',
                                  parameters: { type: 'object', properties: {} } } },
];
const ANTHROPIC_TOOLS = [
  { name: 'get_weather', description: 'Weather in a city', input_schema: WEATHER_SCHEMA },
  { name: 'get_time', description: 'Time in a city', input_schema: { type: 'object', properties: {} } },
];

// Models: the name the client asks for, the deployment id, the mock route.
const VIA_OPENAI = { model: 'x-openai', dep: 'dep-x-openai', route: 'openai' };
const VIA_ANTHROPIC = { model: 'x-claude', dep: 'dep-x-claude', route: 'anthropic' };

// Collect an OpenAI SDK stream: text, tool calls assembled from deltas,
// finish_reason, chunk count.
async function collectOpenAI(stream) {
  let text = '';
  let finish = null;
  let chunks = 0;
  const calls = [];
  const argDeltas = [];
  for await (const chunk of stream) {
    chunks++;
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta?.content ?? '';
    for (const t of choice.delta?.tool_calls ?? []) {
      const c = (calls[t.index] ??= { id: null, name: '', arguments: '' });
      if (t.id) c.id = t.id;
      if (t.function?.name) c.name += t.function.name;
      if (t.function?.arguments) {
        c.arguments += t.function.arguments;
        argDeltas.push(t.function.arguments);
      }
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { text, finish, chunks, calls, argDeltas };
}

for (const mode of MODES) {
  describe(`official SDKs across formats (${mode})`, () => {
    let mock;
    let gw;
    before(async () => {
      mock = await startMock({ name: `${mode}-mock` });
      gw = await startGateway({
        mode, mock, name: `${mode}-sdk`,
        config: {
          cache: { enabled: false },
          models: [
            { name: VIA_OPENAI.model, deployments: [{ id: VIA_OPENAI.dep, provider: 'openai_compatible',
              model: 'gpt-4o-mini', base_url: mock.baseURL, api_key: mock.apiKey }] },
            { name: VIA_ANTHROPIC.model, deployments: [{ id: VIA_ANTHROPIC.dep, provider: 'anthropic',
              model: 'claude-3-5-haiku-latest', base_url: mock.url, api_key: mock.apiKey }] },
          ],
        },
      });
    }, { timeout: 90000 });
    after(async () => {
      await gw?.stop();
      await mock?.stop();
    });

    const openai = () => new OpenAI({ baseURL: gw.baseURL, apiKey: gw.masterKey, maxRetries: 0,
                                      timeout: 15000 });
    const anthropic = () => new Anthropic({ baseURL: gw.url, apiKey: gw.masterKey, maxRetries: 0,
                                            timeout: 15000 });

    describe('openai SDK -> Anthropic-format deployment', () => {
      it('chat.completions.create', async () => {
        const question = `Hello Claude via OpenAI ${nonce()}`;
        const { data, response } = await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, messages: [
            { role: 'system', content: 'You are terse.' },
            { role: 'user', content: question },
          ],
        }).withResponse();
        assert.equal(response.headers.get('x-aigw-provider'), VIA_ANTHROPIC.dep);
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0].message.role, 'assistant');
        assert.equal(data.choices[0].message.content, `Mock reply to: ${question}`);
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
        const seen = await mock.saw(question);
        assert.equal(seen.route, 'anthropic');
        assert.equal(seen.path, '/v1/messages');
        // The system message moved to Anthropic's top-level system
        const system = typeof seen.body.system === 'string' ? seen.body.system
          : (seen.body.system || []).map((b) => b.text).join('');
        assert.equal(system, 'You are terse.');
        assert.ok(seen.body.messages.every((m) => m.role !== 'system'), JSON.stringify(seen.body));
      });

      it('streams (for await) and with .stream() helper: same text, finish stop', async () => {
        const question = `Stream Claude via OpenAI ${nonce()}`;
        const messages = [{ role: 'user', content: question }];
        const s = await collectOpenAI(await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, messages, stream: true, stream_options: { include_usage: true } }));
        assert.ok(s.chunks >= 3, `only ${s.chunks} chunks`);
        assert.equal(s.text, `Mock reply to: ${question}`);
        assert.equal(s.finish, 'stop');

        const runner = openai().chat.completions.stream({ model: VIA_ANTHROPIC.model, messages });
        const deltas = [];
        runner.on('content', (delta) => deltas.push(delta));
        const final = await runner.finalChatCompletion();
        assert.ok(deltas.length >= 2, `${deltas.length} content events`);
        assert.equal(final.choices[0].message.content, `Mock reply to: ${question}`);
        assert.equal(final.choices[0].finish_reason, 'stop');
      });

      it('tool calls, plain and streamed, then the tool result', async () => {
        const question = `What is the weather in Paris? mock:tool ${nonce()}`;
        const c = await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, tools: OPENAI_TOOLS, messages: [{ role: 'user', content: question }] });
        assert.equal(c.choices[0].finish_reason, 'tool_calls');
        const call = c.choices[0].message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGS);
        const seen = await mock.saw(question);
        assert.deepEqual(seen.body.tools.map((t) => t.name), ['get_weather', 'get_time']);
        assert.deepEqual(seen.body.tools[0].input_schema, WEATHER_SCHEMA);

        const s = await collectOpenAI(await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, tools: OPENAI_TOOLS, stream: true,
          messages: [{ role: 'user', content: `${question} streamed` }] }));
        assert.equal(s.finish, 'tool_calls');
        assert.equal(s.calls.length, 1);
        assert.equal(s.calls[0].name, 'get_weather');
        assert.ok(s.calls[0].id, 'no tool call id');
        assert.deepEqual(JSON.parse(s.calls[0].arguments), TOOL_ARGS);
        assert.ok(s.argDeltas.length >= 2, `arguments in ${s.argDeltas.length} deltas`);

        const result = `21 degrees and sunny ${nonce()}`;
        const followUp = [
          { role: 'user', content: question },
          c.choices[0].message,
          { role: 'tool', tool_call_id: call.id, content: result },
        ];
        const answer = await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, tools: OPENAI_TOOLS, messages: followUp });
        assert.equal(answer.choices[0].message.content, `tool said: ${result}`);
        assert.equal(answer.choices[0].finish_reason, 'stop');
        const sent = await mock.saw(result);
        const last = sent.body.messages.at(-1);
        assert.equal(last.role, 'user');
        const block = last.content.find((b) => b.type === 'tool_result');
        assert.ok(block, JSON.stringify(last));
        assert.equal(block.tool_use_id, call.id);
        const prior = sent.body.messages.at(-2);
        assert.equal(prior.role, 'assistant');
        const use = prior.content.find((b) => b.type === 'tool_use');
        assert.equal(use.id, call.id);
        assert.deepEqual(use.input, TOOL_ARGS);

        const streamed = await collectOpenAI(await openai().chat.completions.create({
          model: VIA_ANTHROPIC.model, tools: OPENAI_TOOLS, messages: followUp, stream: true }));
        assert.equal(streamed.text, `tool said: ${result}`);
      });
    });

    for (const target of [VIA_OPENAI, VIA_ANTHROPIC]) {
      describe(`@anthropic-ai/sdk -> ${target.route}-format deployment`, () => {
        it('messages.create', async () => {
          const question = `Hello from the Anthropic SDK ${nonce()}`;
          const { data: msg, response } = await anthropic().messages.create({
            model: target.model, max_tokens: 256, system: 'Be brief.',
            messages: [{ role: 'user', content: question }],
          }).withResponse();
          assert.equal(response.headers.get('x-aigw-provider'), target.dep);
          assert.equal(msg.type, 'message');
          assert.equal(msg.role, 'assistant');
          assert.equal(msg.content.length, 1);
          assert.equal(msg.content[0].type, 'text');
          assert.equal(msg.content[0].text, `Mock reply to: ${question}`);
          assert.equal(msg.stop_reason, 'end_turn');
          assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, JSON.stringify(msg.usage));
          const seen = await mock.saw(question);
          assert.equal(seen.route, target.route);
          if (target.route === 'openai') {
            assert.equal(seen.body.messages[0].role, 'system');
            assert.equal(seen.body.messages[0].content, 'Be brief.');
          }
        });

        it('messages.stream: text deltas and finalMessage; stream: true raw events', async () => {
          const question = `Stream from the Anthropic SDK ${nonce()}`;
          const stream = anthropic().messages.stream({
            model: target.model, max_tokens: 256, messages: [{ role: 'user', content: question }] });
          const deltas = [];
          stream.on('text', (delta) => deltas.push(delta));
          const final = await stream.finalMessage();
          assert.ok(deltas.length >= 2, `${deltas.length} text deltas`);
          assert.equal(deltas.join(''), `Mock reply to: ${question}`);
          assert.equal(final.content[0].text, `Mock reply to: ${question}`);
          assert.equal(final.stop_reason, 'end_turn');
          assert.ok(final.usage.output_tokens > 0, JSON.stringify(final.usage));

          const raw = await anthropic().messages.create({
            model: target.model, max_tokens: 256, stream: true,
            messages: [{ role: 'user', content: question }] });
          const types = [];
          let text = '';
          for await (const event of raw) {
            types.push(event.type);
            if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
          }
          assert.equal(types[0], 'message_start', types.join(' '));
          assert.equal(types.at(-1), 'message_stop', types.join(' '));
          assert.ok(types.includes('message_delta'), types.join(' '));
          assert.equal(text, `Mock reply to: ${question}`);
        });

        it('tool use (create and stream with input_json_delta), then a tool_result', async () => {
          const question = `What is the weather in Paris? mock:tool ${nonce()}`;
          const msg = await anthropic().messages.create({
            model: target.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
            messages: [{ role: 'user', content: question }] });
          assert.equal(msg.stop_reason, 'tool_use');
          const use = msg.content.find((b) => b.type === 'tool_use');
          assert.ok(use, JSON.stringify(msg.content));
          assert.equal(use.name, 'get_weather');
          assert.deepEqual(use.input, TOOL_ARGS);
          assert.ok(use.id, 'no tool_use id');
          const seen = await mock.saw(question);
          if (target.route === 'openai') {
            assert.deepEqual(seen.body.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
            assert.deepEqual(seen.body.tools[0].function.parameters, WEATHER_SCHEMA);
          } else {
            assert.deepEqual(seen.body.tools.map((t) => t.name), ['get_weather', 'get_time']);
          }

          const stream = anthropic().messages.stream({
            model: target.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
            messages: [{ role: 'user', content: `${question} streamed` }] });
          const partials = [];
          stream.on('inputJson', (partial) => partials.push(partial));
          const final = await stream.finalMessage();
          assert.ok(partials.length >= 1, 'no input_json_delta');
          assert.deepEqual(JSON.parse(partials.join('')), TOOL_ARGS);
          assert.equal(final.stop_reason, 'tool_use');
          const streamedUse = final.content.find((b) => b.type === 'tool_use');
          assert.equal(streamedUse?.name, 'get_weather', JSON.stringify(final.content));
          assert.deepEqual(streamedUse.input, TOOL_ARGS);

          const result = `cloudy, 14 degrees ${nonce()}`;
          const followUp = await anthropic().messages.create({
            model: target.model, max_tokens: 256, tools: ANTHROPIC_TOOLS,
            messages: [
              { role: 'user', content: question },
              { role: 'assistant', content: msg.content },
              { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: result }] },
            ] });
          assert.equal(followUp.stop_reason, 'end_turn');
          assert.equal(followUp.content[0].type, 'text');
          assert.equal(followUp.content[0].text, `tool said: ${result}`);
          const sent = await mock.saw(result);
          if (target.route === 'openai') {
            const tool = sent.body.messages.find((m) => m.role === 'tool');
            assert.equal(tool?.tool_call_id, use.id, JSON.stringify(sent.body.messages));
            assert.equal(tool.content, result);
            const asked = sent.body.messages.find((m) => m.tool_calls);
            assert.equal(asked.tool_calls[0].id, use.id);
            assert.deepEqual(JSON.parse(asked.tool_calls[0].function.arguments), TOOL_ARGS);
          }
        });
      });
    }

    it('@anthropic-ai/sdk: an unknown model is a NotFoundError (404)', async () => {
      await assert.rejects(
        anthropic().messages.create({ model: `no-such-model-${nonce()}`, max_tokens: 16,
                                      messages: [{ role: 'user', content: 'hi' }] }),
        (err) => {
          assert.ok(err instanceof Anthropic.NotFoundError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 404);
          assert.ok(err.requestID || err.headers?.get?.('x-request-id'), 'no request id');
          return true;
        },
      );
    });

    it('@anthropic-ai/sdk: a wrong key is an AuthenticationError (401)', async () => {
      const client = new Anthropic({ baseURL: gw.url, apiKey: `sk-wrong-${nonce(16)}`, maxRetries: 0 });
      await assert.rejects(
        client.messages.create({ model: VIA_ANTHROPIC.model, max_tokens: 16,
                                 messages: [{ role: 'user', content: 'hi' }] }),
        (err) => {
          assert.ok(err instanceof Anthropic.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
          assert.equal(err.status, 401);
          return true;
        },
      );
    });
  });
}
