#!/usr/bin/env bash
# Data-path benchmark: the same upstream measured, side by side in one run,
#   1. direct,
#   2. behind an nginx proxy_pass hop (keep-alive to the upstream),
#   3. behind `aigw run` (one process),
#   4. behind the split deployment over tcp (aigw broker, aigw edge, and one
#      `aigw actor` process each for auth, ratelimit, guardrail, cache, provider).
#
# How to run:
#   bench/run.sh [SECONDS]            # SECONDS per phase, default 10
#   bench/run.sh 5                    # a shorter run (about a minute)
#   AIGW_BIN=build/aigw bench/run.sh  # a prebuilt binary instead of building
#   BENCH_SPLIT=0 BENCH_NGINX=0 bench/run.sh 3   # skip targets for a quick look
#   bench/compare.sh main~3 [SECONDS] # before/after: REV and this tree, one run
# It builds a Release aigw in build-bench/ (unless AIGW_BIN is set), installs
# nginx and wrk from Debian when missing, and starts everything on 127.0.0.1;
# everything it starts is stopped on exit. The machine is shared and noisy:
# compare the targets of one run (the ratio column), not runs with each other.
#
# The upstream is an nginx that answers every request at once with a fixed
# chat completion (`return 200`), so it is not the bottleneck. The gateways run
# bench/bench.yaml: cache on with every request a miss (bench/chat.lua makes
# each prompt unique), rate limit on but out of reach, log level warn.
#
# For each target: p50/p99 at 1 connection (wrk -t1 -c1), added p50 versus
# direct, req/s at 64 connections (wrk -t2 -c64), the ratio of req/s to the
# nginx hop's, non-2xx (wrk: status >= 400) / socket errors, context switches
# per request (voluntary + nonvoluntary, summed over every thread of every
# process of the target, read from /proc/PID/task/*/status before and after
# each phase, divided by the requests served), and peak RSS (VmHWM, summed
# over the target's processes).
#
# Environment:
#   AIGW_BIN=PATH             use this aigw instead of building this tree
#   AIGW_BIN_BEFORE=PATH      also measure this binary (bench/compare.sh sets it),
#   BENCH_BEFORE_LABEL=TEXT   labelled "before (TEXT)"; this tree is "after"
#   BENCH_DIRECT=0 BENCH_NGINX=0 BENCH_RUN=0 BENCH_SPLIT=0   skip a target
#   BENCH_C10K=1              also hold 10,000 connections through `aigw run`
#                             (aigw mock-provider upstream, 1 s latency; off by
#                             default: it is slow and heavy)
#   BENCH_NGINX_WORKERS=1     the hop's worker_processes (a number or auto)
#   BENCH_UPSTREAM_WORKERS=1  the upstream nginx's worker_processes
#   BENCH_CONNS=64            connections of the throughput phase
#   BENCH_WARMUP=1            seconds of warm-up per target and phase (0: none)
#   BENCH_RAW=1               also print wrk's BENCH lines
#   BENCH_KEEP=1              keep the temp folder (configs, logs)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"

DUR="${1:-10}"
case "$DUR" in ''|*[!0-9]*) bench_die "usage: bench/run.sh [seconds per phase]";; esac
[ "$DUR" -ge 1 ] || bench_die "seconds per phase must be at least 1"
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-1}
WRK_THREADS=2

bench_need wrk wrk
bench_need_nginx
bench_aigw_bin
ulimit -n "$(ulimit -Hn)"

# The aigw binaries: "key|label suffix|path".
bins=()
if [ -n "${AIGW_BIN_BEFORE:-}" ]; then
    [ -x "$AIGW_BIN_BEFORE" ] || bench_die "AIGW_BIN_BEFORE=$AIGW_BIN_BEFORE is not an executable"
    bins+=("before|, before (${BENCH_BEFORE_LABEL:-$AIGW_BIN_BEFORE})|$AIGW_BIN_BEFORE")
    bins+=("after|, after|$BENCH_BIN")
else
    bins+=("now||$BENCH_BIN")
fi

# Results, by target key.
order=()
declare -A LABEL P50 P99 RPS ERR1 ERR64 CS1 CS64 RSS

