--[[ etlua.pii: a pipeline script's pii declaration, compiled once, and the masks of one record.

  local pii = require "etlua.pii"
  local spec = pii.compile(script.pii)
      entries: "device_id" (a path, no canonical form) or {path = "user.email", canonical = "lower"}
      paths: dotted names into the decoded record ("user.email"); "name[]" stands for every
      element of the array at name ("contacts[].phone", "tags[]"); at most one [] per segment.
      canonical: "ip" (mask.canonical_ip, the text itself when it is not a valid address),
      "lower" (ASCII lowercase), "trim" (without leading and trailing ASCII blanks): applied by
      mask.canonical (src/mask_rows.c), their one definition.
      Raises one line ("pii[2]: ...") on a bad entry.
  local masked, raws, plain = spec:masks(rec, masker [, by_text])
      masked[path]: the lowercase hex mask of the canonical value (for a path with [] the list of
      its elements' masks); absent and null values are left out; a value that is not a string is
      masked by its JSON text (no canonical form).
      raws: the raw text of every value found (strings, and numbers' JSON text) and their
      canonical forms, as a list, each also a key mapping to its mask (raws["10.1.2.3"] = hex),
      for scrubbing free text (etlua.scrub.patterns).
      plain[path]: the canonical text each mask was computed from (same shape as masked[path]).
      by_text: {[canonical text] = mask}, masks already known (read first, then filled in).
  spec:row_masks(rec, masker) -> masked, masks: every message's path. masked: as above, for
      the script (ctx.masked); masks: etlua's own record of the same, a flat list of triples
      {path, mask, text, path, mask, text, ...}, one triple per masked value (a path with []
      gives one per element, in order), text the canonical text the mask was computed from:
      what a script does to masked cannot reach masks (the reject path and the PII vault read it).
      It is etlua.mask's row_masks in C (src/mask_rows.c), made at compile from spec.entries;
      spec:reference_row_masks is the same in Lua: the definition both are held to.
  spec:row_masks(rec, masker, true) -> masked, nil: masked alone, for a caller that keeps no
      masks (the record of a run without the PII vault: a table a message fewer).
  pii.by_text(masks) -> by_text of a message's masks (triples as above)
  spec:values(rec) -> list of {path, text}: the canonical text of every string value (the vault).
  spec.entries: list of {path, canonical, segments}; spec.fields: the paths' last names (unique,
  in order) and spec.field_canonical[name], the keys a non-JSON body is scrubbed after;
  spec.tree: the paths as a tree of names (see etlua.reject_body).
]]
local codec = require "etlua.codec"
local mask = require "etlua.mask"

local M = {}

local null = codec.null
local CANONICAL = {ip = true, lower = true, trim = true}

-- The canonical form of a string value (form: nil, "ip", "lower" or "trim"): etlua.mask's, the
-- one definition, which the C row_masks applies too.
local mask_canonical = mask.canonical
local function string_canonical(v, form)
  if form == nil then return v end
  return mask_canonical(v, form)
end

-- The text a value that is not a string is masked by: its JSON text.
local function json_text(v)
  return codec.encode(v) or tostring(v)
end

-- canonical(v, form) -> the text that is masked, and whether v was a string.
local function canonical(v, form)
  if type(v) ~= "string" then return json_text(v), false end
  return string_canonical(v, form), true
end
M.canonical = canonical

-- "contacts[].phone" -> {{name = "contacts", each = true}, {name = "phone"}} or nil, why
local function parse_path(path)
  if path == "" then return nil, "the path is empty" end
  local segments = {}
  for part in (path .. "."):gmatch("(.-)%.") do
    local name, each = part, false
    if part:sub(-2) == "[]" then name, each = part:sub(1, -3), true end
    if name == "" or name:find("[%[%]]") then
      return nil, ("%q is not a path (names separated by dots, [] after a name)"):format(path)
    end
    segments[#segments + 1] = {name = name, each = each}
  end
  return segments
end

local Spec = {}
Spec.__index = Spec

-- The tree the reject body walks: node.children[name] = {leaf = form|false, next = node,
-- each = {leaf = form|false, next = node}} (each: the array's elements).
local function add_to_tree(tree, segments, form)
  local node = tree
  for i, seg in ipairs(segments) do
    local child = node.children[seg.name]
    if not child then
      child = {children = {}}
      node.children[seg.name] = child
    end
    local slot = child
    if seg.each then
      slot.each = slot.each or {children = {}}
      slot = slot.each
    end
    if i == #segments then
      slot.leaf = form or "none"
    else
      slot.next = slot.next or {children = {}}
      node = slot.next
    end
  end
end

local each_masks -- (below, with row_masks) the masks of an entry with []

function M.compile(list)
  if list == nil then list = {} end
  if type(list) ~= "table" then error("pii must be a list of paths", 0) end
  local self = setmetatable({entries = {}, fields = {}, field_canonical = {},
                             tree = {children = {}}}, Spec)
  for i, e in ipairs(list) do
    local path, form = e, nil
    if type(e) == "table" then path, form = e.path, e.canonical end
    if type(path) ~= "string" then
      error(("pii[%d]: must be a path string or {path = \"a.b\", canonical = \"ip\"|\"lower\"|\"trim\"}")
            :format(i), 0)
    end
    if form ~= nil and not CANONICAL[form] then
      error(("pii[%d]: canonical must be \"ip\", \"lower\" or \"trim\""):format(i), 0)
    end
    local segments, why = parse_path(path)
    if not segments then error(("pii[%d]: %s"):format(i, why), 0) end
    self.entries[#self.entries + 1] = {path = path, canonical = form, segments = segments,
                                       each = path:find("[]", 1, true) ~= nil,
                                       first = segments[1].name, deep = #segments > 1}
    local name = segments[#segments].name
    if self.field_canonical[name] == nil then
      self.fields[#self.fields + 1] = name
      self.field_canonical[name] = form or false
    end
    add_to_tree(self.tree, segments, form)
  end
  -- row_masks' two new tables: masked, with room for one mask per entry (a constructor of n
  -- fields set to nil sizes a table's hash part once, where filling an empty table grows it at
  -- every power of two), and masks, with room for one triple per entry (n * 3 nils in a
  -- constructor size its array part).
  local slots, nils = {}, {}
  for i = 1, #self.entries do
    slots[i] = ("_%d = nil"):format(i)
    nils[i] = "nil, nil, nil"
  end
  self.new_maps = assert(load(("return function() return {%s}, {%s} end")
                              :format(table.concat(slots, ", "), table.concat(nils, ", ")),
                              "=pii.new_maps", "t"))()
  -- spec:row_masks, every message's masks: etlua.mask's C version reading these entries, set
  -- on the spec itself (the method call finds it before Spec's; see reference_row_masks).
  self.row_masks = mask.row_masks(self.entries, null, json_text, each_masks)
  return self
end

-- Appends to out every value at segments[i..] below v (nulls left out).
local function collect(v, segments, i, out)
  if v == nil or v == null then return end
  if i > #segments then
    out[#out + 1] = v
    return
  end
  if type(v) ~= "table" then return end
  local seg = segments[i]
  local x = v[seg.name]
  if not seg.each then return collect(x, segments, i + 1, out) end
  if type(x) == "table" then
    for _, e in ipairs(x) do collect(e, segments, i + 1, out) end
  elseif i == #segments then
    collect(x, segments, i + 1, out) -- a scalar where a list was declared: masked all the same
  end
end

local function add_raw(raws, text, hex)
  if text ~= "" and raws[text] == nil then
    raws[#raws + 1] = text
    raws[text] = hex
  end
end

-- The value at a path without [] (nil when absent, null, or below a value that is not an
-- object): what collect finds for such a path, without a list (the hot path: every message).
local function single(v, segments)
  for i = 1, #segments do
    if type(v) ~= "table" then return nil end
    v = v[segments[i].name]
  end
  if v == null then return nil end
  return v
end

-- The mask of one value's canonical text: from by_text when known there (then filled in).
local function mask_of(text, masker, by_text)
  if not by_text then return masker:hex(text) end
  local hex = by_text[text]
  if not hex then
    hex = masker:hex(text)
    by_text[text] = hex
  end
  return hex
end

-- One value's mask and the canonical text it is computed from (form: the entry's canonical);
-- with raws, a string's or a number's raw and canonical texts are added to it.
local function mask_value(v, form, masker, by_text, raws)
  local text, is_string = canonical(v, form)
  local hex = mask_of(text, masker, by_text)
  if raws and (is_string or math.type(v)) then
    add_raw(raws, is_string and v or text, hex)
    add_raw(raws, text, hex)
  end
  return hex, text
end

-- masked, plain (and raws when given a table): see the header. by_text may be nil.
local function compute(self, rec, masker, by_text, raws)
  local masked, plain = {}, {}
  if type(rec) ~= "table" then return masked, plain end
  for _, e in ipairs(self.entries) do
    if not e.each then
      local v = single(rec, e.segments)
      if v ~= nil then
        local hex, text = mask_value(v, e.canonical, masker, by_text, raws)
        masked[e.path], plain[e.path] = hex, text
      end
    else
      local values = {}
      collect(rec, e.segments, 1, values)
      local list, texts = {}, {}
      for _, v in ipairs(values) do
        local hex, text = mask_value(v, e.canonical, masker, by_text, raws)
        list[#list + 1], texts[#texts + 1] = hex, text
      end
      if #list > 0 then masked[e.path], plain[e.path] = list, texts end
    end
  end
  return masked, plain
end

function Spec:masks(rec, masker, by_text)
  local raws = {}
  local masked, plain = compute(self, rec, masker, by_text or {}, raws)
  return masked, raws, plain
end

-- The masks of an entry with [] (every element of its lists), appended to masked and to masks
-- after its n values: returns the new n. Called by both row_masks below.
each_masks = function(e, rec, masker, masked, masks, n)
  local values = {}
  collect(rec, e.segments, 1, values)
  local count = #values
  if count > 0 then
    local list, path = {}, e.path
    for j = 1, count do
      local text = canonical(values[j], e.canonical)
      local hex = masker:hex(text)
      list[j] = hex
      masks[n + 1], masks[n + 2], masks[n + 3] = path, hex, text
      n = n + 3
    end
    masked[path] = list
  end
  return n
end

-- spec:row_masks(rec, masker [, masked_only]) -> masked, masks (see the header): the masks without raws, for
-- the path of every message (raws serve only rejects, which get them from spec:masks with
-- pii.by_text(masks), hashing nothing twice). Every spec's row_masks is etlua.mask's C version
-- made from its entries at compile (M.compile sets it on the spec); this Lua one is its
-- reference, the same values computed the plain way, which spec/pii_spec.lua compares it
-- against. It stays the definition of what row_masks returns.
local function reference_row_masks(self, rec, masker)
  local masked, masks = self.new_maps()
  if type(rec) ~= "table" then return masked, masks end
  local entries, n = self.entries, 0
  for i = 1, #entries do
    local e = entries[i]
    if not e.each then
      local v
      if e.deep then v = single(rec, e.segments) else v = rec[e.first] end
      if v ~= nil and v ~= null then
        local text
        if type(v) == "string" then
          local form = e.canonical
          text = form and string_canonical(v, form) or v
        else
          text = json_text(v)
        end
        local hex = masker:hex(text)
        local path = e.path
        masked[path] = hex
        masks[n + 1], masks[n + 2], masks[n + 3] = path, hex, text
        n = n + 3
      end
    else
      n = each_masks(e, rec, masker, masked, masks, n)
    end
  end
  return masked, masks
end

-- masked_only (true): masked alone, masks nil (for a caller that does not keep masks).
function Spec:reference_row_masks(rec, masker, masked_only)
  local masked, masks = reference_row_masks(self, rec, masker)
  if masked_only then return masked, nil end
  return masked, masks
end

-- by_text(masks) -> {[canonical text] = mask}: the masks a message already has (row_masks'
-- triples), to pass to spec:masks again (the reject path) so no value is hashed twice.
function M.by_text(masks)
  local t = {}
  if masks then
    for i = 1, #masks, 3 do t[masks[i + 2]] = masks[i + 1] end
  end
  return t
end

function Spec:values(rec)
  local out = {}
  if type(rec) ~= "table" then return out end
  for _, e in ipairs(self.entries) do
    local values = {}
    collect(rec, e.segments, 1, values)
    for _, v in ipairs(values) do
      if type(v) == "string" then out[#out + 1] = {e.path, (canonical(v, e.canonical))} end
    end
  end
  return out
end

return M
