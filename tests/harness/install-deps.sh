#!/usr/bin/env bash
# Install everything etlua needs to build, test and run, on Debian 12, as root. Idempotent and
# quiet: one line per step, the details in $ETLUA_DEPS_LOG (default /tmp/etlua-install-deps.log).
# Skips apt entirely when every package is already installed. The system PostgreSQL cluster is
# not started (tests run their own, tests/harness/pg.sh). Ends with `npm ci` in the repository
# root for the SQS emulators (skipped when node_modules matches package-lock.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log="${ETLUA_DEPS_LOG:-/tmp/etlua-install-deps.log}"
: >"$log"

step() { printf 'install-deps: %s\n' "$*"; }
fail() { echo "install-deps: FAILED: $* (see $log)" >&2; tail -n 20 "$log" >&2; exit 1; }

packages=(
  cmake pkg-config gcc make
  liblua5.4-dev lua5.4 lua-cjson lua-busted
  libcurl4-openssl-dev libpq-dev libssl-dev libexpat1-dev
  postgresql
  python3 python3-botocore python3-boto3 python3-psycopg2 python3-yaml
  clang libclang-rt-14-dev valgrind libmicrohttpd-dev
  cppcheck lua-check clang-format
  iproute2 procps curl ca-certificates
  prometheus
)
# node 20 + npm are on the development machines already; Debian's only when node is missing.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs npm); fi
if ! command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  [[ "$status" == ii* ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  step "apt: all ${#packages[@]} packages present"
else
  [[ "$(id -u)" == 0 ]] || fail "missing packages (${missing[*]}) and not root"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the system cluster from starting during the install (no init system here anyway).
  policy_added=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  step "apt-get update"
  apt-get update >>"$log" 2>&1 || fail "apt-get update"
  step "apt-get install ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || fail "apt-get install"
  if [[ $policy_added == 1 ]]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

if [[ -f "$root/package-lock.json" ]]; then
  # npm ci wipes and reinstalls node_modules: skip it when the installed tree matches the lock.
  if [[ -f "$root/node_modules/.package-lock.json" ]] && \
     node -e '
       const fs = require("fs");
       const lock = JSON.parse(fs.readFileSync(process.argv[1] + "/package-lock.json")).packages;
       const have = JSON.parse(fs.readFileSync(process.argv[1] + "/node_modules/.package-lock.json")).packages;
       for (const [k, v] of Object.entries(lock)) {
         if (k === "" || v.optional || v.peer) continue;
         if (!have[k] || have[k].version !== v.version) process.exit(1);
       }' "$root" >>"$log" 2>&1; then
    step "npm: node_modules matches package-lock.json"
  else
    step "npm ci"
    (cd "$root" && npm ci --no-audit --no-fund >>"$log" 2>&1) || fail "npm ci"
  fi
fi
step "done"
