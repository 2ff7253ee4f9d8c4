# shellcheck shell=bash disable=SC2034
# Shared by bench/run.sh, bench/ceiling.sh, bench/compare.sh and bench/profile.sh:
# source it. Processes, ports, the nginx upstream and hop, aigw deployments,
# wrk, the /proc readings (context switches, peak RSS) and the side-by-side
# table. Everything listens on 127.0.0.1.
#
# Every process started here goes through bench_start, runs under
# `setpriv --pdeathsig KILL` (the kernel kills it if the script dies, even by
# SIGKILL) and is stopped by the EXIT trap (TERM, then KILL after 5 s). Every
# wait is bounded.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_TMP="$(mktemp -d /tmp/aigw-bench.XXXXXX)"
bench_pids=()
BENCH_LAST_PID=

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# True while PID exists and is not a zombie.
bench_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# True when PID is a child or grandchild (nginx workers) of this script: a
# pid that ended and was reused by someone else's process is left alone.
bench_ours() {
    local ppid gppid
    ppid=$(awk '{print $4}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$ppid" = "$$" ] && return 0
    gppid=$(awk '{print $4}' "/proc/$ppid/stat" 2>/dev/null) || return 1
    [ "$gppid" = "$$" ]
}

# bench_wait_gone TENTHS PID...: waits up to TENTHS tenths of a second for
# every PID given to exit.
bench_wait_gone() {
    local tries=$1 p alive
    shift
    for _ in $(seq 1 "$tries"); do
        alive=0
        for p in "$@"; do bench_alive "$p" && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
}

# Stop PIDS (ours only): SIGTERM, up to 5 s, then SIGKILL; they leave
# bench_pids.
bench_stop() {
    local p mine=() rest=()
    for p in "$@"; do bench_ours "$p" && mine+=("$p"); done
    for p in "${bench_pids[@]}"; do
        [[ " $* " == *" $p "* ]] || rest+=("$p")
    done
    bench_pids=("${rest[@]}")
    set -- "${mine[@]}"
    [ $# -gt 0 ] || return 0
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    bench_wait_gone 50 "$@"
    for p in "$@"; do
        if bench_alive "$p"; then
            bench_log "bench: pid $p ignored SIGTERM for 5 s: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    # A stopped gateway's ports and memory are gone before the next target.
    bench_wait_gone 20 "$@"
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "${#bench_pids[@]}" -gt 0 ]; then bench_stop "${bench_pids[@]}"; fi
    if [ "$rc" != 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
        bench_log "bench: logs and configs kept in $BENCH_TMP"
    else
        rm -rf "$BENCH_TMP"
    fi
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

# bench_start NAME CMD...: CMD in the background, output to $BENCH_TMP/NAME.log;
# its pid in BENCH_LAST_PID (not in a subshell: the pid list is global).
bench_start() {
    local name=$1; shift
    setpriv --pdeathsig KILL -- "$@" >"$BENCH_TMP/$name.log" 2>&1 &
    BENCH_LAST_PID=$!
    bench_pids+=("$BENCH_LAST_PID")
}

bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_wait_url URL SECONDS PID...: until URL answers 200 (with the bench
# key), or fail if a PID exits or SECONDS pass.
bench_wait_url() {
    local url=$1 secs=$2 p; shift 2
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        for p in "$@"; do
            bench_alive "$p" || bench_die "pid $p exited while waiting for $url (logs: $BENCH_TMP)"
        done
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' \
              -H "Authorization: Bearer ${BENCH_KEY:-x}" "$url")" = 200 ] && return 0
        sleep 0.1
    done
    bench_die "$url not ready within $secs s (logs: $BENCH_TMP)"
}

# Needed tools: installed from Debian when missing (root only).
bench_need() {   # bench_need COMMAND PACKAGE
    command -v "$1" >/dev/null && return 0
    [ "$(id -u)" = 0 ] || bench_die "$1 missing: apt-get install $2"
    bench_log "bench: installing $2"
    if [ -z "${BENCH_APT_UPDATED:-}" ]; then
        timeout 300 apt-get update -qq >/dev/null || true
        BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$2" >/dev/null \
        || bench_die "apt-get install $2 failed"
    command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || bench_die "$1 still missing after installing $2"
}
bench_need_nginx() {
    PATH="$PATH:/usr/sbin"
    bench_need nginx nginx
}

# The aigw binary: AIGW_BIN, else a Release build of this tree in build-bench.
bench_aigw_bin() {
    if [ -n "${AIGW_BIN:-}" ]; then
        [ -x "$AIGW_BIN" ] || bench_die "AIGW_BIN=$AIGW_BIN is not an executable"
        BENCH_BIN="$(cd "$(dirname "$AIGW_BIN")" && pwd)/$(basename "$AIGW_BIN")"
        return 0
    fi
    bench_log "bench: building a Release aigw in build-bench"
    cmake -S "$BENCH_ROOT" -B "$BENCH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DAIGW_SANITIZE=OFF -DAIGW_WERROR=OFF >"$BENCH_TMP/cmake.log" 2>&1 \
        || { cat "$BENCH_TMP/cmake.log" >&2; bench_die "cmake failed"; }
    cmake --build "$BENCH_ROOT/build-bench" -j"$(nproc)" --target aigw >>"$BENCH_TMP/cmake.log" 2>&1 \
        || { tail -40 "$BENCH_TMP/cmake.log" >&2; bench_die "build failed"; }
    BENCH_BIN="$BENCH_ROOT/build-bench/aigw"
}

# What a load benchmark of aigw needs: wrk, nginx, the aigw binary
# (BENCH_BIN) and descriptors enough for its connections.
bench_load_setup() {
    bench_need wrk wrk
    bench_need_nginx
    bench_aigw_bin
    ulimit -n "$(ulimit -Hn)"
}

# ---------------------------------------------------------------------------
# nginx: one instance per role, each with its own prefix, config and logs,
# in the foreground (daemon off). Sets NGX_PORT and NGX_PIDS (master+workers).

# The chat completion the upstream answers, shaped like aigw mock-provider's.
BENCH_CHAT_JSON='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}'
BENCH_MODELS_JSON='{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"bench"}]}'

# bench_nginx NAME WORKERS SERVER_BLOCK: start nginx NAME with WORKERS
# worker processes (a number or auto) and the given http-level text.
bench_nginx() {
    local name=$1 workers=$2 body=$3 dir="$BENCH_TMP/$1" user=""
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && user="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user
worker_processes $workers;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
$body
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -t >"$dir/test.log" 2>&1 \
        || { cat "$dir/test.log" >&2; bench_die "nginx $name: bad config"; }
    bench_start "nginx-$name" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;'
    NGX_MASTER=$BENCH_LAST_PID
}

# Wait for the workers of master PID to exist; NGX_PIDS = master + workers.
bench_nginx_pids() {
    local master=$1 kids="" _
    for _ in $(seq 1 50); do
        kids=$(cat /proc/"$master"/task/*/children 2>/dev/null | tr -s ' ' ' ') || true
        [ -n "${kids// /}" ] && break
        sleep 0.1
    done
    NGX_PIDS="$master $kids"
}

# The upstream: answers every chat completion at once with BENCH_CHAT_JSON.
# Sets UP_PORT, UP_PIDS, UP_WORKERS.
bench_start_upstream() {
    UP_WORKERS=${BENCH_UPSTREAM_WORKERS:-1}
    UP_PORT=$(bench_free_port)
    bench_nginx upstream "$UP_WORKERS" "
    server {
        listen 127.0.0.1:$UP_PORT backlog=16384;
        default_type application/json;
        location = /v1/models { return 200 '$BENCH_MODELS_JSON'; }
        location / { return 200 '$BENCH_CHAT_JSON'; }
    }"
    bench_wait_url "http://127.0.0.1:$UP_PORT/v1/models" 10 "$NGX_MASTER"
    bench_nginx_pids "$NGX_MASTER"; UP_PIDS=$NGX_PIDS
}

# The hop: proxy_pass to the upstream over kept-alive connections.
# Sets HOP_PORT, HOP_PIDS, HOP_WORKERS.
bench_start_hop() {
    HOP_WORKERS=${BENCH_NGINX_WORKERS:-1}
    HOP_PORT=$(bench_free_port)
    bench_nginx hop "$HOP_WORKERS" "
    upstream bench_upstream {
        server 127.0.0.1:$UP_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$HOP_PORT backlog=16384;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
    bench_wait_url "http://127.0.0.1:$HOP_PORT/v1/models" 10 "$NGX_MASTER"
    bench_nginx_pids "$NGX_MASTER"; HOP_PIDS=$NGX_PIDS
}

# ---------------------------------------------------------------------------
# aigw deployments, configured by bench/bench.yaml (cache on, rate limit out of
# reach, log level warn). BENCH_KEY is the master key.

export BENCH_KEY="sk-bench-$RANDOM$RANDOM$RANDOM"

# bench_aigw_env BASE_URL: the environment every aigw process gets.
bench_aigw_env() {
    printf '%s\n' "AIGW_MASTER_KEY=$BENCH_KEY" "OPENAI_API_KEY=bench" \
        "OPENAI_BASE_URL=$1" "AIGW_LOG_LEVEL=warn"
}

# bench_start_run NAME BIN BASE_URL [CONFIG [KEY=VALUE...]]: `aigw run`, with
# the extra environment given. Sets GW_PORT, GW_PIDS.
bench_start_run() {
    local name=$1 bin=$2 base=$3 config=${4:-$BENCH_ROOT/bench/bench.yaml}
    shift $(($# < 4 ? $# : 4))
    GW_PORT=$(bench_free_port)
    # shellcheck disable=SC2046
    bench_start "$name" env $(bench_aigw_env "$base") "$@" \
        "$bin" run --config "$config" --host 127.0.0.1 --port "$GW_PORT"
    GW_PIDS=$BENCH_LAST_PID
    bench_wait_url "http://127.0.0.1:$GW_PORT/readyz" 60 $GW_PIDS
}

# bench_start_split NAME BIN BASE_URL: broker over tcp, edge, and one process
# per actor (auth, ratelimit, guardrail, cache, provider; admin only counts
# with a database). Sets GW_PORT, GW_PIDS.
bench_start_split() {
    local name=$1 bin=$2 base=$3 config=$BENCH_ROOT/bench/bench.yaml actor broker
    GW_PORT=$(bench_free_port)
    broker="tcp://127.0.0.1:$(bench_free_port)"
    # shellcheck disable=SC2046
    bench_start "$name-broker" env $(bench_aigw_env "$base") \
        "$bin" broker --bind "$broker" --config "$config"
    GW_PIDS=$BENCH_LAST_PID
    # shellcheck disable=SC2046
    bench_start "$name-edge" env $(bench_aigw_env "$base") \
        "$bin" edge --broker "$broker" --host 127.0.0.1 --port "$GW_PORT" --config "$config"
    GW_PIDS="$GW_PIDS $BENCH_LAST_PID"
    for actor in auth ratelimit guardrail cache provider; do
        # shellcheck disable=SC2046
        bench_start "$name-$actor" env $(bench_aigw_env "$base") \
            "$bin" actor "$actor" --broker "$broker" --config "$config"
        GW_PIDS="$GW_PIDS $BENCH_LAST_PID"
    done
    # shellcheck disable=SC2086
    bench_wait_url "http://127.0.0.1:$GW_PORT/readyz" 60 $GW_PIDS
}

# ---------------------------------------------------------------------------
# Measuring

# bench_wrk THREADS CONNS SECONDS URL: the BENCH line of bench/chat.lua
# (p50_us p99_us requests rps non2xx sockerr). Every run gets its own nonce,
# so no prompt repeats across runs against the same gateway.
BENCH_WRK_RUN=0
bench_wrk() {
    BENCH_WRK_RUN=$((BENCH_WRK_RUN + 1))
    local out
    out=$(BENCH_NONCE="$$x$BENCH_WRK_RUN$RANDOM" timeout $(( $3 + 60 )) \
          wrk -t"$1" -c"$2" -d"$3"s --latency --timeout 10s -s "$BENCH_ROOT/bench/chat.lua" "$4" \
          2>&1) || true
    grep '^BENCH' <<<"$out" || { bench_log "bench: wrk failed: $out"; echo "BENCH failed=1"; }
}

# A figure of a BENCH line: bench_field NAME LINE.
bench_field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Voluntary + nonvoluntary context switches summed over every thread of PIDS.
bench_ctxt() {
    local p files=()
    for p in "$@"; do files+=(/proc/"$p"/task/*/status); done
    cat "${files[@]}" 2>/dev/null \
        | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ {s += $2} END {printf "%d\n", s}'
}

# Peak RSS (VmHWM) summed over PIDS, KiB.
bench_hwm_kb() {
    local p total=0 kb
    for p in "$@"; do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# The machine's CPU counters (/proc/stat): "total idle steal" in jiffies.
bench_cpu_snap() {
    awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $9 }' /proc/stat
}
# bench_cpu_share "SNAP1" "SNAP2": "busy B%, steal S%" between two snapshots
# (busy counts every process on the machine, this script's included).
bench_cpu_share() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; if (t <= 0) t = 1
        printf "busy %.0f%%, steal %.1f%%", 100 * (t - (y[2] - x[2])) / t, 100 * (y[3] - x[3]) / t }'
}

# The machine, in one line.
bench_machine() {
    echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
}

# bench_check_gateway LABEL URL: one chat must answer 200 with X-Cache: MISS.
bench_check_gateway() {
    local headers status cache
    headers=$(curl -s -m 10 -o /dev/null -D - -H "Authorization: Bearer $BENCH_KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"check $RANDOM$RANDOM\"}]}" \
        "$2" | tr -d '\r') || true
    status=$(awk 'NR == 1 {print $2}' <<<"$headers")
    cache=$(awk -F': ' 'tolower($1) == "x-cache" {print $2}' <<<"$headers")
    [ "$status" = 200 ] || bench_die "$1: a chat answered '${status:-nothing}', not 200 (logs: $BENCH_TMP)"
    [ "$cache" = MISS ] || bench_log "bench: warning: $1 answered X-Cache: '${cache}', expected MISS"
}

# bench_round_order ROUND NAME...: the names, one a line, rotated by ROUND - 1:
# in interleaved rounds each variant takes each place in turn, so the machine's
# drift hits them alike.
bench_round_order() {
    local round=$1 i
    shift
    for i in $(seq 0 $(($# - 1))); do
        local at=$(( (i + round - 1) % $# + 1 ))
        echo "${!at}"
    done
}

# bench_warm_gateway LABEL URL: check the gateway at URL (bench_check_gateway),
# say LABEL is measured, and warm it up for BENCH_WARMUP seconds (1) at one
# connection and at BENCH_CONNS (64).
bench_warm_gateway() {
    local warm=${BENCH_WARMUP:-1}
    bench_check_gateway "$1" "$2"
    bench_log "bench: $1 ..."
    if [ "$warm" -gt 0 ]; then
        bench_wrk 1 1 "$warm" "$2" >/dev/null
        bench_wrk 2 "${BENCH_CONNS:-64}" "$warm" "$2" >/dev/null
    fi
}

# ---------------------------------------------------------------------------
# Side by side: bench_measure fills these, by target key, in measuring order;
# bench_table prints them. The caller sets DUR (seconds per phase), CONNS
# (connections of the throughput phase), WARM (seconds of warm-up, 0: none)
# and WRK_THREADS (wrk threads of the throughput phase).
BENCH_ORDER=()
declare -A BENCH_LABEL BENCH_P50 BENCH_P99 BENCH_RPS BENCH_ERR1 BENCH_ERR64 \
    BENCH_CS1 BENCH_CS64 BENCH_RSS

# bench_measure KEY LABEL URL PIDS...: warm-up, the 1-connection phase and
# the CONNS-connection phase, with context switches of PIDS around each.
bench_measure() {
    local key=$1 label=$2 url=$3; shift 3
    local r1 r64 c0 c1 c2 c3
    bench_log "bench: $label ..."
    if [ "$WARM" -gt 0 ]; then
        bench_wrk 1 1 "$WARM" "$url" >/dev/null
        bench_wrk "$WRK_THREADS" "$CONNS" "$WARM" "$url" >/dev/null
    fi
    c0=$(bench_ctxt "$@"); r1=$(bench_wrk 1 1 "$DUR" "$url"); c1=$(bench_ctxt "$@")
    c2=$(bench_ctxt "$@"); r64=$(bench_wrk "$WRK_THREADS" "$CONNS" "$DUR" "$url"); c3=$(bench_ctxt "$@")
    BENCH_ORDER+=("$key")
    BENCH_LABEL[$key]=$label
    BENCH_P50[$key]=$(bench_field p50_us "$r1"); BENCH_P99[$key]=$(bench_field p99_us "$r1")
    BENCH_RPS[$key]=$(bench_field rps "$r64")
    BENCH_ERR1[$key]="$(bench_field non2xx "$r1")/$(bench_field sockerr "$r1")"
    BENCH_ERR64[$key]="$(bench_field non2xx "$r64")/$(bench_field sockerr "$r64")"
    BENCH_CS1[$key]=$(awk -v d=$((c1 - c0)) -v n="$(bench_field requests "$r1")" \
                'BEGIN { if (n > 0) printf "%.1f", d / n; else print "-" }')
    BENCH_CS64[$key]=$(awk -v d=$((c3 - c2)) -v n="$(bench_field requests "$r64")" \
                 'BEGIN { if (n > 0) printf "%.1f", d / n; else print "-" }')
    BENCH_RSS[$key]=$(( $(bench_hwm_kb "$@") / 1024 ))
    if [ -n "${BENCH_RAW:-}" ]; then
        printf '%s, 1 connection:  %s\n%s, %s connections: %s\n' "$label" "$r1" "$label" "$CONNS" "$r64" >&2
    fi
}

# A figure, or "-" when there is none.
bench_dash() { [ -n "$1" ] && echo "$1" || echo "-"; }

# The table of every target measured: added p50 against the target keyed
# "direct", the ratio of req/s against the one keyed "nginx".
bench_table() {
    local k w=20 added ratio
    for k in "${BENCH_ORDER[@]}"; do
        [ "${#BENCH_LABEL[$k]}" -gt "$w" ] && w=${#BENCH_LABEL[$k]}
    done
    printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" \
        "target" "p50 1c" "p99 1c" "+p50 vs" "req/s" "ratio" "errors" "errors" "cs/req" "cs/req" "peak RSS"
    printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" \
        "" "(us)" "(us)" "direct" "${CONNS}c" "/nginx" "1c" "${CONNS}c" "1c" "${CONNS}c" "(MiB)"
    for k in "${BENCH_ORDER[@]}"; do
        added="-"
        if [ -n "${BENCH_P50[direct]:-}" ] && [ "$k" != direct ] && [ -n "${BENCH_P50[$k]}" ]; then
            added=$(( BENCH_P50[$k] - BENCH_P50[direct] ))
        fi
        ratio="-"
        if [ -n "${BENCH_RPS[nginx]:-}" ] && [ -n "${BENCH_RPS[$k]}" ] && [ "${BENCH_RPS[nginx]}" != 0 ]; then
            ratio=$(awk -v a="${BENCH_RPS[$k]}" -v b="${BENCH_RPS[nginx]}" 'BEGIN { printf "%.3f", a / b }')
        fi
        printf "%-${w}s %8s %8s %8s %10s %7s %9s %9s %7s %7s %8s\n" "${BENCH_LABEL[$k]}" \
            "$(bench_dash "${BENCH_P50[$k]}")" "$(bench_dash "${BENCH_P99[$k]}")" "$added" \
            "$(bench_dash "${BENCH_RPS[$k]}")" "$ratio" "${BENCH_ERR1[$k]}" "${BENCH_ERR64[$k]}" \
            "${BENCH_CS1[$k]}" "${BENCH_CS64[$k]}" "${BENCH_RSS[$k]}"
    done
    echo
    echo "errors: non-2xx (status >= 400) / socket errors (connect, read, write, timeout)."
}
