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
# Alerting: every etlua_ sample carries pipeline="login_etl" and the process_*
# metrics none; etlua_queue_messages{state} (polled every second here) shows messages visible
# during the drain and visible = in_flight = delayed = 0 after it; the last-commit time advances
# during the drain, not while Postgres is paused, and again after; etlua_ready follows /readyz;
# the process metrics are plausible; every reason
# known in advance (etlua's own and each rule's) is there at 0 on the first scrape of a run
# with rules; the example alert rules and dashboard in deploy/ use only metrics this scrape
# exports (deploy/check_monitoring.py).
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
# the key of an etlua_ sample: its name with the pipeline label (and the others given)
P='pipeline="login_etl"'
k() { if [ $# -gt 1 ]; then echo "$1{$P,$2}"; else echo "$1{$P}"; fi; }
# sample FILE NAME{LABELS}: the value in a raw scrape, or empty
sample() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

launched=$(date +%s)
ETLUA_BATCH_SIZE=200 ETLUA_WAIT_SECONDS=1 ETLUA_QUEUE_DEPTH_SECONDS=1 "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" \
  --metrics "127.0.0.1:$port" 2>"$WORK/etlua.log" &
pid=$!
for _ in $(seq 100); do [ "$(code /healthz)" = 200 ] && break; sleep 0.05; done
[ "$(code /healthz)" = 200 ] || { cat "$WORK/etlua.log" >&2; fail "/healthz does not answer 200"; }
grep -q "serving metrics address=127.0.0.1:$port" "$WORK/etlua.log" || fail "no 'serving metrics' log line"
ok "/healthz answers 200 on 127.0.0.1:$port"

scrape "$WORK/first" || fail "first scrape failed"
unlabelled=$(grep -E '^etlua_' "$WORK/first" | grep -vF "{$P" || true)
[ -z "$unlabelled" ] || fail "etlua_ samples without the pipeline label: $unlabelled"
! grep -qE '^process_[a-z_]*\{' "$WORK/first" || fail "a process_ metric carries labels"
for reason in invalid_json not_object script_error script_timeout db_refused; do
  grep -qE "^etlua_rejects_total\{$P,reason=\"$reason\"\} [0-9]" "$WORK/first" || fail "no $reason reject series on the first scrape"
done
ok "first scrape: every etlua_ sample has $P, process_ metrics have no label, etlua's own reject reasons are there"

# Scrape while it drains, until the queue is empty and every message is in the ledger.
i=0 during=0
while :; do
  i=$((i + 1))
  scrape "$WORK/scrape.$i" || fail "scrape $i failed"
  got=$(sample "$WORK/scrape.$i" "$(k etlua_messages_received_total)")
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
# Let the last deletes settle and the queue's depth be asked again (every second), then the
# final scrape.
for _ in $(seq 100); do
  scrape "$WORK/final" && [ "$(sample "$WORK/final" "$(k etlua_messages_in_flight)")" = 0 ] \
    && [ "$(sample "$WORK/final" "$(k etlua_queue_messages 'state="visible"')")" = 0 ] \
    && [ "$(sample "$WORK/final" "$(k etlua_queue_messages 'state="in_flight"')")" = 0 ] && break
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
[ "$(value "$f" "$(k etlua_rows_written_total)")" = "$rows" ] \
  || fail "etlua_rows_written_total $(value "$f" "$(k etlua_rows_written_total)") != count(*) $rows"
[ "$(value "$f" "$(k etlua_messages_received_total)")" = "$total" ] || fail "received != $total"
[ "$(value "$f" "$(k etlua_messages_deleted_total)")" = "$total" ] || fail "deleted != received ($total)"
psql_q "SELECT reason, count(*) FROM user_logins_rejects GROUP BY reason ORDER BY reason" >"$WORK/by_reason.db"
python3 - "$f" >"$WORK/by_reason.metrics" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
for k in sorted(s):
    m = re.fullmatch(r'etlua_rejects_total\{pipeline="login_etl",reason="(.*)"\}', k)
    if m and s[k]:
        print("%s|%d" % (m.group(1).replace('\\"', '"').replace("\\\\", "\\"), s[k]))
PY
diff "$WORK/by_reason.db" "$WORK/by_reason.metrics" >&2 || fail "rejects by reason differ from the table"
[ "$(wc -l <"$WORK/by_reason.db")" -ge 3 ] || fail "expected several reject reasons"
[ "$(value "$f" "$(k etlua_event_lag_seconds_count)")" = "$rows" ] || fail "event lag not observed once per row"
[ "$(value "$f" "$(k etlua_batch_commit_seconds_count)")" -gt 0 ] || fail "no commit observed"
[ "$(value "$f" "$(k etlua_messages_in_flight)")" = 0 ] || fail "messages still in flight"
[ "$(value "$f" "$(k etlua_messages_prefetched)")" = 0 ] || fail "messages still prefetched"
grep -qE "^etlua_build_info\\{$P,version=\"[0-9.]+\"\\} 1\$" "$WORK/final" || fail "no etlua_build_info"
ok "rows written = count(*) = $rows; rejects by reason = the table ($(wc -l <"$WORK/by_reason.db") reasons); deleted = received = $total"

# Alerting: the queue's depth during and after the drain, the last commit time advancing, the
# process metrics.
python3 - "$launched" "${scrapes[@]}" "$WORK/final" <<'PY' || fail "queue depth, last commit time or process metrics wrong"
import re, sys, time
launched, files = int(sys.argv[1]), sys.argv[2:]
P = 'pipeline="login_etl"'
def read(path):
    out = {}
    for line in open(path):
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out
scrapes = [read(f) for f in files]
final, during = scrapes[-1], scrapes[:-1]
q = lambda s, state: s.get('etlua_queue_messages{%s,state="%s"}' % (P, state))
visible = [q(s, "visible") for s in during if q(s, "visible") is not None]
assert visible, "no scrape during the drain has etlua_queue_messages"
assert max(visible) > 0, "the queue never showed visible messages during the drain: %s" % visible
assert (q(final, "visible"), q(final, "in_flight"), q(final, "delayed")) == (0, 0, 0), \
    "after the drain: visible %s, in_flight %s, delayed %s" % (q(final, "visible"), q(final, "in_flight"), q(final, "delayed"))
last = [s['etlua_last_commit_timestamp_seconds{%s}' % P] for s in scrapes]
assert last == sorted(last), "the last commit time went back: %s" % last
moving = sorted(set(v for v in last if v > 0))
assert len(moving) >= 3, "the last commit time did not advance during the drain: %s" % moving
now = time.time()
assert launched - 1 <= moving[0] and moving[-1] <= now + 1, "last commit %s outside [%s, %s]" % (moving, launched, now)
start = final["process_start_time_seconds"]
assert launched - 2 <= start <= launched + 5, "process_start_time_seconds %s, launched at %s" % (start, launched)
assert final["process_cpu_seconds_total"] > 0.1, "process_cpu_seconds_total %s" % final["process_cpu_seconds_total"]
assert 1e6 < final["process_resident_memory_bytes"] < 4e9, "rss %s" % final["process_resident_memory_bytes"]
print("ok - queue visible up to %d during the drain, 0/0/0 after; last commit advanced %d times; cpu %.2f s, rss %.1f MB" % (
    max(visible), len(moving), final["process_cpu_seconds_total"], final["process_resident_memory_bytes"] / 1e6))
PY
python3 "$ROOT/deploy/check_monitoring.py" "$WORK/final" || fail "deploy/ alert rules or dashboard use a metric etlua does not export"
ok "the alert rules and the dashboard in deploy/ use only metrics of this scrape"

[ "$(code /readyz)" = 200 ] || fail "/readyz is not 200 while running"
[ "$(code /nope)" = 404 ] || fail "an unknown path is not 404"
[ "$(sample "$WORK/final" "$(k etlua_ready)")" = 1 ] || fail "etlua_ready is not 1 while running"
ok "/readyz 200 and etlua_ready 1 while connected to both ends"

# Postgres goes away: the next commit finds the connection gone, /readyz says 503.
bash "$ROOT/tests/harness/pg.sh" pause "$WORK/pg"
python3 "$ROOT/tests/harness/gen_logins.py" 5 --seed 99 >"$WORK/more.jsonl"
send "$WORK/more.jsonl"
for _ in $(seq 200); do [ "$(code /readyz)" = 503 ] && break; sleep 0.1; done
[ "$(code /readyz)" = 503 ] || fail "/readyz is not 503 while Postgres is down"
[ "$(code /healthz)" = 200 ] || fail "/healthz is not 200 while Postgres is down"
scrape "$WORK/outage"
grep -qE "^etlua_errors_total\\{$P,kind=\"postgres_connection\"\\} [1-9]" "$WORK/outage" || fail "lost connection not counted"
[ "$(sample "$WORK/outage" "$(k etlua_ready)")" = 0 ] || fail "etlua_ready is not 0 while Postgres is down"
[ "$(sample "$WORK/outage" "$(k etlua_last_commit_timestamp_seconds)")" = "$(sample "$WORK/final" "$(k etlua_last_commit_timestamp_seconds)")" ] \
  || fail "the last commit time moved while Postgres was down"
ok "/readyz 503 and etlua_ready 0 while Postgres is paused, /healthz still 200, the lost connection counted, the last commit time still"

bash "$ROOT/tests/harness/pg.sh" resume "$WORK/pg"
for _ in $(seq 300); do [ "$(code /readyz)" = 200 ] && break; sleep 0.1; done
[ "$(code /readyz)" = 200 ] || fail "/readyz not 200 after Postgres came back"
for _ in $(seq 100); do
  [ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$((total + 5))" ] && break; sleep 0.1
done
[ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$((total + 5))" ] || fail "the 5 messages did not land"
for _ in $(seq 50); do
  scrape "$WORK/after" && [ "$(sample "$WORK/after" "$(k etlua_messages_deleted_total)")" = "$((total + 5))" ] && break
  sleep 0.1
done
python3 "$ROOT/tests/integration/prom_check.py" "$WORK/final" "$WORK/outage" "$WORK/after" >"$WORK/after.json" \
  || fail "scrapes around the outage are not valid or a counter went down"
[ "$(value "$WORK/after.json" "$(k etlua_rows_written_total)")" = "$(psql_q 'SELECT count(*) FROM user_logins')" ] \
  || fail "rows written != count(*) after the outage"
[ "$(value "$WORK/after.json" "$(k etlua_messages_deleted_total)")" = "$((total + 5))" ] || fail "deleted != received after the outage"
ok "/readyz 200 again once Postgres is back; the 5 messages landed and counted once"
lc() { sample "$1" "$(k etlua_last_commit_timestamp_seconds)"; }
[ "$(sample "$WORK/after" "$(k etlua_ready)")" = 1 ] || fail "etlua_ready is not 1 again after the outage"
python3 -c 'import sys; sys.exit(not float(sys.argv[2]) > float(sys.argv[1]))' "$(lc "$WORK/final")" "$(lc "$WORK/after")" \
  || fail "the last commit time did not advance after the outage: $(lc "$WORK/final") -> $(lc "$WORK/after")"
ok "the last commit time advanced past the outage: $(lc "$WORK/final") -> $(lc "$WORK/after")"

stop_clean $pid "$WORK/etlua.log"
[ "$(code /healthz)" = 000 ] || fail "still serving after exit"
ok "SIGTERM: exit 0, the server is gone"

# A run with rules, on the now empty queue: on its first scrape every reason known in advance
# is there at 0 (etlua's own and one per rule), before any message.
ETLUA_WAIT_SECONDS=1 "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --rules "$ROOT/scripts/rules" \
  --metrics "127.0.0.1:$port" 2>"$WORK/rules.log" &
pid=$!
for _ in $(seq 100); do [ "$(code /healthz)" = 200 ] && break; sleep 0.05; done
scrape "$WORK/rules_first" || { cat "$WORK/rules.log" >&2; fail "no scrape of the run with rules"; }
kill -TERM $pid; wait $pid || fail "the run with rules did not stop cleanly"
for reason in invalid_json not_object script_error script_timeout db_refused rule:known_device_type rule:locale_code; do
  [ "$(sample "$WORK/rules_first" "$(k etlua_rejects_total "reason=\"$reason\"")")" = 0 ] \
    || fail "reason $reason is not at 0 on the first scrape: $(grep rejects_total "$WORK/rules_first")"
done
ok "first scrape with rules: $(grep -c '^etlua_rejects_total' "$WORK/rules_first") reject reasons at 0, rule:<name> included"

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
