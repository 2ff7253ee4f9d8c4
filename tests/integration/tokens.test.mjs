// The token estimate (core/aigw_tokens, schemas/limits.md 3) against a real
// tokenizer: OpenAI's o200k_base, from the js-tiktoken package, over a varied
// corpus (tests/fixtures/tokens: prose, dialogue, code, JSON, numbers, URLs,
// German, French, Spanish, Chinese, Japanese, Korean and Russian, emoji,
// whitespace runs, long words, Markdown; and some of the repository's own
// files). The rate limits reserve by this estimate, so it must be close and
// lean high: every input at least 0.85x the real count, the mean relative
// error within 10%, and on average above, not below. cl100k_base figures are
// printed beside it. Driven through `aigw tokens count`, the operator's
// offline counter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { getEncoding } from 'js-tiktoken';
import { BIN, SRC } from './lib.mjs';

const o200k = getEncoding('o200k_base');
const cl100k = getEncoding('cl100k_base');
const FLOOR = 0.85;
const MEAN_ERROR = 0.1;

const CORPUS = path.join(SRC, 'tests', 'fixtures', 'tokens');
const REPO_FILES = ['README.md', 'schemas/limits.md', 'schemas/openapi.yaml', 'core/aigw_json.c',
  'schemas/sql/001_control_plane.sql', 'deploy/aigw.example.yaml',
  'tests/fixtures/messages/openai_stream_tools.sse'].map((f) => path.join(SRC, f));

// `aigw tokens count --json ...` over FILES: [{file, prompt_tokens, completion_tokens}].
function count(files, format = 'text', extra = []) {
  const out = execFileSync(BIN, ['tokens', 'count', '--json', '--format', format, ...extra, ...files]);
  return out.toString().trim().split('\n').map((line) => JSON.parse(line));
}

// Estimate against real counts, printed as a table; returns the ratios.
function compare(t, files, real) {
  const estimates = count(files);
  const rows = estimates.map((e, i) => {
    const text = fs.readFileSync(files[i], 'utf8');
    const ref = real(text);
    return { name: path.basename(files[i]), estimate: e.prompt_tokens, o200k: ref,
      ratio: e.prompt_tokens / ref, cl100k: cl100k.encode(text).length };
  });
  for (const r of rows)
    t.diagnostic(`${r.name.padEnd(28)} estimate ${String(r.estimate).padStart(6)}  o200k ${String(r.o200k).padStart(6)} `
      + `(${r.ratio.toFixed(2)}x)  cl100k ${String(r.cl100k).padStart(6)} (${(r.estimate / r.cl100k).toFixed(2)}x)`);
  const mean = rows.reduce((s, r) => s + Math.abs(r.ratio - 1), 0) / rows.length;
  const signed = rows.reduce((s, r) => s + r.ratio - 1, 0) / rows.length;
  const worst = rows.reduce((w, r) => (r.ratio < w.ratio ? r : w));
  const high = rows.reduce((w, r) => (r.ratio > w.ratio ? r : w));
  t.diagnostic(`${rows.length} inputs: mean |error| ${(100 * mean).toFixed(1)}%, mean ${(100 * signed).toFixed(1)}%, `
    + `lowest ${worst.ratio.toFixed(2)}x (${worst.name}), highest ${high.ratio.toFixed(2)}x (${high.name})`);
  return { rows, mean, signed, worst };
}

test('text: within 0.85x of o200k_base everywhere, mean error within 10%, leaning high', (t) => {
  const files = fs.readdirSync(CORPUS).sort().map((f) => path.join(CORPUS, f));
  assert.ok(files.length >= 15, 'the corpus is in tests/fixtures/tokens');
  const { rows, mean, signed } = compare(t, [...files, ...REPO_FILES], (text) => o200k.encode(text).length);
  for (const r of rows)
    assert.ok(r.ratio >= FLOOR, `${r.name}: estimate ${r.estimate} is below ${FLOOR} x ${r.o200k}`);
  assert.ok(mean <= MEAN_ERROR, `mean relative error ${mean}`);
  assert.ok(signed >= 0, `the estimate leans low on average (${signed})`);
});

test('chat: messages with their overhead, names, the reply priming', () => {
  // OpenAI's own count of a chat prompt: 3 per message, its role and content,
  // 1 per name, 3 priming the reply.
  const texts = ['prose_en.txt', 'code_py.py', 'german.txt', 'chinese.txt', 'data.json']
    .map((f) => fs.readFileSync(path.join(CORPUS, f), 'utf8'));
  const messages = [{ role: 'system', content: 'You are a careful reviewer.' },
    ...texts.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content })),
    { role: 'user', name: 'ann', content: 'Summarise the above in one line.' }];
  const real = 3 + messages.reduce((s, m) => s + 3 + o200k.encode(m.role).length + o200k.encode(m.content).length
    + (m.name ? 1 + o200k.encode(m.name).length : 0), 0);
  const body = path.join(fs.mkdtempSync('/tmp/aigw-tokens-'), 'chat.json');
  fs.writeFileSync(body, JSON.stringify({ model: 'gpt-4o', messages, max_tokens: 300, n: 2 }));
  const [e] = count([body], 'chat');
  assert.ok(e.prompt_tokens >= FLOOR * real && e.prompt_tokens <= 1.2 * real,
    `chat estimate ${e.prompt_tokens}, o200k ${real}`);
  assert.equal(e.completion_tokens, 600, 'max_tokens times n choices');
});

