#!/usr/bin/env bash
# tests/integration/memcheck.sh: valgrind memcheck of a real drain and of the C unit tests.
# The drain: a few hundred messages (the sample, the contract's cases, every hostile body of
# hostile.py, generated logins) from fauxqs into a throwaway Postgres, etlua wrapped in
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
# and checked exact against the oracle; then every tests/c unit test, and the etlua.pg/etlua.sink
# specs (tests/integration/sink_spec.lua: lua5.4 + busted + etlua.so, the wait hook included),
# under the same options.
# valgrind cannot run ASan binaries: when ETLUA_BIN is a sanitizer build, the test configures and
# builds a plain RelWithDebInfo etlua of its own in ETLUA_MEMCHECK_BUILD (default
# <repo>/build-memcheck). Exit 77 (skipped) when valgrind is not installed.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "memcheck: valgrind not installed; skipped"; exit 77; }

bin=$ETLUA_BIN
build=$(cd "$(dirname "$bin")" && pwd)
if ldd "$bin" | grep 'libasan\|libubsan' >/dev/null; then  # not grep -q: with pipefail, ldd's SIGPIPE would fail the test
  build=${ETLUA_MEMCHECK_BUILD:-$ROOT/build-memcheck}
  { cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DETLUA_SANITIZE=OFF -DETLUA_FUZZ=OFF &&
    cmake --build "$build" -j2; } >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; fail "plain build for valgrind failed"; }
  bin=$build/etlua
  ok "ETLUA_BIN is a sanitizer build: memcheck uses a plain build in $build"
fi
vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-fds=no --num-callers=30)

start_pg
start_sqs fauxqs
input=$WORK/input.jsonl
{
  cat "$ROOT/data/login-sample.jsonl"
  python3 -c 'import json,sys; [print(json.loads(l)["body"]) for l in open(sys.argv[1])]' "$ROOT/spec/data/cases.jsonl"
  python3 "$ROOT/tests/integration/hostile.py"
  python3 "$ROOT/tests/harness/gen_logins.py" 200 --seed 17
} >"$input"
send "$input"
total=$(wc -l <"$input")

rc=0
ETLUA_BATCH_SIZE=100 "${vg[@]}" --log-file="$WORK/vg.drain.%p" "$bin" "$ROOT/scripts/login_etl.lua" --drain \
  2>"$WORK/etlua.log" || rc=$?
if [ "$rc" != 0 ]; then
  cat "$WORK"/vg.drain.* >&2; tail -5 "$WORK/etlua.log" >&2
  fail "etlua --drain under valgrind exited $rc (99: memcheck errors or definite leaks)"
fi
python3 "$ROOT/tests/integration/check_tables.py" "$input" --key "$ETLUA_MASK_KEY" >"$WORK/check.out" 2>&1 \
  || { cat "$WORK/check.out" >&2; fail "tables differ from the oracle"; }
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "drain of $total messages (hostile bodies included) under memcheck: no errors, no definite leaks, exact"
grep -h "definitely lost\|ERROR SUMMARY" "$WORK"/vg.drain.* | sed 's/^==[0-9]*== */    /'

n=0
for t in "$build"/test_*; do
  [ -x "$t" ] || continue
  "${vg[@]}" --log-file="$WORK/vg.$(basename "$t")" "$t" >"$WORK/$(basename "$t").out" 2>&1 \
    || { cat "$WORK/vg.$(basename "$t")" "$WORK/$(basename "$t").out" >&2; fail "$(basename "$t") under memcheck"; }
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no C unit tests in $build"
ok "$n C unit tests under memcheck: no errors, no definite leaks"

# shellcheck disable=SC1091
. "$WORK/pg/env"
(cd "$ROOT/tests/integration" &&
  LUA_PATH="$ROOT/src/lua/?.lua;$ROOT/tests/integration/?.lua;;" LUA_CPATH="$build/?.so;;" ETLUA_PG_DIR=$WORK/pg \
  ETLUA_PG_SH=$ROOT/tests/harness/pg.sh DATABASE_URL=${DATABASE_URL:-} \
  "${vg[@]}" --log-file="$WORK/vg.sink_spec.%p" lua5.4 "$(command -v busted)" --output=TAP sink_spec.lua) \
  >"$WORK/sink_spec.out" 2>&1 || { cat "$WORK"/vg.sink_spec.* >&2; tail -20 "$WORK/sink_spec.out" >&2; fail "sink_spec.lua under memcheck"; }
ok "sink_spec.lua (etlua.pg incl. the wait hook, etlua.sink) under memcheck: $(grep -c '^ok' "$WORK/sink_spec.out") passed, no errors, no definite leaks"
