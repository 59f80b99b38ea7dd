--[[ etlua.script: loads the user's pipeline script and turns it, once at start-up, into one
description that every other part reads (SCRIPTING.md is the user's reference):

  local desc = script.load(path)          -- or script.describe(tbl, name) for a loaded table
  desc.outputs        list, in order, of {name, table, schema, columns, create_table,
                      key (list | nil), on_conflict ("error" | "ignore" | "update"),
                      order_by (column | nil), index = position}
  desc.by_name        output name -> output
  desc.multi          true when the script used `outputs` (transform returns rows per output
                      name); false for the one-output shorthand (transform returns one row)
  desc.rejects_table  the rejects table (default: the first output's table .. "_rejects")
  desc.schema         schema of the rejects table and the ledger (the first output's)
  desc.pii            list of {path = "a.b", canonical = nil | "ip" | "lower" | "trim"}
  desc.envelope       nil | "sns"
  desc.validate, desc.transform, desc.rules, desc.config, desc.path

Every table name comes from here and nowhere else. A script that breaks the contract stops
etlua at start-up with one line naming the script and the field.

load() runs the script in a sandbox (etlua.sandbox) whose require looks in the script's own
directory, its top level under the load budget; describe() reads only a raw copy of the table
it returns (sandbox.plain), so no metamethod of the script runs outside a budget.
]]
local fail = require "etlua.fail"
local sandbox = require "etlua.sandbox"

local M = {}

local CONFLICT = { error = true, ignore = true, update = true }

local function is_list_of_strings(t)
  if type(t) ~= "table" or #t == 0 then return false end
  for i = 1, #t do
    if type(t[i]) ~= "string" or t[i] == "" then return false end
  end
  for k in pairs(t) do
    if math.type(k) ~= "integer" then return false end
  end
  return true
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- One output, checked. `where` names it in errors ("outputs[2]" or the shorthand).
local function output(name, spec, where, bad)
  if type(spec.table) ~= "string" or spec.table == "" then
    bad("%s needs 'table', the target table's name", where)
  end
  if not is_list_of_strings(spec.columns) then
    bad("%s needs 'columns', a non-empty list of column names", where)
  end
  local seen = {}
  for _, c in ipairs(spec.columns) do
    if seen[c] then bad("%s: column '%s' is listed twice", where, c) end
    seen[c] = true
  end
  if type(spec.create_table) ~= "string" then
    bad("%s needs 'create_table', the CREATE TABLE IF NOT EXISTS statement (%%s = table name)", where)
  end
  if spec.schema ~= nil and (type(spec.schema) ~= "string" or spec.schema == "") then
    bad("%s: 'schema' must be a schema name", where)
  end
  local key = spec.key
  if key ~= nil then
    if not is_list_of_strings(key) then bad("%s: 'key' must be a non-empty list of column names", where) end
    for _, c in ipairs(key) do
      if not seen[c] then bad("%s: key column '%s' is not in 'columns'", where, c) end
    end
  end
  local on_conflict = spec.on_conflict or "error"
  if not CONFLICT[on_conflict] then
    bad("%s: 'on_conflict' must be \"error\", \"ignore\" or \"update\"", where)
  end
  if on_conflict ~= "error" and key == nil then
    bad("%s: on_conflict = \"%s\" needs a 'key'", where, on_conflict)
  end
  local order_by = spec.order_by
  if order_by ~= nil then
    if on_conflict ~= "update" then bad("%s: 'order_by' needs on_conflict = \"update\"", where) end
    if type(order_by) ~= "string" or not seen[order_by] then
      bad("%s: 'order_by' must name one of its columns", where)
    end
    if set_of(key)[order_by] then bad("%s: 'order_by' must not be a key column", where) end
  end
  return {
    name = name, table = spec.table, schema = spec.schema,
    columns = table.move(spec.columns, 1, #spec.columns, 1, {}),
    create_table = spec.create_table,
    key = key and table.move(key, 1, #key, 1, {}) or nil,
    on_conflict = on_conflict, order_by = order_by,
  }
end

-- The pii declaration as {path, canonical} entries, checked by etlua.pii (the one parser of
-- pii paths) so a bad entry is a one-line user error at start-up.
local function pii_entries(pii, bad)
  local ok, spec = pcall(require("etlua.pii").compile, pii)
  if not ok then bad("%s", tostring(spec)) end
  local list = {}
  for i, e in ipairs(spec.entries) do list[i] = { path = e.path, canonical = e.canonical } end
  return list
end

-- describe(script, name) -> description. Raises a user error (one line) for a script that
-- does not follow the contract.
function M.describe(script, name)
  local function bad(fmt, ...)
    fail.user("script %s: " .. fmt .. "; see SCRIPTING.md", name, ...)
  end
  if type(script) ~= "table" then bad("must return a table (got %s)", type(script)) end
  for _, hook in ipairs({ "validate", "transform" }) do
    if type(script[hook]) ~= "function" then bad("has no function '%s'", hook) end
  end

  local outputs, multi = {}, script.outputs ~= nil
  if multi then
    if script.table ~= nil or script.columns ~= nil then
      bad("give either 'outputs' or the one-output 'table'/'columns', not both")
    end
    if type(script.outputs) ~= "table" or #script.outputs == 0 then
      bad("'outputs' must be a non-empty list of outputs")
    end
    for i, spec in ipairs(script.outputs) do
      local where = ("outputs[%d]"):format(i)
      if type(spec) ~= "table" then bad("%s must be a table", where) end
      local oname = spec.name or spec.table
      if type(oname) ~= "string" or oname == "" then bad("%s needs a 'name' or a 'table'", where) end
      outputs[i] = output(oname, spec, where .. " (" .. oname .. ")", bad)
    end
  else
    outputs[1] = output(script.table, script, "the one-output form", bad)
  end
  local by_name, targets = {}, {}
  for i, o in ipairs(outputs) do
    o.index = i
    if by_name[o.name] then bad("two outputs are named '%s'", o.name) end
    by_name[o.name] = o
    local target = (o.schema or "") .. "." .. o.table
    if targets[target] then bad("two outputs write table '%s'", o.table) end
    targets[target] = true
  end

  local rejects = script.rejects_table
  if rejects ~= nil and (type(rejects) ~= "string" or rejects == "") then
    bad("'rejects_table' must be a table name")
  end
  if script.envelope ~= nil and script.envelope ~= "sns" then
    bad("'envelope' must be \"sns\" or absent")
  end
  if script.config ~= nil and type(script.config) ~= "table" then bad("'config' must be a table") end
  if script.rules ~= nil and type(script.rules) ~= "string" then bad("'rules' must be a directory") end

  return {
    path = name,
    outputs = outputs, by_name = by_name, multi = multi,
    rejects_table = rejects or (outputs[1].table .. "_rejects"),
    schema = outputs[1].schema,
    pii = pii_entries(script.pii, bad),
    envelope = script.envelope,
    validate = script.validate, transform = script.transform,
    rules = script.rules, config = script.config,
  }
end

function M.load(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  local sb = sandbox.new(dir == "" and "/" or dir)
  local chunk, err = sb:loadfile(path)
  if not chunk then
    if err:find("cannot open", 1, true) then
      fail.user("cannot open script %s; give the path of a pipeline script such as scripts/login_etl.lua", path)
    end
    fail.user("script %s does not load: %s; fix the syntax error and retry", path, err)
  end
  local ok, script = sb:run(chunk)
  if not ok then
    fail.user("script %s failed while loading: %s", path, script)
  end
  if type(script) == "table" then
    ok, script = pcall(sandbox.plain, script)
    if not ok then fail.user("script %s returned %s", path, tostring(script)) end
  end
  return M.describe(script, path)
end

-- same_tables(a, b) -> true when two descriptions write the same tables and columns (a reload
-- may change the hooks, not where the rows go).
function M.same_tables(a, b)
  if #a.outputs ~= #b.outputs or a.rejects_table ~= b.rejects_table or a.schema ~= b.schema then
    return false
  end
  for i, o in ipairs(a.outputs) do
    local p = b.outputs[i]
    if o.table ~= p.table or o.schema ~= p.schema or o.name ~= p.name
        or table.concat(o.columns, ",") ~= table.concat(p.columns, ",")
        or table.concat(o.key or {}, ",") ~= table.concat(p.key or {}, ",")
        or o.on_conflict ~= p.on_conflict or o.order_by ~= p.order_by then
      return false
    end
  end
  return true
end

return M
