#!/usr/bin/env bash
# Memory of `aigw run` with usage records on while PostgreSQL is down under
# full load (issue 10). wrk holds 64 connections (unique prompts, as
# bench/run.sh) for BEFORE + DOWN + AFTER seconds; PostgreSQL is stopped
# (pg_ctl stop -m fast) after BEFORE seconds and started again DOWN seconds
# later. Every second: the gateway's VmRSS, the spool file's size and the
# requests answered so far (the gateway's /metrics). When wrk is done it
# waits (bounded) until usage_records holds one row per answered request,
# and prints the timeline (every 5 s), the peak and the end, and rows
# against answered requests. The response cache is off (BENCH_CACHE=1: on,
# as bench/bench.yaml has it). Records go to the spool (fdatasync'ed batches)
# while the database is away, so memory should stay flat.
#
# How to run:
#   bench/usage_memory.sh [DOWN [BEFORE [AFTER]]]   # seconds: 60, 10, 30
#   AIGW_BIN=build-bench/aigw bench/usage_memory.sh
# Environment as bench/run.sh: AIGW_BIN, BENCH_CONNS, BENCH_KEEP.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/pg.sh
. "$(dirname "$0")/pg.sh"
cd "$BENCH_ROOT"

DOWN=${1:-60}
BEFORE=${2:-10}
AFTER=${3:-30}
case "$DOWN$BEFORE$AFTER" in ''|*[!0-9]*) bench_die "usage: bench/usage_memory.sh [down [before [after]]]";; esac
CONNS=${BENCH_CONNS:-64}
TOTAL=$((BEFORE + DOWN + AFTER))

bench_load_setup

machine=$(bench_machine)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

bench_pg_new "$BENCH_BIN"
bench_start_upstream
SPOOL="$BENCH_TMP/memory.spool"
CONFIG="$BENCH_TMP/memory.yaml"
{
    # The response cache off (BENCH_CACHE=1 keeps it): it fills towards its
    # 64 MiB cap under unique prompts, which would hide what records cost.
    if [ "${BENCH_CACHE:-0}" = 1 ]; then cat bench/bench.yaml
    else sed '/^cache:/,/^  enabled:/ s/enabled: true/enabled: false/' bench/bench.yaml; fi
    echo "usage:"
    echo "  spool_path: $SPOOL"
} >"$CONFIG"
GW_PORT=$(bench_free_port)
# shellcheck disable=SC2046
bench_start gw env $(bench_aigw_env "http://127.0.0.1:$UP_PORT/v1") "DATABASE_URL=$PG_URL" \
    "$BENCH_BIN" run --config "$CONFIG" --host 127.0.0.1 --port "$GW_PORT"
GW_PID=$BENCH_LAST_PID
GW_PIDS=$GW_PID
bench_wait_url "http://127.0.0.1:$GW_PORT/readyz" 60 "$GW_PID"
URL="http://127.0.0.1:$GW_PORT/v1/chat/completions"
[ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_KEY" \
      -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"check"}]}' "$URL")" = 200 ] \
    || bench_die "aigw run: a chat did not answer 200 (logs: $BENCH_TMP)"
# Counts are absolute: the table was empty, the gateway new (its check
# request counts on both sides).
answered0=0

# The sampler: "seconds rss_kb spool_bytes answered rows" once a second
# (rows "-" while the database is down). The spool file only shrinks (to 0)
# once every frame in it is replayed: answered - rows is the backlog.
SAMPLES="$BENCH_TMP/samples"
t0=$(date +%s.%N)
(
    while true; do
        printf '%s %s %s %s %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')" \
            "$(bench_rss_kb "$GW_PID")" "$(stat -c %s "$SPOOL" 2>/dev/null || echo 0)" \
            "$(bench_gw_answered)" \
            "$(PGCONNECT_TIMEOUT=2 bench_pg_sql 'SELECT count (*) FROM usage_records' 2>/dev/null || echo -)"
        sleep 1
    done
) >"$SAMPLES" &
SAMPLER=$!
bench_pids+=("$SAMPLER")

