#!/usr/bin/env bash
# tests/integration/stop.sh: graceful stop. SIGTERM during a busy run: etlua stops receiving,
# commits and deletes the batch in hand, exits 0 within a few seconds; a later drain takes the
# rest; every message lands exactly once. SIGTERM to an idle service cuts its 20 s long poll.
# A long poll cut by the signal may already have been answered by SQS: those messages stay
# invisible for the visibility timeout (3 s here) and come back, so the rest is drained until
# the queue is empty.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs --visibility 3
script=$ROOT/scripts/login_etl.lua
python3 "$ROOT/tests/harness/gen_logins.py" 20000 --seed 3 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"

"$ETLUA_BIN" "$script" 2>"$WORK/busy.log" &     # as a service: runs until a signal
pid=$!
sleep 1.5
stop_clean $pid "$WORK/busy.log"
[ $t -lt 5000 ] || fail "took ${t} ms to stop"
grep -q " stopped .*received=" "$WORK/busy.log" || fail "no stop summary"
ok "SIGTERM mid-drain: exit 0 after ${t} ms, the batch in hand committed and deleted"

for _ in 1 2 3 4 5 6; do
  "$ETLUA_BIN" "$script" --drain 2>>"$WORK/rest.log" || fail "the drain after the stop failed"
  [ "$(depth)" = "0 0" ] && break
  sleep 2
done
python3 "$ROOT/tests/integration/check_tables.py" "$WORK/input.jsonl" --key "$ETLUA_MASK_KEY" >/dev/null \
  || fail "tables differ from the oracle's expectations"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "the rest drained: every message exactly once"

"$ETLUA_BIN" "$script" 2>"$WORK/idle.log" &     # an idle service, in a 20 s long poll
pid=$!
sleep 2
t0=$(date +%s%3N)
kill -INT $pid
rc=0; wait $pid || rc=$?
t=$(( $(date +%s%3N) - t0 ))
[ $rc -eq 0 ] || fail "idle service: exit status $rc after SIGINT"
[ $t -lt 3000 ] || fail "idle service took ${t} ms to stop"
ok "SIGINT to an idle service cuts the long poll: exit 0 after ${t} ms"
