#!/usr/bin/env bash
# tests/integration/secrets.sh: no piece of a secret in any line etlua writes, whatever
# characters the secret holds. Random passwords from a hostile alphabet (@ / : ? # % ' " \ and
# more) are set on the Postgres role; etlua runs with each written as a percent-encoded URL, as
# key=value pairs, as PGPASSWORD, unencoded (refused in one line), wrong (refused by the server),
# towards a closed port; AWS secret key and session token hostile too, on an SQS drain.
# The invariant checked on every stderr line of every run (text and JSON logs): no 4-character
# substring of a password, no 8-character substring of a key (README "Secrets").
# ETLUA_SECRETS_ROUNDS (default 4) passwords; the seed is printed so a failure can be replayed.
. "$(dirname "$0")/lib.sh"
start_pg
start_sqs fauxqs
script=$ROOT/scripts/login_etl.lua
seed=${ETLUA_SECRETS_SEED:-$RANDOM}
rounds=${ETLUA_SECRETS_ROUNDS:-4}
echo "# seed $seed"
head -20 "$ROOT/data/login-sample.jsonl" >"$WORK/input.jsonl"
admin_pw=$PGPASSWORD

# secret N SEED: a random secret of N characters; every 4-character window holds one of the
# letters QXZJKWV, which no fixed text of etlua or libpq holds in upper case, so a window found
# in a line can only have come from the secret.
secret() {
  python3 - "$1" "$2" <<'PY'
import random, sys
n, rnd = int(sys.argv[1]), random.Random(int(sys.argv[2]))
hostile, letters = "@/:?#%&=+'\"\\;,$!*<>[]{}()|`~^ ", "QXZJKWV"
print("".join(rnd.choice(letters) if i % 3 == 0 else rnd.choice(hostile + letters + "0123456789")
              for i in range(n)), end="")
PY
}
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""), end="")' "$1"; }
kvquote() { python3 -c 'import sys; print("'\''" + sys.argv[1].replace("\\", "\\\\").replace("'\''", "\\'\''") + "'\''", end="")' "$1"; }

# no_pieces MIN SECRET FILE...: no MIN-character substring of SECRET in the files.
no_pieces() {
  python3 - "$@" <<'PY' || fail "a piece of a secret appears in a line etlua wrote"
import sys
m, s = int(sys.argv[1]), sys.argv[2]
for path in sys.argv[3:]:
    for n, line in enumerate(open(path, encoding="utf-8", errors="surrogateescape"), 1):
        for i in range(len(s) - m + 1):
            if s[i:i + m] in line:
                sys.exit("%s:%d holds %r of the secret: %s" % (path, n, s[i:i + m], line.rstrip()))
PY
}

# run NAME [env...] -- [args...]: runs etlua, keeps its stderr as $WORK/NAME.err, returns its status.
run() {
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$ETLUA_BIN" "$script" "$@" >/dev/null 2>"$WORK/$name.err"
}

one_line() { [ "$(wc -l <"$WORK/$1.err")" -eq 1 ] && grep -qE "$2" "$WORK/$1.err" || { cat "$WORK/$1.err" >&2; fail "$1: not one line matching /$2/"; }; }

for round in $(seq 1 "$rounds"); do
  pw=$(secret $((12 + round * 5)) $((seed + round)))
  case "$pw" in *@*/*|*/*@*) ;; *) pw="${pw}@Q/X" ;; esac # both characters libpq misreads
  wrong=$(secret 20 $((seed + 1000 + round)))
  printf 'ALTER ROLE etlua PASSWORD :'\''pw'\'';\n' | PGPASSWORD=$admin_pw psql -X -q -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null
  admin_pw=$pw
  base="127.0.0.1:$PGPORT/$PGDATABASE"
  run "$round.url" -u PGPASSWORD DATABASE_URL="postgresql://$PGUSER:$(urlenc "$pw")@$base" -- --input "$WORK/input.jsonl" \
    || { cat "$WORK/$round.url.err" >&2; fail "round $round: percent-encoded URL refused"; }
  run "$round.json" -u PGPASSWORD DATABASE_URL="postgresql://$PGUSER:$(urlenc "$pw")@$base" -- --input "$WORK/input.jsonl" --log-format json \
    || fail "round $round: json run failed"
  run "$round.kv" -u PGPASSWORD DATABASE_URL="host=127.0.0.1 port=$PGPORT user=$PGUSER dbname=$PGDATABASE password=$(kvquote "$pw")" \
    -- --input "$WORK/input.jsonl" || { cat "$WORK/$round.kv.err" >&2; fail "round $round: key=value refused"; }
  run "$round.pgpassword" -u DATABASE_URL PGPASSWORD="$pw" -- --input "$WORK/input.jsonl" \
    || { cat "$WORK/$round.pgpassword.err" >&2; fail "round $round: PGPASSWORD refused"; }
  ! run "$round.raw" -u PGPASSWORD DATABASE_URL="postgresql://$PGUSER:$pw@$base" -- --input "$WORK/input.jsonl" \
    || fail "round $round: an unencoded @ and / were accepted"
  one_line "$round.raw" "DATABASE_URL.*percent-encode|not a valid connection string"
  ! run "$round.wrong" -u PGPASSWORD ETLUA_RETRY_ATTEMPTS=1 DATABASE_URL="postgresql://$PGUSER:$(urlenc "$wrong")@$base" \
    -- --input "$WORK/input.jsonl" || fail "round $round: a wrong password was accepted"
  one_line "$round.wrong" "cannot connect to Postgres.*password authentication failed"
  ! run "$round.closed" -u PGPASSWORD ETLUA_RETRY_ATTEMPTS=1 DATABASE_URL="postgresql://$PGUSER:$(urlenc "$pw")@127.0.0.1:1/x" \
    -- --input "$WORK/input.jsonl" || fail "round $round: a closed port was accepted"
  one_line "$round.closed" "cannot connect to Postgres"
  aws=$(secret 40 $((seed + 2000 + round))) token=$(secret 60 $((seed + 3000 + round)))
  send "$WORK/input.jsonl"
  run "$round.sqs" -u PGPASSWORD DATABASE_URL="postgresql://$PGUSER:$(urlenc "$pw")@$base" \
    AWS_SECRET_ACCESS_KEY="$aws" AWS_SESSION_TOKEN="$token" -- --drain \
    || { cat "$WORK/$round.sqs.err" >&2; fail "round $round: SQS drain failed"; }
  no_pieces 4 "$pw" "$WORK/$round".*.err
  no_pieces 4 "$(urlenc "$pw")" "$WORK/$round".*.err
  no_pieces 4 "$wrong" "$WORK/$round.wrong.err"
  no_pieces 8 "$aws" "$WORK/$round.sqs.err"
  no_pieces 8 "$token" "$WORK/$round.sqs.err"
  no_pieces 8 "$ETLUA_MASK_KEY" "$WORK/$round".*.err
  ok "round $round: password of ${#pw} characters in $(ls "$WORK/$round".*.err | wc -l) runs, $(cat "$WORK/$round".*.err | wc -l) lines, no piece of it: $(cat "$WORK/$round.raw.err")"
done
