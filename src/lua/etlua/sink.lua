-- etlua.sink: the Postgres half of the runner. Commits a batch exactly once:
--   BEGIN → claim the ids in the ledger → COPY the rows → insert the rejects → COMMIT
-- Only ids the ledger had not seen are written, so a redelivered message lands once (and a
-- concurrent consumer holding the same id waits on the ledger row, then skips it).
-- A row Postgres refuses for a data reason is isolated by bisection and stored as a reject
-- with reason "db_refused"; the rest of its batch lands. A lost connection is reported as
-- code "connection" and nothing is split: the caller reconnects and retries the whole batch.
-- Values always travel as parameters or COPY data; identifiers only through quote_ident.
local M = {}
local Sink = {}
Sink.__index = Sink

local REJECT_COLUMNS = "(message_id text, reason text, detail text, body text, rejected_at timestamptz)"
local LEDGER_COLUMNS = "(message_id text PRIMARY KEY, queue text, outcome text, "
  .. "processed_at timestamptz NOT NULL DEFAULT now())"

-- Errors caused by the data of some row (not by the connection or the schema).
local function is_data_error(code)
  return type(code) == "string"
    and (code:match("^2[23]") ~= nil or code == "42804" or code == "54000")
end

local function is_connection_error(db, code)
  return code == "connection" or (type(code) == "string" and code:match("^08") ~= nil)
    or db:status() ~= "ok"
end

