// HTTP hygiene at the edge: every GET route answers HEAD with the same
// status and headers and no body (the SPEC), so keep-alive framing holds;
// 405 answers carry Allow.
//
// Exact bytes need raw sockets (node:net): fetch and node:http would fix the
// framing up. The edge is the same code in `aigw run` and `aigw edge`, so
// this file runs only `aigw run`.
import net from 'node:net';
import { assert, describe, it, nonce, useGateway } from './lib.mjs';

const ANSWER_WAIT_MS = 10000;      // longest wait for an answer before failing
const QUIET_MS = 300;              // no more bytes this long: the server said all it will

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client

// Parse every complete response in BUF (a Buffer). METHODS: the request
// method of each response in order (a HEAD's answer has no body whatever its
// Content-Length says). Returns { responses, rest } where rest is the bytes
// after the last complete response.
function parseResponses(buf, methods = []) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
    assert.ok(m, `not a status line: ${JSON.stringify(lines[0])}`);
    const headers = new Map();
    const names = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      assert.ok(colon > 0, `not a header line: ${JSON.stringify(line)}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      names.push(name);
      headers.set(name, line.slice(colon + 1).trim());
    }
    const status = Number(m[1]);
    const method = methods[responses.length] || 'GET';
    let start = end + 4;
    let body = Buffer.alloc(0);
    if (method !== 'HEAD' && status !== 204 && status !== 304) {
      if (headers.has('content-length')) {
        const len = Number(headers.get('content-length'));
        if (buf.length < start + len) break;          // body not all here yet
        body = buf.subarray(start, start + len);
        start += len;
      } else if (/chunked/i.test(headers.get('transfer-encoding') || '')) {
        const parts = [];
        let p = start;
        let complete = false;
        for (;;) {
          const eol = buf.indexOf('\r\n', p);
          if (eol < 0) break;
          const size = parseInt(buf.subarray(p, eol).toString('latin1'), 16);
          if (buf.length < eol + 2 + size + 2) break;
          parts.push(buf.subarray(eol + 2, eol + 2 + size));
          p = eol + 2 + size + 2;
          if (size === 0) { complete = true; break; }
        }
        if (!complete) break;
        body = Buffer.concat(parts);
        start = p;
      } else {
        body = buf.subarray(start);                   // until close
        start = buf.length;
      }
    }
    const text = body.toString('utf8');
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    responses.push({ status, reason: m[2], headers, names, body, text, json, method });
    off = start;
  }
  return { responses, rest: buf.subarray(off) };
}

// Open a connection to PORT, send PIECES (strings or Buffers; a number
// between them is a pause in ms), then read until the server closes, or
// until EXPECT responses are complete and QUIET_MS pass with no more bytes,
// or WAIT_MS pass. HALF_CLOSE: shut our side down after the last piece.
// Returns { responses, rest, closed (the server closed), ms (from the last
// piece sent to the first byte back) }.
function exchange(port, pieces, { methods = [], expect = 1, halfClose = false,
                                  waitMs = ANSWER_WAIT_MS } = {}) {
  if (!Array.isArray(pieces)) pieces = [pieces];
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let closed = false;
    let settled = false;
    let quiet = null;
    let sentAt = 0;
    let firstByteAt = 0;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      try {
        const { responses, rest } = parseResponses(Buffer.concat(chunks), methods);
        resolve({ responses, rest, closed, ms: firstByteAt ? firstByteAt - sentAt : null });
      } catch (err) {
        reject(err);
      }
    };
    const deadline = setTimeout(finish, waitMs);
    socket.on('data', (d) => {
      if (!firstByteAt) firstByteAt = Date.now();
      chunks.push(d);
      clearTimeout(quiet);
      let done = false;
      try { done = parseResponses(Buffer.concat(chunks), methods).responses.length >= expect; }
      catch { /* not parseable yet */ }
      if (done) quiet = setTimeout(finish, QUIET_MS);
    });
    socket.on('end', () => { closed = true; finish(); });
    socket.on('close', () => { closed = true; finish(); });
    socket.on('error', () => { closed = true; finish(); });
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (typeof piece === 'number') await new Promise((r) => setTimeout(r, piece));
        else if (!socket.destroyed) socket.write(piece);
      }
      sentAt = Date.now();
      if (halfClose && !socket.destroyed) socket.end();
    });
  });
}

// The only response of R; fails when there is none or more than one.
function only(r) {
  assert.equal(r.responses.length, 1,
               `expected one response, got ${r.responses.length}: ` +
               r.responses.map((x) => `${x.status} ${x.text.slice(0, 120)}`).join(' | '));
  return r.responses[0];
}

// RES is a JSON error in the SPEC's shape: STATUS, CODE, PARAM (when given),
// a message, request_id equal to the X-Request-ID header. CLOSE: whether
// it says Connection: close. Returns the error object.
function assertJsonError(res, { status, code, param, close }) {
  const where = `${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, `status: ${where}`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/,
               `Content-Type: ${where}`);
  const rid = res.headers.get('x-request-id');
  assert.ok(rid, `X-Request-ID missing: ${where}`);
  assert.ok(res.json && res.json.error, `not a JSON error: ${where}`);
  const e = res.json.error;
  assert.equal(typeof e.message, 'string', `error.message: ${where}`);
  assert.ok(e.message.length > 0, `empty error.message: ${where}`);
  assert.equal(typeof e.type, 'string', `error.type: ${where}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${where}`);
  assert.ok('param' in e, `error.param missing: ${where}`);
  if (param !== undefined) assert.equal(e.param, param, `error.param: ${where}`);
  assert.equal(e.request_id, rid, `error.request_id vs X-Request-ID: ${where}`);
  assert.equal(Number(res.headers.get('content-length')), res.body.length, 'Content-Length');
  if (close !== undefined) {
    assert.equal((res.headers.get('connection') || '').toLowerCase() === 'close', close,
                 `Connection: ${res.headers.get('connection')}`);
  }
  return e;
}

