#!/usr/bin/env bash
# tests/integration/scale.sh [N] [PROCS]: scale-out with competing consumers.
# Loads N generated messages (plus N/100 invalid ones) into one fauxqs queue and drains them
# twice against one Postgres: first with 1 etlua process, then — tables emptied, the same
# bodies sent again — with PROCS etlua processes at once. After each run: every accepted
# message is exactly one row (check_tables.py --expect-count: rows and rejects per reason), the
# ledger holds exactly the number of messages sent, no message id is twice in the ledger or the
# rejects, no user_id (unique per generated body) is twice in user_logins, and the queue is
# empty. Prints both rates (messages / wall second, from the first process started to the last
# one done, including each process's final empty long poll) and their ratio.
# Defaults: N=50000, PROCS=4 (the issue's figure); ctest runs it at a CI size.
. "$(dirname "$0")/lib.sh"
n=${1:-50000} procs=${2:-4}

start_pg
start_sqs fauxqs
input=$WORK/input.jsonl
{
  python3 "$ROOT/tests/harness/gen_logins.py" "$n" --seed 31
  for i in $(seq 1 $((n / 100))); do echo "{\"user_id\":\"scale-reject-$i\",\"ip\":\"999.1.1.$i\"}"; done
} >"$input"
total=$(wc -l <"$input")

# run_drain K: K etlua --drain processes on the queue at once; prints the wall seconds.
run_drain() {
  local k=$1 pids=() i
  local t0 t1
  local fq0
  fq0=$(cpu_ticks "$(cat "$WORK/fauxqs.pid")")
  t0=$(date +%s.%N)
  for i in $(seq 1 "$k"); do
    "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain 2>"$WORK/etlua.$k.$i.log" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$WORK/etlua.$k.$((i + 1)).log" >&2; fail "process $((i + 1)) of $k exited non-zero"; }
  done
  t1=$(date +%s.%N)
  local fq1 cpu
  fq1=$(cpu_ticks "$(cat "$WORK/fauxqs.pid")")
  times >"$WORK/times.$k"   # no fork: this subshell's children, the etlua processes only
  cpu=$(tail -1 "$WORK/times.$k")
  python3 -c 'import os, sys
t = lambda s: sum(float(x.rstrip("s").split("m")[0]) * 60 + float(x.rstrip("s").split("m")[1]) for x in s.split())
hz = os.sysconf("SC_CLK_TCK")
print("%.2f %.2f %.2f" % (float(sys.argv[2]) - float(sys.argv[1]), t(sys.argv[3]), (int(sys.argv[5]) - int(sys.argv[4])) / hz))' \
    "$t0" "$t1" "$cpu" "$fq0" "$fq1"
}
# cpu_ticks PID: user + system clock ticks the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

check_exact() { # K
  local k=$1
  python3 "$ROOT/tests/integration/check_tables.py" "$input" --key "$ETLUA_MASK_KEY" --expect-count >"$WORK/check.$k.out" \
    || { cat "$WORK/check.$k.out" >&2; fail "$k process(es): counts differ from the oracle's"; }
  [ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = "$total" ] || fail "$k process(es): ledger does not hold $total ids"
  [ "$(psql_q 'SELECT count(*) FROM (SELECT digest FROM etlua_ledger GROUP BY 1 HAVING count(*) > 1) d')" = 0 ] \
    || fail "$k process(es): a message twice in the ledger"
  [ "$(psql_q 'SELECT count(*) FROM (SELECT message_id FROM user_logins_rejects GROUP BY 1 HAVING count(*) > 1) d')" = 0 ] \
    || fail "$k process(es): a message id twice in the rejects"
  [ "$(psql_q 'SELECT count(*) - count(DISTINCT user_id) FROM user_logins')" = 0 ] \
    || fail "$k process(es): a body landed twice in user_logins"
  [ $(( $(psql_q 'SELECT count(*) FROM user_logins') + $(psql_q 'SELECT count(*) FROM user_logins_rejects') )) = "$total" ] \
    || fail "$k process(es): rows + rejects != $total"
  [ "$(depth)" = "0 0" ] || fail "$k process(es): queue not empty: $(depth)"
}

send "$input"
read -r s1 c1 e1 <<<"$(run_drain 1)"
check_exact 1
ok "1 process: $total messages in ${s1} s, each landed exactly once"

psql_q "TRUNCATE user_logins, user_logins_rejects, etlua_ledger" >/dev/null
send "$input"
read -r sk ck ek <<<"$(run_drain "$procs")"
check_exact "$procs"
for i in $(seq 1 "$procs"); do
  grep -q " done .*received=[1-9]" "$WORK/etlua.$procs.$i.log" || fail "process $i of $procs received nothing: no competing consumers"
done
ok "$procs processes: $total messages in ${sk} s, each landed exactly once; every process took a share"
python3 - "$total" "$s1" "$sk" "$procs" "$WORK" "$c1" "$e1" "$ck" "$ek" <<'PY'
import re, sys
total, s1, sk, procs, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c1, e1, ck, ek = map(float, sys.argv[6:10])
shares = []
for i in range(1, procs + 1):
    m = re.search(r" done .*?received=(\d+)", open("%s/etlua.%d.%d.log" % (work, procs, i)).read())
    shares.append(int(m.group(1)) if m else 0)
r1, rk = total / s1, total / sk
print("scale: N=%d  1 process: %.0f msgs/s (%.2f s)  %d processes: %.0f msgs/s (%.2f s)  ratio %.2fx  shares %s"
      % (total, r1, s1, procs, rk, sk, rk / r1, shares))
print("scale: CPU seconds  1 process: etlua %.2f, emulator %.2f   %d processes: etlua %.2f, emulator %.2f   (%d vCPUs)"
      % (c1, e1, procs, ck, ek, __import__("os").cpu_count()))
PY
