#!/usr/bin/env bash
# Before/after in one run: builds git revision REV (Release) in a temporary
# worktree, and this tree as it is (uncommitted changes included, or AIGW_BIN
# when set), then runs bench/run.sh with both, so the aigw targets of each
# are measured side by side against the same upstream and nginx hop, with
# labels "before (REV)" and "after".
# Usage: bench/compare.sh REV [SECONDS per phase, default 10]
#   e.g. bench/compare.sh main~3 5
#        BENCH_SPLIT=0 bench/compare.sh HEAD~1 3     # run.sh's variables apply
# The config, wrk script and run.sh are this tree's (bench/bench.yaml): the
# older binary must accept that config.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: bench/compare.sh REV [seconds per phase]" >&2; exit 2; fi
REV=$1
DUR=${2:-10}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SHA=$(git rev-parse --verify --quiet "$REV^{commit}") || { echo "compare: no revision $REV" >&2; exit 2; }

TMP=$(mktemp -d /tmp/aigw-compare.XXXXXX)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -e "$TMP/src" ]; then
        git -C "$ROOT" worktree remove --force "$TMP/src" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "compare: before = $REV ($(git log -1 --format='%h %s' "$SHA" | cut -c1-90))" >&2
echo "compare: after  = this tree ($(git log -1 --format='%h' HEAD)$(git diff --quiet HEAD -- . ':!bench' || echo ', with uncommitted changes'))" >&2
git worktree add --detach "$TMP/src" "$SHA" >/dev/null 2>&1 \
    || { echo "compare: git worktree add $REV failed" >&2; exit 1; }
echo "compare: building $REV (Release) in $TMP/build" >&2
cmake -S "$TMP/src" -B "$TMP/build" -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF \
    -DAIGW_WERROR=OFF >"$TMP/cmake.log" 2>&1 \
    && timeout 1800 cmake --build "$TMP/build" -j"$(nproc)" --target aigw >>"$TMP/cmake.log" 2>&1 \
    || { tail -40 "$TMP/cmake.log" >&2; echo "compare: building $REV failed" >&2; exit 1; }
# The binary is all run.sh needs: the source checkout can go now.
git -C "$ROOT" worktree remove --force "$TMP/src" >/dev/null 2>&1 || true

rc=0
AIGW_BIN_BEFORE="$TMP/build/aigw" BENCH_BEFORE_LABEL="$REV" bash "$ROOT/bench/run.sh" "$DUR" || rc=$?
exit "$rc"
