-- etlua.ledger_maintain: the ledger's DDL (etlua.ledger owns the entries and the claim):
-- creating the ledger, upgrading the ledger of earlier versions in place, making partitions
-- (ahead of time, or on demand for a time out of range) and dropping expired ones while etlua
-- runs, one bounded step at a time.
--
-- Locks. Inserts take ROW EXCLUSIVE on the parent. A partition is made as a plain table and
-- then ATTACHed (SHARE UPDATE EXCLUSIVE on the parent: inserts go on), never CREATE TABLE ...
-- PARTITION OF (ACCESS EXCLUSIVE on the parent). An expired one is DETACHed CONCURRENTLY (SHARE
-- UPDATE EXCLUSIVE; it then waits for the transactions already using the parent, i.e. batches in
-- flight) and DROPped once it is a table of its own, which locks nothing the consumers use. So
-- there is no DEFAULT partition (it forbids DETACH CONCURRENTLY): a time out of range gets its
-- partition made on demand. Every step runs under a short lock_timeout; a step that times out
-- is left for a later call (a detach cut short is FINALIZEd then).
local host = require "etlua.host"
local const = require "etlua.ledger_const"

local M = {}

local LOCK_TIMEOUT = "500ms"
local UPGRADE_LOCK_TIMEOUT = "10s"
local MAX_PAST_AT_OPEN = 64 -- partitions made at open for the past; older ones on demand

local function exec_all(db, ...)
  for _, sql in ipairs({ ... }) do
    local ok, err, code = db:exec(sql)
    if not ok then return nil, err, code end
  end
  return true
end

local function bound_sql(v)
  if v < -2147483648 then return "MINVALUE" end
  if v > 2147483647 then return "MAXVALUE" end
  return tostring(v)
end

-- The name of partition k: the base name and its start time in UTC.
local function part_name(l, k)
  return l.base .. "_" .. os.date("!%Y%m%d_%H%M%S", const.EPOCH + k * l.width)
end

local function attach_sql(l, k)
  local q = l.name(part_name(l, k))
  return "CREATE TABLE " .. q .. " (LIKE " .. l.parent .. ")",
    ("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)"):format(
      l.parent, q, bound_sql(k * l.width), bound_sql((k + 1) * l.width))
end

local function exists_code(code) return code == "42P07" or code == "23505" or code == "42710" end

-- Makes partition k outside any transaction (open, maintain). true when it exists now.
local function create_partition(l, k)
  local db = l.db
  local create, attach = attach_sql(l, k)
  local ok, err, code = exec_all(db, "BEGIN", "SET LOCAL lock_timeout = '" .. LOCK_TIMEOUT .. "'",
                                 create, attach, "COMMIT")
  if not ok then
    db:exec("ROLLBACK")
    if not exists_code(code) then return nil, err, code end
  end
  l.known[k] = true
  return true
end

