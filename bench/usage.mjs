// Usage records per second (issue 10): starts its own PostgreSQL (the test
// cluster: fsync off), migrates it, and runs aigw_bench_usage
// (bench/usage_bench.c) against it: records into PostgreSQL, then the spool
// (writes with the database unreachable, then the replay), each on a fresh
// table. The spool file lives in /tmp.
// Usage: node bench/usage.mjs [records] [db|spool]   (both by default;
// AIGW_BIN: a Release build's aigw)
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { BIN } from '../tests/integration/lib.mjs';
import { migrate, startPostgres } from '../tests/integration/pgtest.mjs';

const records = process.argv[2] || '200000';
const modes = process.argv[3] ? [process.argv[3]] : ['db', 'spool'];
const pg = await startPostgres();
try {
  migrate(pg.url);
  console.log(`${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
              `${new Date().toISOString()}`);
  for (const mode of modes) {
    pg.sql('TRUNCATE usage_records, usage_rollups');
    const args = mode === 'spool' ? ['spool', records] : [records];
    const out = execFileSync(path.join(path.dirname(BIN), 'aigw_bench_usage'), args,
                             { env: { ...process.env, DATABASE_URL: pg.url, AIGW_LOG_LEVEL: 'warn' },
                               encoding: 'utf8' });
    process.stdout.write(out);
    const rows = pg.sql('SELECT count (*), count (DISTINCT record_id) FROM usage_records').trim();
    const hour = pg.sql("SELECT coalesce (sum (requests), 0) FROM usage_rollups WHERE period = 'hour'").trim();
    console.log(`  rows, distinct record ids: ${rows.replace('|', ', ')}; hourly roll-ups' requests: ${hour}`);
  }
} finally {
  pg.destroy();
}