# measure KEY LABEL URL PIDS...: warm-up, the 1-connection phase and the
# CONNS-connection phase, with context switches of PIDS around each.
measure() {
    local key=$1 label=$2 url=$3; shift 3
    local r1 r64 c0 c1 c2 c3
    bench_log "bench: $label ..."
    if [ "$WARM" -gt 0 ]; then
        bench_wrk 1 1 "$WARM" "$url" >/dev/null
        bench_wrk "$WRK_THREADS" "$CONNS" "$WARM" "$url" >/dev/null
    fi
    c0=$(bench_ctxt "$@"); r1=$(bench_wrk 1 1 "$DUR" "$url"); c1=$(bench_ctxt "$@")
    c2=$(bench_ctxt "$@"); r64=$(bench_wrk "$WRK_THREADS" "$CONNS" "$DUR" "$url"); c3=$(bench_ctxt "$@")
    order+=("$key")
    LABEL[$key]=$label
    P50[$key]=$(bench_field p50_us "$r1"); P99[$key]=$(bench_field p99_us "$r1")
    RPS[$key]=$(bench_field rps "$r64")
    ERR1[$key]="$(bench_field non2xx "$r1")/$(bench_field sockerr "$r1")"
    ERR64[$key]="$(bench_field non2xx "$r64")/$(bench_field sockerr "$r64")"
    CS1[$key]=$(awk -v d=$((c1 - c0)) -v n="$(bench_field requests "$r1")" \
                'BEGIN { if (n > 0) printf "%.1f", d / n; else print "-" }')
    CS64[$key]=$(awk -v d=$((c3 - c2)) -v n="$(bench_field requests "$r64")" \
                 'BEGIN { if (n > 0) printf "%.1f", d / n; else print "-" }')
    RSS[$key]=$(( $(bench_hwm_kb "$@") / 1024 ))
    if [ -n "${BENCH_RAW:-}" ]; then
        printf '%s, 1 connection:  %s\n%s, %s connections: %s\n' "$label" "$r1" "$label" "$CONNS" "$r64" >&2
    fi
}

# check_gateway LABEL URL: one chat must answer 200 with X-Cache: MISS.
check_gateway() {
    local headers status cache
    headers=$(curl -s -m 10 -o /dev/null -D - -H "Authorization: Bearer $BENCH_KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"check $RANDOM$RANDOM\"}]}" \
        "$2" | tr -d '\r') || true
    status=$(awk 'NR == 1 {print $2}' <<<"$headers")
    cache=$(awk -F': ' 'tolower($1) == "x-cache" {print $2}' <<<"$headers")
    [ "$status" = 200 ] || bench_die "$1: a chat answered '${status:-nothing}', not 200 (logs: $BENCH_TMP)"
    [ "$cache" = MISS ] || bench_log "bench: warning: $1 answered X-Cache: '${cache}', expected MISS"
}

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
# How busy the machine is before we start (others' work), over 1 s.
cpu0=$(bench_cpu_snap); sleep 1; cpu1=$(bench_cpu_snap)
idle_before=$(bench_cpu_share "$cpu0" "$cpu1")

bench_start_upstream
UP_URL="http://127.0.0.1:$UP_PORT/v1/chat/completions"

if [ "${BENCH_DIRECT:-1}" != 0 ]; then
    # shellcheck disable=SC2086
    measure direct "upstream direct" "$UP_URL" $UP_PIDS
fi

if [ "${BENCH_NGINX:-1}" != 0 ]; then
    bench_start_hop
    # shellcheck disable=SC2086
    measure nginx "nginx proxy_pass hop" "http://127.0.0.1:$HOP_PORT/v1/chat/completions" $HOP_PIDS
    # shellcheck disable=SC2086
    bench_stop $HOP_PIDS
fi

for mode in run split; do
    if [ "$mode" = run ] && [ "${BENCH_RUN:-1}" = 0 ]; then continue; fi
    if [ "$mode" = split ] && [ "${BENCH_SPLIT:-1}" = 0 ]; then continue; fi
    for b in "${bins[@]}"; do
        IFS='|' read -r key suffix bin <<<"$b"
        if [ "$mode" = run ]; then
            label="aigw run$suffix"
            bench_start_run "$mode-$key" "$bin" "http://127.0.0.1:$UP_PORT/v1"
        else
            label="aigw split (tcp, 7 procs)$suffix"
            bench_start_split "$mode-$key" "$bin" "http://127.0.0.1:$UP_PORT/v1"
        fi
        url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
        check_gateway "$label" "$url"
        # shellcheck disable=SC2086
        measure "$mode-$key" "$label" "$url" $GW_PIDS
        # shellcheck disable=SC2086
        bench_stop $GW_PIDS
    done
