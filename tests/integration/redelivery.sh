#!/usr/bin/env bash
# tests/integration/redelivery.sh: a message that SQS delivers twice lands once.
# A lock on user_logins holds consumer A's transaction open longer than the queue's visibility
# timeout, so SQS hands the same messages to consumer B. B's ledger insert waits on A's
# uncommitted ledger rows; when A commits, B finds every id taken and writes nothing twice.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs --visibility 2
script=$ROOT/scripts/login_etl.lua
"$ETLUA_BIN" "$script" --drain 2>"$WORK/setup.log" || fail "set-up drain failed"   # creates the tables
python3 "$ROOT/tests/harness/gen_logins.py" 300 --seed 5 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"

psql -X -q -c "BEGIN; LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;" >/dev/null &
lock_pid=$!
sleep 0.5
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/a.log" &
a_pid=$!
sleep 3.5   # A holds all 300 in a blocked transaction; their visibility (2 s) has run out
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/b.log" &
b_pid=$!
wait $lock_pid
wait $a_pid || { cat "$WORK/a.log" >&2; fail "consumer A failed"; }
wait $b_pid || { cat "$WORK/b.log" >&2; fail "consumer B failed"; }
for _ in 1 2 3 4 5; do
  [ "$(depth)" = "0 0" ] && break
  sleep 2
  "$ETLUA_BIN" "$script" --drain 2>>"$WORK/rest.log" || fail "final drain failed"
done

dups=$(sed -n 's/.* done .*duplicates=\([0-9]*\).*/\1/p' "$WORK/b.log")
[ "${dups:-0}" -gt 0 ] || { cat "$WORK/a.log" "$WORK/b.log" >&2; fail "B saw no redelivered message: the test did not exercise the ledger"; }
ok "consumer B was handed $dups messages that A held; the ledger skipped them"
python3 "$ROOT/tests/integration/check_tables.py" "$WORK/input.jsonl" --key "$ETLUA_MASK_KEY" >/dev/null \
  || fail "tables differ from the oracle's expectations"
[ "$(psql_q 'SELECT count(*) FROM user_logins')" = 300 ] || fail "not exactly 300 rows"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "300 messages, 300 rows: each landed exactly once"
