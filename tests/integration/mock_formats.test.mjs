// `aigw mock-provider` alone, over real HTTP: every provider wire format it
// speaks (OpenAI, Anthropic, Gemini, Bedrock, Azure OpenAI), streaming
// included, tool calls and results, each format's auth and error shapes, the
// per-request mock:* controls, per-route injection (--route and
// /mock/config) and the /mock/requests ring.
import {
  after, assert, before, describe, it, nonce, redacted, request, spawnProcess, freePort, waitFor,
} from './lib.mjs';

const KEY = `sk-mock-${nonce(8)}`;
const ANTHROPIC_HEADERS = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
const BEDROCK_HEADERS = {
  authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request, ' +
                 'SignedHeaders=host;x-amz-date, Signature=00',
  'x-amz-date': '20240101T000000Z',
};
const BEDROCK_MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const TOOL_ARGS = { city: 'Paris', unit: 'celsius' };

// Start a mock with extra ARGS; returns { url, proc, stop }.
async function startMock(args = [], name = 'mock') {
  const port = await freePort();
  const proc = spawnProcess(name, ['mock-provider', '--port', String(port), ...args],
                            { env: { AIGW_MOCK_API_KEY: KEY } });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v1/models`, 200, 20000,
                { headers: { authorization: `Bearer ${KEY}` }, procs: [proc] });
  return { url, proc, stop: () => proc.stop() };
}

// Read a whole body, tolerating a connection cut: { buf, error }.
async function readAll(res) {
  const parts = [];
  let error = null;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value));
    }
  } catch (err) {
    error = err;
  }
  return { buf: Buffer.concat(parts), error };
}

// POST BODY (JSON) to URL+PATH with HEADERS; the raw response, body unread.
function post(url, path, body, headers = {}) {
  return fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
}

// SSE blocks of TEXT: [{ event, data, json }]. CRLF and LF both end lines.
function parseSSE(text) {
  const events = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    if (!block.trim()) continue;
    let event = 'message';
    let data = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    let json = null;
    try { json = JSON.parse(data); } catch { /* [DONE] */ }
    events.push({ event, data, json });
  }
  return events;
}

// CRC-32 (IEEE), as the AWS event stream uses it.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();
function crc32(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// Parse application/vnd.amazon.eventstream frames: 4-byte total length,
// 4-byte headers length, prelude CRC, headers, payload, message CRC.
// Returns { frames: [{ headers, payload }], rest } (rest: trailing bytes
// that do not make a whole frame).
function parseEventStream(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 12) {
    const total = buf.readUInt32BE(off);
    const headersLen = buf.readUInt32BE(off + 4);
    assert.equal(buf.readUInt32BE(off + 8), crc32(buf.subarray(off, off + 8)), 'prelude CRC');
    if (buf.length - off < total) break;
    assert.equal(buf.readUInt32BE(off + total - 4), crc32(buf.subarray(off, off + total - 4)),
                 'message CRC');
    const headers = {};
    let p = off + 12;
    const end = p + headersLen;
    while (p < end) {
      const nameLen = buf[p];
      const name = buf.toString('utf8', p + 1, p + 1 + nameLen);
      p += 1 + nameLen;
      assert.equal(buf[p], 7, `header ${name} is not a string`);
      const valueLen = buf.readUInt16BE(p + 1);
      headers[name] = buf.toString('utf8', p + 3, p + 3 + valueLen);
      p += 3 + valueLen;
    }
    const payload = JSON.parse(buf.toString('utf8', end, off + total - 4));
    frames.push({ headers, payload });
    off += total;
  }
  return { frames, rest: buf.length - off };
}

// One chat in each format, for the same user TEXT (optionally with TOOLS
// and a trailing tool RESULT turn). Each returns a raw fetch response.
const chat = {
  openai: (m, { text, stream = false, tools = false, result = null }) => {
    const messages = [{ role: 'user', content: text }];
    if (result !== null) {
      messages.push({ role: 'assistant', content: null, tool_calls: [{
        id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: JSON.stringify(TOOL_ARGS) } }] });
      messages.push({ role: 'tool', tool_call_id: 'call_1', content: result });
    }
    const body = { model: 'gpt-4o-mini', messages, stream };
    if (tools) {
      body.tools = ['get_weather', 'other'].map((name) => ({
        type: 'function', function: { name, parameters: { type: 'object' } } }));
    }
    return post(m.url, '/v1/chat/completions', body, { authorization: `Bearer ${KEY}` });
  },
  azure: (m, opts) => {
    // Same body as OpenAI's, minus the model: the deployment names it
    const { text, stream = false, tools = false, result = null } = opts;
    const messages = [{ role: 'user', content: text }];
    if (result !== null) {
      messages.push({ role: 'assistant', content: null, tool_calls: [{
        id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] });
      messages.push({ role: 'tool', tool_call_id: 'call_1', content: result });
    }
    const body = { messages, stream };
    if (tools) body.tools = [{ type: 'function', function: { name: 'get_weather' } }];
    return post(m.url, '/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21',
                body, { 'api-key': KEY });
  },
  anthropic: (m, { text, stream = false, tools = false, result = null }) => {
    const messages = [{ role: 'user', content: [{ type: 'text', text }] }];
    if (result !== null) {
      messages.push({ role: 'assistant', content: [
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: TOOL_ARGS }] });
      messages.push({ role: 'user', content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: result }] });
    }
    const body = { model: 'claude-3-5-haiku-latest', max_tokens: 256, messages, stream };
    if (tools) {
      body.tools = [{ name: 'get_weather', input_schema: { type: 'object' } },
                    { name: 'other', input_schema: { type: 'object' } }];
    }
    return post(m.url, '/v1/messages', body, ANTHROPIC_HEADERS);
  },
  gemini: (m, { text, stream = false, tools = false, result = null }) => {
    const contents = [{ role: 'user', parts: [{ text }] }];
    if (result !== null) {
      contents.push({ role: 'model', parts: [{ functionCall: { name: 'get_weather', args: TOOL_ARGS } }] });
      contents.push({ role: 'user', parts: [{ functionResponse: { name: 'get_weather',
                                                                  response: result } }] });
    }
    const body = { contents };
    if (tools) body.tools = [{ functionDeclarations: [{ name: 'get_weather' }, { name: 'other' }] }];
    const method = stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
    return post(m.url, `/v1beta/models/gemini-2.0-flash:${method}`, body,
                { 'x-goog-api-key': KEY });
  },
  bedrock: (m, { text, stream = false, tools = false, result = null }) => {
    const messages = [{ role: 'user', content: [{ text }] }];
    if (result !== null) {
      messages.push({ role: 'assistant', content: [
        { toolUse: { toolUseId: 'tu_1', name: 'get_weather', input: TOOL_ARGS } }] });
      messages.push({ role: 'user', content: [
        { toolResult: { toolUseId: 'tu_1', content: [{ text: result }] } }] });
    }
    const body = { messages, inferenceConfig: { maxTokens: 256 } };
    if (tools) {
      body.toolConfig = { tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: {} } } },
                                  { toolSpec: { name: 'other', inputSchema: { json: {} } } }] };
    }
    const id = encodeURIComponent(BEDROCK_MODEL);
    return post(m.url, `/model/${id}/${stream ? 'converse-stream' : 'converse'}`, body,
                BEDROCK_HEADERS);
  },
};
const FORMATS = Object.keys(chat);

// A non-streamed answer's { text, toolName, toolArgs, finish, usage } in FORMAT's shape.
function plainAnswer(format, json) {
  switch (format) {
    case 'openai':
    case 'azure': {
      const choice = json.choices[0];
      const call = choice.message.tool_calls?.[0];
      return { text: choice.message.content, toolName: call?.function.name,
               toolArgs: call && JSON.parse(call.function.arguments), finish: choice.finish_reason,
               usage: [json.usage.prompt_tokens, json.usage.completion_tokens] };
    }
    case 'anthropic': {
      const block = json.content[0];
      return { text: block.type === 'text' ? block.text : null,
               toolName: block.type === 'tool_use' ? block.name : undefined,
               toolArgs: block.input, finish: json.stop_reason,
               usage: [json.usage.input_tokens, json.usage.output_tokens] };
    }
    case 'gemini': {
      const cand = json.candidates[0];
      const part = cand.content.parts[0];
      return { text: part.text ?? null, toolName: part.functionCall?.name,
               toolArgs: part.functionCall?.args, finish: cand.finishReason,
               usage: [json.usageMetadata.promptTokenCount, json.usageMetadata.candidatesTokenCount] };
    }
    case 'bedrock': {
      const block = json.output.message.content[0];
      return { text: block.text ?? null, toolName: block.toolUse?.name,
               toolArgs: block.toolUse?.input, finish: json.stopReason,
               usage: [json.usage.inputTokens, json.usage.outputTokens] };
    }
    default: throw new Error(format);
  }
}

// A streamed answer's { text, toolName, argDeltas, finish, usage, complete, events }.
async function streamAnswer(format, res) {
  const { buf, error } = await readAll(res);
  const out = { text: '', toolName: undefined, argDeltas: [], finish: null, usage: null,
                error, events: [] };
  if (format === 'bedrock') {
    const { frames, rest } = parseEventStream(buf);
    out.rest = rest;
    out.events = frames.map((f) => f.headers[':event-type'] || f.headers[':exception-type']);
    out.frames = frames;
    for (const { headers, payload } of frames) {
      const type = headers[':event-type'];
      if (type === 'contentBlockDelta' && payload.delta.text !== undefined) out.text += payload.delta.text;
      if (type === 'contentBlockDelta' && payload.delta.toolUse) out.argDeltas.push(payload.delta.toolUse.input);
      if (type === 'contentBlockStart') out.toolName = payload.start.toolUse.name;
      if (type === 'messageStop') out.finish = payload.stopReason;
      if (type === 'metadata') out.usage = [payload.usage.inputTokens, payload.usage.outputTokens];
    }
    out.complete = out.events.at(-1) === 'metadata';
    return out;
  }
  out.raw = buf.toString('utf8');
  const events = parseSSE(out.raw);
  out.events = events.map((e) => e.event);
  for (const { event, data, json } of events) {
    if (format === 'anthropic') {
      if (event === 'content_block_start' && json.content_block.type === 'tool_use') {
        out.toolName = json.content_block.name;
      }
      if (event === 'content_block_delta' && json.delta.type === 'text_delta') out.text += json.delta.text;
      if (event === 'content_block_delta' && json.delta.type === 'input_json_delta') {
        out.argDeltas.push(json.delta.partial_json);
      }
      if (event === 'message_start') out.usage = [json.message.usage.input_tokens, null];
      if (event === 'message_delta') {
        out.finish = json.delta.stop_reason;
        out.usage[1] = json.usage.output_tokens;
      }
      if (event === 'message_stop') out.complete = true;
    } else if (format === 'gemini') {
      const cand = json.candidates[0];
      for (const part of cand.content.parts) {
        if (part.text) out.text += part.text;
        if (part.functionCall) {
          out.toolName = part.functionCall.name;
          out.argDeltas.push(JSON.stringify(part.functionCall.args));
        }
      }
      if (cand.finishReason) {
        out.finish = cand.finishReason;
        out.usage = [json.usageMetadata.promptTokenCount, json.usageMetadata.candidatesTokenCount];
        out.complete = true;
      }
    } else {
      if (data === '[DONE]') { out.complete = true; continue; }
      const choice = json.choices[0];
      if (json.usage) out.usage = [json.usage.prompt_tokens, json.usage.completion_tokens];
      if (!choice) continue;
      if (choice.delta.content) out.text += choice.delta.content;
      for (const call of choice.delta.tool_calls || []) {
        if (call.function.name) out.toolName = call.function.name;
        if (call.function.arguments) out.argDeltas.push(call.function.arguments);
      }
      if (choice.finish_reason) out.finish = choice.finish_reason;
    }
  }
  return out;
}

const FINISH_STOP = { openai: 'stop', azure: 'stop', anthropic: 'end_turn', gemini: 'STOP',
                      bedrock: 'end_turn' };
const FINISH_TOOL = { openai: 'tool_calls', azure: 'tool_calls', anthropic: 'tool_use',
                      gemini: 'STOP', bedrock: 'tool_use' };

// Checks RES is FORMAT's error shape with STATUS.
async function assertFormatError(format, res, status) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const json = JSON.parse(text);
  if (format === 'anthropic') {
    assert.equal(json.type, 'error', text);
    assert.equal(typeof json.error.type, 'string', text);
    assert.equal(typeof json.error.message, 'string', text);
  } else if (format === 'gemini') {
    assert.equal(json.error.code, status, text);
    assert.equal(typeof json.error.message, 'string', text);
    assert.match(json.error.status, /^[A-Z_]+$/, text);
  } else if (format === 'bedrock') {
    assert.equal(typeof json.message, 'string', text);
    assert.ok(res.headers.get('x-amzn-errortype'), 'x-amzn-ErrorType missing');
  } else {
    assert.equal(typeof json.error.message, 'string', text);
    assert.ok('type' in json.error && 'code' in json.error && 'param' in json.error, text);
  }
  return json;
}

describe('mock-provider wire formats', () => {
  let m;
  before(async () => { m = await startMock(); }, { timeout: 30000 });
  after(async () => { if (m) await m.stop(); });

  for (const format of FORMATS) {
    it(`${format}: answers the OpenAI route's reply, with usage`, async () => {
      const text = `Compare formats ${nonce()} please`;
      const res = await chat[format](m, { text });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const answer = plainAnswer(format, JSON.parse(body));
      assert.equal(answer.text, `Mock reply to: ${text}`);
      assert.equal(answer.finish, FINISH_STOP[format]);
      assert.deepEqual(answer.usage, [4, 7]);
    });

    it(`${format}: streams the same reply in its own framing`, async () => {
      const text = `Stream formats ${nonce()}`;
      const res = await chat[format](m, { text, stream: true });
      assert.equal(res.status, 200);
      const type = res.headers.get('content-type');
      assert.equal(type, format === 'bedrock' ? 'application/vnd.amazon.eventstream'
                                              : 'text/event-stream');
      const s = await streamAnswer(format, res);
      assert.equal(s.error, null);
      assert.ok(s.complete, `stream not complete: ${s.events}`);
      assert.equal(s.text, `Mock reply to: ${text}`);
      assert.equal(s.finish, FINISH_STOP[format]);
      if (format !== 'openai' && format !== 'azure') assert.deepEqual(s.usage, [3, 6]);
      if (format === 'anthropic') {
        assert.deepEqual(s.events, ['message_start', 'content_block_start', 'ping',
          ...Array(6).fill('content_block_delta'), 'content_block_stop', 'message_delta',
          'message_stop']);
      }
      if (format === 'gemini') {
        assert.match(s.raw, /^data: \{.*\}\r\n\r\n/);
        assert.ok(s.raw.endsWith('\r\n\r\n'));
      }
      if (format === 'bedrock') {
        assert.deepEqual(s.events, ['messageStart', ...Array(6).fill('contentBlockDelta'),
                                    'contentBlockStop', 'messageStop', 'metadata']);
        assert.equal(s.rest, 0);
        assert.ok(s.frames.every((f) => f.headers[':message-type'] === 'event'));
      }
    });

    it(`${format}: mock:tool calls the first declared tool`, async () => {
      const res = await chat[format](m, { text: `weather please mock:tool ${nonce()}`, tools: true });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const answer = plainAnswer(format, JSON.parse(body));
      assert.equal(answer.toolName, 'get_weather');
      assert.deepEqual(answer.toolArgs, TOOL_ARGS);
      assert.equal(answer.finish, FINISH_TOOL[format]);

      const s = await streamAnswer(format, await chat[format](m, {
        text: `weather please mock:tool ${nonce()}`, tools: true, stream: true }));
      assert.ok(s.complete, `stream not complete: ${s.events}`);
      assert.equal(s.toolName, 'get_weather');
      assert.equal(s.finish, FINISH_TOOL[format]);
      assert.deepEqual(JSON.parse(s.argDeltas.join('')), TOOL_ARGS);
      assert.ok(s.argDeltas.length >= (format === 'gemini' ? 1 : 2),
                `arguments in ${s.argDeltas.length} deltas`);
    });

    it(`${format}: answers a tool result with "tool said: ..."`, async () => {
      const result = format === 'gemini' ? { temperature: 21, sky: 'clear' } : `sunny ${nonce()}`;
      const res = await chat[format](m, { text: 'weather please mock:tool', tools: true, result });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const answer = plainAnswer(format, JSON.parse(body));
      const said = format === 'gemini' ? JSON.stringify(result) : result;
      assert.equal(answer.text, `tool said: ${said}`);
      assert.equal(answer.finish, FINISH_STOP[format]);
      const s = await streamAnswer(format, await chat[format](m, {
        text: 'weather please mock:tool', tools: true, result, stream: true }));
      assert.equal(s.text, `tool said: ${said}`);
    });

    it(`${format}: mock:status=CODE answers in the format's error shape`, async () => {
      const res = await chat[format](m, { text: 'fail mock:status=503' });
      await assertFormatError(format, res, 503);
      const limited = await chat[format](m, { text: 'fail mock:status=429', stream: true });
      assert.equal(limited.headers.get('retry-after'), '1');
      await assertFormatError(format, limited, 429);
    });

    it(`${format}: mock:die_after=N cuts the stream; mock:chunks=N sizes it`, async () => {
      const cut = await streamAnswer(format, await chat[format](m, {
        text: `die mock:die_after=2 ${nonce()}`, stream: true }));
      assert.ok(!cut.complete, `a cut stream completed: ${cut.events}`);
      assert.equal(cut.text, 'Mock reply ');
      if (format === 'bedrock') {
        assert.equal(cut.frames.at(-1).headers[':message-type'], 'exception');
        assert.equal(cut.frames.at(-1).headers[':exception-type'], 'internalServerException');
      } else {
        assert.ok(cut.error, 'the connection was not dropped');
      }
      const sized = await streamAnswer(format, await chat[format](m, {
        text: 'mock:chunks=9', stream: true }));
      assert.ok(sized.complete);
      assert.equal(sized.text.trim().split(/\s+/).length, 9);
    });

    it(`${format}: mock:latency, mock:chunk_delay and mock:hang`, async () => {
      let t0 = Date.now();
      const res = await chat[format](m, { text: 'slow mock:latency=300' });
      await res.text();
      assert.equal(res.status, 200);
      assert.ok(Date.now() - t0 >= 300);

      // "Mock reply to: mock:chunk_delay=60": 4 pieces and the tail, 60 ms each
      t0 = Date.now();
      const paced = await streamAnswer(format, await chat[format](m, {
        text: 'mock:chunk_delay=60', stream: true }));
      assert.ok(paced.complete);
      assert.ok(Date.now() - t0 >= 5 * 60, `${Date.now() - t0} ms`);

      // mock:hang is route-independent: held on the Anthropic route, given up on
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      await assert.rejects(fetch(m.url + '/v1/messages', {
        method: 'POST', signal: controller.signal,
        headers: { 'content-type': 'application/json', ...ANTHROPIC_HEADERS },
        body: JSON.stringify({ model: 'c', max_tokens: 5,
                               messages: [{ role: 'user', content: 'mock:hang' }] }),
      }));
    });
  }

  it('anthropic: 401 without x-api-key (or with a wrong one), 400 without anthropic-version', async () => {
    const body = { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
    let json = await assertFormatError('anthropic',
      await post(m.url, '/v1/messages', body, { 'anthropic-version': '2023-06-01' }), 401);
    assert.equal(json.error.type, 'authentication_error');
    json = await assertFormatError('anthropic', await post(m.url, '/v1/messages', body,
      { 'x-api-key': 'sk-wrong', 'anthropic-version': '2023-06-01' }), 401);
    assert.ok(!JSON.stringify(json).includes('sk-wrong'));
    json = await assertFormatError('anthropic',
      await post(m.url, '/v1/messages', body, { 'x-api-key': KEY }), 400);
    assert.equal(json.error.type, 'invalid_request_error');
    json = await assertFormatError('anthropic', await post(m.url, '/v1/messages',
      { model: 'c', messages: [] }, ANTHROPIC_HEADERS), 400);
  });

  it('gemini: 403 without a key; ?key= works too; embedContent and batchEmbedContents', async () => {
    const body = { contents: [{ parts: [{ text: 'hi' }] }] };
    const json = await assertFormatError('gemini',
      await post(m.url, '/v1beta/models/gemini-2.0-flash:generateContent', body), 403);
    assert.equal(json.error.status, 'PERMISSION_DENIED');
    const ok = await post(m.url, `/v1beta/models/gemini-2.0-flash:generateContent?key=${KEY}`, body);
    assert.equal(ok.status, 200, await ok.text());

    const headers = { 'x-goog-api-key': KEY };
    // Without alt=sse, streamGenerateContent answers one JSON array
    const array = await post(m.url, '/v1beta/models/gemini-2.0-flash:streamGenerateContent',
                             { contents: [{ parts: [{ text: 'as array' }] }] }, headers);
    assert.match(array.headers.get('content-type'), /application\/json/);
    const items = JSON.parse(await array.text());
    assert.equal(items.map((x) => x.candidates[0].content.parts[0].text).join(''),
                 'Mock reply to: as array');
    assert.equal(items.at(-1).candidates[0].finishReason, 'STOP');
    assert.equal(items.at(-1).usageMetadata.totalTokenCount, 2 + 5);
    const one = await post(m.url, '/v1beta/models/text-embedding-004:embedContent',
                           { content: { parts: [{ text: 'alpha' }] } }, headers);
    const single = JSON.parse(await one.text());
    assert.equal(single.embedding.values.length, 64);
    const batch = await post(m.url, '/v1beta/models/text-embedding-004:batchEmbedContents',
      { requests: [{ model: 'models/text-embedding-004', content: { parts: [{ text: 'alpha' }] } },
                   { model: 'models/text-embedding-004', content: { parts: [{ text: 'beta' }] } }] },
      headers);
    const many = JSON.parse(await batch.text());
    assert.equal(many.embeddings.length, 2);
    assert.deepEqual(many.embeddings[0].values, single.embedding.values);
    assert.notDeepEqual(many.embeddings[1].values, single.embedding.values);
    await assertFormatError('gemini', await post(m.url,
      '/v1beta/models/text-embedding-004:embedContent', { content: {} }, headers), 400);
  });

  it('bedrock: 403 {"message"} without SigV4 headers; the model id is URL-decoded', async () => {
    const body = { messages: [{ role: 'user', content: [{ text: 'x' }] }] };
    const path = `/model/${encodeURIComponent(BEDROCK_MODEL)}/converse`;
    await assertFormatError('bedrock', await post(m.url, path, body), 403);
    await assertFormatError('bedrock', await post(m.url, path, body,
      { authorization: 'Bearer nope', 'x-amz-date': '20240101T000000Z' }), 403);
    await assertFormatError('bedrock', await post(m.url, path, body,
      { authorization: BEDROCK_HEADERS.authorization }), 403);
  });
});

