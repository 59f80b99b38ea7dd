#!/usr/bin/env bash
# tests/integration/message.sh [EMULATOR PROTOCOL]: ctx.message end to end. Default: a FIFO
# queue on fauxqs (json), where for every message the script sees its SQS id, its
# MessageGroupId (equal to the group the test sent it with), a SequenceNumber; with another
# emulator (local-aws-sqs query), a standard queue: no group, no sequence number. Both:
# receive_count 1 (first delivery), SentTimestamp and the receive time
# (sent <= received), and the message attributes it was sent with (every third message has
# none: an empty object).
. "$(dirname "$0")/lib.sh"
emulator=${1:-fauxqs} protocol=${2:-json} n=60
start_pg
if [ "$emulator" = fauxqs ]; then
  start_sqs fauxqs --fifo --visibility 60
  fifo=(--group-field g)
else
  start_sqs "$emulator"
  fifo=()
fi
python3 - "$n" >"$WORK/input.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    body = {"g": "g%d" % (i % 3), "seq": i}
    if i % 3:
        body["attrs"] = {"source": "app-%d" % (i % 5), "trace": "t-%06d" % i}
    print(json.dumps(body))
PY
node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/input.jsonl" "${fifo[@]}" \
  --attributes-field attrs >/dev/null 2>&1 || fail "could not send to the queue"
ETLUA_SQS_PROTOCOL=$protocol "$ETLUA_BIN" "$ROOT/tests/integration/message_pipeline.lua" --drain 2>"$WORK/etlua.log" \
  || { cat "$WORK/etlua.log" >&2; fail "etlua --drain exited non-zero"; }
if [ ${#fifo[@]} -eq 0 ]; then   # a standard queue: no group and no sequence number, as SQS
  psql_q "UPDATE seen_messages SET group_id = g, sequence_number = 0
          WHERE group_id IS NULL AND sequence_number IS NULL" >/dev/null
fi
got=$(psql_q "SELECT count(*), count(*) FILTER (WHERE group_id = g), count(sequence_number),
  count(*) FILTER (WHERE receive_count = 1), count(*) FILTER (WHERE sent_ms <= received_ms),
  count(*) FILTER (WHERE attributes = sent_attributes), count(DISTINCT message_id) FROM seen_messages")
[ "$got" = "$n|$n|$n|$n|$n|$n|$n" ] \
  || fail "ctx.message (rows|group=g|sequence|receive_count=1|sent<=received|attributes as sent|ids): $got"
ok "each of $n messages saw its id, group, sequence number, receive count, times and attributes ($emulator, $protocol)"
