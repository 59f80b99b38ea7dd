#!/usr/bin/env python3
"""Message bodies for the fault tests: tests/harness/gen_logins.py's logins with about 4% of them
made invalid (each reject family: invalid_json, not_object, invalid_user_id, invalid_ip,
invalid_app_version, invalid_device_id), so both tables must come out exact.

usage: bodies.py N [--seed S]      one body per line on stdout
"""
import argparse
import json
import random
import subprocess
import sys
import os

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "harness", "gen_logins.py")


def spoil(line, r, i):
    d = json.loads(line)
    kind = i % 6
    if kind == 0:
        return line[:-3]                       # cut: invalid_json
    if kind == 1:
        return json.dumps([d["user_id"]])      # not_object
    if kind == 2:
        d["user_id"] = ""                      # invalid_user_id
    elif kind == 3:
        d["ip"] = "300.%d.1.1" % r.randint(0, 255)   # invalid_ip
    elif kind == 4:
        d["app_version"] = "v%d" % r.randint(1, 9)   # invalid_app_version
    else:
        d["device_id"] = ""                    # invalid_device_id
    return json.dumps(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    lines = subprocess.run([sys.executable, GEN, str(a.n), "--seed", str(a.seed)], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    r = random.Random(a.seed)
    bad = 0
    out = sys.stdout
    for line in lines:
        if r.random() < 0.04:
            line = spoil(line, r, bad)
            bad += 1
        out.write(line + "\n")


if __name__ == "__main__":
    main()
