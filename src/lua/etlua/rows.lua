--[[ etlua.rows: what transform returned -> the rows of each output, every value already in the
form Postgres reads, or the reason it cannot be written. Checked here, so the COPY path
(src/pg_copy.c) only ever sees strings, integers and nil. A row is read by etlua.row's gather (C:
per value and per key it is cheaper than type() and next() from Lua), which also tells the
common row (strings and integers, no other key) from one that needs the checks below.

  local build = rows.builder(desc)        -- desc from etlua.script
  local per_output, err = build(result)   -- result: transform's return value (not false)
    per_output[i] = list of rows of desc.outputs[i], each an array in its column order
    err           = one line naming the output, the column and what was wrong (no values)
  For a script without `outputs` (desc.multi false: one output, one row a message) build
  returns that row itself, not {{row}}: the two wrapper tables would be made for every message.
  local run = rows.transformer(desc, transform, drop)
    run(rec, ctx): transform(rec, ctx) and build of its result in one call; drop for false
  rows.of(item, w) -> the list of rows of output w of an outcome or item (etlua.record):
    item.rows[w], or that one row as a list of one ({} for another w, or no rows there).

Values (SCRIPTING.md "Values"):
  string            as it is
  Lua integer       its digits
  float             the shortest text that reads back as the same number, without a fraction
                    when integral (2.0 -> "2", 0.1 -> "0.1", 1e300 -> "1e+300"); NaN and ±inf
                    are refused (no JSON value decodes to them: they come from a script bug)
  boolean           "true" / "false"
  table             JSON text (for json/jsonb columns; an empty decoded array stays "[]")
  nil, JSON null    NULL
  anything else     refused (function, thread, userdata other than null)
A key column of an output with on_conflict "ignore" or "update" must not be NULL.
]]
local codec = require "etlua.codec"
local gather = require("etlua.row").gather

local M = {}

local null, encode, is_array = codec.null, codec.encode, codec.is_array
local mtype, fmt = math.type, string.format

-- float_text(x) -> text | nil (not finite): the codec's number text, one rule for JSON and rows
local number_text = codec.number_text
local function float_text(x)
  if x ~= x or x == math.huge or x == -math.huge then return nil end
  return number_text(x)
end
M.float_text = float_text

-- value(v) -> the value to write (string | integer | nil), or nil, what (for a refused value)
local function value(v)
  local t = type(v)
  if t == "string" or v == nil then return v end
  if t == "number" then
    if mtype(v) == "integer" then return v end
    local s = float_text(v)
    if s == nil then return nil, "a number that is not finite (" .. tostring(v) .. ")" end
    return s
  end
  if t == "boolean" then return v and "true" or "false" end
  if v == null then return nil end
  if t == "table" then
    local text, err = encode(v)
    if text == nil then return nil, "a table that is not JSON (" .. tostring(err) .. ")" end
    return text
  end
  return nil, "a " .. t
end
M.value = value

