#!/usr/bin/env bash
# Streams benchmark (issue 4): ONE provider process holding 10,000 concurrent
# streaming chat requests against `aigw mock-provider` (1.5 s upstream
# latency), in a split deployment (aigw broker, aigw edge, one process each
# of aigw actor auth|ratelimit|guardrail|cache|provider) configured by
# bench/streams.yaml. The same load also goes straight at the mock, in the
# same run, so the gateway's added time to first token is a difference of
# two figures measured minutes apart on the same machine.
# Prints success (HTTP 200 + data: [DONE]), the ramp, TTFT p50/p95/p99
# direct and through the gateway, and peak RSS (VmHWM) of every process.
# Usage: bench/streams.sh [runs, default 1] [-- streams.mjs options, e.g.
#        --streams 10000 --latency-ms 1500 --ramp-ms 1000 --chunks 10
#        --chunk-delay-ms 100 --mock-threads 12000]
# STREAMS_STACKS=1 also saves gdb stacks of the provider during the warm phase
# (a diagnostic: it pauses the process). Logs are kept when a stream failed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1}"; shift || true
[ "${1:-}" = "--" ] && shift
# Release, asserts on; warnings stay warnings here (a benchmark build is not CI).
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF >/dev/null
make -C build-bench -j2 aigw >/dev/null
# 10,000 sockets in the client, the edge, the provider and the mock: each
# process needs more than 10,000 descriptors. The edge and the mock raise
# their own soft limit; the provider and Node inherit this one.
ulimit -n "$(ulimit -Hn)"
rc=0
for run in $(seq 1 "$RUNS"); do
    echo "=== run $run of $RUNS, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    AIGW_BIN=build-bench/aigw node bench/streams.mjs "$@" || rc=$?
done
exit "$rc"
