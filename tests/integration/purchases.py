#!/usr/bin/env python3
"""tests/integration/purchases.py: data and an independent oracle for scripts/purchases_etl.lua.

  purchases.py gen N --seed S --out DIR   writes DIR/input.jsonl (one message body a line, in
                                          send order) and DIR/expect.json
  purchases.py check DIR --key KEY        compares the tables with DIR/expect.json

The stream: N orders, each published in 1..4 versions (distinct updated_at), sent shuffled so
older corrections often arrive after newer ones; about half the versions wrapped in an SNS
notification, some of those delivered twice (same SNS MessageId, a new SQS message); totals past
2**53 and at 2**63-1; empty and absent tags; 0..5 items per version; drafts (dropped); and
broken events (rejects). The oracle is written from the script's header and SCRIPTING.md, not
from etlua's code: the newest version of each order wins (key order_id, order_by updated_at), each
(order_id, line) holds the newest version that carried that line, drafts leave no trace but the
ledger, and an SNS duplicate lands once.
"""
import argparse
import collections
import datetime
import hashlib
import hmac
import json
import os
import random
import sys

BIG = [2 ** 53 + 1, 2 ** 63 - 1, 9007199254740993, 123456789012345678]


def iso(ms, offset_min=0):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone(datetime.timedelta(minutes=offset_min)))
    s = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d" % (ms % 1000)
    if offset_min == 0:
        return s + "Z"
    sign = "+" if offset_min > 0 else "-"
    return s + "%s%02d:%02d" % (sign, abs(offset_min) // 60, abs(offset_min) % 60)


def gen(n, seed, out):
    rnd = random.Random(seed)
    sends = []          # (body text, meta) in send order
    versions = []       # every valid, non-draft version: the oracle's input
    reasons = collections.Counter()
    drops, sns_dups, keys = 0, 0, 0
    t0 = 1714566645000
    # SNS Timestamps are recent (the ledger files an entry by the time its deliveries share,
    # and keeps only the queue's retention): now, plus the order's offset.
    now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    for i in range(n):
        oid = "ord-%05d" % i
        user = {"id": "u-%d" % rnd.randrange(1000)}
        if rnd.random() < 0.8:
            user["email"] = rnd.choice(["Alice", "BOB", "carol", "Dave.X"]) + "%d@Example.COM" % i
        if rnd.random() < 0.7:
            user["country"] = rnd.choice(["DE", "FR", "US"])
        nver = rnd.randint(1, 4)
        times = sorted(rnd.sample(range(1, 100000), nver))
        evs = []
        for v, dt in enumerate(times):
            ms = t0 + i * 1000000 + dt
            items = []
            for line in range(rnd.randint(0, 5)):
                it = {"sku": "SKU-%d" % rnd.randrange(50), "qty": rnd.randint(1, 3),
                      "price_cents": rnd.choice([rnd.randrange(100000)] + BIG[:1])}
                if rnd.random() < 0.5:
                    it["options"] = rnd.choice([{"size": "M"}, {}, {"gift": True, "note": []}])
                items.append(it)
            ev = {"order_id": oid, "updated_at": iso(ms, rnd.choice([0, 0, 120, -300])),
                  "status": rnd.choice(["placed", "paid", "shipped", "cancelled"]),
                  "user": user, "currency": "EUR",
                  "total_cents": rnd.choice([rnd.randrange(10 ** 6)] + BIG), "items": items}
            r = rnd.random()
            if r < 0.3:
                ev["tags"] = []
            elif r < 0.6:
                ev["tags"] = ["gift", "v%d" % v]
            elif r < 0.7:
                ev["tags"] = None
            kind = "ok"
            q = rnd.random()
            if q < 0.08:
                ev["status"] = "draft"
                kind = "drop"
            elif q < 0.12:
                ev["currency"] = "eur"
                kind = "invalid_currency"
            elif q < 0.14:
                ev["items"] = [{"sku": "A", "qty": 0, "price_cents": 1}]
                kind = "invalid_items"
            evs.append((ms, ev, kind))
        rnd.shuffle(evs)   # late corrections: an older version after a newer one
        for ms, ev, kind in evs:
            text = json.dumps(ev, separators=(",", ":"))
            sns_id = None
            if rnd.random() < 0.5:
                sns_id = "sns-%s-%d" % (oid, ms)
                text = json.dumps({"Type": "Notification", "MessageId": sns_id,
                                   "TopicArn": "arn:aws:sns:us-east-1:000000000000:purchases",
                                   "Subject": None, "Message": text,
                                   "Timestamp": iso(now_ms + i * 10 + len(sends) % 7),
                                   "SignatureVersion": "1"},
                                  separators=(",", ":"))
            sends.append(text)
            keys += 1
            if sns_id and rnd.random() < 0.3:
                sends.append(text)   # SNS delivered it twice: a new SQS message, same MessageId
                sns_dups += 1
            if kind == "ok":
                versions.append({"ms": ms, "event": ev, "sns_id": sns_id})
            elif kind == "drop":
                drops += 1
            else:
                reasons[kind] += 1
    # a few broken bodies
    for j in range(5):
        sends.append(json.dumps({"Type": "Notification", "MessageId": "sns-bad-%d" % j,
                                 "Message": "{not json", "Timestamp": iso(now_ms)}))
        reasons["invalid_json"] += 1
        keys += 1
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "input.jsonl"), "w") as f:
        for s in sends:
            f.write(s + "\n")
    with open(os.path.join(out, "expect.json"), "w") as f:
        json.dump({"versions": versions, "reasons": reasons, "drops": drops,
                   "sns_dups": sns_dups, "keys": keys, "sends": len(sends)}, f)


