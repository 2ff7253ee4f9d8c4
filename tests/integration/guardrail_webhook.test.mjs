// The webhook guardrail: the gateway POSTs a request's texts to a service of
// the operator's own (here a small Node HTTP server) from the guardrail
// stage's loop, and acts on its answer: allow, block (the upstream sees
// nothing), redact (the upstream sees the webhook's texts), flag; a webhook
// that times out, answers 500 or garbage, or is down fails open (the answer
// comes, the verdict says webhook:error) or closed (503, the upstream sees
// nothing), as its policy says; the built-in detectors run first and a
// block there skips the call; a client that leaves aborts the call.
import fs from 'node:fs';
import http from 'node:http';
import { MODES, after, assert, assertError, before, describe, eventually, freePort, it, nonce,
         sleep, startGateway, startMock } from './lib.mjs';

const KEY = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const TOKEN = `tok-${nonce(12)}`;

// The webhook: answers by a marker in the joined text, and keeps every
// request it read (body, headers) and whether its client hung up early.
async function startWebhook() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', async () => {
      const entry = { path: req.url, headers: req.headers, body: JSON.parse(data),
                      closedEarly: false, answered: false };
      seen.push(entry);
      res.on('close', () => { if (!entry.answered) entry.closedEarly = true; });
      const text = entry.body.text;
      const answer = (status, body) => {
        entry.answered = true;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      if (text.includes('WH-HANG')) return;             // answers never
      if (text.includes('WH-SLOW')) {
        await sleep(3000);
        if (!res.destroyed) answer(200, { allowed: true });
        return;
      }
      if (text.includes('WH-500')) return answer(500, { allowed: true });
      if (text.includes('WH-GARBAGE')) return answer(200, 'this is not json');
      if (text.includes('WH-BADRULE')) return answer(200, { allowed: false, rule: 'has: colon' });
      if (text.includes('WH-BLOCK')) return answer(200, { allowed: false, rule: 'no-blocks' });
      if (text.includes('WH-REDACT')) {
        return answer(200, { allowed: false, rule: 'confidential',
                             texts: entry.body.texts.map((t) => t.replaceAll(/confidential-\w+/g,
                                                                             '[SECRET]')) });
      }
      return answer(200, { allowed: true, reason: 'members the gateway does not know are fine' });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/check`,
    seen,
    // The request whose text holds NEEDLE (the last one), or undefined.
    saw: (needle) => seen.filter((e) => e.body.text.includes(needle)).at(-1),
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// A webhook guardrail of ACTION calling URL, plus the built-in secrets
// check, bound to MODEL.
function policy(model, url, { action = 'block', fail = 'closed', timeoutMs = 1500,
                              headers } = {}) {
  return {
    bindings: { models: [model] },
    guardrails: [
      { detector: 'secrets', action: 'block' },
      { detector: 'webhook', action, on: 'input', url, fail, timeout_ms: timeoutMs,
        ...(headers ? { headers } : {}) },
    ],
  };
}

for (const mode of MODES) {
  describe(`the webhook guardrail (${mode})`, () => {
    let mock;
    let hook;
    let gw;
    before(async () => {
      mock = await startMock({ name: `${mode}-webhook-mock` });
      hook = await startWebhook();
      const down = `http://127.0.0.1:${await freePort()}/nobody-here`;
      const models = ['m-block', 'm-redact', 'm-flag', 'm-open', 'm-down-open', 'm-down-closed',
                      'm-hang'];
      gw = await startGateway({
        mode, mock, name: `${mode}-webhook`,
        // The token reaches the policy as a reference ($${...} keeps the
        // config loader from expanding it), resolved when the policy compiles.
        env: { WEBHOOK_TOKEN: TOKEN },
        config: {
          cache: { enabled: false },
          guardrail: {
            policies: {
              hook_block: policy('m-block', hook.url,
                                 { headers: { Authorization: 'Bearer $${WEBHOOK_TOKEN}',
                                              'X-Team': 'blue' } }),
              hook_redact: policy('m-redact', hook.url, { action: 'redact' }),
              hook_flag: policy('m-flag', hook.url, { action: 'flag' }),
              hook_open: policy('m-open', hook.url, { fail: 'open', timeoutMs: 300 }),
              hook_down_open: policy('m-down-open', down, { fail: 'open' }),
              hook_down_closed: policy('m-down-closed', down),
              hook_hang: policy('m-hang', hook.url, { timeoutMs: 10000 }),
            },
          },
          models: [{ name: 'gpt-4o-mini', provider: 'openai' }, ...models.map((name) => ({
            name, deployments: [{ id: `dep-${name}`, provider: 'openai_compatible',
                                  model: 'gpt-4o-mini', base_url: mock.baseURL,
                                  api_key: mock.apiKey }],
          }))],
        },
      });
    }, { timeout: 90000 });
    after(async () => {
      await gw?.stop();
      await hook?.stop();
      await mock?.stop();
    });

    // What the mock received whose body mentions NEEDLE (the last one).
    async function upstreamSaw(needle) {
      return (await mock.requests(needle)).at(-1);
    }

    it('allowed: the webhook gets the texts, names and headers; the upstream gets the request',
       async () => {
         const tag = nonce();
         const res = await gw.fetch('/v1/chat/completions', {
           headers: { 'x-request-id': `req-${tag}` },
           body: { model: 'm-block', messages: [
             { role: 'system', content: 'be brief' },
             { role: 'user', content: `hello ${tag}` }] },
         });
         assert.equal(res.status, 200, res.text);
         assert.equal(res.headers.get('x-aigw-guardrail'), null);
         const call = hook.saw(tag);
         assert.ok(call, 'the webhook was not called');
         assert.equal(call.path, '/check');
         assert.deepEqual(call.body.texts, ['be brief', `hello ${tag}`]);
         assert.equal(call.body.text, `be brief\n\nhello ${tag}\n\n`);
         assert.equal(call.body.direction, 'input');
         assert.equal(call.body.policy, 'hook_block');
         assert.equal(call.body.model, 'm-block');
         assert.equal(call.body.request_id, `req-${tag}`);
         assert.ok('tenant_id' in call.body);
         assert.equal(call.headers.authorization, `Bearer ${TOKEN}`);
         assert.equal(call.headers['x-team'], 'blue');
         assert.equal(call.headers['content-type'], 'application/json');
         assert.ok(await upstreamSaw(tag), 'the upstream never saw the request');
       });

    it('refused with block: 400 naming the webhook and its rule; the upstream sees nothing',
       async () => {
         const tag = nonce();
         const res = await gw.chat(`WH-BLOCK ${tag}`, { model: 'm-block' });
         assertError(res, { status: 400, type: 'guardrail_error', code: 'webhook',
                            message: /"webhook": rule "no-blocks".*policy "hook_block", input/ });
         assert.equal(res.headers.get('x-aigw-guardrail'), 'block:webhook:no-blocks');
         assert.ok(hook.saw(tag));
         assert.equal(await upstreamSaw(tag), undefined, 'a blocked request reached the upstream');
       });

    it('an Anthropic client is blocked the same way, its system prompt checked too', async () => {
      const tag = nonce();
      const res = await gw.fetch('/v1/messages', {
        body: { model: 'm-block', max_tokens: 16, system: `WH-BLOCK ${tag}`,
                messages: [{ role: 'user', content: 'hi' }] },
      });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.error.type, 'guardrail_error');
      assert.match(res.json.error.message, /no-blocks/);
      assert.equal(await upstreamSaw(tag), undefined);
    });

    it('a built-in block comes first and skips the webhook call', async () => {
      const tag = nonce();
      const res = await gw.chat(`use ${KEY} WH-REDACT ${tag}`, { model: 'm-block' });
      assertError(res, { status: 400, type: 'guardrail_error', code: 'secrets' });
      assert.equal(hook.saw(tag), undefined, 'the webhook was called after a block');
      assert.ok(!hook.seen.some((e) => JSON.stringify(e.body).includes(KEY)));
      assert.equal(await upstreamSaw(tag), undefined);
    });

    it('refused with redact: the upstream sees the webhook\'s texts', async () => {
      const tag = nonce();
      const res = await gw.chat(`WH-REDACT keep confidential-${tag} out ${tag}x`,
                                { model: 'm-redact' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-aigw-guardrail'), 'redact:webhook:confidential');
      const seen = await upstreamSaw(`${tag}x`);
      assert.ok(seen, 'the upstream never saw the request');
      const sent = JSON.stringify(seen.body);
      assert.ok(sent.includes(`keep [SECRET] out ${tag}x`), sent);
      assert.ok(!sent.includes(`confidential-${tag}`), sent);
    });

    it('refused with flag: passed unchanged, the verdict recorded', async () => {
      const tag = nonce();
      const res = await gw.chat(`WH-BLOCK ${tag}`, { model: 'm-flag' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-aigw-guardrail'), 'flag:webhook:no-blocks');
      const seen = await upstreamSaw(tag);
      assert.ok(seen && JSON.stringify(seen.body).includes(`WH-BLOCK ${tag}`));
    });

    it('timing out, fail open: answered, webhook:error recorded', async () => {
      const tag = nonce();
      const res = await gw.chat(`WH-SLOW ${tag}`, { model: 'm-open' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-aigw-guardrail'), 'flag:webhook:error');
      assert.ok(hook.saw(tag), 'the webhook was not called');
      assert.ok(await upstreamSaw(tag));
    });

    it('timing out, fail closed: 503 guardrail_unavailable; the upstream sees nothing',
       async () => {
         const tag = nonce();
         const res = await gw.chat(`WH-SLOW ${tag}`, { model: 'm-block' });
         assertError(res, { status: 503, type: 'service_unavailable',
                            code: 'guardrail_unavailable' });
         assert.equal(res.headers.get('x-aigw-guardrail'), 'block:webhook:error');
         assert.ok(hook.saw(tag));
         assert.equal(await upstreamSaw(tag), undefined);
       });

    it('a 500, an answer that is not JSON or a bad rule fail as the policy says', async () => {
      for (const marker of ['WH-500', 'WH-GARBAGE', 'WH-BADRULE']) {
        const tag = nonce();
        const closed = await gw.chat(`${marker} ${tag}`, { model: 'm-block' });
        assertError(closed, { status: 503, code: 'guardrail_unavailable' });
        assert.equal(await upstreamSaw(tag), undefined);
        const open = await gw.chat(`${marker} ${tag}y`, { model: 'm-open' });
        assert.equal(open.status, 200, open.text);
        assert.equal(open.headers.get('x-aigw-guardrail'), 'flag:webhook:error');
      }
    });

    it('a webhook that is down fails open or closed', async () => {
      const tag = nonce();
      const open = await gw.chat(`hello ${tag}`, { model: 'm-down-open' });
      assert.equal(open.status, 200, open.text);
      assert.equal(open.headers.get('x-aigw-guardrail'), 'flag:webhook:error');
      assert.ok(await upstreamSaw(tag));
      const closed = await gw.chat(`hello ${tag}z`, { model: 'm-down-closed' });
      assertError(closed, { status: 503, type: 'service_unavailable',
                            code: 'guardrail_unavailable' });
      assert.equal(await upstreamSaw(`${tag}z`), undefined);
    });

    it('verdicts reach the metrics per guardrail and rule', async () => {
      const res = await gw.fetch('/metrics');
      assert.equal(res.status, 200);
      for (const rule of ['no-blocks', 'error', 'confidential']) {
        assert.match(res.text, new RegExp(
          `aigw_guardrail_triggers_total\\{[^}]*guardrail="webhook"[^}]*rule="${rule}"[^}]*\\} [1-9]`));
      }
    });

    it('requests without a webhook policy are untouched', async () => {
      const tag = nonce();
      const before = hook.seen.length;
      const res = await gw.chat(`plain ${tag}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(hook.seen.length, before);
    });

    // Across processes the edge's CANCEL reaches every guardrail worker
    // (the stage is replay-safe, so any of them may hold the request).
    it('a client that leaves aborts the webhook call', async () => {
      const tag = nonce();
      const ac = new AbortController();
      const pending = fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.masterKey}` },
        body: JSON.stringify({ model: 'm-hang',
                               messages: [{ role: 'user', content: `WH-HANG ${tag}` }] }),
        signal: ac.signal,
      }).catch(() => null);
      assert.ok(await eventually(async () => hook.saw(tag), 5000, 50), 'the webhook was not called');
      ac.abort();
      await pending;
      // The call's own timeout is 10 s: closed within 5 s is the abort.
      assert.ok(await eventually(async () => hook.saw(tag).closedEarly, 5000, 50),
                'the webhook call outlived its client');
      assert.equal(await upstreamSaw(tag), undefined);
    });

    it('the header\'s token never reaches a log', async () => {
      for (const p of gw.procs) {
        const text = fs.readFileSync(p.logFile, 'utf8');
        assert.ok(!text.includes(TOKEN), `${p.name}'s log holds the token`);
      }
    });
  });
}
