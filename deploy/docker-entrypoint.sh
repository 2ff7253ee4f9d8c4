#!/bin/sh
# aigw-entrypoint: the container image's entrypoint.
#
#   aigw-entrypoint COMMAND [ARGS...]   runs `aigw COMMAND ARGS...` (run,
#                                       broker, edge, actor, migrate, ...)
#   aigw-entrypoint PROGRAM [ARGS...]   runs anything else as it is (sh, ...)
#
# Peers on other hosts (AIGW-BP/2): a process whose broker is another
# container (AIGW_BROKER=tcp://broker:5555, or --broker) must tell the
# broker an address the other containers reach it at. Unless AIGW_PEER_BIND
# is set, this binds the peer inbox to tcp://0.0.0.0:AIGW_PEER_PORT (default
# 5556) and advertises AIGW_PEER_ADVERTISE, by default this container's own
# IPv4 address (its hostname as /etc/hosts resolves it, else the first
# address of `hostname -I`). Kubernetes sets
# AIGW_PEER_ADVERTISE to the pod IP itself (deploy/helm).
set -eu

[ $# -gt 0 ] || set -- run
case "$1" in
  run | broker | edge | actor | migrate | tenants | keys | mock-provider | version | \
    help | --help | -h | --version)
    set -- aigw "$@"
    ;;
esac

# The broker endpoint: --broker ENDPOINT or --broker=ENDPOINT win over
# AIGW_BROKER, as in aigw itself.
broker="${AIGW_BROKER:-}"
previous=""
for arg in "$@"; do
  case "$previous" in --broker) broker="$arg" ;; esac
  case "$arg" in --broker=*) broker="${arg#--broker=}" ;; esac
  previous="$arg"
done

name="$(hostname)"
own_address() {
  { getent ahostsv4 "$name" 2>/dev/null | awk '{ print $1 }'
    hostname -I 2>/dev/null | tr ' ' '\n'; } |
    awk '/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ && !/^127\./ { print; exit }'
}

case "$broker" in
  tcp://*)
    host="${broker#tcp://}"
    host="${host%:*}"
    case "$host" in
      "" | localhost | 127.* | "*") ;;
      *)
        if [ -z "${AIGW_PEER_BIND:-}" ]; then
          advertise="${AIGW_PEER_ADVERTISE:-$(own_address)}"
          if [ -n "$advertise" ]; then
            export AIGW_PEER_BIND="tcp://0.0.0.0:${AIGW_PEER_PORT:-5556}"
            export AIGW_PEER_ADVERTISE="$advertise"
          else
            echo "aigw-entrypoint: no address for $name; aigw picks the peer address" >&2
          fi
        fi
        ;;
    esac
    ;;
esac

exec "$@"
