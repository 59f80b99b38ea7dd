#!/usr/bin/python3
"""report.py RUNS.jsonl OUT.json: medians per implementation, the table, the results file."""
import json, os, platform, statistics, subprocess, sys, time

NAMES = {
    "etlua": "etlua (scripts/login_etl.lua --drain)",
    "tuned": "Python tuned (4 threads, HMAC, COPY/1000, DeleteMessageBatch)",
    "seed": "Python seed (receive 10, INSERT+commit per row, DeleteMessage)",
    "bare": "bare drain ceiling (bench/bare_drain.lua, no DB)",
    "copy": "COPY ceiling (psql \\copy of precomputed TSV)",
}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None


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
            "peak_rss_mib": statistics.median(r["max_rss_kb"] for r in rs) / 1024,
        })
    et = next((s for s in summary if s["impl"] == "etlua"), None)
    for s in summary:
        s["ratio_etlua_over_impl"] = (et["msgs_per_s"] / s["msgs_per_s"]
                                      if et and s["msgs_per_s"] else None)
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
        "emulator": "fauxqs", "notes": "CPU s and RSS are of the measured client process only "
                  "(not Postgres, not fauxqs). msgs/s = N / wall time of the whole process.",
        "summary": summary, "runs": runs,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    n = doc["n"]
    print(f"\nN = {n}, median of {doc['repeat']} run(s); CPU and RSS of the client process only\n")
    print("| implementation | msgs/s | CPU s | peak RSS MiB | ratio etlua/impl | ok |")
    print("|---|---:|---:|---:|---:|---|")
    for s in summary:
        if s["msgs_per_s"] is None:
            print(f"| {s['impl']} | failed | - | - | - | NO |")
            continue
        ratio = f"{s['ratio_etlua_over_impl']:.2f}" if s["ratio_etlua_over_impl"] else "-"
        print(f"| {s['impl']} | {s['msgs_per_s']:.0f} | {s['cpu_s']:.2f} | {s['peak_rss_mib']:.1f} | {ratio} | {'yes' if s['all_ok'] else str(s['ok_runs']) + '/' + str(s['runs'])} |")


if __name__ == "__main__":
    main()
