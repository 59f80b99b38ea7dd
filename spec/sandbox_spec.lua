-- etlua.sandbox: what analysts' code (pipeline scripts, rule files, the files they require) can
-- reach. Every forbidden global and module is absent or refused; require of a neighbour file
-- works and runs in the same sandbox; the host's own tables cannot be changed from inside.
local H = require "spec.helper"
local sandbox = require "etlua.sandbox"
local script_loader = require "etlua.script"

local dir

local function write(name, text)
  local path = dir .. "/" .. name
  local sub = path:match("^(.*)/[^/]*$")
  assert(os.execute("mkdir -p '" .. sub .. "'"))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- Runs src as a chunk of a fresh sandbox on dir: true, value | false, message.
local function run(src, sb)
  sb = sb or sandbox.new(dir)
  local chunk, err = load(src, "=test", "t", sb.env)
  if not chunk then return false, err end
  return sb:run(chunk)
end

local function refused(src)
  local ok, err = run(src)
  assert.is_false(ok, src)
  return err
end

before_each(function() dir = H.temp_dir() end)
after_each(function() H.remove_dir(dir) end)

describe("etlua.sandbox environment", function()
  it("has none of the forbidden globals", function()
    for _, name in ipairs({"io", "debug", "package", "dofile", "loadfile", "collectgarbage",
                           "print", "warn", "coroutine"}) do
      local ok, v = run("return " .. name)
      assert.is_true(ok, name)
      assert.is_nil(v, name)
    end
  end)

  it("keeps only os.time, os.date, os.clock and os.difftime", function()
    for _, name in ipairs({"getenv", "exit", "execute", "remove", "rename", "tmpname", "setlocale"}) do
      local ok, v = run("return os." .. name)
      assert.is_true(ok)
      assert.is_nil(v, "os." .. name)
    end
    local ok, t = run("return os.date('!%Y-%m-%d', 0) .. ' ' .. type(os.time()) .. ' ' .. type(os.clock()) "
                      .. ".. ' ' .. os.difftime(2, 1)")
    assert.is_true(ok)
    assert.are.equal("1970-01-01 number number 1.0", t)
  end)

  it("offers the base functions, string, table, math, utf8", function()
    local ok, v = run([[
      local t = {}
      for w in ("b a c"):gmatch("%a") do t[#t + 1] = w end
      table.sort(t)
      return table.concat(t) .. math.floor(2.5) .. utf8.char(72) .. tostring(tonumber("7"))
             .. select("#", 1, 2) .. type(pcall) .. string.format("%02d", 3)]])
    assert.is_true(ok, v)
    assert.are.equal("abc2H72function03", v)
  end)

  it("refuses every host module and anything that is not a module name", function()
    for _, name in ipairs({"etlua.pg", "etlua.sqs", "etlua.host", "etlua.vault", "etlua.metrics",
                           "etlua.budget", "etlua.runner", "etlua.config", "io", "os", "debug",
                           "package", "../x", "/etc/passwd", "a..b", ".a", ""}) do
      local err = refused(("return require(%q)"):format(name))
      assert.truthy(err:find("require", 1, true), err)
    end
  end)

  it("cannot read /proc/self/environ or any file", function()
    refused("return io.open('/proc/self/environ'):read('a')")
    refused("return require('/proc/self/environ')")
    local ok, err = run("return require('proc.self.environ')", sandbox.new("/"))
    assert.is_false(ok)
    assert.truthy(err:find("not found", 1, true), err)
    refused("return loadfile('/proc/self/environ')")
    refused("return dofile('/proc/self/environ')")
    refused("return load(function() return 'return 1' end)") -- reader functions: not text
  end)

  it("gives cjson (an instance of its own) and the pure functions of etlua.mask", function()
    local ok, v = run([[
      local cjson = require "cjson"
      cjson.encode_sparse_array(true)   -- its own settings: the host's cjson is untouched
      local m = require "etlua.mask"
      return cjson.encode({1}) .. " " .. m.canonical_ip("::0:1") .. " " .. m.sha256_hex("")
             .. " " .. tostring(m.new) .. " " .. tostring(cjson.null == require("cjson").null)]])
    assert.is_true(ok, v)
    assert.are.equal("[1] ::1 " .. H.mask.sha256_hex("") .. " nil true", v)
    assert.has_error(function() H.cjson.encode({[1] = 1, [1000] = 5}) end) -- host: sparse refused
    local _, hmac = run("return require('etlua.mask').hmac_sha256_hex('k', 'v')")
    assert.are.equal(H.mask.hmac_sha256_hex("k", "v"), hmac)
  end)

  it("keeps the strings' metatable and the host's library tables out of reach", function()
    local ok, v = run("return getmetatable('')")
    assert.is_true(ok)
    assert.is_nil(v)
    assert.is_true((run("string.format = nil; string.rep = nil; table.concat = nil; math.floor = nil")))
    assert.are.equal("function", type(string.format))
    assert.are.equal("function", type(string.rep))
    assert.are.equal("function", type(table.concat))
    assert.are.equal("function", type(math.floor))
    -- ("").rep reaches the real function, but no table to change it in
    refused("local s = ''; s.rep = nil")   -- strings take no fields
    assert.are.same({true, "xx"}, {run("return ('x'):rep(2)")})
    -- the codec's metatable of decoded arrays is shared by every message: out of reach
    local arr = require("etlua.codec").decode("[1,2]")
    local sb = sandbox.new(dir)
    sb.env.arr = arr
    assert.are.same({true, "nil"}, {run("return tostring(getmetatable(arr))", sb)})
    assert.is_true((run("setmetatable(arr, {__index = function() return 1 end})", sb)))
    assert.is_nil(getmetatable(require("etlua.codec").decode("[]")).__index)  -- untouched
    -- a metatable of the script's own tables stays usable
    assert.are.same({true, 3}, {run("return setmetatable({}, {__index = function() return 3 end}).x")})
  end)

  it("loads text only: bytecode is refused, also through ('').dump", function()
    local err = refused("return load(('').dump(function() return 1 end))()")
    assert.truthy(err:find("binary", 1, true) or err:find("nil value", 1, true), err)
    local ok, v = run("return string.dump")
    assert.is_true(ok)
    assert.is_nil(v)
    local bc = string.dump(function() return 1 end)
    local path = write("bc.lua", bc)
    assert.is_nil(sandbox.new(dir):loadfile(path))
    write("bcmod.lua", bc)
    refused("return require 'bcmod'")
  end)

  it("runs load's chunks in the same sandbox and refuses an environment argument", function()
    assert.are.same({true, true}, {run("return load('return _ENV == _G and io == nil')()")})
    refused("return load('return 1', 'x', 't', {})")
    -- a mode argument changes nothing: text only
    local bc = ("%q"):format(string.dump(function() return 1 end))
    refused("return assert(load(" .. bc .. ", 'x', 'b'))()")
  end)

  it("refuses a __gc metamethod (it would run outside any budget)", function()
    local err = refused("setmetatable({}, {__gc = function() while true do end end})")
    assert.truthy(err:find("__gc", 1, true), err)
  end)
end)

describe("etlua.sandbox require of neighbour files", function()
  it("finds foo and foo.bar beside the script, runs them sandboxed, caches them", function()
    write("util.lua", "local n = 0; return {count = function() n = n + 1; return n end}")
    write("lib/peek.lua", [[return {io = io, getenv = os and os.getenv, env = _ENV,
                                     pg = pcall(require, "etlua.pg")}]])
    local ok, v = run([[
      local a, b = require "util", require "util"
      a.count(); b.count()
      local p = require "lib.peek"
      return tostring(a == b) .. a.count() .. tostring(p.io) .. tostring(p.getenv) .. tostring(p.pg)
             .. tostring(p.env == _G)]])
    assert.is_true(ok, v)
    assert.are.equal("true3nilnilfalsetrue", v)
  end)

  it("names the missing file, and refuses a module that requires itself", function()
    local err = refused("return require 'nope'")
    assert.truthy(err:find(dir .. "/nope.lua", 1, true), err)
    write("loop.lua", "return require 'loop'")
    err = refused("return require 'loop'")
    assert.truthy(err:find("itself", 1, true), err)
  end)

  it("loads a pipeline script in a sandbox on its own directory", function()
    write("helpers.lua", "return {upper = function(s) return s:upper() end}")
    local path = write("pipe.lua", [[
      local h = require "helpers"
      return {table = "t", columns = {"a"}, create_table = "CREATE TABLE %s (a text)",
              validate = function() return io == nil and os.getenv == nil end,
              transform = function(rec) return {a = h.upper(rec.a)} end}]])
    local s = script_loader.load(path)
    assert.is_true(s.validate({}))
    assert.are.same({a = "X"}, s.transform({a = "x"}))
  end)

  it("keeps only a raw copy of what a script returns (its metatables never run in the host)", function()
    local path = write("meta.lua", [[
      local cols = setmetatable({"a"}, {__len = function() while true do end end,
                                        __index = function() while true do end end})
      return setmetatable({table = "t", columns = cols, create_table = "x %s",
              validate = function() return true end, transform = function() return {} end},
             {__index = function() while true do end end})]])
    local s = script_loader.load(path)
    assert.is_nil(getmetatable(s.outputs[1].columns))
    assert.are.same({"a"}, s.outputs[1].columns)
  end)

  it("fails a script whose top level runs past the load budget, with one line", function()
    local saved = sandbox.LOAD_BUDGET_MS
    sandbox.LOAD_BUDGET_MS = 50
    local path = write("hang.lua", "while true do end")
    local ok, err = pcall(script_loader.load, path)
    sandbox.LOAD_BUDGET_MS = saved
    assert.is_false(ok)
    assert.truthy(err.user_error:find("ran longer than 50 ms", 1, true), err.user_error)
  end)

  it("runs the shipped login script and rules unchanged", function()
    local s = script_loader.load(H.ROOT .. "scripts/login_etl.lua")
    local rules = H.record.load_rules(H.ROOT .. "scripts/rules")
    local p = H.record.new(s, {masker = H.hasher, rules = rules})
    local out = p:process(H.body({}), H.META)
    assert.are.same(H.run({}).row, out.row)
    assert.are.equal("rule:known_device_type", p:process(H.body({device_type = "toaster"}), H.META).reject.reason)
    assert.are.equal("invalid_ip", p:process(H.body({ip = "1.2.3"}), H.META).reject.reason)
  end)
end)
