#!/usr/bin/env bash
# bench/ledger.sh [N] [FILL] [--repeat R]: the ledger at production size, on a durable Postgres.
#
# Prints, in one run:
#   - the --input insert rate of N messages (default 50,000) into an empty ledger and into a
#     ledger already holding FILL entries (default 10,000,000), median of R runs each (default 7),
#     and their ratio (the target: >= 0.9);
#   - bytes per entry (heap + every index, pg_total_relation_size of the partitions / entries)
#     of the filled ledger (entries in send order), and of 1,000,000 entries entered in random
#     send order (a backlog drained: SQS hands out an old backlog in no order), random ids.
# The server is tests/harness/pg.sh --durable (fsync, synchronous_commit, full_page_writes on;
# shared_buffers 128 MB, Postgres's default). The ledger is made with one 7-day partition
# (ETLUA_LEDGER_PARTITION_SECONDS=604800), and the FILL entries are spread over that partition's
# time up to now, so every insert of the timed runs goes into the partition that holds all of
# them (the hard case: nothing is gained from other partitions being out of the way). The fill
# is generate_series SQL, in key order; its time is printed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=50000 FILL=10000000 REPEAT=7
pos=()
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) REPEAT=$2; shift 2 ;;
        *) pos+=("$1"); shift ;;
    esac
done
N=${pos[0]:-$N} FILL=${pos[1]:-$FILL}
WORK=$(mktemp -d /tmp/etlua-bench-ledger.XXXXXX)
chmod 755 "$WORK"
. "$ROOT/bench/lib.sh"
trap '"$ROOT/tests/harness/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

build_etlua
"$ROOT/tests/harness/pg.sh" start "$WORK/pg" --durable >/dev/null
. "$WORK/pg/env"
export ETLUA_MASK_KEY=bench-mask-key-0123456789abcdef0123456789abcdef
export ETLUA_LEDGER_PARTITION_SECONDS=604800
unset SQS_QUEUE_URL AWS_ENDPOINT_URL
ETLUA="$ROOT/build-bench/etlua"
script=$ROOT/scripts/login_etl.lua
sql() { psql -XAtq -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "$1"; }
for s in $(seq 1 "$REPEAT"); do "$PY" "$ROOT/tests/harness/gen_logins.py" "$N" --seed "$((100 + s))" >"$WORK/in$s.jsonl"; done

