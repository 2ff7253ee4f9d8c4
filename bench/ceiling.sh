#!/usr/bin/env bash
# The ceiling a CivetWeb edge (a thread per connection, Debian's libcivetweb)
# puts on throughput, measured side by side in one run against the same
# upstream and nginx hop as bench/run.sh:
#   1. the upstream direct,
#   2. an nginx proxy_pass hop (keep-alive to the upstream),
#   3. civetweb fixed:   CivetWeb answering a fixed chat completion itself,
#   4. civetweb handoff: the same, but each request goes to one other thread
#      and back (a lock-free stack + eventfd, a condvar per request), the
#      hand-off pair `aigw run` pays between CivetWeb and its I/O thread,
#   5. civetweb proxy:   CivetWeb relaying each body to the upstream over a
#      per-thread keep-alive libcurl handle, with no gateway work,
#   6. `aigw run` (only when AIGW_BIN is given), with bench/bench.yaml.
# bench/civetweb_ceiling.c is the server of 3-5, started with the options
# http-edge/aigw_edge.c gives mg_start, once with as many threads as
# bench.yaml's server.threads (what `aigw run` starts here, 10,240) and once
# with 256. The thread count matters beyond memory: CivetWeb's idle workers
# wait on its socket queue's condvar, and on a 2-CPU machine Linux 6.17+
# gives a threaded process a private futex hash of 16 buckets (PR_FUTEX_HASH),
# so about one futex in 16 shares a bucket with 10,000 waiters, and a wake on
# it walks them all under the bucket's lock (bench/RESULTS.md, issue 8: "The
# ceiling of a CivetWeb edge").
#
# How to run:
#   bench/ceiling.sh [SECONDS]                        # SECONDS per phase, default 10
#   AIGW_BIN=build-rel/aigw bench/ceiling.sh 5        # also `aigw run`
# It builds civetweb_ceiling with cc into its temp folder, installs nginx and
# wrk from Debian when missing, starts everything on 127.0.0.1 and stops it on
# exit. The load, the figures and the table are bench/run.sh's (bench/lib.sh):
# p50/p99 at 1 connection, req/s at BENCH_CONNS (64) connections and its
# ratio to the nginx hop, context switches per request over every thread of
# the target's processes. The machine is shared and noisy: compare the
# targets of one run, not runs with each other.
#
# Environment: AIGW_BIN, BENCH_CONNS, BENCH_WARMUP, BENCH_NGINX_WORKERS,
# BENCH_UPSTREAM_WORKERS, BENCH_RAW, BENCH_KEEP as in bench/run.sh, and
#   BENCH_CEILING_THREADS="N..."  civetweb_ceiling's num_threads, one set of
#                             targets per count (default: bench/bench.yaml's
#                             server.threads, then 256)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"

DUR="${1:-10}"
case "$DUR" in ''|*[!0-9]*) bench_die "usage: bench/ceiling.sh [seconds per phase]";; esac
[ "$DUR" -ge 1 ] || bench_die "seconds per phase must be at least 1"
CONNS=${BENCH_CONNS:-64}
WARM=${BENCH_WARMUP:-1}
WRK_THREADS=2
# The thread count `aigw run` starts CivetWeb with in this benchmark, then
# one that is plenty for CONNS connections.
yaml_threads=$(sed -n 's/^  threads: *\([0-9][0-9]*\).*/\1/p' bench/bench.yaml | head -1)
THREADS=${BENCH_CEILING_THREADS:-${yaml_threads:-10240} 256}
for t in $THREADS; do
    case "$t" in ''|*[!0-9]*) bench_die "BENCH_CEILING_THREADS: '$t' is not a number";; esac
done

bench_need wrk wrk
bench_need_nginx
bench_need cc gcc
bench_need pkg-config pkg-config
# aigw's own build needs both (tests/run.sh installs them).
[ -e /usr/include/civetweb.h ] || bench_die "civetweb.h missing: apt-get install libcivetweb-dev"
pkg-config --exists libcurl || bench_die "libcurl missing: apt-get install libcurl4-openssl-dev"
if [ -n "${AIGW_BIN:-}" ]; then bench_aigw_bin; fi
ulimit -n "$(ulimit -Hn)"

