-- outputs_spec.lua: the script contract's write side against a real, throwaway Postgres (run by
-- sink.sh with sink_spec.lua): several outputs and fan-out in one transaction, rejects_table,
-- drops in the ledger, ledger keys shared by redeliveries (SNS), key + unique-index check at
-- start, on_conflict error | ignore | update with and without order_by, the last row for a key
-- within a batch, and no bisection for conflicts. Every test works in its own schema.
local sink = require "etlua.sink"
local script = require "etlua.script"
local h = require "pg_spec_helper"
local connect, one, all = h.connect, h.one, h.all
local function fresh_schema() return h.fresh_schema("outs") end





-- A sink for a script table (hooks added), in its own schema; returns sink, description.
local function open(db, schema, spec)
  spec.validate, spec.transform = print, print
  if spec.outputs then
    for _, o in ipairs(spec.outputs) do o.schema = schema end
  else
    spec.schema = schema
  end
  local d = script.describe(spec, "spec")
  local s, err = sink.open(db, { outputs = d.outputs, rejects_table = d.rejects_table,
                                 schema = d.schema, queue = "q" })
  return s, err, d
end

-- Counts the transactions a sink starts (a batch split by bisection starts more than one).
local function count_begins(s)
  local db, n = s.db, 0
  s.db = setmetatable({ exec = function(_, sql, ...)
    if sql == "BEGIN" then n = n + 1 end
    return db:exec(sql, ...)
  end, begin = function() -- the sink's BEGIN, sent with its first statement
    n = n + 1
    return db:begin()
  end }, { __index = function(_, k)
    local v = db[k]
    if type(v) == "function" then return function(_, ...) return v(db, ...) end end
    return v
  end })
  return function() return n end
end

local ORDERS = "CREATE TABLE IF NOT EXISTS %s (order_id text PRIMARY KEY, status text, ts bigint)"
local LINES = "CREATE TABLE IF NOT EXISTS %s (order_id text, line integer, sku text, PRIMARY KEY (order_id, line))"

local function two_outputs(on_conflict, order_by)
  return { outputs = {
    { name = "orders", table = "orders", columns = { "order_id", "status", "ts" }, create_table = ORDERS,
      key = on_conflict and { "order_id" }, on_conflict = on_conflict, order_by = order_by },
    { name = "lines", table = "order_lines", columns = { "order_id", "line", "sku" }, create_table = LINES,
      key = on_conflict and { "order_id", "line" }, on_conflict = on_conflict },
  } }
end

local function order(id, key, status, ts, lines)
  local rows = { { { key, status, ts } }, {} }
  for i = 1, lines or 0 do rows[2][i] = { key, i, "sku-" .. i } end
  return { id = id, rows = rows }
end

