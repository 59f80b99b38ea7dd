#!/usr/bin/env bash
# bench/run.sh [N] [--repeat R] [--only a,b,...] [--fsync-off] [--base REV]
#
# Starts a throwaway Postgres (production defaults: fsync, synchronous_commit, full_page_writes
# on; --fsync-off: all three off, a labelled extra) and fauxqs on 127.0.0.1, generates N login messages
# (tests/harness/gen_logins.py) and, for each implementation (R times each, default 1):
# empties the tables and the queue, loads the N messages, runs it under /usr/bin/time, and
# checks the row count and that the queue is empty. Prints a table of medians and writes
# bench/results/<UTC timestamp>-n<N>.json with every run.
#
# Implementations (names for --only): etlua, tuned, seed, bare, copy, input, base, base-input,
# base-bare. base and base-input are etlua as it was at commit REV (--base, default BASE_REV
# below: main when the per-message cost work began), built from `git archive REV` into build-base-<rev>/,
# with that commit's own login script: the same-run yardstick for "4x less CPU than before";
# base-bare is that commit's bench/bare_drain.lua on its own SQS client (its etlua.so): the bare
# client as it was when issue 16 set "etlua's CPU <= 0.4x the bare client's" (the bare drain
# shares etlua's SQS client, so it got cheaper with etlua).
# See bench/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=20000 REPEAT=1 ONLY=etlua,tuned,seed,bare,copy,input
BASE_REV=7a5df6d   # main before the per-message cost work of issue 16's second round
USAGE="usage: bench/run.sh [N] [--repeat R] [--only etlua,tuned,seed,bare,copy,input,base,base-input,base-bare] [--fsync-off] [--base REV]"
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) REPEAT=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --fsync-off) export BENCH_FSYNC_OFF=1; shift ;;
        --base) BASE_REV=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        [0-9]*) N=$1; shift ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
done
WORK=$(mktemp -d /tmp/etlua-bench.XXXXXX); chmod 755 "$WORK"   # the postgres user must reach WORK/pg
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'stop_services; rm -rf "$WORK"' EXIT
cd "$ROOT"

build_etlua
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if want base || want base-input || want base-bare; then
    BASE_DIR=$(build_base "$BASE_REV")   # bench/lib.sh: the tree at REV and its Release build
fi
log "starting Postgres and fauxqs in $WORK"
start_services
log "generating $N messages"
"$PY" tests/harness/gen_logins.py "$N" >"$WORK/bodies.jsonl"
"$PY" bench/gen_tsv.py "$ETLUA_MASK_KEY" <"$WORK/bodies.jsonl" >"$WORK/rows.tsv"
RUNS="$WORK/runs.jsonl"; : >"$RUNS"

