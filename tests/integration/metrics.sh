#!/usr/bin/env bash
# tests/integration/metrics.sh [N]: --metrics on a real drain of ~N messages (default 20000).
# etlua runs as a service with --metrics on a free port of 127.0.0.1 and is scraped with curl
# while it drains (every scrape parses as Prometheus text, tests/integration/prom_check.py, and
# no counter goes down), then once the queue is empty and the rows are in: rows written equal
# count(*) of user_logins, rejects by reason equal the rejects table grouped by reason, deleted
# equals received equals the messages sent, nothing is left in flight or prefetched. /healthz is
# 200 throughout; /readyz is 200 while running, 503 while Postgres is paused (the next commit
# finds the connection gone), 200 again once it is back. ETLUA_METRICS_ADDR works without
# --metrics, and a taken address is a one-line error.
. "$(dirname "$0")/lib.sh"
n=${1:-20000}

start_pg
start_sqs fauxqs
input=$WORK/input.jsonl
{
  python3 "$ROOT/tests/harness/gen_logins.py" "$n" --seed 21
  python3 "$ROOT/tests/integration/hostile.py"     # rejects of many reasons
} >"$input"
send "$input"
total=$(wc -l <"$input")

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url$1" || true; }
scrape() { curl -sf --max-time 5 "$url/metrics" -o "$1"; }
# value FILE SAMPLE: a sample of a checked scrape (prom_check.py's JSON), or 0 when absent.
value() { python3 -c 'import json,sys; print("%d" % json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$1" "$2"; }

ETLUA_BATCH_SIZE=200 ETLUA_WAIT_SECONDS=1 "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" \
  --metrics "127.0.0.1:$port" 2>"$WORK/etlua.log" &
pid=$!
for _ in $(seq 100); do [ "$(code /healthz)" = 200 ] && break; sleep 0.05; done
[ "$(code /healthz)" = 200 ] || { cat "$WORK/etlua.log" >&2; fail "/healthz does not answer 200"; }
grep -q "serving metrics address=127.0.0.1:$port" "$WORK/etlua.log" || fail "no 'serving metrics' log line"
ok "/healthz answers 200 on 127.0.0.1:$port"

# Scrape while it drains, until the queue is empty and every message is in the ledger.
i=0 during=0
while :; do
  i=$((i + 1))
  scrape "$WORK/scrape.$i" || fail "scrape $i failed"
  got=$(grep -E '^etlua_messages_received_total ' "$WORK/scrape.$i" | cut -d' ' -f2)
  if [ "$got" -gt 0 ] && [ "$got" -lt "$total" ]; then during=$((during + 1)); fi
  [ "$(psql_q 'SELECT count(*) FROM etlua_ledger' 2>/dev/null || echo 0)" = "$total" ] \
    && [ "$(depth)" = "0 0" ] && [ "$got" = "$total" ] && break
  kill -0 $pid 2>/dev/null || { cat "$WORK/etlua.log" >&2; fail "etlua exited during the drain"; }
  [ $i -lt 600 ] || fail "not drained after $i scrapes"
  sleep 0.1
done
[ $during -ge 2 ] || fail "only $during scrapes saw the drain in progress"
ok "drained $total messages; $during of $i scrapes during the drain"

# Let the last deletes settle, then the final scrape.
for _ in $(seq 50); do
  scrape "$WORK/final" && grep -qE '^etlua_messages_in_flight 0$' "$WORK/final" && break
  sleep 0.1
done
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url/metrics")
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "Content-Type is '$ctype'"
scrapes=()
for j in $(seq "$i"); do scrapes+=("$WORK/scrape.$j"); done
python3 "$ROOT/tests/integration/prom_check.py" "${scrapes[@]}" "$WORK/final" >"$WORK/final.json" \
  || fail "a scrape is not valid Prometheus text, or a counter went down"
ok "$((i + 1)) scrapes parse as Prometheus text 0.0.4 and no counter went down"

f=$WORK/final.json
rows=$(psql_q "SELECT count(*) FROM user_logins")
[ "$(value "$f" etlua_rows_written_total)" = "$rows" ] \
  || fail "etlua_rows_written_total $(value "$f" etlua_rows_written_total) != count(*) $rows"
[ "$(value "$f" etlua_messages_received_total)" = "$total" ] || fail "received != $total"
[ "$(value "$f" etlua_messages_deleted_total)" = "$total" ] || fail "deleted != received ($total)"
psql_q "SELECT reason, count(*) FROM user_logins_rejects GROUP BY reason ORDER BY reason" >"$WORK/by_reason.db"
python3 - "$f" >"$WORK/by_reason.metrics" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
for k in sorted(s):
    m = re.fullmatch(r'etlua_rejects_total\{reason="(.*)"\}', k)
    if m and s[k]:
        print("%s|%d" % (m.group(1).replace('\\"', '"').replace("\\\\", "\\"), s[k]))
PY
diff "$WORK/by_reason.db" "$WORK/by_reason.metrics" >&2 || fail "rejects by reason differ from the table"
[ "$(wc -l <"$WORK/by_reason.db")" -ge 3 ] || fail "expected several reject reasons"
[ "$(value "$f" etlua_event_lag_seconds_count)" = "$rows" ] || fail "event lag not observed once per row"
[ "$(value "$f" etlua_batch_commit_seconds_count)" -gt 0 ] || fail "no commit observed"
[ "$(value "$f" etlua_messages_in_flight)" = 0 ] || fail "messages still in flight"
[ "$(value "$f" etlua_messages_prefetched)" = 0 ] || fail "messages still prefetched"
grep -qE '^etlua_build_info\{version="[0-9.]+"\} 1$' "$WORK/final" || fail "no etlua_build_info"
ok "rows written = count(*) = $rows; rejects by reason = the table ($(wc -l <"$WORK/by_reason.db") reasons); deleted = received = $total"

[ "$(code /readyz)" = 200 ] || fail "/readyz is not 200 while running"
[ "$(code /nope)" = 404 ] || fail "an unknown path is not 404"
ok "/readyz 200 while connected to both ends"

# Postgres goes away: the next commit finds the connection gone, /readyz says 503.
bash "$ROOT/tests/harness/pg.sh" pause "$WORK/pg"
python3 "$ROOT/tests/harness/gen_logins.py" 5 --seed 99 >"$WORK/more.jsonl"
send "$WORK/more.jsonl"
for _ in $(seq 200); do [ "$(code /readyz)" = 503 ] && break; sleep 0.1; done
[ "$(code /readyz)" = 503 ] || fail "/readyz is not 503 while Postgres is down"
[ "$(code /healthz)" = 200 ] || fail "/healthz is not 200 while Postgres is down"
scrape "$WORK/outage"
grep -qE '^etlua_errors_total\{kind="postgres_connection"\} [1-9]' "$WORK/outage" || fail "lost connection not counted"
ok "/readyz 503 while Postgres is paused, /healthz still 200, the lost connection counted"

bash "$ROOT/tests/harness/pg.sh" resume "$WORK/pg"
for _ in $(seq 300); do [ "$(code /readyz)" = 200 ] && break; sleep 0.1; done
[ "$(code /readyz)" = 200 ] || fail "/readyz not 200 after Postgres came back"
for _ in $(seq 100); do
  [ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$((total + 5))" ] && break; sleep 0.1
done
[ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$((total + 5))" ] || fail "the 5 messages did not land"
for _ in $(seq 50); do
  scrape "$WORK/after" && [ "$(grep -E '^etlua_messages_deleted_total ' "$WORK/after" | cut -d' ' -f2)" = "$((total + 5))" ] && break
  sleep 0.1
done
python3 "$ROOT/tests/integration/prom_check.py" "$WORK/final" "$WORK/outage" "$WORK/after" >"$WORK/after.json" \
  || fail "scrapes around the outage are not valid or a counter went down"
[ "$(value "$WORK/after.json" etlua_rows_written_total)" = "$(psql_q 'SELECT count(*) FROM user_logins')" ] \
  || fail "rows written != count(*) after the outage"
[ "$(value "$WORK/after.json" etlua_messages_deleted_total)" = "$((total + 5))" ] || fail "deleted != received after the outage"
ok "/readyz 200 again once Postgres is back; the 5 messages landed and counted once"

kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 0 ] || { cat "$WORK/etlua.log" >&2; fail "exit status $rc after SIGTERM"; }
[ "$(code /healthz)" = 000 ] || fail "still serving after exit"
ok "SIGTERM: exit 0, the server is gone"

# ETLUA_METRICS_ADDR without --metrics; a taken address is one line and exit 1.
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(10)' >"$WORK/held" &
holder=$!
for _ in $(seq 50); do [ -s "$WORK/held" ] && break; sleep 0.1; done
port=$(cat "$WORK/held")
rc=0
ETLUA_METRICS_ADDR=127.0.0.1:$port "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain 2>"$WORK/taken.log" || rc=$?
kill $holder 2>/dev/null || true; wait $holder 2>/dev/null || true
[ $rc -eq 1 ] || fail "a taken address: exit $rc, not 1"
[ "$(wc -l <"$WORK/taken.log")" = 1 ] && grep -q "^etlua: --metrics cannot listen on 127.0.0.1:$port: Address already in use" "$WORK/taken.log" \
  || { cat "$WORK/taken.log" >&2; fail "a taken address is not one clear line"; }
ok "ETLUA_METRICS_ADDR is used; a taken address is one line: $(cat "$WORK/taken.log")"
no_secrets "$WORK/etlua.log" "$WORK/final" "$WORK/after"
