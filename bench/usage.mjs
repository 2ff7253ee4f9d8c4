// Usage records per second into PostgreSQL (issue 10): starts its own
// PostgreSQL (the test cluster: fsync off), migrates it, and runs
// aigw_bench_usage (bench/usage_bench.c) against it.
// Usage: node bench/usage.mjs [records]   (AIGW_BIN: a Release build's aigw)
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { BIN } from '../tests/integration/lib.mjs';
import { migrate, startPostgres } from '../tests/integration/pgtest.mjs';

const records = process.argv[2] || '200000';
const pg = await startPostgres();
try {
  migrate(pg.url);
  const out = execFileSync(path.join(path.dirname(BIN), 'aigw_bench_usage'), [records],
                           { env: { ...process.env, DATABASE_URL: pg.url, AIGW_LOG_LEVEL: 'warn' },
                             encoding: 'utf8' });
  process.stdout.write(out);
  const rows = pg.sql('SELECT count (*), count (DISTINCT record_id) FROM usage_records').trim();
  console.log(`rows, distinct record ids: ${rows.replace('|', ', ')}`);
} finally {
  pg.destroy();
}
