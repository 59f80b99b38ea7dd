--[[ etlua.writer: how the rows of one output reach their table, inside the sink's transaction.

  local w, err, code = writer.open(db, output, qualify)
      output: one entry of a script description's outputs (etlua.script); qualify(name) ->
      the quoted, schema-qualified name. Creates the table when absent and, for an output with
      a `key`, checks that a unique index on exactly the key columns exists (else a one-line
      error naming the output, the table and the columns).
  w:write(db, rows [, after]) -> count, committed | nil, msg, sqlstate
      rows: arrays in column order, receive order. after (the sink's "COMMIT", when nothing
      else is left to do in the transaction): sent in the COPY's own message, a round trip less
      (not with on_conflict's merge, which follows the COPY); committed: it ran.

The rows travel in COPY's binary format when the columns' types and every value of the batch
have a binary form etlua.pg knows (pg.copy_binary_types: text, varchar, bpchar, int2/4/8, bool,
date; the server then parses no text: its COPY of a login row takes ~40% fewer instructions), else in
COPY's text format, read exactly as before. Binary data has no types of its own: the server
would read an int4 as a date if the column had become one. So the types are the table's at the
COPY: a staging table's are read once (it is this connection's, made at open); the target's are
checked in each batch's transaction, under the ROW EXCLUSIVE lock the COPY takes anyway: the
COPY's own message starts with LOCK TABLE and the types' SELECT (db:copy's guard, the SELECT
prepared once per connection: no ALTER TABLE commits between them and the COPY), and the data
goes only when they are the types it was made for (those read at open, then at each change);
else the attempt ends with "types_changed", the new types kept for the sink's next attempt.
(Read in a round trip of their own before the COPY, they were one of five round trips a batch,
the server idle during each of them.)

Two paths:
  * no key, or on_conflict = "error": one COPY into the table (the fast path). A row whose key
    exists fails the COPY like any refused row; the sink isolates it (db_refused).
  * on_conflict = "ignore" | "update": COPY into a temporary staging table of the same column
    types (per connection, emptied at each commit), then one
      INSERT ... SELECT DISTINCT ON (key) ... ON CONFLICT (key) DO NOTHING | DO UPDATE
    so a conflict costs nothing extra and never splits the batch. Within the batch, rows for
    one key are reduced to the last in receive order ("ignore" and "update" alike: the
    contract's rule that within one batch the last row for a key wins), "update" with
    order_by to the one with the greatest order_by value (the last of equals; NULL counts as
    older than any value). Against the stored row, "update"
    with order_by replaces it only when the stored value is NULL or not newer
    (stored <= new), so a late redelivery of an older version never overwrites a newer one.
]]
local pg = require "etlua.pg"

local M = {}
local Writer = {}
Writer.__index = Writer

-- Creates a table unless `regclass` already names one. Several processes may race on the same
-- CREATE ... IF NOT EXISTS: the loser gets 23505 or 42P07 and finds it made.
local function ensure(db, regclass, ddl)
  for _ = 1, 3 do
    local found, err, code = db:exec("SELECT to_regclass($1) IS NOT NULL", regclass)
    if not found then return nil, err, code end
    if found[1][1] == "t" then return true end
    local ok
    ok, err, code = db:exec(ddl)
    if ok then return true end
    if code ~= "23505" and code ~= "42P07" and code ~= "42710" then return nil, err, code end
  end
  return nil, "could not create " .. regclass, "42P07"
end
M.ensure = ensure

-- A unique, non-partial, immediate index whose key columns are exactly `key` (any order).
local HAS_KEY_INDEX = [[
SELECT 1 FROM pg_index i
 WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate
   AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = cardinality($2::text[])
   AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, n)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
         WHERE u.n <= i.indnkeyatts)
       = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) AS k)
 LIMIT 1]]

-- The type OID of each of the columns (a text[]) of a table (a regclass), in their order: with
-- parameters ($2, $1), or with the names as constants for db:copy's guard (no parameters there).
local COLUMN_TYPES_OF = [[
SELECT a.atttypid::int8 FROM unnest(%s::text[]) WITH ORDINALITY AS c(name, n)
  JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attname = c.name AND NOT a.attisdropped
 ORDER BY c.n]]
local COLUMN_TYPES = COLUMN_TYPES_OF:format("$2", "$1")

-- binary(oids, ncols) -> oids (integers) when there is one a column and each has a binary form
-- in db:copy, else false (a column missing: the COPY then says so)
local function binary(oids, ncols)
  if #oids ~= ncols then return false end
  for i = 1, ncols do
    if not pg.copy_binary_types[oids[i]] then return false end
  end
  return oids
end

-- column_types(db, exec, table, columns) -> the types for db:copy, or false when a column has no
-- binary form (or is missing) | nil, msg, code
local function column_types(db, exec, tbl, columns)
  local rows, err, code = exec(db, COLUMN_TYPES, tbl, columns)
  if not rows then return nil, err, code end
  local oids = {}
  for i, r in ipairs(rows) do oids[i] = math.tointeger(tonumber(r[1])) end
  return binary(oids, #columns)
end

-- The guards' statements are prepared (PREPARE, then EXECUTE in the COPY's message): planned
-- each batch, the SELECT cost the server ~0.15 ms more than its EXECUTE. Named by a count in
-- the process, so each writer's is its own on any connection.
local guards = 0

