#!/usr/bin/env bash
# What usage records, tracing and JSON request logs cost the data path
# (issue 10): `aigw run` measured with each of them off and on, in one run,
# in interleaved rounds (each round measures every variant, in an order that
# rotates from round to round), so the machine's drift hits all of them.
#
#   off      records off (usage: {enabled: false}), no tracing, text log at warn
#   records  usage records on: batches into PostgreSQL
#   tracing  records off; spans exported over OTLP/HTTP JSON to a collector
#            (an nginx that answers 200 to every POST /v1/traces)
#   json     records off; log_format json at info: one line per request
#            (to a file)
#
# Every variant has the same PostgreSQL (DATABASE_URL, migrated) and the same
# upstream as bench/run.sh (an nginx that answers at once), and runs
# bench/bench.yaml (cache on, every prompt unique: a miss; rate limit out of
# reach). Per variant and round: p50 at 1 connection (wrk -t1 -c1) and
# req/s at 64 connections (wrk -t2 -c64), after a warm-up; the upstream
# direct is measured at 1 connection each round for the added p50. The
# table shows medians over the rounds and ratios to "off". Afterwards it
# prints, per round of "records", the data-plane requests the gateway
# answered (its /metrics) and the rows usage_records gained: they must be
# equal; the other variants must add no rows.
#
# How to run:
#   bench/usage_onoff.sh [SECONDS [ROUNDS]]   # seconds per phase (5), rounds (3)
#   AIGW_BIN=build-bench/aigw bench/usage_onoff.sh 5 3
#   BENCH_VARIANTS="off records" bench/usage_onoff.sh   # a subset
# Environment as bench/run.sh: AIGW_BIN, BENCH_CONNS, BENCH_WARMUP, BENCH_KEEP.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/pg.sh
. "$(dirname "$0")/pg.sh"
cd "$BENCH_ROOT"

DUR="${1:-5}"
ROUNDS="${2:-3}"
case "$DUR$ROUNDS" in ''|*[!0-9]*) bench_die "usage: bench/usage_onoff.sh [seconds [rounds]]";; esac
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-1}
read -r -a VARIANTS <<<"${BENCH_VARIANTS:-off records tracing json}"

bench_load_setup

machine=$(bench_machine)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cpu0=$(bench_cpu_snap); sleep 1; cpu1=$(bench_cpu_snap)
idle_before=$(bench_cpu_share "$cpu0" "$cpu1")

bench_pg_new "$BENCH_BIN"
bench_start_upstream
UP_URL="http://127.0.0.1:$UP_PORT/v1/chat/completions"

# The collector: answers 200 to every POST, logs each one's length.
COLL_PORT=$(bench_free_port)
bench_nginx collector 1 "
    log_format bytes '\$content_length';
    server {
        listen 127.0.0.1:$COLL_PORT backlog=1024;
        client_max_body_size 0;
        location = /v1/traces { access_log $BENCH_TMP/collector.log bytes; return 200 '{}'; }
        location / { return 200 'ok'; }
    }"
bench_wait_url "http://127.0.0.1:$COLL_PORT/" 10 "$NGX_MASTER"
bench_nginx_pids "$NGX_MASTER"; COLL_PIDS=$NGX_PIDS
touch "$BENCH_TMP/collector.log"

# The config of VARIANT in round R: bench/bench.yaml and the variant's lines.
ub_config() {
    local variant=$1 round=$2 file="$BENCH_TMP/$1-$2.yaml"
    {
        grep -v '^log_level:' bench/bench.yaml
        echo "log_level: warn"
        echo "usage:"
        echo "  enabled: $([ "$variant" = records ] && echo true || echo false)"
        echo "  spool_path: $BENCH_TMP/$variant-$round.spool"
        if [ "$variant" = tracing ]; then
            echo "tracing:"
            echo "  endpoint: http://127.0.0.1:$COLL_PORT"
        fi
        [ "$variant" = json ] && echo "log_format: json"
    } >"$file"
    echo "$file"
}

# A figure of a BENCH line, 0 when missing (wrk failed).
ub_field() { local v; v=$(bench_field "$1" "$2"); echo "${v:-0}"; }

