#!/usr/bin/env bash
# bench/profile.sh [N]: where etlua's CPU goes during a drain of N messages (default 5000).
#
# perf has no hardware counters in this sandbox (`perf stat -e instructions true` reports
# <not supported>), so this runs etlua under valgrind --tool=callgrind (instruction counts,
# not time) and prints the share per component (bench/callgrind_groups.py). Waiting (wall
# vs CPU) comes from bench/run.sh: callgrind slows the process ~50x, so its wall time means
# nothing. Writes bench/results/profile-<UTC timestamp>-n<N>.txt.
# PROFILE_TOOL=perf: perf record with the cpu-clock software event instead (time samples, by
# shared object and symbol; bench/results/profile-perf-<UTC>-n<N>.txt).
# With build-lua-symbols/ present (bench/lua_symbols.sh), etlua loads that liblua, so the
# interpreter's functions have names in both profiles.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-5000}
WORK=$(mktemp -d /tmp/etlua-prof.XXXXXX); chmod 755 "$WORK"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap 'stop_services; rm -rf "$WORK"' EXIT
cd "$ROOT"
build_etlua
start_services
"$PY" tests/harness/gen_logins.py "$N" >"$WORK/bodies.jsonl"
reset_state
load_queue "$WORK/bodies.jsonl" "$N"
if [ -f "$ROOT/build-lua-symbols/liblua5.4.so.0" ]; then
    export LD_LIBRARY_PATH="$ROOT/build-lua-symbols${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "liblua with symbols from build-lua-symbols/"
fi
if [ "${PROFILE_TOOL:-callgrind}" = perf ]; then
    # perf with the software cpu-clock event (no hardware counters here): time, not instructions
    log "etlua under perf record -e cpu-clock, N=$N"
    perf record -q -e cpu-clock -F 4999 -o "$WORK/perf.data" \
        build-bench/etlua scripts/login_etl.lua --drain 2>"$WORK/perf.err" >/dev/null
    got=$(rows); d=$(depth)
    [ "$got" = "$N" ] && [ "$d" = "0 0" ] || { log "drain incomplete: rows $got, queue $d"; exit 1; }
    mkdir -p bench/results
    out="bench/results/profile-perf-$(date -u +%Y%m%dT%H%M%SZ)-n$N.txt"
    {
        echo "etlua --drain of $N messages (fauxqs + Postgres), perf record -e cpu-clock, $(git rev-parse --short HEAD)"
        echo "By shared object:"
        perf report -i "$WORK/perf.data" --stdio --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 15
        echo
        echo "Top symbols:"
        perf report -i "$WORK/perf.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40
    } | tee "$out"
    log "written $out"
    exit 0
fi
log "etlua under callgrind, N=$N"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    build-bench/etlua scripts/login_etl.lua --drain 2>"$WORK/valgrind.err" >/dev/null
[ -n "${PROFILE_KEEP:-}" ] && cp "$WORK/callgrind.out" "$PROFILE_KEEP"
got=$(rows); d=$(depth)
[ "$got" = "$N" ] && [ "$d" = "0 0" ] || { log "drain incomplete: rows $got, queue $d"; exit 1; }
mkdir -p bench/results
out="bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)-n$N.txt"
{
    echo "etlua --drain of $N messages (fauxqs + Postgres), valgrind --tool=callgrind, $(git rev-parse --short HEAD)"
    "$PY" bench/callgrind_groups.py "$WORK/callgrind.out" build-bench/CMakeFiles/etlua_core.dir build-bench/CMakeFiles/etlua.dir
    echo
    echo "Top functions (exclusive Ir):"
    callgrind_annotate --inclusive=no "$WORK/callgrind.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 40
} | tee "$out"
log "written $out"
