// The operator CLI against PostgreSQL: `aigw migrate`, `aigw tenants ...`,
// `aigw keys ...`. Each test gets its own database on DATABASE_URL's server
// (aigw_t_<random>), dropped when it ends; SQL checks go through psql.
//
//   AIGW_BIN=build-test/aigw DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/aigw_test \
//     node --test tests/integration/pg_cli.test.mjs
//
// tests/run.sh starts a throwaway PostgreSQL and sets DATABASE_URL; without
// it this file fails, saying so.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, SRC, assert, describe, it, nonce, sleep } from './lib.mjs';

const BASE_URL = process.env.DATABASE_URL || '';
// Label pg: without a database the file fails, saying why; it never passes
// as skipped.
if (!BASE_URL) {
  throw new Error('DATABASE_URL is unset: this suite needs PostgreSQL (tests/run.sh starts one and sets it)');
}
const PGBIN = process.env.AIGW_TEST_PGBIN || '';
const tool = (name) => (PGBIN && fs.existsSync(path.join(PGBIN, name)) ? path.join(PGBIN, name) : name);
const CLI_TIMEOUT_MS = 30000;
const SECRET_RE = /sk-aigw-[0-9a-f]{48}/g;
const TRICKY = `O'Brien "x"; DROP TABLE tenants;-- 日本語 🚀`;
const MIGRATIONS = fs.readdirSync(path.join(SRC, 'schemas', 'sql'))
  .filter((f) => /^\d{3,}_[a-z0-9_]+\.sql$/.test(f)).sort();
const OS_USER = os.userInfo().username;

// URL of database NAME on BASE_URL's server (a URI or key=value string).
function dbUrl(name) {
  if (/^postgres(ql)?:\/\//.test(BASE_URL)) {
    const url = new URL(BASE_URL);
    url.pathname = `/${name}`;
    return url.toString();
  }
  return `${BASE_URL} dbname=${name}`;
}

