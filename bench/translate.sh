#!/usr/bin/env bash
# Translation benchmark: what the Anthropic translation (actors/provider/adapters/
# aigw_anthropic.c) costs per request, in-process, beside the floor of just
# parsing and re-serialising the same JSON with Jansson, in the same run:
#   OpenAI -> Anthropic request and Anthropic -> OpenAI response on a ~2 KB
#   and a ~20 KB body (system prompt, three user turns, one tool), and a
#   streamed answer of 50 and 500 events through aigw_anthropic_stream_feed.
# Prints ns per call (thread CPU time, median of 11 batches; translation and
# floor batches alternate), calls/s on one core, and the ratio to the floor.
# Usage: bench/translate.sh [runs, default 2] [calls per batch, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-2}"
CALLS="${2:-2000}"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF >/dev/null
make -C build-bench -j2 aigw_bench_translate >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
    echo "--- run $run"
    build-bench/aigw_bench_translate "$CALLS"
done
