#!/usr/bin/env bash
# Quickstart: install what is missing, build, and run `aigw run` on port 8000
# in the foreground, printing the admin key, a demo key and a curl line.
#
# Database: DATABASE_URL when it is set (migrated, nothing else touched).
# Otherwise a local PostgreSQL 15 cluster in ./.aigw/pgdata, on 127.0.0.1
# port 5433 (or the next free one), kept between runs and reused when it is
# already running; database "aigw", a tenant "demo" and a key "demo-key"
# (role developer) whose secret is kept in ./.aigw/demo-key (mode 600) so a
# rerun can print it again. Stop that server with:
#   runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D .aigw/pgdata stop
#
# With no OPENAI_API_KEY set, aigw serves a local mock provider, so this works
# on a machine with no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
STATE="$ROOT/.aigw"
PGBIN=/usr/lib/postgresql/15/bin
PG_PORT_FIRST=5433
PG_START_TIMEOUT_S=30

say() { printf 'quickstart: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

packages=(build-essential cmake pkg-config libczmq-dev libzmq3-dev libcivetweb-dev
          libmsgpack-dev libcurl4-openssl-dev libpq-dev libssl-dev libjansson-dev
          libpcre2-dev libyaml-dev libvectorscan-dev openssl)
LOCAL_PG=false
if [ -z "${DATABASE_URL:-}" ]; then
    LOCAL_PG=true
    packages+=(postgresql)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

# The dashboard is bundled from web/ when Node is here (npm's packages come
# from the registry, pinned by web/package-lock.json); without Node the
# gateway builds without it (README: dashboard).
if command -v npm >/dev/null 2>&1 && [ ! -d web/node_modules ]; then
    say "installing the dashboard's packages (web/)"
    (cd web && npm ci --silent --no-audit --no-fund) || say "web/: npm ci failed; building without the dashboard"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target aigw >/dev/null
AIGW="$ROOT/build/aigw"

# --- the database -------------------------------------------------------------
mkdir -p "$STATE"
# Others may pass through (the postgres user must reach pgdata) but not list.
chmod 711 "$STATE"

# Programs of the server run as postgres when we are root (PostgreSQL
# refuses root), as ourselves otherwise.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
# True when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if $LOCAL_PG; then
    PGDATA_DIR="$STATE/pgdata"
    if [ "$(id -u)" -eq 0 ] && [ ! -e "$PGDATA_DIR" ] && ! as_pg test -x "$STATE"; then
        # The checkout is out of the postgres user's reach (e.g. under /root):
        # keep the cluster in its home, with .aigw/pgdata pointing there.
        home="/var/lib/postgresql/aigw-$(printf %s "$ROOT" | sha256sum | cut -c1-12)"
        mkdir -p "$home/pgdata"
        chown postgres:postgres "$home" "$home/pgdata"
        ln -s "$home/pgdata" "$PGDATA_DIR"
    fi
    PGDATA_DIR="$(readlink -f "$PGDATA_DIR")"
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
        say "creating a PostgreSQL cluster in .aigw/pgdata"
        mkdir -p "$PGDATA_DIR"
        chmod 700 "$PGDATA_DIR"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PGDATA_DIR"
        as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -U postgres -E UTF8 --no-locale \
            --no-instructions >/dev/null
    fi
    if as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
        PG_PORT="$(sed -n 4p "$PGDATA_DIR/postmaster.pid")"
        say "reusing the running PostgreSQL on port $PG_PORT"
    else
        PG_PORT=$PG_PORT_FIRST
        while ! port_free "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
        say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        # TCP on loopback only; no Unix socket (the folder path may be too long).
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
            -t "$PG_START_TIMEOUT_S" -o "-p $PG_PORT -c listen_addresses=127.0.0.1 \
            -c unix_socket_directories=''" start >/dev/null \
            || die "PostgreSQL did not start; see .aigw/pgdata/server.log"
    fi
    deadline=$((SECONDS + PG_START_TIMEOUT_S))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; do
        [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL on port $PG_PORT is not ready"
        sleep 0.2
    done
    ADMIN_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    if [ -z "$(psql -X -qAt -d "$ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = 'aigw'")" ]; then
        psql -X -q -d "$ADMIN_URL" -v ON_ERROR_STOP=1 -c 'CREATE DATABASE aigw' </dev/null
    fi
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/aigw"
fi

"$AIGW" migrate || die "aigw migrate failed"

# --- the demo tenant and key (local database only) ---------------------------
DEMO_KEY=""
DEMO_FILE="$STATE/demo-key"
if $LOCAL_PG; then
    # psql reads these from stdin so :'var' quotes the values as literals.
    sql() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
    demo_id="$(sql <<'SQL'
SELECT k.id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
 WHERE t.name = 'demo' AND k.name = 'demo-key' AND k.revoked_at IS NULL
   AND (k.expires_at IS NULL OR k.expires_at > now ())
 ORDER BY k.created_at LIMIT 1;
SQL
)"
    secret_of() { grep -o 'sk-aigw-[0-9a-f]\{48\}' | head -n 1 || true; }
    if [ -n "$demo_id" ] && [ -f "$DEMO_FILE" ]; then
        saved="$(head -n 1 "$DEMO_FILE")"
        hash="$(printf %s "$saved" | sha256sum | cut -d' ' -f1)"
        match="$(sql -v id="$demo_id" -v hash="$hash" <<'SQL'
SELECT 1 FROM api_keys WHERE id = :'id' AND secret_sha256 = decode (:'hash', 'hex');
SQL
)"
        [ "$match" = 1 ] && DEMO_KEY="$saved"
    fi
    if [ -z "$DEMO_KEY" ] && [ -n "$demo_id" ]; then
        # The saved secret is gone or stale: give the key a new one.
        say "the saved demo key is missing or out of date: rotating demo-key"
        DEMO_KEY="$("$AIGW" keys rotate "$demo_id" --json 2>/dev/null | secret_of)"
    elif [ -z "$DEMO_KEY" ]; then
        if [ -z "$(sql <<<"SELECT 1 FROM tenants WHERE name = 'demo';")" ]; then
            "$AIGW" tenants create demo >/dev/null
        fi
        DEMO_KEY="$("$AIGW" keys create --tenant demo --name demo-key --role developer \
            --json 2>/dev/null | secret_of)"
    fi
    [ -n "$DEMO_KEY" ] || die "could not create the demo key"
    (umask 077 && printf '%s\n' "$DEMO_KEY" >"$DEMO_FILE")
    chmod 600 "$DEMO_FILE"
