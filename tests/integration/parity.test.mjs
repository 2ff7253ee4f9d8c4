// `aigw run` and the split deployment are the same gateway: the same request
// gets the same answer from both.
import { assert, describe, it, nonce, startGateway, useMock, before, after } from './lib.mjs';

describe('run and split give the same answers', () => {
  const mock = useMock();
  const gws = {};
  before(async () => {
    const config = {
      guardrail: { deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }] },
    };
    [gws.run, gws.split] = await Promise.all([
      startGateway({ mode: 'run', mock, config }),
      startGateway({ mode: 'split', mock, config }),
    ]);
  }, { timeout: 60000 });
  after(async () => {
    await Promise.all(Object.values(gws).map((g) => g.stop()));
  });

  // Send the same request to both; return [runAnswer, splitAnswer].
  async function both(send) {
    return Promise.all([send(gws.run), send(gws.split)]);
  }

  it('chat: same status and content', async () => {
    const question = `Same to both ${nonce()}`;
    const [a, b] = await both((g) => g.chat(question));
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, a.status, b.text);
    assert.equal(b.json.choices[0].message.content, a.json.choices[0].message.content);
    assert.equal(b.headers.get('x-aigw-provider'), a.headers.get('x-aigw-provider'));
  });

  it('streamed chat: same text', async () => {
    const question = `Stream to both ${nonce()}`;
    const [a, b] = await both((g) => g.chatStream(question));
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    const text = (s) => s.contents.map((c) => c.text).join('');
    assert.equal(text(b), text(a));
    assert.ok(a.done && b.done, 'a stream did not end with [DONE]');
  });

  for (const [what, send] of [
    ['unknown model', (g) => g.chat('hi', { model: 'no-such-model' })],
    ['wrong key', (g) => g.chat('hi', { key: 'sk-not-a-key' })],
    ['invalid JSON', (g) => g.fetch('/v1/chat/completions', { body: '{' })],
    ['guardrail block', (g) => g.chat(`password: x ${nonce()}`)],
    ['upstream error', (g) => g.chat(`boom ${nonce()} mock:status=500`)],
  ]) {
    it(`${what}: same status and error type and code`, async () => {
      const [a, b] = await both(send);
      assert.ok(a.status >= 400, `run answered ${a.status} ${a.text}`);
      assert.equal(b.status, a.status, `run ${a.status} ${a.text} / split ${b.status} ${b.text}`);
      assert.equal(b.json?.error?.type, a.json?.error?.type);
      assert.equal(b.json?.error?.code, a.json?.error?.code);
      assert.equal(b.json?.error?.param, a.json?.error?.param);
    });
  }

  it('models: same list', async () => {
    const [a, b] = await both((g) => g.fetch('/v1/models'));
    assert.equal(a.status, 200, a.text);
    const ids = (r) => r.json.data.map((m) => m.id).sort();
    assert.deepEqual(ids(b), ids(a));
  });
});