// A refused request whose framing cannot be trusted: one JSON error, the
// Connection: close header, the server closed, and nothing else came back.
function assertRefusedAndClosed(r, expected) {
  const res = only(r);
  assertJsonError(res, { ...expected, close: true });
  assert.ok(r.closed, 'the server kept the connection open');
  assert.equal(r.rest.length, 0, `bytes after the answer: ${r.rest.toString('latin1')}`);
  return res;
}

// ---------------------------------------------------------------------------

describe('HTTP hygiene', () => {
  const gw = useGateway({
    mode: 'run',
    name: 'hygiene',
  });
  const chatBody = (content = `hi ${nonce()}`, model = 'gpt-4o-mini') =>
    JSON.stringify({ model, messages: [{ role: 'user', content }] });
  const auth = () => `Authorization: Bearer ${gw.masterKey}\r\n`;
  const post = (extra, body = '') =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: aigw\r\n${auth()}` +
    `Content-Type: application/json\r\n${extra}\r\n${body}`;

  describe('3. HEAD', () => {
    it('answers HEAD /healthz with the headers only, and the connection goes on', async () => {
      const r = await exchange(gw.port, 'HEAD /healthz HTTP/1.1\r\nHost: aigw\r\n\r\n' +
                                        'GET /healthz HTTP/1.1\r\nHost: aigw\r\n\r\n',
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2, `answers: ${r.responses.length}`);
      const [head, get] = r.responses;
      assert.equal(head.status, 200);
      assert.ok(head.headers.get('x-request-id'), 'X-Request-ID missing on HEAD');
      assert.match(head.headers.get('content-type') || '', /application\/json/);
      assert.equal(head.headers.get('content-length'), get.headers.get('content-length'));
      assert.equal(get.status, 200);
      assert.deepEqual(get.json, { status: 'ok' }, `the HEAD sent a body: ${get.text}`);
      assert.equal(r.rest.length, 0, `stray bytes: ${r.rest.toString('latin1')}`);
    });

    for (const path of ['/readyz', '/metrics']) {
      it(`answers HEAD ${path} like its GET, without a body`, async () => {
        const r = await exchange(gw.port, `HEAD ${path} HTTP/1.1\r\nHost: aigw\r\n\r\n` +
                                          'GET /healthz HTTP/1.1\r\nHost: aigw\r\n\r\n',
                                 { methods: ['HEAD', 'GET'], expect: 2 });
        assert.equal(r.responses.length, 2);
        assert.equal(r.responses[0].status, 200);
        assert.ok(Number(r.responses[0].headers.get('content-length')) > 0);
        assert.deepEqual(r.responses[1].json, { status: 'ok' }, 'the HEAD sent a body');
      });
    }

    it('answers HEAD /v1/models with GET\'s status and headers, no body', async () => {
      const ask = (method) => `${method} /v1/models HTTP/1.1\r\nHost: aigw\r\n${auth()}\r\n`;
      const r = await exchange(gw.port, ask('HEAD') + ask('GET'),
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2);
      const [head, get] = r.responses;
      assert.equal(get.status, 200, get.text);
      assert.equal(get.json?.object, 'list', `the HEAD sent a body: ${get.text.slice(0, 200)}`);
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(get.body.length),
                   'HEAD Content-Length is not that of the GET body');
      for (const name of ['content-type', 'x-ratelimit-limit', 'x-request-id']) {
        assert.ok(head.headers.has(name), `HEAD lacks ${name}`);
      }
    });

    it('answers HEAD /api/v1/admin/auth/me 200 with the headers only', async () => {
      const me = (method, key) => `${method} /api/v1/admin/auth/me HTTP/1.1\r\nHost: aigw\r\n` +
                                  `Authorization: Bearer ${key}\r\n\r\n`;
      const r = await exchange(gw.port, me('HEAD', gw.masterKey) + me('GET', gw.masterKey),
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2);
      const [head, get] = r.responses;
      assert.equal(get.status, 200, get.text);
      assert.ok(get.json?.principal, `the HEAD sent a body: ${get.text.slice(0, 200)}`);
      assert.equal(head.status, 200);
      assert.ok(head.headers.get('x-request-id'));
      assert.match(head.headers.get('content-type') || '', /application\/json/);
      assert.equal(head.headers.get('content-length'), String(get.body.length));
    });

    it('answers HEAD auth/me with a bad key 401, headers only', async () => {
      const me = (method) => `${method} /api/v1/admin/auth/me HTTP/1.1\r\nHost: aigw\r\n` +
                             `Authorization: Bearer sk-wrong-${nonce(16)}\r\n\r\n`;
      const r = await exchange(gw.port, me('HEAD') + me('GET'),
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2);
      const [head, get] = r.responses;
      assertJsonError(get, { status: 401 });
      assert.equal(head.status, 401);
      assert.ok(head.headers.get('x-request-id'));
      assert.equal(head.headers.get('content-length'), String(get.body.length));
    });

    it('answers HEAD on a POST route 405 with Allow: POST and no body', async () => {
      const r = await exchange(gw.port,
                               'HEAD /v1/chat/completions HTTP/1.1\r\nHost: aigw\r\n' +
                               `${auth()}\r\nGET /healthz HTTP/1.1\r\nHost: aigw\r\n\r\n`,
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2);
      const [head, next] = r.responses;
      assert.equal(head.status, 405);
      assert.equal(head.headers.get('allow'), 'POST');
      assert.ok(head.headers.get('x-request-id'));
      assert.deepEqual(next.json, { status: 'ok' }, 'the HEAD sent a body');
    });

    it('answers HEAD on an unknown path 404 without a body', async () => {
      const r = await exchange(gw.port, 'HEAD /no/such/path HTTP/1.1\r\nHost: aigw\r\n\r\n' +
                                        'GET /healthz HTTP/1.1\r\nHost: aigw\r\n\r\n',
                               { methods: ['HEAD', 'GET'], expect: 2 });
      assert.equal(r.responses.length, 2);
      assert.equal(r.responses[0].status, 404);
      assert.ok(r.responses[0].headers.get('x-request-id'));
      assert.deepEqual(r.responses[1].json, { status: 'ok' }, 'the HEAD sent a body');
    });
  });

  describe('405 carries Allow', () => {
    for (const [method, path, allow] of [['GET', '/v1/chat/completions', 'POST'],
                                         ['PUT', '/v1/embeddings', 'POST'],
                                         ['POST', '/v1/models', 'GET, HEAD'],
                                         ['DELETE', '/v1/models', 'GET, HEAD'],
                                         ['POST', '/healthz', 'GET, HEAD'],
                                         ['POST', '/metrics', 'GET, HEAD']]) {
      it(`${method} ${path}: 405, Allow: ${allow}`, async () => {
        const r = await exchange(gw.port, `${method} ${path} HTTP/1.1\r\nHost: aigw\r\n` +
                                          `${auth()}Content-Length: 0\r\n\r\n`);
        const res = only(r);
        assertJsonError(res, { status: 405, code: 'method_not_allowed' });
        assert.equal(res.headers.get('allow'), allow);
      });
    }
  });

});
