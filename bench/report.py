#!/usr/bin/python3
"""report.py RUNS.jsonl OUT.json: medians per implementation, the table, the results file."""
import json, os, platform, statistics, subprocess, sys, time

NAMES = {
    "etlua": "etlua (scripts/login_etl.lua --drain)",
    "tuned": "Python tuned (4 threads, HMAC, COPY/1000, DeleteMessageBatch)",
    "seed": "Python seed (receive 10, INSERT+commit per row, DeleteMessage)",
    "bare": "bare drain ceiling (bench/bare_drain.lua, no DB)",
    "copy": "COPY ceiling (psql \\copy of precomputed TSV)",
    "input": "etlua --input of the same bodies (no SQS)",
    "base": "etlua at the base commit (--base), --drain",
    "base-input": "etlua at the base commit (--base), --input",
    "base-bare": "bare drain on the base commit's SQS client (its bench/bare_drain.lua, no DB)",
}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None


def round_ratios(runs, num, den):
    """wall(num) / wall(den) of every round where both passed: den's rate over num's."""
    walls = {}
    for r in runs:
        if r["ok"] and r["wall_s"] > 0:
            walls.setdefault(r["round"], {})[r["impl"]] = r["wall_s"]
    return [w[num] / w[den] for w in walls.values() if num in w and den in w]