done

# ---------------------------------------------------------------------------
# The table.

num_or_dash() { [ -n "$1" ] && echo "$1" || echo "-"; }
w=20
for k in "${order[@]}"; do [ "${#LABEL[$k]}" -gt "$w" ] && w=${#LABEL[$k]}; done

echo
echo "machine: $machine; CPU in the second before the run: $idle_before; during the run: $(bench_cpu_share "$cpu1" "$(bench_cpu_snap)")"
echo "phases: ${DUR} s each (after ${WARM} s warm-up), 1 connection = wrk -t1 -c1, $CONNS connections = wrk -t$WRK_THREADS -c$CONNS"
echo "nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'): upstream worker_processes ${UP_WORKERS}, hop worker_processes ${BENCH_NGINX_WORKERS:-1} (keepalive 256 to the upstream)"
echo "gateways: bench/bench.yaml (cache on, every request a miss; rate limit out of reach; log warn)"
echo
printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" \
    "target" "p50 1c" "p99 1c" "+p50 vs" "req/s" "ratio" "errors" "errors" "cs/req" "cs/req" "peak RSS"
printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" \
    "" "(us)" "(us)" "direct" "${CONNS}c" "/nginx" "1c" "${CONNS}c" "1c" "${CONNS}c" "(MiB)"
for k in "${order[@]}"; do
    added="-"
    if [ -n "${P50[direct]:-}" ] && [ "$k" != direct ] && [ -n "${P50[$k]}" ]; then
        added=$(( P50[$k] - P50[direct] ))
    fi
    ratio="-"
    if [ -n "${RPS[nginx]:-}" ] && [ -n "${RPS[$k]}" ] && [ "${RPS[nginx]}" != 0 ]; then
        ratio=$(awk -v a="${RPS[$k]}" -v b="${RPS[nginx]}" 'BEGIN { printf "%.3f", a / b }')
    fi
    printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" "${LABEL[$k]}" \
        "$(num_or_dash "${P50[$k]}")" "$(num_or_dash "${P99[$k]}")" "$added" \
        "$(num_or_dash "${RPS[$k]}")" "$ratio" "${ERR1[$k]}" "${ERR64[$k]}" \
        "${CS1[$k]}" "${CS64[$k]}" "${RSS[$k]}"
done
echo
echo "errors: non-2xx (status >= 400) / socket errors (connect, read, write, timeout)."
echo "cs/req: voluntary + nonvoluntary context switches over every thread of the target's"
echo "  processes (upstream direct: the upstream nginx; hop: the hop nginx only; aigw: every"
echo "  aigw process), per request served in that phase. peak RSS: VmHWM summed the same way."

# ---------------------------------------------------------------------------
# 10,000 concurrent connections through `aigw run`, each request held ~1 s by
# an `aigw mock-provider` upstream (optional: BENCH_C10K=1).
if [ "${BENCH_C10K:-0}" != 0 ]; then
    MOCK_PORT=$(bench_free_port)
    bench_start mock-c10k "$BENCH_BIN" mock-provider --port "$MOCK_PORT" --threads 10240 --latency-ms 1000
    MOCK_PID=$BENCH_LAST_PID
    bench_wait_url "http://127.0.0.1:$MOCK_PORT/v1/models" 30 "$MOCK_PID"
    echo
    printf '10,000 connections through aigw run (mock upstream, 1 s latency, %s s):\n' "$DUR"
    for b in "${bins[@]}"; do
        IFS='|' read -r key suffix bin <<<"$b"
        bench_start_run "c10k-$key" "$bin" "http://127.0.0.1:$MOCK_PORT/v1"
        c10k=$(bench_wrk 2 10000 "$DUR" "http://127.0.0.1:$GW_PORT/v1/chat/completions")
        printf '  aigw run%s: requests %s, %s req/s, non-2xx %s, socket errors %s, p50 %s us, p99 %s us, peak RSS %s MiB\n' \
            "$suffix" "$(bench_field requests "$c10k")" "$(bench_field rps "$c10k")" \
            "$(bench_field non2xx "$c10k")" "$(bench_field sockerr "$c10k")" \
            "$(bench_field p50_us "$c10k")" "$(bench_field p99_us "$c10k")" \
            "$(( $(bench_hwm_kb $GW_PIDS) / 1024 ))"
        # shellcheck disable=SC2086
        bench_stop $GW_PIDS
    done
fi