def expected(exp, key):
    def mask(s):
        return hmac.new(key, s.encode("utf-8"), hashlib.sha256).hexdigest()
    orders, lines = {}, {}
    for v in exp["versions"]:
        ev, ms = v["event"], v["ms"]
        oid = ev["order_id"]
        if oid not in orders or orders[oid][0] < ms:
            email = ev["user"].get("email")
            orders[oid] = (ms, (oid, ev["user"]["id"], mask(email.lower()) if email else None,
                                ev["user"].get("country"), ev["status"], ev["currency"],
                                str(ev["total_cents"]), len(ev["items"]),
                                json.dumps(ev.get("tags"), sort_keys=True) if ev.get("tags") is not None else None,
                                ms), v["sns_id"])
        for n, it in enumerate(ev["items"], 1):
            k = (oid, n)
            if k not in lines or lines[k][0] < ms:
                lines[k] = (ms, (oid, n, it["sku"], it["qty"], str(it["price_cents"]),
                                 json.dumps(it["options"], sort_keys=True) if "options" in it else None, ms))
    return orders, lines


def check(d, key):
    import psycopg2
    exp = json.load(open(os.path.join(d, "expect.json")))
    orders, lines = expected(exp, key.encode("utf-8"))
    conn = psycopg2.connect("")
    cur = conn.cursor()
    problems = []

    def canon_json(t):
        return None if t is None else json.dumps(json.loads(t), sort_keys=True)

    cur.execute("SELECT order_id, user_id, masked_email, country, status, currency, total_cents::text, "
                "item_count, tags::text, (extract(epoch FROM updated_at) * 1000)::bigint, event_id FROM purchases")
    got = {}
    for r in cur.fetchall():
        r = list(r)
        r[8] = canon_json(r[8])
        got[r[0]] = (tuple(r[:10]), r[10])
    for oid, (ms, row, sns_id) in orders.items():
        if oid not in got:
            problems.append("purchases: order %s missing" % oid)
        elif got[oid][0] != row:
            problems.append("purchases: order %s is %r, expected %r" % (oid, got[oid][0], row))
        elif sns_id and got[oid][1] != sns_id:
            problems.append("purchases: order %s event_id %s, expected the SNS id %s" % (oid, got[oid][1], sns_id))
    for oid in set(got) - set(orders):
        problems.append("purchases: unexpected order %s" % oid)

    cur.execute("SELECT order_id, line, sku, qty, price_cents::text, options::text, "
                "(extract(epoch FROM updated_at) * 1000)::bigint FROM purchase_items")
    got_lines = {}
    for r in cur.fetchall():
        r = list(r)
        r[5] = canon_json(r[5])
        got_lines[(r[0], r[1])] = tuple(r)
    for k, (ms, row) in lines.items():
        if got_lines.get(k) != row:
            problems.append("purchase_items %s: %r, expected %r" % (k, got_lines.get(k), row))
    for k in set(got_lines) - set(lines):
        problems.append("purchase_items: unexpected line %s" % (k,))

    cur.execute("SELECT reason, count(*) FROM purchases_rejects GROUP BY 1")
    got_reasons = {r: c for r, c in cur.fetchall()}
    if got_reasons != exp["reasons"]:
        problems.append("rejects by reason %r, expected %r" % (got_reasons, exp["reasons"]))
    cur.execute("SELECT count(*) FROM purchases_rejects WHERE body ~* '@example\\.com'")
    if cur.fetchone()[0]:
        problems.append("a raw email reached purchases_rejects")
    cur.execute("SELECT outcome::text, count(*) FROM etlua_ledger GROUP BY 1")
    ledger = {o: c for o, c in cur.fetchall()}   # outcome: r rows, j reject, d drop
    if sum(ledger.values()) != exp["keys"]:
        problems.append("ledger holds %d keys, expected %d (one per SQS message, one per SNS MessageId)"
                        % (sum(ledger.values()), exp["keys"]))
    if ledger.get("d", 0) != exp["drops"]:
        problems.append("ledger: %d drops, expected %d" % (ledger.get("d", 0), exp["drops"]))
    for p in problems[:15]:
        print("FAIL:", p, file=sys.stderr)
    if problems:
        sys.exit("%d differences" % len(problems))
    print("ok - %d orders, %d item lines, %d rejects, %d drops, %d SNS duplicates as expected"
          % (len(orders), len(lines), sum(exp["reasons"].values()), exp["drops"], exp["sns_dups"]))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("n", type=int)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("--key", required=True)
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a.n, a.seed, a.out)
    else:
        check(a.dir, a.key)


if __name__ == "__main__":
    main()