reset_all() { sql "DROP TABLE IF EXISTS user_logins, user_logins_rejects, etlua_ledger, etlua_ledger_queues"; sql "$DDL"; }
# one --input run of file $1 -> its rate (etlua's own: received / loop seconds) and wall seconds
timed_input() {
    local t0 t1
    t0=$(date +%s.%N)
    "$ETLUA" "$script" --input "$1" 2>"$WORK/run.log" || { cat "$WORK/run.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    local rate; rate=$(sed -n 's/.* done .*rate=\([0-9]*\).*/\1/p' "$WORK/run.log")
    echo "$rate $(echo "$t1 - $t0" | bc)"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
entry_bytes() { # the ledger's bytes per entry
    sql "SELECT round(sum(pg_total_relation_size(inhrelid))::numeric / (SELECT count(*) FROM $1), 1) FROM pg_inherits WHERE inhparent = '$1'::regclass"
}

log "filling the ledger with $FILL entries (database etlua)"
reset_all
"$ETLUA" "$script" --input /dev/null 2>/dev/null   # makes the ledger (and its partition)
t0=$(date +%s.%N)
# Entries spread over the current partition's time up to now, in key order (sent, seq), random
# digests: seq = the milliseconds in the top bits, the entry's number below (as etlua's 21 bits).
sql "INSERT INTO etlua_ledger (sent, seq, digest, outcome)
  SELECT (t / 1000)::int4, (((t % 1000) << 21) | (i & 2097151))::int4, (random() * 1.8e19 - 9.0e18)::int8, 'r'
  FROM (SELECT i, lo * 1000 + (i * (hi - lo) * 1000 / $FILL) AS t
        FROM generate_series(0, $FILL - 1) AS i,
             (SELECT (extract(epoch from now())::bigint - 1704067200) / 604800 * 604800 AS lo,
                     extract(epoch from now())::bigint - 1704067200 - 60 AS hi) AS b) AS g"
t1=$(date +%s.%N)
fill_s=$(echo "$t1 - $t0" | bc)
sql "VACUUM (ANALYZE) etlua_ledger"
t2=$(date +%s.%N)
log "  filled in ${fill_s}s (+ $(echo "$t2 - $t1" | bc)s VACUUM ANALYZE)"
sql "CREATE DATABASE etlua_empty"
FULL_URL=$DATABASE_URL EMPTY_URL=${DATABASE_URL%/*}/etlua_empty

# The runs alternate (empty, filled, filled, empty, ...) so that the load of this shared machine
# falls on both alike; each run loads a file of its own, into a freshly reset empty ledger or
# into the filled one.
: >"$WORK/empty"; : >"$WORK/full"
run_empty() {
    DATABASE_URL=$EMPTY_URL PGDATABASE=etlua_empty reset_all
    DATABASE_URL=$EMPTY_URL "$ETLUA" "$script" --input /dev/null 2>/dev/null
    sql "CHECKPOINT"
    r=$(DATABASE_URL=$EMPTY_URL timed_input "$WORK/in$1.jsonl"); echo "$r" >>"$WORK/empty"; log "  empty:  $r (msgs/s, wall s)"
}
run_full() {
    sql "TRUNCATE user_logins, user_logins_rejects"
    sql "CHECKPOINT"
    r=$(timed_input "$WORK/in$1.jsonl"); echo "$r" >>"$WORK/full"; log "  filled: $r (msgs/s, wall s)"
}
log "$REPEAT runs of $N messages into each, alternating"
for s in $(seq 1 "$REPEAT"); do
    if [ $((s % 2)) = 1 ]; then run_empty "$s"; run_full "$s"; else run_full "$s"; run_empty "$s"; fi
done
# The load-independent figure: what one batch of 200 claims costs the server in each ledger
# (buffers touched, WAL written), measured by EXPLAIN (ANALYZE, BUFFERS, WAL) and rolled back.
batch_cost() { # DATABASE -> "hits+reads wal_bytes"
    psql -XAtq -d "$1" -c "BEGIN" -c "EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF, TIMING OFF)
      INSERT INTO etlua_ledger (sent, seq, digest, outcome)
      SELECT extract(epoch from now())::int4 - 1704067200 + 5, g, (random() * 1.8e19 - 9.0e18)::int8, 'r'
      FROM generate_series(1, 200) AS g ON CONFLICT DO NOTHING" -c "ROLLBACK" \
    | awk '/^Insert on/ {top = 1} top && /Buffers:/ && !b {for (i = 1; i <= NF; i++) if ($i ~ /^(hit|read)=/) {split($i, a, "="); b += a[2]}}
           top && /WAL:/ && !w {for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) {split($i, a, "="); w = a[2]}}
           END {print b + 0, w + 0}'
}
cost_empty=$(batch_cost etlua_empty) cost_full=$(batch_cost etlua)
entries=$(sql "SELECT count(*) FROM etlua_ledger")
filled_bytes=$(entry_bytes etlua_ledger)

log "1,000,000 entries in random send order"
sql "CREATE TABLE random_order (sent int4 NOT NULL, seq int4 NOT NULL, digest int8 NOT NULL, outcome \"char\" NOT NULL,
  PRIMARY KEY (sent, seq, digest)) PARTITION BY RANGE (sent);
  CREATE TABLE random_order_1 PARTITION OF random_order FOR VALUES FROM (0) TO (2000000000)"
sql "DO \$\$ BEGIN FOR b IN 0..4999 LOOP
  INSERT INTO random_order SELECT (t / 1000)::int4, (((t % 1000) << 21) | (r & 2097151))::int4, d, 'r' FROM (
    SELECT (100000000000 + random() * 345600000)::bigint AS t, (random() * 2147483647)::bigint AS r,
           (random() * 1.8e19 - 9.0e18)::int8 AS d
    FROM generate_series(1, 200)) x ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING;
  END LOOP; END \$\$"
random_bytes=$(entry_bytes random_order)

e=$(cut -d' ' -f1 "$WORK/empty" | median) f=$(cut -d' ' -f1 "$WORK/full" | median)
ew=$(cut -d' ' -f2 "$WORK/empty" | median) fw=$(cut -d' ' -f2 "$WORK/full" | median)
cat <<EOF
ledger bench: durable Postgres (fsync, synchronous_commit, full_page_writes on), --input of $N messages, median of $REPEAT
  empty ledger:                 $e msgs/s (wall ${ew}s)
  ledger of $FILL entries: $f msgs/s (wall ${fw}s)
  ratio filled / empty:         $(echo "scale=3; $f / $e" | bc)
  fill of $FILL entries:   ${fill_s}s
  one batch of 200 claims (buffers touched, WAL bytes): empty $cost_empty, filled $cost_full
  bytes per entry: $filled_bytes (filled ledger, $entries entries in send order); $random_bytes (1,000,000 in random send order)
EOF
