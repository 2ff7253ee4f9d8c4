#!/usr/bin/env bash
#  guardrail_ab: the guardrail's detectors on a 4 KiB prompt, this tree's
#  engine against the one at BASE, in one run with the rounds interleaved
#  (the machine is shared: old and new see the same noise).
#
#  Usage: bench/guardrail_ab.sh [BASE] [ROUNDS]
#  BASE defaults to 9acdce2 (the engine before the ASCII word path).
#  Builds a Release tree in build-bench (no sanitizers) as bench/lib.sh
#  does, then the old aigw_detect.c and aigw_inject.c with the same
#  bench/guardrail_bench.c against it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:-9acdce2}
ROUNDS=${2:-5}
BUILD="$ROOT/build-bench"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF -DAIGW_WERROR=OFF \
    >"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target aigw_bench_guardrail >>"$TMP/cmake.log" 2>&1 \
    || { tail -40 "$TMP/cmake.log" >&2; exit 1; }
NEW="$BUILD/aigw_bench_guardrail"

#  The old engine replaces the new one at link time (its objects come
#  first), with the same defines and libraries as the new bench.
G=actors/guardrail
for f in aigw_detect.c aigw_detect.h aigw_inject.c aigw_inject.h; do
    git -C "$ROOT" show "$BASE:$G/$f" >"$TMP/$f"
done
FLAGS=$(sed -n 's/^C_DEFINES = //p' "$BUILD/CMakeFiles/aigw_bench_guardrail.dir/flags.make")
LIBS=$(sed 's/.*libaigwcore.a//' "$BUILD/CMakeFiles/aigw_bench_guardrail.dir/link.txt")
OLD="$TMP/aigw_bench_guardrail_old"
eval cc -O2 -std=gnu11 "$FLAGS" -I"$TMP" -I"$ROOT/$G" -I"$ROOT/core" -I"$ROOT/schemas" -I"$ROOT/tests" -o "$OLD" \
    "$ROOT/bench/guardrail_bench.c" "$TMP/aigw_detect.c" "$TMP/aigw_inject.c" \
    "$BUILD/libaigwcore.a" "$LIBS"

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# base $BASE vs $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- $G || echo '+changes'), $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        bin=$OLD
        [ "$which" = new ] && bin=$NEW
        load=$(cut -d' ' -f1 /proc/loadavg)
        out=$("$bin")
        pick() { echo "$out" | grep "$1" | sed -n 's/.*: *\([0-9.]*\) µs.*/\1/p'; }
        printf '%s\t%d\tplain %s\tdirty %s\taccented %s\tchunk %s\tpii %s\tsecrets %s\tinjection %s\tlist %s\tload %s\n' \
            "$which" "$r" "$(pick 'plain prose')" "$(pick 'an injection:')" "$(pick 'accented')" "$(pick 'streamed')" \
            "$(pick '^PII')" "$(pick '^secrets')" "$(pick '^injection')" "$(pick 'policy list')" "$load"
    done
done | tee "$TMP/rows"
echo "# median (min..max) over $ROUNDS rounds, µs"
for which in old new; do
    for col in 3 4 5 6 7 8 9 10; do
        grep "^$which" "$TMP/rows" | awk -F'\t' -v c=$col '{split($c, a, " "); print a[1], a[2]}' \
            | sort -k2 -n | awk -v w=$which '{n=$1; v[NR]=$2} END {
                printf "%s %-9s %6.2f (%.2f..%.2f)\n", w, n, v[int((NR + 1) / 2)], v[1], v[NR]}'
    done
done
