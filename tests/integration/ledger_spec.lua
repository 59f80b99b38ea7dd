-- ledger_spec.lua: etlua.ledger against a real, throwaway Postgres (run by sink.sh with
-- sink_spec.lua). Every test works in its own schema. Short partition widths and retentions
-- (seconds) stand in for the days of a production ledger.
local ledger = require "etlua.ledger"
local host = require "etlua.host"
local h = require "pg_spec_helper"
local connect, one, spawn, finish = h.connect, h.one, h.spawn, h.finish
local function fresh_schema() return h.fresh_schema("ledger") end




local function open(db, schema, extra)
  local opts = { schema = schema, queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/spec", retention = 3600 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local l, err = ledger.open(db, opts)
  assert(l, err)
  return l
end

-- claim in a transaction of its own; returns the fresh set (the claim's true, every key fresh
-- and each once, as the set of the items' keys)
local function claim(db, l, items)
  assert(db:exec("BEGIN"))
  local fresh, err = l:claim(db, items)
  assert(fresh, err)
  assert(db:exec("COMMIT"))
  if fresh == true then
    fresh = {}
    for _, item in ipairs(items) do
      local key = item.key or item.id
      assert(not fresh[key], "claim: true for a batch with a key twice")
      fresh[key] = true
    end
  end
  return fresh
end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

local function partitions(db, schema)
  return tonumber(one(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)",
    db:quote_ident(schema) .. ".etlua_ledger"))
end

local function wait_until(epoch_s)
  while host.now_ms() / 1000 < epoch_s do os.execute("sleep 0.1") end
end



describe("etlua.ledger", function()
  local db
  before_each(function() db = connect() end)
  after_each(function() db:close() end)

  it("makes a partitioned ledger of 4 fixed-size columns, the queues table, and partitions ahead", function()
    local schema = fresh_schema()
    local l = open(db, schema, { partition_seconds = 600 })
    local q = db:quote_ident(schema)
    assert.are.equal("p", one(db, "SELECT relkind FROM pg_class WHERE oid = to_regclass($1)", q .. ".etlua_ledger"))
    local cols = db:exec("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
      .. "to_regclass($1) AND attnum > 0 ORDER BY attnum", q .. ".etlua_ledger")
    assert.are.same({ "sent", "integer" }, { cols[1][1], cols[1][2] })
    assert.are.same({ "seq", "integer" }, { cols[2][1], cols[2][2] })
    assert.are.same({ "digest", "bigint" }, { cols[3][1], cols[3][2] })
    assert.are.same({ "outcome", '"char"' }, { cols[4][1], cols[4][2] })
    assert.are.equal(600, l.width)
    -- the retention's range (6 partitions of 10 minutes for an hour), now, and 2 ahead
    assert.is_true(partitions(db, schema) >= 8)
    -- made in one transaction (one commit for all, not one each): their catalog rows share it
    assert.are.equal("1", one(db, "SELECT count(DISTINCT c.xmin::text) FROM pg_inherits i JOIN pg_class c "
      .. "ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1)", q .. ".etlua_ledger"))
    assert.are.equal("https://sqs.eu-west-1.amazonaws.com/123456789012/spec" and "123456789012/spec",
      one(db, "SELECT name FROM " .. q .. ".etlua_ledger_queues"))
    -- a second open (another consumer) keeps the width and adds nothing
    local before = partitions(db, schema)
    local l2 = open(db, schema, { partition_seconds = 5 })
    assert.are.equal(600, l2.width)
    assert.are.equal(before, partitions(db, schema))
  end)

  it("makes the partitions one by one when making them together fails (a name taken meanwhile)", function()
    local schema = fresh_schema()
    local q = db:quote_ident(schema)
    local l = open(db, schema, { partition_seconds = 600 })
    local names = db:exec("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      .. "WHERE i.inhparent = to_regclass($1) ORDER BY c.relname", q .. ".etlua_ledger")
    local function attached(name)
      return one(db, "SELECT relispartition FROM pg_class WHERE oid = to_regclass($1)",
        q .. "." .. db:quote_ident(name)) == "t"
    end
    -- three past the oldest gone (detached and dropped; the oldest may leave the retention's
    -- range if a partition boundary passes meanwhile), and the middle one's name taken by a
    -- plain table: making them together fails on it
    for i = 2, 4 do
      local name = q .. "." .. db:quote_ident(names[i][1])
      assert(db:exec("ALTER TABLE " .. q .. ".etlua_ledger DETACH PARTITION " .. name))
      assert(db:exec("DROP TABLE " .. name))
    end
    assert(db:exec("CREATE TABLE " .. q .. "." .. db:quote_ident(names[3][1]) .. " (x int)"))
    local l2 = open(db, schema, { partition_seconds = 600 })
    assert.are.equal(l.width, l2.width)
    -- the two others made again, each on its own after the joint attempt was rolled back
    assert.is_true(attached(names[2][1]))
    assert.is_true(attached(names[4][1]))
    assert.is_false(attached(names[3][1]))
  end)

  it("claims each key once, whatever the outcome, and keeps one queue's keys apart from another's", function()
    local schema = fresh_schema()
    local l = open(db, schema)
    local now = host.now_ms()
    local items = {
      { id = "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sent_ms = now, row = {} },
      { id = "3c1b6f2e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sent_ms = now - 1, reject = {} },
      { id = "sqs-id", key = "sns-message-id", sent_ms = now - 2, drop = true },
      { id = "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sent_ms = now, row = {} }, -- twice in a batch
    }
    local fresh = claim(db, l, items)
    assert.are.equal(3, count(fresh))
    assert.is_true(fresh["sns-message-id"])
    assert.are.equal(0, count(claim(db, l, items)))
    local q = db:quote_ident(schema)
    assert.are.equal("d,j,r",
                     one(db, "SELECT string_agg(outcome::text, ',' ORDER BY outcome) FROM " .. q .. ".etlua_ledger"))
    -- the same SNS message fanned out to another queue is another entry
    local other = open(db, schema, { queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/other" })
    assert.are.equal(1, count(claim(db, other,
                                    { { id = "sqs-id-2", key = "sns-message-id", sent_ms = now - 2, row = {} } })))
  end)

  it("lands a redelivery once when its first delivery and redelivery fall on either side of a partition boundary",
     function()
    local schema = fresh_schema()
    local l = open(db, schema, { partition_seconds = 2, retention = 60 })
    local sent = host.now_ms()
    local items = { { id = "5a0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sent_ms = sent, row = {} },
      { id = "input:7:abcdef", row = {} } }
    assert.are.equal(2, count(claim(db, l, items)))
    local boundary = (sent // 1000 - ledger.EPOCH) // 2 * 2 + 2 + ledger.EPOCH
    wait_until(boundary + 0.2)           -- now in the next partition: the redelivery
    l:maintain()                          -- makes the next partitions ahead, drops nothing
    assert.are.equal(0, count(claim(db, l, items)))
    local again = open(connect(), schema, { partition_seconds = 2, retention = 60 }) -- a restart
    assert.are.equal(0, count(claim(db, again, items)))
  end)

  it("prunes expired partitions while running, in steps, and keeps the live ones", function()
    local schema = fresh_schema()
    local l = open(db, schema, { partition_seconds = 1, retention = 3 })
    local q = db:quote_ident(schema)
    local t0 = host.now_ms()
    local live = {}
    for i = 1, 6 do   -- 6 seconds of sends, 20 messages a second
      local items = {}
      for j = 1, 20 do items[j] = { id = ("m-%d-%d"):format(i, j), sent_ms = host.now_ms(), row = {} } end
      assert.are.equal(20, count(claim(db, l, items)))
      live[i] = items
      for _ = 1, 10 do l:maintain() end
      assert.is_true(partitions(db, schema) <= 3 + 2 + 3, "partitions: " .. partitions(db, schema))
      os.execute("sleep 1")
    end
    for _ = 1, 20 do l:maintain() end
    -- nothing older than the retention (+ one width) is left; the last 3 s are
    local oldest = tonumber(one(db, "SELECT min(sent) FROM " .. q .. ".etlua_ledger")) + ledger.EPOCH
    assert.is_true(oldest >= host.now_ms() / 1000 - 3 - 1 - 1,
                   "oldest entry " .. (host.now_ms() / 1000 - oldest) .. " s old")
    assert.is_true(oldest > t0 / 1000)
    assert.are.equal(0, count(claim(db, l, live[6])))  -- the live ones still land once
    assert.are.equal("0", one(db, "SELECT count(*) FROM pg_class WHERE relname ~ 'etlua_ledger_2' "
                                  .. "AND relnamespace = $1::regnamespace AND NOT relispartition", schema))
  end)

  it("never holds up a consumer's commit while it detaches, and finishes a detach cut short", function()
    local schema = fresh_schema()
    local l = open(db, schema, { partition_seconds = 1, retention = 2 })
    claim(db, l, { { id = "old", sent_ms = host.now_ms(), row = {} } })
    os.execute("sleep 3.5")
    -- another consumer's batch holds a transaction on the ledger open across the detach
    local other = connect()
    local ol = open(other, schema, { partition_seconds = 1, retention = 2 })
    assert(other:exec("BEGIN"))
    assert(ol:claim(other, { { id = "in-flight", sent_ms = host.now_ms(), row = {} } }))
    local t = host.mono()
    for _ = 1, 5 do l:maintain() end
    assert.is_true(host.mono() - t < 5, "maintain took " .. (host.mono() - t) .. " s")
    -- meanwhile a third consumer commits at once
    local third = connect()
    local tl = open(third, schema, { partition_seconds = 1, retention = 2 })
    t = host.mono()
    assert.are.equal(1, count(claim(third, tl, { { id = "third", sent_ms = host.now_ms(), row = {} } })))
    assert.is_true(host.mono() - t < 1)
    assert(other:exec("COMMIT"))
    os.execute("sleep 1")
    for _ = 1, 10 do l:maintain(); l.next_step = 0 end
    local q = db:quote_ident(schema)
    assert.are.equal("0", one(db, "SELECT count(*) FROM pg_inherits WHERE inhdetachpending "
                                  .. "AND inhparent = to_regclass($1)", q .. ".etlua_ledger"))
    assert.is_nil(one(db, "SELECT min(outcome) FROM " .. q .. ".etlua_ledger WHERE sent < $1",
      host.now_ms() // 1000 - ledger.EPOCH - 4))
    other:close()
    third:close()
  end)

  it("re-reads the queue's retention about hourly and records it for the other consumers", function()
    local schema = fresh_schema()
    local retention = 3600
    local l = open(db, schema, { refresh = function() return retention end })
    retention = 7200
    l:maintain()
    assert.are.equal(3600, l.retention)   -- not an hour yet
    l.refreshed, l.next_step = host.mono() - 3601, 0
    l:maintain()
    assert.are.equal(7200, l.retention)
    assert.are.equal(7200, l.horizon)
    assert.are.equal("7200", one(db, "SELECT retention FROM " .. db:quote_ident(schema) .. ".etlua_ledger_queues"))
  end)

  it("takes its first step an interval after open when open found nothing due, at once otherwise", function()
    local schema = fresh_schema()
    local l = open(db, schema)
    local asked = 0 -- the statements the step sends
    l.db = setmetatable({}, { __index = function(_, k)
      return function(_, ...) asked = asked + 1; return db[k](db, ...) end
    end })
    assert.is_false(l:maintain()) -- open read the partitions and made those ahead: nothing due
    assert.are.equal(0, asked)
    local q = db:quote_ident(schema)
    -- a table left detached by a step cut short: the next open finds it, its first step drops it
    assert(db:exec("CREATE TABLE " .. q .. ".etlua_ledger_20240101_000000 (LIKE " .. q .. ".etlua_ledger)"))
    local again = open(db, schema)
    assert.is_true(again:maintain())
    assert.is_nil(one(db, "SELECT to_regclass($1)::text", q .. ".etlua_ledger_20240101_000000"))
  end)

  it("makes a partition on demand for a send time out of range, from several consumers at once", function()
    local schema = fresh_schema()
    open(db, schema, { partition_seconds = 60, retention = 600 })
    local future = host.now_ms() + 3 * 3600 * 1000
    local chunk = ([[
      local pg, ledger = require "etlua.pg", require "etlua.ledger"
      local db = assert(pg.connect(os.getenv("DATABASE_URL")))
      local l = assert(ledger.open(db, { schema = %q, queue = "q", partition_seconds = 60, retention = 600 }))
      local items = {}
      for i = 1, 50 do items[i] = { id = "f" .. ((i * 7) %% 50), sent_ms = %d + i * 60000, row = {} } end
      assert(db:exec("BEGIN"))
      local fresh, err = l:claim(db, items)
      assert(fresh, err)
      assert(db:exec("COMMIT"))
      local n = 0
      if fresh == true then n = #items else for _ in pairs(fresh) do n = n + 1 end end
      print("fresh=" .. n)
    ]]):format(schema, future)
    local procs, total = {}, 0
    for i = 1, 4 do procs[i] = spawn(chunk) end
    for i = 1, 4 do
      local out = finish(procs[i])
      total = total + assert(tonumber(out:match("fresh=(%d+)")), out)
    end
    assert.are.equal(50, total)
    assert.are.equal("50", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema) .. ".etlua_ledger"))
  end)

  it("lands a file loaded twice once, from any path (its stamp), another file's lines again", function()
    local schema = fresh_schema()
    local file = ("ab"):rep(16)
    local items = { { id = "input:" .. file .. ":1", row = {} }, { id = "input:" .. file .. ":2", reject = {} } }
    local a = open(db, schema, { queue = "input:/data/a.jsonl" })
    assert.are.equal(2, count(claim(db, a, items)))
    local copy = open(db, schema, { queue = "input:/elsewhere/copy.jsonl" })
    assert.are.equal(0, count(claim(db, copy, items)))
    local other = { { id = "input:" .. ("cd"):rep(16) .. ":1", row = {} } }
    assert.are.equal(1, count(claim(db, copy, other)))
    -- the file's lines: one stamp, in line order
    local q = db:quote_ident(schema)
    assert.are.equal("1", one(db, "SELECT count(DISTINCT sent) FROM " .. q
                                  .. ".etlua_ledger WHERE seq IN (1, 2) AND outcome IN ('r', 'j')"))
    assert.is_true(a:entry_key("input:" .. file .. ":2") < a:entry_key("input:" .. file .. ":3"))
    -- a stamp older than the retention minus the margin is renewed (a later load then lands
    -- again; a ledger object remembers a stamp only while it is far from that age)
    local stamp = a:file_stamp(db, file)
    assert.are.equal(stamp, a:file_stamp(db, file))
    assert(db:exec("UPDATE " .. q .. ".etlua_ledger_queues SET stamp = stamp - 4 * 86400 WHERE name = $1",
                   "input:" .. file))
    local later = open(db, schema, { queue = "input:/data/a.jsonl" })
    local renewed = later:file_stamp(db, file)
    assert.is_true(renewed >= stamp)
    assert.are.equal(tostring(renewed),
                     one(db, "SELECT stamp FROM " .. q .. ".etlua_ledger_queues WHERE name = $1", "input:" .. file))
  end)

  it("upgrades the ledger of the previous version in place; its entries still stop a redelivery", function()
    local schema = fresh_schema()
    local q = db:quote_ident(schema)
    assert(db:exec("CREATE SCHEMA " .. q))
    assert(db:exec("CREATE TABLE " .. q .. ".etlua_ledger (message_id text PRIMARY KEY, queue text, "
      .. "outcome text, processed_at timestamptz NOT NULL DEFAULT now())"))
    assert(db:exec("CREATE INDEX etlua_ledger_processed_at ON " .. q .. ".etlua_ledger (processed_at)"))
    assert(db:exec("INSERT INTO " .. q .. ".etlua_ledger (message_id, queue, outcome) VALUES "
      .. "('6d0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b', 'q', 'row'), ('input:1:aaaa', 'input:x', 'reject')"))
    local l = open(db, schema, { retention = 3 })
    assert.are.equal("p", one(db, "SELECT relkind FROM pg_class WHERE oid = to_regclass($1)", q .. ".etlua_ledger"))
    assert.are.equal("2", one(db, "SELECT count(*) FROM " .. q .. ".etlua_ledger_v1"))
    local fresh = claim(db, l, { { id = "6d0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", sent_ms = host.now_ms(), row = {} },
      { id = "input:1:aaaa", row = {} }, { id = "new", sent_ms = host.now_ms(), row = {} } })
    assert.are.same({ new = true }, fresh)
    -- a second consumer of the new version opens the upgraded ledger as it is
    open(connect(), schema, { retention = 3 })
    -- once its newest entry is older than the retention, the old table goes
    assert(db:exec("UPDATE " .. q .. ".etlua_ledger_v1 SET processed_at = now() - interval '1 hour'"))
    for _ = 1, 10 do l:maintain(); l.next_step = 0 end
    assert.is_nil(one(db, "SELECT to_regclass($1)::text", q .. ".etlua_ledger_v1"))
    assert.are.equal(1, count(claim(db, l, { { id = "later", sent_ms = host.now_ms(), row = {} } })))
  end)

  it("refuses a table of that name that is not a ledger, in one line", function()
    local schema = fresh_schema()
    local q = db:quote_ident(schema)
    assert(db:exec("CREATE SCHEMA " .. q))
    assert(db:exec("CREATE TABLE " .. q .. ".etlua_ledger (x int)"))
    local l, err = ledger.open(db, { schema = schema, queue = "q" })
    assert.is_nil(l)
    assert.truthy(err:find("is not an etlua ledger", 1, true))
    assert.is_nil(err:find("\n", 1, true))
  end)
end)