-- Creates a table (or index) unless `regclass` already names one. Several processes may race
-- on the same CREATE ... IF NOT EXISTS: the loser gets 23505 or 42P07 and finds it made.
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
-- opts: table, schema (optional), columns, create_table (format string, %s = quoted table),
--       queue (recorded in the ledger), rejects_table / ledger_table (optional names),
--       reject_body (function(item) -> stored body, for a row Postgres refuses),
--       in_transaction (function(db, landed_items) -> true | nil, msg, code: runs inside the
--       batch's transaction before COMMIT, e.g. the PII vault).
function M.open(db, opts)
  assert(type(opts.table) == "string" and type(opts.columns) == "table"
    and type(opts.create_table) == "string", "sink.open: table, columns and create_table are required")
  local function name(n)
    if opts.schema then return db:quote_ident(opts.schema) .. "." .. db:quote_ident(n) end
    return db:quote_ident(n)
  end
  local self = setmetatable({
    db = db, queue = opts.queue, ncols = #opts.columns, reject_body = opts.reject_body,
    in_transaction = opts.in_transaction,
    target = name(opts.table),
    rejects = name(opts.rejects_table or "user_logins_rejects"),
    ledger = name(opts.ledger_table or "etlua_ledger"),
    ledger_index = name((opts.ledger_table or "etlua_ledger") .. "_processed_at"),
  }, Sink)
  local cols = {}
  for i, c in ipairs(opts.columns) do cols[i] = db:quote_ident(c) end
  self.copy_rows = ("COPY %s (%s) FROM STDIN"):format(self.target, table.concat(cols, ", "))

  if opts.schema then
    local ok, err, code = ensure_schema(db, opts.schema)
    if not ok then return nil, err, code end
  end
  local steps = {
    { self.target, opts.create_table:format(self.target) },
    { self.rejects, "CREATE TABLE IF NOT EXISTS " .. self.rejects .. " " .. REJECT_COLUMNS },
    { self.ledger, "CREATE TABLE IF NOT EXISTS " .. self.ledger .. " " .. LEDGER_COLUMNS },
    { self.ledger_index, ("CREATE INDEX IF NOT EXISTS %s ON %s (processed_at)")
        :format(db:quote_ident((opts.ledger_table or "etlua_ledger") .. "_processed_at"), self.ledger) },
  }
  for _, step in ipairs(steps) do
    local ok, err, code = ensure(db, step[1], step[2])
    if not ok then return nil, err, code end
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
  local ok, err, code = db:exec("BEGIN")
  if not ok then return fail(err, code) end

  -- Claim the ids, sorted so two consumers claim shared ids in the same order (no deadlock).
  local ids, outcomes, order = {}, {}, {}
  for i = 1, #items do
    assert(type(items[i].id) == "string", "sink: every item needs a string id")
    order[i] = items[i]
  end
  table.sort(order, function(a, b) return a.id < b.id end)
  for i, item in ipairs(order) do
    ids[i], outcomes[i] = item.id, item.row and "row" or "reject"
  end
  local claimed
  claimed, err, code = db:exec(
    "INSERT INTO " .. self.ledger .. " (message_id, queue, outcome) "
      .. "SELECT id, $3, outcome FROM unnest($1::text[], $2::text[]) AS u(id, outcome) "
      .. "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
    ids, outcomes, self.queue)
  if not claimed then return fail(err, code) end
  local fresh = {}
  for _, r in ipairs(claimed) do fresh[r[1]] = true end

  -- Only claimed ids are written, each once (the same id twice in a batch lands once).
  local rows, rejects = {}, { id = {}, reason = {}, detail = {}, body = {} }
  local summary = { written = 0, rejected = 0, duplicates = 0, refused = 0 }
  for _, item in ipairs(items) do
    item.duplicate = not fresh[item.id] or nil   -- the caller counts landed outcomes only
    if item.duplicate then
      summary.duplicates = summary.duplicates + 1
    elseif item.row then
      fresh[item.id] = nil
      rows[#rows + 1] = item.row
    else
      fresh[item.id] = nil
      local n = summary.rejected + 1
      summary.rejected = n
      if item.reject.reason == "db_refused" then summary.refused = summary.refused + 1 end
      rejects.id[n], rejects.reason[n] = item.id, item.reject.reason
      rejects.detail[n], rejects.body[n] = item.reject.detail, item.reject.body
    end
  end
  for _, a in pairs(rejects) do a.n = summary.rejected end

  if #rows > 0 then
    local n
    n, err, code = db:copy(self.copy_rows, self.ncols, rows)
    if not n then return fail(err, code) end
    summary.written = n
  end
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
    local landed = {}
    for _, item in ipairs(items) do
      if not item.duplicate then landed[#landed + 1] = item end
    end
    ok, err, code = self.in_transaction(db, landed)
    if not ok then return fail(err, code) end
  end
  ok, err, code = db:exec("COMMIT")
  if not ok then return fail(err, code) end
  return summary
end

local function add(total, s)
  for k, v in pairs(s) do total[k] = total[k] + v end
  return total
end

-- A single item Postgres will not store as it is: a row becomes a db_refused reject (detail =
-- the primary message, which names no values); a reject that cannot be stored loses its body.
local function refuse(self, item, err)
  if item.row then
    item.row = nil
    local body = item.body
    if body == nil and self.reject_body then body = self.reject_body(item) end
    item.reject = { reason = "db_refused", detail = err, body = body }
  elseif item.reject.body ~= nil or item.reject.detail ~= err then
    item.reject = { reason = item.reject.reason, detail = "not storable: " .. err }
  else
    return false
  end
  return true
end

-- Commits items; on a data error splits the batch until the refused item stands alone.
function Sink:commit_part(items)
  for _ = 1, 3 do
    local summary, err, code = self:attempt(items)
    if summary then return summary end
    if is_connection_error(self.db, code) then return nil, err, "connection" end
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
    elseif code ~= "40P01" and code ~= "40001" then -- deadlock / serialization: try again
      return nil, err, code
    end
  end
  return nil, "postgres kept refusing the batch", "client"
end

-- s:commit(items) -> {written=, rejected=, duplicates=, refused=} | nil, msg, code
-- items: array of {id = message_id, row = {v1, ..., vN}} or {id = ..., reject = {reason=,
-- detail=, body=}}; an item may carry body (the masked message body) for a db_refused reject.
-- A refused row's item is changed in place into its db_refused reject.
function Sink:commit(items)
  if #items == 0 then return { written = 0, rejected = 0, duplicates = 0, refused = 0 } end
  return self:commit_part(items)
end

-- s:prune(days) -> deleted count | nil, msg, code. SQS keeps a message at most 14 days, so
-- ledger rows older than that can never see their message again.
function Sink:prune(days)
  local ok, n, code = self.db:exec(
    "DELETE FROM " .. self.ledger .. " WHERE processed_at < now() - make_interval(days => $1)",
    math.tointeger(days) or error("prune: days must be an integer"))
  if not ok then return nil, n, code end
  return n
end

return M
