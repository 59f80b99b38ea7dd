#!/usr/bin/env bash
# tests/integration/input.sh: --input FILE|- and --dry-run, against a real Postgres.
#  - --dry-run prints exactly the oracle's rows as JSON lines, writes nothing, needs no queue;
#  - --input FILE writes the rows and rejects; running the same file again lands nothing twice;
#  - two files with equal lines are told apart, a copy of a loaded file is not;
#  - --input - reads stdin.
. "$(dirname "$0")/lib.sh"
start_pg
unset SQS_QUEUE_URL AWS_ENDPOINT_URL
script=$ROOT/scripts/login_etl.lua
input=$WORK/input.jsonl
{ cat "$ROOT/data/login-sample.jsonl"; python3 "$ROOT/tests/integration/hostile.py"; } >"$input"

"$ETLUA_BIN" "$script" --dry-run --input "$input" >"$WORK/rows.jsonl" 2>"$WORK/dry.log" \
  || { cat "$WORK/dry.log" >&2; fail "dry-run failed"; }
python3 - "$input" "$WORK/rows.jsonl" "$ETLUA_MASK_KEY" "$ROOT" <<'PY' || fail "dry-run rows differ from the oracle's"
import json, sys, os, datetime
sys.path.insert(0, os.path.join(sys.argv[4], "tests", "integration"))
import oracle
key = sys.argv[3].encode()
want = []
for _, body in oracle.read_bodies(sys.argv[1]):
    r = oracle.evaluate(body, key)
    if r["outcome"] == "accept":
        want.append(r["row"])
    elif r["reason"] == "db_refused":      # a dry run cannot know Postgres would refuse it
        want.append(None)
got = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(want), (len(got), len(want))
today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
for g, w in zip(got, want):
    if w is None:
        continue
    assert list(g) == ["user_id", "device_type", "masked_ip", "masked_device_id", "locale", "app_version", "create_date"], list(g)
    w = dict(w, create_date=w["create_date"] or today)
    assert g == w, (g, w)
PY
ok "--dry-run prints the oracle's $(wc -l <"$WORK/rows.jsonl") rows, keys in column order"
[ -z "$(psql_q "SELECT to_regclass('user_logins')")" ] || fail "--dry-run created or wrote a table"
ok "--dry-run wrote nothing"

# type() in a script (etlua's own, src/host.c): every kind of value named as the base library
# names it, and its error without an argument
cat >"$WORK/types.lua" <<'LUA'
local null = require("cjson").null
return {
  table = "t", columns = {"k", "v"}, create_table = "CREATE TABLE IF NOT EXISTS %s(k text, v text)",
  validate = function(rec) return type(rec) == "table" and type(rec.x) == "nil" end,
  transform = function(rec)
    local names = {}
    local vals = table.pack(rec.a, rec.b, rec.c, rec.d, rec.e, rec.f, null, type, io)
    for i = 1, vals.n do names[i] = type(vals[i]) end
    local ok, err = pcall(type)
    return {k = table.concat(names, ","), v = tostring(ok) .. ":" .. err}
  end,
}
LUA
echo '{"a":1,"b":"x","c":null,"d":[1],"e":true,"f":2.5}' >"$WORK/types.jsonl"
"$ETLUA_BIN" "$WORK/types.lua" --dry-run --input "$WORK/types.jsonl" >"$WORK/types.out" 2>"$WORK/types.log" \
  || { cat "$WORK/types.log" >&2; fail "--dry-run of types.lua failed"; }
want='{"k":"number,string,userdata,table,boolean,number,userdata,function,nil","v":"false:bad argument #1 to '"'type'"' (value expected)"}'
[ "$(cat "$WORK/types.out")" = "$want" ] || fail "type() in a script: $(cat "$WORK/types.out")"
ok "type() names every kind of value, and refuses no argument, as the base library does"

"$ETLUA_BIN" "$script" --input "$input" 2>"$WORK/run1.log" || { cat "$WORK/run1.log" >&2; fail "--input failed"; }
python3 "$ROOT/tests/integration/check_tables.py" "$input" --key "$ETLUA_MASK_KEY" >/dev/null || fail "tables differ from the oracle's"
ok "--input FILE wrote what the contract demands"
"$ETLUA_BIN" "$script" --input "$input" 2>"$WORK/run2.log" || fail "second --input failed"
python3 "$ROOT/tests/integration/check_tables.py" "$input" --key "$ETLUA_MASK_KEY" >/dev/null || fail "second run of the same file changed the tables"
grep -q "duplicates=$(wc -l <"$input")" "$WORK/run2.log" || fail "second run did not see every line as a duplicate"
ok "the same file again lands nothing twice"

