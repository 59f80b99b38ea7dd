#!/usr/bin/env python3
"""Checks the example alert rules and Grafana dashboard against what etlua exports.

usage: check_monitoring.py SCRAPE
SCRAPE is the Prometheus text of a real /metrics scrape of a running etlua. Reads
deploy/prometheus/etlua-alerts.yaml (every rule's expr) and deploy/grafana/etlua.json (every
panel target's expr, the template variables' label_values queries) and checks that:
  - every metric they use is in the scrape (a family's samples, or a histogram's _bucket, _sum,
    _count), or is `up` (made by Prometheus itself);
  - every label a selector matches on is one the scrape's samples of that metric carry, or a
    target label (job, instance); a literal value (label="v") of such a label is one the scrape
    shows, when the scrape has samples of that metric (a family with no series yet, such as the
    queue depth of an --input run, has no values to compare);
  - the dashboard is well-formed (uid, title, panels with a type, a grid position and targets
    with a refId) and shows rate, lag, queue depth, rejects by reason, commit time, CPU and RSS;
  - the alert file has the rules this directory's README promises (stalled consumer, down, not
    ready, rejects, errors, memory).
The PromQL is read by a small tokenizer, not a parser (promtool validates the syntax of the
rules; there is no Python PromQL parser packaged for Debian): strings, durations and grouping
lists are set apart and the identifiers left are metric names unless a '(' follows (functions)
or they are operators. Exit 0 all good, 1 with one line per finding.
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<selector>\{[^}]*\})
  | (?P<other>\S)
""", re.X)
MATCHER = re.compile(r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?""")


def read_scrape(path):
    """{metric name: [dict of labels of each sample]}, histogram suffixes kept as names."""
    families, types = {}, {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            families.setdefault(name, [])
            if kind == "histogram":
                for suffix in ("_bucket", "_sum", "_count"):
                    families.setdefault(name + suffix, [])
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s", line)
        if not m:
            raise SystemExit("%s: not a sample line: %r" % (path, line))
        labels = dict((n, v) for n, _, v in MATCHER.findall(m.group(2)[1:-1])) if m.group(2) else {}
        families.setdefault(m.group(1), []).append(labels)
    return families


def selectors(expr):
    """[(metric name or None, [(label, op, value)])], [grouping label] of a PromQL expression."""
    out, grouping, tokens = [], [], [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)]
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
        if kind == "ident" and text in ("by", "without", "on", "ignoring", "group_left", "group_right") \
                and nxt[1] == "(":
            i += 2
            while i < len(tokens) and tokens[i][1] != ")":  # the grouping list: label names
                if tokens[i][0] == "ident":
                    grouping.append(tokens[i][1])
                i += 1
        elif kind == "ident" and (nxt[1] == "(" or (text in AGGREGATIONS and nxt[1] in ("by", "without"))):
            pass  # a function or an aggregation (`sum by (x) (...)`)
        elif kind == "ident" and text.lower() not in KEYWORDS:
            matchers = MATCHER.findall(nxt[1][1:-1]) if nxt[0] == "selector" else []
            out.append((text, matchers))
        elif kind == "selector" and (i == 0 or tokens[i - 1][0] != "ident"):
            out.append((None, MATCHER.findall(text[1:-1])))  # {__name__=...} or a bare selector
        i += 1
    return out, grouping


def check_expr(where, expr, scrape, problems, used):
    sels, grouping = selectors(expr)
    labels = set(TARGET_LABELS) | {"le"}
    for name, _ in sels:
        for s in scrape.get(name, []):
            labels |= set(s)
    # (a metric without samples in this scrape has labels it cannot show: no check then)
    known = all(scrape.get(name) for name, _ in sels if name != "up")
    for label in grouping if known else []:
        if label not in labels:
            problems.append("%s: grouping by %s, a label none of its metrics has" % (where, label))
    for name, matchers in sels:
        if name is None:
            problems.append("%s: a selector without a metric name: %s" % (where, expr))
            continue
        used.add(name)
        if name == "up":
            continue
        if name not in scrape:
            problems.append("%s: %s is not exported by etlua" % (where, name))
            continue
        samples = scrape[name]
        carried = set().union(*[set(s) for s in samples]) if samples else set()
        for label, op, value in matchers:
            if label in TARGET_LABELS:
                continue
            if samples and label not in carried:
                problems.append("%s: %s has no label %s (it has %s)" % (where, name, label, sorted(carried)))
            elif samples and op == "=" and "$" not in value and value not in {s.get(label) for s in samples}:
                problems.append("%s: %s{%s=\"%s\"}: no such value in the scrape" % (where, name, label, value))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    scrape = read_scrape(sys.argv[1])
    problems = []

    alerts_path = os.path.join(HERE, "prometheus", "etlua-alerts.yaml")
    rules = {}
    alert_used = set()
    doc = yaml.safe_load(open(alerts_path))
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            if not name or not isinstance(rule.get("expr"), str):
                problems.append("etlua-alerts.yaml: a rule without a name or an expr")
                continue
            used = set()
            check_expr("etlua-alerts.yaml %s" % name, rule["expr"], scrape, problems, used)
            rules[name] = used
            alert_used |= used
    promised = {
        "EtluaConsumerStalled": {"etlua_queue_messages", "etlua_last_commit_timestamp_seconds"},
        "EtluaDown": {"up"},
        "EtluaNotReady": {"etlua_ready"},
        "EtluaRejectRateHigh": {"etlua_rejects_total"},
        "EtluaErrors": {"etlua_errors_total"},
        "EtluaMemoryHigh": {"process_resident_memory_bytes"},
    }
    for name, needs in promised.items():
        if not needs <= rules.get(name, set()):
            problems.append("etlua-alerts.yaml: no %s rule using %s" % (name, ", ".join(sorted(needs))))

    dash_path = os.path.join(HERE, "grafana", "etlua.json")
    dash = json.load(open(dash_path))
    dash_used = set()
    for field in ("uid", "title", "panels"):
        if not dash.get(field):
            problems.append("etlua.json: no %s" % field)
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*", q or "")
        if var.get("type") == "query":
            if not m:
                problems.append("etlua.json: variable %s is not label_values(metric, label)" % var.get("name"))
            else:
                check_expr("etlua.json variable %s" % var["name"], "%s{%s=~\".*\"}" % m.groups(), scrape, problems, dash_used)
    ids = set()
    for p in dash.get("panels", []):
        title = p.get("title", "?")
        if not p.get("type") or not isinstance(p.get("gridPos"), dict) or not p.get("targets"):
            problems.append("etlua.json: panel %r lacks a type, a gridPos or targets" % title)
        if p.get("id") in ids:
            problems.append("etlua.json: panel id %s twice" % p.get("id"))
        ids.add(p.get("id"))
        for t in p.get("targets", []):
            if not t.get("refId") or not t.get("expr"):
                problems.append("etlua.json: panel %r has a target without refId or expr" % title)
                continue
            check_expr("etlua.json panel %r" % title, t["expr"], scrape, problems, dash_used)
    shown = {
        "rate": "etlua_messages_received_total", "lag": "etlua_event_lag_seconds_bucket",
        "queue depth": "etlua_queue_messages", "rejects by reason": "etlua_rejects_total",
        "commit time": "etlua_batch_commit_seconds_bucket", "CPU": "process_cpu_seconds_total",
        "RSS": "process_resident_memory_bytes",
    }
    for what, metric in shown.items():
        if metric not in dash_used:
            problems.append("etlua.json: no panel shows %s (%s)" % (what, metric))

    for p in problems:
        print("deploy: " + p)
    if problems:
        sys.exit(1)
    print("ok - %d alert rules and %d dashboard panels use %d metrics, all exported by etlua"
          % (len(rules), len(dash.get("panels", [])), len((alert_used | dash_used) - {"up"})))


if __name__ == "__main__":
    main()
