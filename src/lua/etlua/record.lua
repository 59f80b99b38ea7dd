--[[ etlua.record: one message in, one outcome out
  (unwrap the envelope -> decode -> masks -> validate -> rules -> transform -> rows; the masks
  are of the decoded body as received, so what validate or a rule changes in the record does not
  reach them).

  local record = require "etlua.record"
  local p = record.new(desc, {masker = mask.new(key), rules = record.load_rules(dir)})
      desc: a description from etlua.script (a raw script table is described first)
  local out = p:process(body, message)
      message: {id=, sent_ms=, received_ms=, receive_count=, group_id=, sequence_number=,
                attributes=} as received (every field optional)
  local item, stopped = p:item(m)   -- the runner's: the outcome of m.body as the sink's item
  p:item_plain(m)                   -- the same for a message with none of sent_ms,
                                       receive_count, group_id, sequence_number, attributes
                                       (the --input source's: etlua.source_file's plain)
    -> {row = row, masks =}        a script without `outputs`: its one row
    -> {rows = {[i] = list of rows of output i}, masks =}   a script with `outputs`
           each row an array in that output's column order, nil = NULL (etlua.rows); an
           outcome has exactly one of row, rows, reject, drop (and so does the sink's item);
           masks: the message's masks as {path, mask, text, ...} triples (etlua.pii row_masks),
           nil when the processor keeps none (opts.masks = false),
           for the PII vault and a db_refused reject
    -> {reject = {reason = "...", detail = "...", body = "..."}}
       body and detail masked by etlua.reject_body: no raw pii value, no address-shaped text.
    -> {drop = true}                  transform returned false
    -> {stopped = "validate" | "transform" | "rule <name>"}   a stop signal cut that hook call
                                      short: no outcome; the message must not be committed
    Every outcome may carry key (the ledger key, when the envelope gives one: the SNS
    MessageId) and sent_ms (the envelope's own time); absent, the caller uses the message's.
    p:item(m) makes that outcome the item at once (one table, not one and then four fields more):
    id = m.id, message = m, key and sent_ms the envelope's or else m.id and m.sent_ms; a stopped
    hook is nil, hook (no item). An outcome with rows of a message whose envelope gives no key
    is m itself, with row (or rows), masks, key = m.id and message = m set on it (its id and
    sent_ms are already the item's): a message is processed into an item once.

  record.load_rules(dir) -> list of {name=, check=, file=}, from every *.lua in dir by name.

process() raises only for misuse (body not a string); bad input always becomes a reject. Each
hook call runs under etlua.budget (opts.budget_ms): one that runs past it rejects the message
with reason `script_timeout` naming the hook ("validate", "transform", "rule <name>"). A hook
that raises, runs out of memory or returns the wrong kind of value rejects that message with
reason `script_error` and what was wrong as detail, so one poison message cannot stall the
queue; rules that raise become a `rule:<name>` reject. Rule files load in etlua.sandbox. Details
never carry raw pii values: the record's own pii values and address-shaped text in them are
masked.
]]

local codec = require "etlua.codec"
local mask = require "etlua.mask"
local script_desc = require "etlua.script"
local rows = require "etlua.rows"
local envelope = require "etlua.envelope"
local pii = require "etlua.pii"
local reject_body = require "etlua.reject_body"
local budget = require "etlua.budget"
local sandbox = require "etlua.sandbox"
local host = require "etlua.host"

local M = {}

local canonical_ip = mask.canonical_ip
local type, getmetatable = type, getmetatable -- (every message: locals, not global lookups)
local EMPTY = setmetatable({}, {__newindex = function() error("read-only", 2) end})
local MAX_ERROR_TEXT = 500 -- bytes of a hook's error kept in a reject's detail
local DROP = {} -- transform returned false
local NO_KEY = EMPTY -- the outcome's key and sent_ms when no envelope gives them

-- ---- the processor ---------------------------------------------------------------------------

local Processor = {}
Processor.__index = Processor

-- The body as stored in a reject, for a message whose rows Postgres refused (db_refused), from
-- the item of its row outcome (its masks), and Postgres' error err as its detail: the same
-- masking as any reject (etlua.reject_body), computed only on that rare path. The record is
-- decoded again from the message (the outcome does not keep it: it would stay alive, and be
-- marked by the collector, until its batch commits): the hooks saw the decoded record and may
-- have changed it (given it metatables even), and no code of theirs may run outside a budget.
function Processor:stored_body(item, err)
  local rec = self:decode(item.message and item.message.body or "", {}, {})
  return self.rejects:stored_body({message = item.message, rec = rec or false,
                                   masks = item.masks}, err)
end

-- rec is not used: the stored body is decoded again from the message, whatever a hook did to
-- its copy; masks (the message's masks, etlua.pii row_masks) are reused.
function Processor:reject(reason, detail, body, rec, masks)
  local _ = rec
  -- room for key and sent_ms (with()) and the runner's id and message, as process() leaves
  return {reject = self.rejects:make(reason, detail, body, masks),
          key = nil, sent_ms = nil, id = nil, message = nil}
end

-- ---- hook calls ------------------------------------------------------------------------------
-- Every hook call (validate, each rule's check, transform with the reading of its rows) runs
-- under etlua.budget: a time budget, a memory allowance and the stop signal; whatever it raises
-- arrives as text. What a hook returns is looked at here only with type() and truth tests, and
-- a detail must be text, so no metamethod of the script runs outside a budget.

local TEXT = {string = true, number = true} -- a detail a hook may return (or nil)

local function a_value(v)
  local t = type(v)
  if t == "nil" then return "nil" end
  return (t == "userdata" and v == codec.null) and "null" or ("a " .. t)
end

-- The outcome of a hook call that did not return: stopped by a stop signal (no outcome: the
-- message is not committed and comes back), past its budget (script_timeout), out of memory
-- (script_error) or raising (error_reason: script_error, or rule:<name> for a rule). `what`
-- names the hook: "validate", "transform" or "rule <name>".
function Processor:hook_failed(what, error_reason, why, text, body, masks)
  if why == "stopped" then return {stopped = what} end
  if why == "timeout" then
    return self:reject("script_timeout", ("%s ran longer than its budget of %d ms")
                       :format(what, self.budget_ms), body, nil, masks)
  end
  if why == "memory" then
    return self:reject("script_error", what .. " " .. text, body, nil, masks)
  end
  if #text > MAX_ERROR_TEXT then text = text:sub(1, MAX_ERROR_TEXT) .. "..." end
  return self:reject(error_reason, what .. " raised an error: " .. text, body, nil, masks)
end

local JSON_TYPE = {string = "a string", number = "a number", boolean = "a boolean",
                   table = "an array", userdata = "null"}

local decode, decode_object, array_mt = codec.decode, codec.decode_object, codec.array_mt

-- Decodes the body into an object, or returns the reject. Under envelope = "sns" a
-- notification's Message is the body from here on, and out gets its key and sent_ms.
function Processor:decode(body, message, out)
  local rec, err = decode(body)
  if rec == nil then
    return nil, self:reject("invalid_json", "body is not valid JSON: " .. tostring(err), body)
  end
  if self.envelope == "sns" then
    local inner, sns, key, sent_ms = envelope.sns(rec)
    if inner then
      message.sns, out.key, out.sent_ms = sns, key, sent_ms
      body = inner
      rec, err = decode(body)
      if rec == nil then
        return nil, self:reject("invalid_json", "SNS Message is not valid JSON: " .. tostring(err), body)
      end
    end
  end
  -- {} and [] decode alike but for the metatable: decoded arrays carry codec.array_mt
  if type(rec) ~= "table" or getmetatable(rec) == array_mt then
    return nil, self:reject("not_object",
                            "body is " .. (JSON_TYPE[type(rec)] or "a value") .. ", not a JSON object",
                            body)
  end
  return rec, body
end

-- The outcome of a message, from the first one made (into) with the envelope's key and time
-- (out; NO_KEY when none). As an item (m: the message, for p:item): with id, message, and the
-- message's own id and time where the envelope gives no key; nil, hook for a stopped hook.
local function with(out, into, m)
  if m == nil then
    into.key, into.sent_ms = out.key, out.sent_ms
    return into
  end
  if into.stopped then return nil, into.stopped end
  local key, sent_ms = out.key, out.sent_ms
  if key == nil then key, sent_ms = m.id, m.sent_ms end
  into.key, into.sent_ms, into.id, into.message = key, sent_ms, m.id, m
  return into
end

-- The hot path, made once per processor as a closure whose upvalues hold what it reads of the
-- processor (an upvalue costs a fraction of a field of self): one decode, one validate, the
-- rules, the masks, one transform, the rows. It makes few tables (each costs as much as a dozen
-- field reads): ctx.message, the masks (the script's map and etlua's own list, made by row_masks
-- in one pass) and the outcome, made last by one constructor. run(_, m): p:item itself (no
-- wrapper's call a message), its body m.body and its meta m; m makes the outcome the runner's
-- item at once, with id, message, key and sent_ms. run(_, nil, body, meta): p:process's.
-- plain: the runner's item for a message that carries none of an SQS message's fields (sent_ms,
-- receive_count, group_id, sequence_number, attributes): the --input source's; its ctx.message
-- is the same {id, received_ms} without the five looked for (each absent field a lookup that
-- walks to the end of its chain: ~15% of this function's cost a message).
local function runner_of(self, plain)
  local envelope_kind, pii_spec, masker, ms = self.envelope, self.pii_spec, self.masker, self.budget_ms
  local row_masks, validate, transform_rows = pii_spec.row_masks, self.validate, self.transform_rows
  local rules, ctx, multi, masked_only = self.rules, self.ctx, self.multi, not self.keep_masks
  local nrules = #rules
  local bcall = budget.call
  -- (truth tests, not comparisons with nil, on this path: a TEST is done in the VM's loop, an
  -- EQK calls luaV_equalobj; m, masks, key and an envelope's kind are never false)
  return function(_, m, body, meta)
    if m then body, meta = m.body, m end
    -- ctx.message: what the script may read of the message (never the receipt); a message
    -- that is not from SQS (--input) has none of its four fields: a table of three (each nil
    -- field of a constructor is a store that finds no key, and a larger table)
    local id, sent_ms = meta.id, nil
    local message
    if plain then
      message = {id = id, received_ms = meta.received_ms}
    else
      sent_ms = meta.sent_ms
      local rc, group, seq, attrs = meta.receive_count, meta.group_id, meta.sequence_number, meta.attributes
      if rc == nil and attrs == nil and group == nil and seq == nil then
        if sent_ms == nil then
          message = {id = id, received_ms = meta.received_ms} -- (two fields: a smaller table)
        else
          message = {id = id, sent_ms = sent_ms, received_ms = meta.received_ms}
        end
      else
        message = {
          id = id, sent_ms = sent_ms, received_ms = meta.received_ms, receive_count = rc,
          group_id = group, sequence_number = seq, attributes = attrs,
        }
      end
    end
    local out, key = NO_KEY, nil -- (key: out.key, read once decoded; NO_KEY's is nil)
    local rec = not envelope_kind and decode_object(body)
    if not rec then -- not an object (self:decode says what it is instead), or an envelope
      out = {}
      local body_or_reject
      rec, body_or_reject = self:decode(body, message, out)
      if rec == nil then return with(out, body_or_reject, m) end
      body, key = body_or_reject, out.key
    end

    local masked, masks = row_masks(pii_spec, rec, masker, masked_only)

    local ran, valid, reason, detail = bcall(ms, validate, rec)
    if not ran then
      return with(out, self:hook_failed("validate", "script_error", valid, reason, body, masks), m)
    end
    if not valid then
      if type(reason) ~= "string" then
        return with(out, self:reject("script_error", "validate returned false and " .. a_value(reason)
                                     .. " as reason (want a string)", body, rec, masks), m)
      end
      if detail ~= nil and not TEXT[type(detail)] then
        return with(out, self:reject("script_error", "validate returned " .. a_value(detail)
                                     .. " as detail (want a string)", body, rec, masks), m)
      end
      return with(out, self:reject(reason, detail, body, rec, masks), m)
    end

    for i = 1, nrules do
      local rule = rules[i]
      local checked, passed, why = bcall(ms, rule.check, rec)
      if not checked then
        return with(out, self:hook_failed(rule.label, rule.reason, passed, why, body, masks), m)
      end
      if not passed then
        if why ~= nil and not TEXT[type(why)] then
          return with(out, self:reject("script_error", rule.label .. " returned " .. a_value(why)
                                       .. " as detail (want a string)", body, rec, masks), m)
        end
        return with(out, self:reject(rule.reason, why or (rule.label .. " failed"), body, rec, masks), m)
      end
    end

    -- ctx.masked is masked: what the script does to it cannot reach masks, which the reject path
    -- and the PII vault use.
    ctx.message, ctx.masked = message, masked
    local done, per_output, err = bcall(ms, transform_rows, rec, ctx)
    if not done then
      return with(out, self:hook_failed("transform", "script_error", per_output, err, body, masks), m)
    end
    if not per_output then
      return with(out, self:reject("script_error", err, body, rec, masks), m)
    end
    if not m then
      sent_ms, id, m = out.sent_ms, nil, nil
    elseif not key then
      key = id
      -- no envelope key: id, sent_ms and the key are the message's own, so the message becomes
      -- its own item (its row, key and itself as message set on it): no table more a message
      if per_output ~= DROP then
        if multi then m.rows = per_output else m.row = per_output end
        if masks then m.masks = masks end
        m.key, m.message = key, m
        return m
      end
    else
      sent_ms = out.sent_ms
    end
    if per_output == DROP then
      return {drop = true, key = key, sent_ms = sent_ms, id = id, message = m}
    end
    -- no masks kept, no time of its own (--input): a table of four fields, not eight slots
    if masks == nil and sent_ms == nil then
      if multi then return {rows = per_output, key = key, id = id, message = m} end
      return {row = per_output, key = key, id = id, message = m}
    end
    if multi then
      return {rows = per_output, masks = masks, key = key, sent_ms = sent_ms, id = id, message = m}
    end
    return {row = per_output, masks = masks, key = key, sent_ms = sent_ms, id = id, message = m}
  end
end

-- The reject reasons etlua itself gives, whatever the script: a body that is not JSON or not an
-- object, a hook that raised or broke the contract, a hook past its time budget, rows Postgres
-- refused (etlua.sink).
M.REASONS = {"invalid_json", "not_object", "script_error", "script_timeout", "db_refused"}

-- p:reasons() -> every reject reason known before any message: M.REASONS and `rule:<name>` of
-- each loaded rule (for the metrics, at 0 from the start). The reasons the script's validate
-- returns are not in it: they are known only once validate returns them.
function Processor:reasons()
  local list = table.move(M.REASONS, 1, #M.REASONS, 1, {})
  for _, rule in ipairs(self.rules) do list[#list + 1] = rule.reason end
  return list
end

local function check_rules(rules)
  local list = {}
  for i, r in ipairs(rules or {}) do
    if type(r) ~= "table" or type(r.name) ~= "string" or type(r.check) ~= "function" then
      error(("etlua.record: rule #%d must be {name = string, check = function}"):format(i), 2)
    end
    list[i] = {name = r.name, check = r.check, file = r.file, reason = "rule:" .. r.name,
               label = "rule " .. r.name}
  end
  return list
end

-- record.new(desc, opts): a processor for one script. A raw script table is described first
-- (etlua.script.describe), so its shape is checked once.
-- opts.masker: an etlua.mask hasher (mask.new(key)); opts.rules: list from load_rules;
-- opts.budget_ms: the budget of each hook call (default 100, ETLUA_SCRIPT_BUDGET_MS);
-- opts.masks: false keeps no masks in the outcomes (outcome.masks nil: one table a message
-- fewer, for a run without the PII vault, its only reader; a reject and a db_refused body
-- compute them again from the body), default true.
function M.new(desc, opts)
  opts = opts or {}
  if type(desc) ~= "table" then error("etlua.record: script must be a table", 2) end
  local budget_ms = opts.budget_ms or M.DEFAULT_BUDGET_MS
  if math.type(budget_ms) ~= "integer" or budget_ms < 1 then
    error("etlua.record: opts.budget_ms must be a positive integer", 2)
  end
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
    multi = desc.multi, -- rows per output (outcome.rows), else the one row (outcome.row)
    pii_spec = pii_spec,
    masker = masker,
    rejects = reject_body.new(pii_spec, masker),
    rules = check_rules(opts.rules),
    budget_ms = budget_ms,
    keep_masks = opts.masks ~= false,
  }, Processor)
  -- transform and the reading of what it returned, together under the budget (a returned
  -- table's metamethods are the script's code): rows per output, or the one row of a script
  -- without outputs (etlua.rows) | DROP | nil, err.
  self.transform_rows = rows.transformer(desc, desc.transform, DROP)
  self.ctx = {
    mask = function(v) return masker:hex(v) end,
    canonical_ip = canonical_ip,
    message = EMPTY,
    masked = EMPTY,
  }
  local run = runner_of(self, false)
  -- p:process(body, meta) -> outcome (the module's header)
  self.process = function(_, body, meta)
    if type(body) ~= "string" then
      error("etlua.record: process(body, meta): body must be a string", 2)
    end
    return run(nil, nil, body, meta or EMPTY)
  end
  -- p:item(m) -> the outcome of m.body as the runner's item | nil, hook (a stop signal cut that
  -- hook short): process(m.body, m) with id = m.id, message = m, and key, sent_ms the
  -- envelope's or else the message's own (m.id, m.sent_ms). m.body must be a string.
  self.item = run
  -- p.item_plain(_, m): p:item(m) for a message of the --input source, which carries none of
  -- sent_ms, receive_count, group_id, sequence_number and attributes (they are not looked for)
  self.item_plain = runner_of(self, true)
  return self
end

-- ---- analysts' rule files --------------------------------------------------------------------

-- Names of the *.lua files in dir, sorted bytewise; hidden files are skipped.
local function lua_files(dir)
  local entries, err = host.list_dir(dir)
  if not entries then error(("rules directory %s: %s"):format(dir, err), 0) end
  local names = {}
  for _, name in ipairs(entries) do
    if name:sub(-4) == ".lua" and name:sub(1, 1) ~= "." then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- One rule file, in a sandbox of its own whose require looks in the rules directory (helper
-- modules live in a subdirectory: require "lib.x" is DIR/lib/x.lua), its top level under the
-- load budget; only a raw copy of the table it returns is read.
local function load_rule(path, dir)
  local sb = sandbox.new(dir)
  local chunk, err = sb:loadfile(path)
  if not chunk then error(("rule file %s: %s"):format(path, err), 0) end
  local ok, rule = sb:run(chunk)
  if not ok then error(("rule file %s: %s"):format(path, rule), 0) end
  if type(rule) == "table" then
    ok, rule = pcall(sandbox.plain, rule)
    if not ok then error(("rule file %s: %s"):format(path, rule), 0) end
  end
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
  local base = dir:gsub("/+$", "")
  for _, name in ipairs(lua_files(dir)) do
    local path = base .. "/" .. name
    local rule = load_rule(path, base == "" and "/" or base)
    if seen[rule.name] then
      error(("rule file %s: name %q is already used by %s"):format(path, rule.name, seen[rule.name]), 0)
    end
    seen[rule.name] = path
    rules[#rules + 1] = rule
  end
  return rules
end

M.DEFAULT_BUDGET_MS = 100
M.clean_text = reject_body.clean_text -- exported for tests and for callers storing other free text

return M
