// Control-plane benchmarks, in one run on this machine:
//  1. pipeline requests/s with a database-backed key against the master key
//     (same gateway, same upstream, alternating 10 s wrk runs);
//  2. revocation propagation across two auth processes: time from the
//     UPDATE's commit until both auth processes refuse the key, p50/p99.
// Usage: node bench/auth_db.mjs [seconds per wrk run] [revocation rounds]
// Needs AIGW_BIN (a Release build) and wrk; starts its own PostgreSQL.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, startGateway, stopAll } from '../tests/integration/lib.mjs';
import { startPostgres } from '../tests/integration/pgtest.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const seconds = Number(process.argv[2] || 10);
const rounds = Number(process.argv[3] || 50);

const secret = () => `sk-aigw-${crypto.randomBytes(24).toString('hex')}`;
function addKey(pg, name) {
  const s = secret();
  pg.sql(`INSERT INTO api_keys (tenant_id, name, prefix, secret_sha256, role)
          SELECT id, '${name}', '${s.slice(0, 12)}', sha256('${s}'::bytea), 'developer'
          FROM tenants WHERE name = 'bench'`);
  return s;
}
function wrk(url, key, conns) {
  const out = execFileSync('wrk', ['-t2', `-c${conns}`, `-d${seconds}s`, '--latency',
    '-s', path.join(HERE, 'chat.lua'), url], { env: { ...process.env, BENCH_KEY: key },
    encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('BENCH'));
  return Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
}
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const pg = await startPostgres();
try {
  execFileSync(BIN, ['migrate'], { env: { ...process.env, DATABASE_URL: pg.url } });
  pg.sql("INSERT INTO tenants (name) VALUES ('bench')");
  const dbKey = addKey(pg, 'rps');
  const config = { ratelimit: { default_rpm: 1000000000, master_rpm: 1000000000 },
                   cache: { enabled: false }, log_level: 'warn',
                   server: { threads: 512 } };

  // 1. requests/s, master key against a database key, alternating.
  let gw = await startGateway({ mode: 'run', name: 'bench-rps', config,
                                env: { DATABASE_URL: pg.url, AIGW_LOG_LEVEL: 'warn' } });
  const url = `${gw.url}/v1/chat/completions`;
  wrk(url, dbKey, 8);                                   // warm the key cache
  const master = [], db = [];
  // Alternate, starting with each in turn, so drift in a noisy machine
  // falls on both sides.
  for (let i = 0; i < 4; i++) {
    if (i % 2 === 0) {
      master.push(wrk(url, gw.masterKey, 64).rps);
      db.push(wrk(url, dbKey, 64).rps);
    } else {
      db.push(wrk(url, dbKey, 64).rps);
      master.push(wrk(url, gw.masterKey, 64).rps);
    }
  }
  await gw.stop();
  const m = master.reduce((a, b) => a + b) / master.length;
  const d = db.reduce((a, b) => a + b) / db.length;
  console.log(`requests/s at 64 connections: master key ${m.toFixed(0)}, database key ${d.toFixed(0)}` +
              ` (${((d / m - 1) * 100).toFixed(1)}%; runs ${master.join('/')} vs ${db.join('/')})`);

  // 2. revocation propagation across two auth processes (split deployment).
  gw = await startGateway({ mode: 'split', name: 'bench-revoke', actors: { auth: 2 },
                            config: { log_level: 'warn' },
                            env: { DATABASE_URL: pg.url, AIGW_LOG_LEVEL: 'warn' } });
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const key = addKey(pg, `revoke-${r}`);
    for (let i = 0; i < 10; i++) await gw.fetch('/v1/models', { key });   // both caches warm
    pg.sql(`UPDATE api_keys SET revoked_at = now () WHERE name = 'revoke-${r}'`);
    const t0 = performance.now();
    // Refused by both processes: 8 refusals in a row (requests alternate).
    let streak = 0, first = null;
    while (streak < 8 && performance.now() - t0 < 5000) {
      const res = await gw.fetch('/v1/models', { key });
      if (res.status === 401) { if (first === null) first = performance.now(); streak++; }
      else { streak = 0; first = null; }
    }
    times.push((first ?? performance.now()) - t0);
  }
  await gw.stop();
  console.log(`revocation propagation over 2 auth processes (${rounds} rounds): ` +
              `p50 ${pct(times, 0.5).toFixed(1)} ms, p99 ${pct(times, 0.99).toFixed(1)} ms, ` +
              `max ${Math.max(...times).toFixed(1)} ms (measured after psql returned)`);
} finally {
  await stopAll();
  pg.destroy();
}
