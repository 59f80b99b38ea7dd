--[[ etlua.reject_body: what a reject stores of its message, so that no raw pii value reaches the
rejects table, a detail or a log line. The text scanning is the C module etlua.scrub (linear in
the text's size whatever its shape).

  local reject_body = require "etlua.reject_body"
  local rb = reject_body.new(spec, masker)     spec: etlua.pii.compile(script.pii)
  rb:make(reason, detail, body [, masks]) -> {reason =, detail =, body = stored}, all
      three scrubbed (the reason without raw values shorter than 3 characters)
      masks: the message's masks from spec:row_masks, reused rather than computed again
  rb:stored_body(item [, err]) -> stored, detail  (rows Postgres refused: the same masking;
      detail: Postgres' error err scrubbed, it may quote a value of the row)
  rb:detail(text [, body]) -> scrubbed text      (any other free text: log lines)
  reject_body.clean_text(s) -> s without invalid UTF-8 (U+FFFD) or NUL

The stored body:
  * a JSON object: decoded again from the message (what the hooks did to their copy does not
    matter), every declared pii path replaced by its mask (the same mask as ctx.masked: canonical
    form first; null stays null), and so is the value of any key, at any depth, named like a
    declared path's last name ({"meta": {"device_id": ...}}); then every string in it, keys and
    values at any depth,
    scrubbed: each occurrence of the record's raw pii values (any length), address-shaped text
    (IPv4, IPv6) and values after a key naming a pii field masked; re-encoded as JSON.
  * anything else (invalid JSON, an array, a truncated body, a Python-style dict): the text
    scrubbed the same way, without raw values (there is no record to take them from).
  A detail is scrubbed like a string of the body, with the record's raw values when the body is
  a JSON object. Every text stored is valid UTF-8 without NUL (Postgres text holds neither).
]]
local codec = require "etlua.codec"
local cscrub = require "etlua.scrub"
local pii = require "etlua.pii"

local M = {}

local null = codec.null
local canonical = pii.canonical

local Rejects = {}
Rejects.__index = Rejects

function M.new(spec, masker)
  local canon, named = {}, {}
  for name, form in pairs(spec.field_canonical) do
    canon[name] = form or nil
    named[name:lower()] = {leaf = form or "none"} -- a key naming a pii field, at any depth
  end
  return setmetatable({
    spec = spec,
    masker = masker,
    scrubber = cscrub.new(masker, spec.fields, canon),
    named = named,
  }, Rejects)
end

-- The record of a body when it is a JSON object, else nil. cjson decodes [] and {} alike: the
-- first character tells them apart.
function Rejects:object(body)
  local rec = codec.decode(body)
  if type(rec) == "table" and body:find("^[ \t\n\r]*{") then return rec end
end

-- The per-message state: the record's raw values as scanner patterns, and every mask known
-- (by_text: {[canonical text] = mask}, those the message already had first).
function Rejects:message(rec, by_text)
  by_text = by_text or {}
  local _, raws = self.spec:masks(rec, self.masker, by_text)
  local leaf = setmetatable({}, {__index = function(t, form) t[form] = {}; return t[form] end})
  return {patterns = #raws > 0 and cscrub.patterns(raws) or nil, by_text = by_text, memo = {},
          named = {}, leaf = leaf, raws = raws}
end

local function mask_leaf(self, m, v, form)
  if v == null then return v end
  local memo = type(v) == "string" and m.leaf[form] -- masks by raw value, per canonical form
  local hex = memo and memo[v]
  if hex then return hex end
  local text = canonical(v, form ~= "none" and form or nil)
  hex = m.by_text[text]
  if not hex then
    hex = self.masker:hex(text)
    m.by_text[text] = hex
  end
  if memo then memo[v] = hex end
  return hex
end

local walk
local MEMO_MAX = 256 -- strings up to this size are scrubbed once per message (keys repeat)

-- A string of the record, scrubbed.
local function scrubbed(self, m, s)
  if #s > MEMO_MAX then return self.scrubber:text(s, m.patterns) end
  local done = m.memo[s]
  if not done then
    done = self.scrubber:text(s, m.patterns)
    m.memo[s] = done
  end
  return done
end

-- The stored form of v, the value under a tree node slot (nil: no declared path here).
local function stored_value(self, m, v, slot)
  if slot and slot.leaf then return mask_leaf(self, m, v, slot.leaf) end
  local tv = type(v)
  if slot and slot.each and slot.each.leaf and tv ~= "table" then
    return mask_leaf(self, m, v, slot.each.leaf) -- a scalar where a list was declared
  end
  if tv == "string" then return scrubbed(self, m, v) end
  if tv ~= "table" then return v end
  if slot and slot.each then
    local out, each = setmetatable({}, getmetatable(v)), slot.each
    for k, e in pairs(v) do
      local key = type(k) == "string" and scrubbed(self, m, k) or k
      out[key] = stored_value(self, m, e, each)
    end
    return out
  end
  return walk(self, m, v, slot and slot.next)
end

-- A copy of the table t (an object or an array) with every string scrubbed; node: the tree of
-- declared paths below t, or nil.
walk = function(self, m, t, node)
  local out, children, named = setmetatable({}, getmetatable(t)), node and node.children, self.named
  for k, v in pairs(t) do
    local key, slot = k, nil
    if type(k) == "string" then
      slot = children and children[k]
      if not slot then
        local n = m.named[k] -- a key naming a pii field, whatever its case; false: not one
        if n == nil then
          n = named[k] or named[k:lower()] or false
          m.named[k] = n
        end
        slot = n or nil
      end
      key = scrubbed(self, m, k)
    end
    out[key] = stored_value(self, m, v, slot)
  end
  return out
end

function Rejects:raw(body)
  return self.scrubber:text(body)
end

-- The stored body of a JSON object rec (decoded from body), or of body scrubbed as text when the
-- masked copy cannot be encoded.
function Rejects:masked_object(rec, body, m)
  local text = codec.encode(walk(self, m, rec, self.spec.tree))
  if not text then return self:raw(body) end
  return cscrub.clean(text)
end

-- For a message whose rows Postgres refused (db_refused): item = {rec =, masks =,
-- message = {body =}} as the row outcome left it (the decoded record, under an envelope the
-- inner one, and its masks); err: Postgres' error, which may quote a value of the row.
-- Returns the stored body and, with err, the detail.
function Rejects:stored_body(item, err)
  local body = item.message and item.message.body or ""
  local rec = type(item.rec) == "table" and item.rec or self:object(body)
  if not rec then return self:raw(body), err and self.scrubber:text(tostring(err)) end
  local m = self:message(rec, pii.by_text(item.masks))
  return self:masked_object(rec, body, m), err and self.scrubber:text(tostring(err), m.patterns)
end

function Rejects:detail(text, body)
  local rec = body and self:object(body)
  local m = rec and self:message(rec)
  return self.scrubber:text(tostring(text), m and m.patterns)
end

-- The reason fit to store (it is a column, a log field and a metric label): a script may return
-- any text. Scrubbed like a detail, except that raw values shorter than REASON_RAW_MIN are left:
-- a one-letter device id must not turn every "invalid_user_id" into a new label.
local REASON_RAW_MIN = 3
local function scrubbed_reason(self, m, reason)
  if type(reason) ~= "string" then return reason end
  local long = {}
  for _, s in ipairs(m and m.raws or {}) do
    if #s >= REASON_RAW_MIN then
      long[#long + 1] = s
      long[s] = m.raws[s]
    end
  end
  return self.scrubber:text(reason, #long > 0 and cscrub.patterns(long) or nil)
end

-- make(reason, detail, body [, masks]): the reject of a message whose (inner) body is body;
-- masks: the masks the message was given (spec:row_masks' triples; reused, not computed again).
function Rejects:make(reason, detail, body, masks)
  local rec = self:object(body)
  local m = rec and self:message(rec, pii.by_text(masks))
  local stored = rec and self:masked_object(rec, body, m) or self:raw(body)
  return {reason = scrubbed_reason(self, m, reason),
          detail = self.scrubber:text(tostring(detail or reason), m and m.patterns),
          body = stored}
end

M.clean_text = cscrub.clean

return M
