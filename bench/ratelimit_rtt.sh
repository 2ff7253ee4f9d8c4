#!/usr/bin/env bash
# What limits with a reservation cost the data path (issue 11): the same
# gateway answering two keys, in interleaved rounds, in one run:
#
#   nolm    the master key without master_rpm: auth writes no `lm`; the
#           rate-limit stage answers with its legacy per-key rpm check (one
#           counter, nothing to reserve, nothing to settle)
#   limits  a key with rpm and tpm limits (out of reach): the owner
#           estimates the tokens, reserves them under a lease, and the edge
#           settles the real usage afterwards (one more message to the
#           owner per request)
#
# for two deployments: split (broker over tcp, the edge and each actor its
# own process, as bench/lib.sh's bench_start_split) and `aigw run` (one
# process). Both keys hit the same processes, so the ratio is the cost of
# the reserve and settle round trips, not of two placements. The upstream is
# bench/run.sh's nginx that answers at once; the config is bench/bench.yaml
# (cache on, every prompt unique: a miss) without master_rpm and with the
# limited key.
#
# Per deployment, round and key: p50 at 1 connection (wrk -t1 -c1) and
# req/s at 64 connections (wrk -t2 -c64), after a warm-up; the order of the
# keys alternates from round to round. The table shows medians over the
# rounds, the added p50 and the req/s ratio of limits against nolm.
#
# How to run:
#   bench/ratelimit_rtt.sh [SECONDS [ROUNDS]]   # seconds per phase (5), rounds (3)
#   AIGW_BIN=build-bench/aigw bench/ratelimit_rtt.sh 5 3
#   BENCH_DEPLOYS=split bench/ratelimit_rtt.sh   # one deployment
# Environment as bench/run.sh: AIGW_BIN, BENCH_CONNS, BENCH_WARMUP, BENCH_KEEP.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"

DUR="${1:-5}"
ROUNDS="${2:-3}"
case "$DUR$ROUNDS" in ''|*[!0-9]*) bench_die "usage: bench/ratelimit_rtt.sh [seconds [rounds]]";; esac
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-1}
read -r -a DEPLOYS <<<"${BENCH_DEPLOYS:-split run}"

bench_load_setup

machine=$(bench_machine)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_start_upstream
BASE="http://127.0.0.1:$UP_PORT/v1"

LKEY="sk-bench-limited-$RANDOM$RANDOM$RANDOM"
CONFIG="$BENCH_TMP/ratelimit_rtt.yaml"
{
    grep -v '^ *master_rpm:' bench/bench.yaml
    cat <<YAML
auth:
  keys:
    - name: bench-limited
      key: $LKEY
      tenant: bench
      role: developer
      limits:
        rpm: 1000000000
        tpm: 1000000000
YAML
} >"$CONFIG"

# rt_start_split NAME: bench_start_split with this script's config.
rt_start_split() {
    local name=$1 actor broker
    GW_PORT=$(bench_free_port)
    broker="tcp://127.0.0.1:$(bench_free_port)"
    # shellcheck disable=SC2046
    bench_start "$name-broker" env $(bench_aigw_env "$BASE") \
        "$BENCH_BIN" broker --bind "$broker" --config "$CONFIG"
    GW_PIDS=$BENCH_LAST_PID
    # shellcheck disable=SC2046
    bench_start "$name-edge" env $(bench_aigw_env "$BASE") \
        "$BENCH_BIN" edge --broker "$broker" --host 127.0.0.1 --port "$GW_PORT" --config "$CONFIG"
    GW_PIDS="$GW_PIDS $BENCH_LAST_PID"
    for actor in auth ratelimit guardrail cache provider; do
        # shellcheck disable=SC2046
        bench_start "$name-$actor" env $(bench_aigw_env "$BASE") \
            "$BENCH_BIN" actor "$actor" --broker "$broker" --config "$CONFIG"
        GW_PIDS="$GW_PIDS $BENCH_LAST_PID"
    done
    # shellcheck disable=SC2086
    bench_wait_url "http://127.0.0.1:$GW_PORT/readyz" 60 $GW_PIDS
}

