#!/usr/bin/env bash
# tests/layout/check.sh: the folders are the architecture, so the includes
# must follow it. Each folder may include its own headers and those of the
# folders listed for it below; anything else fails the check, and so does a
# cycle between folders. Run from anywhere; exit 1 on a violation.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# folder: the folders it may include from (besides itself). Lower layers
# first: core is plumbing, the mock provider is a tool that shares only it.
declare -A allowed=(
  [core]=""
  [schemas]="core"
  [broker]="core schemas"
  [actors]="core schemas broker actors/auth actors/ratelimit actors/guardrail actors/cache actors/provider actors/admin actors/usage actors/responses"
  [actors/auth]="core schemas broker actors"
  [actors/ratelimit]="core schemas broker actors"
  [actors/guardrail]="core schemas broker actors"
  [actors/cache]="core schemas broker actors actors/provider/adapters"
  [actors/provider/adapters]="core schemas"
  [actors/provider]="core schemas broker actors actors/provider/adapters"
  [actors/admin]="core schemas broker actors actors/auth actors/guardrail actors/provider"
  [actors/usage]="core schemas broker actors"
  [actors/responses]="core schemas broker actors"
  [http-edge]="core schemas broker actors actors/guardrail actors/provider actors/cache"
  [cli]="core schemas broker actors actors/auth actors/cache actors/provider actors/provider/adapters http-edge tools/mock-provider"
  [tools/mock-provider]="core"
)

# Which folder holds header NAME.
declare -A home=()
for dir in "${!allowed[@]}"; do
  for h in "$dir"/*.h; do
    [ -e "$h" ] && home[$(basename "$h")]=$dir
  done
done

fail=0
for dir in "${!allowed[@]}"; do
  for f in "$dir"/*.c "$dir"/*.h; do
    [ -e "$f" ] || continue
    while IFS= read -r name; do
      to=${home[$name]:-}
      [ -z "$to" ] && continue            # a system or library header
      [ "$to" = "$dir" ] && continue
      case " ${allowed[$dir]} " in
        *" $to "*) ;;
        *) echo "layout: $f includes $to/$name ($dir may include: ${allowed[$dir]:-nothing})"
           fail=1 ;;
      esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done

# Every folder with sources is in the table (a new folder must be placed).
while IFS= read -r dir; do
  if [ -z "${allowed[$dir]+x}" ]; then
    echo "layout: $dir has C files but no place in tests/layout/check.sh"; fail=1
  fi
done < <(git ls-files '*.c' '*.h' | grep -v '^tests/\|^bench/' | xargs -n1 dirname | sort -u)

# No cycle among the project's headers (tsort names one if there is).
edges=$(for h in $(git ls-files '*.h' | grep -v '^tests/\|^bench/'); do
          n=$(basename "$h")
          echo "$n $n"
          sed -n 's/^#include "\([^"]*\)".*/\1/p' "$h" | while read -r to; do
            [ -n "${home[$to]:-}" ] && echo "$to $n"
          done
        done)
if ! tsort <<<"$edges" >/dev/null 2>"${TMPDIR:-/tmp}/aigw-layout-tsort.$$"; then
  echo "layout: include cycle among headers:"; cat "${TMPDIR:-/tmp}/aigw-layout-tsort.$$"; fail=1
fi
rm -f "${TMPDIR:-/tmp}/aigw-layout-tsort.$$"

[ "$fail" -eq 0 ] && echo "layout: every include follows the folders"
exit "$fail"
