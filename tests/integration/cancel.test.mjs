// A client that leaves cancels its work: the upstream transfer is aborted at
// once (the mock sees its connection close) and the in-flight figures drop,
// whether the client left before the first byte, mid-stream, or while a
// plain request waited; in one process, and when the provider is another
// process (a CANCEL from the edge to the provider's peer inbox).
import {
  MODES, assert, describe, eventually, it, nonce, useGateway, sleep,
} from './lib.mjs';

// Send a chat request and abort it after AFTER_MS (or once the first SSE
// bytes arrive when FIRST is set). Resolves when the client has gone.
async function leave(gw, content, { stream, afterMs = 400, first = false }) {
  const ac = new AbortController();
  const res = fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream,
                           messages: [{ role: 'user', content }] }),
    signal: ac.signal,
  });
  if (first) {
    const r = await res;
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    const { value } = await reader.read();
    assert.ok(value && value.length > 0, 'no stream bytes before leaving');
  } else {
    await sleep(afterMs);
  }
  ac.abort();
  await res.then(() => {}, () => {});
}

// The gateway's upstream attempts in flight for gpt-4o-mini, from /metrics.
async function inFlight(gw) {
  const r = await gw.fetch('/metrics');
  assert.equal(r.status, 200);
  const m = r.text.match(/aigw_deployment_in_flight\{model="gpt-4o-mini"[^}]*\} (\d+)/);
  assert.ok(m, 'no aigw_deployment_in_flight for gpt-4o-mini in /metrics');
  return Number(m[1]);
}

// Wait until the mock is answering INFLIGHT requests and the gateway says so.
async function busy(gw, count) {
  assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === count, 5000, 50),
            `the mock never had ${count} requests in flight`);
  assert.ok(await eventually(async () => (await inFlight(gw)) === count, 5000, 100),
            `the gateway never reported ${count} in flight`);
}

for (const mode of MODES) describe(`a client that leaves cancels its upstream call (${mode})`, () => {
  const gw = useGateway({ mode, config: { router: { first_token_timeout_ms: 60000 } } });

  for (const stream of [false, true]) {
    it(`${stream ? 'a stream' : 'a plain request'} left before its first byte`, async () => {
      const before = await gw.mock.stats();
      await leave(gw, `wait for me ${nonce()} mock:hang`, { stream, afterMs: 600 });
      // The upstream hangs until its client goes: its connection closes
      // once the gateway aborts, not at the 60 s first-token timeout (the
      // 3 s wait is far short of that; bench/deadlines.mjs prints how long).
      assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === 0, 3000, 50),
              'the upstream call outlived its client');
      const after = await gw.mock.stats();
      assert.equal(after.chat, before.chat + 1, 'the request was sent upstream once, never again');
      assert.ok(await eventually(async () => (await inFlight(gw)) === 0, 4000, 100),
              'the gateway still counts the call in flight');
    });
  }

  it('a stream left mid-way', async () => {
    // 40 chunks 250 ms apart: 10 s if nobody leaves, so closed within 3 s
    // of leaving means the stream did not run on.
    await leave(gw, `talk to me ${nonce()} mock:chunks=40 mock:chunk_delay=250`,
                { stream: true, first: true });
    assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === 0, 3000, 50),
              'the stream ran on after its client left');
    assert.ok(await eventually(async () => (await inFlight(gw)) === 0, 4000, 100),
              'the gateway still counts the call in flight');
  });

  it('ten clients leaving at once leave nothing behind, and the gateway still serves', async () => {
    const contents = Array.from({ length: 10 }, (_, i) => `crowd ${i} ${nonce()} mock:hang`);
    const ac = new AbortController();
    const pending = contents.map((content, i) => fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: i % 2 === 0,
                             messages: [{ role: 'user', content }] }),
      signal: ac.signal,
    }).then(() => {}, () => {}));
    await busy(gw, 10);
    ac.abort();
    await Promise.all(pending);
    assert.ok(await eventually(async () => (await gw.mock.stats()).in_flight === 0, 3000, 50),
              'the upstream call is still open');
    assert.ok(await eventually(async () => (await inFlight(gw)) === 0, 4000, 100),
              'the gateway still counts the call in flight');
    const res = await gw.chat(`still there? ${nonce()}`);
    assert.equal(res.status, 200, res.text);
  });
});