def main():
    runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    order = [k for k in NAMES if any(r["impl"] == k for r in runs)]
    summary = []
    for k in order:
        every = [r for r in runs if r["impl"] == k]
        rs = [r for r in every if r["ok"]]     # medians over the runs that passed the checks
        if not rs:
            summary.append({"impl": k, "description": NAMES[k], "runs": len(every), "ok_runs": 0,
                            "all_ok": False, "wall_s": None, "msgs_per_s": None, "cpu_s": None,
                            "peak_rss_mib": None})
            continue
        wall = statistics.median(r["wall_s"] for r in rs)
        n = rs[0]["n"]
        summary.append({
            "impl": k, "description": NAMES[k], "runs": len(every), "ok_runs": len(rs),
            "all_ok": len(rs) == len(every),
            "wall_s": wall,
            "msgs_per_s": n / wall if wall > 0 else None,
            "cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in rs),
            "cpu_us_per_msg": statistics.median(r["user_s"] + r["sys_s"] for r in rs) * 1e6 / n,
            "peak_rss_mib": statistics.median(r["max_rss_kb"] for r in rs) / 1024,
        })
        drained = [r["drained_s"] for r in rs if r.get("drained_s")]
        if len(drained) == len(rs):
            # a drain's own clock: until the queue held nothing (the harness watching it)
            summary[-1]["drained_s"] = statistics.median(drained)
            summary[-1]["drain_msgs_per_s"] = n / summary[-1]["drained_s"]
    et = next((s for s in summary if s["impl"] == "etlua"), None)
    for s in summary:
        s["ratio_etlua_over_impl"] = (et["msgs_per_s"] / s["msgs_per_s"]
                                      if et and s["msgs_per_s"] else None)
    def get(k):
        return next((s for s in summary if s["impl"] == k and s["msgs_per_s"]), None)
    bare, inp, copy = get("bare"), get("input"), get("copy")
    goals = {}
    if et and et["msgs_per_s"] and bare:
        # etlua's own CPU per message against the bare receive+delete client's (goal <= 0.4)
        goals["cpu_etlua_over_bare"] = et["cpu_us_per_msg"] / bare["cpu_us_per_msg"]
        goals["rate_etlua_over_bare"] = et["msgs_per_s"] / bare["msgs_per_s"]       # goal >= 0.9
    if et and et["msgs_per_s"] and get("tuned"):
        goals["rate_etlua_over_tuned"] = et["msgs_per_s"] / get("tuned")["msgs_per_s"]  # goal >= 4
    # the same two rate goals on the drain's own clock (start until the queue is empty): the
    # process's wall time also counts each client's proof of emptiness, which differs
    for k in ("bare", "tuned"):
        o = get(k)
        if et and o and et.get("drain_msgs_per_s") and o.get("drain_msgs_per_s"):
            goals[f"drain_rate_etlua_over_{k}"] = et["drain_msgs_per_s"] / o["drain_msgs_per_s"]
    if inp and copy:
        goals["rate_input_over_copy"] = inp["msgs_per_s"] / copy["msgs_per_s"]       # goal >= 0.3
        # each round runs both one after the other: the median of the rounds' own ratios is not
        # moved by the host's speed changing between rounds as the ratio of medians is
        by_round = round_ratios(runs, "copy", "input")
        if by_round:
            goals["rate_input_over_copy_by_round"] = statistics.median(by_round)
    base_bare = get("base-bare")
    if et and et["msgs_per_s"] and base_bare:
        # the same CPU goal against the bare client as it was when the goal was set (the bare
        # drain runs on etlua's own SQS client, which got cheaper with etlua)
        goals["cpu_etlua_over_base_bare"] = et["cpu_us_per_msg"] / base_bare["cpu_us_per_msg"]  # <= 0.4
    base, base_inp = get("base"), get("base-input")
    if et and et["msgs_per_s"] and base:
        # "4x less CPU than today": etlua's CPU per message against the base commit's, same run
        goals["cpu_etlua_over_base"] = et["cpu_us_per_msg"] / base["cpu_us_per_msg"]  # goal <= 0.25
        goals["rate_etlua_over_base"] = et["msgs_per_s"] / base["msgs_per_s"]
    if inp and base_inp:
        goals["cpu_input_over_base_input"] = inp["cpu_us_per_msg"] / base_inp["cpu_us_per_msg"]  # <= 0.25
        goals["rate_input_over_base_input"] = inp["msgs_per_s"] / base_inp["msgs_per_s"]
    cpu = None
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    doc = {
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n": runs[0]["n"] if runs else None,
        "repeat": max((r["round"] for r in runs), default=0),
        "host": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release()},
        "versions": {"git": sh("git", "describe", "--always", "--dirty"), "node": sh("node", "--version"),
                     "psql": sh("psql", "--version"), "python": platform.python_version()},
        "postgres": os.environ.get("BENCH_PG_MODE", "durable"),
        "base_rev": os.environ.get("BENCH_BASE_REV") or None,
        "emulator": "fauxqs", "notes": "CPU s and RSS are of the measured client process only "
                  "(not Postgres, not fauxqs). msgs/s = N / wall time of the whole process; "
                  "drain msgs/s = N / drained_s, from the client's start until the harness saw the "
                  "queue hold no message (visible or in flight).",
        "summary": summary, "goals": goals, "runs": runs,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    n = doc["n"]
    if doc["base_rev"]:
        print(f"\nbase = etlua at {doc['base_rev']}")
    print(f"\nN = {n}, Postgres {doc['postgres']}, median of {doc['repeat']} run(s); "
          f"CPU and RSS of the client process only\n")
    print("| implementation | msgs/s | to empty s | drain msgs/s | CPU s | CPU us/msg | peak RSS MiB | ratio etlua/impl | ok |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in summary:
        if s["msgs_per_s"] is None:
            print(f"| {s['impl']} | failed | - | - | - | - | - | - | NO |")
            continue
        ratio = f"{s['ratio_etlua_over_impl']:.2f}" if s["ratio_etlua_over_impl"] else "-"
        empty = (f"{s['drained_s']:.2f} | {s['drain_msgs_per_s']:.0f}" if s.get("drained_s") else "- | -")
        print(f"| {s['impl']} | {s['msgs_per_s']:.0f} | {empty} | {s['cpu_s']:.2f} | {s['cpu_us_per_msg']:.1f} | {s['peak_rss_mib']:.1f} | {ratio} | {'yes' if s['all_ok'] else str(s['ok_runs']) + '/' + str(s['runs'])} |")
    labels = {"cpu_etlua_over_bare": ("etlua CPU/msg / bare client CPU/msg", "<= 0.4"),
              "rate_etlua_over_bare": ("etlua msgs/s / bare drain msgs/s", ">= 0.9"),
              "cpu_etlua_over_base_bare": ("etlua CPU/msg / the base commit's bare client CPU/msg", "<= 0.4"),
              "rate_etlua_over_tuned": ("etlua msgs/s / tuned Python msgs/s", ">= 4"),
              "drain_rate_etlua_over_bare": ("the same, start to empty queue: etlua / bare drain", ">= 0.9"),
              "drain_rate_etlua_over_tuned": ("the same, start to empty queue: etlua / tuned Python", ">= 4"),
              "rate_input_over_copy": ("etlua --input msgs/s / psql \\copy rows/s", ">= 0.3"),
              "rate_input_over_copy_by_round": ("the same, median of each round's own ratio", ">= 0.3"),
              "cpu_etlua_over_base": ("etlua CPU/msg / base commit's CPU/msg (drain)", "<= 0.25"),
              "rate_etlua_over_base": ("etlua msgs/s / base commit's msgs/s (drain)", None),
              "cpu_input_over_base_input": ("etlua --input CPU/msg / base commit's (--input)", "<= 0.25"),
              "rate_input_over_base_input": ("etlua --input msgs/s / base commit's (--input)", None)}
    if goals:
        print()
        for k, v in goals.items():
            goal = f" (goal {labels[k][1]})" if labels[k][1] else ""
            print(f"{labels[k][0]}: {v:.2f}{goal}")


if __name__ == "__main__":
    main()
