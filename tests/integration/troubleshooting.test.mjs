// docs/troubleshooting.md stays true: every curl command in it is run, as
// written, against a real gateway and PostgreSQL (only the port and the
// token change), and what the page says the user will see is checked. A
// command added to the page without a check here fails the suite, and so
// does a check whose command left the page.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  assert, after, before, describe, it, BIN, SRC, startGateway, assertError, nonce,
} from './lib.mjs';
import { freshDatabase, migrate } from './pgtest.mjs';

const DOC = path.join(SRC, 'docs', 'troubleshooting.md');

// The shell commands of the page's ```bash blocks, continuation lines joined.
function docCommands(text) {
  const commands = [];
  for (const block of text.matchAll(/```bash\n([\s\S]*?)```/g)) {
    const joined = block[1].replace(/\s*\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const command = line.trim();
      if (command && !command.startsWith('#')) commands.push(command);
    }
  }
  return commands;
}

// Run COMMAND (a curl line of the page) against GW with TOKEN: status,
// headers (lower-case names) and body as curl saw them.
function runCurl(command, gw, token) {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'aigw-doc-'));
  const line = command.replaceAll('http://localhost:8000', gw.url)
                      .replaceAll('YOUR_TOKEN', token);
  const out = execFileSync('bash', ['-c', `${line} -s -D ${dir}/h -o ${dir}/b -w '%{http_code}'`],
                           { encoding: 'utf8' });
  const headers = {};
  for (const h of fs.readFileSync(`${dir}/h`, 'utf8').split('\r\n').slice(1)) {
    const at = h.indexOf(':');
    if (at > 0) headers[h.slice(0, at).toLowerCase()] = h.slice(at + 1).trim();
  }
  let body = fs.readFileSync(`${dir}/b`, 'utf8');
  // curl -I writes the head where the body would go: what follows it is a body.
  if (/ -I /.test(command)) body = body.slice(fs.readFileSync(`${dir}/h`, 'utf8').length);
  fs.rmSync(dir, { recursive: true, force: true });
  const json = (headers['content-type'] || '').startsWith('application/json') && body
    ? JSON.parse(body) : null;
  return { status: Number(out), headers, body, json };
}

