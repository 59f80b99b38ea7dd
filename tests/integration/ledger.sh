#!/usr/bin/env bash
# tests/integration/ledger.sh [SERVICE_SECONDS]: the exactly-once ledger on the real services.
#  1. A redelivery after a partition boundary (1 s partitions): consumer A commits 100 messages
#     but cannot delete them (another receiver took them meanwhile: A's receipts are stale);
#     after the boundary, consumer B receives them again and lands none of them twice.
#  2. --input: the same file loaded again after a boundary lands nothing twice.
#  3. The upgrade of the unpartitioned ledger of the previous version: a message it holds,
#     redelivered after the upgrade, is skipped; the rest land once.
#  4. A service with a retention of 60 s (ETLUA_LEDGER_RETENTION, 10 s partitions) receiving for
#     SERVICE_SECONDS (default 120) while messages are sent: the ledger stays bounded while it
#     runs (entries and partitions sampled every 10 s), and every message lands once.
. "$(dirname "$0")/lib.sh"
SERVICE_SECONDS=${1:-120}
start_pg
start_sqs fauxqs --visibility 2
script=$ROOT/scripts/login_etl.lua
sqsjs() { node "$ROOT/tests/harness/sqs.js" "$@"; }
rows() { psql_q "SELECT (SELECT count(*) FROM user_logins) + (SELECT count(*) FROM user_logins_rejects)"; }
done_field() { sed -n "s/.* done .*$2=\([0-9]*\).*/\1/p" "$1" | tail -1; }
"$ETLUA_BIN" "$script" --drain 2>"$WORK/setup.log" || { cat "$WORK/setup.log" >&2; fail "set-up drain failed"; }
[ "$(psql_q "SELECT relkind FROM pg_class WHERE oid = 'etlua_ledger'::regclass")" = p ] || fail "the ledger is not partitioned"

# 1 ----------------------------------------------------------------------------------------------
export ETLUA_LEDGER_PARTITION_SECONDS=1 ETLUA_LEDGER_RETENTION=120
psql_q "DROP TABLE etlua_ledger" >/dev/null   # made again with 1 s partitions
python3 "$ROOT/tests/harness/gen_logins.py" 100 --seed 11 >"$WORK/one.jsonl"
send "$WORK/one.jsonl"
psql -X -q -c "BEGIN; LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;" >/dev/null &
lock_pid=$!
sleep 0.3
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/a.log" &
a_pid=$!
for _ in $(seq 1 100); do [ "$(depth)" = "0 100" ] && break; sleep 0.05; done
sleep 0.3
kill -STOP $a_pid      # A holds all 100 in a transaction waiting on the lock
sleep 2.5              # their visibility (2 s) runs out
for _ in $(seq 1 30); do
  sqsjs receive "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" --max 10 >>"$WORK/taken.jsonl"
  [ "$(wc -l <"$WORK/taken.jsonl")" -ge 100 ] && break
done
kill -CONT $a_pid
wait $lock_pid
wait $a_pid || { cat "$WORK/a.log" >&2; fail "consumer A failed"; }
[ "$(rows)" = 100 ] || fail "A did not commit its 100 messages"
sleep 3                # the receipts taken run out too; 3 partition boundaries passed
"$ETLUA_BIN" "$script" --drain 2>"$WORK/b.log" || { cat "$WORK/b.log" >&2; fail "consumer B failed"; }
dups=$(done_field "$WORK/b.log" duplicates)
[ "${dups:-0}" -gt 0 ] || { cat "$WORK/a.log" "$WORK/b.log" >&2; fail "no message was redelivered after A's commit: the test did not exercise the ledger"; }
[ "$(rows)" = 100 ] || fail "a redelivered message landed twice: $(rows) rows"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "$dups messages committed by A and redelivered to B after partition boundaries landed once"

# 2 ----------------------------------------------------------------------------------------------
"$ETLUA_BIN" "$script" --input "$WORK/one.jsonl" 2>"$WORK/in1.log" || fail "--input failed"
sleep 2
"$ETLUA_BIN" "$script" --input "$WORK/one.jsonl" 2>"$WORK/in2.log" || fail "--input again failed"
[ "$(done_field "$WORK/in2.log" duplicates)" = 100 ] || { cat "$WORK/in2.log" >&2; fail "the file loaded again was not skipped"; }
[ "$(rows)" = 200 ] || fail "--input twice: $(rows) rows, expected 200"
ok "a file loaded again after a partition boundary landed nothing twice"

# 3 ----------------------------------------------------------------------------------------------
unset ETLUA_LEDGER_PARTITION_SECONDS
psql_q "TRUNCATE user_logins, user_logins_rejects; DROP TABLE etlua_ledger, etlua_ledger_queues" >/dev/null
psql_q "CREATE TABLE etlua_ledger (message_id text PRIMARY KEY, queue text, outcome text,
  processed_at timestamptz NOT NULL DEFAULT now()); CREATE INDEX etlua_ledger_processed_at ON etlua_ledger (processed_at)" >/dev/null