bench_log "bench: $CONNS connections for $TOTAL s; PostgreSQL down from $BEFORE s to $((BEFORE + DOWN)) s"
wrk_out="$BENCH_TMP/wrk.out"
bench_wrk 2 "$CONNS" "$TOTAL" "$URL" >"$wrk_out" &
WRK=$!
sleep "$BEFORE"
t_stop=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
bench_pg_stop fast
bench_log "bench: PostgreSQL stopped at ${t_stop} s"
sleep "$DOWN"
t_start=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
bench_pg_start
bench_log "bench: PostgreSQL started at ${t_start} s"
wait "$WRK" || true
r=$(cat "$wrk_out")
t_wrk=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
answered=$(bench_gw_answered)
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    rows=$(bench_pg_sql 'SELECT count (*) FROM usage_records')
    [ "$rows" -ge "$answered" ] && [ "$(stat -c %s "$SPOOL" 2>/dev/null || echo 0)" = 0 ] && break
    sleep 0.5
done
t_rows=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
sleep 3
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
rows=$(bench_pg_sql 'SELECT count (*) FROM usage_records')
distinct=$(bench_pg_sql 'SELECT count (DISTINCT record_id) FROM usage_records')
hwm=$(( $(bench_hwm_kb "$GW_PID") / 1024 ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "machine: $machine; load average before: $load_before, after: $load_after"
echo "aigw run, usage records on, bench/bench.yaml with the cache $([ "${BENCH_CACHE:-0}" = 1 ] && echo on || echo off); wrk -t2 -c$CONNS for $TOTAL s: $(bench_field requests "$r") answered to wrk," \
    "$(bench_field rps "$r") req/s, non-2xx $(bench_field non2xx "$r"), socket errors $(bench_field sockerr "$r")"
echo "PostgreSQL stopped at ${t_stop} s, started at ${t_start} s; wrk done at ${t_wrk} s; rows complete at ${t_rows} s"
echo
printf '%6s %-7s %9s %11s %11s %11s %11s\n' "t (s)" phase "RSS (MiB)" "spool (MiB)" "answered" "rows" "backlog"
awk -v s="$t_stop" -v u="$t_start" -v w="$t_wrk" -v a0="$answered0" '
    { p = $1 < s ? "before" : $1 < u ? "down" : $1 < w ? "back" : "drain" }
    NR == 1 || $1 % 5 == 0 || (p != last) {
        printf "%6d %-7s %9.1f %11.2f %11d %11s %11s\n", $1, p, $2 / 1024, $3 / 1048576, $4 - a0,
            $5, $5 == "-" ? "-" : $4 - $5 }
    { last = p }' "$SAMPLES"
echo
awk -v s="$t_stop" -v u="$t_start" -v w="$t_wrk" -v a0="$answered0" '
    $1 < s { before = $2 }
    $1 >= s && $1 < u && $2 > down { down = $2 }
    $1 >= s && $1 <= u + 1 { if ($3 > spool) { spool = $3 }; if (!ans_s && $1 >= s) ans_s = $4; ans_u = $4 }
    $2 > peak { peak = $2; at = $1 }
    { end = $2 }
    END {
        printf "RSS: %.1f MiB before the stop, peak %.1f MiB while down, peak %.1f MiB overall (at %d s), %.1f MiB at the end\n",
            before / 1024, down / 1024, peak / 1024, at, end / 1024
        if (ans_u > ans_s)
            printf "spool: peak %.1f MiB, about %.0f bytes per record (%d requests answered while down)\n",
                spool / 1048576, spool / (ans_u - ans_s), ans_u - ans_s
    }' "$SAMPLES"
echo "peak RSS (VmHWM) of the run: $hwm MiB"
verdict=ok
[ "$rows" = "$answered" ] || verdict=MISMATCH
echo "records: answered $answered (the gateway's /metrics), rows $rows, distinct record ids $distinct: $verdict"
[ "$verdict" = ok ]
