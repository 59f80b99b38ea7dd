-- sink_spec.lua: etlua.pg and etlua.sink against a real, throwaway Postgres (run by sink.sh,
-- which starts tests/harness/pg.sh and exports PG* / DATABASE_URL). Every test works in its own
-- schema, so the ledger and rejects tables of one test never see another's rows.
local pg = require "etlua.pg"
local sink = require "etlua.sink"
local h = require "pg_spec_helper"
local connect, one, spawn, finish = h.connect, h.one, h.spawn, h.finish
local function fresh_schema() return h.fresh_schema("spec") end

local COLUMNS = { "user_id", "device_type", "masked_ip", "masked_device_id", "locale",
  "app_version", "create_date" }
local CREATE = "CREATE TABLE IF NOT EXISTS %s (user_id varchar(128), device_type varchar(32), "
  .. "masked_ip varchar(256), masked_device_id varchar(256), locale varchar(32), "
  .. "app_version integer, create_date date)"



-- Sink options for outputs described as a script would (etlua.script.describe).
local function options(schema, spec)
  spec.validate, spec.transform = spec.validate or print, spec.transform or print
  local d = require("etlua.script").describe(spec, "spec")
  return { outputs = d.outputs, rejects_table = d.rejects_table, schema = schema, queue = "spec-queue" }
end

local function open(db, schema, extra)
  local opts = options(schema, { table = "user_logins", schema = schema, columns = COLUMNS,
    create_table = CREATE })
  for k, v in pairs(extra or {}) do opts[k] = v end
  local s, err = sink.open(db, opts)
  assert(s, err)
  return s
end

local function row(user, device, app_version)
  return { user, device or "android", "ip-hash", "dev-hash", "RU", app_version or 2003000, "2024-01-02" }
end




