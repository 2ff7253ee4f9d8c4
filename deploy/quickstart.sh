#!/usr/bin/env bash
# Quickstart: install what is missing, build, and run `aigw run` on port 8000
# in the foreground, printing the admin key and a curl line to try.
# With no OPENAI_API_KEY set, aigw serves a local mock provider, so this works
# on a machine with no network. (PostgreSQL provisioning arrives with the
# control-plane issue; until then no database is needed.)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libczmq-dev libzmq3-dev libcivetweb-dev
          libmsgpack-dev libcurl4-openssl-dev libpq-dev libssl-dev libjansson-dev
          libpcre2-dev libyaml-dev openssl)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "quickstart: installing ${missing[*]}"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target aigw >/dev/null

export AIGW_PORT="${AIGW_PORT:-8000}"
if [ -z "${AIGW_MASTER_KEY:-}" ]; then
    AIGW_MASTER_KEY="sk-aigw-$(openssl rand -hex 24)"
    export AIGW_MASTER_KEY
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cat <<MSG

  aigw is starting on http://127.0.0.1:${AIGW_PORT}
  admin key: ${AIGW_MASTER_KEY}

  try:
    curl -s http://127.0.0.1:${AIGW_PORT}/v1/chat/completions \\
      -H "Authorization: Bearer ${AIGW_MASTER_KEY}" -H "Content-Type: application/json" \\
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

MSG
config=()
[ -n "${AIGW_CONFIG:-}" ] && config=(--config "$AIGW_CONFIG")
exec ./build/aigw run "${config[@]}"
