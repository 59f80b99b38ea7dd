-- bench/script_hooks.lua SCRIPT BODIES.jsonl [ROUNDS] [MODE]: the cost per message of a pipeline
-- script's own hooks, validate then transform, in a plain Lua loop under lua5.4 with a Release
-- etlua.so on LUA_CPATH and src/lua on LUA_PATH. The bodies are read, unwrapped (envelope) and
-- decoded first, their masks computed, as etlua.record does; the timed loop then calls validate
-- and, when it passes, transform with a ctx shaped like record.lua's (message = {id, received_ms}
-- as --input gives). MODE: hooks (default), validate, transform (of the bodies validate passed),
-- or empty (the loop alone, to subtract). Prints the median of ROUNDS passes (os.clock, garbage
-- collection included) in microseconds per message on stderr. For instruction counts, run one
-- round of a mode and of empty under `valgrind --tool=callgrind` and divide the difference by
-- the number of bodies.
require "etlua"
local script = require "etlua.script"
local record = require "etlua.record"
local mask = require "etlua.mask"

local path, file = arg[1], arg[2]
local rounds, mode = tonumber(arg[3] or 5), arg[4] or "hooks"
assert(path and file, "usage: lua5.4 bench/script_hooks.lua SCRIPT BODIES.jsonl [ROUNDS] [MODE]")

local desc = script.load(path)
local masker = mask.new("bench-key-0123456789abcdef0123456789")
local p = record.new(desc, {masker = masker})
local now_ms = os.time() * 1000
local recs, masks, messages = {}, {}, {}
for line in io.lines(file) do
  local rec = p:decode(line, {}, {})
  if rec then
    local n = #recs + 1
    recs[n], masks[n] = rec, p.pii_spec:row_masks(rec, masker)
    messages[n] = {id = "bench-" .. n, received_ms = now_ms}
  end
end

local validate, transform, ctx = desc.validate, desc.transform, p.ctx
local n = #recs
local valid = {}
for i = 1, n do valid[i] = validate(recs[i]) end

local passes = {
  hooks = function()
    for i = 1, n do
      local rec = recs[i]
      local ok = validate(rec)
      ctx.message, ctx.masked = messages[i], masks[i]
      if ok then transform(rec, ctx) end
    end
  end,
  validate = function()
    for i = 1, n do
      local _ = validate(recs[i])
      ctx.message, ctx.masked = messages[i], masks[i]
    end
  end,
  transform = function()
    for i = 1, n do
      ctx.message, ctx.masked = messages[i], masks[i]
      if valid[i] then transform(recs[i], ctx) end
    end
  end,
  empty = function()
    for i = 1, n do
      ctx.message, ctx.masked = messages[i], masks[i]
    end
  end,
}
local pass = assert(passes[mode], "MODE: hooks, validate, transform or empty")

local times = {}
for r = 1, rounds do
  collectgarbage("collect")
  local t0 = os.clock()
  pass()
  times[r] = os.clock() - t0
end
table.sort(times)
io.stderr:write(("%s %s: %d bodies, median %.3f us per message\n")
                :format(path, mode, n, times[(rounds + 1) // 2] / n * 1e6))
