#!/usr/bin/env bash
# `aigw run` with one pipeline thread and with two (server.pipelines), in
# one run: whether a second thread of stages pays for its cross-thread hops
# (a rate-limit key and a cache entry each have one owning thread, so most
# requests cross to the other thread at least once). bench/bench.yaml,
# usage records off; bench/variants.sh measures and prints medians over
# the rounds with ratios to p1.
#
#   bench/pipelines.sh [SECONDS [ROUNDS]]   # seconds per phase (5), rounds (3)
#   AIGW_BIN=build-bench/aigw bench/pipelines.sh 5 3
set -euo pipefail
# shellcheck source=bench/variants.sh
. "$(dirname "$0")/variants.sh"
VARIANTS=(p1 p2)

# The config of VARIANT pN: bench/bench.yaml with N pipelines.
go_config() {
    local file="$BENCH_TMP/$1.yaml"
    {
        sed "s/^server:/server:\n  pipelines: ${1#p}/" bench/bench.yaml
        echo "usage: {enabled: false}"
    } >"$file"
    echo "$file"
}

variants_main "$@"
