--[[ etlua.record: one message body in, one outcome out (decode -> validate -> rules -> transform).

  local record = require "etlua.record"
  local p = record.new(script, {masker = mask.new(key), rules = record.load_rules(dir)})
  local out = p:process(body, {id = "...", sent_ms = 1700000000000, received_ms = ...})
    -> {row = {v1, ..., vN}}        values in script.columns order, nil = NULL
    -> {reject = {reason = "...", detail = "...", body = "..."}}
       body: the JSON object with the script's pii fields masked and re-encoded, or, when the
       body was not a JSON object, the raw text scrubbed (pii-keyed values and anything shaped
       like an IP address masked, invalid UTF-8 replaced by U+FFFD, NUL bytes dropped).

  record.load_rules(dir) -> list of {name=, check=, file=}, from every *.lua in dir by name.

process() raises only for misuse (body not a string); bad input always becomes a reject. A
script hook that raises (or breaks its contract) on a message rejects that message with reason
`script_error` and the error as detail, so one poison message cannot stall the queue; rules that
raise become a `rule:<name>` reject. Details never carry raw pii values: the record's own pii values
and address-shaped text in them are masked.
]]

local cjson = require "cjson"
local mask = require "etlua.mask"

local M = {}

local MAX_DEPTH = 1000 -- nesting bound for decoding (cjson's own default): deeper is invalid_json, not a crash
local null = cjson.null
local canonical_ip = mask.canonical_ip
local EMPTY_MESSAGE = setmetatable({}, {__newindex = function() error("read-only", 2) end})

-- A dedicated cjson instance, so other users of cjson cannot change these settings.
local function new_json()
  local json = cjson.new()
  json.decode_invalid_numbers(false) -- NaN, Infinity, hex numbers are not JSON
  json.decode_max_depth(MAX_DEPTH)
  json.encode_invalid_numbers("null") -- 1e400 decodes to inf; store it as null, do not fail
  json.encode_sparse_array(true)
  return json
end

-- ---- text hygiene (reject path only) ---------------------------------------------------------

-- s as valid UTF-8 without NUL bytes: each invalid byte becomes U+FFFD (Postgres text cannot
-- hold either).
local function clean_text(s)
  if utf8.len(s) and not s:find("\0", 1, true) then return s end
  local parts, i, n = {}, 1, #s
  while i <= n do
    local ok, bad = utf8.len(s, i)
    if ok then
      parts[#parts + 1] = s:sub(i)
      break
    end
    parts[#parts + 1] = s:sub(i, bad - 1)
    parts[#parts + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return (table.concat(parts):gsub("\0", ""))
end

local function quote_pattern(s)
  return (s:gsub("%p", "%%%0"))
end

-- ---- the processor ---------------------------------------------------------------------------

local Processor = {}
Processor.__index = Processor

-- Mask of one pii value as stored in a reject: strings as they are (an ip in canonical form
-- when it is a valid address), other JSON values by their JSON text; null stays null.
function Processor:mask_value(field, v)
  if v == null or v == nil then return v end
  if type(v) ~= "string" then
    local ok, text = pcall(self.json.encode, v)
    v = ok and text or tostring(v)
  elseif field == "ip" then
    v = canonical_ip(v) or v
  end
  return self.masker:hex(v)
end

-- Masks address-shaped tokens in free text: four dotted decimal groups, and hex/colon runs
-- that read as IPv6 (a "::" or at least seven colons). A time like 12:30:45 is left alone.
function Processor:mask_addresses(s)
  return (s:gsub("[%x:%.]+", function(tok)
    local _, colons = tok:gsub(":", "")
    if colons >= 2 and (colons >= 7 or tok:find("::", 1, true)) then
      return self.masker:hex(canonical_ip(tok) or tok)
    end
    if colons < 2 and tok:find("%d+%.%d+%.%d+%.%d+") then
      return (tok:gsub("%d+%.%d+%.%d+%.%d+", function(a)
        return self.masker:hex(canonical_ip(a) or a)
      end))
    end
  end))
end

-- Masks the values of "<pii field>": ... in text that is not valid JSON (a truncated body).
function Processor:mask_keyed_values(s, field)
  local key = '"' .. quote_pattern(field) .. '"%s*:%s*'
  local out, pos = {}, 1
  while true do
    local a, b = s:find(key, pos)
    if not a then break end
    out[#out + 1] = s:sub(pos, b)
    local first = s:sub(b + 1, b + 1)
    if first == '"' then -- a string value: up to the next unescaped quote, or the end
      local j, value_end, after = b + 2, #s, #s + 1
      while true do
        local k = s:find('["\\]', j)
        if not k then break end
        if s:sub(k, k) == "\\" then
          j = k + 2
        else
          value_end, after = k - 1, k + 1
          break
        end
      end
      out[#out + 1] = '"' .. self:mask_value(field, s:sub(b + 2, value_end)) .. '"'
      pos = after
    else -- a bare value (number, literal, garbage) up to a delimiter
      local value = s:match("^[^,}%]%s]+", b + 1) or ""
      if value ~= "" and value ~= "null" then
        out[#out + 1] = self.masker:hex(value)
      else
        out[#out + 1] = value
      end
      pos = b + 1 + #value
    end
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

-- The stored body of a message that did not decode to a JSON object.
function Processor:scrub_raw(body)
  local s = clean_text(body)
  for i = 1, #self.pii do
    s = self:mask_keyed_values(s, self.pii[i])
  end
  return self:mask_addresses(s)
end

-- The stored body of a JSON object: pii fields masked, re-encoded.
function Processor:masked_object(rec, body)
  local copy = {}
  for k, v in pairs(rec) do copy[k] = v end
  for i = 1, #self.pii do
    local field = self.pii[i]
    copy[field] = self:mask_value(field, copy[field])
  end
  local ok, text = pcall(self.json.encode, copy)
  if not ok then return self:scrub_raw(body) end
  return clean_text(text)
end

-- A detail fit to store: text, without the record's pii values or address-shaped text.
function Processor:clean_detail(detail, rec)
  local s = clean_text(tostring(detail))
  if type(rec) == "table" then
    for i = 1, #self.pii do
      local field = self.pii[i]
      local v = rec[field]
      if type(v) == "string" and #v >= 3 then
        s = s:gsub(quote_pattern(v), function() return self:mask_value(field, v) end)
      end
    end
  end
  return self:mask_addresses(s)
end

-- The body as stored in a reject, for a message whose row Postgres refused (db_refused): the
-- same masking as any reject, computed only on that rare path.
function Processor:stored_body(body)
  local ok, rec = pcall(self.decode, body)
  if ok and type(rec) == "table" and body:find("^[ \t\n\r]*{") then
    return self:masked_object(rec, body)
  end
  return self:scrub_raw(body)
end

function Processor:reject(reason, detail, body, rec)
  local stored
  if rec ~= nil then
    stored = self:masked_object(rec, body)
  else
    stored = self:scrub_raw(body)
  end
  return {reject = {reason = reason, detail = self:clean_detail(detail or reason, rec),
                    body = stored}}
end

local JSON_TYPE = {string = "a string", number = "a number", boolean = "a boolean",
                   table = "an array", userdata = "null"}

-- The hot path: one decode, one validate, the rules, one transform, one row table.
function Processor:process(body, meta)
  if type(body) ~= "string" then
    error("etlua.record: process(body, meta): body must be a string", 2)
  end
  local ok, rec = pcall(self.decode, body)
  if not ok then
    return self:reject("invalid_json", "body is not valid JSON: " .. tostring(rec), body)
  end
  -- cjson decodes [] and {} alike: the first character tells an object from an array.
  if type(rec) ~= "table" or not body:find("^[ \t\n\r]*{") then
    return self:reject("not_object",
                       "body is " .. (JSON_TYPE[type(rec)] or "a value") .. ", not a JSON object",
                       body)
  end

  local ran, valid, reason, detail = pcall(self.validate, rec)
  if not ran then
    return self:reject("script_error", "validate raised an error: " .. tostring(valid), body, rec)
  end
  if not valid then
    if type(reason) ~= "string" then
      return self:reject("script_error", "validate returned false without a reason", body, rec)
    end
    return self:reject(reason, detail, body, rec)
  end

  local rules = self.rules
  for i = 1, #rules do
    local rule = rules[i]
    local ran, passed, why = pcall(rule.check, rec)
    if not ran then
      return self:reject(rule.reason, "rule raised an error: " .. tostring(passed), body, rec)
    end
    if not passed then
      return self:reject(rule.reason, why or ("rule " .. rule.name .. " failed"), body, rec)
    end
  end

  local ctx = self.ctx
  ctx.message = meta or EMPTY_MESSAGE
  local done, named = pcall(self.transform, rec, ctx)
  if not done then
    return self:reject("script_error", "transform raised an error: " .. tostring(named), body, rec)
  end
  if type(named) ~= "table" then
    return self:reject("script_error", "transform did not return a row table", body, rec)
  end
  return {row = self.to_row(named)}
end

-- A function turning a row keyed by column name into an array in column order: generated
-- once, so the hot path is a single table constructor.
local function row_builder(columns)
  local fields = {}
  for i, name in ipairs(columns) do fields[i] = ("t[%q]"):format(name) end
  local src = "local t = ...; return {" .. table.concat(fields, ", ") .. "}"
  local chunk = assert(load("return function(...) " .. src .. " end", "=row_builder", "t"))
  return chunk()
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

-- record.new(script, opts): a processor for one script. Checks the script's shape once.
-- opts.masker: an etlua.mask hasher (mask.new(key)); opts.rules: list from load_rules.
function M.new(script, opts)
  opts = opts or {}
  if type(script) ~= "table" then error("etlua.record: script must be a table", 2) end
  local columns = script.columns
  if type(columns) ~= "table" or #columns == 0 then
    error("etlua.record: script.columns must be a non-empty list of column names", 2)
  end
  for i, c in ipairs(columns) do
    if type(c) ~= "string" then error(("etlua.record: script.columns[%d] must be a string"):format(i), 2) end
  end
  for _, hook in ipairs({"validate", "transform"}) do
    if type(script[hook]) ~= "function" then
      error(("etlua.record: script.%s must be a function"):format(hook), 2)
    end
  end
  local pii = script.pii or {}
  for i, f in ipairs(pii) do
    if type(f) ~= "string" then error(("etlua.record: script.pii[%d] must be a string"):format(i), 2) end
  end
  local masker = opts.masker
  if masker == nil then error("etlua.record: opts.masker (mask.new(key)) is required", 2) end

  local json = new_json()
  local self = setmetatable({
    json = json,
    decode = json.decode,
    validate = script.validate,
    transform = script.transform,
    to_row = row_builder(columns),
    pii = pii,
    masker = masker,
    rules = check_rules(opts.rules),
  }, Processor)
  self.ctx = {
    mask = function(v) return masker:hex(v) end,
    canonical_ip = canonical_ip,
    message = EMPTY_MESSAGE,
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

M.clean_text = clean_text -- exported for tests and for callers storing other free text

return M