fi

# --- run -----------------------------------------------------------------------
export AIGW_PORT="${AIGW_PORT:-8000}"
if [ -z "${AIGW_MASTER_KEY:-}" ]; then
    AIGW_MASTER_KEY="sk-aigw-$(openssl rand -hex 24)"
    export AIGW_MASTER_KEY
fi
# The key that encrypts provider api_keys stored in the database: made once
# and kept in .aigw/secret-key (mode 600), since values sealed under it stay
# readable only with it. A key given in the environment wins.
SECRET_FILE="$STATE/secret-key"
if [ -z "${AIGW_SECRET_KEY:-}" ] && [ -z "${AIGW_SECRET_KEY_FILE:-}" ]; then
    if [ ! -s "$SECRET_FILE" ]; then
        say "generating the secret key that encrypts stored provider keys (.aigw/secret-key)"
        (umask 077 && openssl rand -hex 32 >"$SECRET_FILE")
    fi
    chmod 600 "$SECRET_FILE"
    export AIGW_SECRET_KEY_FILE="$SECRET_FILE"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TRY_KEY="${DEMO_KEY:-$AIGW_MASTER_KEY}"
cat <<MSG

  aigw is starting on http://127.0.0.1:${AIGW_PORT}
  admin key: ${AIGW_MASTER_KEY}
MSG
if [ -n "$DEMO_KEY" ]; then
    # Only the local database's URL: a given DATABASE_URL may hold a password.
    cat <<MSG
  database:  ${DATABASE_URL} (.aigw/pgdata)
  demo key:  ${DEMO_KEY}
             (tenant demo, role developer; kept in .aigw/demo-key)
MSG
fi
cat <<MSG

  try:
    curl -s http://127.0.0.1:${AIGW_PORT}/v1/chat/completions \\
      -H "Authorization: Bearer ${TRY_KEY}" -H "Content-Type: application/json" \\
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

MSG
config=()
[ -n "${AIGW_CONFIG:-}" ] && config=(--config "$AIGW_CONFIG")
exec "$AIGW" run "${config[@]}"
