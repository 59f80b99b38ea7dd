#!/usr/bin/env bash
# bench/upsert.sh [N]: the cost of repeated keys. Starts a throwaway Postgres and fauxqs, and
# drains N order events (default 20000) through bench/upsert_etl.lua, a one-output script keyed
# by order_id, in four variants:
#   copy        no key: plain COPY (the fast path), unique order ids
#   unique      key + on_conflict "update" + order_by ts, unique order ids
#   dup10       the same, 10% of the messages repeating an earlier order id (a correction)
#   dup10-error key + on_conflict "error", 10% repeated: every repeat is a db_refused reject,
#               found by bisecting its batch (what every conflict cost before on_conflict existed)
# Prints msgs/s from etlua's own summary line (rate=) and checks the row and reject counts.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-20000}
WORK=$(mktemp -d /tmp/etlua-bench.XXXXXX); chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'stop_services; rm -rf "$WORK"' EXIT
cd "$ROOT"
build_etlua
start_services

gen() { # gen N DUP_PERCENT > file
  "$PY" - "$1" "$2" <<'PY'
import json, random, sys
n, dup = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(3)
for i in range(n):
    oid = "o-%d" % i
    if dup and i > 10 and rnd.randrange(100) < dup:
        oid = "o-%d" % rnd.randrange(i)
    print(json.dumps({"order_id": oid, "status": rnd.choice(["paid", "shipped"]),
                      "total_cents": rnd.randrange(10**9), "ts": i}))
PY
}
gen "$N" 0 >"$WORK/unique.jsonl"
gen "$N" 10 >"$WORK/dup10.jsonl"
distinct=$(python3 -c 'import json,sys; print(len({json.loads(l)["order_id"] for l in open(sys.argv[1])}))' "$WORK/dup10.jsonl")

variant() { # variant NAME KEYING INPUT WANT_ROWS WANT_REJECTS
  local name=$1 keying=$2 input=$3 want=$4 want_rej=$5
  sed "s|^  key = .*-- KEYING\$|  $keying -- KEYING|" bench/upsert_etl.lua >"$WORK/$name.lua"
  psql -XAtq -c "SET client_min_messages = warning" \
       -c "DROP TABLE IF EXISTS bench_orders, bench_orders_rejects, etlua_ledger" >/dev/null
  sqsjs purge "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" >/dev/null
  load_queue "$input" "$N"
  ETLUA_BATCH_SIZE=500 "$ROOT/build-bench/etlua" "$WORK/$name.lua" --drain 2>"$WORK/$name.log" \
    || { cat "$WORK/$name.log" >&2; exit 1; }
  local rows rej rate
  rows=$(psql -XAtq -c "SELECT count(*) FROM bench_orders")
  rej=$(psql -XAtq -c "SELECT count(*) FROM bench_orders_rejects")
  rate=$(sed -n 's/.* done .*rate=\([0-9]*\).*/\1/p' "$WORK/$name.log")
  [ "$rows" = "$want" ] && [ "$rej" = "$want_rej" ] \
    || { log "$name: $rows rows and $rej rejects, want $want and $want_rej"; exit 1; }
  printf '%-12s %8s msgs/s   rows %s, rejects %s\n' "$name" "$rate" "$rows" "$rej"
}

echo "N=$N messages, batches of 500, fauxqs + local Postgres (Release build)"
variant copy "key = nil," "$WORK/unique.jsonl" "$N" 0
variant unique 'key = { "order_id" }, on_conflict = "update", order_by = "ts",' "$WORK/unique.jsonl" "$N" 0
variant dup10 'key = { "order_id" }, on_conflict = "update", order_by = "ts",' "$WORK/dup10.jsonl" "$distinct" 0
variant dup10-error 'key = { "order_id" }, on_conflict = "error",' "$WORK/dup10.jsonl" "$distinct" "$((N - distinct))"
