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

bench_load_setup

# The aigw binaries: "key|label suffix|path".
bins=()
if [ -n "${AIGW_BIN_BEFORE:-}" ]; then
    [ -x "$AIGW_BIN_BEFORE" ] || bench_die "AIGW_BIN_BEFORE=$AIGW_BIN_BEFORE is not an executable"
    bins+=("before|, before (${BENCH_BEFORE_LABEL:-$AIGW_BIN_BEFORE})|$AIGW_BIN_BEFORE")
    bins+=("after|, after|$BENCH_BIN")
else
    bins+=("now||$BENCH_BIN")
fi

machine=$(bench_machine)
# How busy the machine is before we start (others' work), over 1 s.
cpu0=$(bench_cpu_snap); sleep 1; cpu1=$(bench_cpu_snap)
idle_before=$(bench_cpu_share "$cpu0" "$cpu1")

bench_start_upstream
UP_URL="http://127.0.0.1:$UP_PORT/v1/chat/completions"

if [ "${BENCH_DIRECT:-1}" != 0 ]; then
    # shellcheck disable=SC2086
    bench_measure direct "upstream direct" "$UP_URL" $UP_PIDS
fi

if [ "${BENCH_NGINX:-1}" != 0 ]; then
    bench_start_hop
    # shellcheck disable=SC2086
    bench_measure nginx "nginx proxy_pass hop" "http://127.0.0.1:$HOP_PORT/v1/chat/completions" $HOP_PIDS
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
        bench_check_gateway "$label" "$url"
        # shellcheck disable=SC2086
        bench_measure "$mode-$key" "$label" "$url" $GW_PIDS
        # shellcheck disable=SC2086
        bench_stop $GW_PIDS
    done
done

# ---------------------------------------------------------------------------
# The table.

echo
echo "machine: $machine; CPU in the second before the run: $idle_before; during the run: $(bench_cpu_share "$cpu1" "$(bench_cpu_snap)")"
echo "phases: ${DUR} s each (after ${WARM} s warm-up), 1 connection = wrk -t1 -c1, $CONNS connections = wrk -t$WRK_THREADS -c$CONNS"
echo "nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'): upstream worker_processes ${UP_WORKERS}, hop worker_processes ${BENCH_NGINX_WORKERS:-1} (keepalive 256 to the upstream)"
echo "gateways: bench/bench.yaml (cache on, every request a miss; rate limit out of reach; log warn)"
echo
bench_table
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
