#!/usr/bin/python3
"""gen_tsv.py KEY < bodies.jsonl > rows.tsv: the user_logins rows of the generated messages as
COPY text, computed ahead of time, for the COPY ceiling (psql \\copy)."""
import hashlib, hmac, json, sys
from datetime import datetime, timezone

key = sys.argv[1].encode()
day = datetime.now(timezone.utc).date().isoformat()
out = sys.stdout
for line in sys.stdin:
    if not line.strip():
        continue
    r = json.loads(line)
    m = lambda v: "\\N" if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
    p = [int(x) for x in r["app_version"].split(".")] + [0, 0]
    out.write("\t".join([r["user_id"], r.get("device_type") or "\\N", m(r.get("ip")),
                         m(r.get("device_id")), r.get("locale") or "\\N",
                         str(p[0] * 1000000 + p[1] * 1000 + p[2]), day]) + "\n")
