#!/usr/bin/env python3
"""tests/json/compare_python.py LUA CPATH [N] [--seed S]: etlua.json's decoder against Python's
json module as the oracle, on N generated documents (default 20000, seed 1): valid ones written
in varied forms (whitespace, \\u escapes, exponents, big and boundary integers, duplicate keys,
deep nesting) and as many mutated by a byte inserted, deleted or replaced, which are mostly
invalid. For each document both sides print a canonical dump of the value or ERR, and every
difference fails the test (the first ones are printed with the document in hex).

The oracle is Python's json.loads on the strictly UTF-8-decoded bytes, with what the RFC leaves
open decided as etlua.json documents it: NaN/Infinity refused, a lone surrogate refused, a number
beyond a double's range refused; integers within the signed 64-bit range stay integers, others
become floats (float(int), correctly rounded, as strtod does)."""
import argparse, json, math, os, random, subprocess, sys, tempfile

LUA_DUMP = r'''
require "etlua"
local json = require "etlua.json"
local fmt, concat, sort = string.format, table.concat, table.sort
local function hex(s) return (s:gsub(".", function(c) return fmt("%02x", c:byte()) end)) end
local function dump(v)
  local t = type(v)
  if v == json.null then return "n" end
  if t == "boolean" then return v and "t" or "f" end
  if t == "number" then
    if math.type(v) == "integer" then return fmt("i%d", v) end
    return fmt("f%.17g", v)
  end
  if t == "string" then return "s" .. hex(v) end
  local parts = {}
  if getmetatable(v) == json.array_mt then
    for i = 1, #v do parts[i] = dump(v[i]) end
    return "[" .. concat(parts, ",") .. "]"
  end
  for k, x in pairs(v) do parts[#parts + 1] = hex(k) .. ":" .. dump(x) end
  sort(parts)
  return "{" .. concat(parts, ",") .. "}"
end
local out = {}
for line in io.lines(arg[1]) do
  local doc = line:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  local v = json.decode(doc)
  out[#out + 1] = v == nil and "ERR" or dump(v)
end
io.write(concat(out, "\n"), "\n")
'''


class Refused(Exception):
    pass


def refuse(_):
    raise Refused()


def dump(v):
    if v is None:
        return "n"
    if v is True:
        return "t"
    if v is False:
        return "f"
    if isinstance(v, int):
        if -2**63 <= v < 2**63:
            return "i%d" % v
        return "f%.17g" % float(v)  # OverflowError past a double: refused
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            raise Refused()
        return "f%.17g" % v
    if isinstance(v, str):
        return "s" + v.encode("utf-8").hex()  # a lone surrogate raises: refused
    if isinstance(v, list):
        return "[" + ",".join(dump(x) for x in v) + "]"
    return "{" + ",".join(sorted(k.encode("utf-8").hex() + ":" + dump(x) for k, x in v.items())) + "}"


def last_wins(pairs):
    # a value a later duplicate key replaces must still be acceptable: etlua.json reads it too
    for k, v in pairs:
        dump(k)
        dump(v)
    return dict(pairs)


def oracle(b):
    try:
        return dump(json.loads(b.decode("utf-8"), parse_constant=refuse,
                               object_pairs_hook=last_wins))
    except (Refused, ValueError, UnicodeError, OverflowError, RecursionError):
        return "ERR"


def gen_number(r):
    k = r.randrange(9)
    if k == 0:
        return str(r.choice([0, -1, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**64, 2**53 + 1]))
    if k == 1:
        return str(r.randrange(-10**r.randrange(1, 30), 10**r.randrange(1, 30)))
    if k == 2:
        return r.choice(["-0", "0.0", "-0.0", "2e0", "2E+0", "1e-400", "1e400", "-1e309",
                         "4.9e-324", "1.7976931348623157e308", "1.7976931348623159e308"])
    if k == 3:
        return repr(r.uniform(-1e6, 1e6))
    if k == 4:
        import struct
        x = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
        return repr(x) if math.isfinite(x) else "1.5"
    mant = str(r.randrange(0, 10**r.randrange(1, 20)))
    frac = "." + str(r.randrange(0, 10**r.randrange(1, 20))) if r.random() < 0.6 else ""
    exp = r.choice(["e", "E"]) + r.choice(["", "+", "-"]) + str(r.randrange(0, 330)) \
        if r.random() < 0.5 else ""
    return r.choice(["", "-"]) + mant + frac + exp


