#!/usr/bin/env python3
"""tests/integration/gen_fifo.py N GROUPS [--bad-every K] [--huge-every H]: N bodies for the
FIFO tests, one a line, {"g": "g<i>", "seq": <n>} with seq counting 1, 2, ... within each group;
groups interleave round-robin. With --bad-every K every K-th body also carries "bad": true (the
test pipeline rejects it), with --huge-every H every H-th "huge": true (Postgres refuses its row)."""
import json
import sys

args = sys.argv[1:]
def option(name):
    if name not in args:
        return 0
    i = args.index(name)
    value = int(args[i + 1])
    del args[i:i + 2]
    return value


bad_every, huge_every = option("--bad-every"), option("--huge-every")
n, groups = int(args[0]), int(args[1])
seq = [0] * groups
for k in range(n):
    g = k % groups
    seq[g] += 1
    rec = {"g": "g%d" % g, "seq": seq[g]}
    if bad_every and (k + 1) % bad_every == 0:
        rec["bad"] = True
    if huge_every and (k + 1) % huge_every == 0:
        rec["huge"] = True
    print(json.dumps(rec, separators=(",", ":")))
