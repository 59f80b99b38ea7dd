#!/usr/bin/env bash
# tests/integration/stop_release.sh: a stop releases what etlua holds. SIGTERM mid-run, on a
# standard and on a FIFO queue whose visibility timeout is long (120 s): etlua commits and deletes
# the batch in hand and sets the visibility of every message it received but did not commit (the
# prefetch) to 0, so right after it exits nothing is in flight, and a second run gets the rest at
# once, well before the visibility timeout. On the FIFO queue the groups are not blocked and the
# rows of each group are still written in sequence order across the two runs.
. "$(dirname "$0")/lib.sh"
start_pg

# standard queue, as a service -------------------------------------------------------------------
start_sqs fauxqs --visibility 120
script=$ROOT/scripts/login_etl.lua
# enough that the signal comes mid-drain (a Debug build drains ~15,000 a second here)
python3 "$ROOT/tests/harness/gen_logins.py" 40000 --seed 5 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"
"$ETLUA_BIN" "$script" 2>"$WORK/std.log" &
pid=$!
sleep 1.5
stop_clean $pid "$WORK/std.log"
grep -q ' released .*messages=' "$WORK/std.log" || { cat "$WORK/std.log" >&2; fail "no release logged"; }
d=$(depth)
[ "${d#* }" = 0 ] || fail "messages still in flight after the stop (visible, in flight: $d)"
ok "standard queue: SIGTERM released the prefetch ($(sed -n 's/.* released .*messages=\([0-9]*\).*/\1/p' "$WORK/std.log") messages), nothing left in flight"
t0=$(date +%s)
timeout 60 "$ETLUA_BIN" "$script" --drain 2>"$WORK/std-rest.log" || fail "the drain after the stop failed"
[ "$(depth)" = "0 0" ] || fail "queue not empty after the second run: $(depth)"
python3 "$ROOT/tests/integration/check_tables.py" "$WORK/input.jsonl" --key "$ETLUA_MASK_KEY" >/dev/null \
  || fail "tables differ from the oracle's expectations"
ok "standard queue: a second run drained the rest in $(( $(date +%s) - t0 )) s (visibility timeout 120 s), every message once"

# FIFO queue, --drain ------------------------------------------------------------------------------
start_sqs fauxqs --fifo --visibility 120
script=$ROOT/tests/integration/fifo_pipeline.lua
n=5000   # a few seconds of drain at least, so the signal comes mid-drain
python3 "$ROOT/tests/integration/gen_fifo.py" $n 10 --bad-every 37 >"$WORK/fifo.jsonl"
bad=$(grep -c '"bad":true' "$WORK/fifo.jsonl")
node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/fifo.jsonl" --group-field g \
  >/dev/null 2>&1 || fail "could not send to the FIFO queue"
"$ETLUA_BIN" "$script" --drain 2>"$WORK/fifo.log" &
pid=$!
sleep 1
stop_clean $pid "$WORK/fifo.log" FIFO
d=$(depth)
[ "${d#* }" = 0 ] || fail "FIFO: messages still in flight after the stop (visible, in flight: $d)"
[ "${d% *}" -gt 0 ] || fail "FIFO: the drain finished before the signal; nothing to test"
ok "FIFO queue: SIGTERM mid-drain left nothing in flight (${d% *} messages visible again)"
t0=$(date +%s)
timeout 60 "$ETLUA_BIN" "$script" --drain 2>"$WORK/fifo-rest.log" || fail "FIFO: the drain after the stop failed"
[ "$(depth)" = "0 0" ] || fail "FIFO: queue not empty after the second run: $(depth)"
rows=$(psql_q "SELECT count(*), count(DISTINCT (g, seq)) FROM fifo_events")
[ "$rows" = "$((n - bad))|$((n - bad))" ] || fail "FIFO: rows (all|distinct): $rows, expected $((n - bad))"
back=$(psql_q "SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY g ORDER BY n) AS back FROM fifo_events) t WHERE back")
[ "$back" = 0 ] || fail "FIFO: $back rows were written before an earlier message of their group"
ok "FIFO queue: a second run landed the rest in $(( $(date +%s) - t0 )) s, every message once, each group in order"