# Two different files whose first lines are equal are two sets of messages; a copy of a file
# loaded before is the same file.
a='{"user_id": "twin-1", "app_version": "1.0", "device_type": "ios", "ip": "10.0.0.1", "locale": "DE", "device_id": "d-1"}'
printf '%s\n%s\n' "$a" '{"user_id": "only-a"}' >"$WORK/a.jsonl"
printf '%s\n%s\n' "$a" '{"user_id": "only-b"}' >"$WORK/b.jsonl"
cp "$WORK/a.jsonl" "$WORK/a-copy.jsonl"
for f in a b a-copy; do
  "$ETLUA_BIN" "$script" --input "$WORK/$f.jsonl" 2>"$WORK/$f.log" || { cat "$WORK/$f.log" >&2; fail "--input $f failed"; }
done
[ "$(psql_q "SELECT count(*) FROM user_logins WHERE user_id = 'twin-1'")" = 2 ] || fail "line 1 of the second file was taken for the first file's"
grep -q "duplicates=2" "$WORK/a-copy.log" || fail "a copy of a file loaded before landed again"
ok "two files with the same first line land both; a copy of a loaded file lands nothing"

echo '{"user_id": "stdin-1", "ip": "10.0.0.9"}' | "$ETLUA_BIN" "$script" --input - 2>"$WORK/stdin.log" || fail "--input - failed"
[ "$(psql_q "SELECT count(*) FROM user_logins WHERE user_id = 'stdin-1'")" = 1 ] || fail "stdin row missing"
ok "--input - reads stdin"

# The connection started early (etlua.pg's prestart: a thread connects while the modules and
# the script load) is the run's one connection: under a role allowed a single connection, a
# second one would be refused. A run that fails before connecting does not wait for it (an
# address that never answers), and a refused connection is reported by the usual line.
psql_q "CREATE ROLE etlua_one LOGIN PASSWORD 'one-conn-pw-0123' CONNECTION LIMIT 1" >/dev/null
psql_q "CREATE DATABASE etlua_one OWNER etlua_one" >/dev/null
one_url="postgresql://etlua_one:one-conn-pw-0123@$PGHOST:$PGPORT/etlua_one"
DATABASE_URL=$one_url "$ETLUA_BIN" "$script" --input "$WORK/a.jsonl" 2>"$WORK/one.log" \
  || { cat "$WORK/one.log" >&2; fail "--input under a role allowed one connection failed"; }
[ "$(psql -X -At -d "$one_url" -c "SELECT count(*) FROM user_logins")" = 2 ] || fail "one-connection run: rows missing"
ok "the connection started early is the run's only one (a role with CONNECTION LIMIT 1)"
started=$(date +%s%N)
rc=0
DATABASE_URL="postgresql://u:p@192.0.2.1:5432/db?connect_timeout=30" \
  "$ETLUA_BIN" "$WORK/syntax-missing.lua" --input "$WORK/a.jsonl" 2>"$WORK/early.err" || rc=$?
took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ $rc -ne 0 ] && grep -q "cannot open script" "$WORK/early.err" || { cat "$WORK/early.err" >&2; fail "missing script: wrong error"; }
[ "$took_ms" -lt 2000 ] || fail "a run that failed before connecting waited ${took_ms} ms for the early connection"
ok "a run that fails before connecting exits at once (${took_ms} ms), the early connection left behind"
rc=0
DATABASE_URL="postgresql://etlua:wrong@$PGHOST:1/etlua" ETLUA_RETRY_ATTEMPTS=1 \
  "$ETLUA_BIN" "$script" --input "$WORK/a.jsonl" 2>"$WORK/refused.err" || rc=$?
[ $rc -ne 0 ] && [ "$(wc -l <"$WORK/refused.err")" -eq 1 ] \
  && grep -q "cannot connect to Postgres: .*; check DATABASE_URL" "$WORK/refused.err" \
  || { cat "$WORK/refused.err" >&2; fail "refused early connection: not the usual line"; }
ok "a refused early connection is reported by the usual line: $(cat "$WORK/refused.err")"