describe('docs/troubleshooting.md', () => {
  let db;
  let gw;
  let key;           // a developer key of a fresh tenant, limited to gpt-4o-mini
  const doc = fs.readFileSync(DOC, 'utf8');

  before(async () => {
    db = await freshDatabase('aigw_doc');
    migrate(db.url);
    gw = await startGateway({
      mode: 'run', name: 'doc', env: { DATABASE_URL: db.url },
      config: { guardrail: { deny: [{ name: 'no-passwords', pattern: '(?i)password\\s*[:=]' }] } },
    });
    const tenant = await gw.fetch('/api/v1/admin/tenants', { method: 'POST',
                                                              body: { name: `doc-${nonce()}` } });
    assert.equal(tenant.status, 201, tenant.text);
    const created = await gw.fetch('/api/v1/admin/keys', { method: 'POST', body: {
      name: `doc-${nonce()}`, tenant_id: tenant.json.id, role: 'developer', rpm: 2,
      models: ['gpt-4o-mini'] } });
    assert.equal(created.status, 201, created.text);
    key = created.json.key;
  }, { timeout: 90000 });
  after(async () => {
    if (gw) await gw.stop();
    if (db) db.destroy();
  });

  // What each command of the page must show; keyed by the command as written.
  const checks = {
    'curl -I http://localhost:8000/api/v1/admin/auth/me -H "Authorization: Bearer YOUR_TOKEN"':
      (run) => {
        const ok = run(key);
        assert.equal(ok.status, 200);
        assert.equal(ok.body, '', 'HEAD sent a body');
        assert.ok(ok.headers['x-request-id']);
        const bad = run('sk-aigw-not-a-key');
        assert.equal(bad.status, 401);
        assert.equal(bad.body, '');
      },
    'curl http://localhost:8000/api/v1/admin/auth/me -H "Authorization: Bearer YOUR_TOKEN"':
      (run) => {
        const me = run(key);
        assert.equal(me.status, 200, me.body);
        assert.equal(me.json.role, 'developer');
        assert.ok(Array.isArray(me.json.permissions), me.body);
        assert.deepEqual(me.json.models, ['gpt-4o-mini']);
        assert.ok(me.json.tenant.id && me.json.tenant.name, me.body);
        assert.equal(me.json.limits.rpm, 2, me.body);
        const bad = run('sk-aigw-not-a-key');
        assert.equal(bad.status, 401);
        assert.equal(bad.json.error.type, 'authentication_error');
        assert.equal(bad.json.error.code, 'invalid_api_key');
        assert.equal(bad.json.error.request_id, bad.headers['x-request-id']);
      },
    'curl http://localhost:8000/api/v1/admin/router/health -H "Authorization: Bearer YOUR_TOKEN"':
      (run) => {
        const health = run(gw.masterKey);
        assert.equal(health.status, 200, health.body);
        const dep = health.json.deployments.find((d) => d.model === 'gpt-4o-mini');
        assert.ok(dep, health.body);
        for (const field of ['circuit', 'error_rate', 'last_error', 'latency_ms', 'ttft_ms']) {
          assert.ok(field in dep, `router/health lacks ${field}: ${health.body}`);
        }
        assert.ok('p50' in dep.latency_ms && 'p95' in dep.ttft_ms, health.body);
      },
    'curl -X POST http://localhost:8000/api/v1/admin/guardrails/test -H "Authorization: Bearer YOUR_TOKEN" -d \'{"text": "your text", "policy": "default"}\'':
      (run) => {
        // curl -d sends it as a form; the body is JSON all the same.
        const ok = run(gw.masterKey);
        assert.equal(ok.status, 200, ok.body);
        assert.deepEqual(ok.json, { allowed: true, action: 'allow', policy: 'default',
                                    triggered: [], text: 'your text' });
        // The page's developer key lacks guardrails:read, as the page says.
        const denied = run(key);
        assert.equal(denied.status, 403, denied.body);
        assert.equal(denied.json.error.code, 'permission_denied');
      },
    'curl http://localhost:8000/api/v1/admin/rate-limits -H "Authorization: Bearer YOUR_TOKEN"':
      (run) => {
        const res = run(key);
        assert.equal(res.status, 200, res.body);
        assert.ok(res.json.key.id && res.json.tenant.id, res.body);
        const rpm = res.json.key.limits.find((l) => l.kind === 'rpm');
        assert.equal(rpm?.limit, 2, res.body);
        assert.equal(rpm.remaining, rpm.limit - rpm.used, res.body);
        assert.ok(rpm.reset > Date.now() / 1000 - 1 && rpm.reset <= Date.now() / 1000 + 61, res.body);
        assert.deepEqual(res.json.tenant.limits, [], 'the tenant has no limits of its own');
        const bad = run('sk-aigw-not-a-key');
        assert.equal(bad.status, 401);
      },
    'curl http://localhost:8000/healthz': (run) => {
      const res = run('');
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { status: 'ok' });
    },
    'curl http://localhost:8000/readyz': (run) => {
      assert.equal(run('').status, 200);
    },
    'curl http://localhost:8000/api/v1/admin/models -H "Authorization: Bearer YOUR_TOKEN"':
      (run) => {
        const res = run(gw.masterKey);
        assert.equal(res.status, 200, res.body);
        assert.ok(JSON.stringify(res.json).includes('gpt-4o-mini'), res.body);
      },
    'curl http://localhost:8000/v1/models -H "Authorization: Bearer YOUR_TOKEN"': (run) => {
      const res = run(key);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json.data.map((m) => m.id), ['gpt-4o-mini']);
    },
  };

  it('every curl command on the page has a check here, and every check a command', () => {
    const commands = docCommands(doc);
    assert.ok(commands.length >= Object.keys(checks).length, commands.join('\n'));
    for (const command of commands) {
      assert.ok(command in checks, `docs/troubleshooting.md runs a command no test checks:\n${command}`);
    }
    for (const command of Object.keys(checks)) {
      assert.ok(commands.includes(command), `a checked command left the page:\n${command}`);
    }
  });

  for (const [command, check] of Object.entries(checks)) {
    it(`runs as the page says: ${command.slice(5, 70)}`, () => {
      check((token) => runCurl(command, gw, token));
    });
  }

  it('403: a key asking for a model it may not use', async () => {
    const res = await gw.chat('hello', { key, model: 'gpt-4o' });
    assertError(res, { status: 403, type: 'permission_error' });
  });

  it('404 model_not_found names param model', async () => {
    const res = await gw.chat('hello', { key: gw.masterKey, model: `no-such-${nonce()}` });
    assertError(res, { status: 404, code: 'model_not_found', param: 'model' });
  });

  it('a guardrail block names the guardrail and the rule', async () => {
    const res = await gw.chat('my password: hunter2', { key: gw.masterKey });
    assertError(res, { status: 400, type: 'guardrail_error', code: 'deny_list' });
    assert.match(res.json.error.message, /no-passwords/);
  });

  it('429 carries Retry-After and the X-RateLimit-* headers the page shows', async () => {
    let res;
    for (let i = 0; i < 3; i++) res = await gw.chat(`limit ${nonce()}`, { key });
    assertError(res, { status: 429, type: 'rate_limit_error', code: 'rpm', param: 'key' });
    assert.equal(res.headers.get('x-ratelimit-limit'), '2');
    assert.equal(res.headers.get('x-ratelimit-remaining'), '0');
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(res.headers.get('x-ratelimit-reset-requests') ?? '', /^(\d+m)?\d+s$/);
    assert.equal(res.headers.get('x-ratelimit-limit-tokens'), null, 'no tpm limit applies');
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    assert.ok(reset > Date.now() / 1000 && reset < Date.now() / 1000 + 120, `reset ${reset}`);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
  });

  it('aigw keys list shows the key with its rpm; aigw migrate runs again cleanly', () => {
    const env = { ...process.env, DATABASE_URL: db.url };
    const list = execFileSync(BIN, ['keys', 'list', '--json'], { env, encoding: 'utf8' });
    const mine = JSON.parse(list).data.find((k) => key.startsWith(k.prefix));
    assert.ok(mine, list);
    assert.equal(mine.rpm, 2);
    // Run again, it says there is nothing to do (the page promises as much).
    const again = spawnSync(BIN, ['migrate'], { env, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /database schema is at version \d+ \(0 migration\(s\) applied now\)/,
                 again.stderr);
    const applied = db.sql('SELECT count(*) FROM aigw_migrations').trim();
    assert.ok(Number(applied) >= 2, applied);
  });
});

