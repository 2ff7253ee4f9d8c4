// A private PostgreSQL 15 cluster for one test file: initdb as the postgres
// user in a temp folder, on a free port. Tests that stop and start the
// server use their own, so suites running in parallel are not disturbed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, freePort, nonce } from './lib.mjs';

const PGBIN = process.env.AIGW_TEST_PGBIN || '/usr/lib/postgresql/15/bin';

// Run a command as the postgres user (root cannot run the server).
function asPostgres(cmd, args) {
  const argv = process.getuid() === 0 ? ['-u', 'postgres', '--', cmd, ...args] : null;
  return argv ? execFileSync('runuser', argv, { stdio: 'pipe' })
              : execFileSync(cmd, args, { stdio: 'pipe' });
}

export async function startPostgres() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `aigw-pg-${nonce(4)}-`));
  fs.chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  asPostgres(`${PGBIN}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const pg = {
    dir, data, port,
    url: `postgresql://postgres@127.0.0.1:${port}/aigw`,
    start() {
      asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-w', '-t', '20', '-l', path.join(dir, 'log'),
        '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
    },
    stop(mode = 'fast') {
      asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-w', '-m', mode, 'stop']);
    },
    // Run SQL with psql; returns stdout (unaligned, tuples only).
    sql(text, db = 'aigw') {
      return execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres',
        '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', text], { encoding: 'utf8' });
    },
    destroy() {
      try { pg.stop('immediate'); } catch { /* already stopped */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  pg.start();
  pg.sql('CREATE DATABASE aigw', 'postgres');
  return pg;
}

// A fresh database for one test file: one created on DATABASE_URL's server
// (tests/run.sh provides it), else a private cluster (startPostgres).
// Returns { url, sql(text), dump() (its rows, as pg_dump --data-only),
// destroy() }.
export async function freshDatabase(prefix = 'aigw_test') {
  const base = process.env.DATABASE_URL;
  if (base && /^postgres(ql)?:\/\//.test(base)) {
    const name = `${prefix}_${nonce(6)}`;
    const admin = new URL(base);
    const home = admin.pathname.slice(1) || 'postgres';
    const psql = (db, text) => {
      const u = new URL(admin);
      u.pathname = `/${db}`;
      return execFileSync('psql', [u.toString(), '-X', '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', text],
                          { encoding: 'utf8' });
    };
    psql(home, `CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      sql: (text) => psql(name, text),
      dump: () => dumpData(url.toString()),
      destroy: () => {
        try { psql(home, `DROP DATABASE ${name} WITH (FORCE)`); } catch { /* best effort */ }
      },
    };
  }
  const pg = await startPostgres();
  return {
    url: pg.url,
    sql: (text) => pg.sql(text),
    dump: () => dumpData(pg.url),
    destroy: () => pg.destroy(),
  };
}

// Every row of the database at URL, as pg_dump --data-only prints them.
function dumpData(url) {
  const pgDump = fs.existsSync(`${PGBIN}/pg_dump`) ? `${PGBIN}/pg_dump` : 'pg_dump';
  return execFileSync(pgDump, ['--data-only', url], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

// Apply the migrations to the database at URL with `aigw migrate`.
export function migrate(url) {
  execFileSync(BIN, ['migrate'], { env: { ...process.env, DATABASE_URL: url }, stdio: 'pipe' });
}
