#!/usr/bin/env bash
# bench/rss.sh [N ...] (default: 100000 1000000)
#
# etlua's memory while draining N messages, for each N given. Starts Postgres (production
# defaults: fsync, synchronous_commit, full_page_writes on; BENCH_FSYNC_OFF=1 for the fast test
# server, recorded in the results as "postgres") and fauxqs and runs etlua under /usr/bin/time,
# sampling its /proc/PID/status every second: VmRSS (now) and VmHWM (peak). Prints peak RSS per
# N and the RSS after 10%, 50% and 90% of the messages landed (flat = not growing with N);
# checks that every message landed (rows + rejects == N: a message may land as a reject, e.g. a
# script_timeout, which before the budget counted CPU time a starved host could cause) and an
# empty queue. Writes
# bench/results/<UTC>-rss.json with the samples.
#
#  - N <= RSS_PRELOAD_MAX (default 100000): all N messages are loaded first, then
#    `etlua scripts/login_etl.lua --drain`.
#  - larger N: fauxqs can hold 1,000,000 messages (~600 MiB of its own memory) but its receive
#    slows down with the depth of the queue (a 1M-deep queue drained at ~650 msgs/s here, against
#    ~8,000 at 100k), so the messages are fed in chunks of RSS_CHUNK (default 50000) while etlua
#    runs as a service (no --drain, ETLUA_WAIT_SECONDS=1), the backlog kept under 2 chunks; once
#    N rows are written and the queue is empty, etlua gets SIGTERM and must exit 0.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
WORK=$(mktemp -d /tmp/etlua-rss.XXXXXX); chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'stop_services; rm -rf "$WORK"' EXIT
cd "$ROOT"
# messages landed: rows, and rejects (the table exists once etlua has started)
rejects() { psql -XAtq -c "SELECT count(*) FROM user_logins_rejects" 2>/dev/null || echo 0; }
landed() { echo $(($(rows) + $(rejects))); }
build_etlua
start_services
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-rss.json"
: >"$WORK/all.jsonl"
for n in "${SIZES[@]}"; do
    log "N=$n: generating"
    "$PY" tests/harness/gen_logins.py "$n" >"$WORK/bodies.jsonl"
    reset_state
    stream=false; [ "$n" -gt "${RSS_PRELOAD_MAX:-100000}" ] && stream=true
    if $stream; then
        chunk=${RSS_CHUNK:-50000}
        split -l "$chunk" -d -a 4 "$WORK/bodies.jsonl" "$WORK/chunk."
        ETLUA_WAIT_SECONDS=1 /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" build-bench/etlua scripts/login_etl.lua \
            >"$WORK/etlua.out" 2>"$WORK/etlua.err" &
    else
        t0=$(date +%s.%N)
        load_queue "$WORK/bodies.jsonl" "$n"
        log "N=$n: loaded in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$t0}") s"
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" build-bench/etlua scripts/login_etl.lua --drain \
            >"$WORK/etlua.out" 2>"$WORK/etlua.err" &
    fi
    tpid=$!
    pid=
    for _ in $(seq 1 100); do pid=$(pgrep -P "$tpid" etlua || true); [ -n "$pid" ] && break; sleep 0.05; done
    if $stream; then # the feeder: one chunk at a time, the backlog under 2 chunks
        (
            sent=0
            for f in "$WORK"/chunk.*; do
                while [ $((sent - $(landed))) -ge $((2 * chunk)) ]; do sleep 0.5; done
                c=$(wc -l <"$f")
                sqsjs send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$f" --concurrency 16 >/dev/null
                sent=$((sent + c))
            done
            while [ "$(landed)" -lt "$n" ]; do sleep 0.5; done
            for _ in $(seq 1 60); do [ "$(depth)" = "0 0" ] && break; sleep 0.5; done
            kill -TERM "$pid"
        ) &
        fpid=$!
    fi
    : >"$WORK/samples.txt"
    start=$(date +%s.%N)
    while [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; do
        rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || true)
        got=$(landed 2>/dev/null || echo 0)
        [ -n "$rss" ] && echo "$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$start}") $got $rss $hwm" >>"$WORK/samples.txt"
        sleep 1
    done
    rc=0; wait "$tpid" || rc=$?
    $stream && wait "$fpid"
    read -r wall user sys maxrss < <(tail -n 1 "$WORK/time.txt")
    got=$(rows); rej=$(rejects); d=$(depth)
    ok=true; { [ "$rc" = 0 ] && [ $((got + rej)) = "$n" ] && [ "$d" = "0 0" ]; } || ok=false
    "$PY" - "$n" "$wall" "$user" "$sys" "$maxrss" "$ok" "$WORK/samples.txt" "$got" "$rej" >>"$WORK/all.jsonl" <<'PYEOF'
import json, sys
n, wall, user, sys_, maxrss, ok, path, rows, rejects = sys.argv[1:]
samples = [[float(x) for x in l.split()] for l in open(path) if len(l.split()) == 4]
def rss_at(frac):
    for t, got, rss, hwm in samples:
        if got >= frac * int(n):
            return round(rss / 1024, 1)
    return None
print(json.dumps({"n": int(n), "wall_s": float(wall), "cpu_s": float(user) + float(sys_),
    "peak_rss_mib": round(int(maxrss) / 1024, 1),
    "peak_vmhwm_mib": round(max((s[3] for s in samples), default=0) / 1024, 1),
    "rss_mib_at_10pct": rss_at(0.1), "rss_mib_at_50pct": rss_at(0.5), "rss_mib_at_90pct": rss_at(0.9),
    "msgs_s": round(int(n) / float(wall)), "rows": int(rows), "rejects": int(rejects), "ok": ok == "true",
    "samples_t_landed_rsskb_hwmkb": samples}))
PYEOF
    log "N=$n: ${wall}s wall, peak RSS $((maxrss / 1024)) MiB, rows $got, rejects $rej, queue '$d', ok=$ok"
done
"$PY" - "$WORK/all.jsonl" "$out" "$(git describe --always --dirty)" "$(pg_mode)" <<'PYEOF'
import json, sys, platform, os
runs = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"host": platform.node(), "cpus": os.cpu_count(), "git": sys.argv[3], "postgres": sys.argv[4],
           "runs": runs}, open(sys.argv[2], "w"), indent=1)
print(f"\nPostgres: {sys.argv[4]}")
print("\n| N | wall s | msgs/s | peak RSS MiB (VmHWM) | RSS at 10% / 50% / 90% MiB | ok |")
print("|---:|---:|---:|---:|---|---|")
for r in runs:
    print(f"| {r['n']:,} | {r['wall_s']:.1f} | {r['msgs_s']:,} | {r['peak_rss_mib']} | "
          f"{r['rss_mib_at_10pct']} / {r['rss_mib_at_50pct']} / {r['rss_mib_at_90pct']} | {r['ok']} |")
PYEOF
log "raw results: $out"
