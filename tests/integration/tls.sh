#!/usr/bin/env bash
# tests/integration/tls.sh: https endpoints are verified.
# A CA and a server certificate for 127.0.0.1 (openssl CLI, in the test's own directory) serve
# https in front of fauxqs (tests/faults/proxy.py --tls, every fault off). etlua against
# https://127.0.0.1:PORT must refuse it by default (the CA is in no trust store: one line naming
# the certificate problem, exit non-zero, nothing received) and accept it with AWS_CA_BUNDLE
# pointing at the CA: a real drain, exact against the oracle.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua

tls=$WORK/tls
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=etlua test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>"$tls/openssl.log" || { cat "$tls/openssl.log" >&2; fail "openssl (CA)"; }
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>>"$tls/openssl.log" || fail "openssl (CSR)"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/ext.cnf"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 2 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>>"$tls/openssl.log" || fail "openssl (server cert)"

python3 "$ROOT/tests/faults/proxy.py" --upstream "$AWS_ENDPOINT_URL" --port-file "$tls/port" \
  --p503 0 --pthrottle 0 --preset 0 --pstall 0 --tls "$tls/server.pem" "$tls/server.key" \
  >"$tls/proxy.out" 2>"$tls/proxy.err" &
proxy_pid=$!
trap 'kill $proxy_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$tls/port" ] && break; sleep 0.05; done
origin=$(cat "$tls/port")
case "$origin" in https://127.0.0.1:*) ;; *) fail "the proxy did not start: $(cat "$tls/proxy.err")" ;; esac

python3 "$ROOT/tests/harness/gen_logins.py" 200 --seed 11 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"
queue_url="$origin/${SQS_QUEUE_URL#http://*/}"

# 1. refused by default: the self-signed CA is not trusted
rc=0
AWS_ENDPOINT_URL=$origin SQS_QUEUE_URL=$queue_url "$ETLUA_BIN" "$script" --drain \
  >"$WORK/refused.out" 2>"$WORK/refused.err" || rc=$?
[ "$rc" != 0 ] || fail "etlua accepted an https endpoint whose certificate no trusted CA signed"
[ "$(wc -l <"$WORK/refused.err")" = 1 ] || { cat "$WORK/refused.err" >&2; fail "the refusal is not one line"; }
grep -qiE "certificate|SSL" "$WORK/refused.err" || { cat "$WORK/refused.err" >&2; fail "the refusal does not name the certificate problem"; }
[ "$(depth)" = "0 200" ] || [ "$(depth)" = "200 0" ] || fail "messages moved although the endpoint was refused: $(depth)"
ok "refused by default (exit $rc): $(cut -c1-200 "$WORK/refused.err")"

# 2. accepted with AWS_CA_BUNDLE = the CA: a real drain, exact
AWS_CA_BUNDLE=$tls/ca.pem AWS_ENDPOINT_URL=$origin SQS_QUEUE_URL=$queue_url \
  "$ETLUA_BIN" "$script" --drain 2>"$WORK/accepted.log" || { cat "$WORK/accepted.log" >&2; fail "drain with AWS_CA_BUNDLE failed"; }
grep -q "received=200" "$WORK/accepted.log" || { tail -3 "$WORK/accepted.log" >&2; fail "the drain did not receive 200 messages"; }
python3 "$ROOT/tests/integration/check_tables.py" "$WORK/input.jsonl" --key "$ETLUA_MASK_KEY" >"$WORK/check.out" 2>&1 \
  || { cat "$WORK/check.out" >&2; fail "tables differ from the oracle"; }
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
no_secrets "$WORK/refused.err" "$WORK/accepted.log"
ok "accepted with AWS_CA_BUNDLE: 200 messages drained over https, exact; depth 0 0"
