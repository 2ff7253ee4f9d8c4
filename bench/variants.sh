#!/usr/bin/env bash
# Variants of `aigw run` measured against each other in one run, in
# interleaved rounds (the order rotates from round to round, so the
# machine's drift hits each variant alike): sourced by a script that sets
# VARIANTS (names; the first is the baseline of the ratios) and defines
# go_config NAME, which writes the variant's config into $BENCH_TMP and
# prints its path, then calls variants_main "$@". It may also define go_env
# NAME, which prints KEY=VALUE words the variant's process gets besides
# (LD_PRELOAD, say).
#
# Upstream, config and load as bench/run.sh: an nginx that answers a chat
# completion at once, p50 at 1 connection (wrk -t1 -c1) and req/s at
# BENCH_CONNS (64) connections (wrk -t2), after a warm-up (BENCH_WARMUP
# seconds, 1); CPU per request of the gateway process. The table shows
# medians over the rounds and ratios to the first variant.
#   SCRIPT [SECONDS [ROUNDS]]   seconds per phase (5), rounds (3)
# The tables are read through go_column's nameref.
# shellcheck disable=SC2034
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BENCH_ROOT" || exit 1

TICK_US=$((1000000 / $(getconf CLK_TCK)))
go_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
go_per_req() {
    awk -v t="$1" -v n="$(bench_field requests "$2")" -v u="$TICK_US" \
        'BEGIN { if (n > 0) printf "%.0f", t * u / n; else print "-" }'
}

go_measure() {
    local variant=$1 round=$2 key="$1,$2" config url r1 r64 t0 t1 extra=()
    config=$(go_config "$variant")
    if declare -F go_env >/dev/null; then read -ra extra <<<"$(go_env "$variant")"; fi
    bench_start_run "gw-$variant-$round" "$BENCH_BIN" "http://127.0.0.1:$UP_PORT/v1" "$config" \
        "${extra[@]}"
    url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
    bench_warm_gateway "round $round: $variant" "$url"
    r1=$(bench_wrk 1 1 "$DUR" "$url")
    t0=$(go_ticks "$GW_PIDS")
    r64=$(bench_wrk 2 "$CONNS" "$DUR" "$url")
    t1=$(go_ticks "$GW_PIDS")
    P50[$key]=$(bench_field p50_us "$r1")
    RPS[$key]=$(bench_field rps "$r64")
    CPU[$key]=$(go_per_req $((t1 - t0)) "$r64")
    ERR[$key]=$(( $(bench_field non2xx "$r1") + $(bench_field non2xx "$r64") ))
    bench_stop "$GW_PIDS"
}

go_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
go_column() {
    local -n table=$1
    local v=$2 r out=()
    for r in $(seq 1 "$ROUNDS"); do out+=("${table[$v,$r]:-0}"); done
    go_median "${out[@]}"
}

variants_main() {
    declare -gA P50 RPS CPU ERR
    DUR="${1:-5}"
    ROUNDS="${2:-3}"
    case "$DUR$ROUNDS" in ''|*[!0-9]*) bench_die "usage: $0 [seconds [rounds]]";; esac
    CONNS=${BENCH_CONNS:-64}
    WARM=${BENCH_WARMUP:-1}

    bench_load_setup

    machine=$(bench_machine)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_start_upstream

    for round in $(seq 1 "$ROUNDS"); do
        for variant in $(bench_round_order "$round" "${VARIANTS[@]}"); do
            go_measure "$variant" "$round"
        done
    done
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)

    echo
    echo "machine: $machine; load average before: $load_before, after: $load_after"
    echo "rounds: $ROUNDS, interleaved; phases ${DUR} s (after ${WARM} s warm-up); 1c = wrk -t1 -c1, ${CONNS}c = wrk -t2 -c$CONNS"
    echo
    echo "| variant | p50 at 1c (µs) | req/s at ${CONNS}c | vs ${VARIANTS[0]} | gateway CPU per request at ${CONNS}c (µs) | non-2xx |"
    echo "|---|---|---|---|---|---|"
    base_rps=$(go_column RPS "${VARIANTS[0]}")
    for v in "${VARIANTS[@]}"; do
        rps=$(go_column RPS "$v")
        ratio=$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        errs=0
        for r in $(seq 1 "$ROUNDS"); do errs=$((errs + ${ERR[$v,$r]:-0})); done
        echo "| $v | $(go_column P50 "$v") | $rps | $ratio | $(go_column CPU "$v") | $errs |"
    done
}
