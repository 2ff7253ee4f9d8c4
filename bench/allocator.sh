#!/usr/bin/env bash
# `aigw run` on glibc's malloc, jemalloc and tcmalloc (Debian's libjemalloc2
# and libtcmalloc-minimal4, loaded with LD_PRELOAD), measured in one run in
# interleaved rounds by bench/variants.sh: bench/bench.yaml, medians over
# the rounds, ratios to glibc. The question: what the edge's handler threads
# and the pipeline thread pay for memory one allocates and the other frees.
#
#   bench/allocator.sh [SECONDS [ROUNDS]]   # seconds per phase (5), rounds (3)
#   AIGW_BIN=build-bench/aigw bench/allocator.sh 5 3
set -euo pipefail
# shellcheck source=bench/variants.sh
. "$(dirname "$0")/variants.sh"
VARIANTS=(glibc jemalloc tcmalloc)
LIBDIR=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for pkg in libjemalloc2 libtcmalloc-minimal4; do
    dpkg -s "$pkg" >/dev/null 2>&1 && continue
    [ "$(id -u)" = 0 ] || bench_die "$pkg missing: apt-get install $pkg"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$pkg" >/dev/null \
        || bench_die "apt-get install $pkg failed"
done

go_config() {
    cp bench/bench.yaml "$BENCH_TMP/$1.yaml"
    echo "$BENCH_TMP/$1.yaml"
}

go_env() {
    case "$1" in
        jemalloc) echo "LD_PRELOAD=$LIBDIR/libjemalloc.so.2";;
        tcmalloc) echo "LD_PRELOAD=$LIBDIR/libtcmalloc_minimal.so.4";;
    esac
}

variants_main "$@"
