#!/usr/bin/env bash
#  ratelimit_ab: the rate-limit engine's decision cost and memory, this
#  tree's engine against the one at BASE, in one run with the rounds
#  interleaved (the machine is shared: old and new see the same noise).
#
#  Usage: bench/ratelimit_ab.sh [BASE] [ROUNDS] [KEYS] [CHECKS]
#  BASE defaults to 62ca335 (the engine before cells). Builds a Release
#  tree in build-bench (no sanitizers) as bench/lib.sh does, then the old
#  engine with the same bench/ratelimit_bench.c against it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:-62ca335}
ROUNDS=${2:-5}
KEYS=${3:-1000000}
CHECKS=${4:-2000000}
BUILD="$ROOT/build-bench"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF -DAIGW_WERROR=OFF \
    >"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target aigw_bench_ratelimit >>"$TMP/cmake.log" 2>&1 \
    || { tail -40 "$TMP/cmake.log" >&2; exit 1; }
NEW="$BUILD/aigw_bench_ratelimit"

#  The old engine replaces the new one at link time (its object comes
#  first; the archive then supplies only the table and the heap).
git -C "$ROOT" show "$BASE:actors/ratelimit/aigw_rlengine.c" >"$TMP/old_rlengine.c"
git -C "$ROOT" show "$BASE:actors/ratelimit/aigw_rlengine.h" >"$TMP/aigw_rlengine.h"
OLD="$TMP/aigw_bench_ratelimit_old"
cc -O2 -D_GNU_SOURCE -I"$TMP" -I"$ROOT/core" -o "$OLD" "$ROOT/bench/ratelimit_bench.c" \
    "$TMP/old_rlengine.c" "$BUILD/libaigwcore.a"

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# base $BASE vs $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- actors/ratelimit || echo '+changes'), $KEYS keys, $CHECKS checks, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        bin=$OLD
        [ "$which" = new ] && bin=$NEW
        load=$(cut -d' ' -f1 /proc/loadavg)
        out=$("$bin" "$KEYS" "$CHECKS")
        full=$(echo "$out" | sed -n 's/.*live: \([0-9.]*\) us per check.*/\1/p')
        rpm=$(echo "$out" | sed -n 's/.*rpm-only checks: \([0-9.]*\) us.*/\1/p')
        own=$(echo "$out" | sed -n 's/.*engine.s own \([0-9.]*\) MB.*/\1/p')
        rss=$(echo "$out" | sed -n 's/.*resident +\([0-9.]*\) MB.*/\1/p')
        printf '%s\t%d\tfull %s us\trpm-only %s us\town %s MB\tresident %s MB\tload %s\n' \
            "$which" "$r" "$full" "$rpm" "$own" "$rss" "$load"
    done
done | tee "$TMP/rows"
echo "# median (min..max) over $ROUNDS rounds"
for which in old new; do
    for col in 3 4; do
        grep "^$which" "$TMP/rows" | awk -F'\t' -v c=$col '{split($c, a, " "); print a[2]}' \
            | sort -n | awk -v w=$which -v c=$col '{v[NR]=$1} END {
                printf "%s %s: %.3f us (%.3f..%.3f)\n", w, c == 3 ? "full check" : "rpm-only",
                    v[int((NR + 1) / 2)], v[1], v[NR]}'
    done
    grep "^$which" "$TMP/rows" | head -1 | awk -F'\t' -v w=$which -v k=$KEYS '{
        split($5, a, " "); split($6, b, " ");
        printf "%s memory: own %s MB, resident %s MB: %.0f bytes per key\n", w, a[2], b[2], b[2] * 1e6 / k}'
done
