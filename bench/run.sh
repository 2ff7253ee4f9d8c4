#!/usr/bin/env bash
# Pipeline benchmark: the gateway (all five actors in the path) against the
# same upstream called directly, in one run, on this machine.
#   added latency p50/p99 at 1 connection, requests/s at 64 connections,
#   peak RSS; then 10,000 concurrent connections held through the gateway.
# Usage: bench/run.sh [seconds per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target aigw >/dev/null
BIN=build-bench/aigw
ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_url() {
    for _ in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer x' "$1")" = 200 ] && return 0
        sleep 0.1
    done
    echo "bench: $1 never became ready" >&2; exit 1
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

MOCK_PORT=$(free_port); GW_PORT=$(free_port)
export BENCH_KEY="sk-bench-$RANDOM$RANDOM"
$BIN mock-provider --port "$MOCK_PORT" --threads 256 >/dev/null &
pids+=($!); MOCK_PID=$!
wait_url "http://127.0.0.1:$MOCK_PORT/v1/models"
AIGW_MASTER_KEY="$BENCH_KEY" AIGW_PORT="$GW_PORT" OPENAI_API_KEY=bench \
OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" $BIN run --config bench/bench.yaml &
pids+=($!); GW_PID=$!
wait_url "http://127.0.0.1:$GW_PORT/readyz"

DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
GATEWAY="http://127.0.0.1:$GW_PORT/v1/chat/completions"
run_wrk() { wrk -t"$1" -c"$2" -d"$3"s --latency --timeout 10s -s bench/chat.lua "$4" | grep '^BENCH'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
run_wrk 1 1 2 "$GATEWAY" >/dev/null            # warm up connections and caches
d1=$(run_wrk 1 1 "$DUR" "$DIRECT");  g1=$(run_wrk 1 1 "$DUR" "$GATEWAY")
d64=$(run_wrk 2 64 "$DUR" "$DIRECT"); g64=$(run_wrk 2 64 "$DUR" "$GATEWAY")
rss_gw=$(hwm_kb "$GW_PID"); rss_mock=$(hwm_kb "$MOCK_PID")

printf '\n%-34s %12s %12s %12s\n' "figure" "direct" "gateway" "added"
printf '%-34s %12s %12s %12s\n' "p50 latency, 1 connection (us)" "$(field p50_us "$d1")" "$(field p50_us "$g1")" "$(( $(field p50_us "$g1") - $(field p50_us "$d1") ))"
printf '%-34s %12s %12s %12s\n' "p99 latency, 1 connection (us)" "$(field p99_us "$d1")" "$(field p99_us "$g1")" "$(( $(field p99_us "$g1") - $(field p99_us "$d1") ))"
printf '%-34s %12s %12s %12s\n' "requests/s, 64 connections" "$(field rps "$d64")" "$(field rps "$g64")" "-"
printf '%-34s %12s %12s %12s\n' "non-2xx / socket errors, 64 conn" "$(field non2xx "$d64")/$(field sockerr "$d64")" "$(field non2xx "$g64")/$(field sockerr "$g64")" "-"
printf '%-34s %12s %12s %12s\n' "peak RSS (MiB)" "$((rss_mock/1024))" "$((rss_gw/1024))" "-"

# 10,000 concurrent connections, each request held ~1 s by the upstream.
kill "$MOCK_PID"; wait "$MOCK_PID" 2>/dev/null || true
$BIN mock-provider --port "$MOCK_PORT" --threads 10240 --latency-ms 1000 >/dev/null &
pids+=($!); MOCK_PID=$!
wait_url "http://127.0.0.1:$MOCK_PORT/v1/models"
c10k=$(run_wrk 2 10000 "$DUR" "$GATEWAY")
printf '\n10,000 connections through the gateway (upstream latency 1 s, %s s):\n' "$DUR"
printf '  requests %s, %s req/s, non-2xx %s, socket errors %s, p50 %s us, p99 %s us\n' \
    "$(field requests "$c10k")" "$(field rps "$c10k")" "$(field non2xx "$c10k")" \
    "$(field sockerr "$c10k")" "$(field p50_us "$c10k")" "$(field p99_us "$c10k")"
printf '  gateway peak RSS %s MiB\n' "$(( $(hwm_kb "$GW_PID") / 1024 ))"
