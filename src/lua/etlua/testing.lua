--[[ etlua.testing: unit-testing any pipeline script without SQS or Postgres, with the same
loader, decoder, masking and row building as a real run (SCRIPTING.md "Testing a script").

  local testing = require "etlua.testing"
  local pipeline = testing.load("scripts/purchases_etl.lua", {key = "...", rules = "dir"})
      key: the mask key (default: a fixed test key of 41 bytes); rules: a rules directory
  local pipeline = testing.new({outputs = ..., validate = ..., transform = ...}, opts)
  local out = pipeline:run(body, message)
      body: the message body (a string), or a Lua table encoded as JSON for you
      message: optional {id=, sent_ms=, received_ms=, receive_count=, group_id=,
               sequence_number=, attributes=}; the default has id "test-1" and fixed times
    out.rows[output_name] = list of rows, each keyed by column name (typed as written:
                            integers, text, "true"/"false", JSON text for tables)
    out.row               = the only row, for a script with one row per message
    out.reject            = {reason=, detail=, body=}   (body: as stored, pii masked)
    out.drop              = true when transform returned false
    out.key, out.sent_ms  = the ledger key and time, when the envelope gives them
  pipeline:mask(s)        -> the mask of s with the pipeline's key
  pipeline.desc           -> the script's description (etlua.script)

Runs under plain lua5.4 (busted) with build/etlua.so on LUA_CPATH and src/lua on LUA_PATH.
]]
local script = require "etlua.script"
local record = require "etlua.record"
local rows = require "etlua.rows"
local mask = require "etlua.mask"
local codec = require "etlua.codec"

local M = {}

M.KEY = "etlua-test-key-0123456789abcdef0123456789"
M.MESSAGE = { id = "test-1", sent_ms = 1700000000000, received_ms = 1700000000500, receive_count = 1 }

local Pipeline = {}
Pipeline.__index = Pipeline

local function pipeline(desc, opts)
  local rules = {}
  if opts.rules or desc.rules then rules = record.load_rules(opts.rules or desc.rules) end
  local masker = mask.new(opts.key or M.KEY)
  return setmetatable({
    desc = desc, masker = masker,
    proc = record.new(desc, { masker = masker, rules = rules }),
  }, Pipeline)
end

function M.load(path, opts)
  local ok, desc = pcall(script.load, path)
  if not ok then error(type(desc) == "table" and desc.user_error or desc, 2) end
  return pipeline(desc, opts or {})
end

-- testing.new(script_table, opts): the same for a script given as a table (a spec's own small
-- script); its shape is checked as at start-up.
function M.new(tbl, opts)
  local ok, desc = pcall(script.describe, tbl, "(spec)")
  if not ok then error(type(desc) == "table" and desc.user_error or desc, 2) end
  return pipeline(desc, opts or {})
end

function Pipeline:mask(s)
  return self.masker:hex(s)
end

function Pipeline:run(body, message)
  if type(body) ~= "string" then body = assert(codec.encode(body)) end
  local out = self.proc:process(body, message or M.MESSAGE)
  local result = { reject = out.reject, drop = out.drop, key = out.key, sent_ms = out.sent_ms }
  if out.rows or out.row then
    result.rows = {}
    local count, only = 0, nil
    for i, o in ipairs(self.desc.outputs) do
      local named = {}
      for j, row in ipairs(rows.of(out, i)) do
        local r = {}
        for k, c in ipairs(o.columns) do r[c] = row[k] end
        named[j] = r
        count, only = count + 1, r
      end
      result.rows[o.name] = named
    end
    if count == 1 then result.row = only end
  end
  return result
end

return M
