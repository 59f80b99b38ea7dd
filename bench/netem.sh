#!/usr/bin/env bash
# bench/netem.sh [N] [--rounds R] [--delay-ms D] [--concurrency C] [--only etlua,bare,tuned] [--fsync-off]
#
# etlua's drain rate with round-trip delay to the SQS emulator against its own rate without the
# delay, in the same run (as root). Creates a network namespace with a veth pair
# (10.213.77.0/30 unless taken: host .1, namespace .2; nothing else is touched, loopback
# included) and runs fauxqs inside it. Both settings reach the emulator the same way (host ->
# veth -> forwarder in the namespace -> emulator); only the delay differs: 0, or D ms each way
# (default 10) = 2D ms RTT. Postgres (production defaults: fsync, synchronous_commit,
# full_page_writes on; --fsync-off for the fast test server) stays on the host's loopback.
#
# Loads N messages (default 50000) before each run and drains them with
# `etlua scripts/login_etl.lua --drain` (ETLUA_RECEIVE_CONCURRENCY=C when --concurrency is given,
# else etlua's default); with --only ...,bare also bench/bare_drain.lua (C receives, default 64),
# with tuned the Python baseline. R rounds (default 3) alternate the order (0 then D, D then 0),
# so drift of the shared host falls on both. Prints every run with the load average at its
# start, the medians per setting and etlua's ratio (median at 2D ms / median at 0 ms) against
# the goal of 0.8; writes bench/results/<UTC>-netem-n<N>.json.
#
# The delay: `tc qdisc ... netem delay Dms` on both veth ends when the kernel has sch_netem
# (switched on and off between runs); otherwise (this container's kernel: CONFIG_NET_SCH_NETEM is
# not set) the user-space forwarder (bench/delay_proxy.py) holds each chunk D ms in each
# direction: two forwarders, one at 0 ms and one at D ms, on two ports of the namespace address.
# The script says which one it used. Everything is torn down by a trap.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=50000 ROUNDS=3 DELAY=10 CONC='' ONLY=etlua
USAGE='usage: bench/netem.sh [N] [--rounds R] [--delay-ms D] [--concurrency C] [--only etlua,bare,tuned] [--fsync-off]'
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --delay-ms) DELAY=$2; shift 2 ;;
        --concurrency) CONC=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --fsync-off) export BENCH_FSYNC_OFF=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        [0-9]*) N=$1; shift ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "bench/netem.sh: needs root (ip netns, veth, tc)" >&2; exit 1; }
