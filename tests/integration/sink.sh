#!/usr/bin/env bash
# sink.sh [BUILD_DIR]: runs tests/integration/sink_spec.lua, outputs_spec.lua and ledger_spec.lua
# (busted under lua5.4) against a throwaway Postgres from tests/harness/pg.sh, which is stopped and
# removed however the run ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
[ -f "$build/etlua.so" ] || { echo "sink.sh: $build/etlua.so not built" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/etlua-pg.XXXXXX")
trap '"$root/tests/harness/pg.sh" stop "$dir"' EXIT
"$root/tests/harness/pg.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/env"

export LUA_PATH="$root/src/lua/?.lua;$here/?.lua;;" LUA_CPATH="$build/?.so;;"
export ETLUA_PG_DIR=$dir ETLUA_PG_SH=$root/tests/harness/pg.sh # for the restart test
# A sanitizer build of etlua.so loads into plain lua5.4 only with the ASan runtime preloaded
# (for busted and the lua5.4 processes it spawns; not for pg.sh, which runs setuid tools).
preload=
if ldd "$build/etlua.so" | grep libasan >/dev/null; then preload=$(gcc -print-file-name=libasan.so); fi
cd "$here"
LD_PRELOAD=$preload ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
    lua5.4 /usr/bin/busted --output=TAP sink_spec.lua outputs_spec.lua ledger_spec.lua
