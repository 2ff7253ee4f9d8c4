#!/usr/bin/env bash
# tests/run.sh: install what is missing, build aigw with sanitizers, and run
# the whole test suite with ctest. Runs from any folder, as root on a fresh
# Debian 12, with no standard input (CI). Arguments go to ctest, e.g.
#   tests/run.sh -L unit                  # the class selftests only
#   tests/run.sh -R integration.chat      # one integration suite
#   tests/run.sh -LE slow                 # all but the slow suites
# Labels (ctest -L LABEL selects, -LE LABEL leaves out; `ctest --print-labels`):
#   unit         one test per class selftest (unit.NAME), found in the sources
#   integration  black-box suites in tests/integration (integration.NAME)
#   pg           needs PostgreSQL (this script starts one); fails without it,
#                never passes as skipped
#   slow         takes more than ~30 s on an idle 2-core machine
#   fuzz         each libFuzzer target in tests/fuzz, run for a bounded time
#                (AIGW_FUZZ_SECONDS) from tests/fixtures; fails on a crash
# Exit status: non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-test"
cd "$ROOT"

log() { printf '==> %s\n' "$*"; }

# --- system packages ---------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

packages=(build-essential cmake pkg-config libczmq-dev libzmq3-dev libcivetweb-dev
          libmsgpack-dev libcurl4-openssl-dev libpq-dev libssl-dev libjansson-dev
          libpcre2-dev libyaml-dev curl postgresql
          # the guardrail's pattern lists in one pass (optional: PCRE2 without it)
          libvectorscan-dev
          # the fuzz targets: clang and its libFuzzer runtime
          clang libclang-rt-dev
          yamllint docker-compose shellcheck systemd unzip  # tests/deploy/check.sh
          prometheus  # promtool, for the metrics suite (the server is not started)
          chromium)   # the dashboard's browser suite (playwright-core drives it headless)
# Node may come from elsewhere (e.g. a vendor repo): install Debian's only
# when there is none.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done
# Installing prometheus would start its server (on :9090) where init
# scripts run: a policy-rc.d that refuses every start keeps it stopped for
# the install (invoke-rc.d and deb-systemd-invoke both ask it). One already
# there (a container's) is left as it is.
POLICY_RC=/usr/sbin/policy-rc.d
own_policy=
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\n# tests/run.sh: no service starts while it installs packages\nexit 101\n' \
      | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY_RC"
    own_policy=1
  fi
  status=0
  { "${SUDO[@]}" apt-get update -q &&
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; } \
    || status=$?
  if [ -n "$own_policy" ]; then "${SUDO[@]}" rm -f "$POLICY_RC"; fi
  [ "$status" -eq 0 ] || exit "$status"
  # Under systemd the package also enables the unit: it would start at the
  # next boot. Only promtool is wanted.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

# --- PostgreSQL: a throwaway cluster for the suite --------------------------
# A fresh cluster in a temp folder, on a free port of 127.0.0.1, stopped and
# removed on exit. PostgreSQL refuses to run as root: as root, the folder
# belongs to the postgres user and its programs run as that user. Tests that
# need to stop and start the server use AIGW_TEST_PGBIN, AIGW_TEST_PGDATA
# and AIGW_TEST_PGPORT.
PGBIN=/usr/lib/postgresql/15/bin
PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/aigw-pg.XXXXXX")"
PGDATA_TEST="$PG_TMP/data"
PG_START_TIMEOUT_S=30
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$PG_TMP"
  AS_PG=(runuser -u postgres --)
fi
stop_postgres() {
  if [ -f "$PGDATA_TEST/postmaster.pid" ]; then
    (cd "$PG_TMP" && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_TEST" -m immediate stop) \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_TMP"
}
trap stop_postgres EXIT

# True when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log "starting PostgreSQL 15 in $PG_TMP"
(cd "$PG_TMP" && "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA_TEST" -A trust -U postgres \
   -E UTF8 --no-locale --no-sync --no-instructions) >"$PG_TMP/initdb.log" 2>&1 \
  || { cat "$PG_TMP/initdb.log"; exit 1; }
PGPORT_TEST=
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  # Durability is not wanted here: fsync off keeps the suite fast.
  if (cd "$PG_TMP" && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_TEST" -l "$PG_TMP/server.log" \
        -w -t "$PG_START_TIMEOUT_S" -o "-p $port -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories=$PG_TMP -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=200" start) >/dev/null 2>&1; then
    PGPORT_TEST=$port
    break
  fi
done
if [ -z "$PGPORT_TEST" ]; then
  log "PostgreSQL did not start"; cat "$PG_TMP/server.log" 2>/dev/null || true; exit 1
fi
deadline=$((SECONDS + PG_START_TIMEOUT_S))
until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "PostgreSQL is not ready after ${PG_START_TIMEOUT_S} s"; cat "$PG_TMP/server.log"; exit 1
  fi
  sleep 0.1
done
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT_TEST" -U postgres -d postgres \
  -v ON_ERROR_STOP=1 -c 'CREATE DATABASE aigw_test' </dev/null
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT_TEST/aigw_test"
export AIGW_TEST_PGDATA="$PGDATA_TEST" AIGW_TEST_PGBIN="$PGBIN" AIGW_TEST_PGPORT="$PGPORT_TEST"
log "PostgreSQL ready: $DATABASE_URL"

# --- the dashboard's packages (web/), before the build embeds them ----------
# esbuild bundles web/ at build time (CMakeLists.txt: AIGW_DASHBOARD);
# playwright-core drives chromium in integration.dashboard.
log "installing web/node_modules"
(
  cd "$ROOT/web"
  export npm_config_loglevel=error npm_config_audit=false npm_config_fund=false \
         npm_config_update_notifier=false npm_config_progress=false
  npm ci --silent
)

# --- build ------------------------------------------------------------------
JOBS="$(nproc 2>/dev/null || echo 2)"
log "building in $BUILD (ASan + UBSan, $JOBS jobs)"
cmake -S "$ROOT" -B "$BUILD" -DAIGW_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS"

# --- node modules for the integration tests ---------------------------------
log "installing tests/node_modules"
(
  cd "$ROOT/tests"
  export npm_config_loglevel=error npm_config_audit=false npm_config_fund=false \
         npm_config_update_notifier=false npm_config_progress=false
  if [ -f package-lock.json ]; then npm ci --silent; else npm install --silent; fi
  cd deploy && npm ci --silent   # tests/deploy/check.sh: helm, Kubernetes schemas
)

# --- run --------------------------------------------------------------------
# Many connections and processes at once: raise the open-file limit as far
# as this shell may.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The suite's database gets the schema, so every process that inherits
# DATABASE_URL (a gateway's auth actor, say) finds its tables. Tests that
# check migrations themselves create their own databases.
log "aigw migrate ($DATABASE_URL)"
"$BUILD/aigw" migrate

log "ctest $*"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