command -v ip >/dev/null && command -v tc >/dev/null || { echo "bench/netem.sh: needs iproute2 (apt-get install -y iproute2)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/etlua-netem.XXXXXX); chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT"
NS=etlua-netem-$$ VH=etn$$h VN=etn$$n
NET=10.213.77
for third in 77 78 79 80 81; do
    ip -4 addr show | grep -q "inet 10\.213\.$third\." || { NET=10.213.$third; break; }
done
HOST_IP=$NET.1 NS_IP=$NET.2
PROXY_PIDS=()
cleanup() {
    set +e
    for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    "$ROOT/tests/harness/sqs.sh" stop fauxqs "$WORK/sqs" >/dev/null 2>&1
    "$ROOT/tests/harness/pg.sh" stop "$WORK/pg" >/dev/null 2>&1
    ip link del "$VH" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

build_etlua
log "namespace $NS, veth $VH ($HOST_IP) <-> $VN ($NS_IP)"
ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VH"; ip link set "$VH" up
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
ip netns exec "$NS" ip link set lo up
if tc qdisc add dev "$VH" root netem delay 0ms 2>/dev/null &&
   ip netns exec "$NS" tc qdisc add dev "$VN" root netem delay 0ms 2>/dev/null; then
    USE_TC=1 METHOD="tc netem delay on both veth ends (0 or ${DELAY}ms, switched between runs)"
else
    tc qdisc del dev "$VH" root 2>/dev/null || true
    USE_TC=0 METHOD="user-space delay forwarder, 0 or ${DELAY}ms each way (bench/delay_proxy.py; this kernel has no sch_netem)"
fi
log "delay: $METHOD"

if [ "$(pg_mode)" = durable ]; then
    "$ROOT/tests/harness/pg.sh" start "$WORK/pg" --durable
else
    "$ROOT/tests/harness/pg.sh" start "$WORK/pg"
fi
# shellcheck disable=SC1091
. "$WORK/pg/env"
ip netns exec "$NS" "$ROOT/tests/harness/sqs.sh" start fauxqs "$WORK/sqs" >&2
# shellcheck disable=SC1091
. "$WORK/sqs/fauxqs.env"
INNER_EP=$AWS_ENDPOINT_URL PORT=${AWS_ENDPOINT_URL##*:}
# The emulator listens on the namespace's 127.0.0.1 only, so any port of NS_IP is free: one
# forwarder per setting (with tc netem both forward at 0 ms and the qdisc sets the delay).
declare -A EP
start_proxy() { # LISTEN_PORT DELAY_MS
    ip netns exec "$NS" "$PY" "$ROOT/bench/delay_proxy.py" "$NS_IP" "$1" 127.0.0.1 "$PORT" "$2" >"$WORK/proxy.$1.out" 2>&1 &
    PROXY_PIDS+=($!)
    for _ in $(seq 1 100); do grep -q listening "$WORK/proxy.$1.out" 2>/dev/null && return 0; sleep 0.05; done
    log "delay forwarder on port $1 did not start"; cat "$WORK/proxy.$1.out" >&2; return 1
}
if [ "$USE_TC" = 1 ]; then
    start_proxy "$PORT" 0
    EP[0]="http://$NS_IP:$PORT" EP[$DELAY]="http://$NS_IP:$PORT"
else
    start_proxy "$PORT" 0
    start_proxy $((PORT + 1)) "$DELAY"
    EP[0]="http://$NS_IP:$PORT" EP[$DELAY]="http://$NS_IP:$((PORT + 1))"
fi
set_delay() { # D: the delay each way of the next runs; exports AWS_ENDPOINT_URL
    if [ "$USE_TC" = 1 ]; then
        tc qdisc change dev "$VH" root netem delay "${1}ms"
        ip netns exec "$NS" tc qdisc change dev "$VN" root netem delay "${1}ms"
    fi
    export AWS_ENDPOINT_URL=${EP[$1]}
}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export ETLUA_MASK_KEY=${ETLUA_MASK_KEY:-bench-mask-key-0123456789abcdef0123456789abcdef}
# queue maintenance runs inside the namespace, on the emulator's own loopback (no delay)
sqsjs() { local cmd=$1; shift 2; ip netns exec "$NS" node "$ROOT/tests/harness/sqs.js" "$cmd" "$INNER_EP" "$@"; }
# the round trip as etlua sees it: one HTTP request through the forwarder (fastest of 5, ms: the
# emulator shares the CPU with the rest of the host, so the floor is the figure)
measure_rtt() {
    for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' -X POST "$AWS_ENDPOINT_URL/"; done |
        sort -n | head -n 1 | awk '{printf "%.1f", $1 * 1000}'
}
declare -A RTT
for d in 0 "$DELAY"; do
    set_delay "$d"; RTT[$d]=$(measure_rtt)
    log "delay ${d} ms each way: HTTP round trip host -> emulator (fastest of 5) ${RTT[$d]} ms"
done

"$PY" tests/harness/gen_logins.py "$N" >"$WORK/bodies.jsonl"
RUNS="$WORK/runs.jsonl"; : >"$RUNS"
run_one() { # NAME DELAY ROUND WANT_ROWS CMD...
    local name=$1 delay=$2 round=$3 wantrows=$4; shift 4
    reset_state; load_queue "$WORK/bodies.jsonl" "$N"
    set_delay "$delay"
    local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
    local rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    local wall user sys rss got d ok=true
    read -r wall user sys rss < <(tail -n 1 "$WORK/time.txt")
    got=$(rows); d=$(depth)
    [ "$rc" = 0 ] && [ "$got" = "$wantrows" ] && [ "$d" = "0 0" ] || { ok=false; log "$name FAILED: exit $rc rows $got queue '$d'"; tail -n 3 "$WORK/err" >&2; }
    local rate; rate=$(awk "BEGIN{printf \"%.0f\", $N/$wall}")
    printf '{"impl":"%s","round":%s,"delay_ms_each_way":%s,"rtt_ms":%s,"http_rtt_ms":%s,"concurrency":"%s","n":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"max_rss_kb":%s,"msgs_s":%s,"loadavg":"%s","ok":%s}\n' \
        "$name" "$round" "$delay" "$((2 * delay))" "${RTT[$delay]}" "${CONC:-default}" "$N" "$wall" "$user" "$sys" "$rss" "$rate" "$load" "$ok" >>"$RUNS"
    log "$name round $round, RTT $((2 * delay)) ms: ${wall}s wall, $rate msgs/s, load $load, ok=$ok"
}
one_setting() { # DELAY ROUND
    if want etlua; then
        if [ -n "$CONC" ]; then
            ETLUA_RECEIVE_CONCURRENCY=$CONC run_one etlua "$1" "$2" "$N" build-bench/etlua scripts/login_etl.lua --drain
        else
            run_one etlua "$1" "$2" "$N" build-bench/etlua scripts/login_etl.lua --drain
        fi
    fi
    if want bare; then
        LUA_CPATH='build-bench/?.so;;' run_one bare "$1" "$2" 0 lua5.4 bench/bare_drain.lua pipe "${CONC:-64}"
    fi
    if want tuned; then
        AWS_DATA_PATH="$WORK/botocore-data" run_one tuned "$1" "$2" "$N" "$PY" bench/baseline_tuned.py
    fi
}
want tuned && "$PY" "$ROOT/bench/sqs_json_model.py" "$WORK/botocore-data"
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="0 $DELAY"; else order="$DELAY 0"; fi
    for d in $order; do one_setting "$d" "$round"; done
done

mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-netem-n$N.json"
echo
echo "N = $N, Postgres $(pg_mode) on loopback, emulator in a namespace; delay: $METHOD"
"$PY" - "$RUNS" "$out" "$METHOD" "$(git describe --always --dirty)" "$(pg_mode)" "$((2 * DELAY))" <<'PYEOF'
import json, os, platform, statistics, sys
runs_path, out, method, git, pg, rtt = sys.argv[1:7]
rtt = int(rtt)
runs = [json.loads(l) for l in open(runs_path)]
print("\n| impl | round | RTT ms | HTTP round trip ms | msgs/s | wall s | CPU s | peak RSS MiB | load avg (1/5/15 min) | ok |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in runs:
    print(f"| {r['impl']} | {r['round']} | {r['rtt_ms']} | {r['http_rtt_ms']} | {r['msgs_s']:,} | {r['wall_s']:.2f} | "
          f"{r['user_s'] + r['sys_s']:.2f} | {r['max_rss_kb'] // 1024} | {r['loadavg']} | {r['ok']} |")
summary = {}
for impl in dict.fromkeys(r["impl"] for r in runs):
    med = {}
    for d in (0, rtt):
        rates = [r["msgs_s"] for r in runs if r["impl"] == impl and r["rtt_ms"] == d and r["ok"]]
        med[d] = statistics.median(rates) if rates else None
    ratio = med[rtt] / med[0] if med[0] and med[rtt] else None
    summary[impl] = {"median_msgs_s_0ms": med[0], f"median_msgs_s_{rtt}ms": med[rtt], "ratio": ratio}
    line = f"{impl}: median {med[0]:,.0f} msgs/s at 0 ms, {med[rtt]:,.0f} at {rtt} ms RTT" if ratio else f"{impl}: no ratio (failed runs)"
    if ratio:
        line += f": ratio {ratio:.2f}"
        if impl == "etlua":
            summary[impl]["goal"] = 0.8
            summary[impl]["goal_met"] = ratio >= 0.8
            line += f" (goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})"
    print(line)
json.dump({"host": platform.node(), "cpus": os.cpu_count(), "delay_method": method, "git": git,
           "postgres": pg, "rtt_ms": rtt, "summary": summary, "runs": runs}, open(out, "w"), indent=1)
PYEOF
log "raw results: $out"
