# bench/lib.sh: shared by bench/run.sh and bench/profile.sh (sourced; expects ROOT and WORK).
PY=/usr/bin/python3   # Debian's python3 has boto3 + psycopg2; a pyenv python3 may come first

DDL="CREATE TABLE IF NOT EXISTS user_logins(
    user_id varchar(128), device_type varchar(32),
    masked_ip varchar(256), masked_device_id varchar(256),
    locale varchar(32), app_version integer, create_date date)"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_services() {
    "$ROOT/tests/harness/sqs.sh" stop fauxqs "$WORK/sqs" >/dev/null 2>&1 || true
    "$ROOT/tests/harness/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
}

# Postgres with the production defaults (fsync, synchronous_commit, full_page_writes on) unless
# BENCH_FSYNC_OFF=1 (run.sh --fsync-off): the fast test server, a labelled extra only.
pg_mode() { if [ "${BENCH_FSYNC_OFF:-0}" = 1 ]; then echo "fsync-off"; else echo "durable"; fi; }

start_services() {
    if [ "$(pg_mode)" = durable ]; then
        "$ROOT/tests/harness/pg.sh" start "$WORK/pg" --durable
    else
        "$ROOT/tests/harness/pg.sh" start "$WORK/pg"
    fi
    "$ROOT/tests/harness/sqs.sh" start fauxqs "$WORK/sqs" >&2
    # shellcheck disable=SC1091
    . "$WORK/pg/env"; . "$WORK/sqs/fauxqs.env"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    # Debian's botocore 1.29 speaks the query protocol to SQS; fauxqs only JSON.
    "$PY" "$ROOT/bench/sqs_json_model.py" "$WORK/botocore-data"
    export AWS_DATA_PATH="$WORK/botocore-data"
    export ETLUA_MASK_KEY=${ETLUA_MASK_KEY:-bench-mask-key-0123456789abcdef0123456789abcdef}
}

build_etlua() {
    if [ ! -x "$ROOT/build-bench/etlua" ] || [ ! -f "$ROOT/build-bench/etlua.so" ] || [ "${BENCH_REBUILD:-1}" = 1 ]; then
        log "building etlua (Release) in build-bench/"
        cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$ROOT/build-bench" -j2 >/dev/null
    fi
}

# build_base REV: etlua as it was at commit REV, for a same-run comparison: the tree from
# `git archive` (no worktree, nothing in the checkout changes) and its Release build, kept in
# build-base-<full rev>/ and reused. Prints that directory (src/ = the tree, build/ = the build).
build_base() {
    local rev dir
    rev=$(git -C "$ROOT" rev-parse --verify "$1^{commit}") || { log "--base $1: no such commit"; return 1; }
    dir="$ROOT/build-base-$rev"
    if [ ! -x "$dir/build/etlua" ]; then
        log "building etlua at $1 (Release) in ${dir#"$ROOT"/}/"
        rm -rf "$dir"; mkdir -p "$dir/src"
        git -C "$ROOT" archive "$rev" | tar -x -C "$dir/src"
        cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$dir/build" -j2 --target etlua >/dev/null
    fi
    # its Lua module too (etlua.so: the SQS client under its own bench/bare_drain.lua, base-bare)
    if [ ! -f "$dir/build/etlua.so" ]; then
        cmake --build "$dir/build" -j2 --target etlua_lua >/dev/null
    fi
    echo "$dir"
}

sqsjs() { node "$ROOT/tests/harness/sqs.js" "$@"; }
depth() { sqsjs depth "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL"; }
rows() { psql -XAtq -c "SELECT count(*) FROM user_logins"; }

# Empty the database (etlua's ledger, its queue stamps and partitions included) and the queue;
# create user_logins empty.
reset_state() {
    psql -XAtq -v ON_ERROR_STOP=1 \
        -c "SET client_min_messages = warning" -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" \
        -c "$DDL" >/dev/null
    sqsjs purge "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" >/dev/null
    local d; d=$(depth)
    [ "$d" = "0 0" ] || { log "queue not empty after purge: $d"; return 1; }
}

# Load the generated bodies ($1: file, $2: expected count) and check the depth.
load_queue() {
    sqsjs send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" "$1" --concurrency 16 >/dev/null
    local d; d=$(depth)
    [ "$d" = "$2 0" ] || { log "queue depth after load is '$d', want '$2 0'"; return 1; }
}
