--[[ etlua.pii_interim: declared pii paths -> masks, with the interface of etlua.pii (owned by
the scrub work; this stand-in goes once that module is in the tree).

  local spec = pii.compile(entries)   -- {"device_id", {path = "user.email", canonical = "lower"}}
  local masked, raws, plain = spec:masks(rec, masker)
    masked[path] = lowercase hex mask of the canonical value (a list for a path with [])
    raws         = list of the raw string values found (for scrubbing free text)
    plain[path]  = the canonical text that was masked (same shape as masked[path])
  spec:apply(rec, masked) -> a copy of rec with each declared value replaced by its mask
Absent and null values are left out; a value that is not a string is masked by its JSON text.
]]
local codec = require "etlua.codec"
local mask = require "etlua.mask"

local M = {}
local null = codec.null

local CANON = {
  ip = function(s) return mask.canonical_ip(s) or s end,
  lower = function(s) return s:lower() end,
  trim = function(s) return (s:match("^%s*(.-)%s*$")) end,
}

-- "a.b[].c" -> {"a", "b", "[]", "c"}
local function split(path)
  local parts = {}
  for seg in path:gmatch("[^%.]+") do
    local name, arr = seg:match("^(.-)(%[%])$")
    if arr then
      if name ~= "" then parts[#parts + 1] = name end
      parts[#parts + 1] = "[]"
    else
      parts[#parts + 1] = seg
    end
  end
  return parts
end
M.split = split

-- Calls fn(value) for each value at parts[i..] under v.
local function walk(v, parts, i, fn)
  if v == nil or v == null then return end
  if i > #parts then return fn(v) end
  if type(v) ~= "table" then return end
  local p = parts[i]
  if p == "[]" then
    for j = 1, #v do walk(v[j], parts, i + 1, fn) end
  else
    walk(v[p], parts, i + 1, fn)
  end
end
M.walk = walk

local Spec = {}
Spec.__index = Spec

function M.compile(entries)
  local list = {}
  for i, e in ipairs(entries or {}) do
    local path, canonical = e, nil
    if type(e) == "table" then path, canonical = e.path, e.canonical end
    if type(path) ~= "string" or path == "" then error(("pii[%d]: not a path"):format(i), 2) end
    if canonical ~= nil and not CANON[canonical] then
      error(("pii[%d]: unknown canonical form %s"):format(i, tostring(canonical)), 2)
    end
    local parts = split(path)
    local many = false
    for _, p in ipairs(parts) do if p == "[]" then many = true end end
    list[i] = { path = path, parts = parts, many = many, canon = CANON[canonical] }
  end
  return setmetatable({ entries = list }, Spec)
end

function Spec:masks(rec, masker)
  local masked, raws, plain = {}, {}, {}
  for _, e in ipairs(self.entries) do
    local ms, ps = {}, {}
    walk(rec, e.parts, 1, function(v)
      local text
      if type(v) == "string" then
        raws[#raws + 1] = v
        text = e.canon and e.canon(v) or v
      else
        text = codec.encode(v) or tostring(v)
      end
      ms[#ms + 1], ps[#ps + 1] = masker:hex(text), text
    end)
    if e.many then
      masked[e.path], plain[e.path] = ms, ps
    elseif ms[1] then
      masked[e.path], plain[e.path] = ms[1], ps[1]
    end
  end
  return masked, raws, plain
end

local function shallow(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return setmetatable(c, getmetatable(t))
end

local function rewrite(v, parts, i, next_mask)
  if v == nil or v == null then return v end
  if i > #parts then return next_mask() end
  if type(v) ~= "table" then return v end
  local c, p = shallow(v), parts[i]
  if p == "[]" then
    for j = 1, #v do c[j] = rewrite(v[j], parts, i + 1, next_mask) end
  else
    c[p] = rewrite(v[p], parts, i + 1, next_mask)
  end
  return c
end

-- spec:apply(rec, masked) -> a copy of rec with the value at every declared path replaced by
-- its mask (rec itself is not changed).
function Spec:apply(rec, masked)
  local out = rec
  for _, e in ipairs(self.entries) do
    local m = masked[e.path]
    if m ~= nil then
      local k = 0
      out = rewrite(out, e.parts, 1, function()
        if not e.many then return m end
        k = k + 1
        return m[k]
      end)
    end
  end
  return out
end

return M
