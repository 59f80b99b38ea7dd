#!/usr/bin/env bash
# tests/integration/progress.sh: a --drain on a terminal shows a live progress line on stderr
# (done, rate, rejects, messages left); with stderr not a terminal there is none.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua
python3 "$ROOT/tests/harness/gen_logins.py" 30000 --seed 31 >"$WORK/input.jsonl"

send "$WORK/input.jsonl"
# `script` gives etlua a pseudo-terminal: what a person at a terminal sees lands in the file.
script -qec "$ETLUA_BIN $script --drain" "$WORK/tty.out" >/dev/null </dev/null || fail "drain on a terminal failed"
grep -aq $'\r''etlua: [0-9]* done, [0-9]* msg/s, [0-9]* rejected, ~[0-9]* left' "$WORK/tty.out" \
  || { cat -v "$WORK/tty.out" | tail -5 >&2; fail "no progress line on a terminal"; }
ok "on a terminal: $(grep -ao 'etlua: [0-9]* done[^'$'\r'']*left' "$WORK/tty.out" | tail -1)"

send "$WORK/input.jsonl"
"$ETLUA_BIN" "$script" --drain 2>"$WORK/plain.err" || fail "drain failed"
! grep -aq ' done, .* msg/s' "$WORK/plain.err" || fail "a progress line although stderr is a file"
! grep -aq $'\r' "$WORK/plain.err" || fail "carriage returns in a non-terminal stderr"
ok "stderr not a terminal: no progress line"
