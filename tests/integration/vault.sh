#!/usr/bin/env bash
# tests/integration/vault.sh: the PII vault, end to end on real Postgres + fauxqs.
#  - a drain with ETLUA_VAULT_KEY lands the rows the oracle expects and seals every distinct
#    ip/device_id of them in etlua_vault.pii, in the same transactions (every mask in
#    user_logins has its vault row, and the vault has no other);
#  - `etlua reveal` gives back an IPv6 address (in canonical form: what was masked) and a
#    device_id; a mask not in the vault is "not found", exit 1;
#  - a wrong key, a flipped ciphertext byte, and a ciphertext moved to another row each fail
#    with one line, exit 1, and nothing on stdout;
#  - a dump of the vault schema holds no raw ip/device_id, and no secret is in the log;
#  - the README's GRANTs: an analyst role reads user_logins but not the vault;
#  - `etlua reveal --reencrypt` moves every row to a new key; the old key no longer reveals;
#  - a malformed key stops etlua at start-up with one line; without the key nothing is stored.
. "$(dirname "$0")/lib.sh"

start_pg
start_sqs fauxqs
VAULT_KEY=$(printf '5a17%.0s' $(seq 16))                         # 64 hex digits, distinctive
OTHER_KEY=$(printf 'c0de%.0s' $(seq 16))
input=$WORK/input.jsonl
{
  cat "$ROOT/data/login-sample.jsonl"
  echo '{"user_id":"vault-1","ip":"2001:0DB8:0000:0000:0000:0000:0000:0001","device_id":"vault-device-0001"}'
  echo '{"user_id":"vault-2","ip":"203.0.113.77","device_id":"vault-device-0002"}'
  echo '{"user_id":"vault-3","ip":"not-an-ip","device_id":"vault-device-rejected"}'  # a reject
  python3 "$ROOT/tests/harness/gen_logins.py" 1500 --seed 21
} >"$input"
send "$input"
total=$(wc -l <"$input")

# --- a malformed key is a one-line start-up error ---------------------------------------------
set +e
ETLUA_VAULT_KEY=0123 "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain 2>"$WORK/bad.log"
rc=$?
set -e
[ $rc -eq 1 ] && [ "$(wc -l <"$WORK/bad.log")" -eq 1 ] && grep -q "ETLUA_VAULT_KEY must hold 64 hex digits" "$WORK/bad.log" \
  || { cat "$WORK/bad.log" >&2; fail "a malformed vault key is not a one-line start-up error (rc $rc)"; }
[ "$(psql_q "SELECT count(*) FROM pg_namespace WHERE nspname = 'etlua_vault'")" = 0 ] || fail "schema made before the key was checked"
ok "a malformed vault key stops etlua at start-up with one line"

# --- drain with the key -----------------------------------------------------------------------
ETLUA_VAULT_KEY=$VAULT_KEY ETLUA_BATCH_SIZE=200 "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain \
  2>"$WORK/etlua.log" || { cat "$WORK/etlua.log" >&2; fail "drain with the vault key failed"; }
grep -q "vault=\"on, key id [0-9a-f]\{16\}\"" "$WORK/etlua.log" || fail "the start-up line does not say the vault is on"
python3 "$ROOT/tests/integration/check_tables.py" "$input" --key "$ETLUA_MASK_KEY" || fail "tables differ from the oracle"
ok "drained $total messages with the vault on; rows as the oracle expects"

missing=$(psql_q "SELECT (SELECT count(*) FROM (SELECT DISTINCT masked_ip FROM user_logins WHERE masked_ip IS NOT NULL) u
                   WHERE NOT EXISTS (SELECT 1 FROM etlua_vault.pii p WHERE p.field = 'ip' AND p.masked = u.masked_ip))
                + (SELECT count(*) FROM (SELECT DISTINCT masked_device_id FROM user_logins WHERE masked_device_id IS NOT NULL) u
                   WHERE NOT EXISTS (SELECT 1 FROM etlua_vault.pii p WHERE p.field = 'device_id' AND p.masked = u.masked_device_id))")
[ "$missing" = 0 ] || fail "$missing masks of user_logins have no vault row"
distinct=$(psql_q "SELECT (SELECT count(DISTINCT masked_ip) FROM user_logins) + (SELECT count(DISTINCT masked_device_id) FROM user_logins)")
[ "$(psql_q 'SELECT count(*) FROM etlua_vault.pii')" = "$distinct" ] || fail "vault rows != $distinct distinct masks"
[ "$(psql_q "SELECT count(DISTINCT key_id) FROM etlua_vault.pii")" = 1 ] || fail "more than one key id"
[ "$(psql_q "SELECT bool_and(length(nonce) = 12) FROM etlua_vault.pii")" = t ] || fail "nonces are not 12 bytes"
ok "every distinct mask of user_logins ($distinct) has exactly its vault row"