describe('mock-provider: azure, requests ring, injection', () => {
  let m;
  before(async () => { m = await startMock([], 'mock-ring'); }, { timeout: 30000 });
  after(async () => { if (m) await m.stop(); });

  it('azure: 401 without api-key, 404 without api-version, embeddings by deployment', async () => {
    const body = { messages: [{ role: 'user', content: 'x' }] };
    const path = '/openai/deployments/dep/chat/completions';
    await assertFormatError('azure', await post(m.url, `${path}?api-version=2024-10-21`, body), 401);
    await assertFormatError('azure', await post(m.url, path, body, { 'api-key': KEY }), 404);
    const res = await post(m.url, '/openai/deployments/emb/embeddings?api-version=2024-10-21',
                           { input: ['a', 'b'] }, { 'api-key': KEY });
    const json = JSON.parse(await res.text());
    assert.equal(res.status, 200);
    assert.equal(json.model, 'emb');
    assert.equal(json.data.length, 2);
  });

  it('GET /mock/requests shows what was sent: route, path, query, headers, body', async () => {
    let r = await request(m.url, '/mock/reset', { method: 'POST', body: '' });
    assert.equal(r.status, 200);
    const text = `recorded ${nonce()}`;
    await (await chat.anthropic(m, { text })).text();
    await (await chat.gemini(m, { text })).text();
    await (await chat.bedrock(m, { text, stream: true })).arrayBuffer();
    await (await chat.azure(m, { text })).text();
    await (await chat.openai(m, { text })).text();
    await (await post(m.url, '/v1/responses', { model: 'gpt-4o-mini', input: text },
                      { authorization: `Bearer ${KEY}` })).text();
    r = await request(m.url, '/mock/requests');
    assert.equal(r.status, 200);
    const seen = r.json;
    assert.deepEqual(seen.map((x) => x.route),
                     ['anthropic', 'gemini', 'bedrock', 'azure', 'openai', 'responses']);
    const [anthropic, gemini, bedrock, azure, openai, responses] = seen;
    assert.equal(responses.path, '/v1/responses');
    assert.equal(responses.body.input, text);
    assert.equal(responses.headers.authorization, `Bearer ${redacted(KEY)}`);
    assert.equal(anthropic.method, 'POST');
    assert.equal(anthropic.path, '/v1/messages');
    assert.equal(anthropic.headers['x-api-key'], redacted(KEY));
    assert.equal(anthropic.headers['anthropic-version'], '2023-06-01');
    assert.equal(anthropic.headers['content-type'], 'application/json');
    assert.equal(anthropic.body.messages[0].content[0].text, text);
    assert.equal(gemini.path, '/v1beta/models/gemini-2.0-flash:generateContent');
    assert.equal(gemini.headers['x-goog-api-key'], redacted(KEY));
    assert.equal(gemini.query, null);
    assert.equal(bedrock.path, `/model/${BEDROCK_MODEL}/converse-stream`);
    // Credentials come redacted: the AWS key id and signature, every key.
    assert.equal(bedrock.headers.authorization, BEDROCK_HEADERS.authorization
      .replace('AKIDEXAMPLE', redacted('AKIDEXAMPLE'))
      .replace(/Signature=(\w+)$/, (_, sig) => `Signature=${redacted(sig)}`));
    assert.ok(!JSON.stringify(seen).includes(KEY), 'a key shown in clear');
    assert.equal(bedrock.headers['x-amz-date'], '20240101T000000Z');
    assert.equal(azure.query, 'api-version=2024-10-21');
    assert.equal(azure.headers['api-key'], redacted(KEY));
    assert.equal(openai.headers.authorization, `Bearer ${redacted(KEY)}`);
    assert.ok(!('x-api-key' in openai.headers));

    const stats = (await request(m.url, '/mock/stats')).json;
    assert.deepEqual(stats.routes,
                     { openai: 1, anthropic: 1, gemini: 1, bedrock: 1, azure: 1, responses: 1 });
    assert.equal(stats.requests, 6);

    // The ring keeps the last 64; reset empties it
    for (let i = 0; i < 70; i++) await (await chat.openai(m, { text: `n${i}` })).text();
    const ring = (await request(m.url, '/mock/requests')).json;
    assert.equal(ring.length, 64);
    assert.equal(ring.at(-1).body.messages[0].content, 'n69');
    await request(m.url, '/mock/reset', { method: 'POST', body: '' });
    assert.deepEqual((await request(m.url, '/mock/requests')).json, []);
  });

  it('POST /mock/config sets a route\'s injection; DELETE clears it; bad input is a 400', async () => {
    let r = await request(m.url, '/mock/config', { body: { route: 'azure', rate429: 1, retry_after_s: 9 } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.azure.rate429, 1);
    const limited = await chat.azure(m, { text: 'hi' });
    assert.equal(limited.headers.get('retry-after'), '9');
    await assertFormatError('azure', limited, 429);
    const other = await chat.openai(m, { text: 'hi' });
    assert.equal(other.status, 200, 'another route is not affected');
    await other.text();

    r = await request(m.url, '/mock/config', { body: { route: 'gemini', fail_rate: 1, fail_status: 502 } });
    assert.equal(r.status, 200, r.text);
    await assertFormatError('gemini', await chat.gemini(m, { text: 'hi' }), 502);
    r = await request(m.url, '/mock/config', { body: { route: 'bedrock', latency_ms: 300 } });
    assert.equal(r.status, 200, r.text);
    const t0 = Date.now();
    await (await chat.bedrock(m, { text: 'hi' })).text();
    assert.ok(Date.now() - t0 >= 300);

    for (const bad of [{ route: 'nope' }, { fail_rate: 1 }, { route: 'azure', fail_rate: 2 },
                       { route: 'azure', fail_status: 200 }, { route: 'azure', latency_ms: 'x' },
                       { route: 'azure', bogus: 1 }, '{not json']) {
      r = await request(m.url, '/mock/config', { body: bad });
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
    }
    r = await request(m.url, '/mock/config', { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal(r.json.azure.rate429, 0);
    assert.equal(r.json.bedrock.latency_ms, null);
    for (const format of ['azure', 'gemini']) {
      const res = await chat[format](m, { text: 'hi' });
      assert.equal(res.status, 200, await res.text());
    }
  });
});

describe('mock-provider --route', () => {
  let m;
  before(async () => {
    m = await startMock(['--route', 'anthropic:rate429=1,retry_after=7',
                         '--route', 'bedrock:fail=1,status=503',
                         '--route=gemini:latency=300'], 'mock-routes');
  }, { timeout: 30000 });
  after(async () => { if (m) await m.stop(); });

  it('injects per route: 429 with Retry-After, failures with a status, latency', async () => {
    const limited = await chat.anthropic(m, { text: 'hi' });
    assert.equal(limited.headers.get('retry-after'), '7');
    const json = await assertFormatError('anthropic', limited, 429);
    assert.equal(json.error.type, 'rate_limit_error');
    const failed = await chat.bedrock(m, { text: 'hi' });
    assert.equal(failed.headers.get('x-amzn-errortype'), 'ServiceUnavailableException');
    await assertFormatError('bedrock', failed, 503);
    const t0 = Date.now();
    const slow = await chat.gemini(m, { text: 'hi' });
    await slow.text();
    assert.equal(slow.status, 200);
    assert.ok(Date.now() - t0 >= 300);
    for (const format of ['openai', 'azure']) {
      const res = await chat[format](m, { text: 'hi' });
      assert.equal(res.status, 200, await res.text());
    }
    const config = (await request(m.url, '/mock/config')).json;
    assert.equal(config.anthropic.retry_after_s, 7);
    assert.equal(config.bedrock.fail_status, 503);
    assert.equal(config.gemini.latency_ms, 300);
  });

  it('rejects a bad --route with a usage error and exit code 2', async () => {
    for (const spec of ['nope:fail=1', 'openai:fail=2', 'openai:status=200', 'openai:latency=-1',
                        'openai:bogus=1', 'openai:rate429=x']) {
      const proc = spawnProcess('mock-bad', ['mock-provider', '--port', '0', '--route', spec]);
      await proc.done;
      assert.equal(proc.exitCode, 2, `${spec}: ${proc.tail()}`);
      assert.match(proc.tail(), /bad --route/);
    }
  });
});