# CPU time (user + system, clock ticks) of PIDS, every thread.
ub_ticks() {
    local p total=0 t
    for p in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true)
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
# The other processes a variant may load: PostgreSQL (postmaster and its
# children) and the collector nginx.
ub_other_pids() {
    local pm
    pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
    # shellcheck disable=SC2046
    [ -n "$pm" ] && echo "$pm" $(cat /proc/"$pm"/task/*/children 2>/dev/null)
    echo "$COLL_PIDS"
}
ub_ticks_others() {
    # shellcheck disable=SC2046
    ub_ticks $(ub_other_pids)
}
# ub_per_req TICKS BENCH_LINE: CPU microseconds per request.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
ub_per_req() {
    awk -v t="$1" -v n="$(ub_field requests "$2")" -v u="$TICK_US" \
        'BEGIN { if (n > 0) printf "%.0f", t * u / n; else print "-" }'
}

declare -A CPU1 CPU64
declare -A P50 RPS ERR RSS ROWS ANSWERED EXTRA DIRECT

# One variant, one round.
ub_measure() {
    local variant=$1 round=$2 config key="$1,$2" url r1 r64 rows0 rows1 ans spans0 lines
    config=$(ub_config "$variant" "$round")
    rows0=$(bench_pg_sql 'SELECT count (*) FROM usage_records')
    spans0=$(wc -l <"$BENCH_TMP/collector.log")
    local level=warn
    [ "$variant" = json ] && level=info
    bench_start_run "gw-$variant-$round" "$BENCH_BIN" "http://127.0.0.1:$UP_PORT/v1" "$config" \
        "AIGW_LOG_LEVEL=$level" "DATABASE_URL=$PG_URL"
    url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
    bench_warm_gateway "round $round: $variant" "$url"
    local g0 g1 g2 g3 o0 o1 o2 o3
    g0=$(ub_ticks "$GW_PIDS"); o0=$(ub_ticks_others)
    r1=$(bench_wrk 1 1 "$DUR" "$url")
    g1=$(ub_ticks "$GW_PIDS"); o1=$(ub_ticks_others)
    g2=$(ub_ticks "$GW_PIDS"); o2=$(ub_ticks_others)
    r64=$(bench_wrk 2 "$CONNS" "$DUR" "$url")
    g3=$(ub_ticks "$GW_PIDS"); o3=$(ub_ticks_others)
    CPU1[$key]="$(ub_per_req $((g1 - g0)) "$r1")/$(ub_per_req $((o1 - o0)) "$r1")"
    CPU64[$key]="$(ub_per_req $((g3 - g2)) "$r64")/$(ub_per_req $((o3 - o2)) "$r64")"
    P50[$key]=$(ub_field p50_us "$r1")
    RPS[$key]=$(ub_field rps "$r64")
    ERR[$key]="$(( $(ub_field non2xx "$r1") + $(ub_field non2xx "$r64") ))/$(( $(ub_field sockerr "$r1") + $(ub_field sockerr "$r64") ))"
    RSS[$key]=$(( $(bench_hwm_kb "$GW_PIDS") / 1024 ))
    ans=$(bench_gw_answered)
    # Records are durable within a batch_ms or so: wait (bounded) until the
    # table holds them all, then stop the gateway.
    if [ "$variant" = records ]; then
        local deadline=$((SECONDS + 30))
        while [ "$SECONDS" -lt "$deadline" ]; do
            rows1=$(bench_pg_sql 'SELECT count (*) FROM usage_records')
            [ $((rows1 - rows0)) -ge "$ans" ] && break
            sleep 0.2
        done
    fi
    bench_stop "$GW_PIDS"
    rows1=$(bench_pg_sql 'SELECT count (*) FROM usage_records')
    ANSWERED[$key]=$ans
    ROWS[$key]=$((rows1 - rows0))
    case "$variant" in
        tracing) EXTRA[$key]="$(( $(wc -l <"$BENCH_TMP/collector.log") - spans0 )) POSTs, $(tail -n +$((spans0 + 1)) "$BENCH_TMP/collector.log" | awk '{s += $1} END {printf "%.1f", s / 1048576}') MiB; $(grep -c 'collector did not take' "$BENCH_TMP/gw-$variant-$round.log" || true) refused";;
        json) lines=$(grep -c '"msg":"request"' "$BENCH_TMP/gw-$variant-$round.log" || true)
              EXTRA[$key]="$lines request lines";;
        *) EXTRA[$key]="";;
    esac
}

for round in $(seq 1 "$ROUNDS"); do
    bench_log "bench: round $round: upstream direct ..."
    DIRECT[$round]=$(bench_field p50_us "$(bench_wrk 1 1 "$DUR" "$UP_URL")")
    for variant in $(bench_round_order "$round" "${VARIANTS[@]}"); do
        ub_measure "$variant" "$round"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The median of the numbers given.
ub_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo
echo "machine: $machine; load average before: $load_before, after: $load_after"
echo "CPU in the second before the run: $idle_before; during the run: $(bench_cpu_share "$cpu1" "$(bench_cpu_snap)")"
echo "rounds: $ROUNDS, interleaved; phases ${DUR} s (after ${WARM} s warm-up); 1c = wrk -t1 -c1, ${CONNS}c = wrk -t2 -c$CONNS"
echo
direct_med=$(ub_median "${DIRECT[@]}")
declare -A MED_ADD MED_RPS
printf '%-9s %-26s %9s %9s %-26s %9s %7s %8s %6s\n' variant "p50 1c per round (us)" "+p50 med" "ratio" \
    "req/s ${CONNS}c per round" "req/s med" "ratio" "errors" "RSS"
printf '%-9s %-26s %9s %9s %-26s %9s %7s %8s %6s\n' "" "" "vs direct" "/off" "" "" "/off" "" "(MiB)"
printf '%-9s %-26s %9s\n' direct "$(for round in $(seq 1 "$ROUNDS"); do printf '%s ' "${DIRECT[$round]}"; done)" "-"
for v in "${VARIANTS[@]}"; do
    p50s=() rpss=() errs="" rss=0
    for round in $(seq 1 "$ROUNDS"); do
        p50s+=("${P50[$v,$round]}")
        rpss+=("${RPS[$v,$round]}")
        errs="$errs${errs:+ }${ERR[$v,$round]}"
        [ "${RSS[$v,$round]}" -gt "$rss" ] && rss=${RSS[$v,$round]}
    done
    MED_ADD[$v]=$(( $(ub_median "${p50s[@]}") - direct_med )); MED_RPS[$v]=$(ub_median "${rpss[@]}")
    ra="-"; rr="-"
    if [ -n "${MED_ADD[off]:-}" ]; then
        ra=$(awk -v a="${MED_ADD[$v]}" -v b="${MED_ADD[off]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        rr=$(awk -v a="${MED_RPS[$v]}" -v b="${MED_RPS[off]}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
    fi
    printf '%-9s %-26s %9s %9s %-26s %9s %7s %8s %6s\n' "$v" "${p50s[*]}" "${MED_ADD[$v]}" "$ra" \
        "${rpss[*]}" "${MED_RPS[$v]}" "$rr" "$errs" "$rss"
done
echo
echo "+p50: the median of the variant's p50s minus the median of the upstream direct's."
echo "errors: non-2xx / socket errors, summed over both phases, per round."
echo
echo "CPU per request (us, user + system, every thread), per round: gateway / others"
echo "(others: PostgreSQL's processes and the collector nginx; all share the 2 cores):"
printf '%-9s %-30s %-30s\n' variant "1 connection" "${CONNS} connections"
for v in "${VARIANTS[@]}"; do
    c1="" c64=""
    for round in $(seq 1 "$ROUNDS"); do
        c1="$c1${c1:+  }${CPU1[$v,$round]}"; c64="$c64${c64:+  }${CPU64[$v,$round]}"
    done
    printf '%-9s %-30s %-30s\n' "$v" "$c1" "$c64"
done
echo
echo "records kept (answered: data-plane requests from the gateway's /metrics, warm-up included;"
echo "rows: what usage_records gained while it ran):"
fail=0
for v in "${VARIANTS[@]}"; do
    for round in $(seq 1 "$ROUNDS"); do
        k="$v,$round"
        verdict=ok
        if [ "$v" = records ]; then
            [ "${ROWS[$k]}" = "${ANSWERED[$k]}" ] || { verdict=MISMATCH; fail=1; }
        else
            [ "${ROWS[$k]}" = 0 ] || { verdict="ROWS WITH RECORDS OFF"; fail=1; }
        fi
        printf '  %-8s round %s: answered %7s, rows %7s  %s%s\n' "$v" "$round" "${ANSWERED[$k]}" \
            "${ROWS[$k]}" "$verdict" "${EXTRA[$k]:+  (${EXTRA[$k]})}"
    done
done
printf '  usage_records: %s rows, %s distinct record ids\n' \
    "$(bench_pg_sql 'SELECT count (*) FROM usage_records')" \
    "$(bench_pg_sql 'SELECT count (DISTINCT record_id) FROM usage_records')"
exit "$fail"
