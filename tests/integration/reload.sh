#!/usr/bin/env bash
# tests/integration/reload.sh: SIGHUP re-reads the script and the rule files between batches.
#  1. a reload in the middle of a drain loses nothing and lands nothing twice;
#  2. messages sent after the reload follow the new rules (a rule added to the rules dir);
#  3. a rule file that fails to load is refused with the error logged; the old rules keep running.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua
mkdir -p "$WORK/rules"
cp "$ROOT/scripts/rules/20-locale.lua" "$WORK/rules/"

# wait_for CONDITION_COMMAND...: polls for up to 60 s
wait_for() { for _ in $(seq 1 120); do "$@" && return 0; sleep 0.5; done; fail "timed out waiting for: $*"; }
landed() { [ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$1" ]; }

# enough that the SIGHUP comes mid-drain: it goes up to 1.2 s after "sqs ready", and a Debug
# build drains 20,000 messages in about that here
n1=60000
python3 "$ROOT/tests/harness/gen_logins.py" $n1 --seed 21 >"$WORK/phase1.jsonl"
send "$WORK/phase1.jsonl"
"$ETLUA_BIN" "$script" --rules "$WORK/rules" --log-format json 2>"$WORK/etlua.log" &
pid=$!
wait_for grep -q '"sqs ready"' "$WORK/etlua.log"
sleep 0.7
cat >"$WORK/rules/10-no-ios.lua" <<'LUA'
return { name = "no_ios", check = function(r) return r.device_type ~= "ios", "ios is paused" end }
LUA
kill -HUP $pid
wait_for grep -q '"msg":"reloaded"' "$WORK/etlua.log"
wait_for landed $n1
ok "SIGHUP mid-drain: reloaded; all $n1 messages landed"
total=$(( $(psql_q 'SELECT count(*) FROM user_logins') + $(psql_q 'SELECT count(*) FROM user_logins_rejects') ))
[ "$total" = $n1 ] || fail "rows + rejects = $total, not $n1"
[ "$(psql_q 'SELECT count(*) - count(DISTINCT message_id) FROM user_logins_rejects')" = 0 ] || fail "a reject twice"
[ "$(psql_q "SELECT count(*) FROM user_logins_rejects WHERE reason = 'rule:no_ios'")" -gt 0 ] \
  || fail "the new rule never applied"
ok "nothing lost, nothing twice across the reload"

python3 "$ROOT/tests/harness/gen_logins.py" 2000 --seed 22 >"$WORK/phase2.jsonl"
send "$WORK/phase2.jsonl"
wait_for landed $((n1 + 2000))
ios_after=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["device_type"] == "ios"))' "$WORK/phase2.jsonl")
python3 -c 'import json,sys; print("\n".join(json.loads(l)["user_id"] for l in open(sys.argv[1])))' "$WORK/phase2.jsonl" >"$WORK/phase2.ids"
leaked=$(psql -X -At -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE p2(user_id text)" \
  -c "\\copy p2 FROM '$WORK/phase2.ids'" \
  -c "SELECT count(*) FROM user_logins u JOIN p2 USING (user_id) WHERE u.device_type = 'ios'" | tail -1)
[ "$leaked" = 0 ] || fail "$leaked ios rows landed after the reload"
[ "$ios_after" -gt 0 ] || fail "test set-up: no ios message in phase 2"
ok "after the reload, all $ios_after ios messages follow the new rule"

printf 'return { name = "broken", check = function(r) return true end\n' >"$WORK/rules/30-broken.lua"
kill -HUP $pid
wait_for grep -q '"msg":"reload refused' "$WORK/etlua.log"
grep '"msg":"reload refused' "$WORK/etlua.log" | grep '30-broken.lua' >/dev/null || fail "the refusal does not name the file"
python3 "$ROOT/tests/harness/gen_logins.py" 500 --seed 23 >"$WORK/phase3.jsonl"
send "$WORK/phase3.jsonl"
wait_for landed $((n1 + 2500))
kill -0 $pid || fail "etlua died after a broken reload"
ok "a broken rule file is refused with the file named; the old rules keep running"
kill -TERM $pid
wait $pid || fail "etlua did not stop cleanly"
no_secrets "$WORK/etlua.log"
