#!/usr/bin/env python3
"""Independent oracle for etlua's default pipeline (the rules of scripts/login_etl.lua).

Written from the rules as stated (the headings of spec/login_etl_spec.lua, the comments of
scripts/login_etl.lua), not from etlua's code, Python standard library only, so that the Lua/C
implementation and this file can be checked against each other.

usage:
  oracle.py BODIES_FILE|- [--key K | --key-file F]      one JSON line per input body:
        {"line": N, "outcome": "accept", "row": {...}}  or
        {"line": N, "outcome": "reject", "reason": "...", "detail": "..."}
  oracle.py --summary BODIES_FILE|- [--key ...]         counts: accepted, rejects per reason
  oracle.py --self-test CASES_JSONL [KEY]               check against spec/data/cases.jsonl; exits 1
                                                        on any disagreement
  oracle.py --pii-leaks REJECTS_JSON [LOG...]           no secret of the pii corpus
        (spec/data/pii_corpus.jsonl, via hostile.py) in any stored detail, body or log line;
        REJECTS_JSON: [{"id", "detail", "body"}, ...]. A row or line of message id
        input:<digest>:<N> is checked against every secret of corpus entry N (the --input file
        was `hostile.py --pii`); any other against every secret of 6 characters or more of the
        whole corpus. Exits 1 on a leak, printing where.
The key defaults to ETLUA_MASK_KEY, or the file named by ETLUA_MASK_KEY_FILE (trailing newline
dropped). Input: one message body per line; empty lines are skipped (as tests/harness/sqs.js does),
a trailing CR is dropped; line numbers count every line of the file from 1.

row = {user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date}
  create_date is "YYYY-MM-DD" when the body carries an epoch-seconds `timestamp`, else null
  (then it is the SQS SentTimestamp's or the receive time's date, which only the run knows).

Decisions where the contract leaves room (reported, not guessed silently):
  - validation order when several fields are wrong: user_id, device_type, locale, ip,
    device_id, app_version (the contract's order of listing); the first failure is the reason;
  - IPv6 canonical text is RFC 5952 section 4 (lowercase, leading zeros dropped, the longest run
    of two or more zero groups as ::, the first one on a tie), with IPv4-mapped addresses
    (::ffff:0:0/96) written ::ffff:a.b.c.d (section 5). Deprecated IPv4-compatible addresses
    (::a.b.c.d) are written in hex (::102:304), as etlua's mask.canonical_ip does;
  - JSON is RFC 8259: NaN/Infinity literals are invalid_json, and so is a lone surrogate escape
    (text with no UTF-8 form); a JSON number for app_version reads as "N" when its value is a
    non-negative integer (2, 2.0, 2e0 alike); a NUL character in a stored text field is
    refused by Postgres (db_refused);
  - a `timestamp` that is not a finite non-negative number of seconds within years 1..9999 is
    ignored (create_date falls back to the SQS date), since no reject reason covers it.
"""
import argparse
import collections
import datetime
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import sys

REASONS = ("invalid_json", "not_object", "invalid_user_id", "invalid_device_type",
           "invalid_locale", "invalid_ip", "invalid_device_id", "invalid_app_version", "db_refused")

# Addresses whose canonical text differs between RFC 5952 as read here and glibc's inet_ntop:
# the IPv4-compatible range ::/96 minus :: and ::1 (inet_ntop prints ::a.b.c.d).
def ipv4_compatible_ambiguous(addr):
    v = int(addr)
    return v >> 32 == 0 and v > 0xFFFF


class JsonInt(int):
    """A JSON integer that remembers its source text."""
    raw = ""


def _parse_int(text):
    v = JsonInt(int(text))
    v.raw = text
    return v


def _reject_constant(name):
    raise ValueError("not JSON: " + name)