describe("outputs", function()
  local db
  before_each(function() db = connect() end)
  after_each(function() db:close() end)

  it("fans one message out into several tables, 0, 1 or many rows each, in one transaction", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs()))
    local q = db:quote_ident(schema)
    local sum = assert(s:commit({ order("m1", "o1", "new", 1, 0), order("m2", "o2", "new", 1, 1),
                                  order("m3", "o3", "new", 1, 5) }))
    assert.are.equal(3 + 6, sum.written)
    assert.are.equal("3", one(db, "SELECT count(*) FROM " .. q .. ".orders"))
    assert.are.same({ "o2|1", "o3|5" }, all(db, "SELECT order_id, count(*) FROM " .. q
      .. ".order_lines GROUP BY 1 ORDER BY 1"))
    -- the default rejects table: the first output's table .. "_rejects"
    assert.truthy(one(db, "SELECT to_regclass($1)", schema .. ".orders_rejects"))
  end)

  it("refuses a message as a whole when one of its rows is refused (db_refused), the rest lands", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs()))
    local q = db:quote_ident(schema)
    local bad = order("m2", "o2", "new", 1, 2)
    bad.rows[2][2][2] = "not a number"   -- line integer
    local sum = assert(s:commit({ order("m1", "o1", "new", 1, 2), bad, order("m3", "o3", "new", 1, 1) }))
    assert.are.equal(1, sum.refused)
    assert.are.same({ "o1", "o3" }, all(db, "SELECT order_id FROM " .. q .. ".orders ORDER BY 1"))
    assert.are.equal("0", one(db, "SELECT count(*) FROM " .. q .. ".order_lines WHERE order_id = 'o2'"))
    assert.are.equal("m2|db_refused", one(db, "SELECT message_id || '|' || reason FROM " .. q .. ".orders_rejects"))
  end)

  it("writes rejects to rejects_table", function()
    local schema = fresh_schema()
    local spec = two_outputs()
    spec.rejects_table = "order_problems"
    local s = assert(open(db, schema, spec))
    assert(s:commit({ { id = "r1", reject = { reason = "invalid_x", detail = "d", body = "{}" } } }))
    local q = db:quote_ident(schema)
    assert.are.equal("r1", one(db, "SELECT message_id FROM " .. q .. ".order_problems"))
    assert.is_nil(one(db, "SELECT to_regclass($1)::text", schema .. ".orders_rejects"))
  end)

  it("records a dropped message in the ledger only, and a redelivery of it is a duplicate", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs()))
    local q = db:quote_ident(schema)
    local sum = assert(s:commit({ { id = "d1", drop = true }, order("m1", "o1", "new", 1, 1) }))
    assert.are.same({ written = 2, rejected = 0, dropped = 1, duplicates = 0, refused = 0 }, sum)
    assert.are.equal("d,r",
                     one(db, "SELECT string_agg(outcome::text, ',' ORDER BY outcome) FROM " .. q .. ".etlua_ledger"))
    assert.are.equal("0", one(db, "SELECT count(*) FROM " .. q .. ".orders_rejects"))
    local again = assert(s:commit({ { id = "d1", drop = true } }))
    assert.are.equal(1, again.duplicates)
  end)

  it("lands a message once per ledger key: two SQS ids with one SNS MessageId", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs()))
    local q = db:quote_ident(schema)
    local a, b = order("sqs-1", "o1", "new", 1, 2), order("sqs-2", "o1", "new", 1, 2)
    a.key, b.key = "sns-1", "sns-1"
    local sum = assert(s:commit({ a, b }))
    assert.are.equal(1, sum.duplicates)
    local c = order("sqs-3", "o1", "new", 1, 2)
    c.key = "sns-1"
    assert.are.equal(1, assert(s:commit({ c })).duplicates)
    assert.are.equal("1", one(db, "SELECT count(*) FROM " .. q .. ".orders"))
    assert.are.equal("2", one(db, "SELECT count(*) FROM " .. q .. ".order_lines"))
    assert.are.equal("1", one(db, "SELECT count(*) FROM " .. q .. ".etlua_ledger"))
  end)
end)

