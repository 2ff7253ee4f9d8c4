// Prompts and answers in usage records, only for tenants that opt in
// (issue 10 item 2; schemas/sql/008_usage_content.sql). A tenant that did
// not opt in has NULL content on every row; turning store_content on with
// PATCH tenants takes effect on the next requests (auth's keys cache drops
// on the tenants NOTIFY), whose chat, stream and messages rows hold the
// request and the answer exactly; a body over 64 KiB is cut and marked;
// usage/records shows content only to a principal with usage:read_content;
// a config key's tenant listed in usage.store_content_tenants stores
// content, in `run` and in `split` (the copy crosses processes).
//
// Needs PostgreSQL: DATABASE_URL (tests/run.sh provides one) is used to
// create a fresh database per gateway (pgtest.mjs freshDatabase).
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  assert, after, before, describe, eventually, it, nonce, startGateway,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const CAP = 64 * 1024;  // AIGW_CONTENT_MAX

function config(name) {
  return {
    auth: { keys: [{ name: 'cfg-on', tenant: 'cfg-keeps', role: 'developer' },
                   { name: 'cfg-off', tenant: 'cfg-plain', role: 'developer' }] },
    guardrail: { max_prompt_chars: 1000000 },
    models: [{ name: 'gpt-4o-mini',
               deployments: [{ id: 'mock-mini', provider: 'openai', model: 'gpt-4o-mini',
                               price_in: 2, price_out: 8 }] }],
    usage: { batch_ms: 50, store_content_tenants: ['cfg-keeps'],
             spool_path: path.join(os.tmpdir(), `aigw-ucontent-${name}-${nonce()}.spool`) },
  };
}

// The helpers every gateway of this file shares: DB and GW are getters.
function helpers(getDb, getGw) {
  const json = (text) => JSON.parse(getDb().sql(text).trim());
  // The usage row of request ID, once written: { tenant_id, content }.
  async function row(id) {
    let found = null;
    await eventually(async () => {
      const rows = json(`SELECT coalesce (json_agg (x), '[]') FROM (SELECT tenant_id, status,
                           content FROM usage_records WHERE request_id = '${id}') x`);
      found = rows[0] || null;
      return found !== null;
    }, 30000, 100);
    return found;
  }
  // POST PATHNAME with BODY as KEY, request id ID; the answer.
  async function send(pathname, body, key, id) {
    const res = await getGw().fetch(pathname, { key, body, headers: { 'x-request-id': id },
                                                timeoutMs: 30000 });
    assert.equal(res.status, 200, res.text);
    return res;
  }
  const chatBody = (text, extra = {}) => ({ model: 'gpt-4o-mini',
                                            messages: [{ role: 'user', content: text }], ...extra });
  return { json, row, send, chatBody };
}

// Sends a chat, a stream and a messages request as KEY; each row holds the
// request as sent and the answer as the client got it.
async function assertKeeps(h, key, tag) {
  const chatReq = h.chatBody(`keep chat ${tag}`, { temperature: 0.5 });
  const chat = await h.send('/v1/chat/completions', chatReq, key, `chat-${tag}`);
  const streamReq = h.chatBody(`keep stream ${tag}`, { stream: true });
  const stream = await h.send('/v1/chat/completions', streamReq, key, `stream-${tag}`);
  assert.match(stream.headers.get('content-type'), /text\/event-stream/);
  assert.ok(stream.text.includes('data: [DONE]'), stream.text);
  const msgReq = { model: 'gpt-4o-mini', max_tokens: 32,
                   messages: [{ role: 'user', content: `keep messages ${tag}` }] };
  const msg = await h.send('/v1/messages', msgReq, key, `messages-${tag}`);

  const c = (await h.row(`chat-${tag}`)).content;
  assert.ok(c, 'an opted-in chat row has content');
  assert.deepEqual(c.request, chatReq);
  assert.deepEqual(c.response, chat.json);
  assert.equal(c.truncated, false);
  const s = (await h.row(`stream-${tag}`)).content;
  assert.ok(s, 'an opted-in stream row has content');
  assert.deepEqual(s.request, streamReq);
  assert.equal(s.response, stream.text, 'the events the client got, as text');
  assert.equal(s.truncated, false);
  const m = (await h.row(`messages-${tag}`)).content;
  assert.ok(m, 'an opted-in messages row has content');
  assert.deepEqual(m.request, msgReq);
  assert.deepEqual(m.response, msg.json);
  assert.equal(m.truncated, false);
}

