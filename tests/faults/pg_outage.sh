#!/usr/bin/env bash
# tests/faults/pg_outage.sh [N] [OUTAGE_S]: Postgres goes away mid-drain. N messages (default
# 10000); once etlua has committed some of them, the server is stopped (tests/harness/pg.sh
# pause: fast shutdown, sessions killed, connections refused) for OUTAGE_S seconds (default 10),
# then started again on the same port.
#
# Asserts: (1) the drain that lived through the outage exits 0 with the queue empty (the
#          contract: etlua reconnects and completes; nothing is deleted before its commit);
#          (2) exactness (check_exact) — checked even when (1) fails, after follow-up drains, so
#          a failure says whether only availability or also correctness broke.
# Prints: the outage length, etlua's exit status, its reconnect/retry warnings, elapsed time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-10000}"
OUTAGE="${2:-10}"
fault_setup pg_outage 30
load "$N"
started=$(date +%s)

drain_in_background "$WORK/drain.log" $((N / 10)) 200 "the outage could start" # the first commits
before=$(ledger_count)
t0=$(date +%s.%N)
"$HARNESS/pg.sh" pause "$WORK/pg"
log "Postgres paused with $before/$N committed; down for ${OUTAGE}s"
kill -0 "$pid" 2>/dev/null || log "etlua already exited during the pause itself"
sleep "$OUTAGE"
alive_at_resume=no
kill -0 "$pid" 2>/dev/null && alive_at_resume=yes
"$HARNESS/pg.sh" resume "$WORK/pg"
down=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
log "Postgres resumed after ${down}s; etlua still running at resume: $alive_at_resume"

await_drain "the outage"
reconnects=$(grep -c "lost the Postgres connection" "$WORK/drain.log" || true)
retries=$(grep -c "retrying.*target=postgres" "$WORK/drain.log" || true)
log "etlua exit status $rc; 'lost the Postgres connection' x$reconnects, postgres retries x$retries"
log "etlua's last line: $(tail -1 "$WORK/drain.log")"
bug=""
if [ "$rc" != 0 ]; then
    bug="etlua --drain exited $rc during a ${OUTAGE}s Postgres outage instead of reconnecting and completing"
    log "BUG: $bug"
    log "draining the rest with a fresh etlua to check that nothing was lost or duplicated"
fi
deadline=$(( $(date +%s) + 120 ))
drain_until_empty "$WORK/final" "$deadline"
check_exact
elapsed=$(( $(date +%s) - started ))
result pg_outage.messages "$N"
result pg_outage.outage_s "$down"
result pg_outage.exit "$rc"
result pg_outage.pg_retries "$retries"
result pg_outage.lost 0
result pg_outage.dupes_in_tables 0
[ -z "$bug" ] || die "$bug (exactness still held after a restart)"
[ "$DRAIN_FAILS" = 0 ] || die "a follow-up drain exited non-zero"
log "PASS: ${down}s outage survived by one run; $N messages exact; ${elapsed}s"
