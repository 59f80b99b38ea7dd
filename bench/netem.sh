#!/usr/bin/env bash
# bench/netem.sh [N] [--concurrency "8 16 32 64"] [--delay-ms D] [--only etlua,bare,tuned]
#
# etlua with round-trip delay between it and the SQS emulator (as root). Creates a network
# namespace with a veth pair (10.213.77.0/30 unless taken: host .1, namespace .2; nothing else
# is touched, loopback included), runs fauxqs inside the namespace, delays D ms (default 10)
# each way = 2D ms RTT, loads N messages (default 50000) and runs, for each concurrency,
# etlua --drain (ETLUA_RECEIVE_CONCURRENCY=C; Postgres stays on the host's loopback) and the
# bare drain (bench/bare_drain.lua pipe C); tuned Python once if asked. Prints msgs/s; writes
# bench/results/<UTC>-netem-n<N>.json. Everything is torn down by a trap.
#
# The delay: `tc qdisc add dev VETH root netem delay Dms` on both ends when the kernel has
# sch_netem; otherwise (this container's kernel: CONFIG_NET_SCH_NETEM is not set) a user-space
# forwarder inside the namespace (bench/delay_proxy.py) holds each chunk D ms in each direction.
# The script says which one it used.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=50000 CONC="8 16 32 64" DELAY=10 ONLY=etlua,bare
while [ $# -gt 0 ]; do
    case "$1" in
        --concurrency) CONC=$2; shift 2 ;;
        --delay-ms) DELAY=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        [0-9]*) N=$1; shift ;;
        *) echo "usage: bench/netem.sh [N] [--concurrency \"8 16 32\"] [--delay-ms D] [--only etlua,bare,tuned]" >&2; exit 2 ;;
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
PROXY_PID=
cleanup() {
    set +e
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
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
if tc qdisc add dev "$VH" root netem delay "${DELAY}ms" 2>/dev/null &&
   ip netns exec "$NS" tc qdisc add dev "$VN" root netem delay "${DELAY}ms" 2>/dev/null; then
    METHOD="tc netem delay ${DELAY}ms on both veth ends"; PROXY_DELAY=0
else
    tc qdisc del dev "$VH" root 2>/dev/null || true
    METHOD="user-space delay forwarder ${DELAY}ms each way (bench/delay_proxy.py; this kernel has no sch_netem)"
    PROXY_DELAY=$DELAY
fi
log "delay: $METHOD"

"$ROOT/tests/harness/pg.sh" start "$WORK/pg"
# shellcheck disable=SC1091
. "$WORK/pg/env"
ip netns exec "$NS" "$ROOT/tests/harness/sqs.sh" start fauxqs "$WORK/sqs" >&2
# shellcheck disable=SC1091
. "$WORK/sqs/fauxqs.env"
INNER_EP=$AWS_ENDPOINT_URL PORT=${AWS_ENDPOINT_URL##*:}
ip netns exec "$NS" "$PY" "$ROOT/bench/delay_proxy.py" "$NS_IP" "$PORT" 127.0.0.1 "$PORT" "$PROXY_DELAY" >"$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/proxy.out" 2>/dev/null && break; sleep 0.05; done
export AWS_ENDPOINT_URL="http://$NS_IP:$PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export ETLUA_MASK_KEY=${ETLUA_MASK_KEY:-bench-mask-key-0123456789abcdef0123456789abcdef}
# queue maintenance runs inside the namespace, on the emulator's own loopback (no delay)
sqsjs() { local cmd=$1; shift 2; ip netns exec "$NS" node "$ROOT/tests/harness/sqs.js" "$cmd" "$INNER_EP" "$@"; }
rtt=$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_connect}\n' -X POST "$AWS_ENDPOINT_URL/"; done | sort -n | sed -n 3p)
log "TCP connect time host -> emulator (median of 5): ${rtt}s"

"$PY" tests/harness/gen_logins.py "$N" >"$WORK/bodies.jsonl"
RUNS="$WORK/runs.jsonl"; : >"$RUNS"
run_one() { # NAME CONC WANT_ROWS CMD...
    local name=$1 conc=$2 wantrows=$3; shift 3
    reset_state; load_queue "$WORK/bodies.jsonl" "$N"
    local rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    local wall user sys rss got d ok=true
    read -r wall user sys rss < <(tail -n 1 "$WORK/time.txt")
    got=$(rows); d=$(depth)
    [ "$rc" = 0 ] && [ "$got" = "$wantrows" ] && [ "$d" = "0 0" ] || { ok=false; log "$name FAILED: exit $rc rows $got queue '$d'"; tail -n 3 "$WORK/err" >&2; }
    local rate; rate=$(awk "BEGIN{printf \"%.0f\", $N/$wall}")
    printf '{"impl":"%s","concurrency":%s,"n":%s,"rtt_ms":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"max_rss_kb":%s,"msgs_s":%s,"ok":%s}\n' \
        "$name" "$conc" "$N" "$((2 * DELAY))" "$wall" "$user" "$sys" "$rss" "$rate" "$ok" >>"$RUNS"
    printf '| %s | %s | %s | %s | %.2f | %d | %s |\n' "$name" "$conc" "$rate" "$wall" "$(awk "BEGIN{print $user+$sys}")" "$((rss / 1024))" "$ok" >>"$WORK/table.md"
    log "$name C=$conc: ${wall}s wall, $rate msgs/s, ok=$ok"
}
printf '| implementation | in flight | msgs/s | wall s | CPU s | peak RSS MiB | ok |\n|---|---:|---:|---:|---:|---:|---|\n' >"$WORK/table.md"
for c in $CONC; do
    want etlua && ETLUA_RECEIVE_CONCURRENCY=$c run_one etlua "$c" "$N" build-bench/etlua scripts/login_etl.lua --drain
    want bare && LUA_CPATH='build-bench/?.so;;' run_one bare "$c" 0 lua5.4 bench/bare_drain.lua pipe "$c"
done
if want tuned; then
    "$PY" "$ROOT/bench/sqs_json_model.py" "$WORK/botocore-data"
    AWS_DATA_PATH="$WORK/botocore-data" run_one tuned 4 "$N" "$PY" bench/baseline_tuned.py
fi
echo
echo "N = $N, RTT $((2 * DELAY)) ms host <-> emulator ($METHOD), Postgres on loopback"
cat "$WORK/table.md"
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)-netem-n$N.json"
"$PY" - "$RUNS" "$out" "$METHOD" "$(git describe --always --dirty)" <<'PYEOF'
import json, sys, platform, os
runs = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"host": platform.node(), "cpus": os.cpu_count(), "delay_method": sys.argv[3],
           "git": sys.argv[4], "runs": runs}, open(sys.argv[2], "w"), indent=1)
PYEOF
log "raw results: $out"
