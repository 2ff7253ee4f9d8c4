#!/usr/bin/env bash
# Cache warm start (issue 13): how long a restarted `aigw run` takes to
# answer from a partition it must first read back from PostgreSQL.
#
# One run: a gateway with PostgreSQL (cache.persist on, the default) in
# front of the nginx upstream of bench/lib.sh fills one partition with
# SECONDS of unique prompts (bench/chat.lua: same model, no system prompt,
# so every entry shares one partition), waits until the rows are written,
# stops, starts again, and times (curl, one connection) the first request
# for the prompt stored last (the partition is read: up to 10,000 rows,
# newest first, within the memory cap) and the next few (then in memory).
#
#   bench/cache_warm.sh [SECONDS]        # fill time, default 5
#   AIGW_BIN=build-bench/aigw bench/cache_warm.sh 5
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/pg.sh
. "$(dirname "$0")/pg.sh"
cd "$BENCH_ROOT"
FILL=${1:-5}
case "$FILL" in ''|*[!0-9]*) bench_die "usage: bench/cache_warm.sh [seconds]";; esac
bench_need wrk wrk
bench_need_nginx
bench_aigw_bin
bench_pg_new "$BENCH_BIN"
bench_start_upstream
export DATABASE_URL="$PG_URL"
{ cat bench/bench.yaml; echo "usage: {enabled: false}"; } >"$BENCH_TMP/warm.yaml"
base="http://127.0.0.1:$UP_PORT/v1"

# One request for PROMPT: "X-Cache time_total_seconds".
ask() {
    curl -s -o /dev/null -D "$BENCH_TMP/head" -w '%{time_total}' \
        -H "Authorization: Bearer $BENCH_KEY" -H 'Content-Type: application/json' \
        "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
        -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}" \
        >"$BENCH_TMP/time"
    printf '%s %s\n' "$(tr -d '\r' <"$BENCH_TMP/head" | sed -n 's/^[Xx]-[Cc]ache: //p')" \
        "$(cat "$BENCH_TMP/time")"
}

bench_start_run fill "$BENCH_BIN" "$base" "$BENCH_TMP/warm.yaml"
bench_log "bench: filling the partition for $FILL s ..."
fill=$(bench_wrk 1 8 "$FILL" "http://127.0.0.1:$GW_PORT/v1/chat/completions")
#  The probe is stored last: a load reads the newest rows first.
stored="Warm start probe, a prompt of its own"
[ "$(ask "$stored" | cut -d' ' -f1)" = MISS ] || bench_die "the probe was not a miss"
deadline=$((SECONDS + 30))
want=$(( $(bench_field requests "$fill") + 1 ))
while [ "$SECONDS" -lt "$deadline" ]; do
    rows=$(bench_pg_sql 'SELECT count (*) FROM cache_entries')
    [ "$rows" -ge "$want" ] && break
    sleep 0.2
done
bench_stop "$GW_PIDS"
rows=$(bench_pg_sql 'SELECT count (*) FROM cache_entries')
mib=$(bench_pg_sql "SELECT round (pg_total_relation_size ('cache_entries') / 1048576.0, 1)")

bench_start_run warm "$BENCH_BIN" "$base" "$BENCH_TMP/warm.yaml"
first=$(ask "$stored")
later=()
for _ in 1 2 3 4 5; do later+=("$(ask "$stored" | cut -d' ' -f2)"); done
bench_stop "$GW_PIDS"

echo
echo "machine: $(bench_machine); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rows in cache_entries after the fill: $rows (one partition), $mib MiB with indexes"
echo
echo "| request after the restart | X-Cache | time (curl, one connection) |"
echo "|---|---|---|"
echo "| first (reads the partition back) | ${first%% *} | $(awk -v t="${first##* }" 'BEGIN {printf "%.1f ms", t * 1000}') |"
printf '| next five (in memory) | HIT | %s |\n' \
    "$(printf '%s\n' "${later[@]}" | awk '{sep = (NR > 1) ? " / " : ""; printf "%s%.2f", sep, $1 * 1000} END {print " ms"}')"
