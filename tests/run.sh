#!/usr/bin/env bash
# tests/run.sh: every test, from a clean clone on Debian 12, as root.
# Installs what it needs (Debian packages, the pinned npm emulators), builds etlua with
# AddressSanitizer + UndefinedBehaviorSanitizer, and runs ctest: C unit tests, the SigV4
# comparison with botocore, busted specs, the lint checks (label lint: cppcheck, luacheck,
# clang-format; tests/lint.cmake), and integration tests against a throwaway Postgres and the
# SQS emulators (all on 127.0.0.1, started and stopped by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/harness/install-deps.sh
echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DETLUA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >build-asan.log 2>&1 ||
  { cat build-asan.log; exit 1; }
cmake --build build-asan -j"$(nproc)" >>build-asan.log 2>&1 || { tail -50 build-asan.log; exit 1; }
echo "== ctest"
ctest --test-dir build-asan --output-on-failure --timeout 900 -j1 "$@"