python3 "$ROOT/tests/harness/gen_logins.py" 50 --seed 12 >"$WORK/three.jsonl"
send "$WORK/three.jsonl"
: >"$WORK/old.jsonl"
for _ in $(seq 1 10); do   # the earlier version landed 20 of them, then stopped before deleting
  sqsjs receive "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" --max 10 >>"$WORK/old.jsonl"
  [ "$(wc -l <"$WORK/old.jsonl")" -ge 20 ] && break
done
python3 - "$WORK/old.jsonl" >"$WORK/old.sql" <<'PY'
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1])][:20]
print("INSERT INTO etlua_ledger (message_id, queue, outcome) VALUES " + ", ".join(f"('{i}', 'q', 'row')" for i in ids) + ";")
PY
psql -X -q -v ON_ERROR_STOP=1 -f "$WORK/old.sql" >/dev/null
sleep 2.5
"$ETLUA_BIN" "$script" --drain 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; fail "the drain after the upgrade failed"; }
grep -q "ledger upgraded" "$WORK/up.log" || fail "no upgrade logged"
[ "$(psql_q "SELECT relkind FROM pg_class WHERE oid = 'etlua_ledger'::regclass")" = p ] || fail "the ledger was not upgraded"
[ "$(psql_q "SELECT count(*) FROM etlua_ledger_v1")" = 20 ] || fail "the old entries were not kept"
[ "$(done_field "$WORK/up.log" duplicates)" = 20 ] || { cat "$WORK/up.log" >&2; fail "the messages of the old ledger were not skipped"; }
[ "$(rows)" = 30 ] || fail "after the upgrade: $(rows) rows, expected 30"
[ "$(depth)" = "0 0" ] || fail "queue not empty after the upgrade: $(depth)"
ok "upgraded in place: 20 messages landed by the old ledger were skipped, 30 landed"

# 4 ----------------------------------------------------------------------------------------------
psql_q "TRUNCATE user_logins, user_logins_rejects; DROP TABLE etlua_ledger, etlua_ledger_v1, etlua_ledger_queues" >/dev/null
export ETLUA_LEDGER_RETENTION=60 ETLUA_LEDGER_PARTITION_SECONDS=10 ETLUA_WAIT_SECONDS=1
"$ETLUA_BIN" "$script" 2>"$WORK/svc.log" &
svc_pid=$!
python3 "$ROOT/tests/harness/gen_logins.py" 20 --seed 13 >"$WORK/tick.jsonl"
start=$(date +%s) sent=0 worst_entries=0 worst_parts=0
while [ $(( $(date +%s) - start )) -lt "$SERVICE_SECONDS" ]; do
  for _ in 1 2 3 4 5; do send "$WORK/tick.jsonl"; sent=$((sent + 20)); sleep 1.8; done
  entries=$(psql_q "SELECT count(*) FROM etlua_ledger")
  parts=$(psql_q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'etlua_ledger'::regclass")
  age=$(psql_q "SELECT coalesce(extract(epoch from now())::int - 1704067200 - min(sent), 0) FROM etlua_ledger")
  echo "t=$(( $(date +%s) - start ))s sent=$sent entries=$entries partitions=$parts oldest=${age}s" >>"$WORK/samples"
  if [ $(( $(date +%s) - start )) -ge 90 ]; then
    # 60 s of retention + one 10 s partition + a maintenance interval, at ~11 messages/s
    [ "$age" -le 85 ] || { cat "$WORK/samples" >&2; fail "an entry ${age}s old is still in the ledger (retention 60 s)"; }
    [ "$parts" -le 11 ] || { cat "$WORK/samples" >&2; fail "$parts partitions for 60 s of 10 s partitions"; }
    [ "$entries" -gt "$worst_entries" ] && worst_entries=$entries
    [ "$parts" -gt "$worst_parts" ] && worst_parts=$parts
  fi
done
kill -TERM $svc_pid
wait $svc_pid || { cat "$WORK/svc.log" >&2; fail "the service failed"; }
cat "$WORK/samples"
[ "$worst_entries" -lt "$sent" ] || fail "the ledger was never pruned"
grep -q "shorter than the queue's retention" "$WORK/svc.log" || fail "no warning for a retention shorter than the queue's"
grep -q "ledger maintenance.*expired" "$WORK/svc.log" || fail "no partition expired while running"
[ "$(rows)" = "$sent" ] || fail "the service landed $(rows) rows of $sent"
ok "service: $sent messages over ${SERVICE_SECONDS}s landed once; the ledger stayed at <= $worst_entries entries, <= $worst_parts partitions"