# run_one NAME ROUND EXPECTED_ROWS LOAD(yes|no) CMD...
run_one() {
    local name=$1 round=$2 want=$3 load=$4; shift 4
    reset_state
    [ "$load" = yes ] && load_queue "$WORK/bodies.jsonl" "$N"
    log "$name (round $round): $*"
    # A drain's clock (the same for every client): from just before the client starts until the
    # queue holds no message, visible or in flight, seen from outside (sqs.js watch-empty). The
    # process's wall time also counts start-up and each client's own proof that the queue is
    # empty (a long poll that comes back empty: ~1 s, more when many were in flight).
    local watch=""
    if [ "$load" = yes ]; then
        sqsjs watch-empty "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" >"$WORK/watch.out" 2>/dev/null &
        watch=$!
        local tries=0
        until grep -q ready "$WORK/watch.out" 2>/dev/null || [ $tries -ge 200 ]; do sleep 0.05; tries=$((tries + 1)); done
    fi
    local rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    local drained=null
    if [ -n "$watch" ]; then
        local tries=0
        while kill -0 "$watch" 2>/dev/null && [ $tries -lt 40 ]; do sleep 0.05; tries=$((tries + 1)); done
        kill "$watch" 2>/dev/null || true; wait "$watch" 2>/dev/null || true
        drained=$(sed -n 's/^empty //p' "$WORK/watch.out"); drained=${drained:-null}
    fi
    local wall user sys rss got d ok=true
    read -r wall user sys rss < <(tail -n 1 "$WORK/time.txt")
    got=$(rows); d=$(depth)
    if [ "$rc" != 0 ] || [ "$got" != "$want" ] || [ "$d" != "0 0" ]; then
        ok=false
        log "$name FAILED: exit $rc, rows $got (want $want), queue '$d'"; tail -n 5 "$WORK/$name.err" >&2
    fi
    local own; own=$(grep -Eo '[0-9.]+ *msgs/s' "$WORK/$name.out" "$WORK/$name.err" 2>/dev/null | head -n 1 | grep -Eo '^[^ ]*[0-9.]+' | sed 's/.*://' || true)
    printf '{"impl":"%s","round":%s,"n":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"max_rss_kb":%s,"rows":%s,"expected_rows":%s,"queue_after":"%s","exit":%s,"ok":%s,"self_reported_msgs_s":%s,"drained_s":%s}\n' \
        "$name" "$round" "$N" "$wall" "$user" "$sys" "$rss" "${got:-0}" "$want" "$d" "$rc" "$ok" "${own:-null}" "$drained" >>"$RUNS"
    log "$name: ${wall}s wall${watch:+ (queue empty after ${drained}s)}, $(awk "BEGIN{print $user+$sys}")s CPU, $((rss / 1024)) MiB, rows $got"
}

for round in $(seq 1 "$REPEAT"); do
    want etlua && run_one etlua "$round" "$N" yes build-bench/etlua scripts/login_etl.lua --drain
    want base && run_one base "$round" "$N" yes "$BASE_DIR/build/etlua" "$BASE_DIR/src/scripts/login_etl.lua" --drain
    want tuned && run_one tuned "$round" "$N" yes "$PY" bench/baseline_tuned.py
    want seed && run_one seed "$round" "$N" yes "$PY" bench/baseline_seed.py
    if want bare; then
        if [ -f bench/bare_drain.lua ]; then
            # a fixed number of receives in flight (ETLUA_RECEIVE_CONCURRENCY, default 64, etlua's
            # ceiling until its window learned to settle below 128); like
            # etlua it ends on a 1 s long poll that comes back empty (its proof of emptiness)
            LUA_CPATH='build-bench/?.so;;' run_one bare "$round" 0 yes lua5.4 bench/bare_drain.lua pipe "${ETLUA_RECEIVE_CONCURRENCY:-64}"
        else
            [ "$round" = 1 ] && log "bare: bench/bare_drain.lua does not exist yet: skipped"
        fi
    fi
    if want base-bare; then
        LUA_CPATH="$BASE_DIR/build/?.so;;" run_one base-bare "$round" 0 yes lua5.4 "$BASE_DIR/src/bench/bare_drain.lua" pipe "${ETLUA_RECEIVE_CONCURRENCY:-64}"
    fi
    # --input: the same N bodies from a file, no SQS at all, against psql \copy of the same rows
    want input && run_one input "$round" "$N" no build-bench/etlua scripts/login_etl.lua --input "$WORK/bodies.jsonl"
    want base-input && run_one base-input "$round" "$N" no "$BASE_DIR/build/etlua" "$BASE_DIR/src/scripts/login_etl.lua" --input "$WORK/bodies.jsonl"
    want copy && run_one copy "$round" "$N" no psql -XAtq -v ON_ERROR_STOP=1 -c "\\copy user_logins FROM '$WORK/rows.tsv'"
done

mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-n$N.json"
BENCH_PG_MODE=$(pg_mode) BENCH_BASE_REV=${BASE_DIR:+$BASE_REV} "$PY" bench/report.py "$RUNS" "$out"
log "raw results: $out"
