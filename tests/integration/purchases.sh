#!/usr/bin/env bash
# tests/integration/purchases.sh EMULATOR PROTOCOL [N]: a real drain of scripts/purchases_etl.lua
# (the second pipeline: two outputs, upserts ordered by updated_at, an SNS envelope, drops, a
# jsonb column, big integers). N orders in 1..4 versions sent shuffled (late corrections), half of
# them through SNS with some SNS duplicates, drafts and broken events (tests/integration/
# purchases.py). The tables must equal the oracle's: the newest version of each order and of each
# item line, exact totals past 2**53, [] kept in jsonb, every SNS MessageId landed once, drafts
# in the ledger only, no raw email anywhere, the vault revealing the lower-cased email under
# user.email and the row's own mask. A second drain with the same messages sent again
# (every version redelivered, in another order) changes nothing in purchases and purchase_items.
. "$(dirname "$0")/lib.sh"
emulator=$1 protocol=$2 n=${3:-300}

start_pg
start_sqs "$emulator"

# A key needs a unique index on exactly its columns: without one, one line at start-up and
# nothing received.
psql_q "CREATE TABLE purchases (order_id varchar(64), user_id varchar(64) NOT NULL,
  masked_email varchar(64), country char(2), status varchar(16) NOT NULL, currency char(3) NOT NULL,
  total_cents bigint NOT NULL, item_count integer NOT NULL, tags jsonb,
  updated_at timestamptz NOT NULL, event_id text NOT NULL)" >/dev/null
if "$ETLUA_BIN" "$ROOT/scripts/purchases_etl.lua" --drain 2>"$WORK/nokey.err"; then
  fail "etlua started without a unique index for the key"
fi
[ "$(wc -l <"$WORK/nokey.err")" = 1 ] && grep -q "output 'purchases': table purchases has no unique index on exactly (order_id)" "$WORK/nokey.err" \
  || { cat "$WORK/nokey.err" >&2; fail "no one-line error naming the missing unique index"; }
psql_q "DROP TABLE purchases" >/dev/null
ok "a key without a unique index stops etlua at start-up in one line"
python3 "$ROOT/tests/integration/purchases.py" gen "$n" --seed 5 --out "$WORK/p"
send "$WORK/p/input.jsonl"
total=$(wc -l <"$WORK/p/input.jsonl")

VAULT_KEY=$(printf 'c0de%.0s' $(seq 16))
ETLUA_VAULT_KEY=$VAULT_KEY ETLUA_SQS_PROTOCOL=$protocol ETLUA_BATCH_SIZE=50 "$ETLUA_BIN" "$ROOT/scripts/purchases_etl.lua" --drain \
  2>"$WORK/etlua.log" || { cat "$WORK/etlua.log" >&2; fail "etlua --drain exited non-zero"; }
grep -q "sqs ready.*protocol=$protocol" "$WORK/etlua.log" || fail "etlua did not use the $protocol protocol"
ok "drained $total messages from $emulator ($protocol)"
grep -q " done .*received=$total" "$WORK/etlua.log" || fail "summary does not count $total messages"

# Debian's python3-psycopg2 belongs to /usr/bin/python3 (another python3 may come first on PATH)
/usr/bin/python3 "$ROOT/tests/integration/purchases.py" check "$WORK/p" --key "$ETLUA_MASK_KEY" \
  || fail "tables differ from the oracle"
[ "$(depth)" = "0 0" ] || fail "queue not empty: $(depth)"
ok "queue is empty"

dups=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sns_dups"])' "$WORK/p/expect.json")
grep -q " done .*duplicates=$dups" "$WORK/etlua.log" || fail "summary does not count $dups SNS duplicates"
drops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drops"])' "$WORK/p/expect.json")
grep -q " done .*dropped=$drops" "$WORK/etlua.log" || fail "summary does not count $drops drops"
ok "every SNS duplicate landed once ($dups), $drops drafts dropped"

# The vault holds the canonical (lower-cased) email under the path and the very mask of the row.
m=$(psql_q "SELECT masked_email FROM purchases WHERE masked_email IS NOT NULL ORDER BY order_id LIMIT 1")
ETLUA_VAULT_KEY=$VAULT_KEY "$ETLUA_BIN" reveal --field user.email "$m" >"$WORK/reveal.out" 2>"$WORK/reveal.err" \
  || { cat "$WORK/reveal.err" >&2; fail "reveal of a purchases mask failed"; }
grep -qE "^$m	user\.email	[a-z.]+[0-9]+@example\.com\$" "$WORK/reveal.out" || fail "reveal gave: $(cat "$WORK/reveal.out")"
[ "$(psql_q "SELECT count(*) FROM etlua_vault.pii WHERE field <> 'user.email'")" = 0 ] || fail "vault rows under another field"
ok "the vault reveals the lower-cased email under user.email and the row's mask"

psql_q "COPY (SELECT * FROM purchases ORDER BY order_id) TO STDOUT" >"$WORK/before.tsv"
psql_q "COPY (SELECT * FROM purchase_items ORDER BY order_id, line) TO STDOUT" >>"$WORK/before.tsv"
psql_q "COPY (SELECT * FROM purchases_rejects) TO STDOUT" >"$WORK/rejects.tsv"
no_secrets "$WORK/etlua.log" "$WORK/before.tsv" "$WORK/rejects.tsv"
if grep -qi '@example\.com' "$WORK/before.tsv" "$WORK/rejects.tsv" "$WORK/etlua.log"; then
  fail "a raw email reached a table or the log"
fi
ok "no secret and no raw email in the log or the tables"

# Every message again, reversed: raw bodies are new SQS messages (new ledger keys) and go through
# the upsert; older versions must not overwrite newer ones. SNS ones are duplicates by MessageId.
tac "$WORK/p/input.jsonl" >"$WORK/p/again.jsonl"
send "$WORK/p/again.jsonl"
ETLUA_SQS_PROTOCOL=$protocol ETLUA_BATCH_SIZE=50 "$ETLUA_BIN" "$ROOT/scripts/purchases_etl.lua" --drain \
  2>"$WORK/etlua2.log" || { cat "$WORK/etlua2.log" >&2; fail "second drain failed"; }
psql_q "COPY (SELECT * FROM purchases ORDER BY order_id) TO STDOUT" >"$WORK/after.tsv"
psql_q "COPY (SELECT * FROM purchase_items ORDER BY order_id, line) TO STDOUT" >>"$WORK/after.tsv"
# event_id of an order whose newest version came without SNS is that version's SQS id: it
# changes on a redelivery; compare everything else.
cut -f1-10 "$WORK/before.tsv" >"$WORK/b" && cut -f1-10 "$WORK/after.tsv" >"$WORK/a"
cmp -s "$WORK/b" "$WORK/a" || { diff "$WORK/b" "$WORK/a" | head >&2; fail "redelivered versions changed the tables"; }
ok "every version redelivered in reverse order changes nothing"
