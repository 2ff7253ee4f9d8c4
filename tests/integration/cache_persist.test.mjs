// The response cache in PostgreSQL (issue 13: "persisted to PostgreSQL so
// a restart or a new owner starts warm"; schemas/sql/015_cache_entries.sql):
// a restarted `aigw run` on the same database answers an exact and a
// semantic repeat without the upstream; an expired entry is not read back;
// DELETE cache removes the rows; in split mode with two cache processes, a
// cache owner killed with kill -9 hands its partitions to the other, which
// answers their repeats from the rows.
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database per gateway (pgtest.mjs freshDatabase).
import {
  assert, after, before, describe, eventually, it, nonce, sharedVectors, sleep, startGateway,
  startMock,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const said = (r) => r.json?.choices?.[0]?.message?.content;

describe('cache persistence across a restart (run)', () => {
  let db;
  let mock;
  let gw;
  const count = (where = 'true') => Number(db.sql(`SELECT count (*) FROM cache_entries
                                                    WHERE ${where}`).trim());
  const config = {
    cache: { enabled: true, ttl_s: 300, persist: true,
             semantic: { enabled: true, vectors: sharedVectors(), threshold: 0.75 } },
  };
  const start = () => startGateway({ mode: 'run', name: 'cache-persist', mock, config,
                                     env: { DATABASE_URL: db.url } });

  before(async () => {
    db = await freshDatabase('aigw_cache_persist');
    migrate(db.url);
    mock = await startMock({ name: 'cache-persist-mock' });
    gw = await start();
  }, { timeout: 300000 });
  after(async () => {
    if (gw) await gw.stop();
    if (mock) await mock.stop();
    if (db) db.destroy();
  });

  it('finds its exact and semantic entries after a restart, the upstream not called', async () => {
    const exactQ = `Persist me exactly ${nonce()}`;
    const semQ = 'How do I reverse a list in Python?';
    const a = await gw.chat(exactQ);
    assert.equal(a.headers.get('x-cache'), 'MISS', a.text);
    const b = await gw.chat(semQ);
    assert.equal(b.headers.get('x-cache'), 'MISS', b.text);
    const brief = `Short lived ${nonce()}`;
    const c = await gw.chat(brief, { headers: { 'x-aigw-cache-ttl': '1' } });
    assert.equal(c.headers.get('x-cache'), 'MISS', c.text);
    // Written from the stage's loop, soon after.
    await eventually(async () => count() === 3, 10000, 100);
    assert.equal(count('vector IS NOT NULL AND prompt IS NOT NULL'), 3,
                 'semantic entries carry their vector');
    assert.equal(count(`body::json->'choices'->0->'message'->>'content' = '${said(a).replace(/'/g, "''")}'`),
                 1, 'the answer kept as the client got it');

    await gw.stop();
    gw = null;
    await sleep(1100);  // the short-lived entry expires meanwhile
    gw = await start();
    const s0 = await mock.stats();
    const a2 = await gw.chat(exactQ);
    assert.equal(a2.status, 200, a2.text);
    assert.equal(a2.headers.get('x-cache'), 'HIT');
    assert.equal(said(a2), said(a));
    const b2 = await gw.chat('Hey, how do I reverse a list in Python?');
    assert.equal(b2.status, 200, b2.text);
    assert.equal(b2.headers.get('x-cache'), 'SEMANTIC-HIT');
    assert.equal(said(b2), said(b));
    const s1 = await mock.stats();
    assert.equal(s1.chat, s0.chat, 'a persisted entry was asked upstream again');
    const c2 = await gw.chat(brief);
    assert.equal(c2.headers.get('x-cache'), 'MISS', 'an expired row was read back');
    const stats = await gw.fetch('/api/v1/admin/cache/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.ok(stats.json.entries >= 2, stats.text);
  });

  it('deletes the rows of what DELETE cache purges', async () => {
    await gw.chat(`Purge me ${nonce()}`);
    await eventually(async () => count() >= 3, 10000, 100);
    const purge = await gw.fetch('/api/v1/admin/cache?model=gpt-4o-mini', { method: 'DELETE' });
    assert.equal(purge.status, 200, purge.text);
    await eventually(async () => count() === 0, 10000, 100);
    // And a restart finds nothing.
    await gw.stop();
    gw = await start();
    const again = await gw.chat('How do I reverse a list in Python?');
    assert.equal(again.headers.get('x-cache'), 'MISS');
  });
});

describe('cache persistence across an owner move (split)', () => {
  let db;
  let gw;
  const ask = (i, q) => gw.fetch('/v1/chat/completions', {
    body: { model: 'gpt-4o-mini',
            messages: [{ role: 'system', content: `You are assistant number ${i}.` },
                       { role: 'user', content: q }] },
  });

  before(async () => {
    db = await freshDatabase('aigw_cache_move');
    migrate(db.url);
    gw = await startGateway({ mode: 'split', name: 'cache-move', actors: { cache: 2 },
                              config: { cache: { enabled: true, ttl_s: 300, persist: true } },
                              env: { DATABASE_URL: db.url } });
  }, { timeout: 120000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('answers a killed owner\'s questions from the database on the new owner', async () => {
    // Both owners in every process's directory first (a stage a process
    // has not heard of yet is 503 stage_unavailable, before any kill).
    await eventually(async () => {
      const s = await gw.fetch('/api/v1/admin/cache/stats');
      return s.status === 200 && s.json.instances === 2;
    }, 20000, 200);
    await eventually(async () => (await ask(99, `warm-up ${nonce()}`)).status === 200, 20000, 200);
    // Eight system prompts: eight partitions, spread over both owners.
    const q = `Which owner holds me ${nonce()}`;
    const first = [];
    for (let i = 0; i < 8; i++) {
      const r = await ask(i, q);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-cache'), 'MISS');
      first.push(said(r));
    }
    await eventually(async () => Number(db.sql('SELECT count (*) FROM cache_entries').trim()) === 9,
                     10000, 100);
    const before = await gw.fetch('/api/v1/admin/cache/stats');
    assert.equal(before.json.instances, 2, before.text);

    const [victim] = gw.actorProcs('cache');
    victim.kill('SIGKILL');
    await victim.done;
    // While the move is under way a repeat may miss, never fail.
    for (let i = 0; i < 8; i++) {
      const r = await ask(i, q);
      assert.equal(r.status, 200, r.text);
      assert.ok(['HIT', 'MISS'].includes(r.headers.get('x-cache')), r.headers.get('x-cache'));
      assert.equal(said(r), first[i]);
    }
    // Once the directory has one owner, every repeat is a hit, from the
    // survivor's memory or its database read.
    await eventually(async () => {
      const s = await gw.fetch('/api/v1/admin/cache/stats');
      return s.status === 200 && s.json.instances === 1;
    }, 20000, 200);
    const s0 = await gw.mock.stats();
    for (let i = 0; i < 8; i++) {
      const r = await ask(i, q);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-cache'), 'HIT', `partition ${i}`);
      assert.equal(said(r), first[i]);
    }
    const s1 = await gw.mock.stats();
    assert.equal(s1.chat, s0.chat, 'a moved entry was asked upstream again');
    const stats = await gw.fetch('/api/v1/admin/cache/stats');
    assert.ok(stats.json.entries >= 8, stats.text);
  });
});
