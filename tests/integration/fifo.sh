#!/usr/bin/env bash
# tests/integration/fifo.sh [N] [GROUPS]: a FIFO queue on fauxqs (message groups, one message
# of a group in flight at a time, deduplication). N messages (default 1200) in GROUPS groups
# (default 10), each body carrying its per-group sequence number, every 37th one rejected by the
# test pipeline and every 101st refused by Postgres (a batch split in halves, committed left
# first, until the refused row stands alone as a db_refused reject). `--drain` must land all of them (an empty receive while groups are locked is
# not the end), leave the queue empty, and per group the rows must have been written in
# sequence order (the table's bigserial records the write order), past the rejected ones.
. "$(dirname "$0")/lib.sh"
n=${1:-1200} groups=${2:-10}
start_pg
start_sqs fauxqs --fifo --visibility 120
script=$ROOT/tests/integration/fifo_pipeline.lua
python3 "$ROOT/tests/integration/gen_fifo.py" "$n" "$groups" --bad-every 37 --huge-every 101 >"$WORK/input.jsonl"
node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/input.jsonl" --group-field g \
  >/dev/null 2>&1 || fail "could not send to the FIFO queue"
[ "$(depth)" = "$n 0" ] || fail "queue holds $(depth), expected $n 0"
bad=$(grep -c '"bad":true' "$WORK/input.jsonl")
huge=$(grep -c '"huge":true' "$WORK/input.jsonl")

# --dry-run deletes nothing, so the groups stay locked by what it holds: it ends by the standard
# queue's rule (an empty long poll) and releases all it received, leaving the queue as it was.
timeout 30 "$ETLUA_BIN" "$script" --drain --dry-run >"$WORK/dry.jsonl" 2>"$WORK/dry.log" \
  || { cat "$WORK/dry.log" >&2; fail "--dry-run --drain of the FIFO queue failed or did not end"; }
[ -s "$WORK/dry.jsonl" ] || fail "--dry-run printed nothing"
[ "$(depth)" = "$n 0" ] || fail "after --dry-run the queue holds $(depth), expected $n 0 (everything released)"
ok "--dry-run --drain on the FIFO queue ends, prints $(wc -l <"$WORK/dry.jsonl") rows (the groups' heads), releases them"

t0=$(date +%s%3N)
"$ETLUA_BIN" "$script" --drain 2>"$WORK/etlua.log" || { cat "$WORK/etlua.log" >&2; fail "etlua --drain exited non-zero"; }
ms=$(( $(date +%s%3N) - t0 ))
summary=$(grep ' done ' "$WORK/etlua.log") || fail "no summary line"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$summary"; }
[ "$(field received)" = "$n" ] || fail "received $(field received) of $n: $summary"
rows=$((n - bad - huge))
[ "$(field written)" = "$rows" ] && [ "$(field rejected)" = "$((bad + huge))" ] || fail "outcomes: $summary"
grep -q "rejected.db_refused=$huge" <<<"$summary" || fail "expected $huge db_refused rejects: $summary"
[ "$(depth)" = "0 0" ] || fail "queue not empty after the drain: $(depth)"
ok "--drain landed all $n messages of $groups groups ($rows rows, $bad rejects, $huge refused by Postgres) in $ms ms"

got=$(psql_q "SELECT count(*), count(DISTINCT (g, seq)) FROM fifo_events")
[ "$got" = "$rows|$rows" ] || fail "rows (all|distinct): $got, expected $rows"
back=$(psql_q "SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY g ORDER BY n) AS back FROM fifo_events) t WHERE back")
[ "$back" = 0 ] || fail "$back rows were written before an earlier message of their group"
ok "per group, rows were written in sequence order (groups in parallel), past rejects and refused rows"

"$ETLUA_BIN" "$script" --drain 2>"$WORK/again.log" || fail "a second drain of the empty queue failed"
grep -q ' done .*received=0' "$WORK/again.log" || fail "the second drain received something"
ok "a second drain of the empty FIFO queue ends at once with nothing"
