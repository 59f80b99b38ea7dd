#!/usr/bin/env bash
# tests/faults/sqs_faults.sh [N] [BLACKOUT_S]: SQS misbehaves. etlua talks to fauxqs through
# tests/faults/proxy.py, which answers a share of requests with 503, a ThrottlingException,
# a connection reset (before or after the upstream acted) or a stall, and once the drain is
# under way blacks out everything for BLACKOUT_S seconds (default 30; first half refused,
# second half blackholed). N messages (default 5000), queue visibility 10 s.
#
# etlua --drain is run again after it exits while the queue is not empty (a run that could not
# finish may exit non-zero; nothing is lost, the next run carries on), until depth is "0 0".
# Asserts: exactness (check_exact); the whole run inside TIME_BOUND seconds (default 180);
#          no etlua exit outside the blackout window (transient faults must be retried);
#          with SQS_FAULTS_STRICT=1 also no exit at all (one run survives the blackout).
# Prints: the faults injected by kind, etlua exits (in / outside the blackout), elapsed time.
# Env: P503 PTHROTTLE PRESET PSTALL STALL_S (fault shares, seconds), TIME_BOUND, SQS_FAULTS_STRICT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-5000}"
BLACKOUT="${2:-30}"
TIME_BOUND="${TIME_BOUND:-180}"
fault_setup sqs_faults 10
load "$N"
started=$(date +%s)

python3 "$FAULTS_HERE/proxy.py" --upstream "$FAUXQS_ENDPOINT" --port-file "$WORK/proxy.port" \
    --control-port-file "$WORK/proxy.control" --p503 "${P503:-0.03}" --pthrottle "${PTHROTTLE:-0.03}" \
    --preset "${PRESET:-0.02}" --pstall "${PSTALL:-0.005}" --stall-s "${STALL_S:-3}" \
    >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
proxy_pid=$!
FAULT_PIDS+=("$proxy_pid")
for _ in $(seq 1 100); do [ -s "$WORK/proxy.control" ] && break; sleep 0.05; done
[ -s "$WORK/proxy.control" ] || { cat "$WORK/proxy.err" >&2; die "proxy did not start"; }
PROXY="$(head -1 "$WORK/proxy.port")"
CONTROL="$(head -1 "$WORK/proxy.control")"
# etlua sees only the proxy: endpoint and queue URL (same path; the proxy rewrites the origin).
export AWS_ENDPOINT_URL="$PROXY" SQS_QUEUE_URL="$PROXY/${FAUXQS_QUEUE_URL#http://*/}"
log "proxy $PROXY (control $CONTROL); etlua's queue URL $SQS_QUEUE_URL"

# The blackout starts once a third of the messages are committed.
(
    for _ in $(seq 1 6000); do
        [ "$(ledger_count)" -ge $((N / 3)) ] && break
        sleep 0.1
    done
    curl -s -X POST "$CONTROL/blackout?seconds=$BLACKOUT&mode=mixed" >/dev/null
) &
FAULT_PIDS+=("$!")

runs=0 exits_in=0 exits_out=0
deadline=$((started + TIME_BOUND))
while :; do
    runs=$((runs + 1))
    rc=0
    "$ETLUA_BIN" "$SCRIPT" --drain 2>"$WORK/run.$runs.log" || rc=$?
    if [ "$rc" != 0 ]; then
        now=$(date +%s.%N)
        window=$(curl -s "$CONTROL/" | python3 -c "
import json,sys; b=json.load(sys.stdin)['blackout']
print('in' if b['start'] and b['start'] - 1 <= $now <= b['end'] + 3 else 'out')")
        if [ "$window" = in ]; then exits_in=$((exits_in + 1)); else exits_out=$((exits_out + 1)); fi
        log "etlua run $runs exited $rc ($window the blackout): $(tail -1 "$WORK/run.$runs.log" | cut -c1-220)"
    fi
    d="$(depth)"
    [ "$d" = "0 0" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || die "not drained within ${TIME_BOUND}s (depth $d)"
    [ "$rc" = 0 ] && sleep 1 # messages a lost answer took are invisible for up to 10 s
    [ "$rc" != 0 ] && sleep 0.5
done
elapsed=$(( $(date +%s) - started ))
stats="$(curl -s "$CONTROL/")"
kill -TERM "$proxy_pid" 2>/dev/null || true
dups=$(duplicates_in "$WORK"/run.*.log)
retries=$(cat "$WORK"/run.*.log | grep -c "retrying.*target=sqs" || true)
faults=$(python3 -c "
import json,sys; s=json.loads(sys.argv[1]); f=s['faults']
print('requests=%d forwarded=%d ' % (s['requests'], s['forwarded']) + ' '.join('%s=%d' % kv for kv in sorted(f.items())) + ' total=%d' % sum(f.values()))" "$stats")
log "faults injected: $faults"
log "etlua: $runs runs, $exits_in exits during the blackout, $exits_out exits outside it, $retries sqs retries, $dups ledger skips; ${elapsed}s"
check_exact
result sqs_faults.messages "$N"
result sqs_faults.faults "$(python3 -c "import json,sys; print(sum(json.loads(sys.argv[1])['faults'].values()))" "$stats")"
result sqs_faults.detail "$faults"
result sqs_faults.exits_blackout "$exits_in"
result sqs_faults.exits_other "$exits_out"
result sqs_faults.seconds "$elapsed"
result sqs_faults.lost 0
result sqs_faults.dupes_in_tables 0
[ "$elapsed" -le "$TIME_BOUND" ] || die "took ${elapsed}s, bound ${TIME_BOUND}s"
[ "$exits_out" = 0 ] || die "etlua exited $exits_out times outside the blackout (transient SQS faults must be retried)"
if [ "${SQS_FAULTS_STRICT:-0}" = 1 ] && [ "$exits_in" != 0 ]; then
    die "strict: etlua gave up $exits_in times during the ${BLACKOUT}s blackout"
fi
log "PASS: $N messages exact through $(python3 -c "import json,sys; print(sum(json.loads(sys.argv[1])['faults'].values()))" "$stats") injected faults in ${elapsed}s"
