-- bench/scrub.lua [--rounds R]: the cost of the reject path (etlua.reject_body over the C
-- scrubber etlua.scrub) for 1 MiB bodies of several shapes, against the cost of a normal
-- message: a login event of the sample (~165 B), and an accepted login of the same size and shape
-- (1 MiB of text, or of nested objects, in a field the script ignores: the normal path, decode,
-- validate, transform), the "x row" column.
-- Every body goes through etlua.record's process() with scripts/login_etl.lua, as the runner
-- calls it. Run it through bench/scrub.sh (a Release etlua.so, never the sanitizer build).
-- Each case: one warm-up, then R timed runs (os.clock: CPU seconds, garbage collection
-- included); the median is printed.
require "etlua"
local record = require "etlua.record"
local mask = require "etlua.mask"

local rounds = 7
if arg[1] == "--rounds" then rounds = assert(tonumber(arg[2]), "--rounds needs a number") end

local root = (debug.getinfo(1, "S").source:match("^@(.*)bench/scrub%.lua$") or "./")
if root == "" then root = "./" end
local script = dofile(root .. "scripts/login_etl.lua")
local p = record.new(script, {masker = mask.new("etlua-bench-key-0123456789abcdef0123456789")})
local META = {id = "m-1", sent_ms = 1700000000000, received_ms = 1700000000000}

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

-- Median CPU seconds of fn() repeated n times.
local function cost(fn, n)
  fn()
  local t = {}
  for r = 1, rounds do
    local t0 = os.clock()
    for _ = 1, n do fn() end
    t[r] = (os.clock() - t0) / n
  end
  return median(t)
end

local MiB = 1024 * 1024
local function run(unit, prefix, suffix)
  return prefix .. unit:rep((MiB - #prefix - #suffix) // #unit) .. suffix
end

local small = '{"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "app_version": "2.3.0", '
  .. '"device_type": "android", "ip": "199.172.111.135", "locale": "RU", "device_id": "593-47-5928"}'
local big_ok = run("lorem ipsum dolor sit amet ", small:sub(1, -2) .. ', "pad": "', '"}')
local NESTED = '{"ip": "203.0.113.7", "device_id": "dev-8", "at": "2001:db8::5"},'
local nested_ok = run(NESTED, small:sub(1, -2) .. ', "items": [', '{}]}')
for _, b in ipairs({small, big_ok, nested_ok}) do
  assert(p:process(b, META).row, "normal messages must be rows")
end

local OBJ = '{"user_id": "", "ip": "198.51.100.155", "device_id": "dev-7", "note": "'
local cases = {
  {"digits, in a JSON object", run("1", OBJ, '"}')},
  {"digits, truncated (not JSON)", run("1", '{"device_id": "dev-7", "x": "', "")},
  {"colons, truncated (not JSON)", run(":", '{"ip": "', "")},
  {"quotes (not JSON)", run('"', "", "")},
  {"free text with addresses and pii", run("login from 198.51.100.155 on dev-7 ", OBJ, '"}')},
  {"nested JSON objects with pii", run(NESTED, '{"user_id": "", "device_id": "dev-7", "items": [', '{}]}'),
   nested = true},
}

local t_small = cost(function() p:process(small, META) end, 20000)
local t_big = cost(function() p:process(big_ok, META) end, 5)
local t_nested = cost(function() p:process(nested_ok, META) end, 3)
print(("normal message, %d B (row)                  %9.1f us"):format(#small, t_small * 1e6))
local small_reject = small:gsub('"424cdd21%-063a%-43a7%-b91b%-7ca1a833afae"', '""')
assert(p:process(small_reject, META).reject, "small_reject must be a reject")
local t_small_reject = cost(function() p:process(small_reject, META) end, 20000)
print(("reject of that message (user_id empty)        %9.1f us"):format(t_small_reject * 1e6))
print(("normal message, 1 MiB of text (row)            %9.2f ms"):format(t_big * 1e3))
print(("normal message, 1 MiB of nested objects (row)  %9.2f ms"):format(t_nested * 1e3))
print()
print(("%-38s %9s %9s %14s %16s"):format("reject path, 1 MiB body", "ms", "MiB/s", "x row", "x small message"))
for _, c in ipairs(cases) do
  local out = p:process(c[2], META)
  assert(out.reject, c[1] .. ": expected a reject")
  local t = cost(function() p:process(c[2], META) end, 3)
  local row = c.nested and t_nested or t_big
  print(("%-38s %9.2f %9.0f %14.1f %16.0f"):format(c[1], t * 1e3, #c[2] / MiB / t, t / row,
                                                  t / t_small))
end
