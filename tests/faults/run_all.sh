#!/usr/bin/env bash
# tests/faults/run_all.sh [--full]: every fault test, one after the other, at CI sizes (or the
# full sizes with --full: kill9 with 100000 messages and 20 kills, sqs_faults with 20000
# messages; pg_crash is 20000 both ways), then a summary table. Exit status 1 when any test failed.
# Env: ETLUA_BIN (default build/etlua).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
full=0
[ "${1:-}" = --full ] && full=1

results="$(mktemp "${TMPDIR:-/tmp}/etlua-faults-results.XXXXXX")"
trap 'rm -f "$results"' EXIT
export FAULTS_RESULT="$results"

if [ "$full" = 1 ]; then
    tests=("kill9.sh 100000 20" "pg_outage.sh 20000 10" "pg_crash.sh 20000 3" "sqs_faults.sh 20000 30" "slow_sink.sh 300 15")
else
    tests=("kill9.sh 5000 5" "pg_outage.sh 10000 10" "pg_crash.sh 20000 3" "sqs_faults.sh 5000 30" "slow_sink.sh 300 15")
fi

declare -A status secs
failed=0
for t in "${tests[@]}"; do
    name="${t%%.sh*}"
    echo "=== $t"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if bash "$here/"$t; then status[$name]=PASS; else status[$name]=FAIL; fi
    secs[$name]=$(( $(date +%s) - t0 ))
    [ "${status[$name]}" = FAIL ] && failed=1
done

get() { sed -n "s/^$1=//p" "$results" | tail -1; }
or_na() { [ -n "$1" ] && echo "$1" || echo "n/a"; }
echo
echo "=== fault tests summary ($([ "$full" = 1 ] && echo full || echo CI) sizes)"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' test result secs messages "faults" lost "dup rows"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' kill9 "${status[kill9]}" "${secs[kill9]}" "$(or_na "$(get kill9.messages)")" \
    "$(or_na "$(get kill9.kills)") kills survived ($(or_na "$(get kill9.kills_inflight)") in flight), $(or_na "$(get kill9.ledger_skips)") ledger skips" \
    "$(or_na "$(get kill9.lost)")" "$(or_na "$(get kill9.dupes_in_tables)")"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' pg_outage "${status[pg_outage]}" "${secs[pg_outage]}" "$(or_na "$(get pg_outage.messages)")" \
    "$(or_na "$(get pg_outage.outage_s)")s outage, exit $(or_na "$(get pg_outage.exit)"), $(or_na "$(get pg_outage.pg_retries)") pg retries" \
    "$(or_na "$(get pg_outage.lost)")" "$(or_na "$(get pg_outage.dupes_in_tables)")"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' pg_crash "${status[pg_crash]}" "${secs[pg_crash]}" "$(or_na "$(get pg_crash.messages)")" \
    "immediate stop at $(or_na "$(get pg_crash.committed_before)") committed, server sync_commit off" \
    "$(or_na "$(get pg_crash.lost)")" "n/a"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' sqs_faults "${status[sqs_faults]}" "${secs[sqs_faults]}" "$(or_na "$(get sqs_faults.messages)")" \
    "$(or_na "$(get sqs_faults.faults)") faults + 30s blackout, $(or_na "$(get sqs_faults.exits_blackout)") exits in it" \
    "$(or_na "$(get sqs_faults.lost)")" "$(or_na "$(get sqs_faults.dupes_in_tables)")"
printf '%-11s %-30s %6s %9s %-52s %6s %10s\n' slow_sink "${status[slow_sink]}" "${secs[slow_sink]}" "$(or_na "$(get slow_sink.messages)")" \
    "$(or_na "$(get slow_sink.redelivered)") redelivered to the 2nd consumer" \
    "$(or_na "$(get slow_sink.lost)")" "$(or_na "$(get slow_sink.dupes_in_tables)")"
d="$(get sqs_faults.detail)"
[ -n "$d" ] && echo "sqs_faults injected: $d"
echo "(lost / dup rows: n/a = the test failed before its exactness check)"
exit "$failed"
