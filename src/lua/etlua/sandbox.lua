--[[ etlua.sandbox: the environment analysts' code runs in (pipeline scripts, rule files and the
Lua files they require). etlua treats that code as untrusted: it must not reach the process
environment (keys, passwords), a file, a socket, a host module or the process itself.

  local sandbox = require "etlua.sandbox"
  local sb = sandbox.new(dir)        -- dir: where require "foo.bar" looks (DIR/foo/bar.lua)
  local chunk, err = sb:loadfile(path)   -- a text chunk running in sb.env, or nil, msg
  local ok, value = sb:run(chunk)        -- its top level under the load budget: true, value | false, msg
  sandbox.plain(value)               -- a raw copy of returned data: no metatable of the script's

The environment is built from an allow-list (never by deleting from _G), one per sandbox:
  * base functions: assert, error, ipairs, next, pairs, rawequal, rawget, rawlen, rawset, select,
    tonumber, tostring, type, _VERSION, _G (the sandbox itself), and wrapped:
      getmetatable  tables only, and never a metatable the host shares (nil for a string, and for
                    a decoded JSON array: the codec's array_mt stays out of reach)
      setmetatable  refuses a __gc field (a finaliser would run outside any budget)
      pcall, xpcall re-raise a budget stop (time or signal), so a script cannot catch it (and
                    xpcall's handler does not run for it)
      load          text chunks (strings) only, always in this sandbox: mode "t", no env argument
      require       "cjson" (a cjson.new() instance of its own), "etlua.mask" (the pure functions
                    sha256_hex, hmac_sha256_hex, canonical_ip) and Lua files in the sandbox's
                    directory, run in the same sandbox and cached in it
  * string (without dump), table, math, utf8: copies, so changing them changes nothing for the host;
    string's find, match, gmatch and gsub are etlua.budget's (budget.patterns), which a time
    budget or a stop signal cuts even while they match (below)
  * os.time, os.date, os.clock, os.difftime.
Left out on purpose: print and warn (stdout carries --dry-run rows; log lines belong to the host),
dofile, loadfile, collectgarbage, coroutine (a coroutine made at load time would run a hook's
code outside the budget's hook), io, the rest of os, debug, package, and every host module.
Budgets (time, memory, stop signal) are etlua.budget's; record.lua runs each hook call under it.
]]

local budget = require "etlua.budget"
local cjson = require "cjson"
local mask = require "etlua.mask"
local codec = require "etlua.codec"

local M = {}

-- Lua's own string.find, match, gmatch and gsub run no VM instruction while they match, so a
-- pattern that backtracks for hours would be out of the budget's reach; budget.patterns are
-- the same functions with a matcher that looks at the budget as it works. They go into the
-- state's string library itself, not only into each sandbox's copy: every string's metatable
-- indexes that table, so s:find(...) in a script reaches them. (Outside a budgeted call they
-- behave exactly as Lua's, for the host's own code too.)
for name, f in pairs(budget.patterns) do rawset(string, name, f) end

M.LOAD_BUDGET_MS = 5000 -- the top level of a script, a rule file or a required file, at load

local BASE = {"assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen",
              "rawset", "select", "tonumber", "tostring", "type"}
local OS = {"time", "date", "clock", "difftime"}

local function copy(t, without)
  local c = {}
  for k, v in pairs(t) do
    if k ~= without then c[k] = v end
  end
  return c
end

local expired = budget.expired
local function reraise_stop(ok, ...)
  if not ok and expired() then error((...), 0) end
  return ok, ...
end

-- Modules `require` finds besides the Lua files of the directory: a fresh table per sandbox.
local BUILTIN = {
  cjson = function() return cjson.new() end,
  ["etlua.mask"] = function()
    return {sha256_hex = mask.sha256_hex, hmac_sha256_hex = mask.hmac_sha256_hex,
            canonical_ip = mask.canonical_ip}
  end,
}

-- DIR/foo/bar.lua for "foo.bar"; nil for a name that is not dot-separated words ("..", "/").
local function module_path(dir, name)
  if type(name) ~= "string" or name == "" then return nil end
  for part in (name .. "."):gmatch("(.-)%.") do
    if not part:match("^[%w_%-]+$") then return nil end
  end
  return dir .. "/" .. name:gsub("%.", "/") .. ".lua"
end

local Sandbox = {}
Sandbox.__index = Sandbox

local LOADING = {}

local function make_require(sb)
  local loaded = {}
  return function(name)
    local v = loaded[name]
    if v == LOADING then error(("require: module '%s' requires itself"):format(name), 2) end
    if v ~= nil then return v end
    if BUILTIN[name] then
      v = BUILTIN[name]()
    elseif package.loaded[name] ~= nil or package.preload[name] ~= nil
        or (type(name) == "string" and name:match("^etlua%.")) then
      error(("require: '%s' is a host module; a sandboxed script can require cjson, etlua.mask "
             .. "and Lua files beside it"):format(name), 2)
    else
      local path = module_path(sb.dir, name)
      if not path then
        error(("require: '%s' is not a module name a sandboxed script may use (cjson, etlua.mask, "
               .. "or words joined by dots naming a Lua file beside the script)"):format(tostring(name)), 2)
      end
      local chunk, err = loadfile(path, "t", sb.env)
      if not chunk then
        if err:find("cannot open", 1, true) then
          error(("require: module '%s' not found: no file %s (a sandboxed script can require cjson, "
                 .. "etlua.mask and Lua files beside it)"):format(name, path), 2)
        end
        error(("require: module '%s': %s"):format(name, err), 2)
      end
      loaded[name] = LOADING
      local ok, res = pcall(chunk, name, path)
      if not ok then
        loaded[name] = nil
        error(res, 0)
      end
      v = res
      if v == nil then v = true end
    end
    loaded[name] = v
    return v
  end
end

-- sandbox.new(dir) -> a sandbox whose require looks in dir.
function M.new(dir)
  if type(dir) ~= "string" or dir == "" then error("etlua.sandbox: new(dir): dir must be a path", 2) end
  local sb = setmetatable({dir = dir:gsub("/+$", "")}, Sandbox)
  if sb.dir == "" then sb.dir = "/" end
  local env = {}
  for _, name in ipairs(BASE) do env[name] = _G[name] end
  env._VERSION = _VERSION
  env._G = env
  env.string = copy(string, "dump")
  env.table = copy(table)
  env.math = copy(math)
  env.utf8 = copy(utf8)
  env.os = {}
  for _, name in ipairs(OS) do env.os[name] = os[name] end
  env.getmetatable = function(v)
    if type(v) ~= "table" then return nil end
    local mt = getmetatable(v)
    if mt == codec.array_mt then return nil end
    return mt
  end
  env.setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("setmetatable: __gc is not allowed in a sandboxed script", 2)
    end
    return setmetatable(t, mt)
  end
  env.pcall = function(f, ...) return reraise_stop(pcall(f, ...)) end
  -- The handler of an error raised by the budget's hook would run with hooks off (it is called
  -- from inside the hook), out of the budget's reach: it is skipped for such an error.
  env.xpcall = function(f, h, ...)
    return reraise_stop(xpcall(f, function(e)
      if expired() then return e end
      return h(e)
    end, ...))
  end
  env.load = function(chunk, name, _, env_arg)
    if type(chunk) ~= "string" then
      error("load: a sandboxed script can load text chunks (strings) only", 2)
    end
    if env_arg ~= nil then
      error("load: a sandboxed script cannot give load an environment: chunks run in its own", 2)
    end
    return load(chunk, name, "t", env)
  end
  env.require = make_require(sb)
  sb.env = env
  return sb
end

-- sb:loadfile(path) -> chunk | nil, msg. Text only: a precompiled (bytecode) file is refused.
function Sandbox:loadfile(path)
  return loadfile(path, "t", self.env)
end

-- sb:run(chunk, ...) -> true, value | false, msg: the chunk's top level under the load budget.
function Sandbox:run(chunk, ...)
  local ok, why, text = budget.call(M.LOAD_BUDGET_MS, chunk, ...)
  if ok then return true, why end
  if why == "timeout" then
    return false, ("its top level ran longer than %d ms"):format(M.LOAD_BUDGET_MS)
  end
  return false, text
end

-- sandbox.plain(v) -> v with every table in it copied raw (next/rawset: no metamethod of the
-- script runs, none is kept), shared and cyclic references kept; other values as they are.
-- The host reads a script's returned data through such a copy only.
function M.plain(v)
  local seen = {}
  local function walk(x, depth)
    if type(x) ~= "table" then return x end
    if seen[x] then return seen[x] end
    if depth > 100 then error("a table nested more than 100 levels deep", 0) end
    local c = {}
    seen[x] = c
    local k, val = next(x)
    while k ~= nil do
      rawset(c, walk(k, depth + 1), walk(val, depth + 1))
      k, val = next(x, k)
    end
    return c
  end
  return walk(v, 0)
end

return M
