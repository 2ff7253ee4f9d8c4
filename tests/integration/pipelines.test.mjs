// `aigw run` with several pipeline threads (server.pipelines): requests are
// spread over them, and a rate-limit key and a cache entry still have one
// owner (the thread the directory names), so limits stay exact and a cached
// answer is found whichever thread takes the repeat.
import {
  assert, describe, eventually, it, nonce, sleep, useGateway,
} from './lib.mjs';

describe('aigw run with three pipelines', () => {
  const gw = useGateway({
    mode: 'run',
    name: 'pipelines',
    config: {
      server: { pipelines: 3 },
      auth: { keys: [{ name: 'limited', tenant: 'team-p', role: 'developer', rpm: 7 }] },
    },
  });

  it('answers every request, whichever pipeline takes it', async () => {
    // The pipelines learn each other's workers from the broker's first push.
    await sleep(300);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => gw.chat(`p${i} ${nonce()}`)));
    for (const [i, res] of results.entries()) {
      assert.equal(res.status, 200, `request ${i}: ${res.text}`);
      assert.equal(res.headers.get('x-cache'), 'MISS');
    }
    const s = await gw.chatStream(`stream ${nonce()} mock:chunks=3`);
    assert.equal(s.status, 200, s.text);
    assert.ok(s.done, 'no [DONE]');
  });

  it('stays up when clients leave requests that went on to another pipeline', async () => {
    // Most of these cross to the pipeline owning their cache entry; a
    // client that leaves then cancels a job its own pipeline no longer
    // holds (it once freed it and cancelled it anyway: a crash).
    const leaving = Array.from({ length: 12 }, (_, i) => {
      const ac = new AbortController();
      const done = fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream: i % 2 === 1,
                               messages: [{ role: 'user', content: `leave ${i} ${nonce()} mock:hang` }] }),
        signal: ac.signal,
      }).then(() => {}, () => {});
      return { ac, done };
    });
    assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === 12, 5000, 50),
              'the mock never had the 12 requests in flight');
    for (const { ac } of leaving) ac.abort();
    await Promise.all(leaving.map((l) => l.done));
    assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === 0, 5000, 50),
              'the upstream calls were not aborted');
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => gw.chat(`after ${i} ${nonce()}`)));
    for (const res of after) assert.equal(res.status, 200, res.text);
  });

  it('keeps a key to its rpm exactly across pipelines', async () => {
    const key = gw.key('limited');
    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const res = await gw.chat(`limit ${i} ${nonce()}`, { key });
      statuses.push(res.status);
      if (res.status === 200) {
        assert.equal(res.headers.get('x-ratelimit-remaining'), String(6 - i),
                     `request ${i}: remaining`);
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 429, 429, 429]);
  });

  it('finds a cached answer whichever pipeline takes the repeat', async () => {
    const question = `cache me ${nonce()}`;
    const first = await gw.chat(question);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    // Three repeats: with three pipelines taking requests in turn, at least
    // two land on a thread that does not own the entry.
    for (let i = 0; i < 3; i++) {
      const again = await gw.chat(question);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.headers.get('x-cache'), 'HIT', `repeat ${i}`);
      assert.equal(again.text, first.text);
    }
  });
});
