#!/usr/bin/env python3
"""Writes awkward message bodies, one per line, for the integration drains: every kind of
hostile input the pipeline must reject with a reason or store as the contract says — never
crash on, never stall a batch on. Each line is a JSON-escaped body that SQS can carry.

usage: hostile.py > bodies.jsonl
       hostile.py --pii [--max-bytes N] > bodies.jsonl
           only the pii corpus (spec/data/pii_corpus.jsonl: bodies hiding raw pii in every
           shape, 1 MiB runs included), in its order, bodies over N bytes left out
The default output ends with the corpus bodies under 64 KiB.
"""
import json
import os
import sys

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "spec", "data",
                      "pii_corpus.jsonl")


def pii_corpus(path=CORPUS):
    """-> list of {"note", "body", "secrets", "reason"?}: the corpus with its runs expanded."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            r = c.pop("repeat", None)
            if r is not None:
                c["body"] = r["prefix"] + r["unit"] * r["times"] + r["suffix"]
            out.append(c)
    return out

GOOD = {"user_id": "h-0", "app_version": "2.3.0", "device_type": "android",
        "ip": "10.1.2.3", "locale": "RU", "device_id": "111-22-3333"}


def body(i, **changes):
    d = dict(GOOD, user_id="h-%d" % i)
    for k, v in changes.items():
        if v is KeyError:
            d.pop(k, None)
        else:
            d[k] = v
    return json.dumps(d)


def main():
    out = []
    n = iter(range(1, 10**6))
    # wrong types in every field
    for field in GOOD:
        for bad in (1, 1.5, True, [], {}, ["x"], {"a": 1}):
            out.append(body(next(n), **{field: bad}))
    # limits around every length rule
    out.append(body(next(n), user_id="u" * 128))
    out.append(body(next(n), user_id="é" * 128))
    out.append(body(next(n), user_id="é" * 129))
    out.append(body(next(n), device_type="d" * 32))
    out.append(body(next(n), device_type="d" * 33))
    out.append(body(next(n), locale="日" * 32))
    out.append(body(next(n), locale="日" * 33))
    # app_version at its bounds
    for v in ("2146.999.999", "2147", "1.1000", "1.999.1000", "1..2", "1.2.3.4", " 1.2", "+1",
              "-1", "", "1e3", 7, 0, 2146, 2147, -3):
        out.append(body(next(n), app_version=v))
    # addresses
    for ip in ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", "::ffff:10.1.2.3", "fe80::1%eth0",
               "1.2.3", "256.1.1.1", "01.2.3.4", "::", "::1", "1.2.3.4 ", ""):
        out.append(body(next(n), ip=ip))
    out.append(body(next(n), device_id=""))
    out.append(body(next(n), device_id=None))
    out.append(body(next(n), ip=None, device_id=KeyError))
    # NUL escapes, control characters, emoji, SQL and COPY metacharacters in stored text
    out.append(body(next(n), locale="a\u0000b"))
    out.append(body(next(n), user_id="tab\there\nnewline\\back\rslash"))
    out.append(body(next(n), device_type="😀"))
    out.append(body(next(n), user_id="x'); DROP TABLE user_logins;--"))
    out.append(body(next(n), user_id="\\N"))
    # timestamps
    out.append(body(next(n), timestamp=1700000000))
    out.append(body(next(n), timestamp=1700000000.9))
    out.append(body(next(n), timestamp="1700000000"))
    out.append(body(next(n), timestamp=-5))
    # structure
    out.append("[" * 5000 + "]" * 5000)
    out.append('{"a":' * 100 + "1" + "}" * 100)
    out.append(json.dumps(dict(GOOD, user_id="big", pad="x" * 200_000)))
    out.append('{"user_id": "trunc", "ip": "10.9.8.7", "device_id": "999-88-7777"')
    out.append("null")
    out.append("{}")
    out.append("[]")
    out.append("42")
    out.append('"\\ud800"')
    out.append('{"user_id": "\\ud800", "ip": "10.1.1.1"}')
    out.append('{"user_id": "nan", "app_version": NaN}')
    out.extend(c["body"] for c in pii_corpus() if len(c["body"].encode()) < 65536)
    for line in out:
        print(line)


def print_corpus(max_bytes):
    for c in pii_corpus():
        if len(c["body"].encode()) <= max_bytes:
            print(c["body"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--pii":
        print_corpus(int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--max-bytes" else 1 << 30)
    else:
        main()