describe('usage content (run)', () => {
  let db;
  let gw;
  let tenant;
  let other;
  const k = {};
  const h = helpers(() => db, () => gw);
  const admin = (p, opts = {}) => gw.fetch(`/api/v1/admin/${p}`, opts);

  before(async () => {
    db = await freshDatabase('aigw_ucontent');
    migrate(db.url);
    gw = await startGateway({ mode: 'run', name: 'usage-content', config: config('run'),
                              env: { DATABASE_URL: db.url } });
    const created = await admin('tenants', { body: { name: `keeps-${nonce()}` } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.store_content, false, 'off by default');
    tenant = created.json.id;
    const second = await admin('tenants', { body: { name: `plain-${nonce()}`, store_content: false } });
    assert.equal(second.status, 201, second.text);
    other = second.json.id;
    for (const [name, t, role] of [['dev', tenant, 'developer'], ['viewer', tenant, 'viewer'],
                                   ['tadmin', tenant, 'tenant-admin'], ['other', other, 'developer']]) {
      const res = await admin('keys', { body: { name, tenant_id: t, role } });
      assert.equal(res.status, 201, res.text);
      k[name] = res.json.key;
    }
  }, { timeout: 120000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('keeps no content for a tenant that did not opt in', async () => {
    const tag = nonce();
    await h.send('/v1/chat/completions', h.chatBody(`plain ${tag}`), k.dev, `plain-chat-${tag}`);
    await h.send('/v1/chat/completions', h.chatBody(`plain ${tag}`, { stream: true }), k.dev,
                 `plain-stream-${tag}`);
    await h.send('/v1/messages', { model: 'gpt-4o-mini', max_tokens: 8,
                                   messages: [{ role: 'user', content: `plain ${tag}` }] },
                 k.other, `plain-msg-${tag}`);
    for (const id of [`plain-chat-${tag}`, `plain-stream-${tag}`, `plain-msg-${tag}`]) {
      const r = await h.row(id);
      assert.equal(r.content, null, `${id}: content kept without opting in`);
    }
  });

  it('lets only a principal with tenants:write turn store_content on, audited', async () => {
    const denied = await admin(`tenants/${tenant}`, { method: 'PATCH', key: k.tadmin,
                                                      body: { store_content: true } });
    assert.equal(denied.status, 403, denied.text);
    const bad = await admin(`tenants/${tenant}`, { method: 'PATCH', body: { store_content: 'yes' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.param, 'store_content');
    const got = await admin(`tenants/${tenant}`);
    assert.equal(got.json.store_content, false, 'refused changes left it off');

    const on = await admin(`tenants/${tenant}`, { method: 'PATCH', body: { store_content: true } });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.json.store_content, true);
    const listed = await admin('tenants');
    assert.equal(listed.json.data.find((t) => t.id === tenant).store_content, true);
    assert.equal(listed.json.data.find((t) => t.id === other).store_content, false);
    const audit = h.json(`SELECT json_build_object ('before', before->'store_content',
                            'after', after->'store_content') FROM audit_log
                           WHERE action = 'tenants.update' AND target_id = '${tenant}'`);
    assert.deepEqual(audit, { before: false, after: true });
  });

  it('keeps the next requests\' prompts and answers once opted in, exactly', async () => {
    // Takes effect within the NOTIFY's round trip: wait for a row with content.
    await eventually(async () => {
      const id = `probe-${nonce()}`;
      await h.send('/v1/chat/completions', h.chatBody(`probe ${id}`), k.dev, id);
      return (await h.row(id)).content !== null;
    }, 10000, 200);
    await assertKeeps(h, k.dev, nonce());
    // The other tenant still keeps nothing.
    const id = `other-${nonce()}`;
    await h.send('/v1/chat/completions', h.chatBody(`other ${id}`), k.other, id);
    assert.equal((await h.row(id)).content, null);
  });

  it('cuts a request body over 64 KiB and marks it', async () => {
    const id = `big-${nonce()}`;
    const text = 'x'.repeat(CAP + 5000);
    const body = JSON.stringify(h.chatBody(text));
    const res = await gw.fetch('/v1/chat/completions', { key: k.dev, body,
                                                         headers: { 'x-request-id': id } });
    assert.equal(res.status, 200, res.text);
    const c = (await h.row(id)).content;
    assert.equal(c.truncated, true);
    assert.equal(typeof c.request, 'string', 'a cut body is kept as text');
    assert.equal(c.request.length, CAP);
    assert.ok(c.request === body.slice(0, CAP), 'the request\'s first 64 KiB, as sent');
    // The mock echoes the prompt: the answer is over the cap too, and cut
    // the same way.
    assert.ok(res.text.length > CAP);
    assert.equal(typeof c.response, 'string');
    assert.ok(c.response === res.text.slice(0, CAP), 'the answer\'s first 64 KiB');
    // A body under the cap with an answer under it is kept whole.
    const small = `small-${nonce()}`;
    const req = h.chatBody('y'.repeat(CAP / 4));
    const whole = await h.send('/v1/chat/completions', req, k.dev, small);
    const w = (await h.row(small)).content;
    assert.equal(w.truncated, false);
    assert.ok(isDeepStrictEqual(w.request, req), 'the request, whole');
    assert.ok(isDeepStrictEqual(w.response, whole.json), 'the answer, whole');
  });

  it('shows content in usage/records only with usage:read_content', async () => {
    const id = `seen-${nonce()}`;
    const req = h.chatBody(`seen ${id}`);
    await h.send('/v1/chat/completions', req, k.dev, id);
    await h.row(id);
    const find = async (key) => {
      const res = await admin(`usage/records?tenant_id=${tenant}&limit=200`, key ? { key } : {});
      assert.equal(res.status, 200, res.text);
      const rec = res.json.data.find((r) => r.request_id === id);
      assert.ok(rec, `record ${id} not listed`);
      return rec;
    };
    const asMaster = await find(null);
    assert.deepEqual(asMaster.content.request, req, 'the master key sees content');
    const asTenantAdmin = await find(k.tadmin);
    assert.deepEqual(asTenantAdmin.content.request, req, 'a tenant-admin sees its tenant\'s');
    const asViewer = await find(k.viewer);
    assert.ok(!('content' in asViewer), 'a viewer does not see content');
    const asDev = await find(k.dev);
    assert.ok(!('content' in asDev), 'a developer does not see content, even its own');
    // A tenant-admin of another tenant sees none of these records at all.
    const res = await admin('keys', { body: { name: 'other-admin', tenant_id: other,
                                              role: 'tenant-admin' } });
    const outside = await admin(`usage/records?limit=200`, { key: res.json.key });
    assert.equal(outside.status, 200, outside.text);
    assert.ok(outside.json.data.every((r) => r.tenant_id === other && r.content === null));
  });

  it('keeps content for a config key whose tenant is in usage.store_content_tenants', async () => {
    await assertKeeps(h, gw.key('cfg-on'), `cfg-${nonce()}`);
    const id = `cfg-off-${nonce()}`;
    await h.send('/v1/chat/completions', h.chatBody(`cfg off ${id}`), gw.key('cfg-off'), id);
    const r = await h.row(id);
    assert.equal(r.tenant_id, 'cfg-plain');
    assert.equal(r.content, null);
  });

  it('never kept content for a tenant that did not opt in', () => {
    const kept = h.json(`SELECT json_build_object ('plain', count (*) FILTER (WHERE content IS NOT NULL
                           AND coalesce (tenant_id, '') NOT IN ('${tenant}', 'cfg-keeps')),
                           'kept', count (*) FILTER (WHERE content IS NOT NULL)) FROM usage_records`);
    assert.equal(kept.plain, 0, 'content in a row of a tenant that did not opt in');
    assert.ok(kept.kept >= 8, `${kept.kept} rows with content`);
  });
});

describe('usage content (split)', () => {
  let db;
  let gw;
  const h = helpers(() => db, () => gw);
  before(async () => {
    db = await freshDatabase('aigw_ucontent_split');
    migrate(db.url);
    gw = await startGateway({ mode: 'split', name: 'usage-content-split', config: config('split'),
                              env: { DATABASE_URL: db.url } });
  }, { timeout: 120000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  it('carries the request across processes and keeps it with the answer', async () => {
    await assertKeeps(h, gw.key('cfg-on'), `split-${nonce()}`);
    const id = `split-off-${nonce()}`;
    await h.send('/v1/chat/completions', h.chatBody(`off ${id}`, { stream: true }),
                 gw.key('cfg-off'), id);
    assert.equal((await h.row(id)).content, null);
  });
});
