#!/usr/bin/env bash
# tests/integration/message.sh: ctx.message end to end, on a FIFO queue (fauxqs): for every
# message the script sees its SQS id, its MessageGroupId (equal to the group the test sent it
# with), a SequenceNumber, receive_count 1 (first delivery), SentTimestamp and the receive time
# (sent <= received), and the message attributes (none sent: an empty object).
. "$(dirname "$0")/lib.sh"
n=${1:-60}
start_pg
start_sqs fauxqs --fifo --visibility 60
python3 "$ROOT/tests/integration/gen_fifo.py" "$n" 3 >"$WORK/input.jsonl"
node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/input.jsonl" --group-field g \
  >/dev/null 2>&1 || fail "could not send to the FIFO queue"
"$ETLUA_BIN" "$ROOT/tests/integration/message_pipeline.lua" --drain 2>"$WORK/etlua.log" \
  || { cat "$WORK/etlua.log" >&2; fail "etlua --drain exited non-zero"; }
got=$(psql_q "SELECT count(*), count(*) FILTER (WHERE group_id = g), count(sequence_number),
  count(*) FILTER (WHERE receive_count = 1), count(*) FILTER (WHERE sent_ms <= received_ms),
  count(*) FILTER (WHERE attributes = '{}'::jsonb), count(DISTINCT message_id) FROM seen_messages")
[ "$got" = "$n|$n|$n|$n|$n|$n|$n" ] \
  || fail "ctx.message (rows|group=g|sequence|receive_count=1|sent<=received|attributes {}|ids): $got"
ok "each of $n messages saw its id, group, sequence number, receive count, times and attributes"
