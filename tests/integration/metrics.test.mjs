// Metrics (issue 10, item 4): GET /metrics counts every answered data-plane
// request by route, model, deployment, provider and tenant, with the tokens
// and cost the answers and the config's prices say; label values past
// metrics.max_label_values count as "other"; the usage actor's spool and
// batch figures move as records are written, in `aigw run` and, in a split
// deployment, on `aigw actor usage --metrics-port N`. Every scrape passes
// `promtool check metrics` (tests/run.sh installs it).
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import {
  assert, after, before, describe, eventually, freePort, it, nonce, readSSE, request,
  startGateway,
} from './lib.mjs';
import { migrate, startPostgres } from './pgtest.mjs';

const PRICE_IN = 2;     // USD per million prompt tokens
const PRICE_OUT = 8;    // USD per million completion tokens
const NO_STORE = { 'cache-control': 'no-store' };

// Prometheus text into [{ name, labels, value }] (HELP, TYPE and blanks left out).
function parse(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `not a sample line: ${line}`);
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// The sum of NAME's samples whose labels include every pair of WHERE.
function sum(samples, name, where = {}) {
  return samples.filter((s) => s.name === name
                         && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

// Assert that NAME's samples matching WHERE sum to WANT; on failure, show
// NAME's samples.
function assertSum(samples, name, where, want) {
  const got = sum(samples, name, where);
  assert.equal(got, want, `${name} ${JSON.stringify(where)}: ${got}, not ${want}; samples:\n${
    samples.filter((s) => s.name === name).map((s) => `${JSON.stringify(s.labels)} ${s.value}`)
      .join('\n')}`);
}

// Fail unless promtool accepts TEXT (its lint included).
function promtool(text) {
  let out;
  try {
    out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8',
                                                           stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    if (err.code === 'ENOENT') {
      assert.fail('promtool is not installed (tests/run.sh installs the prometheus package)');
    }
    assert.fail(`promtool check metrics refused the scrape: ${err.stdout}${err.stderr}`);
  }
  return out;
}

async function scrape(url) {
  const res = await request(url, '/metrics', { key: null });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  return res.text;
}

const spoolPath = (name) => path.join(os.tmpdir(), `aigw-metrics-${name}-${nonce()}.spool`);

describe('metrics (run, with PostgreSQL)', () => {
  let pg, gw;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    gw = await startGateway({
      mode: 'run', name: 'metrics-run', env: { DATABASE_URL: pg.url },
      config: {
        auth: { keys: [
          { name: 'alpha', tenant: 'team-a', role: 'developer' },
          { name: 'beta', tenant: 'team-b', role: 'developer' },
          { name: 'limited', tenant: 'team-limited', role: 'developer', rpm: 2 },
        ] },
        guardrail: { deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }] },
        models: [
          { name: 'gpt-4o-mini',
            deployments: [{ id: 'mock-mini', provider: 'openai', model: 'gpt-4o-mini',
                            price_in: PRICE_IN, price_out: PRICE_OUT }] },
          { name: 'text-embedding-3-small', provider: 'openai' },
        ],
        usage: { batch_ms: 50, spool_path: spoolPath('run') },
      },
    });
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (pg) pg.destroy();
  });

  it('counts every kind of answer with its tokens and cost, and passes promtool', async () => {
    const tag = nonce();
    const alpha = gw.key('alpha');
    // team-a: answers whose usage the client sees, none cached.
    const chat = await gw.chat(`hello ${tag}`, { key: alpha, headers: NO_STORE });
    assert.equal(chat.status, 200, chat.text);
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${alpha}`, ...NO_STORE },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true,
                             stream_options: { include_usage: true },
                             messages: [{ role: 'user', content: `stream ${tag}` }] }),
    });
    assert.equal(res.status, 200);
    const stream = await readSSE(res);
    assert.ok(stream.done);
    const streamUsage = stream.events.map((e) => e.json?.usage).find((u) => u);
    assert.ok(streamUsage, 'the stream has no usage chunk');
    const messages = await gw.fetch('/v1/messages', {
      key: alpha, headers: NO_STORE,
      body: { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: `m ${tag}` }] } });
    assert.equal(messages.status, 200, messages.text);
    const emb = await gw.fetch('/v1/embeddings', {
      key: alpha, body: { model: 'text-embedding-3-small', input: `e ${tag}` } });
    assert.equal(emb.status, 200, emb.text);
    const blocked = await gw.chat(`my password: hunter2 ${tag}`, { key: alpha });
    assert.equal(blocked.status, 400);
    const failed = await gw.chat(`fail ${tag} mock:status=500`, { key: alpha, headers: NO_STORE });
    assert.equal(failed.status, 502, failed.text);
    // Refused before anyone is known: no tenant, no model.
    const bad = await gw.fetch('/v1/chat/completions', { key: alpha, body: '{"model": ' });
    assert.equal(bad.status, 400);
    // team-b: a miss, then a hit.
    const miss = await gw.chat(`cached ${tag}`, { key: gw.key('beta') });
    const hit = await gw.chat(`cached ${tag}`, { key: gw.key('beta') });
    assert.equal(miss.headers.get('x-cache'), 'MISS');
    assert.equal(hit.headers.get('x-cache'), 'HIT');
    // team-limited: 2 requests a minute, the third is refused.
    const limited = [];
    for (let i = 0; i < 3; i++) {
      limited.push(await gw.chat(`limited ${i} ${tag}`, { key: gw.key('limited'), headers: NO_STORE }));
    }
    assert.deepEqual(limited.map((r) => r.status), [200, 200, 429]);
    const total = 12;

    // The edge counts an answer once its last byte is out, so the last one
    // may not be counted the instant the client has it: scrape until all are.
    let text;
    await eventually(async () => {
      text = await scrape(gw.url);
      return sum(parse(text), 'aigw_requests_total') >= total;
    }, 5000, 50);
    promtool(text);
    const m = parse(text);
    const a = { tenant: 'team-a' };
    const chatA = { ...a, route: 'chat', gen_ai_request_model: 'gpt-4o-mini', deployment: 'mock-mini',
                    gen_ai_system: 'openai' };
    assertSum(m, 'aigw_requests_total', {}, total);
    assertSum(m, 'aigw_requests_total', { ...chatA, status_class: '2xx', error_type: '' }, 2);
    assertSum(m, 'aigw_requests_total', { ...a, route: 'messages', status_class: '2xx' }, 1);
    assertSum(m, 'aigw_requests_total', { ...a, route: 'embeddings', gen_ai_request_model: 'text-embedding-3-small',
                       status_class: '2xx' }, 1);
    assertSum(m, 'aigw_requests_total', { ...a, gen_ai_request_model: 'gpt-4o-mini', status_class: '4xx',
                       error_type: 'guardrail_error' }, 1);
    // An upstream error names the deployment it tried last, and its provider.
    assertSum(m, 'aigw_requests_total', { ...chatA, status_class: '5xx', error_type: 'upstream_error' }, 1);
    assertSum(m, 'aigw_requests_total', { tenant: '', gen_ai_request_model: '', route: 'chat', status_class: '4xx',
                       error_type: 'invalid_request_error' }, 1);
    assertSum(m, 'aigw_requests_total', { tenant: 'team-limited', status_class: '2xx' }, 2);
    assertSum(m, 'aigw_requests_total', { tenant: 'team-limited', status_class: '4xx', error_type: 'rate_limit_error' }, 1);
    assertSum(m, 'aigw_ratelimit_rejections_total', { tenant: 'team-limited', gen_ai_request_model: 'gpt-4o-mini',
                       code: 'rpm' }, 1);
    assertSum(m, 'aigw_ratelimit_rejections_total', {}, 1);
    assertSum(m, 'aigw_guardrail_blocks_total', { ...a, code: 'deny_list' }, 1);
    assertSum(m, 'aigw_guardrail_blocks_total', {}, 1);
    assertSum(m, 'aigw_cache_requests_total', { tenant: 'team-b', cache: 'HIT' }, 1);
    // A hit names the deployment and provider that made the answer.
    assertSum(m, 'aigw_requests_total', { tenant: 'team-b', gen_ai_system: 'openai' }, 2);
    assertSum(m, 'aigw_requests_total', { tenant: 'team-b', gen_ai_system: '' }, 0);
    assertSum(m, 'aigw_cache_requests_total', { tenant: 'team-b', cache: 'MISS' }, 1);
    assertSum(m, 'aigw_cache_requests_total', { ...a, cache: 'HIT' }, 0);

    // Tokens and cost of team-a: what its answers said, at the config's prices.
    const inChat = chat.json.usage.prompt_tokens + streamUsage.prompt_tokens
                   + messages.json.usage.input_tokens;
    const outChat = chat.json.usage.completion_tokens + streamUsage.completion_tokens
                    + messages.json.usage.output_tokens;
    assert.ok(inChat > 0 && outChat > 0);
    const tokens = (type, where = a) => sum(m, 'gen_ai_client_token_usage_sum',
                                            { ...where, gen_ai_token_type: type });
    assert.equal(tokens('input', { ...a, gen_ai_request_model: 'gpt-4o-mini' }), inChat);
    assert.equal(tokens('output', { ...a, gen_ai_request_model: 'gpt-4o-mini' }), outChat);
    assert.equal(tokens('input', { ...a, route: 'embeddings' }), emb.json.usage.prompt_tokens);
    assertSum(m, 'gen_ai_client_token_usage_count', { ...a, route: 'chat', gen_ai_token_type: 'output' }, 2);
    assertSum(m, 'gen_ai_client_token_usage_bucket', { ...a, route: 'messages', gen_ai_token_type: 'input', le: '+Inf' }, 1);
    const cost = sum(m, 'aigw_cost_usd_total', a);
    assert.ok(Math.abs(cost - (inChat * PRICE_IN + outChat * PRICE_OUT) / 1e6) < 1e-9,
              `team-a cost ${cost}`);
    assert.ok(sum(m, 'aigw_cost_usd_total', { tenant: 'team-b' }) > 0);

    // Latency of every answer; time to first token of the one streamed.
    assertSum(m, 'gen_ai_server_request_duration_seconds_count', {}, total);
    assertSum(m, 'gen_ai_server_request_duration_seconds_bucket', { le: '+Inf' }, total);
    assertSum(m, 'gen_ai_server_request_duration_seconds_count', { ...a, error_type: 'upstream_error', gen_ai_operation_name: 'chat' }, 1);
    assertSum(m, 'gen_ai_server_time_to_first_token_seconds_count', {}, 1);
    assertSum(m, 'gen_ai_server_time_to_first_token_seconds_count', chatA, 1);
    assert.ok(sum(m, 'gen_ai_server_time_to_first_token_seconds_sum') > 0);
    // The edge's older figures still there.
    assert.ok(sum(m, 'aigw_http_requests_total', { route: 'chat', code: '200' }) >= 5);

    // The usage actor writes the same answers; its figures say so.
    let got;
    assert.ok(await eventually(async () => {
      got = parse(await scrape(gw.url));
      return sum(got, 'aigw_usage_records_total', { result: 'written' }) === total;
    }, 20000, 100), `records written: ${sum(got, 'aigw_usage_records_total', { result: 'written' })}`);
    assert.equal(Number(pg.sql('SELECT count (*) FROM usage_records').trim()), total);
    const dbIn = Number(pg.sql('SELECT sum (prompt_tokens) FROM usage_records').trim());
    assertSum(got, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' }, dbIn);
    const batches = sum(got, 'aigw_usage_batches_total', { result: 'written' });
    assert.ok(batches >= 1);
    assertSum(got, 'aigw_usage_batch_duration_seconds_count', {}, batches);
    assertSum(got, 'aigw_usage_spool_records', {}, 0);
    assertSum(got, 'aigw_usage_records_total', { result: 'dropped' }, 0);
  });

  it('shows records in the spool while PostgreSQL is stopped, and drains it after', async () => {
    // Start from rest: every record so far written.
    const rows = () => Number(pg.sql('SELECT count (*) FROM usage_records').trim());
    let written = -1;
    assert.ok(await eventually(async () => {
      written = sum(parse(await scrape(gw.url)), 'aigw_usage_records_total', { result: 'written' });
      return written > 0 && written === rows();
    }, 20000, 100), `written ${written}, rows ${rows()}`);
    pg.stop('fast');
    let restarted = false;
    try {
      for (let i = 0; i < 3; i++) {
        const r = await gw.chat(`spooled ${i} ${nonce()}`, { headers: NO_STORE });
        assert.equal(r.status, 200, r.text);
      }
      let m;
      assert.ok(await eventually(async () => {
        m = parse(await scrape(gw.url));
        return sum(m, 'aigw_usage_spool_records') === 3;
      }, 20000, 100), `spool records: ${sum(m, 'aigw_usage_spool_records')}`);
      assert.ok(sum(m, 'aigw_usage_spool_bytes') > 0);
      assertSum(m, 'aigw_usage_records_total', { result: 'spooled' }, 3);
      promtool(await scrape(gw.url));
      pg.start();
      restarted = true;
      assert.ok(await eventually(async () => {
        m = parse(await scrape(gw.url));
        return sum(m, 'aigw_usage_records_total', { result: 'written' }) === written + 3;
      }, 30000, 200), `written after the restart: ${sum(m, 'aigw_usage_records_total', { result: 'written' })}`);
      assertSum(m, 'aigw_usage_spool_records', {}, 0);
      assertSum(m, 'aigw_usage_spool_bytes', {}, 0);
    } finally {
      if (!restarted) pg.start();
    }
  });
});

describe('metrics (no database, metrics.max_label_values: 2)', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      mode: 'run', name: 'metrics-bounded', env: { DATABASE_URL: '' },
      config: {
        metrics: { max_label_values: 2 },
        models: ['m1', 'm2', 'm3', 'm4'].map((name) => ({ name, provider: 'openai' })),
      },
    });
  }, { timeout: 60000 });
  after(async () => { if (gw) await gw.stop(); });

  it('counts without usage records, and puts label values past the bound in "other"', async () => {
    for (const model of ['m1', 'm2', 'm3', 'm4', 'm3']) {
      const r = await gw.chat(`bounded ${nonce()}`, { model, headers: NO_STORE });
      assert.equal(r.status, 200, r.text);
    }
    const text = await scrape(gw.url);
    promtool(text);
    const m = parse(text);
    const count = (model) => sum(m, 'aigw_requests_total', { gen_ai_request_model: model });
    assert.equal(count('m1'), 1);
    assert.equal(count('m2'), 1);
    assert.equal(count('m3'), 0);
    assert.equal(count('m4'), 0);
    assert.equal(count('other'), 3);
    assertSum(m, 'gen_ai_server_request_duration_seconds_count', { gen_ai_request_model: 'other' }, 3);
    assert.ok(sum(m, 'gen_ai_client_token_usage_sum', { gen_ai_request_model: 'other' }) > 0);
    // No usage actor here: none of its figures.
    assert.equal(m.filter((s) => s.name.startsWith('aigw_usage_')).length, 0);
  });
});

describe('metrics (split: aigw actor usage --metrics-port)', () => {
  let pg, gw, port;
  before(async () => {
    pg = await startPostgres();
    migrate(pg.url);
    // The one usage actor is started here, with its metrics port.
    gw = await startGateway({ mode: 'split', name: 'metrics-split', env: { DATABASE_URL: pg.url },
                              actors: { usage: 0 },
                              config: { usage: { batch_ms: 50, spool_path: spoolPath('split') } } });
    port = await freePort();
    gw.procs.push(gw.spawn('usage', ['actor', 'usage', '--broker', gw.brokerEndpoint,
                                     '--config', gw.configFile, '--metrics-port', String(port)]));
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (pg) pg.destroy();
  });

  it('serves the usage actor\'s figures on its own port', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await gw.chat(`split ${i} ${nonce()}`, { headers: NO_STORE });
      assert.equal(r.status, 200, r.text);
    }
    const actor = `http://127.0.0.1:${port}`;
    let m = [];
    assert.ok(await eventually(async () => {
      m = parse(await scrape(actor).catch(() => ''));
      return sum(m, 'aigw_usage_records_total', { result: 'written' }) === 3;
    }, 30000, 200), `written: ${sum(m, 'aigw_usage_records_total', { result: 'written' })}`);
    assert.ok(sum(m, 'aigw_usage_batches_total', { result: 'written' }) >= 1);
    assertSum(m, 'aigw_usage_spool_records', {}, 0);
    promtool(await scrape(actor));
    assert.equal(Number(pg.sql('SELECT count (*) FROM usage_records').trim()), 3);
    // The edge counts the answers; the usage figures live in the actor's process.
    const edge = await scrape(gw.url);
    promtool(edge);
    const e = parse(edge);
    assertSum(e, 'aigw_requests_total', { status_class: '2xx' }, 3);
    assert.equal(e.filter((s) => s.name.startsWith('aigw_usage_')).length, 0);
    const other = await request(actor, '/v1/models', { key: null });
    assert.equal(other.status, 404);
  });
});
