#!/usr/bin/env bash
# tests/demo.sh: the main job end to end, on a fresh Debian 12 machine as root.
# Installs what it needs, builds etlua, starts a throwaway Postgres and an SQS emulator
# (local-aws-sqs, in the query protocol the take-home's LocalStack image speaks) on 127.0.0.1,
# loads the sample messages kept in the repo (data/login-sample.jsonl), runs
# `etlua scripts/login_etl.lua --drain`, prints the table, and stops everything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

bash tests/harness/install-deps.sh
echo "== build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/tmp/etlua-demo-build.log 2>&1 &&
  cmake --build build -j"$(nproc)" >>/tmp/etlua-demo-build.log 2>&1 ||
  { tail -40 /tmp/etlua-demo-build.log; exit 1; }

WORK=$(mktemp -d /tmp/etlua-demo.XXXXXX)
chmod 755 "$WORK"
stop() {
  bash tests/harness/sqs.sh stop local-aws-sqs "$WORK" >/dev/null 2>&1 || true
  bash tests/harness/pg.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop EXIT

echo "== start Postgres and the SQS emulator on 127.0.0.1"
bash tests/harness/pg.sh start "$WORK/pg" >/dev/null
bash tests/harness/sqs.sh start local-aws-sqs "$WORK"
. "$WORK/pg/env"
. "$WORK/local-aws-sqs.env"

echo "== load data/login-sample.jsonl into login-queue"
node tests/harness/sqs.js send "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL" data/login-sample.jsonl

echo "== etlua scripts/login_etl.lua --drain"
openssl rand -hex 32 >"$WORK/mask.key"           # the HMAC key: a secret, kept out of logs
export ETLUA_MASK_KEY_FILE=$WORK/mask.key ETLUA_SQS_PROTOCOL=query
./build/etlua scripts/login_etl.lua --drain

echo "== the queue now holds (visible, in flight): $(node tests/harness/sqs.js depth "$AWS_ENDPOINT_URL" "$SQS_QUEUE_URL")"
echo "== user_logins"
psql -X -P pager=off -c "SELECT * FROM user_logins ORDER BY user_id LIMIT 15" \
     -c "SELECT count(*) AS rows, count(DISTINCT masked_ip) AS distinct_ips,
                count(DISTINCT masked_device_id) AS distinct_devices FROM user_logins" \
     -c "SELECT masked_ip, count(*) AS logins FROM user_logins GROUP BY 1 HAVING count(*) > 1
         ORDER BY 2 DESC, 1 LIMIT 5"
echo "== user_logins_rejects"
psql -X -P pager=off -c "SELECT message_id, reason, detail, left(body, 80) AS body FROM user_logins_rejects"
