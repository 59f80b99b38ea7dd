#!/usr/bin/env bash
# bench/fifo.sh [N]: etlua's drain of a FIFO queue with 1, 10 and 100 message groups against a
# standard queue, the same N messages each (default 5000), on fauxqs and a throwaway Postgres
# (tests/harness) with the production defaults (fsync, synchronous_commit, full_page_writes on;
# BENCH_FSYNC_OFF=1: the fast test server, labelled as such). Every run uses the FIFO test pipeline (tests/integration/fifo_pipeline.lua) and
# is checked: exit 0, N rows (no rejects here), the queue empty, and on FIFO queues each group's
# rows written in sequence order. Prints one line per case (msgs/s = N / wall time of the drain)
# and writes them to bench/results/fifo-<UTC time>-n<N>.txt.
# fauxqs hands out one message of a group at a time (the group stays locked until it is
# deleted), so a FIFO drain can never have more messages in flight than it has groups.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-5000}
WORK=$(mktemp -d /tmp/etlua-fifo-bench.XXXXXX)
chmod 755 "$WORK"
. "$ROOT/bench/lib.sh"
trap 'stop_services; rm -rf "$WORK"' EXIT
build_etlua
ETLUA=${ETLUA_BIN:-$ROOT/build-bench/etlua}
export ETLUA_MASK_KEY=bench-mask-key-0123456789abcdef0123456789abcdef
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
if [ "$(pg_mode)" = durable ]; then
  "$ROOT/tests/harness/pg.sh" start "$WORK/pg" --durable >/dev/null
else
  "$ROOT/tests/harness/pg.sh" start "$WORK/pg" >/dev/null
fi
. "$WORK/pg/env"
script=$ROOT/tests/integration/fifo_pipeline.lua
out=$ROOT/bench/results/fifo-$(date -u +%Y%m%dT%H%M%SZ)-n$N.txt
mkdir -p "$ROOT/bench/results"
{
  echo "# bench/fifo.sh N=$N, postgres $(pg_mode), $(git -C "$ROOT" describe --always --dirty), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-16s %8s %10s\n' queue seconds msgs/s
} | tee "$out"

bench_case() { # LABEL GROUPS (0 = standard queue)
  local label=$1 groups=$2
  "$ROOT/tests/harness/sqs.sh" stop fauxqs "$WORK/sqs" >/dev/null 2>&1 || true
  if [ "$groups" = 0 ]; then
    "$ROOT/tests/harness/sqs.sh" start fauxqs "$WORK/sqs" >/dev/null
  else
    "$ROOT/tests/harness/sqs.sh" start fauxqs "$WORK/sqs" --fifo >/dev/null
  fi
  . "$WORK/sqs/fauxqs.env"
  psql -XAtq -c "SET client_min_messages = warning" \
    -c "DROP TABLE IF EXISTS fifo_events, fifo_events_rejects, user_logins_rejects, etlua_ledger CASCADE" >/dev/null
  "$PY" "$ROOT/tests/integration/gen_fifo.py" "$N" "$(( groups > 0 ? groups : 10 ))" >"$WORK/in.jsonl"
  if [ "$groups" = 0 ]; then
    sqsjs send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/in.jsonl" --concurrency 16 >/dev/null 2>&1
  else
    sqsjs send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$WORK/in.jsonl" --group-field g >/dev/null 2>&1
  fi
  [ "$(depth)" = "$N 0" ] || { log "$label: queue depth after load is $(depth)"; return 1; }
  local t0 t1
  t0=$(date +%s%N)
  "$ETLUA" "$script" --drain 2>"$WORK/etlua.log" || { tail -5 "$WORK/etlua.log" >&2; log "$label: etlua failed"; return 1; }
  t1=$(date +%s%N)
  local rows back
  rows=$(psql -XAtq -c "SELECT count(*) FROM fifo_events")
  back=$(psql -XAtq -c "SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY g ORDER BY n) AS b FROM fifo_events) t WHERE b")
  [ "$rows" = "$N" ] && [ "$(depth)" = "0 0" ] || { log "$label: rows $rows, depth $(depth)"; return 1; }
  [ "$groups" = 0 ] || [ "$back" = 0 ] || { log "$label: $back rows out of group order"; return 1; }
  awk -v l="$label" -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { s = ns / 1e9; printf "%-16s %8.2f %10.0f\n", l, s, n / s }' | tee -a "$out"
}

bench_case "fifo, 1 group" 1
bench_case "fifo, 10 groups" 10
bench_case "fifo, 100 groups" 100
bench_case "standard" 0
log "written $out"
