// Stored Responses (issue 15, item 1): `store` (true unless the client says
// false), `previous_response_id` on any provider, GET / DELETE
// /v1/responses/{id} and input_items, tenant scoping, rows in PostgreSQL and
// their TTL. The official `openai` SDK against an OpenAI-format model (the
// deployment keeps the previous response: it gets its own
// previous_response_id and only the new items), an Anthropic-format and a
// Gemini-format model (translated: the upstream gets the whole conversation).
import OpenAI from 'openai';
import {
  after, assert, before, describe, eventually, it, nonce, request, secretKey, sleep,
  startGateway, startMock,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const TOOLS = [
  { type: 'function', name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
];
const TARGETS = [
  { model: 's-openai', dep: 'dep-s-openai', route: 'responses', provider: 'openai' },
  { model: 's-claude', dep: 'dep-s-claude', route: 'anthropic', provider: 'anthropic' },
  { model: 's-gemini', dep: 'dep-s-gemini', route: 'gemini', provider: 'gemini' },
];

function models(mock) {
  return [
    { name: 's-openai', deployments: [{ id: 'dep-s-openai', provider: 'openai',
      model: 'gpt-4o-mini', base_url: mock.baseURL, api_key: mock.apiKey }] },
    { name: 's-claude', deployments: [{ id: 'dep-s-claude', provider: 'anthropic',
      model: 'claude-3-5-haiku-latest', base_url: mock.url, api_key: mock.apiKey }] },
    { name: 's-gemini', deployments: [{ id: 'dep-s-gemini', provider: 'gemini',
      model: 'gemini-2.0-flash', base_url: mock.url, api_key: mock.apiKey }] },
  ];
}

describe('stored Responses', () => {
  let mock;
  let gw;
  let pg;
  const keys = {};   // tenant a and b: { id, key }
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    mock = await startMock({ name: 'rstore-mock' });
    gw = await startGateway({
      mock, name: 'rstore', env: { DATABASE_URL: pg.url, AIGW_SECRET_KEY: secretKey() },
      config: { cache: { enabled: true }, models: models(mock) },
    });
    for (const name of ['a', 'b']) {
      const t = await gw.fetch('/api/v1/admin/tenants', { body: { name: `rs-${name}-${nonce(6)}` } });
      assert.equal(t.status, 201, t.text);
      const k = await gw.fetch('/api/v1/admin/keys',
                               { body: { name: `rs-${name}`, tenant_id: t.json.id, role: 'developer' } });
      assert.equal(k.status, 201, k.text);
      keys[name] = { tenant: t.json.id, id: k.json.id, key: k.json.key };
    }
  }, { timeout: 120000 });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    pg?.destroy();
  });

  const client = (key = gw.masterKey) => new OpenAI({ baseURL: gw.baseURL, apiKey: key,
                                                      maxRetries: 0, timeout: 15000 });
  const row = (id) => pg.sql(`SELECT tenant_id, key_id, model, deployment, provider,
      coalesce (previous_response_id, '-'), jsonb_array_length (input_items),
      response->>'id', (expires_at - created_at) > interval '29 days'
      FROM responses WHERE id = '${id}'`).trim();

  for (const t of TARGETS) {
    it(`${t.route}-format: a tool call streamed, its output via previous_response_id, then a third turn`,
       async () => {
         const c = client(keys.a.key);
         const question = `Weather in Paris? mock:tool ${nonce()}`;
         // Turn one, streamed: stored from the stream's response.completed.
         const first = await c.responses.stream({ model: t.model, input: question, tools: TOOLS,
                                                  instructions: 'Be brief.' }).finalResponse();
         const call = first.output.find((o) => o.type === 'function_call');
         assert.ok(call, JSON.stringify(first.output));
         // Sent the moment the first answer ends: the row must be there.
         const result = `19 degrees ${nonce()}`;
         const second = await c.responses.create({
           model: t.model, previous_response_id: first.id, tools: TOOLS,
           input: [{ type: 'function_call_output', call_id: call.call_id, output: result }],
         });
         const said = t.route === 'gemini' ? `tool said: ${JSON.stringify({ content: result })}`
           : `tool said: ${result}`;
         assert.equal(second.output_text, said);
         // A pass-through answer is the upstream's own Response (the mock
         // echoes no previous_response_id); a translated one echoes it.
         if (t.route !== 'responses') {
           assert.equal(second.previous_response_id, first.id);
           assert.equal(second.store, true);
         }
         const seen = await mock.saw(result);
         assert.equal(seen.route, t.route);
         if (t.route === 'responses') {
           // The openai deployment kept turn one: its id and the new item only.
           assert.equal(seen.body.previous_response_id, first.id);
           assert.equal(seen.body.input.length, 1, JSON.stringify(seen.body.input));
           assert.equal(seen.body.input[0].type, 'function_call_output');
         } else if (t.route === 'anthropic') {
           const m = seen.body.messages;
           assert.equal(m.length, 3, JSON.stringify(m));
           assert.ok(JSON.stringify(m[0]).includes(question));
           const use = m[1].content.find((b) => b.type === 'tool_use');
           assert.equal(use.id, call.call_id);
           assert.equal(m[2].content.find((b) => b.type === 'tool_result').tool_use_id, call.call_id);
           // Instructions are not carried to the next turn (as OpenAI does).
           assert.ok(!JSON.stringify(seen.body.system ?? '').includes('Be brief.'));
         } else {
           const text = JSON.stringify(seen.body.contents);
           assert.ok(text.includes(question), text);
           const parts = seen.body.contents.flatMap((x) => x.parts);
           assert.ok(parts.some((p) => p.functionCall?.name === 'get_weather'), text);
           assert.ok(parts.some((p) => p.functionResponse?.name === 'get_weather'), text);
         }

         // Turn three, a plain string: the whole conversation so far.
         const more = `And tomorrow? ${nonce()}`;
         const third = await c.responses.create({ model: t.model, previous_response_id: second.id,
                                                  input: more });
         assert.equal(third.output_text, `Mock reply to: ${more}`);
         const seen3 = await mock.saw(more);
         if (t.route === 'responses') {
           assert.equal(seen3.body.previous_response_id, second.id);
           assert.equal(seen3.body.input.length, 1);
         } else {
           const text = JSON.stringify(seen3.body.messages ?? seen3.body.contents);
           for (const needle of [question, result, said, more]) {
             assert.ok(text.includes(needle.replace(/"/g, '\\"')) || text.includes(needle),
                       `${needle} not in ${text}`);
           }
         }

         // Rows: the caller's tenant and key, the deployment, the chain.
         assert.equal(row(first.id), `${keys.a.tenant}|${keys.a.id}|${t.model}|${t.dep}|`
                      + `${t.provider}|-|1|${first.id}|t`);
         // Turn two holds turn one's input and output, then its own item.
         const n1 = 1 + first.output.length;
         assert.equal(row(second.id), `${keys.a.tenant}|${keys.a.id}|${t.model}|${t.dep}|`
                      + `${t.provider}|${first.id}|${n1 + 1}|${second.id}|t`);
         assert.equal(row(third.id).split('|')[6], String(n1 + 1 + second.output.length + 1));

         // retrieve gives the Response the client got; input_items the conversation.
         const got = await c.responses.retrieve(second.id);
         assert.equal(got.id, second.id);
         assert.deepEqual(got.output, second.output);
         assert.deepEqual(got.usage, second.usage);
         const items = await c.responses.inputItems.list(third.id, { order: 'asc' });
         assert.equal(items.data.length, n1 + 1 + second.output.length + 1);
         assert.equal(items.data.at(-1).content[0].text, more);
         assert.equal(items.data[0].content[0].text, question);
       });
  }

  it('the openai deployment that kept the previous turn left the model: another one gets the whole conversation',
     async () => {
       // A database model, changed between the turns through the admin API.
       const name = `s-live-${nonce(6)}`;
       const dep = (model) => ({ provider: 'openai', model, base_url: mock.baseURL,
                                 api_key: mock.apiKey });
       const created = await gw.fetch('/api/v1/admin/models',
                                      { body: { name, deployments: [dep('gpt-4o-mini')] } });
       assert.equal(created.status, 201, created.text);
       const pinned = created.json.deployments[0].id;
       const servedBy = async (id) => {
         const r = await gw.chat(`probe ${nonce()}`, { model: name });
         return r.status === 200 && r.headers.get('x-aigw-provider') === id;
       };
       assert.ok(await eventually(() => servedBy(pinned), 5000), 'the new model was never served');

       const c = client(keys.a.key);
       const question = `Name a colour ${nonce()}`;
       const { data: first, response: r1 } = await c.responses.create({
         model: name, input: question, instructions: 'One word.' }).withResponse();
       assert.equal(r1.headers.get('x-aigw-provider'), pinned);
       assert.equal(row(first.id).split('|')[3], pinned);

       const changed = await gw.fetch(`/api/v1/admin/models/${created.json.id}`,
                                      { method: 'PATCH', body: { deployments: [dep('gpt-4o')] } });
       assert.equal(changed.status, 200, changed.text);
       const moved = changed.json.deployments[0].id;
       assert.notEqual(moved, pinned);
       assert.ok(await eventually(() => servedBy(moved), 5000), 'the change never took effect');

       const more = `And another? ${nonce()}`;
       const { data: second, response: r2 } = await c.responses.create({
         model: name, previous_response_id: first.id, input: more }).withResponse();
       assert.equal(r2.headers.get('x-aigw-provider'), moved);
       assert.equal(second.output_text, `Mock reply to: ${more}`);
       // The new deployment never saw turn one: no previous_response_id,
       // the conversation rebuilt from the store instead.
       const seen = await mock.saw(more);
       assert.equal(seen.route, 'responses');
       assert.equal(seen.body.model, 'gpt-4o');
       assert.equal(seen.body.previous_response_id, undefined, JSON.stringify(seen.body));
       const input = JSON.stringify(seen.body.input);
       for (const needle of [question, first.output_text, more])
         assert.ok(input.includes(needle), `${needle} not in ${input}`);
       assert.equal(seen.body.input.length, 1 + first.output.length + 1, input);
       assert.equal(row(second.id).split('|').slice(3, 6).join('|'), `${moved}|openai|${first.id}`);

       // Then an Anthropic deployment alone: the OpenAI Responses the
       // store kept are translated with the rest.
       const claude = await gw.fetch(`/api/v1/admin/models/${created.json.id}`, {
         method: 'PATCH', body: { deployments: [{ provider: 'anthropic',
           model: 'claude-3-5-haiku-latest', base_url: mock.url, api_key: mock.apiKey }] } });
       assert.equal(claude.status, 200, claude.text);
       const anthropicDep = claude.json.deployments[0].id;
       assert.ok(await eventually(() => servedBy(anthropicDep), 5000), 'the change never took effect');
       const last = `One more? ${nonce()}`;
       const { data: third, response: r3 } = await c.responses.create({
         model: name, previous_response_id: second.id, input: last }).withResponse();
       assert.equal(r3.headers.get('x-aigw-provider'), anthropicDep);
       assert.equal(third.output_text, `Mock reply to: ${last}`);
       assert.equal(third.previous_response_id, second.id);
       const seen3 = await mock.saw(last);
       assert.equal(seen3.route, 'anthropic');
       const m = seen3.body.messages;
       assert.deepEqual(m.map((x) => x.role), ['user', 'assistant', 'user', 'assistant', 'user'],
                        JSON.stringify(m));
       const text = JSON.stringify(m);
       for (const needle of [question, first.output_text, more, second.output_text, last])
         assert.ok(text.includes(needle), `${needle} not in ${text}`);
     });

  it('the deployment that kept the previous turn fails: the retry on another gets the whole conversation',
     async () => {
       const gone = await startMock({ name: 'rstore-gone' });
       try {
         const name = `s-fail-${nonce(6)}`;
         const kept = { provider: 'openai', model: 'gpt-4o-mini', base_url: gone.baseURL,
                        api_key: gone.apiKey };
         const created = await gw.fetch('/api/v1/admin/models',
                                        { body: { name, deployments: [kept] } });
         assert.equal(created.status, 201, created.text);
         const pinned = created.json.deployments[0].id;
         const c = client(keys.a.key);
         const question = `Pick a number ${nonce()}`;
         const first = await eventually(
           () => c.responses.create({ model: name, input: question }).catch(() => null), 5000);
         assert.ok(first, 'the new model was never served');
         assert.equal(row(first.id).split('|')[3], pinned);
         // A second deployment joins; the first stays and then goes down.
         const changed = await gw.fetch(`/api/v1/admin/models/${created.json.id}`, {
           method: 'PATCH', body: { deployments: [{ id: pinned, ...kept }, { provider: 'openai',
             model: 'gpt-4o', base_url: mock.baseURL, api_key: mock.apiKey }] } });
         assert.equal(changed.status, 200, changed.text);
         const other = changed.json.deployments.find((d) => d.id !== pinned).id;
         assert.ok(await eventually(async () => {
           const r = await gw.chat(`probe ${nonce()}`, { model: name });
           return r.headers.get('x-aigw-provider') === other;
         }, 5000), 'the change never took effect');
         await gone.stop();

         const more = `And another? ${nonce()}`;
         const { data: second, response } = await c.responses.create({
           model: name, previous_response_id: first.id, input: more, stream: false,
         }).withResponse();
         assert.equal(response.headers.get('x-aigw-provider'), other);
         assert.equal(second.output_text, `Mock reply to: ${more}`);
         const seen = await mock.saw(more);
         assert.equal(seen.body.model, 'gpt-4o');
         assert.equal(seen.body.previous_response_id, undefined, JSON.stringify(seen.body));
         const input = JSON.stringify(seen.body.input);
         for (const needle of [question, first.output_text, more])
           assert.ok(input.includes(needle), `${needle} not in ${input}`);
       } finally {
         await gone.stop();
       }
     });

  it('store: false keeps nothing; a follow-up naming it is 404 naming previous_response_id', async () => {
    const c = client(keys.a.key);
    const kept = await c.responses.create({ model: 's-claude', input: `Forget me ${nonce()}`,
                                           store: false });
    assert.equal(kept.store, false);
    assert.equal(pg.sql(`SELECT count (*) FROM responses WHERE id = '${kept.id}'`).trim(), '0');
    await assert.rejects(
      c.responses.create({ model: 's-claude', input: 'again', previous_response_id: kept.id }),
      (err) => err.status === 404 && err.param === 'previous_response_id'
        && err.code === 'previous_response_not_found');
    const raw = await request(gw.url, `/v1/responses/${kept.id}`, { key: keys.a.key });
    assert.equal(raw.status, 404);
    assert.equal(raw.json.error.type, 'invalid_request_error');
    assert.ok(raw.json.error.request_id);
  });

  it('GET and DELETE for the caller\'s own; another tenant\'s id is 404', async () => {
    const a = client(keys.a.key);
    const b = client(keys.b.key);
    const mine = await a.responses.create({ model: 's-gemini', input: `Mine ${nonce()}` });
    // Tenant b: not readable, not deletable, not a previous response.
    for (const path of [`/v1/responses/${mine.id}`, `/v1/responses/${mine.id}/input_items`]) {
      const r = await request(gw.url, path, { key: keys.b.key });
      assert.equal(r.status, 404, `${path}: ${r.text}`);
    }
    await assert.rejects(b.responses.retrieve(mine.id), (err) => err.status === 404);
    await assert.rejects(b.responses.delete(mine.id), (err) => err.status === 404);
    await assert.rejects(
      b.responses.create({ model: 's-gemini', input: 'x', previous_response_id: mine.id }),
      (err) => err.status === 404 && err.param === 'previous_response_id');
    assert.equal(pg.sql(`SELECT count (*) FROM responses WHERE id = '${mine.id}'`).trim(), '1');
    // Tenant a: its own.
    const got = await a.responses.retrieve(mine.id);
    assert.equal(got.output_text, mine.output_text);
    const del = await request(gw.url, `/v1/responses/${mine.id}`,
                              { key: keys.a.key, method: 'DELETE' });
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.json, { id: mine.id, object: 'response', deleted: true });
    assert.equal(pg.sql(`SELECT count (*) FROM responses WHERE id = '${mine.id}'`).trim(), '0');
    await assert.rejects(a.responses.retrieve(mine.id), (err) => err.status === 404);
    // The SDK's delete on another of its own.
    const other = await a.responses.create({ model: 's-claude', input: `Other ${nonce()}` });
    await a.responses.delete(other.id);
    await assert.rejects(a.responses.delete(other.id), (err) => err.status === 404);
    // Methods and paths.
    const put = await request(gw.url, `/v1/responses/${other.id}`,
                              { key: keys.a.key, method: 'PUT', body: {} });
    assert.equal(put.status, 405);
    const bad = await request(gw.url, `/v1/responses/${other.id}/nothing`, { key: keys.a.key });
    assert.equal(bad.status, 404);
    const anon = await request(gw.url, `/v1/responses/${other.id}`);
    assert.equal(anon.status, 401);
  });

  it('expires after responses.ttl_s; the prune deletes the row', { timeout: 60000 }, async () => {
    const short = await startGateway({
      mock, name: 'rstore-ttl', env: { DATABASE_URL: pg.url },
      config: { responses: { ttl_s: 1, prune_s: 1 }, models: models(mock) },
    });
    try {
      const c = new OpenAI({ baseURL: short.baseURL, apiKey: keys.a.key, maxRetries: 0 });
      const r = await c.responses.create({ model: 's-claude', input: `Brief ${nonce()}` });
      assert.equal((await c.responses.retrieve(r.id)).id, r.id);
      // Stored with the 1 s TTL (not the default 30 days): it expires within
      // a second of now. (created_at is the Response's own, in whole seconds.)
      assert.equal(pg.sql(`SELECT expires_at <= now () + interval '1 second'
                           FROM responses WHERE id = '${r.id}'`).trim(), 't');
      let gone = false;
      for (let i = 0; i < 40 && !gone; i++) {
        await sleep(250);
        gone = pg.sql(`SELECT count (*) FROM responses WHERE id = '${r.id}'`).trim() === '0';
      }
      assert.ok(gone, 'the expired row was not pruned');
      await assert.rejects(c.responses.retrieve(r.id), (err) => err.status === 404);
      await assert.rejects(
        c.responses.create({ model: 's-claude', input: 'x', previous_response_id: r.id }),
        (err) => err.status === 404 && err.param === 'previous_response_id');
    } finally {
      await short.stop();
    }
  });
});
