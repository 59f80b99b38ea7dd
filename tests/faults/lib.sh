# tests/faults/lib.sh: shared plumbing of the fault tests (sourced, not run).
#
# Each test gets its own throwaway Postgres (tests/harness/pg.sh) and fauxqs (tests/harness/sqs.sh),
# both on 127.0.0.1, in a mktemp directory; an EXIT/INT/TERM trap stops every process the test
# started (by pid) and removes the directory, even on failure (FAULTS_KEEP=1 keeps the directory).
#
#   ETLUA_BIN    the etlua executable (default: build/etlua of this checkout)
#   FAULTS_KEEP  1: keep the work directory (logs) after the run
#
# Figures for run_all.sh: a test appends "key=value" lines to $FAULTS_RESULT when that is set.

FAULTS_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FAULTS_HERE/../.." && pwd)"
HARNESS="$ROOT/tests/harness"
ETLUA_BIN="${ETLUA_BIN:-$ROOT/build/etlua}"
export ETLUA_MASK_KEY="${ETLUA_MASK_KEY:-faults-test-key-0123456789abcdef0123456789}"
SCRIPT="$ROOT/scripts/login_etl.lua"
FAULT_PIDS=()      # background processes to stop at exit
FAULT_CLEANUPS=()  # extra commands to run at exit

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$FAULT_NAME" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

