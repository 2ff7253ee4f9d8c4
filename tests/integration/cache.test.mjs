// The exact-match response cache: a repeated request is answered without the
// provider, per tenant; a stream is stored once complete and replayed.
import {
  MODES, assert, assertDataPlaneHeaders, describe, it, nonce, useGateway,
} from './lib.mjs';

for (const mode of MODES) {
  describe(`cache (${mode})`, () => {
    const gw = useGateway({
      mode,
      config: {
        cache: { enabled: true, ttl_s: 300, max_bytes: 67108864 },
        auth: {
          keys: [
            { name: 'team-a', tenant: 'team-a', role: 'developer', rpm: 100 },
            { name: 'team-b', tenant: 'team-b', role: 'developer', rpm: 100 },
          ],
        },
      },
    });

    it('answers a repeated request from the cache', async () => {
      const question = `Cache me ${nonce()}`;
      const s0 = await gw.mock.stats();

      const first = await gw.chat(question);
      assert.equal(first.status, 200, first.text);
      assertDataPlaneHeaders(first, { cache: 'MISS', provider: 'gpt-4o-mini/0' });
      const s1 = await gw.mock.stats();
      assert.equal(s1.chat, s0.chat + 1, 'the first request did not reach the provider');

      const second = await gw.chat(question);
      assert.equal(second.status, 200, second.text);
      assertDataPlaneHeaders(second, { cache: 'HIT' });
      assert.equal(second.json.choices[0].message.content, first.json.choices[0].message.content);
      const s2 = await gw.mock.stats();
      assert.equal(s2.chat, s1.chat, 'the cached request reached the provider');
      assert.notEqual(second.headers.get('x-request-id'), first.headers.get('x-request-id'));
    });

    it('keeps tenants apart: the same request from another tenant misses', async () => {
      const question = `Tenant cache ${nonce()}`;
      const a1 = await gw.chat(question, { key: gw.key('team-a') });
      assert.equal(a1.status, 200, a1.text);
      assert.equal(a1.headers.get('x-cache'), 'MISS');

      const a2 = await gw.chat(question, { key: gw.key('team-a') });
      assert.equal(a2.status, 200, a2.text);
      assert.equal(a2.headers.get('x-cache'), 'HIT');

      const before = await gw.mock.stats();
      const b1 = await gw.chat(question, { key: gw.key('team-b') });
      assert.equal(b1.status, 200, b1.text);
      assert.equal(b1.headers.get('x-cache'), 'MISS', 'team-b was served team-a\'s entry');
      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat + 1);
    });

    it('tells different requests apart', async () => {
      const base = `Similar ${nonce()}`;
      const one = await gw.chat(`${base} one`);
      const two = await gw.chat(`${base} two`);
      assert.equal(one.headers.get('x-cache'), 'MISS');
      assert.equal(two.headers.get('x-cache'), 'MISS');
      assert.notEqual(one.json.choices[0].message.content, two.json.choices[0].message.content);
    });

    it('stores a stream and replays it to the next stream and to a plain request', async () => {
      const question = `Stream, then cache ${nonce()}`;
      const before = await gw.mock.stats();
      const first = await gw.chatStream(question);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      assert.ok(first.done, 'the first stream did not end with [DONE]');
      const text = first.contents.map((c) => c.text).join('');
      const second = await gw.chatStream(question);
      assert.equal(second.status, 200, second.text);
      assert.equal(second.headers.get('x-cache'), 'HIT');
      assert.match(second.headers.get('content-type'), /text\/event-stream/);
      assert.ok(second.done, 'the replay did not end with [DONE]');
      assert.equal(second.contents.map((c) => c.text).join(''), text);
      const plain = await gw.chat(question);
      assert.equal(plain.headers.get('x-cache'), 'HIT');
      assert.equal(plain.json.choices[0].message.content, text);
      const after = await gw.mock.stats();
      assert.equal(after.stream, before.stream + 1, 'a replay reached the provider');
      // The mock counts streams among its chat requests.
      assert.equal(after.chat, before.chat + 1, 'a replay reached the provider');
    });

    it('does not cache upstream errors', async () => {
      const question = `Fail, do not cache ${nonce()} mock:status=500`;
      const first = await gw.chat(question);
      assert.equal(first.status, 502, first.text);
      const before = await gw.mock.stats();
      const second = await gw.chat(question);
      assert.equal(second.status, 502, second.text);
      const after = await gw.mock.stats();
      // The router may retry a 5xx, so at least one more upstream call.
      assert.ok(after.chat > before.chat, 'an error was answered from the cache');
    });
  });
}
