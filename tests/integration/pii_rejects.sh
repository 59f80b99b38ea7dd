#!/usr/bin/env bash
# tests/integration/pii_rejects.sh: no raw pii reaches the rejects table, a detail or a log line,
# on the real services. The pii corpus (spec/data/pii_corpus.jsonl via hostile.py --pii: nested
# objects, pii in free text, Python dicts, escaped keys, JSON inside strings, very short values,
# IPv6 in many spellings, 1 MiB runs of digits, colons, dots, hex, quotes, keys):
#  - the bodies SQS carries (under 200 KB) go through fauxqs and a --drain;
#  - all of them, the 1 MiB ones included, through --input, and through --dry-run --input,
#    which logs each reject (`rejected` lines with their details);
# then oracle.py --pii-leaks checks every stored detail and body and every log line against the
# corpus' secrets, and the --input run of ~14 MiB of hostile bodies must take less than 60 s
# (the quadratic scrubber took 60 s for one 64 KiB body).
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua
hostile=$ROOT/tests/integration/hostile.py

python3 "$hostile" --pii --max-bytes 200000 >"$WORK/small.jsonl"
python3 "$hostile" --pii >"$WORK/all.jsonl"
send "$WORK/small.jsonl"
"$ETLUA_BIN" "$script" --drain 2>"$WORK/drain.log" || { cat "$WORK/drain.log" >&2; fail "--drain failed"; }
want=$(wc -l <"$WORK/small.jsonl")
got=$(psql_q "SELECT count(*) FROM user_logins_rejects")
[ "$got" = "$want" ] || fail "$got rejects after the drain, expected $want (every corpus body is a reject)"
ok "drained $want hostile bodies from fauxqs: all rejected"

unset SQS_QUEUE_URL AWS_ENDPOINT_URL
start=$(date +%s.%N)
"$ETLUA_BIN" "$script" --input "$WORK/all.jsonl" 2>"$WORK/input.log" \
  || { cat "$WORK/input.log" >&2; fail "--input failed"; }
seconds=$(echo "$(date +%s.%N) - $start" | bc)
mib=$(( $(wc -c <"$WORK/all.jsonl") / 1048576 ))
echo "   --input of $(wc -l <"$WORK/all.jsonl") hostile bodies ($mib MiB) in ${seconds} s"
[ "$(echo "$seconds < 60" | bc)" = 1 ] || fail "the hostile corpus took ${seconds} s (linear scrubbing expected)"
"$ETLUA_BIN" "$script" --dry-run --input "$WORK/all.jsonl" >/dev/null 2>"$WORK/dry.log" \
  || { cat "$WORK/dry.log" >&2; fail "--dry-run failed"; }
grep -q "rejected" "$WORK/dry.log" || fail "the dry run logged no rejected line"
"$ETLUA_BIN" "$script" --dry-run --input "$WORK/all.jsonl" --log-format json >/dev/null \
  2>"$WORK/dry.json.log" || fail "--dry-run --log-format json failed"
ok "--input and --dry-run --input of every corpus body"

psql -X -At -v ON_ERROR_STOP=1 -c "SELECT coalesce(json_agg(json_build_object(
    'id', message_id, 'detail', detail, 'body', body)), '[]') FROM user_logins_rejects" \
  >"$WORK/rejects.json"
python3 "$ROOT/tests/integration/oracle.py" --pii-leaks "$WORK/rejects.json" \
  "$WORK/drain.log" "$WORK/input.log" "$WORK/dry.log" "$WORK/dry.json.log" \
  || fail "raw pii reached the rejects table or a log line"
no_secrets "$WORK/drain.log" "$WORK/input.log" "$WORK/dry.log"
ok "no raw pii value in any stored detail or body, nor in any log line"
