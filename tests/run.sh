#!/usr/bin/env bash
# tests/run.sh: install what is missing, build aigw with sanitizers, and run
# the whole test suite with ctest. Runs from any folder, as root on a fresh
# Debian 12, with no standard input (CI). Arguments go to ctest, e.g.
#   tests/run.sh -L unit                  # the class selftests only
#   tests/run.sh -R integration.chat      # one integration suite
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
          libpcre2-dev libyaml-dev curl postgresql)
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
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

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
)

# --- run --------------------------------------------------------------------
# Many connections and processes at once: raise the open-file limit as far
# as this shell may.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

log "ctest $*"
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