describe("etlua.pg", function()
  local db
  before_each(function() db = connect() end)
  after_each(function() db:close() end)

  it("returns rows with NULLs as nil, the row count and the column count", function()
    local rows, n, ncols = db:exec("SELECT $1::text, $2::int, $3::text", "a", 7, nil)
    assert.are.equal(1, n)
    assert.are.equal(3, ncols)
    assert.are.same({ "a", "7", nil, n = 3 }, rows[1])
    local _, affected = db:exec("SELECT generate_series(1, 5)")
    assert.are.equal(5, affected)
  end)

  it("passes arrays (with nil holes when n is set) as text[] parameters", function()
    local rows = db:exec("SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i",
      { 'a"b', "c\\d", nil, "e,f{}", n = 4 })
    assert.are.equal(4, #rows)
    assert.are.equal('a"b', rows[1][1])
    assert.are.equal("c\\d", rows[2][1])
    assert.is_nil(rows[3][1])
    assert.are.equal("e,f{}", rows[4][1])
    local big = {}
    for i = 1, 5000 do big[i] = ('id"%d\\'):format(i) end
    assert.are.equal(5000, select(2, db:exec("SELECT unnest($1::text[])", big)))
    assert.are.equal(big[4321], one(db, "SELECT ($1::text[])[4321]", big))
    local none, _, code = db:exec("SELECT $1::text[]", { "ok", 'a\0"b' })
    assert.is_nil(none)
    assert.are.equal("22021", code)
  end)

  it("sends prepared statements' int4[], int8[], \"char\"[] and text[] arrays in binary, exactly", function()
    local sql = "SELECT $1::int4[]::text, $2::int8[]::text, $3::\"char\"[]::text, $4::text[]::text, "
      .. "cardinality($1), cardinality($4), $4[2] = $5, octet_length($4[3])"
    local weird = 'q"uo\\te\\"{,}\tNULL \xc3\xa9'
    local rows = assert(db:exec_prepared(sql, { -2147483648, 2147483647, 0, -1, nil, n = 5 },
      { math.mininteger, math.maxinteger, 0, -1, 1 << 32 }, { "r", "j", "d", nil, n = 4 },
      { "", weird, "\xc3\xa9", nil, "NULL", n = 5 }, weird))
    assert.are.same({ "{-2147483648,2147483647,0,-1,NULL}",
      "{-9223372036854775808,9223372036854775807,0,-1,4294967296}", "{r,j,d,NULL}",
      '{"","' .. weird:gsub('[\\"]', '\\%0') .. '",\xc3\xa9,NULL,"NULL"}', "5", "5", "t", "2", n = 8 }, rows[1])
    -- the same statement again (now prepared): empty arrays, and elements out of range or of
    -- another type, which go as text literals and are refused as the server refuses them
    rows = assert(db:exec_prepared(sql, {}, {}, {}, {}, ""))
    assert.are.same({ "{}", "{}", "{}", "{}", "0", "0", nil, nil, n = 8 }, rows[1])
    local none, msg, code = db:exec_prepared(sql, { 2147483648 }, {}, {}, {}, "")
    assert.is_nil(none)
    assert.are.equal("22003", code)
    assert.is_nil(msg:find("2147483648", 1, true))
    none, msg, code = db:exec_prepared(sql, { 1.5 }, {}, {}, {}, "")
    assert.is_nil(none, msg)
    assert.are.equal("22P02", code)
    assert.are.equal("{12}", assert(db:exec_prepared(sql, { "12" }, {}, {}, {}, ""))[1][1])
    none, msg, code = db:exec_prepared(sql, {}, {}, {}, { "ok", "a\0b" }, "")
    assert.is_nil(none, msg)
    assert.are.equal("22021", code)
    none, msg, code = db:exec_prepared(sql, {}, {}, {}, { "\xff" }, "")
    assert.is_nil(none, msg)
    assert.are.equal("22021", code) -- not UTF-8: refused by the server as the text was
    -- a failed statement leaves it usable, in and after a rolled-back transaction
    assert(db:exec("BEGIN"))
    assert.is_nil((db:exec_prepared("SELECT 1 / $1::int", 0)))
    assert(db:exec("ROLLBACK"))
    assert.are.equal("1", assert(db:exec_prepared("SELECT 1 / $1::int", 1))[1][1])
  end)

  it("sends BEGIN with the next statement (db:begin), whichever call it is", function()
    assert(db:exec("CREATE TEMP TABLE begin_t (a int)"))
    local function count() return db:exec("SELECT count(*) FROM begin_t")[1][1] end
    -- exec: the transaction is open (SAVEPOINT works only inside one), and rolls back
    assert.is_true(db:begin())
    assert(db:exec("INSERT INTO begin_t VALUES ($1)", 1))
    assert(db:exec("SAVEPOINT s"))
    assert(db:exec("ROLLBACK"))
    assert.are.equal("0", count())
    -- exec_prepared, then commit
    db:begin()
    assert.are.equal(2, select(2, assert(db:exec_prepared("INSERT INTO begin_t SELECT unnest($1::int4[])", { 1, 2 }))))
    assert(db:exec("COMMIT"))
    assert.are.equal("2", count())
    -- copy (BEGIN goes alone first)
    db:begin()
    assert.are.equal(1, assert(db:copy("COPY begin_t (a) FROM STDIN", 1, { { 3 } })))
    assert(db:exec("ROLLBACK"))
    assert.are.equal("2", count())
    -- a failing first statement: its own error, and the transaction is the failed one
    db:begin()
    local none, _, code = db:exec_prepared("SELECT 1 / $1::int", 0)
    assert.is_nil(none)
    assert.are.equal("22012", code)
    none, _, code = db:exec("SELECT 1")
    assert.is_nil(none)
    assert.are.equal("25P02", code)
    assert(db:exec("ROLLBACK"))
    -- a lost connection while BEGIN waits in the pipeline
    local pid = db:exec("SELECT pg_backend_pid()")[1][1]
    db:begin()
    local other = connect()
    assert(other:exec("SELECT pg_terminate_backend($1::int)", pid))
    other:close()
    none, _, code = db:exec("INSERT INTO begin_t VALUES (9)")
    assert.is_nil(none)
    assert.are.equal("connection", code)
  end)

  it("sends queued statements (db:queue) ahead of the next one; a failed one is that call's error", function()
    assert(db:exec("CREATE TEMP TABLE queue_t (a int PRIMARY KEY)"))
    local ins = "INSERT INTO queue_t SELECT unnest($1::int4[])"
    local function count() return db:exec("SELECT count(*) FROM queue_t")[1][1] end
    db:begin()
    assert.is_true(db:queue("SAVEPOINT q"))
    assert(db:exec_prepared(ins, { 1, 2 }))
    db:queue("SAVEPOINT q")
    local none, _, code = db:exec_prepared(ins, { 3, 1 }) -- 1 is there: the savepoint undoes 3
    assert.is_nil(none)
    assert.are.equal("23505", code)
    -- prepared for the first time after a failure: the queued ROLLBACK TO goes first, alone
    db:queue("ROLLBACK TO SAVEPOINT q")
    assert(db:exec_prepared("INSERT INTO queue_t SELECT unnest($1::int4[]) ON CONFLICT DO NOTHING", { 4, 1 }))
    assert(db:exec("COMMIT"))
    assert.are.equal("3", count())
    -- a queued statement that fails: the call returns its error, its own statement never runs
    db:begin()
    db:queue("ROLLBACK TO SAVEPOINT nope")
    none, _, code = db:exec_prepared(ins, { 5 })
    assert.is_nil(none)
    assert.are.equal("3B001", code)
    assert(db:exec("ROLLBACK"))
    assert.are.equal("3", count())
    -- before a copy, each alone
    db:begin()
    db:queue("SAVEPOINT c")
    assert.are.equal(1, db:copy("COPY queue_t (a) FROM STDIN", 1, { { 6 } }))
    db:queue("ROLLBACK TO SAVEPOINT c")
    assert(db:exec("COMMIT"))
    assert.are.equal("3", count())
    for _ = 1, 8 do db:queue("SELECT 1") end
    assert.has_error(function() db:queue("SELECT 1") end)
    assert(db:exec("SELECT 1"))
  end)

  it("prepares a statement again after DISCARD ALL or a change of its result type", function()
    local schema = fresh_schema()
    local t = db:quote_ident(schema) .. ".p"
    assert(db:exec("CREATE SCHEMA " .. db:quote_ident(schema)))
    assert(db:exec("CREATE TABLE " .. t .. " (a int)"))
    assert(db:exec("INSERT INTO " .. t .. " VALUES (1)"))
    local sql = "SELECT * FROM " .. t .. " WHERE a = ANY($1::int4[])"
    assert.are.same({ "1", n = 1 }, assert(db:exec_prepared(sql, { 1, 2 }))[1])
    assert(db:exec("DISCARD ALL"))
    assert.are.same({ "1", n = 1 }, assert(db:exec_prepared(sql, { 1 }))[1])
    assert(db:exec("ALTER TABLE " .. t .. " ADD COLUMN b text DEFAULT 'x'"))
    local none, _, code = db:exec_prepared(sql, { 1 })
    if none then assert.are.same({ "1", "x", n = 2 }, none[1]) else assert.are.equal("0A000", code) end
    assert.are.same({ "1", "x", n = 2 }, assert(db:exec_prepared(sql, { 1 }))[1])
  end)

  it("never splices values into SQL", function()
    local evil = "x'); DROP TABLE pg_class; --"
    assert.are.equal(evil, one(db, "SELECT $1::text", evil))
  end)

  it("returns nil, primary message, sqlstate on errors and stays usable", function()
    local rows, msg, code = db:exec("SELECT 1/0")
    assert.is_nil(rows)
    assert.are.equal("division by zero", msg)
    assert.are.equal("22012", code)
    assert.are.equal("1", one(db, "SELECT 1"))
    -- data exceptions never echo the value, even one holding quotes
    rows, msg, code = db:exec("SELECT $1::int", 'se"cr"et')
    assert.is_nil(rows)
    assert.are.equal("22P02", code)
    assert.are.equal('invalid input syntax for type integer: "..."', msg)
  end)

  it("refuses NUL bytes in parameters and COPY values instead of truncating", function()
    local rows, _, code = db:exec("SELECT $1::text", "a\0b")
    assert.is_nil(rows)
    assert.are.equal("22021", code)
    assert(db:exec("CREATE TEMP TABLE nul_t (a text)"))
    local n, msg
    n, msg, code = db:copy("COPY nul_t FROM STDIN", 1, { { "a\0b" } })
    assert.is_nil(n)
    assert.are.equal("22021", code)
    assert.is_nil(msg:find("a\0b", 1, true))
    assert.are.equal("0", one(db, "SELECT count(*) FROM nul_t"))
    assert.are.equal("ok", db:status())
  end)

  it("copies values larger than its 64 KiB buffer exactly", function()
    assert(db:exec("CREATE TEMP TABLE big_t (a text, b text)"))
    local big = string.rep("\\\t\n\r" .. string.rep("z", 1000), 300)
    assert.are.equal(2, db:copy("COPY big_t FROM STDIN", 2, { { big, "x" }, { "y", big } }))
    assert.are.equal("2", one(db, "SELECT count(*) FROM big_t WHERE a = $1 OR b = $1", big))
  end)

  it("copies integers, floats, booleans and escaped text exactly", function()
    assert(db:exec("CREATE TEMP TABLE num_t (i bigint, f float8, b boolean, t text)"))
    local rows = {}
    local ints = { math.mininteger, math.maxinteger, 0, -1, 7, -1234567890123, 2003000 }
    for k, v in ipairs(ints) do rows[k] = { v, k + 0.25, k % 2 == 0, "a\\b\tc\nd\re" .. k } end
    assert.are.equal(#ints, db:copy("COPY num_t FROM STDIN", 4, rows))
    local got = db:exec("SELECT i::text, f::text, b::text, t FROM num_t")
    for k, v in ipairs(ints) do
      assert.are.same({ tostring(v), tostring(k + 0.25), k % 2 == 0 and "true" or "false",
        "a\\b\tc\nd\re" .. k, n = 4 }, got[k])
    end
  end)

  -- the types db:copy takes: each column's type OID, in order
  local function column_types(t)
    local types = {}
    for i, r in ipairs(assert(db:exec("SELECT atttypid::int8 FROM pg_attribute WHERE attrelid = $1::regclass "
      .. "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", t))) do types[i] = math.tointeger(tonumber(r[1])) end
    return types
  end
  local ALL = "(a text, b varchar(8), c char(3), d int2, e int4, f int8, g boolean, h date)"

  it("copies rows in COPY's binary format when given the columns' types: the values text gives", function()
    assert(db:exec("CREATE TEMP TABLE bin_t " .. ALL))
    assert(db:exec("CREATE TEMP TABLE txt_t " .. ALL))
    local rows = {
      { "a\\b\tc\nd\re", "é", "xy", -32768, -2147483648, math.mininteger, true, "0001-01-01" },
      { "", "12345678", "abc", 32767, 2147483647, math.maxinteger, false, "9999-12-31" },
      { n = 8 },
      { "x", "y  ", "z", 0, 0, 0, true, "2024-02-29" },
      { "ü", "1999", "", -1, 2003000, 7, false, "1999-12-31" },
    }
    local types = column_types("bin_t")
    assert.are.equal(#rows, db:copy("COPY bin_t FROM STDIN", 8, rows, types))
    assert.are.equal(#rows, db:copy("COPY txt_t FROM STDIN", 8, rows))
    local all = "SELECT string_agg(t::text, '|' ORDER BY t::text) FROM %s t"
    assert.are.equal(one(db, all:format("txt_t")), one(db, all:format("bin_t")))
    assert.are.equal("1", one(db, "SELECT count(*) FROM bin_t WHERE h = '2024-02-29' AND c = 'z  '"))
    -- the data was binary: the same rows, told a column is int8 where it is int4, are refused
    types[5] = 20
    local n, _, code = db:copy("COPY bin_t FROM STDIN", 8, rows, types)
    assert.is_nil(n)
    assert.is_truthy(code == "22P03" or code == "08P01", code)
    assert.are.equal("ok", db:status())
  end)

  it("copies a batch with a value that has no binary form as text, read and refused as before", function()
    assert(db:exec("CREATE TEMP TABLE fall_t " .. ALL))
    local types = column_types("fall_t")
    assert.are.equal(2, db:copy("COPY fall_t FROM STDIN", 8, {
      { "a", "b", "c", 1, 2, 3, true, "2024-1-2" }, { "d", "e", "f", 4, 5, 6, false, "Jan 3 2024" } }, types))
    assert.are.equal("2024-01-02,2024-01-03", one(db, "SELECT string_agg(h::text, ',' ORDER BY h) FROM fall_t"))
    for _, bad in ipairs({ { 5, 1.5, "22P02" }, { 4, 40000, "22003" }, { 8, "2023-02-29", "22008" },
                           { 2, "123456789", "22001" } }) do
      local r = { "a", "b", "c", 1, 2, 3, true, "2024-01-02" }
      r[bad[1]] = bad[2]
      local n, _, code = db:copy("COPY fall_t FROM STDIN", 8, { r }, types)
      assert.is_nil(n)
      assert.are.equal(bad[3], code)
      local _, _, code2 = db:copy("COPY fall_t FROM STDIN", 8, { r })
      assert.are.equal(code2, code)
    end
    assert.are.equal("2", one(db, "SELECT count(*) FROM fall_t"))
  end)

  it("sends a COPY's guard and what follows it in one message: binary data only for the types read", function()
    assert(db:exec("CREATE TEMP TABLE guard_t " .. ALL))
    assert.are.equal("'a''b'", db:quote_literal("a'b")) -- (how writer.lua puts names in a guard)
    local types = column_types("guard_t")
    local guard = "LOCK TABLE guard_t IN ROW EXCLUSIVE MODE; SELECT atttypid::int8 FROM pg_attribute "
      .. "WHERE attrelid = 'guard_t'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    local r = { "a", "b", "c", 1, 2, 3, true, "2024-01-02" }
    local function in_transaction() return (select(3, db:exec("SAVEPOINT p"))) ~= "25P01" end
    -- the types the data was made for: copied, and COMMIT (after) ran in the same message
    assert(db:exec("BEGIN"))
    assert.are.equal(2, db:copy("COPY guard_t FROM STDIN", 8, { r, r }, types, guard, "COMMIT"))
    assert.is_false(in_transaction())
    assert.are.equal("2", one(db, "SELECT count(*) FROM guard_t"))
    -- other types now: nothing sent, the types read returned, the transaction aborted
    assert(db:exec("ALTER TABLE guard_t ALTER COLUMN e TYPE int8"))
    assert(db:exec("BEGIN"))
    local n, msg, code, now = db:copy("COPY guard_t FROM STDIN", 8, { r }, types, guard, "COMMIT")
    assert.is_nil(n)
    assert.are.equal("types_changed", code)
    assert.matches("column types changed", msg)
    assert.are.equal("25P02", select(3, db:exec("SELECT 1"))) -- aborted
    assert(db:exec("ROLLBACK"))
    assert.are.same(column_types("guard_t"), now)
    assert.are.equal(20, now[5])
    -- a COPY that fails skips what follows it (no COMMIT); its own error is returned
    assert(db:exec("BEGIN"))
    local bad = { "a", "b", "c", 1, 2, 3, true, "2023-02-29" }
    n, msg, code = db:copy("COPY guard_t FROM STDIN", 8, { r, bad }, now, guard, "COMMIT")
    assert.is_nil(n)
    assert.are.equal("22008", code)
    assert.is_string(msg)
    assert.is_true(in_transaction())
    assert(db:exec("ROLLBACK"))
    -- what follows fails: its error is the call's, though the COPY went in
    assert(db:exec("BEGIN"))
    n, msg, code = db:copy("COPY guard_t FROM STDIN", 8, { r }, now, guard, "SELECT 1 / 0")
    assert.is_nil(n)
    assert.are.equal("22012", code)
    assert.matches("division by zero", msg)
    assert(db:exec("ROLLBACK"))
    assert.are.equal("2", one(db, "SELECT count(*) FROM guard_t"))
    assert.are.equal("ok", db:status())
  end)

  it("quotes identifiers and closes twice safely", function()
    assert.are.equal('"we""ird"', db:quote_ident('we"ird'))
    db:close()
    db:close()
    assert.are.equal("bad", db:status())
    assert.has_error(function() db:exec("SELECT 1") end)
  end)

  it("never puts the password in a connection error", function()
    local pw = os.getenv("PGPASSWORD")
    local url = ("postgresql://%s:%s@127.0.0.1:%s/%s"):format(os.getenv("PGUSER"), pw .. "x",
      os.getenv("PGPORT"), os.getenv("PGDATABASE"))
    local c, msg, code = pg.connect(url)
    assert.is_nil(c)
    assert.are.equal("connection", code)
    assert.truthy(msg:find("password authentication failed", 1, true))
    assert.is_nil(msg:find(pw, 1, true))
    c, msg = pg.connect("host=127.0.0.1 port=1 password=" .. pw)
    assert.is_nil(c)
    assert.is_nil(msg:find(pw, 1, true))
    c, msg = pg.connect("password=" .. pw .. " nonsense")
    assert.is_nil(c)
    assert.is_nil(msg:find(pw, 1, true))
  end)

  it("reports a lost connection as code connection", function()
    local pid = one(db, "SELECT pg_backend_pid()")
    local other = connect()
    assert(other:exec("SELECT pg_terminate_backend($1::int)", pid))
    other:close()
    local rows, _, code = db:exec("SELECT 1")
    assert.is_nil(rows)
    assert.are.equal("connection", code)
    assert.are.equal("bad", db:status())
  end)
end)

describe("etlua.sink", function()
  local db
  before_each(function() db = connect() end)
  after_each(function() db:close() end)

  it("creates the target, rejects and ledger tables when absent", function()
    local schema = fresh_schema()
    open(db, schema)
    local cols = db:exec("SELECT column_name, data_type FROM information_schema.columns "
      .. "WHERE table_schema = $1 AND table_name = 'user_logins_rejects' ORDER BY ordinal_position", schema)
    assert.are.same({ "message_id", "reason", "detail", "body", "rejected_at" },
      { cols[1][1], cols[2][1], cols[3][1], cols[4][1], cols[5][1] })
    assert.are.equal(5, #cols)
    assert.are.equal("timestamp with time zone", cols[5][2])
    assert.are.equal("integer", one(db, "SELECT data_type FROM information_schema.columns "
      .. "WHERE table_schema = $1 AND table_name = 'user_logins' AND column_name = 'app_version'", schema))
    assert.truthy(one(db, "SELECT to_regclass($1)", schema .. ".etlua_ledger"))
  end)

  it("creates the tables in the default schema too, and opening again is harmless", function()
    open(db, nil)
    open(db, nil)
    assert.truthy(one(db, "SELECT to_regclass('public.user_logins')"))
    assert.truthy(one(db, "SELECT to_regclass('public.user_logins_rejects')"))
  end)

  it("uses an existing table as it is (varchar(32) app_version)", function()
    local schema = fresh_schema()
    assert(db:exec("CREATE SCHEMA " .. db:quote_ident(schema)))
    assert(db:exec("CREATE TABLE " .. db:quote_ident(schema) .. ".user_logins (user_id varchar(128), "
      .. "device_type varchar(32), masked_ip varchar(256), masked_device_id varchar(256), "
      .. "locale varchar(32), app_version varchar(32), create_date date)"))
    local s = open(db, schema)
    local sum = assert(s:commit({ { id = "m1", rows = { { row("u1", "ios", "2.3.0") } } } }))
    assert.are.equal(1, sum.written)
    assert.are.equal("character varying", one(db, "SELECT data_type FROM information_schema.columns "
      .. "WHERE table_schema = $1 AND table_name = 'user_logins' AND column_name = 'app_version'", schema))
    assert.are.equal("2.3.0", one(db, "SELECT app_version FROM " .. db:quote_ident(schema) .. ".user_logins"))
  end)

  it("writes each batch by the column types the table has at its COPY, though they change between batches", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local t = db:quote_ident(schema) .. ".user_logins"
    local function alter(sql) assert(db:exec("ALTER TABLE " .. t .. " " .. sql)) end
    assert.are.equal(1, assert(s:commit({ { id = "m1", rows = { { row("u1") } } } })).written)
    alter("ALTER COLUMN app_version TYPE bigint")  -- binary as int8 now
    assert.are.equal(1, assert(s:commit({ { id = "m2", rows = { { row("u2", nil, 1 << 40) } } } })).written)
    alter("ALTER COLUMN app_version TYPE text")    -- an integer for text: the batch goes as text
    alter("ALTER COLUMN create_date TYPE text")    -- a date string for text: its bytes
    assert.are.equal(1, assert(s:commit({ { id = "m3", rows = { { row("u3") } } } })).written)
    assert.are.same({ "u1|2003000|2024-01-02", "u2|1099511627776|2024-01-02", "u3|2003000|2024-01-02" },
      h.all(db, "SELECT user_id, app_version, create_date FROM " .. t .. " ORDER BY user_id"))
    -- an integer for a date column is not read as a day count: text, refused as before
    alter("ALTER COLUMN app_version TYPE date USING NULL")
    local sum = assert(s:commit({ { id = "m4", rows = { { row("u4") } } } }))
    assert.are.equal(0, sum.written)
    assert.are.equal(1, sum.refused)
    assert.are.equal("3", one(db, "SELECT count(*) FROM " .. t))
  end)

  it("writes a batch after DISCARD ALL took the statement of its COPY's guard away", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    assert.are.equal(1, assert(s:commit({ { id = "d1", rows = { { row("u1") } } } })).written)
    assert(db:exec("DISCARD ALL")) -- (the ledger's claim statement too)
    assert.are.equal(1, assert(s:commit({ { id = "d2", rows = { { row("u2") } } } })).written)
    assert.are.equal("2", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema) .. ".user_logins"))
  end)

  it("refuses an existing table whose column has another type, and leaves no trace of the check", function()
    local schema = fresh_schema()
    local q = db:quote_ident(schema)
    assert(db:exec("CREATE SCHEMA " .. q))
    assert(db:exec("CREATE TABLE " .. q .. ".user_logins (user_id varchar(128), "
      .. "device_type varchar(32), masked_ip varchar(256), masked_device_id varchar(256), "
      .. "locale varchar(32), app_version date, create_date date)"))
    local s, err, code = sink.open(db, options(schema, { table = "user_logins", schema = schema,
      columns = COLUMNS, create_table = CREATE }))
    assert.is_nil(s)
    assert.are.equal("table_mismatch", code)
    assert.are.equal(("table %s.\"user_logins\": column app_version is date, the script's create_table makes it "
      .. "integer; fix the table (or the script), nothing was received"):format(q), err)
    assert.are.equal("0", one(db, "SELECT count(*) FROM pg_class WHERE relname = 'etlua_table_check'"))
    assert.is_nil(one(db, "SELECT to_regclass($1)", q .. ".etlua_ledger")) -- stopped before making anything
  end)

  it("says so when the script's create_table does not run against a temporary table, for an existing table only",
     function()
    local schema = fresh_schema()
    local q = db:quote_ident(schema)
    local bad = CREATE:gsub("app_version integer", "app_version no_such_type")
    -- no table yet: the check passes, and making the table fails with that statement's error
    local s, err = sink.open(db, options(schema, { table = "user_logins", schema = schema,
      columns = COLUMNS, create_table = bad }))
    assert.is_nil(s)
    assert.matches('type "no_such_type" does not exist', err, 1, true)
    assert.is_nil(err:find("temporary table", 1, true), err)
    -- an existing table: the check says the script's create_table does not run
    assert(db:exec("CREATE SCHEMA IF NOT EXISTS " .. q))
    assert(db:exec(CREATE:format(q .. ".user_logins")))
    s, err = sink.open(db, options(schema, { table = "user_logins", schema = schema,
      columns = COLUMNS, create_table = bad }))
    assert.is_nil(s)
    assert.are.equal(1, err:find("the script's create_table does not run against a temporary table: ", 1, true), err)
    assert.matches('type "no_such_type" does not exist', err, 1, true)
    assert.are.equal("0", one(db, "SELECT count(*) FROM pg_class WHERE relname = 'etlua_table_check'"))
  end)

  it("stops a batch whose every row is refused for the same reason, writing nothing (the breaker)", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local q = db:quote_ident(schema)
    assert(db:exec("ALTER TABLE " .. q .. ".user_logins ADD CHECK (locale <> 'RU')"))
    local items = {}
    for i = 1, 6 do items[i] = { id = "b" .. i, rows = { { row("u" .. i) } } } end
    local sum, err, code = s:commit(items)
    assert.is_nil(sum)
    assert.are.equal("refused_all", code)
    assert.truthy(err:find("Postgres refused every row of a batch of 6 for the same reason (23514 ", 1, true), err)
    assert.are.equal("0", one(db, "SELECT count(*) FROM " .. q .. ".user_logins_rejects"))
    assert.are.equal("0", one(db, "SELECT count(*) FROM " .. q .. ".etlua_ledger"))
    -- one good row among them: the others become db_refused rejects as before
    items[7] = { id = "ok", rows = { { row("fine") } } }
    items[7].rows[1][1][5] = "FR"
    sum = assert(s:commit(items))
    assert.are.same({ written = 1, rejected = 6, dropped = 0, duplicates = 0, refused = 6 }, sum)
    -- fewer rows than the breaker's threshold: rejects as before
    local few = {}
    for i = 1, 4 do few[i] = { id = "f" .. i, rows = { { row("v" .. i) } } } end
    assert.are.same({ written = 0, rejected = 4, dropped = 0, duplicates = 0, refused = 4 }, assert(s:commit(few)))
  end)

  it("stores exact values: NULLs, tabs, newlines, backslashes, quotes, non-ASCII", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local tricky = {
      { "tab\there", "nl\nhere", "cr\rhere", "back\\slash", "q'uo\"te", 1, "2024-02-29" },
      { "\\N", "", nil, "Ünïcödé ✓ 日本", nil, nil, nil },
      { "\\\\\\t", "end\\", "a\r\nb", " lead and trail ", "𝄞", -5, "1999-12-31" },
    }
    local items = {}
    for i, r in ipairs(tricky) do items[i] = { id = "v" .. i, rows = { { r } } } end
    local sum = assert(s:commit(items))
    assert.are.equal(3, sum.written)
    for i, r in ipairs(tricky) do
      local got = db:exec("SELECT user_id, device_type, masked_ip, masked_device_id, locale, "
        .. "app_version, create_date::text FROM " .. db:quote_ident(schema) .. ".user_logins "
        .. "WHERE user_id = $1", r[1])
      assert.are.equal(1, #got)
      for c = 1, 7 do
        local want = r[c] ~= nil and tostring(r[c]) or nil
        assert.are.equal(want, got[1][c], ("row %d column %d"):format(i, c))
      end
    end
    assert.are.equal("0", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema)
      .. ".user_logins WHERE device_type IS NULL"))
    assert.are.equal("1", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema)
      .. ".user_logins WHERE masked_ip IS NULL"))
  end)

  it("lands a message id committed twice once, counting the duplicate", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local first = assert(s:commit({ { id = "dup", rows = { { row("u1") } } },
                                    { id = "other", rows = { { row("u2") } } } }))
    assert.are.same({ written = 2, rejected = 0, dropped = 0, duplicates = 0, refused = 0 }, first)
    local again = assert(s:commit({ { id = "dup", rows = { { row("u1") } } },
                                    { id = "new", rows = { { row("u3") } } } }))
    assert.are.same({ written = 1, rejected = 0, dropped = 0, duplicates = 1, refused = 0 }, again)
    local within = assert(s:commit({ { id = "twice", rows = { { row("u4") } } },
                                     { id = "twice", rows = { { row("u4") } } } }))
    assert.are.same({ written = 1, rejected = 0, dropped = 0, duplicates = 1, refused = 0 }, within)
    -- one id twice with two send times: two entries both go in (the claim's common statement),
    -- and the id still lands once (the claim answers the set of keys, not "all fresh")
    local now_ms = os.time() * 1000
    local sent = assert(s:commit({ { id = "sent", sent_ms = now_ms, rows = { { row("u5") } } },
                                   { id = "sent", sent_ms = now_ms + 5000, rows = { { row("u5") } } },
                                   { id = "sent2", sent_ms = now_ms, rows = { { row("u6") } } } }))
    assert.are.same({ written = 2, rejected = 0, dropped = 0, duplicates = 1, refused = 0 }, sent)
    assert.are.equal("6", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema) .. ".user_logins"))
    assert.are.equal("7", one(db, "SELECT count(*) FROM " .. db:quote_ident(schema) .. ".etlua_ledger"))
  end)

  it("stores rejects with their reason, detail, body and time", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local sum = assert(s:commit({
      { id = "r1", reject = { reason = "invalid_json", detail = "unexpected end", body = "{\"a\":" } },
      { id = "r2", reject = { reason = "not_object", detail = nil, body = "[1]" } },
    }))
    assert.are.same({ written = 0, rejected = 2, dropped = 0, duplicates = 0, refused = 0 }, sum)
    local rows = db:exec("SELECT message_id, reason, detail, body, rejected_at IS NOT NULL FROM "
      .. db:quote_ident(schema) .. ".user_logins_rejects ORDER BY message_id")
    assert.are.same({ "r1", "invalid_json", "unexpected end", "{\"a\":", "t", n = 5 }, rows[1])
    assert.are.same({ "r2", "not_object", nil, "[1]", "t", n = 5 }, rows[2])
  end)

  it("isolates a refused row as a db_refused reject while the rest of the batch lands", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local long_device = string.rep("d", 40)
    local items = {}
    for i = 1, 50 do items[i] = { id = ("id%02d"):format(i), rows = { { row("user" .. i) } } } end
    items[17].rows = { { row("user17", long_device) } }
    items[33].rows = { { row("user33", "ios", "99999999999") } } -- too large for integer
    items[33].stored_body = "{\"masked\":true}"
    items[51] = { id = "rej", reject = { reason = "invalid_ip", detail = "not an address", body = "{}" } }
    local sum = assert(s:commit(items))
    assert.are.same({ written = 48, rejected = 3, dropped = 0, duplicates = 0, refused = 2 }, sum)
    local q = db:quote_ident(schema)
    assert.are.equal("48", one(db, "SELECT count(*) FROM " .. q .. ".user_logins"))
    local rej = db:exec("SELECT message_id, reason, detail, body FROM " .. q
      .. ".user_logins_rejects WHERE reason = 'db_refused' ORDER BY message_id")
    assert.are.equal(2, #rej)
    assert.are.equal("id17", rej[1][1])
    assert.are.equal("value too long for type character varying(32)", rej[1][3])
    assert.is_nil(rej[1][3]:find(long_device, 1, true))
    assert.are.equal("id33", rej[2][1])
    assert.are.equal('value "..." is out of range for type integer', rej[2][3])
    assert.is_nil(rej[2][3]:find("99999999999", 1, true))
    assert.are.equal("{\"masked\":true}", rej[2][4])
    assert.are.equal("db_refused", items[17].reject.reason)
    assert.are.equal("51", one(db, "SELECT count(*) FROM " .. q .. ".etlua_ledger"))
    -- the refused message is done: redelivery is a duplicate, not a second reject
    local again = assert(s:commit({ items[17] }))
    assert.are.same({ written = 0, rejected = 0, dropped = 0, duplicates = 1, refused = 0 }, again)
  end)

  it("isolates a row holding a NUL byte", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local sum = assert(s:commit({ { id = "a", rows = { { row("ok") } } },
                                  { id = "b", rows = { { row("bad\0id") } } } }))
    assert.are.same({ written = 1, rejected = 1, dropped = 0, duplicates = 0, refused = 1 }, sum)
  end)

  it("reports a lost connection without splitting or writing anything", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local other = connect()
    assert(other:exec("SELECT pg_terminate_backend($1::int)", one(db, "SELECT pg_backend_pid()")))
    local sum, _, code = s:commit({ { id = "x1", rows = { { row("u1") } } }, { id = "x2", rows = { { row("u2") } } } })
    assert.is_nil(sum)
    assert.are.equal("connection", code)
    assert.are.equal("0", one(other, "SELECT count(*) FROM " .. other:quote_ident(schema) .. ".etlua_ledger"))
    other:close()
  end)

  it("reports a stopped server as connection, and commits after it is back", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local pgsh = ("env -u LD_PRELOAD %q %%s %q"):format(os.getenv("ETLUA_PG_SH"), os.getenv("ETLUA_PG_DIR"))
    local items = { { id = "p1", rows = { { row("u1") } } }, { id = "p2", rows = { { row("u2") } } } }
    assert(os.execute(pgsh:format("pause")))
    local ok, resumed = pcall(function()
      local sum, _, code = s:commit(items)
      assert.is_nil(sum)
      assert.are.equal("connection", code)
      local c, _, ccode = pg.connect(os.getenv("DATABASE_URL"))
      assert.is_nil(c)
      assert.are.equal("connection", ccode)
    end)
    assert(os.execute(pgsh:format("resume")))
    assert(ok, resumed)
    db:close()
    db = connect()
    s = open(db, schema)
    assert.are.same({ written = 2, rejected = 0, dropped = 0, duplicates = 0, refused = 0 }, assert(s:commit(items)))
  end)

  it("lands an id committed concurrently by several connections once", function()
    local schema = fresh_schema()
    open(db, schema)
    local chunk = ([[
      local pg, sink = require "etlua.pg", require "etlua.sink"
      local db = assert(pg.connect(os.getenv("DATABASE_URL")))
      local s = assert(sink.open(db, { outputs = { { name = "o", index = 1, table = "user_logins", schema = %q,
        columns = { "user_id" }, on_conflict = "error", create_table = "CREATE TABLE %%s (user_id varchar(128))" } },
        rejects_table = "user_logins_rejects",
        schema = %q, queue = "q" }))
      local items = {}
      for i = 1, 200 do items[i] = { id = "c" .. ((i * 7919) %% 200), rows = { { { "u" .. i } } } } end
      local sum, err = s:commit(items)
      print(sum and ("written=" .. sum.written .. " dup=" .. sum.duplicates) or ("error " .. tostring(err)))
    ]]):format(schema, schema)
    local procs = {}
    for i = 1, 4 do procs[i] = spawn(chunk) end
    local written, dups = 0, 0
    for i = 1, 4 do
      local out = finish(procs[i])
      local w, d = out:match("written=(%d+) dup=(%d+)")
      assert(w, out)
      written, dups = written + tonumber(w), dups + tonumber(d)
    end
    assert.are.equal(200, written)
    assert.are.equal(600, dups)
    local q = db:quote_ident(schema)
    assert.are.equal("200", one(db, "SELECT count(*) FROM " .. q .. ".user_logins"))
    assert.are.equal("200", one(db, "SELECT count(*) FROM " .. q .. ".etlua_ledger"))
  end)

  it("waits for a consumer holding the same id, then skips it", function()
    local schema = fresh_schema()
    local s = open(db, schema)
    local holder = connect()
    local q = holder:quote_ident(schema)
    local held = assert(require("etlua.ledger").open(holder, { schema = schema, queue = "q" }))
    assert(holder:exec("BEGIN"))
    local fresh = held:claim(holder, { { id = "held", row = {} } })
    assert(fresh == true or fresh.held)
    local p = spawn(([[
      local pg, sink = require "etlua.pg", require "etlua.sink"
      local db = assert(pg.connect(os.getenv("DATABASE_URL")))
      local s = assert(sink.open(db, { outputs = { { name = "o", index = 1, table = "user_logins", schema = %q,
        columns = { "user_id" }, on_conflict = "error", create_table = "CREATE TABLE %%s (user_id varchar(128))" } },
        rejects_table = "user_logins_rejects",
        schema = %q, queue = "q" }))
      local sum, err = s:commit({ { id = "held", rows = { { { "second" } } } },
                                  { id = "free", rows = { { { "f" } } } } })
      print(sum and ("written=" .. sum.written .. " dup=" .. sum.duplicates) or ("error " .. tostring(err)))
    ]]):format(schema, schema))
    -- let the other process block on the ledger row, then commit ours
    local waited = 0
    while waited < 50 and one(holder, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == "0" do
      os.execute("sleep 0.1")
      waited = waited + 1
    end
    assert(holder:exec("INSERT INTO " .. q .. ".user_logins (user_id) VALUES ('first')"))
    assert(holder:exec("COMMIT"))
    assert.are.equal("written=1 dup=1\n", finish(p))
    assert.are.equal("first", one(db, "SELECT user_id FROM " .. q .. ".user_logins WHERE user_id <> 'f'"))
    holder:close()
    assert(s)
  end)

  it("creates the tables from several processes at once without failing", function()
    local schema = fresh_schema()
    local chunk = ([[
      local pg, sink = require "etlua.pg", require "etlua.sink"
      local db = assert(pg.connect(os.getenv("DATABASE_URL")))
      local s, err = sink.open(db, { outputs = { { name = "o", index = 1, table = "user_logins", schema = %q,
        columns = { "user_id" }, on_conflict = "error",
        create_table = "CREATE TABLE IF NOT EXISTS %%s (user_id text)" } }, rejects_table = "user_logins_rejects",
        schema = %q, queue = "q" })
      print(s and "ok" or ("error " .. tostring(err)))
    ]]):format(schema, schema)
    local procs = {}
    for i = 1, 6 do procs[i] = spawn(chunk) end
    for i = 1, 6 do assert.are.equal("ok\n", finish(procs[i])) end
  end)

  it("keeps the password out of every error it returns", function()
    local pw = os.getenv("PGPASSWORD")
    local schema = fresh_schema()
    local s = open(db, schema)
    local sum = assert(s:commit({ { id = "p1", rows = { { row(pw, string.rep("x", 40)) } } },
      { id = "p2", rows = { { row("u", "ios", pw) } } } }))
    assert.are.equal(2, sum.refused)
    local _, emsg, code = db:exec("SELECT $1::int", pw)
    assert.are.equal("22P02", code)
    assert.are.equal('invalid input syntax for type integer: "..."', emsg)
    local detail = one(db, "SELECT string_agg(detail, ',') FROM " .. db:quote_ident(schema)
      .. ".user_logins_rejects")
    assert.is_nil(detail:find(pw, 1, true))
  end)
end)

describe("etlua.pg wait hook (db:on_wait)", function()
  local db, other
  before_each(function()
    db, other = connect(), connect()
    assert(db:exec("CREATE TABLE IF NOT EXISTS wait_t (a text)"))
  end)
  after_each(function()
    other:close()
    db:close()
  end)

  -- Holds an ACCESS EXCLUSIVE lock on wait_t from a separate process for `seconds`.
  local function hold_lock(seconds)
    local p = spawn(([[
      local pg = require "etlua.pg"
      local db = assert(pg.connect(os.getenv("DATABASE_URL")))
      assert(db:exec("BEGIN"))
      assert(db:exec("LOCK TABLE wait_t IN ACCESS EXCLUSIVE MODE"))
      io.stdout:write("locked\n") io.stdout:flush()
      assert(db:exec("SELECT pg_sleep(%s)"))
      assert(db:exec("COMMIT"))
    ]]):format(seconds))
    for _ = 1, 200 do
      local r = other:exec("SELECT count(*) FROM pg_locks WHERE relation = 'wait_t'::regclass AND granted")
      if r and r[1][1] ~= "0" then return p end
      os.execute("sleep 0.05")
    end
    error("the lock was never taken: " .. finish(p))
  end

  it("calls the hook every interval while an INSERT waits on a lock, then returns as usual", function()
    local p = hold_lock(1.5)
    local calls = 0
    db:on_wait(0.2, function() calls = calls + 1 end)
    local rows, n = db:exec("INSERT INTO wait_t VALUES ($1)", "x")
    finish(p)
    assert.truthy(rows, n)
    assert.are.equal(1, n)
    assert.is_true(calls >= 4, "hook called " .. calls .. " times")
    db:on_wait(nil)
    calls = 0
    assert(db:exec("SELECT pg_sleep(0.5)"))
    assert.are.equal(0, calls)
  end)

  it("calls the hook while a COPY waits on a lock; an error in the hook never breaks the call", function()
    local p = hold_lock(1.2)
    local calls = 0
    db:on_wait(0.2, function()
      calls = calls + 1
      if calls == 2 then error("heartbeat failed") end
    end)
    local n, err = db:copy("COPY wait_t FROM STDIN", 1, { { "a" }, { "b" } })
    finish(p)
    assert.are.equal(2, n, err)
    assert.is_true(calls >= 3, "hook called " .. calls .. " times")
    assert.truthy(db:wait_error():find("heartbeat failed", 1, true))
    assert.is_nil(db:wait_error())
    assert.are.equal("3", one(other, "SELECT count(*) + 1 FROM wait_t WHERE a IN ('a', 'b')"))
  end)

  it("calls a hook that has more to do (returns true) again at once, through the next waits", function()
    -- interval 10 s: every call but the first comes from `true`, never from the clock
    local calls = 0
    db:on_wait(10, function()
      calls = calls + 1
      return calls < 5
    end, 0)
    local rows = assert(db:exec("SELECT pg_sleep(0.2), 7"))
    assert.are.equal("7", rows[1][2])
    assert.are.equal(5, calls)        -- called until it had no more to do, then not before 10 s
    db:on_wait(10, function() calls = calls + 1; return true end, 0)
    assert(db:exec("SELECT pg_sleep(0.02)"))
    local before = calls
    rows = assert(db:exec("SELECT pg_sleep(0.05), 8")) -- `more` holds into the next call's wait
    assert.are.equal("8", rows[1][2])
    assert.is_true(calls - before > 2, "hook called " .. (calls - before) .. " times")
    -- a COPY (its start, data and end) and a transaction's statements, with a hook that always
    -- has more to do: every wait runs it and every answer still arrives whole
    before = calls
    assert(db:exec("BEGIN"))
    local n, err = db:copy("COPY wait_t FROM STDIN", 1, { { "more-a" }, { "more-b" } })
    assert.are.equal(2, n, err)
    assert(db:exec("SELECT pg_sleep(0.02)"))
    assert(db:exec("COMMIT"))
    assert.is_true(calls - before > 3, "hook called " .. (calls - before) .. " times")
    assert.is_nil(db:wait_error())
    db:on_wait(nil)
    before = calls
    assert(db:exec("SELECT pg_sleep(0.05)"))
    assert.are.equal(before, calls)   -- removed: `more` went with it
    assert.are.equal("2", one(other, "SELECT count(*) FROM wait_t WHERE a LIKE 'more-%'"))
  end)

  it("fires the first call after first_s, and refuses the connection's use inside its own hook", function()
    local inner
    db:on_wait(10, function() inner = select(2, pcall(db.exec, db, "SELECT 1")) end, 0)
    assert(db:exec("SELECT pg_sleep(0.1)"))
    assert.truthy(tostring(inner):find("wait hook", 1, true))
    db:on_wait(nil)
    assert.are.equal("1", one(db, "SELECT 1"))
  end)
end)
