#!/usr/bin/env bash
# deploy/image-build.sh: the steps of deploy/Dockerfile, as one script, so
# that tests/deploy/check.sh runs the same steps without Docker.
#
#   image-build.sh packages build|runtime   print a Debian 12 package list
#   image-build.sh install-build-deps       apt-get install the build list
#   image-build.sh configure SRC BUILD      cmake configure: Release, no sanitizers
#   image-build.sh build BUILD              build the aigw binary
#   image-build.sh install BUILD DESTDIR    stage /usr/local/bin/aigw and the
#                                           container entrypoint under DESTDIR
#   image-build.sh install-runtime-deps     apt-get install the runtime list
#   image-build.sh verify-runtime ROOT      the staged binary finds every shared
#                                           library and answers version and help
#
# The runtime list names the package of every library the binary links
# directly (readelf NEEDED); tests/deploy/check.sh checks that against the
# binary with dpkg -S.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=/usr/local

# What CMakeLists.txt finds with pkg-config and find_library, plus the tools.
BUILD_PACKAGES=(build-essential cmake pkg-config libczmq-dev libzmq3-dev
                libcivetweb-dev libmsgpack-dev libcurl4-openssl-dev libpq-dev
                libssl-dev libjansson-dev libpcre2-dev libyaml-dev libvectorscan-dev)

# One package per library the binary links (libc6 is in every Debian image),
# ca-certificates for TLS to the providers, curl for the health check.
RUNTIME_PACKAGES=(libczmq4 libzmq5 libmsgpackc2 libcurl4 libpq5 libssl3
                  libjansson4 libpcre2-8-0 libyaml-0-2 libcivetweb1 libvectorscan5
                  ca-certificates curl)

die() { printf 'image-build: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "$@" </dev/null
  apt-get clean
  rm -rf /var/lib/apt/lists/*
}

cmd_packages() {
  case "${1:-}" in
    build) printf '%s\n' "${BUILD_PACKAGES[@]}" ;;
    runtime) printf '%s\n' "${RUNTIME_PACKAGES[@]}" ;;
    *) usage ;;
  esac
}

cmd_configure() {
  [ $# -eq 2 ] || usage
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DAIGW_SANITIZE=OFF
}

cmd_build() {
  [ $# -eq 1 ] || usage
  cmake --build "$1" -j "$(nproc 2>/dev/null || echo 2)" --target aigw
}

cmd_install() {
  [ $# -eq 2 ] || usage
  local build="$1" destdir="$2"
  mkdir -p "$destdir"
  destdir="$(cd "$destdir" && pwd)"
  # The project's install rules: the binary (and an example config).
  DESTDIR="$destdir" cmake --install "$build" --prefix "$PREFIX" >/dev/null
  [ -x "$destdir$PREFIX/bin/aigw" ] || die "cmake --install left no $PREFIX/bin/aigw"
  install -D -m 0755 "$HERE/docker-entrypoint.sh" "$destdir$PREFIX/bin/aigw-entrypoint"
  install -D -m 0644 "$HERE/aigw.example.yaml" "$destdir/etc/aigw/aigw.example.yaml"
}

cmd_verify_runtime() {
  [ $# -eq 1 ] || usage
  local bin="${1%/}$PREFIX/bin/aigw"
  [ -x "$bin" ] || die "$bin is missing"
  local missing
  missing="$(ldd "$bin" | grep 'not found' || true)"
  [ -z "$missing" ] || die "shared libraries not found: $missing"
  "$bin" version
  "$bin" --help >/dev/null
  "$bin" help actor >/dev/null
  [ -x "${1%/}$PREFIX/bin/aigw-entrypoint" ] || die "the entrypoint is missing"
}

case "${1:-}" in
  packages) shift; cmd_packages "$@" ;;
  install-build-deps) apt_install "${BUILD_PACKAGES[@]}" ;;
  configure) shift; cmd_configure "$@" ;;
  build) shift; cmd_build "$@" ;;
  install) shift; cmd_install "$@" ;;
  install-runtime-deps) apt_install "${RUNTIME_PACKAGES[@]}" ;;
  verify-runtime) shift; cmd_verify_runtime "$@" ;;
  *) usage ;;
esac
