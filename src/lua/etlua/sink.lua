-- etlua.sink: the Postgres half of the runner. Commits a batch exactly once:
--   BEGIN → claim the ledger keys (etlua.ledger) → write each output's rows (etlua.writer) →
--   insert the rejects → COMMIT
-- Only keys the ledger had not seen are written, so a redelivered message lands once (and a
-- concurrent consumer holding the same key waits on the ledger row, then skips it). Every row
-- of one message, on every output, commits in the same transaction as its ledger entry.
-- A message whose rows Postgres refuses for a data reason is isolated by bisection and stored
-- as a reject with reason "db_refused"; the rest of its batch lands. (Key conflicts of an
-- output with on_conflict "ignore" or "update" are not refusals: they never split a batch.)
-- A lost connection is reported as code "connection" and nothing is split: the caller
-- reconnects and retries the whole batch.
-- The breaker: a batch of BREAKER_ROWS messages or more whose every message Postgres refuses for
-- the same reason is not turned into rejects: the run stops (code "refused_all") with nothing
-- written, so nothing is deleted (such a batch means a table does not fit the script, not that
-- the messages are bad). An existing table is checked at open (etlua.table_check).
-- Values always travel as parameters or COPY data; identifiers only through quote_ident.
local writer = require "etlua.writer"
local table_check = require "etlua.table_check"
local ledger = require "etlua.ledger"
local rows_of = require("etlua.rows").of -- an item's rows of output w, either shape

local M = {}

local type = type -- (every item: a local, not a global lookup)
local BREAKER_ROWS = 5
-- Whether any attempt, of any sink of the process, has marked an item a duplicate: until then no
-- item carries the mark, and a landed item's is not looked for (an absent field's lookup a message).
-- Module-wide: the items of a batch go to a new sink after a reconnection.
local marked_any = false
local Sink = {}
Sink.__index = Sink

local REJECT_COLUMNS = "(message_id text, reason text, detail text, body text, rejected_at timestamptz)"

-- Errors caused by the data of some row (not by the connection or the schema).
local function is_data_error(code)
  return type(code) == "string"
    and (code:match("^2[23]") ~= nil or code == "42804" or code == "54000")
end

local function is_connection_error(db, code)
  return code == "connection" or (type(code) == "string" and code:match("^08") ~= nil)
    or db:status() ~= "ok"
end

local ensure = writer.ensure

