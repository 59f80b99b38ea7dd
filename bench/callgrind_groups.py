#!/usr/bin/python3
"""callgrind_groups.py CALLGRIND_OUT OBJDIR...: share of instructions (Ir) per component.

Every function's own (exclusive) cost goes to the component of its code: by shared object
(libcurl -> HTTP client, cjson.so -> JSON, libcrypto -> hashing, libpq -> COPY/libpq,
liblua -> Lua interpreter), and for etlua's own C by source file (function names from `nm` of
the object files in OBJDIR). Shared helpers (libc, ld.so: malloc, memcpy, ...) have no
component of their own: a call into them is charged, inclusively, to the caller's component.
"""
import collections, os, re, subprocess, sys

NEUTRAL = ("libc.so", "ld-linux", "libm.so", "libpthread", "[vdso]", "libgcc")
OBJ_GROUPS = [("libcurl", "HTTP client (libcurl)"), ("libnghttp", "HTTP client (libcurl)"),
              ("libssl", "HTTP client (libcurl)"), ("libz.so", "HTTP client (libcurl)"),
              ("cjson", "JSON (lua-cjson)"), ("libcrypto", "hashing (OpenSSL libcrypto)"),
              ("libpq", "COPY / SQL (libpq)"), ("liblua", "Lua interpreter (liblua5.4)"),
              ("libexpat", "XML (expat)")]
SQS = "SQS client (etlua sqs*.c, sigv4.c)"
SRC_GROUPS = {"http.c": "HTTP client (etlua http.c)", "buf.c": "HTTP client (etlua http.c)",
              "sqs.c": SQS, "sqs_values.c": SQS, "sqs_codec.c": SQS, "sqs_json.c": SQS,
              "sqs_json_answer.c": SQS, "sigv4.c": SQS, "sqs_query.c": "XML (expat)",
              "mask.c": "hashing: masking (etlua mask.c + its libcrypto calls)",
              "json.c": "JSON bodies (etlua json*.c)", "json_decode.c": "JSON bodies (etlua json*.c)",
              "json_encode.c": "JSON bodies (etlua json*.c)", "json_lex.c": "JSON bodies (etlua json*.c)",
              "pg.c": "COPY / SQL (etlua pg*.c)", "pg_text.c": "COPY / SQL (etlua pg*.c)",
              "pg_param.c": "COPY / SQL (etlua pg*.c)", "pg_wait.c": "COPY / SQL (etlua pg*.c)",
              "row.c": "rows (etlua row.c)", "budget.c": "hook budget (etlua budget.c)",
              "host.c": "host glue (etlua host.c)", "main.c": "host glue (etlua host.c)"}


def fn_sources(objdir):
    m = {}
    for root, _, files in os.walk(objdir):
        for f in files:
            if f.endswith(".c.o"):
                out = subprocess.run(["nm", "--defined-only", os.path.join(root, f)],
                                     capture_output=True, text=True).stdout
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] in "tTwW":
                        m[parts[2]] = f[:-2]
    return m


# Neutral functions that call back into the program: their inclusive cost is not a helper's.
TRAMPOLINES = re.compile(r"libc_start|start_thread|clone|^_dl_|dl_open|dl_init|dlopen|call_init")


def main():
    path, objdirs = sys.argv[1], sys.argv[2:]
    src = {}
    for d in objdirs:
        src.update(fn_sources(d))
    names = {"ob": {}, "fn": {}}
    ref = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def name(kind, v):
        mm = ref.match(v)
        if not mm:
            return v
        if mm.group(2) is not None:
            names[kind][mm.group(1)] = mm.group(2)
            return mm.group(2)
        return names[kind].get(mm.group(1), "?")

    def group(ob, fn):
        base = os.path.basename(ob)
        if any(n in base for n in NEUTRAL):
            return None
        for key, g in OBJ_GROUPS:
            if key in base:
                return g
        if base.startswith("etlua"):
            s = src.get(fn.split("'")[0])
            return SRC_GROUPS.get(s, "etlua other (" + (s or "?") + ")")
        return "other (" + base + ")"

    cost = collections.Counter()
    total = 0
    ob = fn = cob = cfn = None
    cur_group = None
    pending_call = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c0 = line[0]
            if c0.isdigit() or c0 in "+-*":
                v = int(line.split()[-1]) if len(line.split()) > 1 else 0
                if pending_call:
                    pending_call = False
                    callee = group(cob or ob, cfn)
                    if callee is None and cur_group is not None and not TRAMPOLINES.search(cfn):
                        cost[cur_group] += v       # a helper's whole cost to the caller
                    elif (callee == "hashing (OpenSSL libcrypto)" and cur_group
                          and cur_group.startswith(("SigV4", "hashing: masking"))):
                        cost[callee] -= v          # charged to the caller that hashes
                        cost[cur_group] += v
                    cob = None                     # cob= names the callee of one call only
                    continue
                if cur_group is not None:
                    cost[cur_group] += v
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
                cob = None
                cur_group = group(ob, fn)
                # a helper's own cost is charged through its callers' call lines
            elif key == "cob":
                cob = name("ob", val)
            elif key == "cfn":
                cfn = name("fn", val)
            elif key == "calls":
                pending_call = True
            elif line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    acc = sum(cost.values())
    print(f"total Ir {total:,}; attributed {acc:,} ({100 * acc / total:.1f}%)")
    print("| component | share of CPU instructions |")
    print("|---|---:|")
    for g, v in cost.most_common():
        if v * 1000 >= total:
            print(f"| {g} | {100 * v / total:.1f}% |")
    rest = sum(v for v in cost.values() if v * 1000 < total)
    print(f"| (components under 0.1% each) | {100 * rest / total:.1f}% |")


if __name__ == "__main__":
    main()
