-- etlua.table_check: the existing-table check at start-up. When a target table already exists,
-- every column the script writes must have the type the script's own create_table gives it;
-- otherwise etlua stops before it receives anything, in one line naming the table, the column,
-- the existing and the expected type (a wrong table would turn valid messages into rejects, or
-- store them wrong: a date column takes the integer 300 as 0300-10-04).
--
-- The expected types come from Postgres itself, not from parsing the DDL: create_table is run
-- against a temporary table (pg_temp) in a transaction that is rolled back, and both tables'
-- columns are read as format_type() of pg_attribute. Where the types differ:
--   - a text type (text, varchar, char) where the script makes a number is accepted (the
--     take-home's table may hold app_version as varchar(32)); numbers fit any text type;
--   - text or varchar where the script makes text or varchar is accepted when at least as wide
--     (varchar(256) for varchar(128), text for anything): every value the script's table takes
--     fits; a narrower one (varchar(16) for varchar(128)) is refused, since values the script
--     allows would be refused one by one at run time;
--   - anything else is refused (integer for bigint too: the contract wants the script's type).
-- A column the script does not write must take NULL or have a default (or be an identity or
-- generated column): otherwise every row would be refused.
local M = {}

local NUMBER = {
  smallint = true, integer = true, bigint = true, real = true, ["double precision"] = true,
}

local function is_number(t) return NUMBER[t] or t:match("^numeric") ~= nil end

-- Width of a text or varchar type (math.huge when unbounded), nil for any other type.
local function varchar_width(t)
  if t == "text" or t == "character varying" then return math.huge end
  return tonumber(t:match("^character varying%((%d+)%)$"))
end

local function is_text(t)
  return varchar_width(t) ~= nil or t == "character" or t:match("^character%(%d+%)$") ~= nil
end

-- fits(existing, expected) -> true when a column of type `existing` takes what the script writes.
function M.fits(existing, expected)
  if existing == expected then return true end
  if is_text(existing) and is_number(expected) then return true end
  local have, want = varchar_width(existing), varchar_width(expected)
  return have ~= nil and want ~= nil and have >= want
end

-- column name -> format_type of the relation `regclass` (a name as to_regclass reads it), and
-- the set of its columns that need a value (NOT NULL, no default, not identity or generated).
local function column_types(db, regclass)
  local rows, err, code = db:exec(
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      .. "a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' "
      .. "FROM pg_attribute a "
      .. "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
      .. "ORDER BY a.attnum", regclass)
  if not rows then return nil, err, code end
  local types, required = {}, {}
  for _, r in ipairs(rows) do
    types[r[1]] = r[2]
    if r[3] == "t" then required[#required + 1] = r[1] end
  end
  return types, required
end

-- The columns of the target and of the probe, in one statement: which (t: the target, p: the
-- probe), name, format_type, and whether it needs a value (NOT NULL, no default, not identity or
-- generated). The relations as to_regclass reads them.
local COLUMNS = "SELECT CASE WHEN a.attrelid = to_regclass($1) THEN 't' ELSE 'p' END, a.attname, "
  .. "format_type(a.atttypid, a.atttypmod), "
  .. "a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' "
  .. "FROM pg_attribute a "
  .. "WHERE a.attrelid IN (to_regclass($1), to_regclass($2)) AND a.attnum > 0 AND NOT a.attisdropped "
  .. "ORDER BY 1 DESC, a.attnum"

-- check(db, target, create_table, columns) -> true | nil, one-line message, code
--   target: the quoted (maybe schema-qualified) table name, as sink.open makes it;
--   create_table: the script's format string (%s = the table); columns: the names it writes.
-- Code "table_mismatch" for a table that does not fit; a SQLSTATE when a query failed.
-- True when the table does not exist yet (it will be made from create_table).
-- One round trip: BEGIN and create_table against a temporary table (the probe) go out queued
-- with the statement that reads both tables' columns; the ROLLBACK goes out with the caller's
-- next statement (db:queue). The table's existence is asked apart only when it has no column
-- (it does not exist, or has none) or the probe failed (a table that does not exist is made
-- from create_table later, with that statement's own error).
function M.check(db, target, create_table, columns)
  local probe = "pg_temp." .. db:quote_ident("etlua_table_check")
  local ok, err, code = db:queue("BEGIN")
  if ok then ok, err, code = db:queue(create_table:format(probe)) end
  if not ok then return nil, err, code end
  local rows
  rows, err, code = db:exec(COLUMNS, target, probe)
  if rows then
    db:queue("ROLLBACK")
  else
    db:exec("ROLLBACK")
  end
  local have, required, want = {}, {}, {}
  for _, r in ipairs(rows or {}) do
    if r[1] == "t" then
      have[r[2]] = r[3]
      if r[4] == "t" then required[#required + 1] = r[2] end
    else
      want[r[2]] = r[3]
    end
  end
  if not next(have) then
    local found, ferr, fcode = db:exec("SELECT to_regclass($1) IS NOT NULL", target)
    if not found then return nil, ferr, fcode end
    if found[1][1] ~= "t" then return true end
    -- there now: its columns read again, in a statement of their own (a table another process
    -- made meanwhile has its pg_class row seen by to_regclass before the statement's snapshot
    -- sees its columns)
    have, required, fcode = column_types(db, target)
    if not have then return nil, required, fcode end
  end
  if not rows then
    return nil, "the script's create_table does not run against a temporary table: " .. tostring(err), code
  end
  for _, col in ipairs(columns) do
    if not want[col] then
      return nil, ("the script writes column %s, which its create_table does not make; fix the script")
        :format(col), "table_mismatch"
    elseif not have[col] then
      return nil, ("table %s has no column %s (the script writes it as %s); add the column or let etlua"
        .. " create the table, nothing was received"):format(target, col, want[col]), "table_mismatch"
    elseif not M.fits(have[col], want[col]) then
      return nil, ("table %s: column %s is %s, the script's create_table makes it %s; fix the table"
        .. " (or the script), nothing was received"):format(target, col, have[col], want[col]), "table_mismatch"
    end
  end
  local written = {}
  for _, col in ipairs(columns) do written[col] = true end
  for _, col in ipairs(required) do
    if not written[col] then
      return nil, ("table %s: column %s is NOT NULL without a default and the script does not write it;"
        .. " give it a default or drop NOT NULL, nothing was received"):format(target, col), "table_mismatch"
    end
  end
  return true
end

return M
