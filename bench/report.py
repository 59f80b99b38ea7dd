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


# Issue 16's goals: (key in the results file, what it divides, its goal or None, numerator,
# denominator, measure). Measures: "cpu" = CPU us a message (the numerator's over the
# denominator's), "rate" = msgs/s by the process's wall time, "drain" = msgs/s by the drain's own
# clock (start until the queue is empty: the process's wall time also counts each client's proof
# of emptiness, which differs). "the base commit": etlua at --base REV; its bare client is the
# bare client as it was when the goal was set (today's bare drain runs on etlua's own SQS
# client, which got cheaper with etlua).
GOALS = [
    ("cpu_etlua_over_bare", "etlua CPU/msg / bare client CPU/msg", "<= 0.4", "etlua", "bare", "cpu"),
    ("rate_etlua_over_bare", "etlua msgs/s / bare drain msgs/s", ">= 0.9", "etlua", "bare", "rate"),
    ("rate_etlua_over_tuned", "etlua msgs/s / tuned Python msgs/s", ">= 4", "etlua", "tuned", "rate"),
    ("drain_rate_etlua_over_bare", "the same, start to empty queue: etlua / bare drain", ">= 0.9",
     "etlua", "bare", "drain"),
    ("drain_rate_etlua_over_tuned", "the same, start to empty queue: etlua / tuned Python", ">= 4",
     "etlua", "tuned", "drain"),
    ("rate_input_over_copy", "etlua --input msgs/s / psql \\copy rows/s", ">= 0.3", "input", "copy", "rate"),
    ("cpu_etlua_over_base_bare", "etlua CPU/msg / the base commit's bare client CPU/msg", "<= 0.4",
     "etlua", "base-bare", "cpu"),
    ("cpu_etlua_over_base", "etlua CPU/msg / base commit's CPU/msg (drain)", "<= 0.25", "etlua", "base", "cpu"),
    ("rate_etlua_over_base", "etlua msgs/s / base commit's msgs/s (drain)", None, "etlua", "base", "rate"),
    ("cpu_input_over_base_input", "etlua --input CPU/msg / base commit's (--input)", "<= 0.25",
     "input", "base-input", "cpu"),
    ("rate_input_over_base_input", "etlua --input msgs/s / base commit's (--input)", None,
     "input", "base-input", "rate"),
]
SUMMARY_FIELD = {"cpu": "cpu_us_per_msg", "rate": "msgs_per_s", "drain": "drain_msgs_per_s"}


def measure(r, kind):
    """One run's figure for a goal's measure, or None."""
    if kind == "cpu":
        return (r["user_s"] + r["sys_s"]) * 1e6 / r["n"]
    secs = r["wall_s"] if kind == "rate" else r.get("drained_s")
    return r["n"] / secs if secs else None


def round_ratios(runs, num, den, kind):
    """The goal's ratio within each round where both passed: a round runs every implementation
    one after the other, so the host's speed moving between rounds cancels out of these."""
    per = {}
    for r in runs:
        if r["ok"]:
            per.setdefault(r["round"], {})[r["impl"]] = measure(r, kind)
    return [v[num] / v[den] for v in per.values() if v.get(num) and v.get(den)]


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
    # each goal twice: the ratio of the medians, and the median of each round's own ratio
    goals, by_round = {}, {}
    for key, _, _, num, den, kind in GOALS:
        a, b, field = get(num), get(den), SUMMARY_FIELD[kind]
        if a and b and a.get(field) and b.get(field):
            goals[key] = a[field] / b[field]
            rounds = round_ratios(runs, num, den, kind)
            if rounds:
                by_round[key] = {"median": statistics.median(rounds), "min": min(rounds),
                                 "max": max(rounds), "rounds": len(rounds)}
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
        "summary": summary, "goals": goals, "goals_by_round": by_round, "runs": runs,
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
    if goals:
        print()
        for key, label, goal, *_ in GOALS:
            if key not in goals:
                continue
            line = f"{label}: {goals[key]:.2f}"
            if goal:
                line += f" (goal {goal})"
            r = by_round.get(key)
            if r and r["rounds"] > 1:
                line += f"; by rounds {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}, {r['rounds']} rounds)"
            print(line)

if __name__ == "__main__":
    main()