fault_cleanup() {
    local rc=$?
    set +e
    local pid c
    for pid in "${FAULT_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    for c in "${FAULT_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        "$HARNESS/sqs.sh" stop fauxqs "$WORK" >/dev/null 2>&1
        "$HARNESS/pg.sh" stop "$WORK/pg" >/dev/null 2>&1
        if [ "${FAULTS_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
            [ "$rc" != 0 ] && log "work directory kept for inspection: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

# fault_setup NAME VISIBILITY_S [pg.sh option...]: work dir, Postgres, fauxqs with login-queue.
# Postgres runs with its production defaults (pg.sh --durable: fsync, synchronous_commit and
# full_page_writes on): a fault test on a server that may lose commits could not see etlua lose one.
fault_setup() {
    FAULT_NAME="$1"
    local visibility="$2"
    shift 2
    [ -x "$ETLUA_BIN" ] || { echo "$FAULT_NAME: no etlua at $ETLUA_BIN (build it, or set ETLUA_BIN)" >&2; exit 1; }
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/etlua-faults-$FAULT_NAME.XXXXXX")"
    chmod 755 "$WORK" # the Postgres server runs as another user when we are root
    trap fault_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    "$HARNESS/pg.sh" start "$WORK/pg" --durable "$@" || die "could not start Postgres"
    "$HARNESS/sqs.sh" start fauxqs "$WORK" --visibility "$visibility" >/dev/null || die "could not start fauxqs"
    # shellcheck disable=SC1091
    source "$WORK/pg/env"
    # shellcheck disable=SC1091
    source "$WORK/fauxqs.env"
    FAUXQS_ENDPOINT="$AWS_ENDPOINT_URL"
    FAUXQS_QUEUE_URL="$SQS_QUEUE_URL"
    log "work $WORK; Postgres :$PGPORT (durable${*:+, $*}); fauxqs $FAUXQS_ENDPOINT (visibility ${visibility}s); etlua $ETLUA_BIN"
}

# load N: N bodies (about 4% of them invalid, every reject reason family) into the queue.
load() {
    python3 "$FAULTS_HERE/bodies.py" "$1" >"$WORK/bodies.jsonl"
    node "$HARNESS/sqs.js" send "$FAUXQS_ENDPOINT" "$FAUXQS_QUEUE_URL" "$WORK/bodies.jsonl" \
        --concurrency 8 >/dev/null 2>"$WORK/send.err" || { cat "$WORK/send.err" >&2; die "could not load the queue"; }
    log "loaded $1 messages"
}

depth() { node "$HARNESS/sqs.js" depth "$FAUXQS_ENDPOINT" "$FAUXQS_QUEUE_URL"; }

psql_q() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# ledger_count: rows in the ledger (0 before etlua made the table).
ledger_count() { psql_q "SELECT CASE WHEN to_regclass('etlua_ledger') IS NULL THEN 0 ELSE (SELECT count(*) FROM etlua_ledger) END" 2>/dev/null || echo 0; }

# drain_in_background LOG MIN TRIES WHAT: etlua --drain in the background (its pid in $pid and
# FAULT_PIDS), then waits until the ledger holds MIN entries (at most TRIES checks, 0.05 s apart);
# dies naming WHAT when etlua finishes first.
drain_in_background() {
    "$ETLUA_BIN" "$SCRIPT" --drain 2>"$1" &
    pid=$!
    FAULT_PIDS+=("$pid")
    for _ in $(seq 1 "$3"); do
        [ "$(ledger_count)" -ge "$2" ] && return 0
        kill -0 "$pid" 2>/dev/null || die "etlua finished before $4 (raise N)"
        sleep 0.05
    done
}

# await_drain WHAT: waits up to 120 s for the etlua of drain_in_background to exit (dies naming
# WHAT when it does not) and sets rc to its exit status.
await_drain() {
    rc=0
    for _ in $(seq 1 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && die "etlua did not finish within 120 s after $1"
    wait "$pid" || rc=$?
}

# drain_until_empty LOGPREFIX DEADLINE_EPOCH: etlua --drain again and again until depth is "0 0"
# (messages still invisible after a kill come back once their visibility timeout expires).
# Sets DRAIN_RUNS and DRAIN_FAILS (runs that exited non-zero).
drain_until_empty() {
    DRAIN_RUNS=0 DRAIN_FAILS=0
    local d
    while :; do
        DRAIN_RUNS=$((DRAIN_RUNS + 1))
        if ! "$ETLUA_BIN" "$SCRIPT" --drain 2>"$1.$DRAIN_RUNS.log"; then
            DRAIN_FAILS=$((DRAIN_FAILS + 1))
            log "final drain $DRAIN_RUNS exited non-zero: $(tail -1 "$1.$DRAIN_RUNS.log")"
        fi
        d="$(depth)"
        [ "$d" = "0 0" ] && break
        [ "$(date +%s)" -lt "$2" ] || die "queue not empty by the deadline (depth $d)"
        sleep 1
    done
}

# duplicates_in LOGS...: sum of duplicates=N over etlua's final "done"/"stopped" lines.
duplicates_in() {
    cat "$@" 2>/dev/null | sed -n 's/.* INFO \(done\|stopped\) .*duplicates=\([0-9]*\).*/\2/p' | awk '{s+=$1} END {print s+0}'
}

# check_exact: every message exactly once (check_tables.py against the oracle), the ledger holds
# each message id once, no reject row twice, queue depth 0 0. Sets EXACT_* figures.
check_exact() {
    local n total big=()
    n=$(grep -c . "$WORK/bodies.jsonl")
    [ "$n" -gt 20000 ] && big=(--expect-count)
    local d; d="$(depth)"
    [ "$d" = "0 0" ] || die "queue depth is '$d', expected '0 0'"
    python3 "$ROOT/tests/integration/check_tables.py" "$WORK/bodies.jsonl" "${big[@]}" >"$WORK/check.out" 2>&1 \
        || { cat "$WORK/check.out" >&2; die "tables differ from the oracle"; }
    sed 's/^/    /' "$WORK/check.out" >&2
    EXACT_LEDGER=$(psql_q "SELECT count(*) FROM etlua_ledger")
    local rej_dup rows rejects
    rej_dup=$(psql_q "SELECT count(*) - count(DISTINCT message_id) FROM user_logins_rejects")
    rows=$(psql_q "SELECT count(*) FROM user_logins")
    rejects=$(psql_q "SELECT count(*) FROM user_logins_rejects")
    total=$((rows + rejects))
    [ "$EXACT_LEDGER" = "$n" ] || die "ledger has $EXACT_LEDGER ids, expected $n"
    [ "$rej_dup" = 0 ] || die "$rej_dup reject rows stored twice"
    [ "$total" = "$n" ] || die "rows+rejects = $total, expected $n"
    EXACT_ROWS=$rows EXACT_REJECTS=$rejects EXACT_LOST=0 EXACT_DUPES=0
    log "exact: $n messages -> $rows rows + $rejects rejects, ledger $EXACT_LEDGER, depth 0 0, lost 0, duplicated 0"
}

result() { [ -n "${FAULTS_RESULT:-}" ] && printf '%s=%s\n' "$1" "$2" >>"$FAULTS_RESULT"; return 0; }
