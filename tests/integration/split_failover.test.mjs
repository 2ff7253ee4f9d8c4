// The split deployment when a stage loses its workers: requests fail fast
// with 503 instead of queueing, /readyz says so, and service comes back when
// workers return. Split mode only: in `aigw run` the stages share a process.
import {
  assert, assertError, describe, eventually, it, nonce, request, sleep, useGateway,
} from './lib.mjs';
import { performance } from 'node:perf_hooks';

describe('split deployment: provider workers die and come back', () => {
  const gw = useGateway({
    mode: 'split',
    // Faster dead-worker detection than the default 250 ms x 4, so that the
    // 1 s bound below has room on a loaded CI machine.
    config: { broker: { heartbeat_ms: 150, liveness: 4 } },
  });

  // Restart the provider processes, then wait (up to 10 s) for a chat to
  // answer 200 again. Returns that answer.
  async function restartProviders() {
    gw.startActor('provider');
    let last = null;
    const ok = await eventually(async () => {
      last = await gw.chat(`back again? ${nonce()}`, { timeoutMs: 5000 }).catch((e) => ({
        status: `fetch failed: ${e.message}`, text: '' }));
      return last.status === 200;
    }, 10000);
    assert.ok(ok, `no 200 within 10 s of the restart: last ${last.status} ${last.text}`);
    return last;
  }

  it('serves chat while every stage has a worker', async () => {
    const res = await gw.chat(`hello ${nonce()}`);
    assert.equal(res.status, 200, res.text);
  });

  it('ends a stream in flight when its provider dies, instead of hanging', async () => {
    // 50 chunks, 200 ms apart: 10 s of stream if nothing goes wrong. The
    // provider processes are killed as soon as the first words arrive.
    let killedAt = null;
    let killing = null;
    const s = await gw.chatStream(`long story ${nonce()} mock:chunks=50 mock:chunk_delay=200`, {
      timeoutMs: 20000,
      onEvent: (ev) => {
        if (killedAt === null && ev.json?.choices?.[0]?.delta?.content) {
          killedAt = performance.now();
          killing = gw.killActor('provider', 'SIGKILL');
        }
      },
    });
    await killing;
    assert.equal(s.status, 200, s.text);
    assert.ok(killedAt !== null, 'no content arrived before the kill');
    assert.ok(s.error === null || s.error.name !== 'TimeoutError',
              'the stream hung until the client gave up');
    const endedAfter = s.endedAt - killedAt;
    assert.ok(endedAfter < 5000, `the stream ended ${endedAfter.toFixed(0)} ms after the kill`);
    assert.ok(s.contents.length < 50, 'the stream completed although its provider died');
    await restartProviders();
  });

  it('answers 503 within 1 s when no provider worker is alive', async () => {
    const killed = await gw.killActor('provider', 'SIGKILL');
    assert.ok(killed >= 1, 'no provider process to kill');

    const res = await gw.chat(`anyone there? ${nonce()}`, { timeoutMs: 10000 });
    assertError(res, { status: 503, type: 'service_unavailable' });
    assert.ok(res.ms < 1000, `503 took ${res.ms.toFixed(0)} ms`);
  });

  it('reports not ready while a stage has no worker', async () => {
    const notReady = await eventually(async () => {
      const r = await request(gw.url, '/readyz', { timeoutMs: 3000 });
      return r.status !== 200;
    }, 5000);
    assert.ok(notReady, '/readyz still answers 200 with no provider worker');
    const health = await request(gw.url, '/healthz');
    assert.equal(health.status, 200, '/healthz must stay 200: the edge itself is alive');
  });

  it('serves again within 10 s of the provider coming back, and is ready', async () => {
    const res = await restartProviders();
    assert.equal(res.headers.get('x-aigw-provider'), 'gpt-4o-mini/0');
    const ready = await eventually(async () => {
      const r = await request(gw.url, '/readyz', { timeoutMs: 3000 });
      return r.status === 200;
    }, 10000);
    assert.ok(ready, '/readyz not 200 again after the restart');
  });

  it('serves with two provider workers when one of them dies', async () => {
    gw.startActor('provider');
    await sleep(500);
    const [victim] = gw.actorProcs('provider');
    victim.kill('SIGKILL');
    await victim.done;
    // The broker may route one request to the dead worker before it notices;
    // within a few seconds every request must succeed.
    const ok = await eventually(async () => {
      const results = [];
      for (let i = 0; i < 4; i++) results.push((await gw.chat(`survivor ${nonce()}`)).status);
      return results.every((s) => s === 200);
    }, 8000, 300);
    assert.ok(ok, 'requests still fail with one provider worker alive');
  });
});
