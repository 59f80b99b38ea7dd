#!/usr/bin/env bash
# bench/scrub.sh [--rounds R]: the reject path of 1 MiB bodies of several shapes (digits, colons,
# quotes, free text with addresses, nested JSON) against a normal message (bench/scrub.lua).
# Builds a Release etlua.so in build-bench/ (BENCH_REBUILD=0 reuses it), never the sanitizer
# build. No services needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-bench
if [ "${BENCH_REBUILD:-1}" != 0 ] || [ ! -f "$build/etlua.so" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DETLUA_TESTS=OFF >/dev/null
  cmake --build "$build" --target etlua_lua -j2 >/dev/null
fi
LUA_CPATH="$build/?.so;;" LUA_PATH="$root/src/lua/?.lua;;" lua5.4 "$root/bench/scrub.lua" "$@"