test('tools, tool calls, Anthropic blocks and system prompts, embeddings inputs', () => {
  const dir = fs.mkdtempSync('/tmp/aigw-tokens-');
  const write = (name, value) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  };
  const schema = { type: 'object', properties: { city: { type: 'string', description: 'City name, e.g. Paris' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] };
  const description = 'Get the current weather in a given city, with temperature and conditions.';
  const user = { role: 'user', content: 'What is the weather in Paris and in Berlin right now?' };
  const args = JSON.stringify({ city: 'Paris', unit: 'celsius' });
  // OpenAI: tool definitions and an assistant's tool calls cost at least
  // their text; the tool answer is a message.
  const [plain, tools, calls] = count([
    write('plain.json', { messages: [user] }),
    write('tools.json', { messages: [user], tools: [{ type: 'function', function: { name: 'get_weather', description, parameters: schema } }] }),
    write('calls.json', { messages: [user, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 18, "conditions": "cloudy"}' }] }),
  ], 'chat', ['--default-max', '512']);
  const toolText = o200k.encode(`get_weather ${description} city City name, e.g. Paris unit celsius fahrenheit`).length;
  assert.ok(tools.prompt_tokens - plain.prompt_tokens >= toolText, `tools add ${tools.prompt_tokens - plain.prompt_tokens}, their text is ${toolText}`);
  const callText = o200k.encode(args).length + o200k.encode('{"temperature": 18, "conditions": "cloudy"}').length;
  assert.ok(calls.prompt_tokens - plain.prompt_tokens >= callText + 3 + 3, `calls add ${calls.prompt_tokens - plain.prompt_tokens}`);
  assert.equal(plain.completion_tokens, 512, '--default-max without max_tokens');

  // Anthropic: a system prompt as a string or as blocks costs the same;
  // tool_use and tool_result blocks their input and content; tools bring
  // the tool-use system prompt (346 tokens).
  const system = fs.readFileSync(path.join(CORPUS, 'prose_en.txt'), 'utf8');
  const [asString, asBlocks, withTools] = count([
    write('a1.json', { system, messages: [user], max_tokens: 100 }),
    write('a2.json', { system: [{ type: 'text', text: system }], messages: [user], max_tokens: 100 }),
    write('a3.json', { system, max_tokens: 100, tools: [{ name: 'get_weather', description, input_schema: schema }],
      messages: [user, { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'tu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'Paris: 18 C, cloudy' }] }] }] }),
  ], 'messages');
  assert.equal(asString.prompt_tokens, asBlocks.prompt_tokens);
  assert.ok(asString.prompt_tokens >= o200k.encode(system).length + o200k.encode(user.content).length);
  assert.equal(asString.completion_tokens, 100);
  assert.ok(withTools.prompt_tokens - asString.prompt_tokens >= 346 + toolText + o200k.encode('Checking. Paris: 18 C, cloudy').length,
    `tools and blocks add ${withTools.prompt_tokens - asString.prompt_tokens}`);

  // Embeddings: a string, strings, token ids (one each), arrays of ids.
  const inputs = ['The quick brown fox jumps over the lazy dog.', fs.readFileSync(path.join(CORPUS, 'french.txt'), 'utf8')];
  const [one, many, ids, nested] = count([
    write('e1.json', { model: 'text-embedding-3-small', input: inputs[0] }),
    write('e2.json', { model: 'text-embedding-3-small', input: inputs }),
    write('e3.json', { model: 'text-embedding-3-small', input: [791, 4062, 14198, 39935] }),
    write('e4.json', { model: 'text-embedding-3-small', input: [[791, 4062], [14198], [1, 2, 3]] }),
  ], 'embeddings', ['--default-max', '999']);
  const real = inputs.map((s) => o200k.encode(s).length);
  assert.ok(one.prompt_tokens >= FLOOR * real[0] && one.prompt_tokens <= real[0] + 2, `${one.prompt_tokens} vs ${real[0]}`);
  assert.ok(many.prompt_tokens >= FLOOR * (real[0] + real[1]), `${many.prompt_tokens} vs ${real[0] + real[1]}`);
  assert.equal(ids.prompt_tokens, 4);
  assert.equal(nested.prompt_tokens, 6);
  assert.equal(one.completion_tokens, 0, 'embeddings have no completion');
});

test('aigw tokens count: standard input, several files, usage errors', () => {
  const out = execFileSync(BIN, ['tokens', 'count'], { input: ' hello world' }).toString();
  assert.equal(out, '2\n');
  const two = execFileSync(BIN, ['tokens', 'count', path.join(CORPUS, 'emoji.txt'), path.join(CORPUS, 'urls.txt')]).toString();
  assert.match(two, /emoji\.txt\t\d+\n.*urls\.txt\t\d+\n$/s);
  const bad = spawnSync(BIN, ['tokens', 'count', '--format', 'xml'], { input: '' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.toString(), /--format/);
  const notJson = spawnSync(BIN, ['tokens', 'count', '--format', 'chat'], { input: 'hello' });
  assert.equal(notJson.status, 1);
  const missing = spawnSync(BIN, ['tokens', 'count', '/nonexistent/file']);
  assert.equal(missing.status, 1);
  assert.match(spawnSync(BIN, ['help', 'tokens']).stdout.toString(), /o200k_base/);
});