// Run a program; resolves { code, stdout, stderr } whatever the exit code.
function run(cmd, args, { env = {}, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, PGCLIENTENCODING: 'UTF8', ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

// `aigw ARGS` against database URL.
async function aigw(url, ...args) {
  return run(BIN, args, { env: { DATABASE_URL: url, AIGW_LOG_LEVEL: 'info' } });
}

// `aigw ARGS` that must succeed; returns its result.
async function aigwOk(url, ...args) {
  const r = await aigw(url, ...args);
  assert.equal(r.code, 0, `aigw ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
}

// `aigw ARGS --json` that must succeed; returns the parsed JSON.
async function aigwJson(url, ...args) {
  const r = await aigwOk(url, ...args, '--json');
  try {
    return JSON.parse(r.stdout);
  } catch (err) {
    throw new Error(`aigw ${args.join(' ')} --json printed no JSON: ${err.message}\n${r.stdout}`);
  }
}

// SQL through psql: rows of unaligned, tab-separated fields.
async function psql(url, sql) {
  const r = await run(tool('psql'), ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
                                     '-d', url, '-c', sql]);
  assert.equal(r.code, 0, `psql failed: ${sql}\n${r.stderr}`);
  return r.stdout.replace(/\n$/, '').split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// One value from SQL.
async function psqlValue(url, sql) {
  const rows = await psql(url, sql);
  return rows.length ? rows[0][0] : null;
}

// A fresh, empty database for test T, dropped when T ends. Returns its URL.
async function freshDb(t) {
  const name = `aigw_t_${nonce(6)}`;
  await psql(BASE_URL, `CREATE DATABASE ${name}`);
  t.after(() => psql(BASE_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return dbUrl(name);
}

// A fresh database with the schema applied.
async function migratedDb(t) {
  const url = await freshDb(t);
  await aigwOk(url, 'migrate');
  return url;
}

const sha256 = (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
const hex = (text) => Buffer.from(text, 'utf8').toString('hex');

describe('operator CLI on PostgreSQL', () => {
  it('migrate twice: the same migrations rows, no error', async (t) => {
    const url = await freshDb(t);
    const first = await aigwOk(url, 'migrate');
    assert.match(first.stderr, /applied migration 001_control_plane/);
    const rows = await psql(url, 'SELECT version, name, sha256, applied_at FROM aigw_migrations ORDER BY version');
    assert.equal(rows.length, MIGRATIONS.length);
    for (const [i, file] of MIGRATIONS.entries()) {
      const sql = fs.readFileSync(path.join(SRC, 'schemas', 'sql', file));
      assert.equal(`${rows[i][0].padStart(3, '0')}_${rows[i][1]}.sql`, file);
      assert.equal(rows[i][2], crypto.createHash('sha256').update(sql).digest('hex'), `${file} sha256`);
    }
    const second = await aigwOk(url, 'migrate');
    assert.doesNotMatch(second.stderr, /applied migration/);
    assert.deepEqual(await psql(url, 'SELECT version, name, sha256, applied_at FROM aigw_migrations ORDER BY version'), rows);
    const tables = await psqlValue(url, "SELECT count (to_regclass (t)) FROM unnest (ARRAY['tenants', 'roles', 'api_keys', 'audit_log']) t");
    assert.equal(tables, '4');
    assert.equal(await psqlValue(url, 'SELECT count (*) FROM roles'), '4');
  });

  it('three aigw migrate processes at once: all exit 0, one row per migration', async (t) => {
    const url = await freshDb(t);
    const results = await Promise.all([1, 2, 3].map(() => aigw(url, 'migrate')));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const applied = results.filter((r) => /applied migration/.test(r.stderr)).length;
    assert.equal(applied, 1, 'exactly one process applied the schema');
    const rows = await psql(url, 'SELECT version, count (*) FROM aigw_migrations GROUP BY version ORDER BY version');
    assert.equal(rows.length, MIGRATIONS.length);
    for (const row of rows) assert.equal(row[1], '1');
    assert.equal(await psqlValue(url, 'SELECT count (*) FROM roles'), '4');
  });

  it('refuses to migrate when an applied migration was edited', async (t) => {
    const url = await migratedDb(t);
    await psql(url, "UPDATE aigw_migrations SET sha256 = repeat ('0', 64) WHERE version = 1");
    const r = await aigw(url, 'migrate');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /migration 001_control_plane was changed after it was applied/);
  });

  it('tenants create and list, with an audit row', async (t) => {
    const url = await migratedDb(t);
    const created = await aigwJson(url, 'tenants', 'create', 'acme');
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.name, 'acme');
    assert.match(created.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const text = await aigwOk(url, 'tenants', 'create', 'globex');
    assert.match(text.stdout, /globex/);
    const list = await aigwJson(url, 'tenants', 'list');
    assert.deepEqual(list.data.map((x) => x.name), ['acme', 'globex']);
    assert.equal(list.data[0].id, created.id);
    assert.equal(list.next_cursor, null);
    const plain = await aigwOk(url, 'tenants', 'list');
    assert.match(plain.stdout, new RegExp(`${created.id}.*acme`));
    const dup = await aigw(url, 'tenants', 'create', 'acme');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    const audit = await psql(url, `SELECT actor_type, actor_id, action, target_type, target_id, tenant_id, after ->> 'name' FROM audit_log ORDER BY id`);
    assert.equal(audit.length, 2);
    assert.deepEqual(audit[0], ['cli', OS_USER, 'tenants.create', 'tenant', created.id, created.id, 'acme']);
  });

  it('keys create prints the secret once; list never shows it', async (t) => {
    const url = await migratedDb(t);
    const tenant = await aigwJson(url, 'tenants', 'create', 'acme');
    const key = await aigwJson(url, 'keys', 'create', '--tenant', 'acme', '--name', 'ci',
                               '--role', 'viewer', '--rpm', '60', '--tpm', '5000',
                               '--budget-usd', '12.5', '--models', 'gpt-4o-mini, gpt-4o',
                               '--expires', '2035-06-01T12:00:00+02:00');
    assert.match(key.key, /^sk-aigw-[0-9a-f]{48}$/);
    assert.equal(key.prefix, key.key.slice(0, 12));
    assert.equal(key.tenant_id, tenant.id);
    assert.equal(key.name, 'ci');
    assert.equal(key.role, 'viewer');
    assert.equal(key.rpm, 60);
    assert.equal(key.tpm, 5000);
    assert.equal(key.budget_usd, 12.5);
    assert.deepEqual(key.models, ['gpt-4o-mini', 'gpt-4o']);
    assert.equal(key.expires_at, '2035-06-01T10:00:00Z');
    assert.equal(key.status, 'active');

    const row = await psql(url, `SELECT encode (secret_sha256, 'hex'), prefix, role, rpm, tpm, budget_usd, models::text, expires_at AT TIME ZONE 'UTC' FROM api_keys WHERE id = '${key.id}'`);
    assert.deepEqual(row, [[sha256(key.key), key.prefix, 'viewer', '60', '5000', '12.5000',
                            '{gpt-4o-mini,gpt-4o}', '2035-06-01 10:00:00']]);

    // Text mode: the secret appears exactly once, with a warning on stderr.
    const text = await aigwOk(url, 'keys', 'create', '--tenant', tenant.id, '--name', 'second');
    const secrets = text.stdout.match(SECRET_RE) || [];
    assert.equal(secrets.length, 1, text.stdout);
    assert.match(text.stderr, /shown only once/);
    assert.doesNotMatch(text.stderr, SECRET_RE);

    for (const args of [['keys', 'list'], ['keys', 'list', '--json'],
                        ['keys', 'list', '--tenant', 'acme', '--json']]) {
      const r = await aigwOk(url, ...args);
      assert.doesNotMatch(r.stdout, SECRET_RE, `${args.join(' ')} shows a secret`);
      assert.ok(!r.stdout.includes(key.key.slice(8)), `${args.join(' ')} shows secret digits`);
      assert.ok(r.stdout.includes(key.prefix), `${args.join(' ')} does not show the prefix`);
    }
    const list = await aigwJson(url, 'keys', 'list', '--tenant', 'acme');
    assert.equal(list.data.length, 2);
    for (const k of list.data) assert.equal(k.key, undefined);
    assert.equal(list.data[0].id, key.id);

    const audit = await psql(url, `SELECT actor_type, actor_id, action, target_id, after ? 'secret_sha256', after::text FROM audit_log WHERE action = 'keys.create' ORDER BY id`);
    assert.equal(audit.length, 2);
    assert.deepEqual(audit[0].slice(0, 5), ['cli', OS_USER, 'keys.create', key.id, 'f']);
    assert.ok(!audit[0][5].includes(key.key) && !audit[0][5].includes(sha256(key.key)));
  });

  it('keys revoke sets revoked_at, once', async (t) => {
    const url = await migratedDb(t);
    await aigwOk(url, 'tenants', 'create', 'acme');
    const key = await aigwJson(url, 'keys', 'create', '--tenant', 'acme', '--name', 'k');
    const r = await aigwOk(url, 'keys', 'revoke', key.id);
    assert.match(r.stdout, /revoked key/);
    assert.equal(await psqlValue(url, `SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = '${key.id}'`), 't');
    const again = await aigwOk(url, 'keys', 'revoke', key.id);
    assert.match(again.stdout, /already revoked/);
    const audit = await psql(url, `SELECT before ->> 'revoked_at' IS NULL, after ->> 'revoked_at' IS NOT NULL, before ? 'secret_sha256' OR after ? 'secret_sha256' FROM audit_log WHERE action = 'keys.revoke'`);
    assert.deepEqual(audit, [['t', 't', 'f']]);
    const listed = await aigwJson(url, 'keys', 'list');
    assert.equal(listed.data[0].status, 'revoked');
    const rotate = await aigw(url, 'keys', 'rotate', key.id);
    assert.equal(rotate.code, 1);
    assert.match(rotate.stderr, /revoked/);
  });

  it('keys rotate changes secret_sha256 and prefix, and notifies aigw_keys', async (t) => {
    const url = await migratedDb(t);
    await aigwOk(url, 'tenants', 'create', 'acme');
    const key = await aigwJson(url, 'keys', 'create', '--tenant', 'acme', '--name', 'k');

    // A psql session that LISTENs; notifications print after its next query.
    const listener = spawn(tool('psql'), ['-X', '-d', url], {
      env: { ...process.env, PGCLIENTENCODING: 'UTF8' }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let heard = '';
    listener.stdout.setEncoding('utf8').on('data', (d) => { heard += d; });
    listener.stderr.setEncoding('utf8').on('data', (d) => { heard += d; });
    const closed = new Promise((resolve) => listener.on('close', resolve));
    t.after(() => listener.kill('SIGKILL'));
    listener.stdin.write("LISTEN aigw_keys;\nSELECT 'listening';\n");
    for (let i = 0; i < 100 && !heard.includes('listening'); i++) await sleep(50);
    assert.ok(heard.includes('listening'), `psql did not start listening: ${heard}`);

    const rotated = await aigwJson(url, 'keys', 'rotate', key.id);
    assert.equal(rotated.id, key.id);
    assert.match(rotated.key, /^sk-aigw-[0-9a-f]{48}$/);
    assert.notEqual(rotated.key, key.key);
    assert.notEqual(rotated.prefix, key.prefix);
    assert.equal(rotated.prefix, rotated.key.slice(0, 12));
    assert.ok(rotated.rotated_at);
    const row = await psql(url, `SELECT encode (secret_sha256, 'hex'), prefix, rotated_at IS NOT NULL FROM api_keys WHERE id = '${key.id}'`);
    assert.deepEqual(row, [[sha256(rotated.key), rotated.prefix, 't']]);
    assert.equal(await psqlValue(url, `SELECT count (*) FROM api_keys WHERE secret_sha256 = decode ('${sha256(key.key)}', 'hex')`), '0');

    listener.stdin.end("SELECT 'done';\n");
    await closed;
    assert.ok(heard.includes(sha256(key.key)), `no NOTIFY for the old secret:\n${heard}`);
    assert.ok(heard.includes(sha256(rotated.key)), `no NOTIFY for the new secret:\n${heard}`);

    const audit = await psql(url, `SELECT before ->> 'prefix', after ->> 'prefix', before ? 'secret_sha256' FROM audit_log WHERE action = 'keys.rotate'`);
    assert.deepEqual(audit, [[key.prefix, rotated.prefix, 'f']]);
  });

  it('names with quotes, SQL and Unicode round-trip exactly', async (t) => {
    const url = await migratedDb(t);
    const tenant = await aigwJson(url, 'tenants', 'create', TRICKY);
    assert.equal(tenant.name, TRICKY);
    const keyName = `${TRICKY} \\ $1 %s`;
    const key = await aigwJson(url, 'keys', 'create', '--tenant', TRICKY, '--name', keyName);
    assert.equal(key.name, keyName);
    assert.equal(key.tenant_id, tenant.id);
    assert.equal(key.tenant_name, TRICKY);
    const tenants = await aigwJson(url, 'tenants', 'list');
    assert.deepEqual(tenants.data.map((x) => x.name), [TRICKY]);
    const keys = await aigwJson(url, 'keys', 'list', '--tenant', TRICKY);
    assert.deepEqual(keys.data.map((x) => x.name), [keyName]);
    // Stored byte for byte, and the tables are all still there.
    assert.equal(await psqlValue(url, "SELECT encode (convert_to (name, 'UTF8'), 'hex') FROM tenants"), hex(TRICKY));
    assert.equal(await psqlValue(url, "SELECT encode (convert_to (name, 'UTF8'), 'hex') FROM api_keys"), hex(keyName));
    assert.equal(await psqlValue(url, "SELECT count (to_regclass (t)) FROM unnest (ARRAY['tenants', 'api_keys', 'audit_log']) t"), '3');
    // The text output prints the name as it is.
    const plain = await aigwOk(url, 'tenants', 'list');
    assert.ok(plain.stdout.includes(TRICKY), plain.stdout);
  });

  it('no plaintext secret in any table (pg_dump --data-only)', async (t) => {
    const url = await migratedDb(t);
    await aigwOk(url, 'tenants', 'create', 'acme');
    const secrets = [];
    const first = await aigwJson(url, 'keys', 'create', '--tenant', 'acme', '--name', 'a');
    secrets.push(first.key);
    secrets.push((await aigwJson(url, 'keys', 'create', '--tenant', 'acme', '--name', 'b',
                                 '--role', 'admin')).key);
    secrets.push((await aigwJson(url, 'keys', 'rotate', first.id)).key);
    await aigwOk(url, 'keys', 'revoke', first.id);
    const dump = await run(tool('pg_dump'), ['--data-only', '-d', url]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.ok(dump.stdout.includes('COPY public.api_keys'), 'the dump has the keys');
    for (const secret of secrets) {
      assert.ok(!dump.stdout.includes(secret.slice(8)), 'a secret is stored in plaintext');
      assert.ok(!dump.stdout.includes(secret.slice(8, 32)), 'part of a secret is stored');
    }
  });

  it('bad input exits non-zero with a clear message', async (t) => {
    const url = await migratedDb(t);
    await aigwOk(url, 'tenants', 'create', 'acme');
    const cases = [
      [['keys', 'create', '--tenant', 'nope', '--name', 'k'], 1, /unknown tenant 'nope'/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--role', 'boss'], 1, /unknown role 'boss'/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--role', 'Boss!'], 2, /--role/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--rpm', 'lots'], 2, /--rpm: expected an integer/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--rpm', '0'], 2, /--rpm: expected an integer/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--tpm', '-5'], 2, /--tpm/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--budget-usd', 'ten'], 2, /--budget-usd/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--expires', 'soon'], 2, /--expires: expected an RFC 3339/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--expires', '2001-01-01T00:00:00Z'], 2, /in the past/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--models', 'a,,b'], 2, /--models/],
      [['keys', 'create', '--tenant', 'acme'], 2, /--name is required/],
      [['keys', 'create', '--name', 'k'], 2, /--tenant is required/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'x'.repeat(201)], 2, /at most 200 characters/],
      [['keys', 'create', '--tenant', 'acme', '--name', 'k', '--bogus'], 2, /unknown option --bogus/],
      [['keys', 'revoke', 'not-a-uuid'], 2, /expected a key id/],
      [['keys', 'revoke', crypto.randomUUID()], 1, /no key with id/],
      [['keys', 'rotate', crypto.randomUUID()], 1, /no key with id/],
      [['keys', 'list', '--tenant', 'nope'], 1, /unknown tenant/],
      [['tenants', 'create', ''], 2, /must not be empty/],
      [['tenants', 'create', 'a\nb'], 2, /control characters/],
      [['tenants', 'frobnicate'], 2, /unknown command/],
      [['keys'], 2, /needs a command/],
    ];
    for (const [args, code, message] of cases) {
      const r = await aigw(url, ...args);
      assert.equal(r.code, code, `aigw ${args.join(' ')}: exit ${r.code}, want ${code}\n${r.stderr}`);
      assert.match(r.stderr, message, `aigw ${args.join(' ')}`);
    }
    assert.equal(await psqlValue(url, 'SELECT count (*) FROM api_keys'), '0', 'a bad command created a key');
  });

  it('database errors are clear and never show the password', async () => {
    const password = `pw-${nonce(8)}`;
    for (const url of [`postgresql://aigw:${password}@127.0.0.1:1/x`,
                       `postgresql://aigw:${password}@127.0.0.1:notaport/x`]) {
      for (const args of [['migrate'], ['tenants', 'list']]) {
        const r = await aigw(url, ...args);
        assert.equal(r.code, 1, `aigw ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /cannot connect to the database/);
        assert.ok(!r.stderr.includes(password) && !r.stdout.includes(password), r.stderr);
      }
    }
    const none = await run(BIN, ['migrate'], { env: { DATABASE_URL: '' } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no database: set DATABASE_URL/);
  });
});
