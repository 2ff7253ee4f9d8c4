// The semantic cache with its vectors from a model of the router
// (cache.semantic.model) instead of the built-in embedder, and no word
// vectors file at all. The embeddings model is an Azure deployment on the
// gateway's mock, so its route (/openai/deployments/D/embeddings) can be made
// to fail while the chat model's (OpenAI's /v1/chat/completions) keeps
// answering. The mock's embeddings are a bag of hashed words, so a paraphrase
// that keeps most words lands close. Checked: a paraphrase answered from the
// cache with the similarity of the mock's own vectors, the mock seeing one
// embeddings call per request with the text the cache compares, "turn off"
// never answered with "turn on"'s answer (the verifier runs whatever the
// embedder), the stats naming the embedder, and a failing embeddings
// upstream leaving exact hits only, never an error.
import { after, before } from 'node:test';
import {
  MODELS, MODES, assert, describe, it, nonce, request, startGateway, startMock,
} from './lib.mjs';

const AZURE_VERSION = '2024-10-21';
const EMBEDDER = 'cache-embedder';   // the router's model the cache asks
const UPSTREAM = 'my-embedder';      // its Azure deployment name at the mock

// What the mock said, in the OpenAI shape.
const said = (r) => r.json?.choices?.[0]?.message?.content;

// The mock's vector for TEXT, asked directly (the same function answers
// every route).
async function mockVector(mock, text) {
  const r = await request(mock.url, '/v1/embeddings', {
    key: mock.apiKey, body: { model: 'text-embedding-3-small', input: text },
  });
  assert.equal(r.status, 200, r.text);
  return r.json.data[0].embedding;
}

const cosine = (a, b) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
};

// The embeddings requests the mock saw for the cache, oldest first.
async function embedCalls(mock) {
  return (await mock.requests()).filter((x) => x.path === `/openai/deployments/${UPSTREAM}/embeddings`);
}

async function injectAzure(mock, settings) {
  const r = settings
    ? await request(mock.url, '/mock/config', { key: mock.apiKey, body: { route: 'azure', ...settings } })
    : await request(mock.url, '/mock/config', { key: mock.apiKey, method: 'DELETE' });
  assert.ok(r.status < 300, `mock config: ${r.status} ${r.text}`);
}

