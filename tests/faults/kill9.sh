#!/usr/bin/env bash
# tests/faults/kill9.sh [N] [KILLS]: crash safety. N messages (default 5000; full run 100000)
# on a queue with a 3 s visibility timeout; etlua --drain is started and killed with SIGKILL at
# a random moment KILLS times (default 5; full 20), restarted each time, then drained until
# the queue depth is "0 0" (messages a killed run held come back when their visibility expires).
#
# Asserts: each kill landed on a running etlua that still had work (a run that finished before
#          its kill does not count; the test restarts and tries again); the final drains exit 0;
#          exactness (check_exact: tables == oracle, ledger == N ids, depth 0 0).
# Prints: kills, how many kills left messages in flight, ledger hits (duplicates skipped) in
#         the final drains, elapsed time.
# Env: KILL9_MAX_DELAY (s) upper bound of the random kill moment (default: scaled to N/KILLS).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-5000}"
KILLS="${2:-5}"
VIS=3
fault_setup kill9 "$VIS"
load "$N"
started=$(date +%s)

# etlua drains about 3000 messages/s here: spread the kills over the drain.
max_delay="${KILL9_MAX_DELAY:-$(python3 -c "print(min(3.0, max(0.3, $N / 3000 / $KILLS * 1.2)))")}"
kills=0 inflight_kills=0 finished_early=0 attempts=0
while [ "$kills" -lt "$KILLS" ]; do
    attempts=$((attempts + 1))
    [ "$attempts" -le $((KILLS * 4 + 10)) ] || die "could not land $KILLS kills on a working etlua ($kills landed)"
    if [ "$(depth)" = "0 0" ]; then
        log "queue drained after $kills kills; reloading is not allowed, so stopping the kill loop"
        break
    fi
    delay=$(python3 -c "import random; print(round(random.uniform(0.05, $max_delay), 3))")
    "$ETLUA_BIN" "$SCRIPT" --drain 2>"$WORK/run.$attempts.log" &
    pid=$!
    FAULT_PIDS+=("$pid")
    sleep "$delay"
    if kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        d="$(depth)"
        [ "${d#* }" != 0 ] && inflight_kills=$((inflight_kills + 1))
        log "kill $kills after ${delay}s: ledger $(ledger_count)/$N, depth $d (visible not-visible)"
    else
        rc=0; wait "$pid" 2>/dev/null || rc=$?
        finished_early=$((finished_early + 1))
        [ "$rc" = 0 ] || die "etlua exited $rc before its kill: $(tail -1 "$WORK/run.$attempts.log")"
    fi
done

# A killed run's messages are invisible for up to VIS s: wait and drain until depth is 0 0.
deadline=$(( $(date +%s) + 120 + N / 500 ))
drain_until_empty "$WORK/final" "$deadline"
[ "$DRAIN_FAILS" = 0 ] || die "$DRAIN_FAILS final drains exited non-zero"
dups=$(duplicates_in "$WORK"/final.*.log "$WORK"/run.*.log)
check_exact
elapsed=$(( $(date +%s) - started ))
log "PASS: $N messages, $kills kills survived ($inflight_kills with messages in flight), $finished_early runs finished before their kill, $DRAIN_RUNS final drains, $dups redeliveries skipped by the ledger, ${elapsed}s"
result kill9.messages "$N"
result kill9.kills "$kills"
result kill9.kills_inflight "$inflight_kills"
result kill9.ledger_skips "$dups"
result kill9.seconds "$elapsed"
result kill9.lost 0
result kill9.dupes_in_tables 0