# rt_headers KEY URL: status and the rate-limit headers of one chat.
rt_headers() {
    curl -s -m 10 -o /dev/null -D - -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"check $RANDOM$RANDOM\"}]}" \
        "$2" | tr -d '\r' | awk 'NR == 1 {printf "%s", $2} tolower($1) ~ /^x-ratelimit-(limit|remaining)-tokens:/ {printf " %s %s", $1, $2}'
}

rt_field() { local v; v=$(bench_field "$1" "$2"); echo "${v:-0}"; }
declare -A P50 RPS ERR

for deploy in "${DEPLOYS[@]}"; do
    if [ "$deploy" = split ]; then rt_start_split "gw-split"; else bench_start_run "gw-run" "$BENCH_BIN" "$BASE" "$CONFIG"; fi
    url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
    # The limited key must show its token limit, the master key none.
    h_lim=$(rt_headers "$LKEY" "$url"); h_no=$(rt_headers "$BENCH_KEY" "$url")
    bench_log "bench: $deploy: limits answers: $h_lim; nolm answers: $h_no"
    [[ "$h_lim" == 200*x-ratelimit-limit-tokens* ]] || bench_die "$deploy: the limited key shows no token limit: $h_lim (logs: $BENCH_TMP)"
    [[ "$h_no" == 200 ]] || bench_die "$deploy: the master key answered '$h_no' (logs: $BENCH_TMP)"
    for variant in nolm limits; do
        key=$BENCH_KEY; [ "$variant" = limits ] && key=$LKEY
        if [ "$WARM" -gt 0 ]; then
            BENCH_KEY=$key bench_wrk 1 1 "$WARM" "$url" >/dev/null
            BENCH_KEY=$key bench_wrk 2 "$CONNS" "$WARM" "$url" >/dev/null
        fi
    done
    for r in $(seq 1 "$ROUNDS"); do
        order="nolm limits"; [ $((r % 2)) = 0 ] && order="limits nolm"
        for variant in $order; do
            key=$BENCH_KEY; [ "$variant" = limits ] && key=$LKEY
            r1=$(BENCH_KEY=$key bench_wrk 1 1 "$DUR" "$url")
            r64=$(BENCH_KEY=$key bench_wrk 2 "$CONNS" "$DUR" "$url")
            P50[$deploy,$variant,$r]=$(rt_field p50_us "$r1")
            RPS[$deploy,$variant,$r]=$(rt_field rps "$r64")
            ERR[$deploy,$variant]="${ERR[$deploy,$variant]:-0}+$(rt_field non2xx "$r1")+$(rt_field sockerr "$r1")+$(rt_field non2xx "$r64")+$(rt_field sockerr "$r64")"
            bench_log "bench: $deploy round $r $variant: p50 ${P50[$deploy,$variant,$r]} us, ${RPS[$deploy,$variant,$r]} req/s at $CONNS"
        done
    done
    # shellcheck disable=SC2086
    bench_stop $GW_PIDS
done

# The median of the figures given.
rt_median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
rt_range() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "%s..%s", v[1], v[NR]}'; }

echo "# $(date -u +%F) $machine; load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS rounds of ${DUR} s per phase; medians (range over the rounds)"
printf '%-6s %-7s %20s %22s %8s\n' deploy key "p50 1c (us)" "req/s ${CONNS}c" errors
for deploy in "${DEPLOYS[@]}"; do
    for variant in nolm limits; do
        p=(); q=()
        for r in $(seq 1 "$ROUNDS"); do p+=("${P50[$deploy,$variant,$r]}"); q+=("${RPS[$deploy,$variant,$r]}"); done
        printf '%-6s %-7s %8s (%11s) %8s (%13s) %8s\n' "$deploy" "$variant" "$(rt_median "${p[@]}")" \
            "$(rt_range "${p[@]}")" "$(rt_median "${q[@]}")" "$(rt_range "${q[@]}")" \
            "$(( ${ERR[$deploy,$variant]} ))"
        eval "M_P50_$variant=$(rt_median "${p[@]}") M_RPS_$variant=$(rt_median "${q[@]}")"
    done
    # shellcheck disable=SC2154
    awk -v d="$deploy" -v a="$M_P50_nolm" -v b="$M_P50_limits" -v x="$M_RPS_nolm" -v y="$M_RPS_limits" \
        'BEGIN { printf "%-6s limits vs nolm: p50 %+d us (x%.3f), req/s x%.3f\n", d, b - a, b / a, y / x }'
done
