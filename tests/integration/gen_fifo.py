#!/usr/bin/env python3
"""tests/integration/gen_fifo.py N GROUPS [--bad-every K]: N bodies for the FIFO tests, one a
line, {"g": "g<i>", "seq": <n>} with seq counting 1, 2, ... within each group; groups
interleave round-robin. With --bad-every K every K-th body also carries "bad": true (the test
pipeline rejects it)."""
import json
import sys

args = sys.argv[1:]
bad_every = 0
if "--bad-every" in args:
    i = args.index("--bad-every")
    bad_every = int(args[i + 1])
    del args[i:i + 2]
n, groups = int(args[0]), int(args[1])
seq = [0] * groups
for k in range(n):
    g = k % groups
    seq[g] += 1
    rec = {"g": "g%d" % g, "seq": seq[g]}
    if bad_every and (k + 1) % bad_every == 0:
        rec["bad"] = True
    print(json.dumps(rec, separators=(",", ":")))
