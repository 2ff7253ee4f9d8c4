// Traces and JSON logs (issue 10): an OTLP/HTTP receiver in the test gets
// one trace per request, a span per stage and per upstream attempt, the
// client's traceparent honoured; log_format json writes one JSON line per
// request. In one process and split into processes.
import fs from 'node:fs';
import http from 'node:http';
import {
  assert, after, before, describe, eventually, it, nonce, request, sleep, startGateway,
} from './lib.mjs';

// A collector: keeps every span POSTed to /v1/traces (OTLP/JSON).
async function startCollector() {
  const spans = [];
  const bodies = [];
  let fail = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || fail) {
        res.writeHead(fail ? 503 : 404).end();
        return;
      }
      bodies.push({ type: req.headers['content-type'], body });
      const doc = JSON.parse(body);
      for (const rs of doc.resourceSpans || []) {
        const service = (rs.resource?.attributes || [])
          .find((a) => a.key === 'service.name')?.value?.stringValue;
        for (const ss of rs.scopeSpans || []) {
          for (const s of ss.spans || []) spans.push({ ...s, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    spans,
    bodies,
    setFail(v) { fail = v; },
    trace(traceId) { return spans.filter((s) => s.traceId === traceId); },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const attr = (span, key) => {
  const a = (span.attributes || []).find((x) => x.key === key);
  if (!a) return undefined;
  const v = a.value;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue);
};

const hex = (n) => nonce(n).replace(/[^0-9a-f]/g, '').padEnd(n * 2, 'a').slice(0, n * 2);
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

for (const mode of ['run', 'split']) {
  describe(`traces and JSON logs (${mode})`, () => {
    let collector, gw;
    before(async () => {
      collector = await startCollector();
      gw = await startGateway({
        mode,
        name: `traces-${mode}`,
        config: {
          tracing: { batch_ms: 50 },
          log_format: 'json',
          guardrail: { deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }] },
          auth: { keys: [{ name: 'dev', tenant: 'team-t', role: 'developer' }] },
        },
        // The standard variables, as a user would set them.
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: `aigw-${mode}` },
      });
    }, { timeout: 90000 });
    after(async () => {
      if (gw) await gw.stop();
      if (collector) await collector.close();
    });

    it('exports one trace per request: the request, a span per stage, the upstream attempt', async () => {
      const traceId = hex(16);
      const clientSpan = hex(8);
      const res = await gw.chat(`trace me ${nonce()}`, {
        key: gw.key('dev'),
        headers: { traceparent: `00-${traceId}-${clientSpan}-01` },
      });
      assert.equal(res.status, 200, res.text);
      let spans = [];
      await eventually(() => (spans = collector.trace(traceId)).length >= 7, 15000);
      const server = spans.filter((s) => s.kind === 2);
      assert.equal(server.length, 1, JSON.stringify(spans));
      const root = server[0];
      assert.equal(root.parentSpanId, clientSpan);
      assert.match(root.spanId, SPAN_ID);
      assert.equal(root.name, 'chat gpt-4o-mini');
      assert.equal(root.service, `aigw-${mode}`);
      assert.equal(attr(root, 'gen_ai.operation.name'), 'chat');
      assert.equal(attr(root, 'gen_ai.request.model'), 'gpt-4o-mini');
      assert.equal(attr(root, 'gen_ai.system'), 'openai');
      assert.equal(attr(root, 'gen_ai.usage.input_tokens'), res.json.usage.prompt_tokens);
      assert.equal(attr(root, 'gen_ai.usage.output_tokens'), res.json.usage.completion_tokens);
      assert.equal(attr(root, 'http.response.status_code'), 200);
      assert.equal(attr(root, 'aigw.request_id'), res.headers.get('x-request-id'));
      assert.equal(attr(root, 'aigw.tenant'), 'team-t');
      assert.equal(attr(root, 'aigw.guardrail'), 'pass');
      assert.ok(BigInt(root.endTimeUnixNano) > BigInt(root.startTimeUnixNano));

      const stages = spans.filter((s) => s.kind === 1);
      assert.deepEqual(stages.map((s) => attr(s, 'aigw.stage')).sort(),
                       ['auth', 'cache', 'guardrail', 'provider', 'ratelimit']);
      for (const s of stages) {
        assert.equal(s.parentSpanId, root.spanId, `${s.name} hangs off the request`);
        assert.ok(BigInt(s.startTimeUnixNano) >= BigInt(root.startTimeUnixNano) - 2000000n,
                  `${s.name} starts within the request`);
      }
      const provider = stages.find((s) => attr(s, 'aigw.stage') === 'provider');
      const attempts = spans.filter((s) => s.kind === 3);
      assert.equal(attempts.length, 1);
      assert.equal(attempts[0].parentSpanId, provider.spanId);
      assert.equal(attr(attempts[0], 'http.response.status_code'), 200);
      assert.equal(attr(attempts[0], 'aigw.deployment') !== undefined, true);
      // Every span of the request shares its trace; none came twice.
      assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length);
    });

    it('passes the trace to the upstream as the attempt\'s parent', async () => {
      const traceId = hex(16);
      await gw.mock.reset();
      const res = await gw.chat(`upstream trace ${nonce()}`, {
        headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      assert.equal(res.status, 200, res.text);
      const seen = await request(gw.mock.url, '/mock/requests');
      assert.equal(seen.status, 200);
      let spans = [];
      await eventually(() => (spans = collector.trace(traceId)).some((s) => s.kind === 3), 15000);
      const attempt = spans.find((s) => s.kind === 3);
      const got = seen.json.map((r) => r.headers?.traceparent).filter(Boolean);
      assert.deepEqual(got, [`00-${traceId}-${attempt.spanId}-01`]);
    });

    it('starts a trace when the client sends none, or a malformed one', async () => {
      const before = new Set(collector.spans.map((s) => s.traceId));
      for (const tp of [undefined, '00-zz-11-01', `00-${'0'.repeat(32)}-${hex(8)}-01`]) {
        const headers = tp ? { traceparent: tp, 'x-request-id': `tp-${nonce()}` }
                           : { 'x-request-id': `tp-${nonce()}` };
        const res = await gw.chat(`new trace ${nonce()}`, { headers });
        assert.equal(res.status, 200);
        let root;
        await eventually(() => (root = collector.spans.find(
          (s) => s.kind === 2 && attr(s, 'aigw.request_id') === headers['x-request-id'])), 15000);
        assert.match(root.traceId, TRACE_ID);
        assert.ok(!before.has(root.traceId), 'a new trace id');
        assert.equal(root.parentSpanId || '', '');
      }
    });

    it('honours the client\'s decision not to sample', async () => {
      const traceId = hex(16);
      const res = await gw.chat(`unsampled ${nonce()}`, {
        headers: { traceparent: `00-${traceId}-${hex(8)}-00` },
      });
      assert.equal(res.status, 200);
      // A sampled request after it is exported; the unsampled one never is.
      const after = hex(16);
      await gw.chat(`sampled ${nonce()}`, { headers: { traceparent: `00-${after}-${hex(8)}-01` } });
      await eventually(() => collector.trace(after).length > 0, 15000);
      assert.equal(collector.trace(traceId).length, 0);
    });

    it('marks blocked and failed requests on their spans', async () => {
      const blocked = hex(16);
      const res = await gw.chat(`my password: x ${nonce()}`, {
        headers: { traceparent: `00-${blocked}-${hex(8)}-01` } });
      assert.equal(res.status, 400);
      const failed = hex(16);
      const bad = await gw.chat(`fail ${nonce()} mock:status=500`, {
        headers: { traceparent: `00-${failed}-${hex(8)}-01`, 'cache-control': 'no-store' } });
      assert.equal(bad.status, 502);
      let spans;
      await eventually(() => collector.trace(blocked).some((s) => s.kind === 2)
                             && collector.trace(failed).some((s) => s.kind === 2), 15000);
      const b = collector.trace(blocked).find((s) => s.kind === 2);
      assert.equal(attr(b, 'http.response.status_code'), 400);
      assert.equal(attr(b, 'error.type'), 'guardrail_error');
      assert.equal(attr(b, 'aigw.guardrail'), 'block:deny_list:no-passwords');
      // No upstream attempt behind a blocked request.
      assert.equal(collector.trace(blocked).filter((s) => s.kind === 3).length, 0);
      spans = collector.trace(failed);
      const f = spans.find((s) => s.kind === 2);
      assert.equal(f.status?.code, 2, 'a 5xx request span is an error');
      const attempts = spans.filter((s) => s.kind === 3);
      assert.ok(attempts.length >= 1);
      assert.ok(attempts.every((a) => a.status?.code === 2));
    });

    it('keeps answering while the collector fails', async () => {
      collector.setFail(true);
      try {
        for (let i = 0; i < 5; i++) {
          const res = await gw.chat(`collector down ${i} ${nonce()}`);
          assert.equal(res.status, 200);
        }
        // A batch leaves every 50 ms: at least one meets the failing collector.
        await sleep(300);
      } finally {
        collector.setFail(false);
      }
      // The edge (the process that exports) counts what it lost.
      const edgeUrl = gw.url;
      const metrics = (await request(edgeUrl, '/metrics')).text;
      const figure = (result) => Number((metrics.match(new RegExp(
        `^aigw_trace_requests_total\\{result="${result}"\\} (\\d+)`, 'm')) || [])[1]);
      assert.ok(figure('lost') >= 1, metrics.split('\n').filter((l) => l.includes('trace')).join('\n'));
      assert.ok(figure('exported') >= 5);
      assert.equal(figure('dropped'), 0);
      const traceId = hex(16);
      await gw.chat(`collector back ${nonce()}`, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
      await eventually(() => collector.trace(traceId).length > 0, 15000);
    });

    it('writes one JSON log line per request', async () => {
      const id = `log-${nonce()}`;
      const res = await gw.chat(`log me ${nonce()}`, { headers: { 'x-request-id': id } });
      assert.equal(res.status, 200);
      const edge = gw.procs.find((p) => p.name?.endsWith(mode === 'run' ? '-run' : '-edge')) || gw.procs[0];
      const file = edge.logFile;
      let line;
      await eventually(() => {
        const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(id));
        line = lines.find((l) => l.includes('"msg":"request"'));
        return !!line;
      }, 10000);
      const doc = JSON.parse(line);
      assert.equal(doc.level, 'info');
      assert.equal(doc.msg, 'request');
      assert.equal(doc.request_id, id);
      assert.equal(doc.status, 200);
      assert.equal(doc.model, 'gpt-4o-mini');
      assert.equal(doc.path, '/v1/chat/completions');
      assert.equal(doc.prompt_tokens, res.json.usage.prompt_tokens);
      assert.match(doc.trace_id, TRACE_ID);
      assert.match(doc.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // Every line the gateway wrote parses as JSON, and none holds a key.
      for (const p of gw.procs) {
        const text = fs.readFileSync(p.logFile, 'utf8');
        for (const l of text.split('\n').filter((x) => x.startsWith('{'))) {
          assert.doesNotThrow(() => JSON.parse(l), l);
        }
        assert.ok(!text.includes(gw.masterKey), 'the master key in a log');
      }
    });
  });
}
