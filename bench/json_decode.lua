-- bench/json_decode.lua FILE.jsonl... [--rounds R]: the cost per message of decoding (and
-- encoding back) JSON bodies with lua-cjson and with etlua.json, in a plain Lua loop under
-- lua5.4. Run it through bench/json_decode.sh, which builds a Release etlua.so (never the
-- sanitizer build) and generates the login set; or by hand with LUA_CPATH pointing at one.
-- Each file's lines are read into memory; each codec makes one warm-up pass, then R timed
-- passes (os.clock: CPU seconds of this process, garbage collection included); the median pass
-- is printed as microseconds per message.
local cjson = require "cjson"
require "etlua"
local json = require "etlua.json"

local files, rounds = {}, 7
local i = 1
while i <= #arg do
  if arg[i] == "--rounds" then
    rounds = assert(tonumber(arg[i + 1]), "--rounds needs a number")
    i = i + 2
  else
    files[#files + 1] = arg[i]
    i = i + 1
  end
end
assert(#files > 0, "usage: lua5.4 bench/json_decode.lua FILE.jsonl... [--rounds R]")

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

-- Median CPU seconds of one pass of fn over bodies.
local function time(bodies, fn)
  local n = #bodies
  for j = 1, n do fn(bodies[j]) end
  local runs = {}
  for r = 1, rounds do
    collectgarbage("collect")
    local t0 = os.clock()
    for j = 1, n do fn(bodies[j]) end
    runs[r] = os.clock() - t0
  end
  return median(runs)
end

print(("%-28s %8s %10s %10s %10s %8s"):format("file", "messages", "codec", "decode", "encode",
                                              "bytes"))
for _, file in ipairs(files) do
  local bodies, bytes = {}, 0
  for line in io.lines(file) do
    if line ~= "" then
      bodies[#bodies + 1] = line
      bytes = bytes + #line
    end
  end
  local n = #bodies
  local cj_values, js_values = {}, {}
  for j = 1, n do
    cj_values[j] = cjson.decode(bodies[j])
    js_values[j] = assert(json.decode(bodies[j]))
  end
  local codecs = {
    {"lua-cjson", cjson.decode, cjson.encode, cj_values},
    {"etlua.json", json.decode, json.encode, js_values},
  }
  for _, c in ipairs(codecs) do
    local dec = time(bodies, c[2])
    local k = 0
    local values = c[4]
    local enc = time(values, function(v) k = k + 1; return c[3](v) end)
    print(("%-28s %8d %10s %8.3f us %8.3f us %8.0f"):format(file:match("[^/]*$"), n, c[1],
          dec / n * 1e6, enc / n * 1e6, bytes / n))
  end
end