def _all_text_is_unicode(v):
    """False when a string (key or value) holds a lone surrogate from a \\ud800-style escape:
    such text has no UTF-8 form, so etlua (lua-cjson) refuses the body as invalid_json."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return True


def decode(body):
    """-> (ok, value). Strict RFC 8259 JSON, text that is Unicode (no lone surrogates)."""
    try:
        value = json.loads(body, parse_int=_parse_int, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None
    if not _all_text_is_unicode(value):
        return False, None
    return True, value


def nchars(s):
    return len(s)   # Python str length counts code points


def utf8(s):
    # lone surrogates (from "\\ud800" escapes) are kept as their 3-byte encodings
    return s.encode("utf-8", "surrogatepass")


def canonical_ip(s):
    """-> canonical text or None. IPv4 dotted quad (decimal 0..255, no leading zeros) or IPv6
    without zone id."""
    if not isinstance(s, str) or not s or not s.isascii():
        return None
    if re.fullmatch(r"[0-9.]+", s):
        parts = s.split(".")
        if len(parts) != 4:
            return None
        for p in parts:
            if not p or len(p) > 3 or (len(p) > 1 and p[0] == "0") or int(p) > 255:
                return None
        return s
    if "%" in s or ":" not in s:
        return None
    try:
        a = ipaddress.IPv6Address(s)
    except ValueError:
        return None
    v = int(a)
    groups = [(v >> (16 * (7 - i))) & 0xFFFF for i in range(8)]
    if groups[:6] == [0, 0, 0, 0, 0, 0xFFFF]:
        return "::ffff:%d.%d.%d.%d" % ((v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
    best, best_len, i = -1, 0, 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = ["%x" % g for g in groups]
    if best_len >= 2:
        return ":".join(hexes[:best]) + "::" + ":".join(hexes[best + best_len:])
    return ":".join(hexes)


VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+(?:\.[0-9]+)?)?")


def app_version_value(v):
    """-> (ok, int or None)."""
    if v is None:
        return True, None
    if isinstance(v, bool):
        return False, None
    if isinstance(v, (int, float)):
        # a JSON number N reads as "N" when its value is a non-negative integer: 2, 2.0, 2e0
        # and -0 alike (lua-cjson, like most JSON readers, keeps the value, not the spelling)
        if not math.isfinite(v) or v != int(v) or v < 0:
            return False, None
        text = str(int(v))
    elif isinstance(v, str):
        text = v
    else:
        return False, None          # list, object
    if not VERSION_RE.fullmatch(text):
        return False, None
    parts = [int(p) for p in text.split(".")] + [0, 0]
    major, minor, patch = parts[0], parts[1], parts[2]
    if minor >= 1000 or patch >= 1000 or major >= 2147:
        return False, None
    return True, major * 1000000 + minor * 1000 + patch


def timestamp_date(ts):
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    if isinstance(ts, float) and not math.isfinite(ts):
        return None
    if ts < 0:
        return None
    try:
        return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def mask(key, s):
    return hmac.new(key, utf8(s), hashlib.sha256).hexdigest()


def evaluate(body, key):
    """One message body (str) -> {"outcome": "accept", "row": {...}} or
    {"outcome": "reject", "reason": r, "detail": d}; "ambiguous": why, when the contract's
    reading may differ from a reasonable implementation."""
    def reject(reason, detail):
        return {"outcome": "reject", "reason": reason, "detail": detail}

    ok, rec = decode(body)
    if not ok:
        return reject("invalid_json", "body is not JSON")
    if not isinstance(rec, dict):
        return reject("not_object", "body is JSON but not an object")

    uid = rec.get("user_id")
    if not isinstance(uid, str) or uid == "" or nchars(uid) > 128:
        return reject("invalid_user_id", "user_id missing, not a string, empty or over 128 characters")
    for field in ("device_type", "locale"):
        v = rec.get(field)
        if v is not None and (not isinstance(v, str) or nchars(v) > 32):
            return reject("invalid_" + field, field + " not a string or over 32 characters")
    ip = rec.get("ip")
    cip = None
    ambiguous = None
    if ip is not None:
        cip = canonical_ip(ip)
        if cip is None:
            return reject("invalid_ip", "ip is not an IPv4 or IPv6 address")
    dev = rec.get("device_id")
    if dev is not None and (not isinstance(dev, str) or dev == ""):
        return reject("invalid_device_id", "device_id not a non-empty string")
    ok, version = app_version_value(rec.get("app_version"))
    if not ok:
        return reject("invalid_app_version", "app_version not MAJOR[.MINOR[.PATCH]] within limits")

    # No rule covers a NUL character, but Postgres text cannot hold one: the row is refused.
    if any(isinstance(rec.get(f), str) and "\x00" in rec.get(f) for f in ("user_id", "device_type", "locale")):
        return reject("db_refused", "Postgres refuses text with a NUL character")

    row = {
        "user_id": uid,
        "device_type": rec.get("device_type"),
        "masked_ip": mask(key, cip) if cip is not None else None,
        "masked_device_id": mask(key, dev) if dev is not None else None,
        "locale": rec.get("locale"),
        "app_version": version,
        "create_date": timestamp_date(rec["timestamp"]) if "timestamp" in rec else None,
    }
    out = {"outcome": "accept", "row": row}
    if ambiguous:
        out["ambiguous"] = ambiguous
    return out


def raw_pii(body):
    """The raw ip/device_id strings of a body that parses as an object (for leak checks)."""
    ok, rec = decode(body)
    if not ok or not isinstance(rec, dict):
        return []
    return [v for v in (rec.get("ip"), rec.get("device_id")) if isinstance(v, str) and v != ""]


HEX_RUN = re.compile(r"[0-9a-f]{64,}")
HEX_ONLY = re.compile(r"[0-9a-f]+")


def _leak_in(text, secrets):
    stripped = None
    for s in secrets:
        if HEX_ONLY.fullmatch(s):
            # a secret of hex digits only may appear inside a mask by chance: look for it with
            # every run of 64 hex digits or more (masks) taken out
            if stripped is None:
                stripped = HEX_RUN.sub("#", text)
            if s in stripped:
                return s
        elif s in text:
            return s
    return None


def pii_leak(text, secrets):
    """The first of secrets (raw pii values) found in text, or None. When text is JSON, each of
    its strings (keys and values, decoded) is searched too, so no escaping hides a value."""
    found = _leak_in(text, secrets)
    if found:
        return found
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            found = _leak_in(x, secrets)
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
        if found:
            return found
    return None


INPUT_ID = re.compile(r"input:[0-9a-f]+:([0-9]+)")


def pii_leaks(rejects_path, log_paths, min_len=6):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hostile
    corpus = hostile.pii_corpus()
    everywhere = sorted({s for c in corpus for s in c["secrets"] if len(s) >= min_len})

    def secrets_of(where):
        m = INPUT_ID.search(where)
        if m and 1 <= int(m.group(1)) <= len(corpus):
            return corpus[int(m.group(1)) - 1]["secrets"]
        return everywhere

    bad = 0
    with open(rejects_path, encoding="utf-8") as f:
        rows = json.load(f) or []
    for r in rows:
        secrets = secrets_of(r["id"])
        for col in ("detail", "body"):
            leak = pii_leak(r[col] or "", secrets)
            if leak:
                bad += 1
                print("LEAK %r in %s of reject %s: %s" % (leak, col, r["id"], (r[col] or "")[:200]))
    lines = 0
    for path in log_paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                lines += 1
                leak = pii_leak(line, secrets_of(line))
                if leak:
                    bad += 1
                    print("LEAK %r in %s: %s" % (leak, path, line[:200]))
    print("pii leaks: %d rejects, %d log lines, %d corpus entries, %d leaks" % (len(rows), lines, len(corpus), bad))
    return 1 if bad else 0


def read_bodies(path):
    """Yields (line_number, body) for the non-empty lines of a file ('-' = stdin)."""
    f = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for n, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            # Invalid UTF-8 cannot be a JSON text: keep the bytes decodable so decode() fails.
            yield n, raw.decode("utf-8", "surrogateescape")
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def load_key(key=None, key_file=None):
    if key is not None:
        return key.encode("utf-8")
    if key_file is None and os.environ.get("ETLUA_MASK_KEY") is not None:
        return os.environ["ETLUA_MASK_KEY"].encode("utf-8")
    key_file = key_file or os.environ.get("ETLUA_MASK_KEY_FILE")
    if not key_file:
        raise SystemExit("oracle: no key: --key, --key-file, ETLUA_MASK_KEY or ETLUA_MASK_KEY_FILE")
    with open(key_file, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    return data


def expectations(path, key):
    """-> (rows, rejects Counter, results list of (line, result), raw pii set)."""
    rows, rejects, results, pii = [], collections.Counter(), [], set()
    for n, body in read_bodies(path):
        r = evaluate(body, key)
        results.append((n, r))
        if r["outcome"] == "accept":
            rows.append(r["row"])
        else:
            rejects[r["reason"]] += 1
        pii.update(raw_pii(body))
    return rows, rejects, results, pii


def self_test(cases_path, key):
    bad = 0
    total = 0
    with open(cases_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            total += 1
            case = json.loads(line)
            got = evaluate(case["body"], key)
            note = case.get("note", "")
            if got["outcome"] != case["expect"]:
                bad += 1
                print("DISAGREE line %d (%s): expected %s, oracle %s %s" % (
                    n, note, case["expect"], got["outcome"], got.get("reason", "")))
                continue
            if case.get("reason") and got.get("reason") != case["reason"]:
                bad += 1
                print("DISAGREE line %d (%s): reason %s, oracle %s" % (n, note, case["reason"], got.get("reason")))
            if case["expect"] == "accept":
                want = case["row"]
                for k, v in want.items():
                    if got["row"].get(k) != v:
                        bad += 1
                        print("DISAGREE line %d (%s): %s expected %r, oracle %r" % (n, note, k, v, got["row"].get(k)))
    print("oracle self-test: %d cases, %d disagreements" % (total, bad))
    return 1 if bad or total == 0 else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Independent oracle for etlua's login rules.")
    ap.add_argument("path", help="bodies file (one per line) or '-'; with --self-test, cases.jsonl")
    ap.add_argument("pos_key", nargs="?", help="mask key (with --self-test)")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--pii-leaks", action="store_true")
    ap.add_argument("logs", nargs="*", help="with --pii-leaks: log files")
    ap.add_argument("--key")
    ap.add_argument("--key-file")
    a = ap.parse_args(argv)
    if a.pii_leaks:
        return pii_leaks(a.path, ([a.pos_key] if a.pos_key else []) + a.logs)
    key = load_key(a.key if a.key is not None else a.pos_key, a.key_file)
    if a.self_test:
        return self_test(a.path, key)
    if a.summary:
        rows, rejects, results, _ = expectations(a.path, key)
        print(json.dumps({"bodies": len(results), "accepted": len(rows), "rejected": sum(rejects.values()),
                          "rejects": dict(sorted(rejects.items())),
                          "ambiguous": sum(1 for _, r in results if "ambiguous" in r)}))
        return 0
    out = sys.stdout
    for n, body in read_bodies(a.path):
        r = evaluate(body, key)
        r = dict(line=n, **r)
        out.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
