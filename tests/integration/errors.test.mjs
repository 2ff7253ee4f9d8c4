// Everything a client can get wrong, and everything upstream can do wrong:
// each answer is an OpenAI-shaped error with the right status, type and code.
import {
  MODES, assert, assertDataPlaneHeaders, assertError, describe, eventually, intHeader, it, nonce,
  postChunked, request, useGateway,
} from './lib.mjs';

const MAX_BODY_BYTES = 65536;

// OpenAI's rate-limit headers (limits.md 5), which SDKs read: the request
// figures, and the reset as a duration (1s, 6m0s) matching X-RateLimit-Reset.
function assertOpenAIRequestHeaders(res, limit, remaining) {
  assert.equal(intHeader(res, 'x-ratelimit-limit-requests'), limit);
  assert.equal(intHeader(res, 'x-ratelimit-remaining-requests'), remaining);
  const reset = res.headers.get('x-ratelimit-reset-requests');
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(reset ?? '');
  assert.ok(m, `x-ratelimit-reset-requests ${reset} is not a duration`);
  const seconds = 3600 * Number(m[1] ?? 0) + 60 * Number(m[2] ?? 0) + Number(m[3]);
  assert.ok(seconds <= 60, `x-ratelimit-reset-requests ${reset} is beyond the minute window`);
  const until = intHeader(res, 'x-ratelimit-reset') - Date.now() / 1000;
  assert.ok(Math.abs(seconds - until) <= 2, `${reset} does not match X-RateLimit-Reset (${until.toFixed(1)} s away)`);
  assert.equal(res.headers.get('x-ratelimit-limit-tokens'), null, 'no tpm limit applies');
}

