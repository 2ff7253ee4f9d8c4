// What issue 13 promises of a cached answer beyond the cache itself: it
// still passes the output guardrails (the edge checks every answer, from
// the upstream or from the cache: a policy bound to the model with pii
// redact on output redacts the first answer and its repeats, whole and
// streamed), and a hit is recorded in usage with zero upstream cost and no
// tokens, beside the miss that paid for it.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database per gateway (pgtest.mjs freshDatabase).
import os from 'node:os';
import path from 'node:path';
import {
  assert, after, before, describe, eventually, it, nonce, startGateway, startMock,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const POLICIES = {
  outguard: {
    bindings: { models: ['gpt-out'] },
    guardrails: [{ detector: 'pii', action: 'redact', on: 'output' }],
  },
};

describe('a cached answer: output guardrails and usage (run)', () => {
  let db;
  let mock;
  let gw;
  before(async () => {
    db = await freshDatabase('aigw_cache_output');
    migrate(db.url);
    mock = await startMock({ name: 'cache-output-mock' });
    gw = await startGateway({
      mode: 'run', mock, name: 'cache-output', env: { DATABASE_URL: db.url },
      config: {
        cache: { enabled: true, ttl_s: 300 },
        guardrail: { policies: POLICIES },
        usage: { batch_ms: 50, spool_path: path.join(os.tmpdir(), `aigw-cout-${nonce()}.spool`) },
        models: [
          { name: 'gpt-out', deployments: [{ id: 'dep-out', provider: 'openai_compatible',
            model: 'gpt-4o-mini', base_url: mock.baseURL, api_key: mock.apiKey,
            price_in: 2, price_out: 8 }] },
        ],
      },
    });
  }, { timeout: 90000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    db?.destroy();
  });

  it('redacts a repeat served from the cache as it redacted the first answer', async () => {
    const tag = nonce();
    const q = `write to bob@example.org ${tag}`;
    const s0 = await mock.stats();
    const first = await gw.chat(q, { model: 'gpt-out' });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(first.json.choices[0].message.content, `Mock reply to: write to [EMAIL] ${tag}`);
    assert.equal(first.headers.get('x-aigw-guardrail'), 'out:redact:pii:email');

    const again = await gw.chat(q, { model: 'gpt-out' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers.get('x-cache'), 'HIT');
    assert.equal(again.json.choices[0].message.content, `Mock reply to: write to [EMAIL] ${tag}`);
    assert.equal(again.headers.get('x-aigw-guardrail'), 'out:redact:pii:email');
    assert.ok(!again.text.includes('bob@example.org'), again.text);

    const stream = await gw.chatStream(q, { model: 'gpt-out' });
    assert.equal(stream.status, 200, stream.text);
    assert.equal(stream.headers.get('x-cache'), 'HIT');
    assert.ok(stream.done, 'the replay ended with [DONE]');
    assert.equal(stream.contents.map((c) => c.text).join(''),
                 `Mock reply to: write to [EMAIL] ${tag}`);
    assert.ok(!JSON.stringify(stream.events).includes('bob@example.org'));
    const s1 = await mock.stats();
    assert.equal(s1.chat, s0.chat + 1, 'a cached answer reached the upstream');
  });

  it('records a hit in usage with zero cost and no tokens', async () => {
    const tag = nonce();
    const q = `usage of a hit ${tag}`;
    const miss = await gw.chat(q, { model: 'gpt-out', headers: { 'x-request-id': `miss-${tag}` } });
    assert.equal(miss.headers.get('x-cache'), 'MISS');
    const hit = await gw.chat(q, { model: 'gpt-out', headers: { 'x-request-id': `hit-${tag}` } });
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    // The body replays the answer as the upstream gave it, its usage
    // included; the usage record is what counts what was spent.
    assert.deepEqual(hit.json.usage, miss.json.usage);
    const row = (id) => {
      const out = db.sql(`SELECT status, coalesce (cache, ''), prompt_tokens, completion_tokens,
                                 cost_usd, model FROM usage_records
                           WHERE request_id = '${id}'`).trim();
      if (!out) return null;
      const [status, cache, pin, pout, cost, model] = out.split('|');
      return { status: Number(status), cache, pin: Number(pin), pout: Number(pout),
               cost: Number(cost), model };
    };
    let m;
    let h;
    await eventually(async () => (m = row(`miss-${tag}`)) && (h = row(`hit-${tag}`)), 20000, 100);
    assert.equal(m.cache, 'MISS');
    assert.ok(m.pin > 0 && m.pout > 0, JSON.stringify(m));
    assert.ok(Math.abs(m.cost - (m.pin * 2 + m.pout * 8) / 1e6) < 1e-9, JSON.stringify(m));
    assert.deepEqual(h, { status: 200, cache: 'HIT', pin: 0, pout: 0, cost: 0, model: 'gpt-out' });
  });
});
