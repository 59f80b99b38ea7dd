# tests/integration/lib.sh: shared set-up for the integration tests (sourced, not run).
# Gives each test a private directory, a throwaway Postgres, SQS emulators on 127.0.0.1, and a
# trap that stops all of them whatever happens. Secrets are distinctive strings, so a test can
# grep logs and tables for them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ETLUA_BIN=${ETLUA_BIN:-$ROOT/build/etlua}
WORK=$(mktemp -d /tmp/etlua-it.XXXXXX)
chmod 755 "$WORK"
STARTED_SQS=()
cleanup() {
  local rc=$?
  for name in "${STARTED_SQS[@]}"; do bash "$ROOT/tests/harness/sqs.sh" stop "$name" "$WORK" >/dev/null 2>&1 || true; done
  bash "$ROOT/tests/harness/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "(left $WORK for inspection)" >&2; fi
}
trap cleanup EXIT

export ETLUA_MASK_KEY="etlua-test-key-0123456789abcdef0123456789"
export AWS_ACCESS_KEY_ID="AKIAETLUATESTKEY0001"
export AWS_SECRET_ACCESS_KEY="etlua-secret-access-key-never-logged-0123"
unset AWS_SESSION_TOKEN AWS_PROFILE SQS_QUEUE DATABASE_URL || true

start_pg() {
  bash "$ROOT/tests/harness/pg.sh" start "$WORK/pg" >/dev/null
  # shellcheck disable=SC1091
  . "$WORK/pg/env"
}

start_sqs() { # NAME [--visibility S]
  local name=$1; shift
  bash "$ROOT/tests/harness/sqs.sh" start "$name" "$WORK" "$@" >/dev/null
  STARTED_SQS+=("$name")
  # shellcheck disable=SC1090
  . "$WORK/$name.env"
}

send() { node "$ROOT/tests/harness/sqs.js" send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$1" >/dev/null 2>&1; }
depth() { node "$ROOT/tests/harness/sqs.js" depth "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL"; }
psql_q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# stop_clean PID LOG [WHAT]: SIGTERM to etlua's PID, which must exit 0 (else its LOG is shown
# and the test fails, naming WHAT); sets t to the milliseconds from the signal to its exit.
stop_clean() {
  local t0 rc=0
  t0=$(date +%s%3N)
  kill -TERM "$1"
  wait "$1" || rc=$?
  # shellcheck disable=SC2034  # t is read by the caller
  t=$(( $(date +%s%3N) - t0 ))
  [ $rc -eq 0 ] || { cat "$2" >&2; fail "${3:+$3: }exit status $rc after SIGTERM"; }
}

# no_secrets FILE...: none of the secrets, nor the Postgres password, appears in the files.
no_secrets() {
  local f
  for f in "$@"; do
    for s in "$ETLUA_MASK_KEY" "$AWS_SECRET_ACCESS_KEY" "$PGPASSWORD"; do
      if grep -qF -- "$s" "$f"; then fail "a secret appears in $f"; fi
    done
  done
}

# no_raw_pii INPUT FILE...: no raw ip/device_id (6+ characters) of INPUT's bodies appears in the files.
no_raw_pii() {
  local input=$1; shift
  python3 - "$input" "$@" <<'PY'
import json, sys
values = set()
for line in open(sys.argv[1], encoding="utf-8", errors="surrogateescape"):
    try:
        rec = json.loads(line)
    except Exception:
        continue
    if isinstance(rec, dict):
        for k in ("ip", "device_id"):
            v = rec.get(k)
            if isinstance(v, str) and len(v) >= 6:
                values.add(v)
for path in sys.argv[2:]:
    text = open(path, encoding="utf-8", errors="replace").read()
    leaked = [v for v in values if v in text]
    if leaked:
        sys.exit("FAIL: %d raw ip/device_id values appear in %s, e.g. %r" % (len(leaked), path, leaked[0]))
PY
}