describe("key and on_conflict", function()
  local db
  before_each(function() db = connect() end)
  after_each(function() db:close() end)

  it("refuses at start a key without a unique index on exactly its columns", function()
    for _, ddl in ipairs({
      "CREATE TABLE IF NOT EXISTS %s (order_id text, status text, ts bigint)",
      "CREATE TABLE IF NOT EXISTS %s (order_id text, status text, ts bigint, UNIQUE (order_id, status))",
      "CREATE TABLE IF NOT EXISTS %s (order_id text, status text, ts bigint, UNIQUE (status))",
    }) do
      local _, err = open(db, fresh_schema(), { table = "orders", columns = { "order_id", "status", "ts" },
        create_table = ddl, key = { "order_id" }, on_conflict = "update" })
      assert.are.equal("output 'orders': table orders has no unique index on exactly (order_id), which "
        .. "its key needs; add PRIMARY KEY (order_id) or UNIQUE (order_id) to its create_table or the table", err)
    end
    -- a unique index in another column order is fine
    assert(open(db, fresh_schema(), { table = "l", columns = { "a", "b" },
      create_table = "CREATE TABLE IF NOT EXISTS %s (a int, b int, UNIQUE (b, a))", key = { "a", "b" },
      on_conflict = "ignore" }))
  end)

  it("error: a row whose key exists is a db_refused reject", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("error")))
    assert(s:commit({ order("m1", "o1", "new", 1, 1) }))
    local sum = assert(s:commit({ order("m2", "o1", "paid", 2, 1), order("m3", "o2", "new", 1, 1) }))
    assert.are.equal(1, sum.refused)
    local q = db:quote_ident(schema)
    assert.are.same({ "o1|new", "o2|new" }, all(db, "SELECT order_id, status FROM " .. q .. ".orders ORDER BY 1"))
  end)

  it("error: a whole batch repeating stored keys is rejects, not a stop", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("error")))
    local first, again = {}, {}
    for i = 1, 8 do
      first[i] = order("m" .. i, "o" .. i, "new", 1, 1)
      again[i] = order("r" .. i, "o" .. i, "paid", 2, 1)
    end
    assert(s:commit(first))
    local sum = assert(s:commit(again))
    assert.are.equal(8, sum.refused)
  end)

  it("ignore: the stored row stays; within a batch the last row for a new key wins", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("ignore")))
    local begins = count_begins(s)
    assert(s:commit({ order("m1", "o1", "new", 1, 1) }))
    local sum = assert(s:commit({ order("m2", "o1", "paid", 2, 3), order("m3", "o2", "first", 1, 1),
                                  order("m4", "o2", "second", 2, 1) }))
    assert.are.equal(0, sum.refused)
    assert.are.equal(2, begins()) -- no bisection
    local q = db:quote_ident(schema)
    assert.are.same({ "o1|new|1", "o2|second|2" },
      all(db, "SELECT order_id, status, ts FROM " .. q .. ".orders ORDER BY 1"))
    -- lines 2 and 3 of o1 were new keys: they land
    assert.are.equal("3", one(db, "SELECT count(*) FROM " .. q .. ".order_lines WHERE order_id = 'o1'"))
  end)

  it("update without order_by: the last row wins, in the batch and against the table", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("update")))
    local begins = count_begins(s)
    assert(s:commit({ order("m1", "o1", "new", 5, 1) }))
    assert(s:commit({ order("m2", "o1", "paid", 1, 1), order("m3", "o2", "a", 1, 0),
                      order("m4", "o2", "b", 9, 0), order("m5", "o2", "c", 3, 0) }))
    assert.are.equal(2, begins())
    local q = db:quote_ident(schema)
    assert.are.same({ "o1|paid|1", "o2|c|3" },
                    all(db, "SELECT order_id, status, ts FROM " .. q .. ".orders ORDER BY 1"))
  end)

  it("update with order_by: only a row not older than the stored one replaces it", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("update", "ts")))
    local begins = count_begins(s)
    local q = db:quote_ident(schema)
    local function status()
      return all(db, "SELECT order_id, status, coalesce(ts::text, 'null') FROM " .. q .. ".orders ORDER BY 1")
    end
    assert(s:commit({ order("m1", "o1", "v5", 5, 1), order("m2", "o2", "null", nil, 0) }))
    -- older: ignored; equal: replaces; within a batch the greatest ts wins whatever the order
    assert(s:commit({ order("m3", "o1", "v4", 4, 1) }))
    assert.are.same({ "o1|v5|5", "o2|null|null" }, status())
    assert(s:commit({ order("m4", "o1", "v5b", 5, 1) }))
    assert.are.same({ "o1|v5b|5", "o2|null|null" }, status())
    assert(s:commit({ order("m5", "o1", "v9", 9, 1), order("m6", "o1", "v7", 7, 1),
                      order("m7", "o2", "v1", 1, 0), order("m8", "o2", "null2", nil, 0) }))
    -- a NULL ts is older than any value: o2's stored NULL is replaced by 1, the NULL after it is not
    assert.are.same({ "o1|v9|9", "o2|v1|1" }, status())
    assert(s:commit({ order("m9", "o2", "null3", nil, 0) }))
    assert.are.same({ "o1|v9|9", "o2|v1|1" }, status())
    assert.are.equal(5, begins())
  end)

  it("handles 10% repeated keys in a 1000-message batch in one transaction", function()
    local schema = fresh_schema()
    local s = assert(open(db, schema, two_outputs("update", "ts")))
    local begins = count_begins(s)
    local items = {}
    for i = 1, 1000 do
      local k = i % 10 == 0 and ("o" .. (i - 5)) or ("o" .. i)
      items[i] = order("m" .. i, k, "s" .. i, i, 2)
    end
    local sum = assert(s:commit(items))
    assert.are.equal(0, sum.refused)
    assert.are.equal(1, begins())
    local q = db:quote_ident(schema)
    assert.are.equal("900", one(db, "SELECT count(*) FROM " .. q .. ".orders"))
    assert.are.equal("s10", one(db, "SELECT status FROM " .. q .. ".orders WHERE order_id = 'o5'"))
  end)
end)
