// The data plane's happy paths: chat, streaming, embeddings, models, the
// health endpoints and metrics, in `aigw run` and in the split deployment.
import {
  MODES, assert, assertDataPlaneHeaders, describe, it, nonce, request, useGateway,
} from './lib.mjs';

for (const mode of MODES) {
  describe(`chat and friends (${mode})`, () => {
    const gw = useGateway({ mode });

    it('answers a chat completion with the upstream reply, usage and headers', async () => {
      const question = `What is aigw? ${nonce()}`;
      const before = await gw.mock.stats();
      const res = await gw.chat(question);
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers.get('content-type') || '', /application\/json/);
      assertDataPlaneHeaders(res, { provider: 'gpt-4o-mini/0', cache: 'MISS' });

      const body = res.json;
      assert.equal(body.object, 'chat.completion');
      assert.equal(body.choices[0].message.role, 'assistant');
      assert.equal(body.choices[0].message.content, `Mock reply to: ${question}`);
      assert.ok(Number.isInteger(body.usage.prompt_tokens) && body.usage.prompt_tokens > 0);
      assert.ok(Number.isInteger(body.usage.completion_tokens) && body.usage.completion_tokens > 0);
      assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);

      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat + 1, 'the mock saw exactly one chat request');
    });

    it('echoes the client X-Request-ID, and makes one up otherwise', async () => {
      const mine = `req-${nonce()}`;
      const echoed = await gw.chat(`hello ${nonce()}`, { headers: { 'x-request-id': mine } });
      assert.equal(echoed.status, 200, echoed.text);
      assert.equal(echoed.headers.get('x-request-id'), mine);

      const a = await gw.chat(`hello ${nonce()}`);
      const b = await gw.chat(`hello ${nonce()}`);
      assert.ok(a.headers.get('x-request-id'), 'X-Request-ID missing');
      assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'),
                      'two requests got the same X-Request-ID');
    });

    it('streams: events arrive as the upstream sends them, ending in [DONE]', async () => {
      const question = `Stream to me ${nonce()} mock:chunks=5 mock:chunk_delay=300`;
      const s = await gw.chatStream(question);
      assert.equal(s.status, 200, s.text);
      assert.match(s.headers.get('content-type') || '', /text\/event-stream/);
      assert.ok(s.headers.get('x-request-id'), 'X-Request-ID missing');
      assert.equal(s.headers.get('x-cache'), 'MISS');
      assert.equal(s.error, null, `stream failed: ${s.error}`);
      assert.ok(s.done, 'no data: [DONE]');
      assert.equal(s.events.at(-1).data, '[DONE]', 'the last event is not [DONE]');
      assert.ok(s.contents.length >= 2, `only ${s.contents.length} content events`);

      // Not buffered: the first word reaches the client while the upstream
      // is still sending (5 chunks 300 ms apart).
      const first = s.contents[0].at;
      const last = s.contents.at(-1).at;
      assert.ok(first < last - 600,
                `first content event at +${(first - s.t0).toFixed(0)} ms, last at ` +
                `+${(last - s.t0).toFixed(0)} ms: the stream was buffered`);

      for (const e of s.events.filter((x) => x.data !== '[DONE]')) {
        assert.equal(e.json?.object, 'chat.completion.chunk', `event: ${e.data}`);
      }
    });

    it('streams the same text as the non-streamed answer', async () => {
      const question = `Say it twice ${nonce()}`;
      const plain = await gw.chat(question);
      assert.equal(plain.status, 200, plain.text);
      // From the upstream, not the cache's replay of the plain answer.
      const s = await gw.chatStream(question, { headers: { 'cache-control': 'no-store' } });
      assert.equal(s.headers.get('x-cache'), 'BYPASS');
      assert.equal(s.status, 200, s.text);
      assert.ok(s.done, 'no data: [DONE]');
      assert.equal(s.contents.map((c) => c.text).join(''), plain.json.choices[0].message.content);
    });

    it('answers embeddings', async () => {
      const before = await gw.mock.stats();
      const res = await gw.fetch('/v1/embeddings', {
        body: { model: 'text-embedding-3-small', input: `embed me ${nonce()}` },
      });
      assert.equal(res.status, 200, res.text);
      assertDataPlaneHeaders(res, { provider: 'text-embedding-3-small/0' });
      assert.equal(res.json.object, 'list');
      const vector = res.json.data[0].embedding;
      assert.ok(Array.isArray(vector) && vector.length > 0, 'no embedding vector');
      assert.ok(vector.every((x) => typeof x === 'number'), 'embedding has non-numbers');
      const after = await gw.mock.stats();
      assert.equal(after.embeddings, before.embeddings + 1);
    });

    it('lists the configured models on /v1/models', async () => {
      const res = await gw.fetch('/v1/models');
      assert.equal(res.status, 200, res.text);
      assertDataPlaneHeaders(res);
      assert.equal(res.json.object, 'list');
      const ids = res.json.data.map((m) => m.id).sort();
      assert.deepEqual(ids, ['gpt-4o-mini', 'text-embedding-3-small']);
      for (const m of res.json.data) assert.equal(m.object, 'model');
    });

    it('answers /healthz and /readyz with 200', async () => {
      for (const path of ['/healthz', '/readyz']) {
        const res = await request(gw.url, path);
        assert.equal(res.status, 200, `${path}: ${res.text}`);
        assert.ok(res.headers.get('x-request-id'), `${path}: X-Request-ID missing`);
      }
    });

    it('exports Prometheus metrics with per-stage durations', async () => {
      const chat = await gw.chat(`for the metrics ${nonce()}`);
      assert.equal(chat.status, 200, chat.text);
      const res = await gw.fetch('/metrics');
      assert.equal(res.status, 200, res.text.slice(0, 300));
      assert.match(res.headers.get('content-type') || '', /text\/plain/);
      assert.ok(res.headers.get('x-request-id'), 'X-Request-ID missing');
      const text = res.text;
      assert.match(text, /^aigw_http_requests_total(\{[^}]*\})? \d/m);
      assert.match(text, /^aigw_stage_duration_seconds_bucket\{[^}]*stage="auth"[^}]*\} \d/m);
      assert.match(text, /^aigw_stage_duration_seconds_bucket\{[^}]*stage="provider"[^}]*\} \d/m);
    });
  });
}
