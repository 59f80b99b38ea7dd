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
cp "$script" "$WORK/login_copy.lua"   # scripts run sandboxed: a neighbour file, not dofile
printf 'local s = require "login_copy"\ns.transform = nil\nreturn s\n' >"$WORK/nohook.lua"
expect_error "script without a hook" "has no function 'transform'" "$ETLUA_BIN" "$WORK/nohook.lua" --drain
printf 'return dofile("/etc/passwd")\n' >"$WORK/escape.lua"
expect_error "script calling dofile (sandboxed)" "escape.lua failed while loading: .*attempt to call a nil value .global 'dofile'." \
  "$ETLUA_BIN" "$WORK/escape.lua" --drain
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

# A target table that does not fit the script: one line naming the table, the column, the
# existing and the expected type, before anything is received (the queue keeps every message
# visible, nothing in flight).
head -20 "$ROOT/data/login-sample.jsonl" >"$WORK/twenty.jsonl"
send "$WORK/twenty.jsonl"
make_table() { # COLUMN_DEFS
  psql_q "DROP TABLE IF EXISTS user_logins; CREATE TABLE user_logins($1)" >/dev/null
}
cols() { # the take-home's columns, one of them replaced: NAME TYPE
  local defs="user_id varchar(128), device_type varchar(32), masked_ip varchar(256), masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date"
  echo "$defs" | sed -E "s/(^|, )$1 [^,]+/\1$1 $2/"
}
untouched() { [ "$(depth)" = "20 0" ] || fail "$1: the queue changed (depth $(depth)): something was received"; }
make_table "$(cols app_version date)"
expect_error "existing table: app_version date" \
  'table "user_logins": column app_version is date, the script.s create_table makes it integer; fix the table' \
  "$ETLUA_BIN" "$script" --drain
untouched "app_version date"
make_table "$(cols user_id integer)"
expect_error "existing table: user_id integer" 'column user_id is integer, the script.s create_table makes it character varying\(128\)' \
  "$ETLUA_BIN" "$script" --drain
untouched "user_id integer"
make_table "$(cols user_id 'varchar(16)')"
expect_error "existing table: user_id narrower" 'column user_id is character varying\(16\), the script.s create_table makes it character varying\(128\)' \
  "$ETLUA_BIN" "$script" --drain
make_table "$(cols locale date | sed 's/, locale date//')"
expect_error "existing table: a column missing" 'table "user_logins" has no column locale' "$ETLUA_BIN" "$script" --drain
untouched "column missing"

make_table "$(cols app_version 'varchar(32)'), tenant text NOT NULL"
expect_error "existing table: a NOT NULL column the script does not write" \
  'column tenant is NOT NULL without a default and the script does not write it' "$ETLUA_BIN" "$script" --drain
untouched "NOT NULL column"

# The breaker: a table whose types fit but that refuses every row for the same reason (a CHECK
# that no row passes) stops the run in one line; nothing written or deleted.
make_table "$(cols app_version 'varchar(32)') CHECK (create_date < '2000-01-01')"
rc=0
"$ETLUA_BIN" "$script" --drain 2>"$WORK/breaker.log" || rc=$?
[ $rc -eq 1 ] || { cat "$WORK/breaker.log" >&2; fail "breaker: exit status $rc"; }
tail -1 "$WORK/breaker.log" | grep -qE '^etlua: cannot write the batch to Postgres: Postgres refused every row of a batch of 20 for the same reason \(23514 .*nothing was deleted' \
  || { cat "$WORK/breaker.log" >&2; fail "breaker: last line"; }
[ "$(psql_q "SELECT (SELECT count(*) FROM user_logins) + (SELECT count(*) FROM user_logins_rejects)")" = 0 ] \
  || fail "breaker: rows or rejects were written"
read -r visible inflight <<<"$(depth)"
[ $((visible + inflight)) -eq 20 ] || fail "breaker: messages were deleted (depth $visible $inflight)"
no_secrets "$WORK/breaker.log"
ok "breaker: $(tail -1 "$WORK/breaker.log")"

# varchar(32) app_version (the take-home's) and wider text columns are accepted.
make_table "$(cols app_version 'varchar(32)' | sed 's/user_id varchar(128)/user_id text/')"
"$ETLUA_BIN" "$script" --input "$WORK/twenty.jsonl" 2>"$WORK/fits.log" || { cat "$WORK/fits.log" >&2; fail "a fitting table was refused"; }
[ "$(psql_q "SELECT count(*) FROM user_logins")" = 20 ] || fail "the fitting table did not get the 20 rows"
ok "an existing table with app_version varchar(32) and user_id text is used"
