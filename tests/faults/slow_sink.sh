#!/usr/bin/env bash
# tests/faults/slow_sink.sh [N] [LOCK_S]: a commit that outlasts the visibility timeout.
# Queue visibility 5 s. A psql session holds LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE for
# LOCK_S seconds (default 15). Consumer A (etlua --drain) receives all N messages (default 300,
# one batch) and blocks in its commit on the lock; then consumer B (etlua --drain, long polls of
# 8 s) starts on the same queue. When the lock goes, both finish.
#
# Asserts, in this order:
#   1. exactness (check_exact): the ledger makes any redelivery land once;
#   2. no redelivery: B receives none of the messages A holds, i.e. the messages received by A
#      and B together (their "done ... received=" lines) equal N and no ledger skips
#      ("duplicates=") happened. This is the visibility heartbeat's test: A extends the
#      visibility of what it holds (ChangeMessageVisibilityBatch every half timeout) while its
#      batch waits in the prefetch buffer (ETLUA_BATCH_MAX_WAIT_MS=5000 here) and while its COPY
#      waits on the lock (the db:on_wait hook of etlua.pg). Without it B gets every message again
#      after 5 s and skips them all via the ledger.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-300}"
LOCK_S="${2:-15}"
VIS=5
fault_setup slow_sink "$VIS"
# etlua creates its tables on an empty queue first, so the lock has a table to hold.
"$ETLUA_BIN" "$SCRIPT" --drain 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; die "etlua could not start"; }
load "$N"
started=$(date +%s)

psql -X -q -v ON_ERROR_STOP=1 >"$WORK/lock.out" 2>&1 <<SQL &
BEGIN;
LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE;
SELECT pg_sleep($LOCK_S);
COMMIT;
SQL
lock_pid=$!
FAULT_PIDS+=("$lock_pid")
for _ in $(seq 1 100); do
    [ "$(psql_q "SELECT count(*) FROM pg_locks WHERE relation = 'user_logins'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
    sleep 0.05
done
log "user_logins locked for ${LOCK_S}s (visibility ${VIS}s)"

ETLUA_BATCH_SIZE=$((N > 500 ? N : 500)) ETLUA_BATCH_MAX_WAIT_MS=5000 \
    "$ETLUA_BIN" "$SCRIPT" --drain 2>"$WORK/a.log" &
a_pid=$!
FAULT_PIDS+=("$a_pid")
for _ in $(seq 1 100); do [ "$(depth)" = "0 $N" ] && break; sleep 0.1; done
log "consumer A holds the messages: depth $(depth)"
ETLUA_DRAIN_WAIT_SECONDS=8 "$ETLUA_BIN" "$SCRIPT" --drain 2>"$WORK/b.log" &
b_pid=$!
FAULT_PIDS+=("$b_pid")
log "consumer B started"

rc_a=0 rc_b=0
wait "$a_pid" || rc_a=$?
wait "$b_pid" || rc_b=$?
wait "$lock_pid" || true
[ "$rc_a" = 0 ] || die "consumer A exited $rc_a: $(tail -1 "$WORK/a.log")"
[ "$rc_b" = 0 ] || die "consumer B exited $rc_b: $(tail -1 "$WORK/b.log")"
field() { sed -n "s/.* INFO done .*[ ]$2=\([0-9]*\).*/\1/p" "$1" | tail -1; }
ra=$(field "$WORK/a.log" received) rb=$(field "$WORK/b.log" received)
da=$(field "$WORK/a.log" duplicates) db=$(field "$WORK/b.log" duplicates)
log "A: $(tail -1 "$WORK/a.log" | cut -c1-160)"
log "B: $(tail -1 "$WORK/b.log" | cut -c1-160)"
deadline=$(( $(date +%s) + 60 ))
drain_until_empty "$WORK/final" "$deadline"
check_exact
redelivered=$(( ${ra:-0} + ${rb:-0} + $(duplicates_in "$WORK"/final.*.log) - N ))
skips=$(( ${da:-0} + ${db:-0} + $(duplicates_in "$WORK"/final.*.log) ))
elapsed=$(( $(date +%s) - started ))
log "received: A $ra, B $rb (N $N) -> $redelivered redeliveries; ledger skips: A $da, B $db; ${elapsed}s"
result slow_sink.messages "$N"
result slow_sink.redelivered "$redelivered"
result slow_sink.ledger_skips "$skips"
result slow_sink.lost 0
result slow_sink.dupes_in_tables 0
if [ "$redelivered" != 0 ] || [ "$skips" != 0 ]; then
    die "exactness held, but $redelivered messages were redelivered to the other consumer while the first held them in a ${LOCK_S}s commit (visibility ${VIS}s): the visibility heartbeat did not keep them"
fi
log "PASS: no redelivery during a ${LOCK_S}s commit with a ${VIS}s visibility timeout; exact"
