#!/usr/bin/env bash
# CPU profile of `aigw run` under the data-path benchmark's throughput load:
# the nginx upstream of bench/run.sh, bench/bench.yaml (cache on, every
# request a miss, rate limit out of reach), wrk -t2 -c64 with bench/chat.lua,
# and `perf record -e cpu-clock -g -p PID` for SECONDS while wrk runs.
# Prints the top of `perf report --no-children --sort comm,dso,sym`, the CPU
# per thread name (comm) and per DSO, and context switches per request per
# thread name over the same window.
# Usage: bench/profile.sh [SECONDS, default 10]
#   AIGW_BIN=PATH   profile this binary instead of building this tree
#   BENCH_CONNS=64  connections
#   PROFILE_TOP=50  lines of the symbol table
#   PROFILE_DATA=FILE  where perf.data goes (default /tmp/aigw-profile.PID.data,
#                      kept for `perf report -i FILE` with call graphs)
# No hardware counters on these VMs: cpu-clock is a software event. A Release
# build has no frame pointers, so -g call chains are partial; the flat
# tables (--no-children) do not need them.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"

DUR="${1:-10}"
case "$DUR" in ''|*[!0-9]*) bench_die "usage: bench/profile.sh [seconds]";; esac
CONNS=${BENCH_CONNS:-64}
TOP=${PROFILE_TOP:-50}
DATA=${PROFILE_DATA:-/tmp/aigw-profile.$$.data}

bench_need wrk wrk
bench_need_nginx
command -v perf >/dev/null || bench_need perf linux-perf
bench_aigw_bin
ulimit -n "$(ulimit -Hn)"

# Can perf sample here at all?
PERF_OK=1
if ! perf_err=$(timeout 30 perf record -q -e cpu-clock -o "$BENCH_TMP/probe.data" -- true 2>&1); then
    PERF_OK=0
fi

bench_start_upstream
bench_start_run profile "$BENCH_BIN" "http://127.0.0.1:$UP_PORT/v1"
PID=$GW_PIDS
URL="http://127.0.0.1:$GW_PORT/v1/chat/completions"
bench_wrk 1 1 1 "$URL" >/dev/null
bench_wrk 2 "$CONNS" 1 "$URL" >/dev/null

# "name<TAB>switches<TAB>threads" for every thread name of PID: voluntary +
# nonvoluntary context switches summed over its threads (one pass over
# /proc/PID/task/*/status: Name is the thread's comm).
ctxt_by_comm() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk -F'\t' '
        /^Name:/ { n = $2; c[n]++ }
        /^(voluntary|nonvoluntary)_ctxt_switches:/ { s[n] += $2 }
        END { for (k in c) printf "%s\t%d\t%d\n", k, s[k], c[k] }'
}

ctxt_by_comm "$PID" | LC_ALL=C sort -t $'\t' -k1,1 >"$BENCH_TMP/cs0"
BENCH_NONCE="profile$$x$RANDOM" bench_start wrk timeout $((DUR + 60)) \
    wrk -t2 -c"$CONNS" -d"$DUR"s --latency --timeout 10s -s "$BENCH_ROOT/bench/chat.lua" "$URL"
WRK_PID=$BENCH_LAST_PID
# -p PID opens one event per thread per CPU, past the descriptor limit with
# 10,240 edge threads: --per-thread opens one per thread, -m 8 keeps each
# thread's ring small. If that fails too, the whole machine (-a), reported
# for PID only.
PERF_HOW=""
if [ "$PERF_OK" = 1 ]; then
    if timeout $((DUR + 60)) perf record -q -e cpu-clock -g --per-thread -m 8 -p "$PID" \
            -o "$DATA" -- sleep "$DUR" >"$BENCH_TMP/perf-record.log" 2>&1; then
        PERF_HOW="perf record -e cpu-clock -g --per-thread -m 8 -p $PID"
    elif timeout $((DUR + 60)) perf record -q -e cpu-clock -g -a -o "$DATA" -- sleep "$DUR" \
            >>"$BENCH_TMP/perf-record.log" 2>&1; then
        PERF_HOW="perf record -e cpu-clock -g -a (-p failed: $(grep -m1 -i error "$BENCH_TMP/perf-record.log" || true)), reported for pid $PID only"
    else
        PERF_OK=0; perf_err=$(tail -5 "$BENCH_TMP/perf-record.log")
    fi
fi
deadline=$((SECONDS + DUR + 70))
while bench_alive "$WRK_PID" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
ctxt_by_comm "$PID" | LC_ALL=C sort -t $'\t' -k1,1 >"$BENCH_TMP/cs1"
result=$(grep '^BENCH' "$BENCH_TMP/wrk.log" || echo "BENCH failed=1")
requests=$(bench_field requests "$result")

echo "machine: $(nproc) cores, Linux $(uname -r); aigw run ($BENCH_BIN), wrk -t2 -c$CONNS for $DUR s"
echo "wrk: $result"
echo "peak RSS of aigw run: $(( $(bench_hwm_kb "$PID") / 1024 )) MiB"
echo
echo "context switches per request, by thread name (voluntary + nonvoluntary, $DUR s window):"
LC_ALL=C join -t $'\t' "$BENCH_TMP/cs0" "$BENCH_TMP/cs1" \
    | awk -F'\t' -v n="${requests:-0}" '
        { d = $4 - $2; tot += d; if (d > 0) printf "%s\t%d\t%.2f\n", $1, $5, (n > 0 ? d / n : 0) }
        END { printf "all\t-\t%.2f\n", (n > 0 ? tot / n : 0) }' \
    | sort -t $'\t' -k3,3 -rn \
    | awk -F'\t' '{ printf "  %-18s %7s threads %8s\n", $1, $2, $3 }'
echo
if [ "$PERF_OK" != 1 ]; then
    echo "perf could not run here, so there is no CPU profile:"
    printf '  %s\n' "${perf_err:-unknown error}"
    exit 0
fi
PIDFILTER=()
case "$PERF_HOW" in *" -a "*) PIDFILTER=(--pid "$PID");; esac
# report LINES OPTIONS...: the first LINES lines of a flat perf report.
report() {
    local lines=$1; shift
    { timeout 300 perf report -i "$DATA" --no-children -g none --stdio "${PIDFILTER[@]}" "$@" \
        2>/dev/null | grep -v '^#' | sed '/^$/d' | head -"$lines"; } || true
}
echo "recorded with: $PERF_HOW, $DUR s"
echo "CPU by thread name (perf report --no-children --sort comm):"
report 20 --sort comm
echo
echo "CPU by DSO (kernel vs user):"
report 12 --sort dso
echo
echo "top $TOP (perf report --no-children --sort comm,dso,sym):"
report "$TOP" --sort comm,dso,sym
echo
echo "perf data kept in $DATA (perf report -i $DATA --no-children for call chains)"
