#!/usr/bin/env python3
"""Checks Prometheus text exposition (format 0.0.4) and compares scrapes.

usage: prom_check.py SCRAPE...
Each file must parse: `# HELP name text` and `# TYPE name type` at most once per family and
before its samples, samples `name{label="value",...} value [timestamp]` with valid names,
label values escaped (only \\\\, \\" and \\n), values that are floats (+Inf, -Inf, NaN), the
samples of a family contiguous; histograms, per series (the labels other than le), with
cumulative `_bucket{...,le=...}` ending at +Inf, equal to `_count`, and a `_sum`; counters
not negative. Across the files, in the order given, every counter sample (and every histogram
_bucket/_count) never goes down.
Prints the last file's samples as JSON: {"name{label=\\"v\\"}": value, ...}; exits 1 with the
first problem found.
"""
import json
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def number(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise Bad("not a number: %r" % s)
    return float(s)


def parse_labels(s, i):
    """s[i] is just past '{'; returns (list of (name, value)), index past '}'."""
    labels = []
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise Bad("bad label name at %r" % s[i:])
        name, i = m.group(0), m.end()
        if s[i:i + 2] != '="':
            raise Bad("expected =\" after label %s" % name)
        i += 2
        value = []
        while True:
            if i >= len(s):
                raise Bad("unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise Bad("bad escape \\%s in a label value" % nxt)
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad("raw newline in a label value")
            else:
                value.append(c)
                i += 1
        if any(n == name for n, _ in labels):
            raise Bad("label %s twice" % name)
        labels.append((name, "".join(value)))
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise Bad("expected , or } after a label value")


def key(name, labels):
    if not labels:
        return name
    return name + "{" + ",".join('%s="%s"' % (n, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
                                 for n, v in labels) + "}"


def parse(text):
    if text and not text.endswith("\n"):
        raise Bad("the text does not end with a newline")
    types, helps, samples, order = {}, {}, {}, []
    finished = set()
    current = None

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)] if name.endswith(suffix) else None
            if base and types.get(base) in ("histogram", "summary"):
                return base
        return name

    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not NAME.match(name):
                        raise Bad("bad metric name %r" % name)
                    if name in finished or (current == name and name in samples_by_family(samples, family_of)):
                        raise Bad("%s for %s after its samples" % (parts[1], name))
                    if parts[1] == "HELP":
                        if name in helps:
                            raise Bad("second HELP for %s" % name)
                        h = parts[3] if len(parts) > 3 else ""
                        if re.search(r"\\[^\\n]|\\$", h):
                            raise Bad("bad escape in HELP of %s" % name)
                        helps[name] = h
                    else:
                        if name in types:
                            raise Bad("second TYPE for %s" % name)
                        t = parts[3] if len(parts) > 3 else ""
                        if t not in TYPES:
                            raise Bad("unknown type %r" % t)
                        types[name] = t
                    if current and current != name:
                        finished.add(current)
                    current = name
                continue
            m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
            if not m:
                raise Bad("bad sample line")
            name, i = m.group(0), m.end()
            labels = []
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i + 1)
            rest = line[i:]
            if not rest.startswith(" "):
                raise Bad("expected a blank before the value")
            fields = rest.split()
            if len(fields) not in (1, 2):
                raise Bad("expected value [timestamp]")
            value = number(fields[0])
            if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
                raise Bad("bad timestamp")
            fam = family_of(name)
            if fam in finished:
                raise Bad("samples of %s are not contiguous" % fam)
            if current and current != fam:
                finished.add(current)
            current = fam
            k = key(name, labels)
            if k in samples:
                raise Bad("sample %s twice" % k)
            samples[k] = value
            order.append((fam, name, labels, value))
            t = types.get(fam, "untyped")
            if t == "counter" and not value >= 0:
                raise Bad("counter %s is %s" % (k, fields[0]))
            if t == "histogram" and name == fam:
                raise Bad("histogram %s has a bare sample" % fam)
        except Bad as e:
            raise Bad("line %d: %s: %r" % (lineno, e, line))
    # histograms: per series (the labels other than le), cumulative buckets ending at +Inf
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for f, n, l, v in order:
            if f == fam and n == fam + "_bucket":
                d = dict(l)
                if "le" not in d:
                    raise Bad("%s: a bucket without le" % fam)
                rest = [(a, b) for a, b in l if a != "le"]
                series.setdefault(tuple(rest), []).append((d["le"], v))
        if not series:
            raise Bad("%s: no buckets" % fam)
        for rest, buckets in series.items():
            if buckets[-1][0] != "+Inf":
                raise Bad("%s: the last bucket must be le=\"+Inf\"" % fam)
            bounds = [number(le) for le, _ in buckets]
            if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise Bad("%s: bucket bounds not increasing" % fam)
            counts = [v for _, v in buckets]
            if counts != sorted(counts):
                raise Bad("%s: buckets not cumulative" % fam)
            if samples.get(key(fam + "_count", list(rest))) != counts[-1]:
                raise Bad("%s: _count differs from the +Inf bucket" % fam)
            if key(fam + "_sum", list(rest)) not in samples:
                raise Bad("%s: no _sum" % fam)
    return types, samples


def samples_by_family(samples, family_of):
    return {family_of(k.split("{")[0]) for k in samples}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    prev = None
    for path in sys.argv[1:]:
        text = open(path, encoding="utf-8").read()
        try:
            types, samples = parse(text)
        except Bad as e:
            sys.exit("%s: %s" % (path, e))
        if prev:
            for k, v in samples.items():
                base = k.split("{")[0]
                fam = base
                for suffix in ("_bucket", "_count"):
                    if base.endswith(suffix) and types.get(base[: -len(suffix)]) == "histogram":
                        fam = base[: -len(suffix)]
                monotonic = types.get(fam) == "counter" or (fam != base and types.get(fam) == "histogram")
                if monotonic and k in prev and v < prev[k]:
                    sys.exit("%s: %s went down from %s to %s" % (path, k, prev[k], v))
            for k in prev:
                fam = k.split("{")[0]
                if types.get(fam) == "counter" and k not in samples:
                    sys.exit("%s: counter %s disappeared" % (path, k))
        prev = samples
    json.dump(prev, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
