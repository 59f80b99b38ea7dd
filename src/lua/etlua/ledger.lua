-- etlua.ledger: the exactly-once ledger. Owns the table `etlua_ledger` (one logical table,
-- range-partitioned), its small side table `etlua_ledger_queues`, how a message becomes an
-- entry, the claim inside the batch's transaction, and how long an entry lives.
--
-- An entry is (sent int4, seq int4, digest int8, outcome "char"), primary key (sent, seq,
-- digest): a 48-byte heap tuple and a 24-byte index tuple (with (sent, uuid) the index tuple
-- would be 32 bytes: MAXALIGN):
--   sent    seconds since 2024-01-01 UTC of the time a redelivery shares with its first
--           delivery: SQS SentTimestamp (or the SNS Timestamp under the sns envelope); int4
--           lasts until 2092. Messages without one get a stamp (below): an --input line its
--           file's, others their queue's.
--   seq     orders the entries of one second as they arrive, so the B-tree fills at its right
--           edge (~90% full; random keys leave it ~70%): the milliseconds of the send time in the
--           top 10 bits and 21 bits of the key's digest below; for an --input line, its number.
--   digest  64 bits of SHA-256(queue NUL key), the key being the SQS message id (or the SNS
--           MessageId; for an --input line, its id, which names the file by its content). With
--           seq, 85 bits of digest tell apart the messages sent in the same millisecond to one
--           queue: a false duplicate is beyond odds.
--   outcome 'r' row(s) written, 'j' rejected, 'd' dropped.
-- The queue is in the digest, never in a row: one key in two queues (an SNS message fanned out)
-- is two entries. How one key becomes its entry (sent from a send time, seq, digest, what an
-- --input or stdin line's key spells) is C's, stated exactly there: etlua.ledger_entries
-- (src/ledger_entries.c), whose entry() and build() share it. This module decides per batch
-- (stamps, partitions, expired items, the legacy ledger, the order, the fresh set).
-- The table is partitioned by range of `sent`, one partition per `partition_seconds` (fixed when
-- the table is made), so an expired range goes with one DETACH ... CONCURRENTLY and one DROP:
-- no statement ever runs over the whole ledger (etlua.ledger_maintain does that, in steps).
--
-- etlua_ledger_queues(name, retention, seen, stamp): each queue named once ("input" for --input
-- runs, "input:<digest>" for each file loaded), with the retention its consumers need, when one
-- was last running, and its stamp: the `sent` given to its messages that carry no send time,
-- kept while a reload must still find them.
local host = require "etlua.host"
local entries = require "etlua.ledger_entries"
local const = require "etlua.ledger_const"

local M = {}
local Ledger = {}
Ledger.__index = Ledger

M.EPOCH = const.EPOCH              -- 2024-01-01T00:00:00Z, `sent` = 0 (the rule's, in C)
M.MARGIN = const.MARGIN            -- added to the queue's retention: clock skew, late commits
M.INPUT_RETENTION = 4 * 86400 + M.MARGIN -- --input: as a queue with SQS's default retention
M.SQS_MAX_RETENTION = 14 * 86400   -- a queue that does not report its retention
-- Partition widths when none is set: the largest of these at most an eighth of the retention,
-- so the ledger holds at most retention + width (<= 1.125x) of entries plus 2 empty ahead.
local WIDTHS = { 60, 300, 900, 3600, 14400, 21600, 43200, 86400 }
M.AHEAD = const.AHEAD              -- partitions kept made ahead of the current time

-- retention(queue_seconds, override, log) -> seconds a ledger entry must live (margin included).
-- override: ETLUA_LEDGER_RETENTION; queue_seconds: the queue's MessageRetentionPeriod (nil for
-- --input). A shorter override than the queue's own retention is warned about once.
function M.retention(queue_seconds, override, log)
  if override then
    if queue_seconds and override < queue_seconds and log then
      log:warn(("ETLUA_LEDGER_RETENTION=%d is shorter than the queue's retention (%d s): a message "
        .. "redelivered later than that can land twice"):format(override, queue_seconds))
    end
    return override
  end
  if queue_seconds then return queue_seconds + M.MARGIN end
  return M.INPUT_RETENTION
end

-- The partition width for a new ledger.
function M.width_for(retention)
  local w = WIDTHS[1]
  for _, v in ipairs(WIDTHS) do if v * 8 <= retention then w = v end end
  return w
end

-- A queue's name as the ledger records it: the path of an SQS queue URL (account/name; the host
-- may be spelled several ways); "input" for every --input run (a file is its content, named
-- by its digest in its lines' ids, wherever it lies).
function M.queue_name(queue)
  queue = queue or "default"
  local path = queue:match("^%a[%w+.-]*://[^/]+/(.+)$")
  if path then return path end
  if queue:match("^input:") then return "input" end
  return queue
end

local tointeger = math.tointeger
local build_entries, entry = entries.build, entries.entry

-- l:entry_key(key, sent_ms) -> seq, digest, sent, file: the entry of a key by the rule, which
-- lives in C (etlua.ledger_entries.entry: this header's sent, seq and digest, and what an
-- --input or stdin line's key spells). sent_ms: the send time (an integer), or nil for a message
-- without one (sent is then nil: the entry takes a stamp); file: the --input file the key names.
-- An --input line's digest does not name a queue (the same file loaded from anywhere is the same
-- messages); its seq is its line number.
function Ledger:entry_key(key, sent_ms)
  return entry(self.queue, key, sent_ms)
end

-- l:file_stamp(db, file) -> stamp | nil, msg, code: the `sent` of an --input file's lines, in
-- the caller's transaction. A file's first load sets it (its row in etlua_ledger_queues, named
-- "input:<digest>"); loads that start within the retention minus the margin find it, later ones
-- set a new one. Two loads of one file at once: the second's INSERT waits for the first's
-- commit, then reads its stamp.
-- A stamp read back from a row that was already there (committed by an earlier batch or load)
-- is remembered by this ledger object until a minute before the server would renew it, so the
-- batches of one --input run after its first two ask nothing; one this transaction inserted is
-- not (it is gone if the transaction rolls back).
local function remembered_stamp(self, file)
  local known = self.file_stamps and self.file_stamps[file]
  if known and host.mono() < known.until_mono then return known.stamp end
end

function Ledger:file_stamp(db, file)
  local known = remembered_stamp(self, file)
  if known then return known end
  local name = "input:" .. file
  local now = "extract(epoch from now())::bigint - " .. M.EPOCH
  for _ = 1, 3 do
    local rows, err, code = db:exec("INSERT INTO " .. self.queues .. " (name, retention, seen, stamp) "
      .. "VALUES ($1, $2, now(), " .. now .. ") ON CONFLICT (name) DO NOTHING RETURNING stamp", name, self.retention)
    if not rows then return nil, err, code end
    if rows[1] then return math.tointeger(tonumber(rows[1][1])) end
    rows, err, code = db:exec("SELECT stamp, stamp > " .. now .. " - $2, stamp + $2 - (" .. now .. ") FROM "
      .. self.queues .. " WHERE name = $1", name, self.reuse)
    if not rows then return nil, err, code end
    if rows[1] and rows[1][2] == "t" then
      local stamp, left = math.tointeger(tonumber(rows[1][1])), tonumber(rows[1][3])
      self.file_stamps = self.file_stamps or {}
      self.file_stamps[file] = { stamp = stamp, until_mono = host.mono() + math.min(left - 60, 3600) }
      return stamp
    end
    if rows[1] then -- too old: a new stamp (or the one another load has just set)
      rows, err, code = db:exec("UPDATE " .. self.queues .. " SET stamp = " .. now .. ", seen = now() "
        .. "WHERE name = $1 AND stamp = $2 RETURNING stamp", name, rows[1][1])
      if not rows then return nil, err, code end
      if rows[1] then return math.tointeger(tonumber(rows[1][1])) end
    end
  end
  return nil, "could not set the stamp of an --input file", "40001"
end

-- ledger.open(db, opts) -> ledger | nil, msg, code
-- opts: table (default "etlua_ledger"), schema, queue (URL, or "input:PATH"), retention (seconds,
--   margin included; default M.INPUT_RETENTION), refresh (function() -> retention, called about
--   hourly by maintain), partition_seconds (the width of a ledger made now; tests), log.
-- Creates what is missing (upgrading the unpartitioned ledger of earlier versions in place:
-- etlua.ledger_maintain),
-- registers the queue and makes the partitions for the retention's range and ahead. It prunes
-- nothing: maintain() does, while running.
function M.open(db, opts)
  opts = opts or {}
  local base = opts.table or "etlua_ledger"
  local function name(n)
    if opts.schema then return db:quote_ident(opts.schema) .. "." .. db:quote_ident(n) end
    return db:quote_ident(n)
  end
  local retention = math.tointeger(opts.retention or M.INPUT_RETENTION)
  assert(retention and retention > 0, "ledger.open: retention must be a positive integer")
  local self = setmetatable({
    db = db, base = base, schema = opts.schema, name = name,
    parent = name(base), queues = name(base .. "_queues"), legacy_name = name(base .. "_v1"),
    queue = M.queue_name(opts.queue), retention = retention, refresh = opts.refresh,
    log = opts.log, known = {}, next_step = 0, refreshed = host.mono(),
  }, Ledger)
  local maint = require "etlua.ledger_maintain"
  local ok, err, code = maint.create(self, opts.partition_seconds or M.width_for(retention))
  if not ok then return nil, err, code end
  return self
end

-- Time and partitions ---------------------------------------------------------------------------
-- The partition index of a `sent` value: partition k holds [k * width, (k + 1) * width).
function Ledger:slot(s) return s // self.width end

-- Seconds since the epoch (ledger time) now, by this host's clock advanced from the server's.
function Ledger:now_s()
  return self.server_now + math.floor(host.mono() - self.server_at)
end

-- Items whose range expired (its partition may be gone at any moment) are claimed without an
-- entry: SQS no longer holds their messages, unless ETLUA_LEDGER_RETENTION is shorter than the
-- queue's (warned at start). The pruner drops a partition once its end is past now - horizon; a
-- claim treats it as expired a little earlier (slack), so it never inserts into one being detached.
-- l:live_from() -> the first partition index not expired now: k is expired when
-- (k + 1) * width <= now - horizon + slack, that is when k < live_from().
function Ledger:live_from()
  local slack = math.min(60, self.horizon // 10)
  return (self:now_s() - self.horizon + slack) // self.width
end
function Ledger:expired(k) return k < self:live_from() end

-- The claim's statement. Entries go in as four arrays (parallel, sorted); the answer is the
-- positions ($1-based) of the entries it did not insert (taken already), and nothing at all when
-- it inserted every one ($5 = how many): the common case sends no row back.
local function claim_sql(parent)
  return "WITH t AS (INSERT INTO " .. parent .. " (sent, seq, digest, outcome) "
    .. "SELECT s, q, d, o FROM unnest($1::int4[], $2::int4[], $3::int8[], $4::\"char\"[]) AS u(s, q, d, o) "
    .. "ON CONFLICT DO NOTHING RETURNING sent, seq, digest) "
    .. "SELECT u.i FROM unnest($1::int4[], $2::int4[], $3::int8[]) WITH ORDINALITY AS u(s, q, d, i) "
    .. "WHERE (SELECT count(*) FROM t) < $5 "
    .. "AND NOT EXISTS (SELECT 1 FROM t WHERE t.sent = u.s AND t.seq = u.q AND t.digest = u.d)"
end

-- The claim's common case, every entry new, as a plain INSERT of the same arrays under a
-- savepoint: no speculative insertion per entry (ON CONFLICT's), about 2.5 us less server CPU per
-- entry. A key already there (23505: a redelivery, a key twice in the batch, or one a concurrent
-- consumer committed while this one waited on it, as ON CONFLICT waits) rolls the savepoint back
-- and claim_sql answers. The savepoint goes out with the INSERT (db:queue) and is left for
-- COMMIT to release.
-- The arrays are unnested in the select list (one ProjectSet node: each row streams through,
-- in array order, so the lock order holds), not in FROM: unnest(a, b, c, d) in FROM is a
-- function scan that stores every array in a tuplestore first; this costs the server ~2,600
-- instructions less per entry (~17,600 -> ~15,000, callgrind of the backend).
local function insert_sql(parent)
  return "INSERT INTO " .. parent .. " (sent, seq, digest, outcome) "
    .. "SELECT unnest($1::int4[]), unnest($2::int4[]), unnest($3::int8[]), unnest($4::\"char\"[])"
end

local function by_entry(S, Q, D)
  return function(a, b)
    local sa, sb = S[a], S[b]
    if sa ~= sb then return sa < sb end
    local qa, qb = Q[a], Q[b]
    if qa ~= qb then return qa < qb end
    return D[a] < D[b]
  end
end

-- order(S, Q, D, m) -> positions 1..m in (sent, seq, digest) order, or nil when they are in that
-- order already (an --input batch: one stamp, lines in order). Sorted without a Lua comparator
-- where it can: sent - min(sent), seq (< 2^31) and the position packed into one non-negative
-- integer, when they fit in 63 bits (a batch's send times span less than 2^(32 - log2 m) s, 194
-- days for 200) and no two entries share (sent, seq); else (rare) with the comparator.
local function order(S, Q, D, m)
  local sorted, s0, q0 = true, S[1], Q[1]
  for j = 2, m do
    local s1, q1 = S[j], Q[j]
    if s1 < s0 or (s1 == s0 and (q1 < q0 or (q1 == q0 and D[j] < D[j - 1]))) then
      sorted = false
      break
    end
    s0, q0 = s1, q1
  end
  if sorted then return nil end
  local smin, smax = S[1], S[1]
  for j = 2, m do
    local s = S[j]
    if s < smin then smin = s elseif s > smax then smax = s end
  end
  local ib = 1
  while (1 << ib) < m do ib = ib + 1 end
  local C = {}
  if smax - smin < (1 << (32 - ib)) then
    for j = 1, m do C[j] = ((((S[j] - smin) << 31) | Q[j]) << ib) | (j - 1) end
    table.sort(C)
    local low, prev, ties = (1 << ib) - 1, -1, false
    for j = 1, m do
      local c = C[j]
      if c >> ib == prev then ties = true; break end
      prev, C[j] = c >> ib, (c & low) + 1
    end
    if not ties then return C end
  end
  for j = 1, m do C[j] = j end
  table.sort(C, by_entry(S, Q, D))
  return C
end

-- lua_entries(l, db, items, stamps, live) -> fresh, m, S, Q, D, O, P, old | nil, msg, code: the
-- claim's entries for every batch etlua.ledger_entries.build does not take whole, each entry
-- by the same rule in C (entry; spec/ledger_spec.lua holds the two paths to the same answers).
-- fresh: the set of every item's key; S, Q, D, O: sent, seq, digest and outcome of the m
-- entries, in (sent, seq, digest) order; P[j]: the index in items of entry j; old: the keys of
-- items claimed without an entry (expired), when any. stamps: --input file digest -> its stamp,
-- read here (l:file_stamp) at a file's first line. Partitions not made yet are made here.
local function lua_entries(self, db, items, stamps, live)
  local fresh = {}
  local S, Q, D, O, P = {}, {}, {}, {}, {} -- per entry: sent, seq, digest, outcome, its item
  local m = 0
  local old          -- keys of items claimed without an entry (expired), when any
  local ks, unknown, lastk = {}, false, nil
  local queue, width, known, stamp0 = self.queue, self.width, self.known, self.stamp
  for i = 1, #items do
    local item = items[i]
    local key = item.key or item.id
    if type(key) ~= "string" then error("ledger: every item needs a string key or id", 0) end
    -- an --input line's message carries the file and line its id spells (etlua.source_file):
    -- the rule takes them from it when the key is that id, else reads them from the key
    local sent_ms = item.sent_ms
    sent_ms = sent_ms and tointeger(sent_ms // 1)
    local seq, digest, s, file = entry(queue, key, sent_ms, item.message or nil)
    if not s then -- no send time: the file's stamp, else the queue's
      if file then
        s = stamps[file]
        if not s then
          local err, code
          s, err, code = self:file_stamp(db, file)
          if not s then return nil, err, code end
          stamps[file] = s
        end
      else
        s = stamp0
      end
    end
    local k = s // width
    fresh[key] = true  -- until the statement says its entry was taken
    if k < live then
      old = old or {}
      old[key] = true
    else
      if k ~= lastk then
        if not known[k] and not ks[k] then ks[k], unknown = true, true end
        lastk = k
      end
      m = m + 1
      S[m], Q[m], D[m], P[m] = s, seq, digest, i
      O[m] = item.drop and "d" or (item.reject and "j" or "r")
    end
  end
  if unknown then
    local maint = require "etlua.ledger_maintain"
    for k in pairs(ks) do
      local ok, err, code = maint.ensure_in_transaction(self, db, k)
      if not ok then return nil, err, code end
    end
  end
  local pos = m > 0 and order(S, Q, D, m)
  if pos then
    local S2, Q2, D2, O2, P2 = {}, {}, {}, {}, {}
    for j = 1, m do
      local p = pos[j]
      S2[j], Q2[j], D2[j], O2[j], P2[j] = S[p], Q[p], D[p], O[p], P[p]
    end
    S, Q, D, O, P = S2, Q2, D2, O2, P2
  end
  return fresh, m, S, Q, D, O, P, old
end

-- The set of the items' keys (true each): what etlua.ledger_entries's `true` stands for.
local function key_set(items)
  local set = {}
  for i = 1, #items do
    local item = items[i]
    set[item.key or item.id] = true
  end
  return set
end

-- l:claim(db, items) -> fresh | nil, msg, code. fresh: true when every item's key is fresh and
-- no two items share a key (the common batch, whose entries C made: the caller looks nothing
-- up), else the set of the fresh keys (true each). Inside the caller's transaction:
-- inserts one entry per item, in (sent, seq, digest) order so two consumers claiming the same
-- messages take their locks in the same order (no deadlock); a consumer that meets an entry
-- another transaction holds waits for it, then finds it taken. Item: key (or id), id, sent_ms,
-- and one of row(s) / reject / drop; message (optional: the message, whose input_file and
-- input_line, when its id is the key, spare parsing the key). An --input file's stamp is read
-- (l:file_stamp) at its first line in the batch. Entries are parallel arrays (no table per entry).
-- The common batch has its entries made in C (etlua.ledger_entries: each item's entry, the
-- order, the arrays in the statement's binary form); a batch with any other item (a partition
-- to make, an expired one, a key to parse, ...) goes through lua_entries whole. l.lua_entries
-- = true sends every batch there (specs).
function Ledger:claim(db, items)
  local stamps = {}   -- --input file digest -> its stamp, read at its first line in the batch
  local live = self:live_from()
  local fresh, m, S, Q, D, O, P, old
  local pre = self.prepared
  self.prepared = nil
  if pre and pre.items == items and pre.n == #items and pre.live == live and pre.stamp == self.stamp then
    fresh, m, S, Q, D, O, P = pre[1], pre[2], pre[3], pre[4], pre[5], pre[6], pre[7]
  elseif not self.lua_entries then
    local queue, width, stamp0, known = self.queue, self.width, self.stamp, self.known
    fresh, m, S, Q, D, O, P = build_entries(items, queue, width, live, stamp0, stamps, known)
    while not fresh and m do -- m: an --input file whose stamp is to be read first
      local s, err, code = self:file_stamp(db, m)
      if not s then return nil, err, code end
      stamps[m] = s
      fresh, m, S, Q, D, O, P = build_entries(items, queue, width, live, stamp0, stamps, known)
    end
  end
  if not fresh then
    fresh, m, S, Q, D, O, P, old = lua_entries(self, db, items, stamps, live)
    if not fresh then return nil, m, S end -- msg, code
  end
  if m == 0 then return fresh end
  self.insert_sql = self.insert_sql or insert_sql(self.parent)
  db:queue("SAVEPOINT etlua_claim")
  local rows, err, code = db:exec_prepared(self.insert_sql, S, Q, D, O)
  if rows then
    rows = {} -- every entry went in: none taken
  elseif code == "23505" then
    self.claim_sql = self.claim_sql or claim_sql(self.parent)
    db:queue("ROLLBACK TO SAVEPOINT etlua_claim")
    rows, err, code = db:exec_prepared(self.claim_sql, S, Q, D, O, m)
  end
  if not rows then return nil, err, code end
  local taken = {}
  if fresh == true and (rows[1] or self.legacy) then fresh = key_set(items) end
  if rows[1] then -- some taken (rare): a key stays fresh if another of its entries went in
    local kept = {}
    for r = 1, #rows do taken[tointeger(tonumber(rows[r][1]))] = true end
    for j = 1, m do
      if not taken[j] then local item = items[P[j]]; kept[item.key or item.id] = true end
    end
    for j in pairs(taken) do
      local item = items[P[j]]
      local key = item.key or item.id
      if not kept[key] and not (old and old[key]) then fresh[key] = nil end
    end
  end
  if self.legacy then
    local ids, keys, n = {}, {}, 0 -- the inserted entries' ids
    for j = 1, m do
      local item = items[P[j]]
      if not taken[j] and item.id then n = n + 1; ids[n], keys[n] = item.id, item.key or item.id end
    end
    local ok
    ok, err, code = require("etlua.ledger_maintain").check_legacy(self, db, ids, keys, fresh)
    if not ok then return nil, err, code end
  end
  return fresh
end

-- l:prepare(items) -> true when the claim's entries of items are made ahead, for l:claim of these
-- very items (the same table, as long, with the same partitions live and the same stamp; any
-- other claim drops them). The runner calls it from the commit's wait hook once the next batch
-- is processed, so the next claim goes out at once (the entries of a batch of 500 take ~0.25 ms
-- the server would wait): only the common batch etlua.ledger_entries builds whole, with the
-- --input file stamps remembered; it never uses the connection (the hook may not).
function Ledger:prepare(items)
  self.prepared = nil
  if self.lua_entries or #items == 0 then return false end
  local stamps, live = {}, self:live_from()
  local queue, width, stamp0, known = self.queue, self.width, self.stamp, self.known
  local fresh, m, S, Q, D, O, P = build_entries(items, queue, width, live, stamp0, stamps, known)
  while not fresh and m do -- an --input file's stamp: only one remembered
    local s = remembered_stamp(self, m)
    if not s then return false end
    stamps[m] = s
    fresh, m, S, Q, D, O, P = build_entries(items, queue, width, live, stamp0, stamps, known)
  end
  if not fresh then return false end
  self.prepared = { fresh, m, S, Q, D, O, P, items = items, n = #items, live = live, stamp = stamp0 }
  return true
end

-- l:maintain() -> true when it did a step. Between batches: at most one bounded step (make a
-- partition ahead, detach or drop an expired one, ...), each statement under a short lock
-- timeout, and nothing at all most calls. Failures are logged and retried later; they never stop
-- the run.
function Ledger:maintain()
  return require("etlua.ledger_maintain").step(self)
end

return M
