// AIGW-BP/2: the broker is the control plane, not the data path. With the
// broker killed, requests keep flowing among the peers already known (for
// more than 10 s), /readyz stays ready from the last directory, and a
// restarted broker takes over again without failing a request.
import {
  assert, describe, it, nonce, sleep, useGateway,
} from './lib.mjs';
import { performance } from 'node:perf_hooks';

// LOOPS concurrent request loops until STOP() says so. Resolves with every
// outcome: { status, ok, at, ms } (ok: a 200 carrying the answer to its own
// prompt, or a complete stream).
function load(gw, { loops = 8, stop }) {
  const outcomes = [];
  const one = async (i, n) => {
    const content = `flow ${i}-${n} ${nonce()}`;
    const t0 = performance.now();
    try {
      const res = await gw.chat(content, { timeoutMs: 10000 });
      const text = res.json?.choices?.[0]?.message?.content;
      outcomes.push({ status: res.status, ok: res.status === 200 && text === `Mock reply to: ${content}`,
                      at: t0, ms: performance.now() - t0, body: res.text });
    } catch (err) {
      outcomes.push({ status: `error: ${err.message}`, ok: false, at: t0,
                      ms: performance.now() - t0 });
    }
  };
  return Promise.all(Array.from({ length: loops }, async (_, i) => {
    for (let n = 0; !stop(); n++) await one(i, n);
  })).then(() => outcomes);
}

for (const mode of ['split', 'colocated']) {
  describe(`the broker killed under traffic (${mode})`, () => {
    const gw = useGateway({ mode, name: `brokerdown-${mode}` });

    it('requests keep flowing for 11 s without the broker, then a new broker takes over', async () => {
      const ready = await gw.fetch('/readyz');
      assert.equal(ready.status, 200, ready.text);
      const broker = gw.procs.find((p) => p.name.endsWith('-broker'));
      assert.ok(broker, 'no broker process');

      let stopAt = Infinity;
      const run = load(gw, { stop: () => performance.now() >= stopAt });
      await sleep(500);
      const killedAt = performance.now();
      broker.kill('SIGKILL');
      await broker.done;

      // Readiness answers from the last directory while the broker is gone.
      await sleep(3000);
      const during = await gw.fetch('/readyz');
      assert.equal(during.status, 200, `/readyz without the broker: ${during.text}`);
      assert.equal(during.json.pipeline.broker, false);

      await sleep(8000);
      // A new broker on the same endpoint: workers and the edge register
      // again; the peers keep the old directory for its grace period.
      gw.procs.push(gw.spawn('broker-2', ['broker', '--bind', gw.brokerEndpoint,
                                          '--config', gw.configFile]));
      const restartedAt = performance.now();
      await sleep(6000);
      stopAt = performance.now();
      const outcomes = await run;

      const down = outcomes.filter((o) => o.at > killedAt + 100 && o.at < restartedAt);
      const after = outcomes.filter((o) => o.at >= restartedAt);
      const failed = outcomes.filter((o) => !o.ok);
      assert.deepEqual(failed.slice(0, 3).map((o) => `${o.status} ${o.body ?? ''}`), [],
                       `${failed.length} of ${outcomes.length} requests failed`);
      assert.ok(down.length >= 100, `only ${down.length} requests while the broker was down`);
      const spanDown = Math.max(...down.map((o) => o.at)) - killedAt;
      assert.ok(spanDown >= 10500, `traffic stopped ${spanDown.toFixed(0)} ms after the kill`);
      assert.ok(after.length >= 50, `only ${after.length} requests after the restart`);

      const back = await gw.fetch('/readyz');
      assert.equal(back.status, 200, back.text);
      assert.equal(back.json.pipeline.broker, true, `the new broker is not in use: ${back.text}`);
    });
  });
}
