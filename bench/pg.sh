# shellcheck shell=bash
# A private PostgreSQL 15 for the usage benchmarks (bench/usage_onoff.sh,
# bench/usage_memory.sh), as tests/integration/pgtest.mjs makes one: initdb in
# a temp folder, a free port, fsync off. Source it after bench/lib.sh. The
# server is started and stopped with pg_ctl (so it can be stopped and started
# again under load); the EXIT trap stops it (immediate) before lib.sh's
# cleanup. Sets PG_DIR, PG_PORT, PG_URL.

PG_BIN=${AIGW_TEST_PGBIN:-/usr/lib/postgresql/15/bin}
PG_DIR=

# As the postgres user when root (root cannot run the server).
bench_pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bench_pg_start() {
    bench_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 30 -l "$PG_DIR/log" \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

# bench_pg_stop [MODE]: fast by default.
bench_pg_stop() {
    bench_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -m "${1:-fast}" stop >/dev/null
}

# SQL on the aigw database; unaligned, tuples only.
bench_pg_sql() {
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d aigw -X -v ON_ERROR_STOP=1 -qAt -c "$1"
}

# A fresh cluster with the database aigw, migrated by BIN (`aigw migrate`).
bench_pg_new() {
    local bin=$1
    [ -x "$PG_BIN/initdb" ] || bench_die "PostgreSQL 15 missing ($PG_BIN): apt-get install postgresql-15"
    PG_DIR=$(mktemp -d /tmp/aigw-bench-pg.XXXXXX)
    chmod 777 "$PG_DIR"
    bench_pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >"$BENCH_TMP/initdb.log" 2>&1 \
        || { cat "$BENCH_TMP/initdb.log" >&2; bench_die "initdb failed"; }
    PG_PORT=$(bench_free_port)
    PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/aigw"
    bench_pg_start || bench_die "PostgreSQL did not start (log: $PG_DIR/log)"
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -X -qAt -c 'CREATE DATABASE aigw' >/dev/null
    DATABASE_URL=$PG_URL "$bin" migrate >"$BENCH_TMP/migrate.log" 2>&1 \
        || { cat "$BENCH_TMP/migrate.log" >&2; bench_die "aigw migrate failed"; }
}

bench_pg_cleanup() {
    local rc=$?
    if [ -n "$PG_DIR" ]; then
        bench_pg_stop immediate 2>/dev/null || true
        rm -rf "$PG_DIR"
    fi
    (exit "$rc")
    bench_cleanup
}
trap bench_pg_cleanup EXIT

# Data-plane requests the gateway on GW_PORT answered (chat, every status),
# from its /metrics.
bench_gw_answered() {
    curl -s -m 5 -H "Authorization: Bearer $BENCH_KEY" "http://127.0.0.1:$GW_PORT/metrics" \
        | awk '/^aigw_http_requests_total\{route="chat"/ {s += $2} END {printf "%d\n", s}'
}

# VmRSS of PID, KiB.
bench_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