-- Makes the partitions ks (a list of k, none made yet) at open, in one transaction: one commit
-- (one WAL flush) for all, not one each (a new ledger makes the retention's range: ~11 of them,
-- ~30 ms of a first run on a durable server). The statements go out queued (db:queue), up to
-- QUEUED_AT_ONCE a round trip. When another consumer made one of them meanwhile (or holds the
-- parent's lock past the timeout), it is all rolled back and each made on its own.
local QUEUED_AT_ONCE = 7
local function create_partitions(l, ks)
  local db = l.db
  if #ks > 1 then
    local sql = { "BEGIN", "SET LOCAL lock_timeout = '" .. LOCK_TIMEOUT .. "'" }
    for _, k in ipairs(ks) do
      local create, attach = attach_sql(l, k)
      sql[#sql + 1], sql[#sql + 2] = create, attach
    end
    sql[#sql + 1] = "COMMIT"
    local ok = true
    for i, stmt in ipairs(sql) do
      if i == #sql or i % (QUEUED_AT_ONCE + 1) == 0 then
        ok = db:exec(stmt)
        if not ok then break end
      else
        db:queue(stmt)
      end
    end
    if ok then
      for _, k in ipairs(ks) do l.known[k] = true end
      return true
    end
    db:exec("ROLLBACK")
  end
  for _, k in ipairs(ks) do
    if not l.known[k] then
      local ok, err, code = create_partition(l, k)
      if not ok then return nil, err, code end
    end
  end
  return true
end

-- ensure_in_transaction(l, db, k): partition k made inside the caller's transaction (a time no
-- partition covers yet). Another consumer making the same one at once: ours waits for its
-- commit, fails with "exists", and is rolled back to the savepoint.
function M.ensure_in_transaction(l, db, k)
  local create, attach = attach_sql(l, k)
  local ok, err, code = db:exec("SAVEPOINT etlua_ledger_partition")
  if not ok then return nil, err, code end
  local found
  found, err, code = db:exec("SELECT c.relispartition FROM pg_class c WHERE c.oid = to_regclass($1)",
    l.name(part_name(l, k)))
  if not found then return nil, err, code end
  if found[1] and found[1][1] == "t" then
    ok, err, code = true, nil, nil
  elseif found[1] then
    ok, err, code = db:exec(attach)
  else
    ok, err, code = exec_all(db, create, attach)
  end
  if ok then
    ok, err, code = db:exec("RELEASE SAVEPOINT etlua_ledger_partition")
    if not ok then return nil, err, code end
  else
    local rolled, rerr, rcode = db:exec("ROLLBACK TO SAVEPOINT etlua_ledger_partition")
    if not rolled then return nil, rerr, rcode end
    if not exists_code(code) then return nil, err, code end
  end
  l.known[k] = true
  return true
end

-- check_legacy(l, db, ids, keys, fresh): a ledger upgraded from an earlier version keeps its old
-- table (<base>_v1, message_id text) until every entry in it has expired; a message it holds is
-- not fresh. ids[i], keys[i]: the message id and ledger key of each entry the claim inserted.
-- The old table may be dropped by another consumer meanwhile: a savepoint covers it.
function M.check_legacy(l, db, ids, keys, fresh)
  if #ids == 0 then return true end
  local by = {}
  for i, id in ipairs(ids) do by[id] = keys[i] end
  local ok, err, code = db:exec("SAVEPOINT etlua_ledger_legacy")
  if not ok then return nil, err, code end
  local rows
  rows, err, code = db:exec("SELECT message_id FROM " .. l.legacy .. " WHERE message_id = ANY($1::text[])", ids)
  if not rows then
    local rolled, rerr, rcode = db:exec("ROLLBACK TO SAVEPOINT etlua_ledger_legacy")
    if not rolled then return nil, rerr, rcode end
    if code ~= "42P01" then return nil, err, code end
    l.legacy = nil
    return true
  end
  ok, err, code = db:exec("RELEASE SAVEPOINT etlua_ledger_legacy")
  if not ok then return nil, err, code end
  for _, r in ipairs(rows) do
    local key = by[r[1]]
    if key then fresh[key] = nil end
  end
  return true
end

local PARTITIONS_SQL = "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending "
  .. "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1)"

-- Tables left detached by a step cut short (detached, not yet dropped): named like partitions.
-- (the schema and the name's pattern as parameters $s and $p; columns: more after relname)
local function orphans_sql(s, p, columns)
  return "SELECT c.relname" .. (columns or "") .. " FROM pg_class c WHERE c.relnamespace = "
    .. "COALESCE((SELECT oid FROM pg_namespace WHERE nspname = $" .. s .. "), current_schema()::regnamespace) "
    .. "AND c.relkind = 'r' AND NOT c.relispartition AND c.relname ~ $" .. p
end

local function orphans_pattern(l)
  return "^" .. l.base:gsub("%W", "%%%0"):gsub("%%", "\\") .. "_[0-9]{8}_[0-9]{6}$"
end

-- A partition's row {relname, bound, pending} into list (and known, when not being detached).
local function add_partition(l, list, known, r)
  local lo, hi = r[2]:match("FROM %((%-?%w+)%) TO %((%-?%w+)%)")
  lo = math.tointeger(tonumber(lo)) or math.mininteger
  hi = math.tointeger(tonumber(hi)) or math.maxinteger
  list[#list + 1] = { name = r[1], lo = lo, hi = hi, pending = r[3] == "t" }
  if r[3] ~= "t" then
    if lo ~= math.mininteger then known[lo // l.width] = true
    elseif hi ~= math.maxinteger then known[hi // l.width - 1] = true end
  end
end

-- The partitions of the ledger now: {name, lo, hi, pending}, and l.known rebuilt. With orphans
-- (open): the tables left detached too (orphans_sql), in the same statement (rows without a
-- bound), as a second result.
local function partitions(l, orphans)
  local rows, err, code
  if orphans then
    rows, err, code = l.db:exec(PARTITIONS_SQL .. " UNION ALL " .. orphans_sql(2, 3, ", NULL, NULL"),
      l.parent, l.schema, orphans_pattern(l))
  else
    rows, err, code = l.db:exec(PARTITIONS_SQL, l.parent)
  end
  if not rows then return nil, err, code end
  local list, known, left = {}, {}, {}
  for _, r in ipairs(rows) do
    if r[2] == nil then left[#left + 1] = r[1] else add_partition(l, list, known, r) end
  end
  l.known = known
  return list, left
end

-- The server's time and the horizon: the longest retention of the queues still consumed (a
-- queue nobody consumed for longer than its retention has no message left to redeliver).
local function refresh_state(l)
  local rows, err, code = l.db:exec(
    "WITH me AS (INSERT INTO " .. l.queues .. " AS q (name, retention, seen, stamp) "
      .. "VALUES ($1, $2, now(), $5) ON CONFLICT (name) DO UPDATE SET seen = now(), retention = $2 "
      .. "WHERE q.seen < now() - make_interval(secs => $3) OR q.retention <> $2 RETURNING 1) "
      .. "SELECT extract(epoch from now())::bigint - $4, (SELECT max(retention) FROM " .. l.queues
      .. " WHERE seen > now() - make_interval(secs => retention)), (SELECT count(*) FROM me)",
    l.queue, l.retention, math.max(1, math.min(l.retention // 4, 600)), const.EPOCH, l.stamp)
  if not rows then return nil, err, code end
  l.server_now, l.server_at = math.tointeger(tonumber(rows[1][1])), host.mono()
  l.horizon = math.max(l.retention, math.tointeger(tonumber(rows[1][2] or "0")) or 0)
  return true
end

-- What open asks first, in one statement (one row, whatever exists): the ledger's kind and
-- whether it has the earlier version's message_id column (M.upgrade), its comment (the width),
-- whether the queues table and the upgraded-from ledger exist.
local OPEN_PROBE = "SELECT c.relkind, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
  .. "AND a.attname = 'message_id' AND NOT a.attisdropped), obj_description(c.oid, 'pg_class'), "
  .. "to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL "
  .. "FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid"

-- create(l, width): at open. Upgrades an earlier ledger, makes the tables, registers the queue
-- (its stamp), and the partitions from the retention's start to AHEAD ahead.
function M.create(l, width)
  local db = l.db
  local ok, err, code
  if l.schema then
    ok, err, code = db:exec("CREATE SCHEMA IF NOT EXISTS " .. db:quote_ident(l.schema))
    if not ok and code ~= "23505" and code ~= "42P06" then return nil, err, code end
  end
  local probe
  probe, err, code = db:exec(OPEN_PROBE, l.parent, l.queues, l.legacy_name)
  if not probe then return nil, err, code end
  probe = probe[1]
  ok, err, code = M.upgrade(l, width, probe)
  if not ok then return nil, err, code end
  -- the probe's answers hold unless the upgrade renamed the ledger (it was not partitioned)
  local probed = probe[1] == nil or probe[1] == "p"
  -- parent (with its width in its comment: fixed when it is made); a new one is made with the
  -- queues table when the probe did not find that either, in one transaction and one round trip
  -- (one WAL flush, not two)
  local queues_made
  for attempt = 1, 3 do
    local found
    if attempt == 1 and probed then
      found = { { probe[3], probe[1] and "t" or "f" } }
    else
      found, err, code = db:exec("SELECT obj_description(to_regclass($1), 'pg_class'), "
                                 .. "to_regclass($1) IS NOT NULL", l.parent)
    end
    if not found then return nil, err, code end
    if found[1][2] == "t" then
      l.width = math.tointeger(tonumber((found[1][1] or ""):match("partition_seconds=(%d+)"))) or width
      break
    end
    local queues = not (probed and probe[4] == "t") and M.queues_ddl(l) or nil
    db:queue("BEGIN")
    db:queue(M.parent_ddl(l))
    db:queue(M.comment_ddl(l, width))
    if queues then db:queue(queues) end
    ok, err, code = db:exec("COMMIT")
    if ok then
      l.width, queues_made = width, queues ~= nil
      break
    end
    db:exec("ROLLBACK")
    if not exists_code(code) then return nil, err, code end
  end
  if not l.width then return nil, "could not create " .. l.parent, "42P07" end
  -- the queues table (when neither the probe nor the parent's transaction made sure of it), then
  -- this queue's row and stamp
  if not queues_made and not (probed and probe[4] == "t") then
    for _ = 1, 3 do
      ok, err, code = db:exec(M.queues_ddl(l))
      if ok or not exists_code(code) then break end
    end
    if not ok then return nil, err, code end
  end
  local reuse = l.retention - math.min(const.MARGIN, l.retention // 2)
  l.reuse = reuse
  -- ... and, in the same statement, the server's time and the horizon (refresh_state's): the
  -- other queues' retentions as they were (this queue's row is the one just written: its
  -- retention counts in the horizon as l.retention)
  local rows
  rows, err, code = db:exec("WITH me AS (INSERT INTO " .. l.queues .. " AS q (name, retention, seen, stamp) "
    .. "VALUES ($1, $2, now(), extract(epoch from now())::bigint - $4) ON CONFLICT (name) DO UPDATE "
    .. "SET retention = EXCLUDED.retention, seen = EXCLUDED.seen, stamp = CASE WHEN "
    .. "q.stamp <= EXCLUDED.stamp - $3 OR q.stamp > EXCLUDED.stamp THEN EXCLUDED.stamp ELSE q.stamp END "
    .. "RETURNING stamp) SELECT (SELECT stamp FROM me), extract(epoch from now())::bigint - $4, "
    .. "(SELECT max(retention) FROM " .. l.queues .. " WHERE seen > now() - make_interval(secs => retention) "
    .. "AND name <> $1)", l.queue, l.retention, reuse, const.EPOCH)
  if not rows then return nil, err, code end
  l.stamp = math.tointeger(tonumber(rows[1][1]))
  l.server_now, l.server_at = math.tointeger(tonumber(rows[1][2])), host.mono()
  l.horizon = math.max(l.retention, math.tointeger(tonumber(rows[1][3] or "0")) or 0)
  if probed then
    l.legacy = probe[5] == "t" and l.legacy_name or nil
  else
    local legacy
    legacy, err, code = db:exec("SELECT to_regclass($1) IS NOT NULL", l.legacy_name)
    if not legacy then return nil, err, code end
    l.legacy = legacy[1][1] == "t" and l.legacy_name or nil
  end
  -- partitions: the retention's range (the latest MAX_PAST_AT_OPEN), now, and ahead; and the
  -- tables left detached, in the same statement
  local list, left
  list, left, code = partitions(l, true)
  if not list then return nil, left, code end
  local now_k = l.server_now // l.width
  local first = math.max((l.server_now - l.horizon) // l.width, now_k - MAX_PAST_AT_OPEN)
  local missing = {}
  for k = first, now_k + const.AHEAD do
    if not l.known[k] then missing[#missing + 1] = k end
  end
  ok, err, code = create_partitions(l, missing)
  if not ok then return nil, err, code end
  l.interval = math.max(1, math.min(60, l.width // 4))
  l.to_drop = left
  -- open has just read what a step reads first (the server's time, the horizon, the partitions)
  -- and made the partitions ahead: when that shows nothing for a step to do, the first step is
  -- an interval away, as after a step that found nothing (a run of one batch asked again, at its
  -- end, what open had just read: two round trips, ~1.2 ms)
  if not M.due(l, list) then l.next_step = host.mono() + l.interval end
  return true
end

-- due(l, list) -> true when a step would do something now, by the partitions list (as
-- partitions() reads it) and what l holds: a detach to finalize, a detached table to drop, an
-- expired partition, one to make ahead, or the upgraded-from ledger to look at.
function M.due(l, list)
  if #l.to_drop > 0 or l.legacy then return true end
  local limit = l.server_now - l.horizon
  for _, p in ipairs(list) do
    if p.pending or p.hi <= limit then return true end
  end
  local now_k = l.server_now // l.width
  for k = now_k, now_k + const.AHEAD do
    if not l.known[k] then return true end
  end
  return false
end

function M.parent_ddl(l)
  return "CREATE TABLE " .. l.parent .. " (sent int4 NOT NULL, seq int4 NOT NULL, "
    .. "digest int8 NOT NULL, outcome \"char\" NOT NULL, PRIMARY KEY (sent, seq, digest)) "
    .. "PARTITION BY RANGE (sent)"
end

function M.queues_ddl(l)
  return "CREATE TABLE IF NOT EXISTS " .. l.queues .. " (name text PRIMARY KEY, "
    .. "retention int4 NOT NULL, seen timestamptz NOT NULL, stamp int4 NOT NULL)"
end

function M.comment_ddl(l, width)
  return ("COMMENT ON TABLE %s IS 'etlua ledger: entries (sent, seq, digest, outcome), "
    .. "partitioned by sent; partition_seconds=%d'"):format(l.parent, width)
end

-- upgrade(l, width, probed): the ledger of etlua before partitioning (message_id text PRIMARY KEY,
-- queue, outcome, processed_at) is renamed <base>_v1 and kept, read-only, for the claims of
-- messages it holds, until its newest entry is older than the retention (maintain drops it); a
-- new ledger takes its name. Its entries have no send time, so they cannot move into the new one.
function M.upgrade(l, width, probed)
  local db = l.db
  local probe = "SELECT c.relkind, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
    .. "AND a.attname = 'message_id' AND NOT a.attisdropped) FROM pg_class c WHERE c.oid = to_regclass($1)"
  -- probed: open's first row (OPEN_PROBE: relkind, has message_id; relkind nil when there is none)
  if probed[1] == nil or probed[1] == "p" then return true end
  if probed[2] ~= "t" then
    return nil, ("%s exists and is not an etlua ledger; rename it, or name another ledger table")
      :format(l.parent), "42P07"
  end
  local ok, err, code = exec_all(db, "BEGIN", "SET LOCAL lock_timeout = '" .. UPGRADE_LOCK_TIMEOUT .. "'",
    "LOCK TABLE " .. l.parent .. " IN ACCESS EXCLUSIVE MODE")
  if not ok then
    db:exec("ROLLBACK")
    if code == "55P03" then
      return nil, ("cannot upgrade the ledger %s: it is in use; stop the etlua processes of the earlier "
        .. "version, then start again"):format(l.parent), code
    end
    return nil, err, code
  end
  local rows
  rows, err, code = db:exec(probe, l.parent)
  if rows and rows[1] and rows[1][1] == "r" then
    local v1 = l.base .. "_v1"
    ok, err, code = exec_all(db,
      "ALTER TABLE " .. l.parent .. " RENAME TO " .. db:quote_ident(v1),
      "ALTER INDEX IF EXISTS " .. l.name(l.base .. "_pkey") .. " RENAME TO " .. db:quote_ident(v1 .. "_pkey"),
      "ALTER INDEX IF EXISTS " .. l.name(l.base .. "_processed_at") .. " RENAME TO "
        .. db:quote_ident(v1 .. "_processed_at"),
      M.parent_ddl(l), M.comment_ddl(l, width))
  end
  if not rows or not ok then
    db:exec("ROLLBACK")
    if code == "42P07" then
      return nil, ("cannot upgrade the ledger %s: %s already exists; drop it once it is no longer "
        .. "needed, then start again"):format(l.parent, l.legacy_name), code
    end
    return nil, err, code
  end
  ok, err, code = db:exec("COMMIT")
  if not ok then return nil, err, code end
  if l.log then
    l.log:info("ledger upgraded: the earlier entries stay in " .. l.legacy_name
      .. " until they expire", { ledger = l.parent })
  end
  return true
end

-- One DDL statement under the short lock timeout (session level: DETACH CONCURRENTLY cannot run
-- in a transaction block).
local function ddl(l, sql)
  local db = l.db
  local ok, err, code = db:exec("SET lock_timeout = '" .. LOCK_TIMEOUT .. "'")
  if not ok then return nil, err, code end
  ok, err, code = db:exec(sql)
  db:exec("SET lock_timeout = DEFAULT")
  return ok, err, code
end

local function drop(l, name)
  local ok, err, code = ddl(l, "DROP TABLE IF EXISTS " .. l.name(name))
  if not ok then l.to_drop[#l.to_drop + 1] = name end
  return ok, err, code
end

-- The one step of maintain (see etlua.ledger): the first of
--   finalize a detach cut short / drop a detached table / detach+drop an expired partition /
--   make a partition ahead / drop the upgraded-from ledger once expired / forget stale queues.
function M.step(l)
  local now = host.mono()
  if now < l.next_step then return false end
  l.next_step = now + l.interval
  if l.refresh and now - l.refreshed >= 3600 then
    l.refreshed = now
    local ok, r = pcall(l.refresh)
    if ok and math.tointeger(r) then l.retention = r end
    l.db:exec("DELETE FROM " .. l.queues
              .. " WHERE seen < now() - make_interval(secs => retention) - interval '1 hour'")
  end
  local ok, err, code = refresh_state(l)
  local list
  if ok then list, err, code = partitions(l) end
  if not list then return M.failed(l, err, code) end
  local did
  local limit = l.server_now - l.horizon
  table.sort(list, function(a, b) return a.lo < b.lo end)
  for _, p in ipairs(list) do
    if p.pending then
      ok, err, code = ddl(l, "ALTER TABLE " .. l.parent .. " DETACH PARTITION " .. l.name(p.name) .. " FINALIZE")
      if ok then ok, err, code = drop(l, p.name) end
      did = "finalized " .. p.name
      break
    end
  end
  if not did and #l.to_drop > 0 then
    local name = table.remove(l.to_drop, 1)
    ok, err, code = drop(l, name)
    did = "dropped " .. name
  end
  if not did then
    for _, p in ipairs(list) do
      if p.hi <= limit then
        ok, err, code = ddl(l, "ALTER TABLE " .. l.parent .. " DETACH PARTITION " .. l.name(p.name) .. " CONCURRENTLY")
        if ok then ok, err, code = drop(l, p.name) end
        did = "expired " .. p.name
        break
      end
    end
  end
  if not did then
    local now_k = l.server_now // l.width
    for k = now_k, now_k + const.AHEAD do
      if not l.known[k] then
        ok, err, code = create_partition(l, k)
        did = "made " .. part_name(l, k)
        break
      end
    end
  end
  if not did and l.legacy then
    local rows = l.db:exec("SELECT coalesce(max(processed_at) < now() - make_interval(secs => $1), true) FROM "
      .. l.legacy, l.horizon)
    if rows and rows[1][1] == "t" then
      ok, err, code = ddl(l, "DROP TABLE IF EXISTS " .. l.legacy)
      if ok then l.legacy = nil end
      did = "dropped the upgraded-from ledger"
    end
  end
  if not did then return false end
  l.next_step = now -- more may be due: the next call goes on
  if not ok then return M.failed(l, err, code) end
  if l.log then l.log:info("ledger maintenance", { step = did }) end
  return true
end

-- Failures that mean another consumer is doing the same step (or holds a lock for a moment):
-- lock timeout, already pending detach, gone, already there, not a partition any more.
local RACES = { ["55P03"] = true, ["55000"] = true, ["42P01"] = true, ["42P07"] = true,
  ["42710"] = true, ["23505"] = true, ["42P17"] = true, ["40P01"] = true }

-- A step that failed: retried later; a warning unless it was a race with another consumer.
function M.failed(l, err, code)
  l.next_step = host.mono() + l.interval
  if not RACES[code] and l.log then
    l.log:warn("ledger maintenance step failed; retrying later", { error = err, code = code })
  end
  return false
end

return M
