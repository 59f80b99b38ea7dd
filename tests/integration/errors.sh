#!/usr/bin/env bash
# tests/integration/errors.sh: each user mistake is one line on stderr that names the problem
# and the fix, a non-zero exit, and no stack dump.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua

# expect_error NAME PATTERN CMD...: CMD exits non-zero with exactly one stderr line matching PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ $rc -ne 0 ] || fail "$name: exit status 0"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || { cat "$WORK/err" >&2; fail "$name: not one line on stderr"; }
  grep -qE "$pattern" "$WORK/err" || { cat "$WORK/err" >&2; fail "$name: message does not match /$pattern/"; }
  ! grep -q "traceback" "$WORK/err" || fail "$name: stack dump"
  no_secrets "$WORK/err"
  ok "$name: $(cat "$WORK/err")"
}

expect_error "missing mask key" "ETLUA_MASK_KEY.*at least 32" env -u ETLUA_MASK_KEY "$ETLUA_BIN" "$script" --drain
expect_error "short mask key" "mask key is 5 bytes; it must be at least 32" env ETLUA_MASK_KEY=short "$ETLUA_BIN" "$script" --drain
printf 'tooshort\n' >"$WORK/key"
expect_error "short key file" "mask key is 8 bytes" env -u ETLUA_MASK_KEY ETLUA_MASK_KEY_FILE="$WORK/key" "$ETLUA_BIN" "$script" --drain
expect_error "unreachable Postgres" "cannot connect to Postgres.*DATABASE_URL" \
  env -u DATABASE_URL PGPORT=1 ETLUA_RETRY_ATTEMPTS=1 "$ETLUA_BIN" "$script" --drain
expect_error "wrong Postgres password" "cannot connect to Postgres" \
  env -u DATABASE_URL PGPASSWORD=wrong-password ETLUA_RETRY_ATTEMPTS=1 "$ETLUA_BIN" "$script" --drain
expect_error "unreachable SQS endpoint" "cannot reach the SQS endpoint.*AWS_ENDPOINT_URL" \
  env AWS_ENDPOINT_URL=http://127.0.0.1:1 ETLUA_RETRY_ATTEMPTS=1 "$ETLUA_BIN" "$script" --drain
expect_error "nonexistent queue (URL)" "does not exist" \
  env SQS_QUEUE_URL="${SQS_QUEUE_URL%/*}/no-such-queue" "$ETLUA_BIN" "$script" --drain
expect_error "nonexistent queue (name)" "queue 'no-such-queue' does not exist" \
  env -u SQS_QUEUE_URL SQS_QUEUE=no-such-queue "$ETLUA_BIN" "$script" --drain
expect_error "no queue configured" "no queue: set SQS_QUEUE_URL" env -u SQS_QUEUE_URL "$ETLUA_BIN" "$script" --drain
printf 'return {\n  table = "t",\n  columns = {"a"\n' >"$WORK/syntax.lua"
expect_error "script with a syntax error" "syntax.lua does not load: .*syntax.lua:[0-9]+:.*fix the syntax error" \
  "$ETLUA_BIN" "$WORK/syntax.lua" --drain
printf 'local s = dofile([[%s]])\ns.transform = nil\nreturn s\n' "$script" >"$WORK/nohook.lua"
expect_error "script without a hook" "has no function 'transform'" "$ETLUA_BIN" "$WORK/nohook.lua" --drain
expect_error "missing script" "cannot open script" "$ETLUA_BIN" "$WORK/nope.lua" --drain
mkdir -p "$WORK/rules" && printf 'return { name = "x", check = function(r) return true end\n' >"$WORK/rules/10-bad.lua"
expect_error "rule file that fails to load" "rule file .*10-bad.lua.*fix the rule file" \
  "$ETLUA_BIN" "$script" --drain --rules "$WORK/rules"
expect_error "ETLUA_SQS_PROTOCOL typo" "ETLUA_SQS_PROTOCOL must be auto, json or query" \
  env ETLUA_SQS_PROTOCOL=xml "$ETLUA_BIN" "$script" --drain
expect_error "unknown option" "unknown option --dran" "$ETLUA_BIN" "$script" --dran
expect_error "mask key file is a directory" "cannot read ETLUA_MASK_KEY_FILE $WORK: Is a directory" \
  env -u ETLUA_MASK_KEY ETLUA_MASK_KEY_FILE="$WORK" "$ETLUA_BIN" "$script" --drain
expect_error "ETLUA_RETRY_ATTEMPTS not a number" "ETLUA_RETRY_ATTEMPTS must be an integer from 1 to 1000, not 'abc'" \
  env ETLUA_RETRY_ATTEMPTS=abc "$ETLUA_BIN" "$script" --drain
expect_error "ETLUA_SYNCHRONOUS_COMMIT typo" "ETLUA_SYNCHRONOUS_COMMIT must be on, remote_apply, remote_write, local or off" \
  env ETLUA_SYNCHRONOUS_COMMIT=yes "$ETLUA_BIN" "$script" --drain
expect_error "--input of a directory" "cannot read --input $WORK: Is a directory" "$ETLUA_BIN" "$script" --input "$WORK"
expect_error "SQS_QUEUE_URL not a URL" "SQS_QUEUE_URL 'not a url' is not a queue URL" \
  env SQS_QUEUE_URL="not a url" "$ETLUA_BIN" "$script" --drain