for (const mode of MODES.filter((m) => m === 'run' || m === 'split')) {
  describe(`semantic cache, vectors from the router (${mode})`, () => {
    let gw = null, mock = null;
    before(async () => {
      mock = await startMock({ name: `${mode}-semrouter-mock` });
      gw = await startGateway({
        mode,
        name: `${mode}-semrouter`,
        mock,
        config: {
          cache: { enabled: true, ttl_s: 300,
                   semantic: { enabled: true, model: EMBEDDER, threshold: 0.75 } },
          // One try: a failing embeddings call gives up at once.
          router: { max_attempts: 1 },
          auth: { keys: [{ name: 'dev', tenant: 'team-r', role: 'developer', rpm: 1000 },
                         { name: 'exact', tenant: 'team-r', role: 'developer', rpm: 1000,
                           cache_semantic: false }] },
          models: [
            ...MODELS.map((name) => ({ name, provider: 'openai' })),
            { name: EMBEDDER, deployments: [{
              id: 'dep-cache-embedder', provider: 'azure', model: UPSTREAM, base_url: mock.url,
              api_key: mock.apiKey, api_version: AZURE_VERSION }] },
          ],
        },
      });
    }, { timeout: 60000 });
    after(async () => {
      if (gw) await gw.stop();
      if (mock) await mock.stop();
    });

    it('answers a paraphrase from the cache with the vectors of the router\'s model', async () => {
      const key = gw.key('dev');
      const s0 = await mock.stats();
      const q = `How do I turn on the lights in the kitchen ${nonce()}`;
      const p = `Please, how do I turn on the lights in the kitchen ${q.split(' ').at(-1)}`;
      const first = await gw.chat(q, { key });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      const exact = await gw.chat(q, { key });
      assert.equal(exact.headers.get('x-cache'), 'HIT');
      const near = await gw.chat(p, { key });
      assert.equal(near.status, 200, near.text);
      assert.equal(near.headers.get('x-cache'), 'SEMANTIC-HIT');
      assert.equal(said(near), said(first));
      // The similarity is the mock's vectors', not the local embedder's.
      const expect = cosine(await mockVector(mock, q), await mockVector(mock, p));
      const similarity = Number(near.headers.get('x-aigw-cache-similarity'));
      assert.ok(Math.abs(similarity - expect) < 1e-3, `similarity ${similarity}, mock's ${expect}`);
      const s1 = await mock.stats();
      assert.equal(s1.chat, s0.chat + 1, 'a cached answer reached the provider');
      // One embeddings call per request (the two asked directly above too),
      // through the Azure deployment, with the text the cache compares.
      assert.equal(s1.embeddings, s0.embeddings + 3 + 2);
      const calls = await embedCalls(mock);
      const inputs = calls.map((c) => c.body?.input);
      assert.ok(inputs.includes(q), `no embeddings call for the question: ${JSON.stringify(inputs)}`);
      assert.ok(inputs.includes(p), 'no embeddings call for the paraphrase');
    });

    it('makes no embeddings call for a key kept to exact matches (cache_semantic: false)', async () => {
      const q = `How do I turn off the oven in the kitchen ${nonce()}`;
      const p = `Please, how do I turn off the oven in the kitchen ${q.split(' ').at(-1)}`;
      const s0 = await mock.stats();
      assert.equal((await gw.chat(q, { key: gw.key('dev') })).headers.get('x-cache'), 'MISS');
      const near = await gw.chat(p, { key: gw.key('exact') });
      assert.equal(near.status, 200, near.text);
      assert.equal(near.headers.get('x-cache'), 'MISS');
      assert.match(said(near), /Please, how do I turn off the oven/);
      assert.equal((await gw.chat(q, { key: gw.key('exact') })).headers.get('x-cache'), 'HIT');
      const s1 = await mock.stats();
      assert.equal(s1.chat, s0.chat + 2);
      assert.equal(s1.embeddings, s0.embeddings + 1, 'only the key that follows the config embeds');
      // The same paraphrase from the key that follows the config is a hit.
      const again = await gw.chat(`Hey, how do I turn off the oven in the kitchen ${q.split(' ').at(-1)}`,
                                  { key: gw.key('dev') });
      assert.equal(again.headers.get('x-cache'), 'SEMANTIC-HIT');
    });

    it('embeds what an Anthropic client asks the same way', async () => {
      const q = `What is the tallest mountain in Europe ${nonce()}`;
      const ask = (content) => gw.fetch('/v1/messages', {
        key: gw.key('dev'),
        headers: { 'anthropic-version': '2023-06-01' },
        body: { model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content }] },
      });
      const first = await ask(q);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      // Text blocks read as the string they join to, for the embeddings
      // call as for the cache.
      const res = await ask([{ type: 'text', text: 'Please,' }, { type: 'text', text: q }]);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-cache'), 'SEMANTIC-HIT');
      assert.equal(res.json.content[0].text, first.json.content[0].text);
      const inputs = (await embedCalls(mock)).map((c) => c.body?.input);
      assert.ok(inputs.includes(`Please,\n${q}`), JSON.stringify(inputs.slice(-3)));
    });

    it('never answers "turn off" with the answer to "turn on"', async () => {
      const key = gw.key('dev');
      const tag = nonce();
      const words = `the lights in the kitchen and the hall ${tag}`;
      const on = await gw.chat(`Turn on ${words}`, { key });
      assert.equal(on.headers.get('x-cache'), 'MISS');
      const please = await gw.chat(`Please turn on ${words}`, { key });
      assert.equal(please.headers.get('x-cache'), 'SEMANTIC-HIT');
      const before = await mock.stats();
      const off = await gw.chat(`Turn off ${words}`, { key });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.headers.get('x-cache'), 'MISS');
      assert.match(said(off), /Turn off the lights/);
      const after = await mock.stats();
      assert.equal(after.chat, before.chat + 1);
      // The vectors were close: only the verifier kept them apart.
      const sim = cosine(await mockVector(mock, `Turn on ${words}`),
                         await mockVector(mock, `Turn off ${words}`));
      assert.ok(sim >= 0.75, `the pair was not close enough to test the verifier: ${sim}`);
    });

    it('names the embedder in cache/stats', async () => {
      const stats = await gw.fetch('/api/v1/admin/cache/stats');
      assert.equal(stats.status, 200, stats.text);
      assert.equal(stats.json.semantic, true);
      assert.equal(stats.json.embedder, EMBEDDER);
      assert.ok(stats.json.semantic_hits >= 3, JSON.stringify(stats.json));
    });

    it('answers when the embeddings upstream fails: exact lookups only, no error', async () => {
      const key = gw.key('dev');
      const q = `Which river runs through Vienna ${nonce()}`;
      await injectAzure(mock, { fail_rate: 1, fail_status: 500 });
      try {
        const s0 = await mock.stats();
        const first = await gw.chat(q, { key });
        assert.equal(first.status, 200, first.text);
        assert.equal(first.headers.get('x-cache'), 'MISS');
        assert.match(said(first), /Which river runs through Vienna/);
        const s1 = await mock.stats();
        assert.equal(s1.chat, s0.chat + 1);
        assert.ok(s1.routes.azure > s0.routes.azure, 'the embeddings upstream was not asked');
        // The exact prompt still hits; a paraphrase cannot (no vector).
        const exact = await gw.chat(q, { key });
        assert.equal(exact.status, 200, exact.text);
        assert.equal(exact.headers.get('x-cache'), 'HIT');
        const near = await gw.chat(`Please, ${q}`, { key });
        assert.equal(near.status, 200, near.text);
        assert.equal(near.headers.get('x-cache'), 'MISS');
        assert.match(said(near), /Please, Which river/);
      } finally {
        await injectAzure(mock, null);
      }
    });
  });
}
