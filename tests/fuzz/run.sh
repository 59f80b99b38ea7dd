#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]: build the libFuzzer targets with clang
# (ASan + UBSan) in a build dir of their own and run each for SECONDS_PER_TARGET (default 10) on
# a temporary copy of its seed corpus (tests/fuzz/corpus/<target>/), so nothing is written into
# the repository. TARGET: sqs_query, sqs_json, ... (default: every tests/fuzz/fuzz_*.c).
# Fails when any target finds a crash, leak, timeout or out-of-memory; the inputs that did are
# kept in $ETLUA_FUZZ_BUILD/artifacts/. Prints the executions of each target and the total.
# Environment: ETLUA_FUZZ_BUILD  build dir (default <repo>/build-fuzz)
#              ETLUA_FUZZ_CC     compiler (default clang)
#              ETLUA_FUZZ_JOBS   targets fuzzed at the same time (default 1)
# Exit status 77 (ctest: skipped) when the compiler is not installed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-10}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac
build=${ETLUA_FUZZ_BUILD:-$root/build-fuzz}
cc=${ETLUA_FUZZ_CC:-clang}
jobs=${ETLUA_FUZZ_JOBS:-1}

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz: $cc not found, skipping" >&2
  exit 77
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$root"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
  done
fi

echo "== fuzz: building in $build"
mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DETLUA_FUZZ=ON \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" --target fuzz -j"$(nproc)"; } >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log" >&2
  echo "fuzz: build failed (log: $build/fuzz-build.log)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/etlua-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; its output goes to $work/<t>.log, its exit status to $work/<t>.rc.
run_one() {
  local t=$1 bin="$build/fuzz_$1" dir="$work/$1" rc=0
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [ -d "$root/tests/fuzz/corpus/$t" ]; then
    cp -R "$root/tests/fuzz/corpus/$t/." "$dir/corpus/"
  fi
  local extra=()
  [ -f "$root/tests/fuzz/corpus/$t.dict" ] && extra+=("-dict=$root/tests/fuzz/corpus/$t.dict")
  "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "${extra[@]}" "$dir/corpus" >"$work/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t.rc"
}

echo "== fuzz: ${#targets[@]} targets, ${secs} s each"
running=0
for t in "${targets[@]}"; do
  if [ ! -x "$build/fuzz_$t" ]; then
    echo "fuzz: no target fuzz_$t" >&2
    exit 2
  fi
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

total=0
failed=0
for t in "${targets[@]}"; do
  rc=$(cat "$work/$t.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  execs=${execs:-0}
  found=$(find "$work/$t/artifacts" -type f | wc -l)
  ncorpus=$(find "$work/$t/corpus" -type f | wc -l)
  total=$((total + execs))
  printf '%-22s %12s execs  corpus %5s  findings %s  exit %s\n' "fuzz_$t" "$execs" "$ncorpus" \
    "$found" "$rc"
  if [ "$rc" != 0 ] || [ "$found" != 0 ]; then
    failed=1
    mkdir -p "$build/artifacts"
    find "$work/$t/artifacts" -type f -exec cp {} "$build/artifacts/" \;
    echo "---- fuzz_$t (last lines of its log; inputs kept in $build/artifacts/)" >&2
    # the report from its first line (sanitizer, libFuzzer), then where the input went
    grep -v '^#[0-9]' "$work/$t.log" |
      sed -n '/ERROR: \|runtime error:\|==ERROR\|WARNING: /,$p' | head -45 >&2
    grep -v '^#[0-9]' "$work/$t.log" | tail -8 >&2
  fi
done
printf '%-22s %12s execs\n' "total" "$total"
if [ "$failed" != 0 ]; then
  echo "fuzz: FAILED" >&2
  exit 1
fi
echo "fuzz: ok, no crash, leak or timeout"