-- The converter of one output: named row -> array in column order | nil, err. etlua.row's
-- gather reads the row and says whether it is the common one (strings and integers, no other
-- key); only a row that is not goes through the checks below. not_table: the error for a named
-- that is not a table (a script without outputs: transform's result itself), or nil.
local function row_converter(o, not_table, transform, drop)
  local columns, ncols, colset, required, key_columns = o.columns, #o.columns, {}, {}, {}
  for _, c in ipairs(columns) do colset[c] = true end
  if o.on_conflict ~= "error" then
    for _, c in ipairs(o.key) do required[c] = true end
  end
  for i, c in ipairs(columns) do
    if required[c] then key_columns[#key_columns + 1] = i end
  end
  local nkeys = #key_columns
  local where = "output '" .. o.name .. "'"
  local function unknown(named)
    for k in pairs(named) do
      if not colset[k] then
        return fmt("transform returned column %s, which %s does not have",
                   type(k) == "string" and ("'" .. k .. "'") or ("key of type " .. type(k)), where)
      end
    end
  end
  local function is_null(i)
    return nil, fmt("key column '%s' of %s is NULL", columns[i], where)
  end
  -- every value made writable, the key columns checked, no other key: the row | nil, err
  local function check(named, row)
    local found = 0
    for i = 1, ncols do
      local v = row[i]
      if v ~= nil then
        found = found + 1
        if type(v) ~= "string" and mtype(v) ~= "integer" then
          local what
          v, what = value(v)
          if what then
            return nil, fmt("column '%s' of %s cannot be written: transform gave it %s",
                            columns[i], where, what)
          end
          row[i] = v
        end
      end
      if v == nil and required[columns[i]] then return is_null(i) end
    end
    -- named holds no other key when it has exactly `found` of them
    local k = nil
    for _ = 0, found do
      k = next(named, k)
      if k == nil then return row end
    end
    return nil, unknown(named)
  end
  -- named not a table: nil, not_table .. its type (or nil: the caller says what it was instead)
  local function convert(named)
    local row, plain = gather(named, columns)
    if not plain then
      if row == nil then return nil, not_table and ("transform returned " .. type(named) .. not_table) end
      return check(named, row)
    end
    for j = 1, nkeys do
      local i = key_columns[j]
      if row[i] == nil then return is_null(i) end
    end
    return row
  end
  if not transform then return convert end
  -- M.transformer's: transform, then convert's steps in the same function (a call less a message)
  return function(rec, ctx)
    local named = transform(rec, ctx)
    if not named and named == false then return drop end
    local row, plain = gather(named, columns)
    if not plain then
      if row == nil then return nil, not_table and ("transform returned " .. type(named) .. not_table) end
      return check(named, row)
    end
    for j = 1, nkeys do
      local i = key_columns[j]
      if row[i] == nil then return is_null(i) end
    end
    return row
  end
end

-- A list of rows, or one row: a non-empty table that is not an array is a row (keyed by
-- column name); {} and a decoded [] are empty lists.
local function as_list(v)
  if next(v) ~= nil and not is_array(v) then return { v } end
  return v
end

-- The rows of output w, whichever of the two shapes above the item holds.
function M.of(item, w)
  local row = item.row
  if row then return w == 1 and { row } or {} end
  return item.rows[w] or {}
end

-- rows.transformer(desc, transform, drop) -> function(rec, ctx): transform(rec, ctx), then what
-- builder(desc) makes of its result: drop when transform returned false, else build(result)'s
-- answer; for a script without outputs the row is read in the same function (one Lua call a
-- message less than transform's and then build's).
function M.transformer(desc, transform, drop)
  if not desc.multi then
    return row_converter(desc.outputs[1], ", not a row table or false", transform, drop)
  end
  local build = M.builder(desc)
  return function(rec, ctx)
    local result = transform(rec, ctx)
    if not result and result == false then return drop end
    return build(result)
  end
end

function M.builder(desc)
  local outputs, convert = desc.outputs, {}
  -- a script without outputs: its one output's converter is the builder (one call a message)
  if not desc.multi then return row_converter(outputs[1], ", not a row table or false") end
  for i, o in ipairs(outputs) do convert[i] = row_converter(o) end

  local by_name = desc.by_name
  return function(result)
    if type(result) ~= "table" then
      return nil, "transform returned " .. type(result) .. ", not a table of rows per output or false"
    end
    for name in pairs(result) do
      if by_name[name] == nil then
        return nil, fmt("transform returned rows for %s, which is not an output",
                        type(name) == "string" and ("'" .. name .. "'") or ("a key of type " .. type(name)))
      end
    end
    local per = {}
    for i, o in ipairs(outputs) do
      local list, rows = result[o.name], {}
      if list ~= nil then
        if type(list) ~= "table" then
          return nil, fmt("transform returned %s for output '%s', not a row or a list of rows",
                          type(list), o.name)
        end
        list = as_list(list)
        local n = #list
        for k in pairs(list) do
          if mtype(k) ~= "integer" or k < 1 or k > n then
            return nil, fmt("the list of rows for output '%s' is not a sequence", o.name)
          end
        end
        for j = 1, n do
          if type(list[j]) ~= "table" then
            return nil, fmt("row %d for output '%s' is a %s, not a table", j, o.name, type(list[j]))
          end
          local row, err = convert[i](list[j])
          if not row then return nil, err end
          rows[j] = row
        end
      end
      per[i] = rows
    end
    return per
  end
end

return M
