#!/usr/bin/env bash
# tests/integration/redelivery.sh: a message that SQS delivers twice lands once.
# A lock on user_logins holds consumer A's transaction open, and A is stopped (SIGSTOP: a stalled
# process, whose visibility heartbeat cannot run) longer than the queue's visibility timeout, so
# SQS hands the same messages to consumer B. B's ledger insert waits on A's uncommitted ledger
# rows; when A resumes and commits, B finds every id taken and writes nothing twice.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs --visibility 2
script=$ROOT/scripts/login_etl.lua
"$ETLUA_BIN" "$script" --drain 2>"$WORK/setup.log" || fail "set-up drain failed"   # creates the tables
python3 "$ROOT/tests/harness/gen_logins.py" 300 --seed 5 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"

psql -X -q -c "BEGIN; LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;" >/dev/null &
lock_pid=$!
sleep 0.5
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/a.log" &
a_pid=$!
for _ in $(seq 1 100); do [ "$(depth)" = "0 300" ] && break; sleep 0.05; done
sleep 0.3   # A holds all 300 in a blocked transaction
kill -STOP $a_pid
sleep 4     # their visibility (2 s) runs out: A's heartbeat cannot run while it is stopped
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/b.log" &
b_pid=$!
sleep 2     # B holds them too, waiting on A's ledger rows
kill -CONT $a_pid
wait $lock_pid
wait $a_pid || { cat "$WORK/a.log" >&2; fail "consumer A failed"; }
wait $b_pid || { cat "$WORK/b.log" >&2; fail "consumer B failed"; }
for _ in 1 2 3 4 5; do
  [ "$(depth)" = "0 0" ] && break
  sleep 2
  "$ETLUA_BIN" "$script" --drain 2>>"$WORK/rest.log" || fail "final drain failed"
done

# whichever of the two reaches the ledger second skips what the other holds
dups=$(sed -n 's/.* done .*duplicates=\([0-9]*\).*/\1/p' "$WORK/a.log" "$WORK/b.log" | awk '{s+=$1} END {print s+0}')
[ "${dups:-0}" -gt 0 ] || { cat "$WORK/a.log" "$WORK/b.log" >&2; fail "no redelivered message was skipped: the test did not exercise the ledger"; }
ok "consumers A and B were both handed $dups messages; the ledger skipped them once"
python3 "$ROOT/tests/integration/check_tables.py" "$WORK/input.jsonl" --key "$ETLUA_MASK_KEY" >/dev/null \
  || fail "tables differ from the oracle's expectations"
[ "$(psql_q 'SELECT count(*) FROM user_logins')" = 300 ] || fail "not exactly 300 rows"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "300 messages, 300 rows: each landed exactly once"
