#!/usr/bin/env python3
"""Compare what etlua wrote to PostgreSQL with the oracle's expectations for an input file.

usage:
  check_tables.py BODIES_FILE [--key K | --key-file F] [--date YYYY-MM-DD]
                  [--table user_logins] [--rejects-table user_logins_rejects]
                  [--expect-count] [--allow-db-refused] [--no-pii-check]

Connection: DATABASE_URL if set, else libpq's PG* variables. Key: as oracle.py (--key,
--key-file, ETLUA_MASK_KEY, ETLUA_MASK_KEY_FILE).

Checks (exit 1 on any mismatch, with a summary of the differences):
  - the multiset of user_logins rows (user_id, device_type, masked_ip, masked_device_id, locale,
    app_version as text) equals the oracle's accepted rows;
  - create_date: a body with a `timestamp` must have that UTC date; every other row must have
    --date, or without --date a date within today UTC +/- 1 day;
  - the number of rejects per reason equals the oracle's (db_refused is an error unless
    --allow-db-refused);
  - no raw ip or device_id of the input (values of 6 characters or more, from bodies that parse
    as JSON objects) appears in any column of either table, except inside the stored body of
    an invalid_json/not_object reject, which etlua cannot mask.
--expect-count: only the counts (rows, rejects per reason), for huge runs.
"""
import argparse
import collections
import datetime
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:
    # Debian's python3-psycopg2 lives with /usr/bin/python3; another python3 may come first on PATH.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("CHECK_TABLES_REEXEC"):
        os.environ["CHECK_TABLES_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise SystemExit("check_tables: psycopg2 is missing (apt-get install python3-psycopg2)")

import oracle  # noqa: E402

COLS = ("user_id", "device_type", "masked_ip", "masked_device_id", "locale", "app_version")
TOKEN = re.compile(r"[0-9A-Za-z.:%_\-]+")
MIN_PII = 6


def connect():
    url = os.environ.get("DATABASE_URL")
    return psycopg2.connect(url) if url else psycopg2.connect("")


def show(t):
    return "(" + ", ".join("NULL" if v is None else repr(v) for v in t) + ")"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bodies")
    ap.add_argument("--key")
    ap.add_argument("--key-file")
    ap.add_argument("--date", help="expected create_date of rows whose body has no timestamp")
    ap.add_argument("--table", default="user_logins")
    ap.add_argument("--rejects-table", default="user_logins_rejects")
    ap.add_argument("--expect-count", action="store_true", help="compare counts only")
    ap.add_argument("--allow-db-refused", action="store_true")
    ap.add_argument("--no-pii-check", action="store_true")
    ap.add_argument("--max-diff", type=int, default=10, help="differences shown per kind")
    a = ap.parse_args(argv)

    key = oracle.load_key(a.key, a.key_file)
    rows, want_rejects, results, pii = oracle.expectations(a.bodies, key)
    ambiguous = [(n, r["ambiguous"]) for n, r in results if "ambiguous" in r]

    problems = []
    conn = connect()
    conn.set_session(readonly=True, autocommit=True)
    cur = conn.cursor()
    t_logins = sql.Identifier(a.table)
    t_rejects = sql.Identifier(a.rejects_table)

    # ---- rejects per reason
    cur.execute(sql.SQL("SELECT reason, count(*) FROM {} GROUP BY reason").format(t_rejects))
    got_rejects = collections.Counter({r: int(c) for r, c in cur.fetchall()})
    # db_refused beyond what the oracle expects (a NUL character) is an error unless allowed
    refused = max(0, got_rejects["db_refused"] - want_rejects["db_refused"])
    if refused and not a.allow_db_refused:
        problems.append("%d unexpected rejects with reason db_refused" % refused)
    got_rejects["db_refused"] -= refused
    for reason in sorted(set(got_rejects) | set(want_rejects)):
        if got_rejects[reason] != want_rejects[reason]:
            problems.append("rejects %s: table has %d, expected %d" % (reason, got_rejects[reason], want_rejects[reason]))

    # ---- rows
    if a.expect_count:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(t_logins))
        n = cur.fetchone()[0]
        if n + refused != len(rows) or (n != len(rows) and not a.allow_db_refused):
            problems.append("%s: %d rows, expected %d" % (a.table, n, len(rows)))
    else:
        cur.execute(sql.SQL("SELECT user_id, device_type, masked_ip, masked_device_id, locale, "
                            "app_version::text, create_date FROM {}").format(t_logins))
        got = collections.defaultdict(list)        # key -> [dates]
        for r in cur.fetchall():
            got[tuple(r[:6])].append(r[6].isoformat() if r[6] is not None else None)
        want = collections.defaultdict(list)       # key -> [date or None (= SQS date)]
        for r in rows:
            k = tuple(None if r[c] is None else (str(r[c]) if c == "app_version" else r[c]) for c in COLS)
            want[k].append(r["create_date"])

        if a.date:
            allowed = {a.date}
        else:
            today = datetime.datetime.now(datetime.timezone.utc).date()
            allowed = {(today + datetime.timedelta(days=d)).isoformat() for d in (-1, 0, 1)}

        missing, extra, bad_dates = [], [], []
        for k in set(got) | set(want):
            g, w = got.get(k, []), want.get(k, [])
            if len(g) < len(w):
                missing.append((k, len(w) - len(g)))
            elif len(g) > len(w):
                extra.append((k, len(g) - len(w)))
            # dates: exact ones first, then the rest must fall in the allowed set
            pool = collections.Counter(g)
            for d in [d for d in w if d is not None]:
                if pool[d] > 0:
                    pool[d] -= 1
                else:
                    bad_dates.append((k, "expected create_date %s (body timestamp)" % d))
            loose = sum(1 for d in w if d is None)
            for d, c in pool.items():
                take = min(c, loose)
                loose -= take
                if d not in allowed and take:
                    bad_dates.append((k, "create_date %s not in %s" % (d, sorted(allowed))))
        n_missing = sum(c for _, c in missing)
        n_extra = sum(c for _, c in extra)
        if n_missing and a.allow_db_refused and n_missing <= refused and not n_extra:
            print("check_tables: note: %d expected rows missing, explained by db_refused rejects" % n_missing)
        elif n_missing:
            problems.append("%s: %d expected rows missing" % (a.table, n_missing))
            for k, c in sorted(missing, key=str)[:a.max_diff]:
                problems.append("  missing x%d %s" % (c, show(k)))
        if n_extra:
            problems.append("%s: %d unexpected rows" % (a.table, n_extra))
            for k, c in sorted(extra, key=str)[:a.max_diff]:
                problems.append("  extra   x%d %s" % (c, show(k)))
        if bad_dates:
            problems.append("%s: %d rows with a wrong create_date" % (a.table, len(bad_dates)))
            for k, why in bad_dates[:a.max_diff]:
                problems.append("  %s: %s" % (show(k), why))

    # ---- raw PII anywhere in either table
    if not a.no_pii_check and not a.expect_count:
        watch = {v for v in pii if len(v) >= MIN_PII}
        simple = {v for v in watch if TOKEN.fullmatch(v)}
        odd = watch - simple
        leaks = []

        def scan(where, text):
            if text is None:
                return
            for tok in set(TOKEN.findall(text)) | {text}:
                if tok in simple:
                    leaks.append((where, tok))
            for v in odd:
                if v in text:
                    leaks.append((where, v))

        cur.execute(sql.SQL("SELECT user_id, device_type, masked_ip, masked_device_id, locale FROM {}").format(t_logins))
        for r in cur.fetchall():
            for c, v in zip(COLS, r):
                scan("%s.%s" % (a.table, c), v)
        cur.execute(sql.SQL("SELECT message_id, reason, detail, body FROM {}").format(t_rejects))
        for mid, reason, detail, body in cur.fetchall():
            scan("%s.detail (%s)" % (a.rejects_table, reason), detail)
            scan("%s.message_id" % a.rejects_table, mid)
            if reason not in ("invalid_json", "not_object"):
                scan("%s.body (%s)" % (a.rejects_table, reason), body)
        if leaks:
            problems.append("raw ip/device_id found in the tables: %d places" % len(leaks))
            for where, v in leaks[:a.max_diff]:
                problems.append("  %s contains %r" % (where, v))

    conn.close()
    summary = "check_tables: %d bodies, %d rows and %d rejects expected %s" % (
        len(results), len(rows), sum(want_rejects.values()), dict(sorted(want_rejects.items())))
    print(summary)
    if ambiguous:
        print("check_tables: note: %d bodies where the contract's reading is ambiguous, e.g. line %d: %s"
              % (len(ambiguous), ambiguous[0][0], ambiguous[0][1]))
    if problems:
        print("check_tables: MISMATCH")
        for p in problems:
            print("  " + p)
        return 1
    print("check_tables: OK" + (" (counts only)" if a.expect_count else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
