#!/usr/bin/env bash
# tests/integration/sandbox.sh: analysts' rule files against the real services.
#  1. a rule that loops forever on one message, and one whose string pattern backtracks for
#     hours on another (Lua's matcher runs no VM instruction while it works): each message is a
#     script_timeout reject naming its rule, every other message lands; a rule trying to read
#     the environment, a file or a host module gets nothing, and no secret reaches a table or a
#     log line;
#  2. SIGTERM while a rule loops forever, then while a pattern backtracks (budget of an hour):
#     etlua exits within about a second, nothing is committed for that message, the others are
#     fine; a later drain with the normal budget rejects it as script_timeout; every message
#     exactly once.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs --visibility 3
script=$ROOT/scripts/login_etl.lua
mkdir -p "$WORK/rules"
cat >"$WORK/rules/10-spin.lua" <<'LUA'
return { name = "spin", check = function(r)
  if r.locale == "LOOP" then while true do end end
  return true
end }
LUA
cat >"$WORK/rules/15-backtrack.lua" <<'LUA'
-- a pattern with twelve lazy repetitions, on 3,000 characters it can never match: hours of
-- backtracking inside one call of string.find
return { name = "backtrack", check = function(r)
  if r.locale == "REGEX" then return not ("a"):rep(3000):find(("a-"):rep(12) .. "b") end
  return true
end }
LUA
cat >"$WORK/rules/20-peek.lua" <<'LUA'
-- what an attacker would try; every attempt must come back empty
return { name = "peek", check = function(r)
  if r.locale ~= "PEEK" then return true end
  local got = {}
  for _, try in ipairs({
    function() return os.getenv("ETLUA_MASK_KEY") end,
    function() return io.open("/proc/self/environ"):read("a") end,
    function() return require("etlua.pg") end,
    function() return require("etlua.host") end,
    function() return os.execute("env") end,
    function() return load(("").dump(function() return os end))() end,
  }) do
    local ok, v = pcall(try)
    got[#got + 1] = tostring(ok) .. ":" .. tostring(v)
  end
  return false, table.concat(got, " | ")
end }
LUA

special() { # LOCALE N: N valid events with that locale
  python3 - "$1" "$2" <<'PY'
import json, sys
for i in range(int(sys.argv[2])):
    print(json.dumps({"user_id": "special-%s-%d" % (sys.argv[1], i), "device_type": "ios",
                      "ip": "198.51.100.%d" % (i + 1), "device_id": "dev-%s-%d" % (sys.argv[1], i),
                      "locale": sys.argv[1], "app_version": "1.2.3"}))
PY
}
count() { psql_q "SELECT count(*) FROM $1"; }

# ---- 1. a looping rule on one message, with the default budget (100 ms) ----------------------
python3 "$ROOT/tests/harness/gen_logins.py" 300 --seed 9 >"$WORK/one.jsonl"
{ special LOOP 1; special REGEX 1; special PEEK 1; } >>"$WORK/one.jsonl"
send "$WORK/one.jsonl"
t0=$(date +%s%3N)
"$ETLUA_BIN" "$script" --drain --rules "$WORK/rules" 2>"$WORK/one.log" \
  || { cat "$WORK/one.log" >&2; fail "the drain failed"; }
t=$(( $(date +%s%3N) - t0 ))
[ "$(count user_logins)" = 300 ] || fail "$(count user_logins) rows, not 300"
[ "$(count user_logins_rejects)" = 3 ] || fail "$(count user_logins_rejects) rejects, not 3"
detail=$(psql_q "SELECT string_agg(detail, ' | ' ORDER BY detail) FROM user_logins_rejects WHERE reason = 'script_timeout'")
[ "$detail" = "rule backtrack ran longer than its budget of 100 ms | rule spin ran longer than its budget of 100 ms" ] \
  || fail "timeout details: '$detail'"
peek=$(psql_q "SELECT detail FROM user_logins_rejects WHERE reason = 'rule:peek'")
echo "# peek: $peek"
[ "$(echo "$peek" | grep -o 'false:' | wc -l)" = 6 ] || fail "peek detail: $peek"
echo "$peek" | grep -q 'true:' && fail "an escape attempt succeeded: $peek"
psql -X -At -c "SELECT * FROM user_logins_rejects" >"$WORK/rejects.txt"
no_secrets "$WORK/rejects.txt" "$WORK/one.log"
grep -q "ETLUA_MASK_KEY=" "$WORK/rejects.txt" && fail "the environment reached the rejects"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "a looping rule and a backtracking pattern: a script_timeout reject naming each, 300 rows, nothing leaked (${t} ms)"

# ---- 2. SIGTERM while a rule loops forever, then while a pattern backtracks -------------------
# sigterm_inside LOCALE SEED WHAT: 200 messages and one that makes a rule spin (LOCALE), with a
# budget of an hour; SIGTERM once that message is in hand; then drains with the normal budget.
sigterm_inside() {
  local locale=$1 seed=$2 what=$3 pid t cpu
  psql_q "TRUNCATE user_logins, user_logins_rejects" >/dev/null
  python3 "$ROOT/tests/harness/gen_logins.py" 200 --seed "$seed" >"$WORK/two.jsonl"
  special "$locale" 1 >>"$WORK/two.jsonl"
  send "$WORK/two.jsonl"
  ETLUA_SCRIPT_BUDGET_MS=3600000 "$ETLUA_BIN" "$script" --rules "$WORK/rules" 2>"$WORK/two.log" &
  pid=$!
  for _ in $(seq 1 60); do   # until that message is in hand: the process spins on a core
    sleep 0.5
    cpu=$(ps -o time= -p $pid | awk -F: '{print $NF}')
    [ "${cpu%%.*}" -ge 2 ] 2>/dev/null && break
  done
  stop_clean $pid "$WORK/two.log"
  [ $t -lt 1500 ] || fail "took ${t} ms to stop while $what"
  grep -q "stop signal: script hooks stopped" "$WORK/two.log" || fail "no log line for the cut hook"
  [ "$(psql_q "SELECT count(*) FROM user_logins WHERE locale = '$locale'")" = 0 ] || fail "the $locale message landed"
  [ "$(count user_logins_rejects)" = 0 ] || fail "the stop turned into a reject"
  ok "SIGTERM while $what: exit 0 after ${t} ms, nothing committed for that message"

  for _ in 1 2 3 4 5 6; do
    "$ETLUA_BIN" "$script" --drain --rules "$WORK/rules" 2>>"$WORK/rest.log" || fail "the drain after the stop failed"
    [ "$(depth)" = "0 0" ] && [ "$(count user_logins_rejects)" = 1 ] && break
    sleep 2
  done
  [ "$(count user_logins)" = 200 ] || fail "$(count user_logins) rows, not 200"
  [ "$(psql_q "SELECT reason FROM user_logins_rejects")" = script_timeout ] || fail "no script_timeout reject"
  [ "$(psql_q 'SELECT count(*) - count(DISTINCT message_id) FROM user_logins_rejects')" = 0 ] || fail "a reject twice"
  [ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
  ok "the $locale message came back and became a script_timeout reject; 200 rows, each once"
}
sigterm_inside LOOP 10 "a rule looped forever"
sigterm_inside REGEX 11 "a rule's pattern backtracked"