# Release-like flags, as the CMake Release build of aigw (-O2); CivetWeb has
# no .pc file.
CEIL_BIN="$BENCH_TMP/civetweb_ceiling"
# shellcheck disable=SC2046
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -o "$CEIL_BIN" bench/civetweb_ceiling.c \
    -lcivetweb $(pkg-config --cflags --libs libcurl) -lpthread >"$BENCH_TMP/cc.log" 2>&1 \
    || { cat "$BENCH_TMP/cc.log" >&2; bench_die "building civetweb_ceiling failed"; }

machine=$(bench_machine)
# How busy the machine is before we start (others' work), over 1 s.
cpu0=$(bench_cpu_snap); sleep 1; cpu1=$(bench_cpu_snap)
idle_before=$(bench_cpu_share "$cpu0" "$cpu1")

bench_start_upstream
UP_URL="http://127.0.0.1:$UP_PORT/v1/chat/completions"
# shellcheck disable=SC2086
bench_measure direct "upstream direct" "$UP_URL" $UP_PIDS

bench_start_hop
# shellcheck disable=SC2086
bench_measure nginx "nginx proxy_pass hop" "http://127.0.0.1:$HOP_PORT/v1/chat/completions" $HOP_PIDS
# shellcheck disable=SC2086
bench_stop $HOP_PIDS

for threads in $THREADS; do
    for mode in fixed handoff proxy; do
        port=$(bench_free_port)
        bench_start "civetweb-$mode-$threads" "$CEIL_BIN" "$mode" "$port" "$threads" "$UP_URL"
        pid=$BENCH_LAST_PID
        # CivetWeb serves while mg_start still creates threads: measure only
        # once all of them exist (10,240 take seconds here).
        bench_wait_url "http://127.0.0.1:$port/v1/models" 60 "$pid"
        deadline=$((SECONDS + 60))
        until [ "$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)" -gt "$threads" ]; do
            [ "$SECONDS" -lt "$deadline" ] || bench_die "civetweb $mode: $threads threads not up in 60 s"
            sleep 0.2
        done
        bench_measure "civetweb-$mode-$threads" "civetweb $mode, $threads thr" \
            "http://127.0.0.1:$port/v1/chat/completions" "$pid"
        bench_stop "$pid"
    done
done

if [ -n "${AIGW_BIN:-}" ]; then
    bench_start_run run "$BENCH_BIN" "http://127.0.0.1:$UP_PORT/v1"
    url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
    bench_check_gateway "aigw run" "$url"
    # shellcheck disable=SC2086
    bench_measure run "aigw run" "$url" $GW_PIDS
    # shellcheck disable=SC2086
    bench_stop $GW_PIDS
fi

echo
echo "machine: $machine; CPU in the second before the run: $idle_before; during the run: $(bench_cpu_share "$cpu1" "$(bench_cpu_snap)")"
echo "phases: ${DUR} s each (after ${WARM} s warm-up), 1 connection = wrk -t1 -c1, $CONNS connections = wrk -t$WRK_THREADS -c$CONNS, bench/chat.lua"
echo "nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'): upstream worker_processes ${UP_WORKERS}, hop worker_processes ${HOP_WORKERS} (keepalive 256 to the upstream)"
echo "civetweb $(dpkg-query -W -f='${Version}' libcivetweb1 2>/dev/null || echo '?'), num_threads ${THREADS// / and }, keep-alive on (the options of http-edge/aigw_edge.c); libcurl $(pkg-config --modversion libcurl)"
echo
bench_table
echo "cs/req: voluntary + nonvoluntary context switches over every thread of the target's"
echo "  processes (upstream direct: the upstream nginx; hop: the hop nginx only; civetweb:"
echo "  civetweb_ceiling; aigw: the aigw process), per request served in that phase."
echo "  The upstream's own switches are not in the proxies' figures. peak RSS: VmHWM."
