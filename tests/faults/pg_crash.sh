#!/usr/bin/env bash
# tests/faults/pg_crash.sh [N] [DOWN_S]: Postgres crashes mid-drain on a server configured with
# synchronous_commit = off server-wide (a common tuning). N messages (default 20000) on fauxqs;
# once etlua has committed some, the server is stopped with `pg_ctl -m immediate` (no
# checkpoint, the WAL buffers lost, as in a crash), left down DOWN_S seconds (default 3) and
# started again (crash recovery). etlua, restarted if it exited, finishes the drain.
#
# The fault it guards against: with the server's synchronous_commit = off a COMMIT returns before
# its WAL is written, so a crash loses batches that etlua has already deleted from the queue.
# etlua sets synchronous_commit = on for its own transactions (ETLUA_SYNCHRONOUS_COMMIT); with
# ETLUA_SYNCHRONOUS_COMMIT=off this test fails (lost messages), which shows it can see the fault.
#
# Asserts: exactness (check_exact: no message lost, none twice, queue empty).
# Prints: committed before the crash, etlua's exit status, the runs needed, elapsed time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-20000}"
DOWN="${2:-3}"
fault_setup pg_crash 30 --conf "synchronous_commit = off"
[ "$(psql_q "SHOW synchronous_commit")" = off ] || die "the server's synchronous_commit is not off"
load "$N"
started=$(date +%s)

drain_in_background "$WORK/drain.log" $((N / 4)) 400 "the crash"
before=$(ledger_count)
"$HARNESS/pg.sh" crash "$WORK/pg"
log "Postgres crashed (immediate stop) with $before/$N in the ledger; down for ${DOWN}s"
sleep "$DOWN"
"$HARNESS/pg.sh" resume "$WORK/pg"
log "Postgres restarted (crash recovery done); ledger now $(ledger_count)"

await_drain "the crash"
log "etlua exit status $rc; its last line: $(tail -1 "$WORK/drain.log")"
deadline=$(( $(date +%s) + 120 ))
drain_until_empty "$WORK/final" "$deadline"
check_exact
elapsed=$(( $(date +%s) - started ))
result pg_crash.messages "$N"
result pg_crash.committed_before "$before"
result pg_crash.exit "$rc"
result pg_crash.lost 0
log "PASS: crash with $before/$N committed, server synchronous_commit = off; exact after $DRAIN_RUNS more run(s); ${elapsed}s"
