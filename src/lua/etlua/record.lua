--[[ etlua.record: one message in, one outcome out
  (unwrap the envelope -> decode -> validate -> rules -> masks -> transform -> rows).

  local record = require "etlua.record"
  local p = record.new(desc, {masker = mask.new(key), rules = record.load_rules(dir)})
      desc: a description from etlua.script (a raw script table is described first)
  local out = p:process(body, message)
      message: {id=, sent_ms=, received_ms=, receive_count=, group_id=, sequence_number=,
                attributes=} as received (every field optional)
    -> {rows = {[i] = list of rows of output i}, rec =, masked =, plain =}
           each row an array in that output's column order, nil = NULL (etlua.rows)
    -> {reject = {reason = "...", detail = "...", body = "..."}}
       body and detail masked by etlua.reject_body: no raw pii value, no address-shaped text.
    -> {drop = true}                  transform returned false
    Every outcome may carry key (the ledger key, when the envelope gives one: the SNS
    MessageId) and sent_ms (the envelope's own time); absent, the caller uses the message's.

  record.load_rules(dir) -> list of {name=, check=, file=}, from every *.lua in dir by name.

process() raises only for misuse (body not a string); bad input always becomes a reject. A
script hook that raises (or breaks its contract) on a message rejects that message with reason
`script_error` and the error as detail, so one poison message cannot stall the queue; rules that
raise become a `rule:<name>` reject. Details never carry raw pii values: the record's own pii values
and address-shaped text in them are masked.
]]

local codec = require "etlua.codec"
local mask = require "etlua.mask"
local script_desc = require "etlua.script"
local rows = require "etlua.rows"
local envelope = require "etlua.envelope"
local pii = require "etlua.pii"
local reject_body = require "etlua.reject_body"

local M = {}

local canonical_ip = mask.canonical_ip
local EMPTY = setmetatable({}, {__newindex = function() error("read-only", 2) end})

-- ---- the processor ---------------------------------------------------------------------------

local Processor = {}
Processor.__index = Processor

-- The body as stored in a reject, for a message whose rows Postgres refused (db_refused), from
-- the item of its row outcome (its record and masks): the same masking as any reject
-- (etlua.reject_body), computed only on that rare path.
function Processor:stored_body(item)
  return self.rejects:stored_body(item)
end

-- rec is not used: the stored body is decoded again from the message, whatever a hook did to
-- its copy; masked and plain (the message's masks) are reused.
function Processor:reject(reason, detail, body, rec, masked, plain)
  local _ = rec
  return {reject = self.rejects:make(reason, detail, body, masked, plain)}
end

local JSON_TYPE = {string = "a string", number = "a number", boolean = "a boolean",
                   table = "an array", userdata = "null"}

-- ctx.message for one message: what the script may read of it (never the receipt).
local function message_view(m)
  return {
    id = m.id, sent_ms = m.sent_ms, received_ms = m.received_ms,
    receive_count = m.receive_count, group_id = m.group_id,
    sequence_number = m.sequence_number, attributes = m.attributes,
  }
end

-- Decodes the body into an object, or returns the reject. Under envelope = "sns" a
-- notification's Message is the body from here on.
function Processor:decode(body, message, out)
  local rec, err = codec.decode(body)
  if rec == nil then
    return nil, self:reject("invalid_json", "body is not valid JSON: " .. tostring(err), body)
  end
  if self.envelope == "sns" then
    local inner, sns, key, sent_ms = envelope.sns(rec)
    if inner then
      message.sns, out.key, out.sent_ms = sns, key, sent_ms
      body = inner
      rec, err = codec.decode(body)
      if rec == nil then
        return nil, self:reject("invalid_json", "SNS Message is not valid JSON: " .. tostring(err), body)
      end
    end
  end
  -- {} and [] decode alike: the first character tells an object from an array.
  if type(rec) ~= "table" or not body:find("^[ \t\n\r]*{") then
    return nil, self:reject("not_object",
                            "body is " .. (JSON_TYPE[type(rec)] or "a value") .. ", not a JSON object",
                            body)
  end
  return rec, body
end

local function with(out, into)
  into.key, into.sent_ms = out.key, out.sent_ms
  return into
end

-- The hot path: one decode, one validate, the rules, the masks, one transform, the rows.
function Processor:process(body, meta)
  if type(body) ~= "string" then
    error("etlua.record: process(body, meta): body must be a string", 2)
  end
  local message, out = message_view(meta or EMPTY), {}
  local rec, body_or_reject = self:decode(body, message, out)
  if rec == nil then return with(out, body_or_reject) end
  body = body_or_reject

  local masked, _, plain = self.pii_spec:masks(rec, self.masker)

  local ran, valid, reason, detail = pcall(self.validate, rec)
  if not ran then
    return with(out, self:reject("script_error", "validate raised an error: " .. tostring(valid), body, rec, masked, plain))
  end
  if not valid then
    if type(reason) ~= "string" then
      return with(out, self:reject("script_error", "validate returned false without a reason", body, rec, masked, plain))
    end
    return with(out, self:reject(reason, detail, body, rec, masked, plain))
  end

  local rules = self.rules
  for i = 1, #rules do
    local rule = rules[i]
    local ran, passed, why = pcall(rule.check, rec)
    if not ran then
      return with(out, self:reject(rule.reason, "rule raised an error: " .. tostring(passed), body, rec, masked, plain))
    end
    if not passed then
      return with(out, self:reject(rule.reason, why or ("rule " .. rule.name .. " failed"), body, rec, masked, plain))
    end
  end

  local ctx = self.ctx
  ctx.message, ctx.masked = message, masked
  local done, result = pcall(self.transform, rec, ctx)
  if not done then
    return with(out, self:reject("script_error", "transform raised an error: " .. tostring(result), body, rec, masked, plain))
  end
  if result == false then
    out.drop = true
    return out
  end
  local per_output, err = self.build(result)
  if not per_output then
    return with(out, self:reject("script_error", err, body, rec, masked, plain))
  end
  out.rows, out.rec, out.masked, out.plain = per_output, rec, masked, plain
  return out
end

local function check_rules(rules)
  local list = {}
  for i, r in ipairs(rules or {}) do
    if type(r) ~= "table" or type(r.name) ~= "string" or type(r.check) ~= "function" then
      error(("etlua.record: rule #%d must be {name = string, check = function}"):format(i), 2)
    end
    list[i] = {name = r.name, check = r.check, file = r.file, reason = "rule:" .. r.name}
  end
  return list
end

-- record.new(desc, opts): a processor for one script. A raw script table is described first
-- (etlua.script.describe), so its shape is checked once.
-- opts.masker: an etlua.mask hasher (mask.new(key)); opts.rules: list from load_rules.
function M.new(desc, opts)
  opts = opts or {}
  if type(desc) ~= "table" then error("etlua.record: script must be a table", 2) end
  if desc.outputs == nil or desc.by_name == nil then
    desc = script_desc.describe(desc, desc.path or "(table)")
  end
  local masker = opts.masker
  if masker == nil then error("etlua.record: opts.masker (mask.new(key)) is required", 2) end

  local ok, pii_spec = pcall(pii.compile, desc.pii)
  if not ok then error("etlua.record: script." .. tostring(pii_spec), 2) end
  local self = setmetatable({
    desc = desc,
    validate = desc.validate,
    transform = desc.transform,
    build = rows.builder(desc),
    envelope = desc.envelope,
    pii_spec = pii_spec,
    masker = masker,
    rejects = reject_body.new(pii_spec, masker),
    rules = check_rules(opts.rules),
  }, Processor)
  self.ctx = {
    mask = function(v) return masker:hex(v) end,
    canonical_ip = canonical_ip,
    message = EMPTY,
    masked = EMPTY,
  }
  return self
end

-- ---- analysts' rule files --------------------------------------------------------------------

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Names of the *.lua files in dir, sorted bytewise. Listed with `ls -1` (no C helper for
-- directories in the host): hidden files are skipped, a name with a newline in it cannot be
-- listed and would fail to load by name, which stops start-up.
local function lua_files(dir)
  local p = io.popen("ls -1 -- " .. shell_quote(dir .. "/") .. " 2>/dev/null", "r")
  if not p then error(("rules directory %s: cannot be listed"):format(dir), 0) end
  local names = {}
  for name in p:lines() do
    if name:sub(-4) == ".lua" then names[#names + 1] = name end
  end
  if not p:close() then
    error(("rules directory %s: cannot be listed (missing or not a directory)"):format(dir), 0)
  end
  table.sort(names)
  return names
end

local function load_rule(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then error(("rule file %s: %s"):format(path, err), 0) end
  local ok, rule = pcall(chunk)
  if not ok then error(("rule file %s: %s"):format(path, tostring(rule)), 0) end
  if type(rule) ~= "table" or type(rule.name) ~= "string" or type(rule.check) ~= "function" then
    error(("rule file %s: must return { name = \"...\", check = function(record) ... end }")
          :format(path), 0)
  end
  if rule.name == "" or #rule.name > 64 or rule.name:find("%c") then
    error(("rule file %s: name must be 1..64 characters without control characters"):format(path), 0)
  end
  return {name = rule.name, check = rule.check, file = path}
end

-- record.load_rules(dir) -> every *.lua file of dir, in name order, as {name=, check=, file=}.
-- Raises "rule file PATH: <Lua error>" for a file that does not load or has the wrong shape.
function M.load_rules(dir)
  if type(dir) ~= "string" or dir == "" then
    error("rules directory must be a non-empty string", 2)
  end
  local rules, seen = {}, {}
  for _, name in ipairs(lua_files(dir)) do
    local path = dir:gsub("/+$", "") .. "/" .. name
    local rule = load_rule(path)
    if seen[rule.name] then
      error(("rule file %s: name %q is already used by %s"):format(path, rule.name, seen[rule.name]), 0)
    end
    seen[rule.name] = path
    rules[#rules + 1] = rule
  end
  return rules
end

M.clean_text = reject_body.clean_text -- exported for tests and for callers storing other free text

return M
