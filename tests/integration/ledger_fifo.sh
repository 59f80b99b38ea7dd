#!/usr/bin/env bash
# tests/integration/ledger_fifo.sh: exactly once on a FIFO queue across partition boundaries.
# The consumer's first batch waits on a lock while it is stopped past the visibility timeout
# (2 s); another receiver takes those messages meanwhile, so the consumer's receipts go stale:
# it commits the batch, cannot delete it, and receives the same messages again after 1 s
# partitions have passed. The ledger skips them: every message lands once, in group order.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs --fifo --visibility 2
export ETLUA_LEDGER_PARTITION_SECONDS=1 ETLUA_LEDGER_RETENTION=120
script=$ROOT/tests/integration/fifo_pipeline.lua
n=200
python3 "$ROOT/tests/integration/gen_fifo.py" "$n" 4 --bad-every 37 >"$WORK/input.jsonl"
bad=$(grep -c '"bad":true' "$WORK/input.jsonl")
node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/input.jsonl" --group-field g \
  >/dev/null 2>&1 || fail "could not send to the FIFO queue"
psql_q "CREATE TABLE fifo_events (n bigserial, g text, seq integer, extra integer)" >/dev/null   # fifo_pipeline.lua's table

psql -X -q -c "BEGIN; LOCK TABLE fifo_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;" >/dev/null &
lock_pid=$!
sleep 0.3
ETLUA_BATCH_SIZE=1000 "$ETLUA_BIN" "$script" --drain 2>"$WORK/etlua.log" &
pid=$!
for _ in $(seq 1 100); do [ "$(depth | cut -d' ' -f2)" -gt 0 ] && break; sleep 0.05; done
sleep 0.5
kill -STOP $pid        # its first batch waits on the lock
sleep 2.5              # the batch's visibility (2 s) runs out
for _ in 1 2 3 4 5 6; do node "$ROOT/tests/harness/sqs.js" receive "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" --max 10 >>"$WORK/taken.jsonl"; done
[ -s "$WORK/taken.jsonl" ] || fail "nothing was taken from under the consumer"
kill -CONT $pid
wait $lock_pid
wait $pid || { cat "$WORK/etlua.log" >&2; fail "etlua --drain failed"; }
summary=$(grep ' done ' "$WORK/etlua.log") || fail "no summary line"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$summary"; }
[ "$(field duplicates)" -gt 0 ] || { cat "$WORK/etlua.log" >&2; fail "no message came back: the test did not exercise the ledger"; }
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
rows=$(psql_q "SELECT count(*), count(DISTINCT (g, seq)) FROM fifo_events")
[ "$rows" = "$((n - bad))|$((n - bad))" ] || fail "rows (all|distinct): $rows, expected $((n - bad)) once each"
[ "$(psql_q "SELECT count(*) FROM fifo_events_rejects")" = "$bad" ] \
  || fail "rejects differ from $bad"
back=$(psql_q "SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY g ORDER BY n) AS back FROM fifo_events) t WHERE back")
[ "$back" = 0 ] || fail "$back rows were written before an earlier message of their group"
ok "FIFO: $(field duplicates) messages received again after partition boundaries were skipped; $n landed once, in group order"