local function ensure_schema(db, schema)
  local found, err, code = db:exec("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
  if not found then return nil, err, code end
  if #found > 0 then return true end
  local ok
  ok, err, code = db:exec("CREATE SCHEMA IF NOT EXISTS " .. db:quote_ident(schema))
  if ok or code == "23505" or code == "42P06" then return true end
  return nil, err, code
end

-- sink.open(db, opts) -> sink | nil, msg, code
-- opts: outputs (a script description's outputs: etlua.script), rejects_table, schema (of the
--       rejects table and the ledger; optional), ledger (an etlua.ledger; else one is opened on
--       db with ledger_table, schema, queue and the --input defaults),
--       reject_body (function(item, err) -> stored body [, detail]: for a message whose rows
--       Postgres refuses, its body and err made fit to store, without raw pii),
--       in_transaction (function(db, landed_items) -> true | nil, msg, code: runs inside the
--       batch's transaction before COMMIT, e.g. the PII vault).
function M.open(db, opts)
  assert(type(opts.outputs) == "table" and #opts.outputs > 0 and type(opts.rejects_table) == "string",
    "sink.open: outputs and rejects_table are required")
  local function in_schema(schema)
    return function(n)
      if schema then return db:quote_ident(schema) .. "." .. db:quote_ident(n) end
      return db:quote_ident(n)
    end
  end
  local name = in_schema(opts.schema)
  local self = setmetatable({
    db = db, queue = opts.queue, reject_body = opts.reject_body,
    in_transaction = opts.in_transaction,
    rejects = name(opts.rejects_table),
    writers = {},
  }, Sink)

  local schemas = { opts.schema }
  for _, o in ipairs(opts.outputs) do schemas[#schemas + 1] = o.schema end
  for _, schema in pairs(schemas) do
    local ok, err, code = ensure_schema(db, schema)
    if not ok then return nil, err, code end
  end
  for i, o in ipairs(opts.outputs) do
    local fits, ferr, fcode = table_check.check(db, in_schema(o.schema)(o.table), o.create_table, o.columns)
    if not fits then return nil, ferr, fcode end
    local w, err, code = writer.open(db, o, in_schema(o.schema))
    if not w then return nil, err, code end
    self.writers[i] = w
  end
  local steps = {
    { self.rejects, "CREATE TABLE IF NOT EXISTS " .. self.rejects .. " " .. REJECT_COLUMNS },
  }
  for _, step in ipairs(steps) do
    local ok, err, code = ensure(db, step[1], step[2])
    if not ok then return nil, err, code end
  end
  self.ledger = opts.ledger
  if not self.ledger then
    local err, code
    self.ledger, err, code = ledger.open(db, { table = opts.ledger_table, schema = opts.schema, queue = opts.queue })
    if not self.ledger then return nil, err, code end
  end
  return self
end

-- One attempt at one transaction. Returns a summary, or nil, msg, code after ROLLBACK.
function Sink:attempt(items)
  local db = self.db
  local function fail(err, code)
    db:exec("ROLLBACK")
    return nil, err, code
  end
  -- BEGIN travels with the transaction's first statement (the claim): one round trip less
  db:begin()
  local ok, err, code

  -- Claim the ledger keys (the message id, or the envelope's id: item.key) in etlua.ledger, in
  -- a fixed order, so two consumers claim shared keys in the same order (no deadlock).
  for i = 1, #items do
    local item = items[i]
    local id, key = item.id, item.key
    if key == nil then key = id; item.key = id end
    if type(id) ~= "string" or (key ~= id and type(key) ~= "string") then
      error("sink: every item needs a string id (and key)", 0)
    end
  end
  local fresh
  fresh, err, code = self.ledger:claim(db, items)
  if not fresh then return fail(err, code) end

  -- Only claimed keys are written, each once (the same key twice in a batch lands once).
  local nout = #self.writers
  local per_output = {}
  for i = 1, nout do per_output[i] = {} end
  local rejects = { id = {}, reason = {}, detail = {}, body = {} }
  local summary = { written = 0, rejected = 0, dropped = 0, duplicates = 0, refused = 0 }
  -- (numeric loops and counts in locals: ipairs costs a call per element, a field of summary a
  -- lookup, and this runs for every message)
  -- fresh == true (the common batch): every key fresh, each once, nothing to look up; else the
  -- set of the fresh keys, each emptied as its first item lands.
  local all = fresh == true
  local first, nfirst, duplicates, dropped, nrej, refused = per_output[1], 0, 0, 0, 0, 0
  for k = 1, #items do
    local item = items[k]
    local key = item.key
    if not all and not fresh[key] then   -- the caller counts landed outcomes only
      item.duplicate = true
      marked_any = true
      duplicates = duplicates + 1
    else
      if marked_any and item.duplicate then item.duplicate = nil end -- (from an earlier attempt)
      if not all then fresh[key] = nil end
      local row = item.row
      if row then -- a script without outputs: its one row, of the one output
        nfirst = nfirst + 1
        first[nfirst] = row
      else
        local per = item.rows
        if per then
          for i = 1, #per do
            local list, dest = per[i], per_output[i]
            local n = #dest
            for j = 1, #list do dest[n + j] = list[j] end
          end
          nfirst = #first
        elseif item.drop then
          dropped = dropped + 1
        else
          nrej = nrej + 1
          local reject = item.reject
          if reject.reason == "db_refused" then refused = refused + 1 end
          rejects.id[nrej], rejects.reason[nrej] = item.id, reject.reason
          rejects.detail[nrej], rejects.body[nrej] = reject.detail, reject.body
        end
      end
    end
  end
  summary.duplicates, summary.dropped, summary.rejected, summary.refused = duplicates, dropped, nrej, refused
  for _, a in pairs(rejects) do a.n = nrej end

  -- COMMIT goes in the last COPY's own message when nothing else is left to do (no rejects, no
  -- vault): a round trip less; a COPY that fails skips it, and the batch is split as ever
  local last = (nrej == 0 and not self.in_transaction) and nout or 0
  local committed
  for i = 1, nout do
    local n
    n, err, code = self.writers[i]:write(db, per_output[i], i == last and "COMMIT" or nil)
    if not n then return fail(err, code) end
    summary.written = summary.written + n
    committed = i == last and err
  end
  if committed then return summary end
  if summary.rejected > 0 then
    ok, err, code = db:exec(
      "INSERT INTO " .. self.rejects .. " (message_id, reason, detail, body, rejected_at) "
        .. "SELECT m, r, d, b, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(m, r, d, b)",
      rejects.id, rejects.reason, rejects.detail, rejects.body)
    if not ok then return fail(err, code) end
  end
  -- Anything else that must commit with these rows (the PII vault) joins the transaction here,
  -- with the items that landed.
  if self.in_transaction then
    local landed, n = {}, 0
    for k = 1, #items do
      local item = items[k]
      if not item.duplicate then n = n + 1; landed[n] = item end
    end
    ok, err, code = self.in_transaction(db, landed)
    if not ok then return fail(err, code) end
  end
  ok, err, code = db:exec("COMMIT")
  if not ok then return fail(err, code) end
  return summary
end

-- s:prepare(items): the claim of a commit of these very items made ahead (etlua.ledger's
-- l:prepare), while the commit before it waits; never uses the connection.
function Sink:prepare(items)
  return self.ledger:prepare(items)
end

local function add(total, s)
  for k, v in pairs(s) do total[k] = total[k] + v end
  return total
end

-- A single item Postgres will not store as it is: its rows become a db_refused reject (detail
-- = the primary message, which names no values); a reject that cannot be stored loses its body.
local function refuse(self, item, err)
  if item.rows or item.row then
    local body, detail = item.stored_body, nil
    if body == nil and self.reject_body then body, detail = self.reject_body(item, err) end
    item.rows, item.row = nil, nil
    item.reject = { reason = "db_refused", detail = detail or err, body = body }
  elseif item.drop then
    return false
  elseif item.reject.body ~= nil or item.reject.detail ~= err then
    item.reject = { reason = item.reject.reason, detail = "not storable: " .. err }
  else
    return false
  end
  return true
end

-- The breaker's probe: each message's rows alone, on every output, under a savepoint, in one
-- transaction rolled back. Returns the reason ("SQLSTATE message") when BREAKER_ROWS messages
-- or more have rows and every one fails with the same data error; nil as soon as one lands or
-- fails otherwise, or with a unique violation (rows repeating stored keys are db_refused rejects).
function Sink:refuses_all(items)
  local with_rows = {}
  for _, item in ipairs(items) do
    if item.rows or item.row then with_rows[#with_rows + 1] = item end
  end
  if #with_rows < BREAKER_ROWS then return nil end
  local db = self.db
  if not db:exec("BEGIN") then return nil end
  local reason
  for i, item in ipairs(with_rows) do
    if not db:exec("SAVEPOINT etlua_breaker") then reason = nil break end
    local this
    for w, wr in ipairs(self.writers) do
      local n, err, code = wr:write(db, rows_of(item, w))
      if not n then
        -- a key already stored (on_conflict = "error") is the message's fault, not the table's
        this = is_data_error(code) and code ~= "23505" and (code .. " " .. tostring(err)) or nil
        break
      end
    end
    if not this or (i > 1 and this ~= reason) then reason = nil break end
    reason = this
    if not db:exec("ROLLBACK TO SAVEPOINT etlua_breaker") then reason = nil break end
  end
  db:exec("ROLLBACK")
  return reason
end

-- Commits items; on a data error splits the batch until the refused item stands alone (after
-- the breaker's probe, for the whole batch: top = true).
function Sink:commit_part(items, top)
  for _ = 1, 3 do
    local summary, err, code = self:attempt(items)
    if summary then return summary end
    if is_connection_error(self.db, code) then return nil, err, "connection" end
    if is_data_error(code) and top then
      local reason = self:refuses_all(items)
      if reason then
        return nil, ("Postgres refused every row of a batch of %d for the same reason (%s): the table"
          .. " does not take what the script writes; nothing was written"):format(#items, reason), "refused_all"
      end
    end
    if is_data_error(code) then
      if #items == 1 then
        if not refuse(self, items[1], err) then return nil, err, code end
      else
        local mid = #items // 2
        local left, right = table.move(items, 1, mid, 1, {}), table.move(items, mid + 1, #items, 1, {})
        local a, aerr, acode = self:commit_part(left)
        if not a then return nil, aerr, acode end
        local b, berr, bcode = self:commit_part(right)
        if not b then return nil, berr, bcode end
        return add(a, b)
      end
    elseif code ~= "40P01" and code ~= "40001" and code ~= "types_changed" and code ~= "26000" then
      -- deadlock / serialization, a table whose column types changed or a writer's prepared
      -- statement gone (DISCARD ALL: prepared again, etlua.writer): try again
      return nil, err, code
    end
  end
  return nil, "postgres kept refusing the batch", "client"
end

-- s:commit(items) -> {written=, rejected=, dropped=, duplicates=, refused=} | nil, msg, code
-- items: array of {id = message id, key = ledger key (default id), and one outcome:
--   row = the one row (a script without outputs) | rows = {[i] = list of rows of output i} |
--   reject = {reason=, detail=, body=} | drop = true} (etlua.record)
-- an item may carry stored_body (the masked message body) for a db_refused reject (not body: an
-- item may be its message, whose body is the raw one). A refused item is
-- changed in place into its db_refused reject. written counts rows stored (inserted, or
-- updated by an upsert), on every output.
function Sink:commit(items)
  if #items == 0 then return { written = 0, rejected = 0, dropped = 0, duplicates = 0, refused = 0 } end
  return self:commit_part(items, true)
end

return M
