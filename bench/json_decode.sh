#!/usr/bin/env bash
# bench/json_decode.sh [N] [--rounds R]: decode/encode cost per message, lua-cjson vs etlua.json
# (bench/json_decode.lua), on data/login-sample.jsonl and N generated login bodies
# (tests/harness/gen_logins.py N, seed 7; N default 100000). Builds a Release etlua.so in
# build-bench/ (BENCH_REBUILD=0 reuses it), never the sanitizer build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
[ $# -gt 0 ] && shift
build=$root/build-bench
if [ "${BENCH_REBUILD:-1}" != 0 ] || [ ! -f "$build/etlua.so" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DETLUA_TESTS=OFF >/dev/null
  cmake --build "$build" --target etlua_lua -j2 >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/etlua-json-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$root/tests/harness/gen_logins.py" "$n" >"$work/logins-$n.jsonl"
LUA_CPATH="$build/?.so;;" lua5.4 "$root/bench/json_decode.lua" \
  "$root/data/login-sample.jsonl" "$work/logins-$n.jsonl" "$@"
