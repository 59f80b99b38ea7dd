#!/usr/bin/env bash
# tests/integration/detect.sh: ETLUA_SQS_PROTOCOL=auto finds the protocol each emulator speaks:
# fauxqs (JSON only) -> json, local-aws-sqs (both) -> json, sqslite (query only, refuses JSON
# requests) -> query. Each run is a dry-run drain of one message, so nothing is deleted and
# sqslite's broken DeleteMessageBatch is never trusted.
. "$(dirname "$0")/lib.sh"
echo '{"user_id": "d-1", "ip": "10.0.0.1", "device_id": "1-2-3", "app_version": "1.2"}' >"$WORK/one.jsonl"
for pair in fauxqs:json local-aws-sqs:json sqslite:query; do
  name=${pair%%:*} want=${pair##*:}
  start_sqs "$name"
  send "$WORK/one.jsonl"
  ETLUA_SQS_PROTOCOL=auto "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain --dry-run \
    >"$WORK/$name.out" 2>"$WORK/$name.log" || { cat "$WORK/$name.log" >&2; fail "$name: etlua failed"; }
  grep -q "sqs ready.*protocol=$want" "$WORK/$name.log" || { cat "$WORK/$name.log" >&2; fail "$name: expected protocol $want"; }
  grep -q '"user_id":"d-1"' "$WORK/$name.out" || fail "$name: dry-run did not print the row"
  ok "$name speaks $want, and etlua found it"
done