local function list(db, names, prefix)
  local out = {}
  for i, n in ipairs(names) do out[i] = (prefix or "") .. db:quote_ident(n) end
  return table.concat(out, ", ")
end

function M.open(db, o, qualify)
  local target = qualify(o.table)
  local self = setmetatable({ output = o, target = target, ncols = #o.columns }, Writer)
  local ok, err, code = ensure(db, target, o.create_table:format(target))
  if not ok then return nil, err, code end

  local cols = list(db, o.columns)
  if o.key then
    local found
    found, err, code = db:exec(HAS_KEY_INDEX, target, o.key)
    if not found then return nil, err, code end
    if #found == 0 then
      local k = table.concat(o.key, ", ")
      return nil, ("output '%s': table %s has no unique index on exactly (%s), which its key needs; "
        .. "add PRIMARY KEY (%s) or UNIQUE (%s) to its create_table or the table"):format(
        o.name, o.table, k, k, k), "42P10"
    end
  end
  if o.on_conflict == "error" then
    self.copy = ("COPY %s (%s) FROM STDIN"):format(target, cols)
    -- a table whose columns have a binary form now has its types read at each COPY (lock)
    local types
    types, err, code = column_types(db, db.exec, target, o.columns)
    if types == nil then return nil, err, code end
    if types then
      self.lock = ("LOCK TABLE %s IN ROW EXCLUSIVE MODE"):format(target)
      local names = {}
      for i, c in ipairs(o.columns) do names[i] = db:quote_literal(c) end
      guards = guards + 1
      local stmt = "etlua_types_" .. guards
      self.prepare_guard = ("PREPARE %s AS "):format(stmt)
        .. COLUMN_TYPES_OF:format("ARRAY[" .. table.concat(names, ", ") .. "]", db:quote_literal(target))
      self.guard = self.lock .. "; EXECUTE " .. stmt
      self.known = types
    end
    return self
  end

  -- the staging table: same column types, plus the receive order
  local stage = "pg_temp." .. db:quote_ident("etlua_stage_" .. o.index)
  for _, sql in ipairs({
    ("CREATE TEMP TABLE IF NOT EXISTS %s (LIKE %s) ON COMMIT DELETE ROWS"):format(stage, target),
    ("ALTER TABLE %s ADD COLUMN IF NOT EXISTS etlua_ord bigint GENERATED ALWAYS AS IDENTITY"):format(stage),
  }) do
    ok, err, code = db:exec(sql)
    if not ok then return nil, err, code end
  end
  self.copy = ("COPY %s (%s) FROM STDIN"):format(stage, cols)
  self.types, err, code = column_types(db, db.exec, stage, o.columns)
  if self.types == nil then return nil, err, code end

  local keys = list(db, o.key)
  local order = keys .. ", etlua_ord DESC"
  if o.order_by then
    order = ("%s, %s DESC NULLS LAST, etlua_ord DESC"):format(keys, db:quote_ident(o.order_by))
  end
  local action = "DO NOTHING"
  if o.on_conflict == "update" then
    local keyset, sets = {}, {}
    for _, c in ipairs(o.key) do keyset[c] = true end
    for _, c in ipairs(o.columns) do
      if not keyset[c] then
        local q = db:quote_ident(c)
        sets[#sets + 1] = q .. " = EXCLUDED." .. q
      end
    end
    if #sets > 0 then
      action = "DO UPDATE SET " .. table.concat(sets, ", ")
      if o.order_by then
        local q = db:quote_ident(o.order_by)
        action = action .. (" WHERE t.%s IS NULL OR t.%s <= EXCLUDED.%s"):format(q, q, q)
      end
    end
  end
  self.merge = ("INSERT INTO %s AS t (%s) SELECT %s FROM (SELECT DISTINCT ON (%s) %s FROM %s ORDER BY %s) AS s "
    .. "ON CONFLICT (%s) %s"):format(target, cols, cols, keys, cols, stage, order, keys, action)
  return self
end

function Writer:write(db, rows, after)
  if #rows == 0 then return 0, false end
  if self.merge then after = nil end -- (the merge follows the COPY)
  local types, guard = self.types, nil
  if self.known then -- the target's types as last read: the COPY's guard checks them
    if not self.guard_ready then -- (once per connection, and after a DISCARD ALL)
      local ok, err, code = db:exec(self.prepare_guard)
      if not ok then return nil, err, code end
      self.guard_ready = true
    end
    types, guard = self.known, self.guard
  elseif self.lock then -- they had no binary form: read again, each batch
    db:queue(self.lock)
    local err, code
    types, err, code = column_types(db, db.exec_prepared, self.target, self.output.columns)
    if types == nil then return nil, err, code end
    self.known = types
  end
  local n, err, code, now = db:copy(self.copy, self.ncols, rows, types or nil, guard, after)
  if not n then
    if code == "types_changed" then self.known = binary(now, self.ncols) end
    if code == "26000" and guard then self.guard_ready = false end -- gone: prepared again
    return nil, err, code
  end
  if not self.merge then return n, after ~= nil end
  local ok, affected
  ok, affected, code = db:exec(self.merge)
  if not ok then return nil, affected, code end
  return affected
end

return M