# --- no plaintext in the vault, no secret in the log ------------------------------------------
"${PGBIN:-/usr/lib/postgresql/15/bin}/pg_dump" --data-only --schema=etlua_vault >"$WORK/vault.sql"
[ "$(grep -c '^[0-9a-f]\{64\}	' "$WORK/vault.sql")" = "$distinct" ] || fail "the dump does not hold the vault rows"
no_raw_pii "$input" "$WORK/vault.sql"
for v in 2001:db8::1 203.0.113.77 vault-device-0001 vault-device-0002; do
  if grep -qF -- "$v" "$WORK/vault.sql"; then fail "plaintext $v in the vault dump"; fi
done
for f in "$WORK/etlua.log" "$WORK/vault.sql"; do
  grep -qF -- "$VAULT_KEY" "$f" && fail "the vault key appears in $f"
done
no_secrets "$WORK/etlua.log"
ok "a dump of the vault holds no raw ip/device_id; the log holds no key"

# --- reveal round trip ------------------------------------------------------------------------
mask_of() { python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$ETLUA_MASK_KEY" "$1"; }
m_ip6=$(mask_of 2001:db8::1)
m_ip4=$(mask_of 203.0.113.77)
m_dev=$(mask_of vault-device-0001)
m_rej=$(mask_of vault-device-rejected)
[ "$(psql_q "SELECT count(*) FROM user_logins WHERE masked_ip = '$m_ip6' AND masked_device_id = '$m_dev'")" = 1 ] \
  || fail "the test row is not in user_logins with the expected masks"
ETLUA_VAULT_KEY=$VAULT_KEY "$ETLUA_BIN" reveal "$m_ip6" "$m_dev" "${m_ip4^^}" >"$WORK/reveal.out" 2>"$WORK/reveal.err" \
  || { cat "$WORK/reveal.err" >&2; fail "reveal failed"; }
printf '%s\tip\t2001:db8::1\n%s\tdevice_id\tvault-device-0001\n%s\tip\t203.0.113.77\n' "$m_ip6" "$m_dev" "$m_ip4" \
  | diff - "$WORK/reveal.out" || fail "reveal printed something else"
[ ! -s "$WORK/reveal.err" ] || fail "reveal wrote to stderr: $(cat "$WORK/reveal.err")"
ok "reveal gives back an IPv6 address (canonical, as masked), an IPv4 address and a device_id"

set +e
ETLUA_VAULT_KEY=$VAULT_KEY "$ETLUA_BIN" reveal --field device_id "$m_ip6" "$m_dev" "$m_rej" >"$WORK/r2.out" 2>"$WORK/r2.err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "reveal of missing values exited $rc"
[ "$(cat "$WORK/r2.out")" = "$(printf '%s\tdevice_id\tvault-device-0001' "$m_dev")" ] || fail "--field device_id output: $(cat "$WORK/r2.out")"
grep -q "$m_ip6: not found in the vault (field device_id)" "$WORK/r2.err" && grep -q "$m_rej: not found" "$WORK/r2.err" \
  || fail "not-found lines: $(cat "$WORK/r2.err")"
ok "--field filters; a mask not in the vault (incl. a rejected message's) is 'not found', exit 1"

# expect_clean_failure NAME PATTERN CMD...: exit 1, one line on stderr matching PATTERN, stdout empty.
expect_clean_failure() {
  local name=$1 pattern=$2; shift 2
  set +e
  "$@" >"$WORK/f.out" 2>"$WORK/f.err"
  local rc=$?
  set -e
  [ $rc -eq 1 ] || { cat "$WORK/f.err" >&2; fail "$name: exit $rc, not 1"; }
  [ ! -s "$WORK/f.out" ] || fail "$name: printed plaintext: $(cat "$WORK/f.out")"
  [ "$(wc -l <"$WORK/f.err")" -eq 1 ] || { cat "$WORK/f.err" >&2; fail "$name: not one line"; }
  grep -q -- "$pattern" "$WORK/f.err" || fail "$name: $(cat "$WORK/f.err")"
  if grep -q "traceback\|internal error" "$WORK/f.err"; then fail "$name: internal error"; fi
}
expect_clean_failure "wrong key" "sealed with vault key id" \
  env ETLUA_VAULT_KEY="$OTHER_KEY" "$ETLUA_BIN" reveal "$m_ip6" "$m_dev"
expect_clean_failure "no key" "no vault key" env -u ETLUA_VAULT_KEY "$ETLUA_BIN" reveal "$m_ip6"

# A key with the right id cannot be forged; tampering is what remains: flip one ciphertext bit,
# then move another row's ciphertext (and nonce) onto this one.
psql_q "UPDATE etlua_vault.pii SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE masked = '$m_dev'" >/dev/null
expect_clean_failure "flipped ciphertext" "wrong vault key or tampered ciphertext; nothing was printed" \
  env ETLUA_VAULT_KEY="$VAULT_KEY" "$ETLUA_BIN" reveal "$m_ip4" "$m_dev"
psql_q "UPDATE etlua_vault.pii SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE masked = '$m_dev'" >/dev/null
psql_q "UPDATE etlua_vault.pii d SET nonce = s.nonce, ciphertext = s.ciphertext FROM etlua_vault.pii s
        WHERE d.masked = '$m_ip4' AND d.field = 'ip' AND s.masked = '$m_ip6' AND s.field = 'ip'" >/dev/null
expect_clean_failure "moved ciphertext" "tampered" env ETLUA_VAULT_KEY="$VAULT_KEY" "$ETLUA_BIN" reveal "$m_ip4"
psql_q "UPDATE etlua_vault.pii SET nonce = '\\x00', ciphertext = '\\x00' WHERE masked = '$m_ip4'" >/dev/null
expect_clean_failure "truncated row" "malformed ciphertext" env ETLUA_VAULT_KEY="$VAULT_KEY" "$ETLUA_BIN" reveal "$m_ip4"
psql_q "DELETE FROM etlua_vault.pii WHERE masked = '$m_ip4'" >/dev/null
ETLUA_VAULT_KEY=$VAULT_KEY "$ETLUA_BIN" reveal "$m_dev" >/dev/null || fail "the restored row does not reveal"
ok "wrong key, no key, a flipped bit, a moved ciphertext, a truncated row: one line, exit 1, no plaintext"

# --- the README's GRANTs: analysts read user_logins, not the vault ---------------------------
psql_q "CREATE ROLE analyst LOGIN PASSWORD 'analyst-pw-0001'" >/dev/null
psql_q "GRANT USAGE ON SCHEMA public TO analyst; GRANT SELECT ON user_logins, user_logins_rejects TO analyst;
        REVOKE ALL ON SCHEMA etlua_vault FROM PUBLIC; REVOKE ALL ON ALL TABLES IN SCHEMA etlua_vault FROM PUBLIC" >/dev/null
[ "$(PGUSER=analyst PGPASSWORD=analyst-pw-0001 psql_q 'SELECT count(*) > 0 FROM user_logins')" = t ] || fail "analyst cannot read user_logins"
if PGUSER=analyst PGPASSWORD=analyst-pw-0001 psql_q 'SELECT count(*) FROM etlua_vault.pii' >/dev/null 2>&1; then
  fail "analyst can read the vault"
fi
expect_clean_failure "analyst reveal" "no permission to read the PII vault" \
  env -u DATABASE_URL PGUSER=analyst PGPASSWORD=analyst-pw-0001 ETLUA_VAULT_KEY="$VAULT_KEY" "$ETLUA_BIN" reveal "$m_dev"
ok "the analyst role reads user_logins; the vault is refused to it, and reveal says so in one line"

# --- key rotation: re-encrypt under a new key --------------------------------------------------
printf '%s\n' "$OTHER_KEY" >"$WORK/new.key"
ETLUA_VAULT_OLD_KEY=$VAULT_KEY ETLUA_VAULT_KEY_FILE=$WORK/new.key "$ETLUA_BIN" reveal --reencrypt >"$WORK/rekey.out" \
  || fail "--reencrypt failed"
grep -q "re-encrypted $((distinct - 1)) values" "$WORK/rekey.out" || fail "rekey: $(cat "$WORK/rekey.out")"
[ "$(psql_q 'SELECT count(DISTINCT key_id) FROM etlua_vault.pii')" = 1 ] || fail "rows left under the old key"
ETLUA_VAULT_KEY_FILE=$WORK/new.key "$ETLUA_BIN" reveal "$m_ip6" | grep "	2001:db8::1$" >/dev/null || fail "new key does not reveal"
expect_clean_failure "old key after rotation" "sealed with vault key id" \
  env ETLUA_VAULT_KEY="$VAULT_KEY" "$ETLUA_BIN" reveal "$m_ip6"
ok "--reencrypt moved every row to the new key; the old one reveals nothing"

# --- without the key nothing is stored --------------------------------------------------------
psql_q "SET client_min_messages = warning; DROP SCHEMA etlua_vault CASCADE" >/dev/null
python3 "$ROOT/tests/harness/gen_logins.py" 300 --seed 22 >"$WORK/more.jsonl"
send "$WORK/more.jsonl"
env -u ETLUA_VAULT_KEY "$ETLUA_BIN" "$ROOT/scripts/login_etl.lua" --drain 2>"$WORK/nokey.log" || fail "drain without the key failed"
grep -q "vault=off" "$WORK/nokey.log" || fail "the start-up line does not say the vault is off"
[ "$(psql_q "SELECT count(*) FROM pg_namespace WHERE nspname = 'etlua_vault'")" = 0 ] || fail "a vault was made without the key"
[ "$(psql_q 'SELECT count(*) FROM etlua_ledger')" = $((total + 300)) ] || fail "the second drain did not land"
ok "without the key the drain lands its rows and no vault exists"