// The page's Docker Compose commands (`docker-compose ps`, `ps postgres`,
// `exec postgres psql -U postgres`, `run --rm migrate`) name services and a
// user that deploy/docker-compose.yml must have; the Compose client parses
// it (no engine runs here: tests/deploy/check.sh checks the rest).
describe('docs/troubleshooting.md and deploy/docker-compose.yml', () => {
  it('the services, user and port the page names exist', () => {
    const doc = fs.readFileSync(DOC, 'utf8');
    for (const line of ['`docker-compose ps`', '`docker-compose ps postgres`',
                        '`docker-compose exec postgres psql -U postgres`',
                        '`docker-compose run --rm migrate`']) {
      assert.ok(doc.includes(line), `the page no longer says ${line}`);
    }
    const out = execFileSync('docker-compose', ['config'], {
      cwd: path.join(SRC, 'deploy'), encoding: 'utf8',
      env: { ...process.env, COMPOSE_PROFILES: 'single' } });
    const YAML_SERVICES = /^services:\n([\s\S]*?)^\S/m.exec(out)[1];
    for (const service of ['postgres', 'migrate', 'aigw']) {
      assert.match(YAML_SERVICES, new RegExp(`^  ${service}:$`, 'm'), `no ${service} service`);
    }
    assert.match(out, /POSTGRES_USER: postgres/);
    assert.match(out, /published: "?8000"?|8000:8000/, 'aigw is not published on 8000');
  });
});