def gen_string(r):
    out = ['"']
    for _ in range(r.randrange(0, 12)):
        k = r.randrange(10)
        if k < 4:
            out.append(r.choice("abcXYZ 09/'"))
        elif k == 4:
            out.append(r.choice(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]))
        elif k == 5:
            out.append("\\u%04x" % r.choice([0, 0x1f, 0x41, 0xe9, 0x20ac, 0xfffd, 0xffff,
                                             r.randrange(0x10000)]))
        elif k == 6:
            cp = r.randrange(0x10000, 0x110000) - 0x10000
            out.append("\\u%04X\\u%04x" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))
        elif k == 7:
            out.append(chr(r.choice([0xe9, 0x20ac, 0x1F600, 0x10FFFF, 0x7f, 0x2028])))
        elif k == 8:
            out.append(r.choice(["\\ud800", "\\udc00", "\\ud800\\u0041"]))  # lone surrogates
        else:
            out.append(r.choice(["\x01", "\t", "\\x", "\\u12G4"]))  # invalid in a string
    out.append('"')
    return "".join(out)


def ws(r):
    return r.choice(["", "", "", " ", "\n", "\t", " \r\n "])


def gen_value(r, depth):
    k = r.randrange(10 if depth < 12 else 6)
    if k < 2:
        return gen_number(r)
    if k < 4:
        return gen_string(r)
    if k == 4:
        return r.choice(["true", "false", "null"])
    if k == 5:
        return r.choice(["[]", "{}", "[ ]", "{ }"])
    if k < 8:
        items = [ws(r) + gen_value(r, depth + 1) + ws(r) for _ in range(r.randrange(0, 5))]
        return "[" + ",".join(items) + "]"
    keys = [gen_string(r) for _ in range(r.randrange(0, 4))]
    if keys and r.random() < 0.3:
        keys.append(keys[0])  # a duplicate key
    return "{" + ",".join(ws(r) + k + ws(r) + ":" + ws(r) + gen_value(r, depth + 1) + ws(r)
                          for k in keys) + "}"


def mutate(r, b):
    b = bytearray(b)
    for _ in range(r.randrange(1, 3)):
        pos = r.randrange(len(b) + 1)
        k = r.randrange(3)
        byte = r.choice(b'{}[]:,"\\-.eE0123456789 tfnu\x00\x80\xc3\xed\xf4\xff')
        if k == 0:
            b.insert(pos, byte)
        elif k == 1 and pos < len(b):
            del b[pos]
        elif pos < len(b):
            b[pos] = byte
    return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lua")
    ap.add_argument("cpath")
    ap.add_argument("n", type=int, nargs="?", default=20000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    r = random.Random(a.seed)
    docs = []
    for i in range(a.n):
        d = (ws(r) + gen_value(r, 0) + ws(r)).encode("utf-8", "surrogatepass")
        if i % 2:
            d = mutate(r, d)
        docs.append(d)
    docs += [b"[" * 1000 + b"]" * 1000, b"[" * 1001 + b"]" * 1001, b"", b" ", b"\xef\xbb\xbf{}"]
    want = [oracle(d) for d in docs]
    for i, d in enumerate(docs):  # Python's recursion limit is not the contract's depth limit
        if d.startswith(b"[" * 1000):
            want[i] = "ERR" if d.startswith(b"[" * 1001) else "[" * 1000 + "]" * 1000
    with tempfile.TemporaryDirectory() as tmp:
        inp, script = os.path.join(tmp, "docs.hex"), os.path.join(tmp, "dump.lua")
        with open(inp, "w") as f:
            f.write("\n".join(d.hex() for d in docs) + "\n")
        with open(script, "w") as f:
            f.write(LUA_DUMP)
        env = dict(os.environ, LUA_CPATH=a.cpath + "/?.so;;")
        got = subprocess.run([a.lua, script, inp], env=env, check=True, capture_output=True,
                             text=True).stdout.split("\n")[:-1]
    bad = [i for i in range(len(docs)) if got[i] != want[i]]
    accepted = sum(1 for w in want if w != "ERR")
    print("json vs python: %d documents (%d valid, %d refused), %d differences"
          % (len(docs), accepted, len(docs) - accepted, len(bad)))
    for i in bad[:10]:
        print("  doc %s\n    etlua.json %s\n    python     %s" % (docs[i].hex(), got[i][:200],
                                                               want[i][:200]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
