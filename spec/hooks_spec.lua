-- Hook calls (validate, a rule's check, transform) under etlua.budget: an endless loop is a
-- script_timeout reject naming the hook or the rule and the next message goes through; any
-- value a hook raises or returns becomes a reject with text, never a crash or a hang.
local H = require "spec.helper"
local budget = require "etlua.budget"
local host = require "etlua.host"
local sandbox = require "etlua.sandbox"

-- A function written in a sandbox (as analysts' code is), from its source text.
local function sandboxed(src)
  return assert(load("return " .. src, "=sandboxed", "t", sandbox.new("/nonexistent").env))()
end

local BUDGET = 50
local LOOP = function() while true do end end

local function processor(over, rules)
  local s = H.load_script()
  for k, v in pairs(over or {}) do s[k] = v end
  return H.record.new(s, {masker = H.hasher, rules = rules, budget_ms = BUDGET})
end

-- Processes a body, failing the test when it took far longer than the budget.
local function timed(p, body)
  local t0 = host.mono()
  local out = p:process(body or H.body({}), H.META)
  local ms = (host.mono() - t0) * 1000
  assert.is_true(ms < BUDGET + 1000, ("took %.0f ms"):format(ms))
  return out
end

local function only_loops_on(field)
  return function(rec) if rec[field] == "loop" then while true do end end return true end
end

describe("hook budget", function()
  it("an endless loop in validate is a script_timeout naming validate; the next message lands", function()
    local p = processor({validate = function(rec)
      if rec.locale == "loop" then while true do end end
      return true
    end})
    local r = H.reject(timed(p, H.body({locale = "loop"})))
    assert.are.equal("script_timeout", r.reason)
    assert.truthy(r.detail:find("^validate ran longer than its budget of 50 ms"), r.detail)
    assert.truthy(timed(p).row)
  end)

  it("an endless loop in a rule is a script_timeout naming the rule", function()
    local p = processor(nil, {{name = "spin", check = only_loops_on("locale")}})
    local r = H.reject(timed(p, H.body({locale = "loop"})))
    assert.are.equal("script_timeout", r.reason)
    assert.truthy(r.detail:find("^rule spin ran longer"), r.detail)
    assert.truthy(timed(p).row)
  end)

  it("an endless loop in transform is a script_timeout naming transform", function()
    local p = processor({transform = function(rec, ctx)
      if rec.locale == "loop" then while true do end end
      return H.script.transform(rec, ctx)
    end})
    local r = H.reject(timed(p, H.body({locale = "loop"})))
    assert.are.equal("script_timeout", r.reason)
    assert.truthy(r.detail:find("^transform ran longer"), r.detail)
    assert.truthy(timed(p).row)
  end)

  it("cannot be escaped by catching the error, in an error handler or in a row's __index", function()
    local catcher = sandboxed("function() while true do pcall(function() while true do end end) end end")
    local handler = sandboxed([[function()
      local function loop() while true do end end
      while true do xpcall(loop, loop) end
    end]])
    for _, hook in ipairs({catcher, handler}) do
      assert.are.equal("script_timeout", H.reject(timed(processor({validate = hook}))).reason)
    end
    local row = processor({transform = function() return setmetatable({}, {__index = LOOP}) end})
    assert.are.equal("script_timeout", H.reject(timed(row)).reason)
  end)

  it("a memory bomb is a script_error, fast", function()
    -- a budget of 5 s: the memory allowance, not the time, must stop these
    local function bomb(validate)
      local sc = H.load_script()
      sc.validate = validate
      local p = H.record.new(sc, {masker = H.hasher, budget_ms = 5000})
      local t0 = host.mono()
      local r = H.reject(p:process(H.body({}), H.META))
      assert.is_true(host.mono() - t0 < 3, "took too long")
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("used more than 64 MiB of memory", 1, true), r.detail)
    end
    bomb(function() return ("x"):rep(1 << 30) end)
    bomb(function() local s = ("x"):rep(1 << 20); return s:gsub("x", s) end)
    bomb(function() local t = {}; for i = 1, 1000 do t[i] = ("y"):rep(1 << 20) end; return t end)
    assert.truthy(timed(processor()).row)
  end)

  it("the budget is per call: many fast calls in a row never add up", function()
    local p = processor(nil, {{name = "slowish", check = function()
      local t = host.mono() + 0.02
      while host.mono() < t do end
      return true
    end}})
    for _ = 1, 5 do assert.truthy(p:process(H.body({}), H.META).row) end
  end)

  it("refuses a bad budget and a call inside a call", function()
    assert.has_error(function() H.record.new(H.script, {masker = H.hasher, budget_ms = 0}) end)
    assert.has_error(function() budget.call(0, print) end)
    assert.has_error(function() budget.call(10, "x") end)
    local ok, why, text = budget.call(100, function() return budget.call(100, print) end)
    assert.are.same({false, "error"}, {ok, why})
    assert.truthy(text:find("budgeted call is running", 1, true), text)
  end)

  it("passes the arguments as they are and returns true and every result, nils included", function()
    assert.are.same({n = 1, true}, table.pack(budget.call(100, function() end)))
    assert.are.same({n = 5, true, nil, "b", nil, nil},
                    table.pack(budget.call(100, function(...) return ... end, nil, "b", nil, nil)))
    local args = table.pack(budget.call(100, function(...) return select("#", ...), ... end, 1, nil, 3))
    assert.are.same({n = 5, true, 3, 1, nil, 3}, args)
    local many = {}
    for i = 1, 300 do many[i] = i end
    local got = table.pack(budget.call(100, table.unpack, many))
    assert.are.equal(301, got.n)
    assert.are.equal(true, got[1])
    assert.are.equal(300, got[301])
    -- and the same after a call that raised or ran past its budget
    assert.are.same({n = 3, false, "error", "x"}, table.pack(budget.call(100, error, "x", 0)))
    assert.are.same({n = 3, false, "timeout", "ran past its time budget"}, table.pack(budget.call(10, LOOP)))
    assert.are.same({n = 3, true, "x", 2}, table.pack(budget.call(100, function(a, b) return a, b end, "x", 2)))
  end)

  it("does not slow the code it runs: no hook is set while a call is within its budget", function()
    -- (a count hook made every Lua instruction about twice as slow)
    local ok, hook, mask, count = budget.call(100, function() return debug.gethook() end)
    assert.is_true(ok)
    assert.are.same({}, {hook, mask, count})
    assert.is_nil(debug.gethook()) -- and none is left behind, also after a stopped call
    budget.call(20, LOOP)
    assert.is_nil(debug.gethook())
  end)

  it("costs well under a microsecond per call (measured)", function()
    local f, n = function(x) return x end, 200000
    local t0 = host.mono()
    for i = 1, n do f(i) end
    local bare = host.mono() - t0
    t0 = host.mono()
    for i = 1, n do budget.call(100, f, i) end
    local us = ((host.mono() - t0) - bare) / n * 1e6
    print(("\nbudget.call overhead: %.3f us per call"):format(us))
    assert.is_true(us < 5, us)
  end)
end)

describe("the hook budget is CPU time, not wall time", function()
  -- ~5 ms of CPU: far within a budget of 50 ms, yet long enough that a call is what a stop
  -- from outside interrupts, and that a wall-clock watchdog would win the race after it
  local function short()
    local x = 0
    for i = 1, 200000 do x = x + i % 7 end
    return x
  end

  it("a call whose process is stopped from outside for 300 ms is not cut", function()
    local f = assert(io.open("/proc/self/stat"))
    local pid = assert(f:read("l"):match("^%d+"))
    f:close()
    local done = os.tmpname()
    os.remove(done)
    -- two stops of 300 ms (as a descheduled thread on an overloaded host), then a marker file
    assert(os.execute(("(sleep 0.2; kill -STOP %s; sleep 0.3; kill -CONT %s; sleep 0.2;"
      .. " kill -STOP %s; sleep 0.3; kill -CONT %s; touch %s) >/dev/null 2>&1 &")
      :format(pid, pid, pid, pid, done)))
    local t0, stopped_calls, calls, cut = host.mono(), 0, 0, {}
    repeat -- to the end even when a call is cut, so no stop lands in a later test
      local c0 = host.mono()
      local ok, why = budget.call(BUDGET, short)
      if not ok then cut[#cut + 1] = why end
      calls = calls + 1
      if host.mono() - c0 > 0.25 then stopped_calls = stopped_calls + 1 end
      local marker = io.open(done)
      if marker then marker:close() end
    until marker or host.mono() - t0 > 8
    os.remove(done)
    assert.is_true(host.mono() - t0 <= 8, "the stopping shell never finished")
    assert.are.same({}, cut)
    -- the stops did land inside calls (each call is nearly all of the loop's time)
    assert.is_true(stopped_calls >= 1, ("%d calls, none stopped"):format(calls))
  end)

  it("an endless loop is still cut after about its budget of CPU time", function()
    local c0 = os.clock()
    local ok, why = budget.call(BUDGET, LOOP)
    local cpu_ms = (os.clock() - c0) * 1000
    assert.are.same({false, "timeout"}, {ok, why})
    assert.is_true(cpu_ms >= BUDGET * 0.9, ("cut after %.0f ms of CPU"):format(cpu_ms))
    assert.is_true(cpu_ms < BUDGET + 500, ("cut after %.0f ms of CPU"):format(cpu_ms))
  end)
end)

describe("whatever a hook raises or returns", function()
  local UD = io.stdout
  local RAISED = {
    {"nil", function() error() end, "(error object is a nil value)"},
    {"a table", function() error({code = 1}) end, "(error object is a table value)"},
    {"a function", function() error(print) end, "(error object is a function value)"},
    {"a userdata", function() error(UD) end, "file ("},
    {"a number", function() error(42) end, "42"},
    {"a boolean", function() error(false) end, "(error object is a boolean value)"},
    {"a __tostring that raises", function() error(setmetatable({}, {__tostring = function() error("x") end})) end,
     "(error object is a table value)"},
    {"a __tostring returning a table", function() error(setmetatable({}, {__tostring = function() return {} end})) end,
     "(error object is a table value)"},
    {"a __tostring that loops", function() error(setmetatable({}, {__tostring = LOOP})) end, nil},
    {"a __tostring with text", function() error(setmetatable({}, {__tostring = function() return "custom" end})) end,
     "custom"},
  }

  for _, case in ipairs(RAISED) do
    it("raised as " .. case[1] .. ": a reject with text", function()
      for _, hook in ipairs({"validate", "transform"}) do
        local r = H.reject(timed(processor({[hook] = case[2]})))
        assert.are.equal("string", type(r.detail))
        if case[3] then
          assert.are.equal("script_error", r.reason)
          assert.truthy(r.detail:find(hook .. " raised an error: " .. case[3], 1, true), r.detail)
        else
          assert.are.equal("script_timeout", r.reason)
        end
      end
      local r = H.reject(timed(processor(nil, {{name = "r", check = case[2]}})))
      assert.are.equal(case[3] and "rule:r" or "script_timeout", r.reason)
    end)
  end

  it("a validate reason or detail of the wrong type is a script_error naming it", function()
    for _, v in ipairs({{}, print, UD, true, setmetatable({}, {__tostring = LOOP})}) do
      local r = H.reject(timed(processor({validate = function() return false, v end})))
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("validate returned false and a " .. type(v) .. " as reason", 1, true), r.detail)
      r = H.reject(timed(processor({validate = function() return false, "bad", v end})))
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("as detail", 1, true), r.detail)
    end
    local r = H.reject(timed(processor({validate = function() return false end})))
    assert.truthy(r.detail:find("false and nil as reason", 1, true), r.detail)
  end)

  it("a rule detail of the wrong type is a script_error naming the rule", function()
    for _, v in ipairs({{}, print, UD, true}) do
      local r = H.reject(timed(processor(nil, {{name = "odd", check = function() return false, v end}})))
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("rule odd returned a " .. type(v) .. " as detail", 1, true), r.detail)
    end
    local r = H.reject(timed(processor(nil, {{name = "n", check = function() return false, 7 end}})))
    assert.are.same({"rule:n", "7"}, {r.reason, r.detail})
  end)

  it("a transform returning no table, or unwritable values, is a script_error naming it", function()
    for _, v in ipairs({"x", print, UD, 1, true}) do
      local r = H.reject(timed(processor({transform = function() return v end})))
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("transform returned " .. type(v) .. ", not a row table", 1, true), r.detail)
    end
    local r = H.reject(timed(processor({transform = function() end})))
    assert.truthy(r.detail:find("returned nil", 1, true), r.detail)
    for _, v in ipairs({print, UD, coroutine.create(print)}) do
      r = H.reject(timed(processor({transform = function() return {user_id = v} end})))
      assert.are.equal("script_error", r.reason)
      assert.truthy(r.detail:find("column 'user_id'", 1, true), r.detail)
    end
  end)

  it("a hook that changes the record (metatables included) cannot hang the reject path", function()
    local p = processor({validate = function(rec)
      setmetatable(rec, {__pairs = LOOP, __index = LOOP})
      rec.ip = setmetatable({}, {__tostring = LOOP})
      return false, "nope", "detail"
    end})
    local r = H.reject(timed(p))
    assert.are.same({"nope", "detail"}, {r.reason, r.detail})
    assert.truthy(r.body:find(H.hex("199.172.111.135"), 1, true), r.body)
  end)

  it("keeps a long error short", function()
    local r = H.reject(timed(processor({validate = function() error(("e"):rep(10000), 0) end})))
    assert.is_true(#r.detail < 600, #r.detail)
  end)
end)

describe("what a hook does to the record or ctx", function()
  it("cannot reach the stored body of a refused row, nor the masks", function()
    local p = processor({transform = function(rec, ctx)
      local row = H.script.transform(rec, ctx)
      setmetatable(rec, {__pairs = LOOP, __index = LOOP})
      rec.ip = setmetatable({}, {__tostring = LOOP, __pairs = LOOP})
      ctx.masked.ip = {LOOP}
      ctx.masked.extra = print
      return row
    end})
    local out = timed(p)
    assert.truthy(out.row)
    assert.are.same({"ip", H.hex("199.172.111.135"), "199.172.111.135",
                     "device_id", H.hex("593-47-5928"), "593-47-5928"}, out.masks)
    local t0 = host.mono()
    local stored = p:stored_body({message = {body = H.body({})}, masks = out.masks})
    assert.is_true(host.mono() - t0 < 1)
    assert.truthy(stored:find(H.hex("199.172.111.135"), 1, true), stored)
  end)
end)