for (const mode of MODES) {
  describe(`errors (${mode})`, () => {
    const gw = useGateway({
      mode,
      config: {
        server: { max_body_bytes: MAX_BODY_BYTES, request_timeout_ms: 1500 },
        auth: {
          // A tenant per mode: rate-limit owners keep their counts in the
          // database the modes share (schemas/limits.md 6).
          keys: [{ name: 'limited', tenant: `team-limited-${mode}`, role: 'developer', rpm: 3 },
                 // Two in flight at most: its slot is what a settle gives back.
                 { name: 'settled', tenant: `team-settled-${mode}`, role: 'developer',
                   limits: { concurrency: 2 } }],
        },
      },
    });

    describe('401: authentication', () => {
      it('rejects a request without a key', async () => {
        const res = await gw.chat(`hi ${nonce()}`, { key: null });
        assertError(res, { status: 401, type: 'authentication_error', code: 'invalid_api_key' });
      });

      it('rejects an unknown key', async () => {
        const res = await gw.chat(`hi ${nonce()}`, { key: `sk-wrong-${nonce(16)}` });
        assertError(res, { status: 401, type: 'authentication_error', code: 'invalid_api_key' });
      });

      it('rejects an unknown key on /v1/models too', async () => {
        const res = await gw.fetch('/v1/models', { key: `sk-wrong-${nonce(16)}` });
        assertError(res, { status: 401, type: 'authentication_error', code: 'invalid_api_key' });
      });

      it('accepts the key in x-api-key', async () => {
        const res = await gw.chat(`hi ${nonce()}`, { key: null,
                                                     headers: { 'x-api-key': gw.masterKey } });
        assert.equal(res.status, 200, res.text);
      });

      it('does not echo the key it rejected', async () => {
        const wrong = `sk-wrong-${nonce(16)}`;
        const res = await gw.chat(`hi ${nonce()}`, { key: wrong });
        assert.equal(res.status, 401);
        assert.ok(!res.text.includes(wrong), 'the error message contains the key');
      });
    });

    describe('400: malformed requests', () => {
      it('rejects invalid JSON', async () => {
        const res = await gw.fetch('/v1/chat/completions', { body: '{"model": "gpt-4o-mini", ' });
        assertError(res, { status: 400, type: 'invalid_request_error', code: 'invalid_json' });
      });

      it('names a missing model', async () => {
        const res = await gw.fetch('/v1/chat/completions', {
          body: { messages: [{ role: 'user', content: 'hi' }] },
        });
        assertError(res, { status: 400, type: 'invalid_request_error', code: 'missing_field',
                           param: 'model' });
      });

      it('names missing messages', async () => {
        const res = await gw.fetch('/v1/chat/completions', { body: { model: 'gpt-4o-mini' } });
        assertError(res, { status: 400, type: 'invalid_request_error', code: 'missing_field',
                           param: 'messages' });
      });

      it('carries the client request id into the error body', async () => {
        const mine = `req-${nonce()}`;
        const res = await gw.fetch('/v1/chat/completions', {
          body: 'not json', headers: { 'x-request-id': mine },
        });
        const e = assertError(res, { status: 400, code: 'invalid_json' });
        assert.equal(e.request_id, mine);
      });
    });

    describe('404: unknown model and path', () => {
      it('rejects an unknown model', async () => {
        const res = await gw.chat(`hi ${nonce()}`, { model: 'no-such-model' });
        assertError(res, { status: 404, type: 'invalid_request_error', code: 'model_not_found',
                           param: 'model' });
      });

      it('rejects an unknown path', async () => {
        const res = await gw.fetch('/v1/no/such/path');
        assertError(res, { status: 404, code: 'not_found' });
      });
    });

    describe('413: body too large', () => {
      const big = () => JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY_BYTES * 3) }],
      });

      it('rejects a body over server.max_body_bytes', async () => {
        const res = await gw.fetch('/v1/chat/completions', { body: big() });
        assertError(res, { status: 413, code: 'request_too_large' });
      });

      it('rejects it with chunked transfer encoding too', async () => {
        const res = await postChunked(`${gw.url}/v1/chat/completions`, big(), {
          headers: { authorization: `Bearer ${gw.masterKey}` },
        });
        assertError(res, { status: 413, code: 'request_too_large' });
      });

      it('still serves after rejecting big bodies', async () => {
        const res = await gw.chat(`small ${nonce()}`);
        assert.equal(res.status, 200, res.text);
      });
    });

    describe('429: rate limit', () => {
      it('allows the key its rpm, then answers 429 with Retry-After', async () => {
        const key = gw.key('limited');
        for (let i = 1; i <= 3; i++) {
          const ok = await gw.chat(`request ${i} ${nonce()}`, { key });
          assert.equal(ok.status, 200, `request ${i}: ${ok.text}`);
          assertDataPlaneHeaders(ok);
          assert.equal(intHeader(ok, 'x-ratelimit-limit'), 3);
          assert.equal(intHeader(ok, 'x-ratelimit-remaining'), 3 - i);
          assertOpenAIRequestHeaders(ok, 3, 3 - i);
        }
        const res = await gw.chat(`one too many ${nonce()}`, { key });
        assertError(res, { status: 429, type: 'rate_limit_error', code: 'rpm', param: 'key' });
        assert.ok(intHeader(res, 'retry-after') >= 1, 'Retry-After < 1');
        assert.ok(intHeader(res, 'retry-after') <= 61, 'Retry-After beyond the minute window');
        assert.equal(intHeader(res, 'x-ratelimit-limit'), 3);
        assert.equal(intHeader(res, 'x-ratelimit-remaining'), 0);
        assert.ok(intHeader(res, 'x-ratelimit-reset') > Date.now() / 1000 - 1);
        assertOpenAIRequestHeaders(res, 3, 0);
      });

      // The edge settles every reservation after the answer (limits.md 3):
      // the concurrency slot is taken while the request runs and comes
      // back with the settle, as the owner reports it (GET rate-limits).
      it('gives a request its reservation back once it is answered', async () => {
        const key = gw.key('settled');
        const inFlight = async () => {
          const limits = await gw.fetch('/api/v1/admin/rate-limits', { key });
          assert.equal(limits.status, 200, limits.text);
          const concurrency = (limits.json.key?.limits ?? []).find((l) => l.kind === 'concurrency');
          assert.ok(concurrency, `no concurrency limit reported: ${limits.text}`);
          assert.equal(concurrency.limit, 2);
          return concurrency.used;
        };
        assert.equal(await inFlight(), 0, 'nothing in flight yet');
        const slow = gw.chat(`settle ${nonce()} mock:latency=1000`, { key });
        assert.ok(await eventually(async () => (await inFlight()) === 1, 900, 50),
                  'the running request does not hold a slot');
        const res = await slow;
        assert.equal(res.status, 200, res.text);
        assert.equal(intHeader(res, 'x-ratelimit-limit-requests'), 2, 'concurrency binds');
        assert.ok(await eventually(async () => (await inFlight()) === 0, 3000, 50),
                  'the slot is not released by the settle');
      });

      it('limits each key on its own', async () => {
        const res = await gw.chat(`master is not limited ${nonce()}`);
        assert.equal(res.status, 200, res.text);
      });
    });

    describe('upstream failures', () => {
      it('answers 502 when the provider answers an error', async () => {
        const res = await gw.chat(`fail please ${nonce()} mock:status=500`);
        assertError(res, { status: 502, type: 'upstream_error' });
      });

      it('answers 504 when the provider does not answer within the deadline', async () => {
        const res = await gw.chat(`hang please ${nonce()} mock:hang`, { timeoutMs: 15000 });
        assertError(res, { status: 504, type: 'timeout_error' });
        assert.ok(res.ms < 3500, `504 took ${res.ms.toFixed(0)} ms (deadline 1500 ms)`);
      });

      it('still serves after upstream failures', async () => {
        const res = await gw.chat(`recovered ${nonce()}`);
        assert.equal(res.status, 200, res.text);
      });

      it('answers /healthz without authentication', async () => {
        const res = await request(gw.url, '/healthz');
        assert.equal(res.status, 200, res.text);
      });
    });
  });
}
