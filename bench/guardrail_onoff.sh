#!/usr/bin/env bash
# What guardrail policies cost the data path (issue 12): `aigw run` with no
# policy, with the built-in default on requests, and with a policy on
# requests and answers, measured in one run in interleaved rounds (the
# order rotates from round to round, so the machine's drift hits each
# variant alike).
#
#   off     no policy applies (guardrail.default_policy: none)
#   input   PII redact, secrets block, injection block, on requests only
#   both    the built-in default: the same, PII and secrets on answers too
#           (the edge checks each answer), injection on requests
#
# bench/bench.yaml (cache on, every prompt a miss, rate limit out of reach)
# plus each variant's guardrail lines; bench/variants.sh measures them and
# prints medians over the rounds with ratios to "off".
#
#   bench/guardrail_onoff.sh [SECONDS [ROUNDS]]   # seconds per phase (5), rounds (3)
#   AIGW_BIN=build-bench/aigw bench/guardrail_onoff.sh 5 3
set -euo pipefail
# shellcheck source=bench/variants.sh
. "$(dirname "$0")/variants.sh"
VARIANTS=(off input both)

# The config of VARIANT: bench/bench.yaml and the variant's guardrail lines.
go_config() {
    local file="$BENCH_TMP/$1.yaml"
    {
        cat bench/bench.yaml
        echo "usage: {enabled: false}"
        echo "guardrail:"
        case "$1" in
            off) echo "  default_policy: none";;
            input)
                echo "  default_policy: inonly"
                echo "  policies:"
                echo "    inonly:"
                echo "      guardrails:"
                echo "        - {detector: pii, action: redact, on: input}"
                echo "        - {detector: secrets, action: block, on: input}"
                echo "        - {detector: prompt_injection, action: block, on: input}";;
            both) echo "  default_policy: default";;
        esac
    } >"$file"
    echo "$file"
}

variants_main "$@"
