-- spec/ledger_spec.lua: the parts of etlua.ledger that need no Postgres: how long an entry lives,
-- the partition width, the queue's recorded name, the entry rule (fixed vectors) and the claim's
-- entries on its two paths over a fake connection. (The ledger in Postgres:
-- tests/integration/ledger_spec.lua.)
local ledger = require "etlua.ledger"

local function logger()
  local lines = {}
  return { warn = function(_, msg) lines[#lines + 1] = msg end, lines = lines }
end

describe("etlua.ledger retention", function()
  it("is the queue's retention plus the margin, or the --input default", function()
    assert.are.equal(345600 + 3600, ledger.retention(345600, nil))
    assert.are.equal(60 + 3600, ledger.retention(60, nil))
    assert.are.equal(ledger.INPUT_RETENTION, ledger.retention(nil, nil))
    assert.are.equal(4 * 86400 + 3600, ledger.INPUT_RETENTION)
  end)

  it("takes ETLUA_LEDGER_RETENTION as it is, warning on one line when shorter than the queue's", function()
    local log = logger()
    assert.are.equal(60, ledger.retention(345600, 60, log))
    assert.are.equal(1, #log.lines)
    assert.truthy(log.lines[1]:find("ETLUA_LEDGER_RETENTION=60", 1, true))
    assert.is_nil(log.lines[1]:find("\n", 1, true))
    assert.are.equal(400000, ledger.retention(345600, 400000, log))
    assert.are.equal(90, ledger.retention(nil, 90, log))
    assert.are.equal(1, #log.lines)
  end)

  it("picks a partition width of at most an eighth of the retention (60 s at least, a day at most)", function()
    assert.are.equal(43200, ledger.width_for(4 * 86400 + 3600))
    assert.are.equal(86400, ledger.width_for(14 * 86400 + 3600))
    assert.are.equal(60, ledger.width_for(60))
    assert.are.equal(3600, ledger.width_for(8 * 3600))
  end)
end)

describe("etlua.ledger names and keys", function()
  it("records a queue URL by its path, and every --input run as input", function()
    assert.are.equal("123456789012/login-queue",
                     ledger.queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/login-queue"))
    assert.are.equal("000000000000/login-queue", ledger.queue_name("http://localhost:4566/000000000000/login-queue"))
    assert.are.equal("input", ledger.queue_name("input:/data/x.jsonl"))
    assert.are.equal("input", ledger.queue_name("input:-"))
  end)
end)

-- The entry rule as the hex digest states it (the ledger's first form): seq and digest must stay
-- these numbers, or a reload after an upgrade would land every line again.
local mask = require "etlua.mask"
local pg = require "etlua.pg"
local function reference(queue, key, ms)
  local file, line = key:match("^input:(%x+):(%d+)$")
  line = line and math.tointeger(tonumber(line))
  local hex = mask.sha256_hex((file and "input" or queue) .. "\0" .. key)
  local digest = (tonumber(hex:sub(1, 8), 16) << 32) | tonumber(hex:sub(9, 16), 16)
  local bits = tonumber(hex:sub(17, 24), 16)
  if ms then return (ms << 21) | (bits & 0x1FFFFF), digest end
  line = line or math.tointeger(tonumber(key:match("^stdin:%d+:(%d+)$")))
  if line and line <= 0x7FFFFFFF then return line, digest end
  return bits & 0x7FFFFFFF, digest
end

-- A ledger over a fake connection: ledger_maintain's DDL left out (l.width, the horizon and the
-- server's time set as it would set them), every exec recorded, the claim answered as Postgres
-- would (the positions of entries already present).
local NOW_S = 90000000
local function fake_ledger(queue)
  local db = { calls = {}, stored = {} }
  function db:quote_ident(n) return '"' .. n .. '"' end
  function db:exec(sql, ...)
    local args = table.pack(...)
    for i = 1, args.n do -- arrays made in C (etlua.ledger_entries), read back as Lua arrays
      if type(args[i]) == "userdata" then args[i], args.made_in_c = pg.array_values(args[i]), true end
    end
    self.calls[#self.calls + 1] = { sql = sql, args = args }
    if sql:find("RETURNING stamp", 1, true) then return { { tostring(NOW_S - 10) } } end
    if sql:find("WITH t AS (INSERT", 1, true) then
      local S, Q, D, n = args[1], args[2], args[3], args[5]
      assert(#S == n and #Q == n and #D == n)
      local taken, seen = {}, {}
      for j = 1, n do
        local e = S[j] .. ":" .. Q[j] .. ":" .. D[j]
        if self.stored[e] then taken[#taken + 1] = { tostring(j) }; self.taken_any = true end
        seen[e] = true
      end
      for e in pairs(seen) do self.stored[e] = true end
      return taken
    end
    if sql:find("^INSERT INTO .* %(sent, seq, digest, outcome%)") then -- the plain claim: all or 23505
      local S, Q, D = args[1], args[2], args[3]
      local seen = {}
      for j = 1, #S do
        local e = S[j] .. ":" .. Q[j] .. ":" .. D[j]
        if self.stored[e] or seen[e] then return nil, "duplicate key value violates unique constraint", "23505" end
        seen[e] = true
      end
      for e in pairs(seen) do self.stored[e] = true end
      return {}, #S
    end
    return {}
  end
  db.exec_prepared = db.exec -- the claim runs as a prepared statement
  function db:queue(sql) self.calls[#self.calls + 1] = { sql = sql, args = { n = 0 } } return true end
  local saved = package.loaded["etlua.ledger_maintain"]
  package.loaded["etlua.ledger_maintain"] = {
    create = function(l, width)
      l.width, l.horizon, l.stamp = width, l.retention, NOW_S - 5
      l.server_now, l.server_at = NOW_S, require("etlua.host").mono()
      return true
    end,
    ensure_in_transaction = function(l, _, k) l.known[k] = true; return true end,
  }
  local l = assert(ledger.open(db, { queue = queue, retention = 3600, partition_seconds = 300 }))
  package.loaded["etlua.ledger_maintain"] = saved
  return l, db
end

-- The entries of the last claim, in the order it sent them, and whether C made them.
local function inserted(db)
  for i = #db.calls, 1, -1 do
    local c = db.calls[i]
    if c.sql:find("(sent, seq, digest, outcome)", 1, true) then -- either form of the claim
      local out = {}
      for j = 1, #c.args[1] do out[j] = { c.args[1][j], c.args[2][j], c.args[3][j], c.args[4][j] } end
      return out, c.args.made_in_c == true
    end
  end
end

-- What a claim's answer says of items: the set of the fresh keys (true: every item's key, each
-- once, as the common batch's claim says it), and whether no two items share a key.
local function fresh_set(fresh, items)
  local set, distinct = {}, true
  for _, item in ipairs(items) do
    local key = item.key or item.id
    if set[key] then distinct = false end
    set[key] = true
  end
  if fresh == true then return set, distinct end
  return fresh, distinct
end

local function assert_sorted(entries)
  for j = 2, #entries do
    local a, b = entries[j - 1], entries[j]
    local ok = a[1] < b[1] or (a[1] == b[1] and (a[2] < b[2] or (a[2] == b[2] and a[3] <= b[3])))
    assert.is_true(ok, ("entries %d and %d out of (sent, seq, digest) order"):format(j - 1, j))
  end
end

local function shuffle(list, seed)
  local x = seed
  for i = #list, 2, -1 do
    x = (x * 1103515245 + 12345) % 2147483648
    local j = x % i + 1
    list[i], list[j] = list[j], list[i]
  end
  return list
end

describe("etlua.ledger entries", function()
  local QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/spec"

  it("gives the digest as integers from C, the numbers of its hex text", function()
    for _, s in ipairs({ "", "abc", ("x"):rep(300) }) do
      local hex = mask.sha256_hex(s)
      local d, bits = mask.sha256_int64(s)
      assert.are.equal((tonumber(hex:sub(1, 8), 16) << 32) | tonumber(hex:sub(9, 16), 16), d)
      assert.are.equal(tonumber(hex:sub(17, 24), 16), bits)
      assert.are.same({ mask.sha256_int64(s .. "\0" .. "key") }, { mask.sha256_int64(s, "key") })
    end
    assert.are.equal(-5010229573455851542, (mask.sha256_int64("abc"))) -- ba7816bf8f01cfea: bit 63 set
  end)

  it("keeps each key's seq and digest as the hex rule gives them", function()
    local l = fake_ledger(QUEUE)
    local file = ("ab"):rep(16)
    local cases = {
      { "input:" .. file .. ":1" }, { "input:" .. file .. ":2147483647" }, { "input:" .. file .. ":2147483648" },
      { "input:" .. file .. ":99999999999999999999999" }, { "input:" .. file .. ":12x" }, { "input:7:abcdef" },
      { "stdin:1700000000000:42" }, { "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 0 },
      { "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 999 }, { "sns-message-id" }, { "input:" .. file .. ":3", 17 },
    }
    for _, c in ipairs(cases) do
      local sent_ms = c[2] and (1800000000000 + c[2])
      local seq, digest = l:entry_key(c[1], sent_ms)
      assert.are.same({ reference(l.queue, c[1], c[2]) }, { seq, digest })
    end
  end)

  -- The rule as fixed numbers, computed apart from etlua (Python's hashlib: digest = the first 8
  -- bytes of SHA-256(prefix NUL key) big-endian signed, bits = the next 4; prefix "input" for an
  -- --input line, else the queue's recorded name), so a wrong rule fails even where the C and
  -- the Lua paths agree. Each: key, sent_ms, the message's line and file (nil: the key is read),
  -- the file the entry names, seq, digest, sent (nil: no send time, the entry takes a stamp).
  local F = ("ab"):rep(16)
  local VECTORS = {
    { "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", 1800000000123, nil, nil, nil, 259578515, 7611477256084599112,
      95932800 }, -- an SQS id with its send time: ms << 21 | 21 bits of digest
    { "2b0a5f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", nil, nil, nil, nil, 1048107667, 7611477256084599112,
      nil }, -- the same without one: 31 bits of digest
    { "sns-message-id", -1, nil, nil, nil, 2095846648, -6240791878316580688, -1704067201 }, -- before 1970: floored
    { "sns-message-id", 4000000000000123, nil, nil, nil, 258741496, -6240791878316580688,
      2147483647 }, -- past 2092: sent clamped
    { "input:" .. F .. ":7", nil, nil, nil, F, 7, 9029640729838444019, nil }, -- an --input line: its number
    { "input:" .. F .. ":0007", nil, nil, nil, F, 7, -2425714953273410468, nil }, -- leading zeros
    { "input:" .. F .. ":2147483647", nil, nil, nil, F, 2147483647, 3221571135470432443, nil }, -- the last in int4
    { "input:" .. F .. ":2147483648", nil, nil, nil, F, 796227860, 4898256726542509347, nil }, -- past int4: bits
    { "input:" .. F .. ":99999999999999999999999", nil, nil, nil, F, 856192416, 5681404089318763195, nil },
    { "input:" .. F .. ":7", 1800000000999, nil, nil, F, 2097079548, 9029640729838444019,
      95932800 }, -- a line with a send time
    { "input:AB12:5", nil, nil, nil, "AB12", 5, -5443861302113052958, nil }, -- upper-case hex
    { "stdin:1700000000000:42", nil, nil, nil, nil, 42, 954662843587499161, nil }, -- a stdin line
    { "stdin:x:42", nil, nil, nil, nil, 947740834, 6455430763154506615, nil }, -- not a stdin line
    { "input:7:abcdef", nil, nil, nil, nil, 811689838, -7682160149848136094, nil }, -- not an --input line
    { "input::5", nil, nil, nil, nil, 173980458, -6185470051936553716, nil }, -- no file
    { "input:" .. F .. ":12x", nil, nil, nil, nil, 2144150039, 8144127663386876035, nil }, -- not all digits
    { "x-1", nil, 3, F, F, 3, 8788167028500068275, nil }, -- the message's line and file, not the key's
    { "stdin:9:1", nil, 5, nil, nil, 5, -4514120948783370011, nil }, -- the message's line (stdin: no file)
  }

  it("makes each key's entry as the fixed vectors say", function()
    local entry = require("etlua.ledger_entries").entry
    local l = fake_ledger(QUEUE)
    assert.are.equal("123456789012/spec", l.queue)
    assert.are.equal(1704067200, ledger.EPOCH) -- 2024-01-01T00:00:00Z
    for i, v in ipairs(VECTORS) do
      local key, sent_ms, line, file = v[1], v[2], v[3], v[4]
      local msg = line and { id = key, input_line = line, input_file = file } or nil
      local got = table.pack(entry(l.queue, key, sent_ms, msg))
      assert.are.same({ v[6], v[7], v[8], v[5], n = 4 }, got, "vector " .. i .. ": " .. key)
      if not line then
        assert.are.same({ v[6], v[7], v[8], v[5] }, { l:entry_key(key, sent_ms) }, "vector " .. i)
      end
    end
    -- misuse raises
    assert.has_error(function() entry(l.queue, {}) end)
    assert.has_error(function() entry(l.queue, "k", 1.5) end)
    assert.has_error(function() entry(l.queue, "k", nil, "x") end)
    assert.has_error(function() entry(l.queue, "k", nil, { id = "k", input_line = "3" }) end)
    assert.has_error(function() entry(l.queue, "k", nil, { id = "k", input_line = 3, input_file = 1 }) end)
    assert.has_error(function()
      entry(l.queue, "k", nil, setmetatable({}, { __index = { id = "k", input_line = 3 } }))
    end)
    -- a message whose id is not the key, or without a line, says nothing: the key is read
    assert.are.same({ entry(l.queue, "input:" .. F .. ":7") },
      { entry(l.queue, "input:" .. F .. ":7", nil, { id = "other", input_line = 9, input_file = "ff" }) })
    assert.are.same({ entry(l.queue, "input:" .. F .. ":7") },
      { entry(l.queue, "input:" .. F .. ":7", nil, { id = "input:" .. F .. ":7" }) })
  end)

  it("claims the fixed vectors' entries on both paths (C for the common batch, else the Lua loop)", function()
    -- the vectors as items (a message carrying a line and file as etlua.source makes one, else
    -- the key alone); sent without a send time: the stamps the fake ledger gives (a file's, the
    -- queue's); every partition known. The whole batch takes the Lua loop (keys to read, an
    -- expired item: no entry); its common items alone are made in C.
    local function vector_item(v)
      local item = { id = v[1], sent_ms = v[2], row = {} }
      if v[3] then item.message = { id = v[1], input_line = v[3], input_file = v[4] } end
      return item
    end
    local function common(v)
      local plain = not v[1]:find("^i") and (v[2] or not v[1]:find("^stdin:"))
      return (v[3] or plain) and v[2] ~= -1
    end
    for _, lua_path in ipairs({ false, true }) do
      for _, only_common in ipairs({ false, true }) do
        local l, db = fake_ledger(QUEUE)
        l.lua_entries = lua_path
        local items, want = {}, {}
        for _, v in ipairs(VECTORS) do
          if common(v) or not only_common then
            items[#items + 1] = vector_item(v)
            local sent = v[8] or (v[5] and NOW_S - 10) or (NOW_S - 5)
            l.known[l:slot(sent)] = true
            if not l:expired(l:slot(sent)) then want[#want + 1] = table.concat({ sent, v[6], v[7], "r" }, ":") end
          end
        end
        assert.are.equal(only_common and 5 or #VECTORS - 1, #want)
        assert(l:claim(db, items))
        local entries, made_in_c = inserted(db)
        local got = {}
        for j, e in ipairs(entries) do got[j] = table.concat(e, ":") end
        table.sort(want)
        table.sort(got)
        local what = (lua_path and "the Lua loop" or "C") .. (only_common and ", common items" or "")
        assert.are.same(want, got, what)
        assert.are.equal(only_common and not lua_path, made_in_c, what)
      end
    end
  end)

  it("claims in (sent, seq, digest) order, each entry as its key gives it, whatever the batch's order", function()
    local file = ("cd"):rep(16)
    -- n items made by item(i), in that order
    local function build(n, item)
      local t = {}
      for i = 1, n do t[i] = item(i) end
      return t
    end
    local batches = {
      -- SQS: send times a few seconds apart, shuffled
      function()
        return shuffle(build(200, function(i)
          return { id = "m-" .. i, sent_ms = 1.8e12 + (i * 7919) % 5000, row = {} }
        end), 1)
      end,
      -- the same key twice in a batch
      function()
        local t = build(50, function(i)
          return { id = "w-" .. i, sent_ms = 1.8e12 + (i * 7919) % 5000, reject = {} }
        end)
        t[51] = { id = "w-3", sent_ms = t[3].sent_ms, reject = {} }
        return shuffle(t, 2)
      end,
      -- send times ~5 years apart
      function()
        return shuffle(build(50, function(i)
          return { id = "y-" .. i, sent_ms = 1.8e12 + (i % 7) * 3e10, row = {} }
        end), 5)
      end,
      -- --input lines in order (their messages carrying file and line, as etlua.source makes
      -- them, or not), then backwards, with a drop and a reject
      function()
        local t = build(200, function(i)
          local item = { id = "input:" .. file .. ":" .. i, row = {} }
          if i % 3 > 0 then item.message = { id = item.id, input_file = file, input_line = i } end
          return item
        end)
        t[5].drop, t[5].row, t[6].reject = true, nil, {}
        return t
      end,
      function()
        return build(200, function(i) return { id = "input:" .. file .. ":" .. (1000 - i), row = {} } end)
      end,
      -- stdin lines and SNS keys mixed
      function()
        return shuffle(build(60, function(i)
          return { id = "sqs-" .. i, key = (i % 2 == 0) and ("stdin:1:" .. i) or ("sns-" .. i),
                   sent_ms = (i % 3 == 0) and (1.8e12 + i) or nil, row = {} }
        end), 3)
      end,
      -- stdin lines with their messages; messages whose id is not the key (an envelope's) ignored
      function()
        local t = build(30, function(i)
          return { id = "stdin:9:" .. i, row = {}, message = { id = "stdin:9:" .. i, input_line = i } }
        end)
        for i = 31, 60 do
          t[i] = { id = "q-" .. i, key = "input:" .. file .. ":" .. i, row = {},
                   message = { id = "q-" .. i, input_file = ("00"):rep(16), input_line = 1 } }
        end
        return shuffle(t, 6)
      end,
      -- equal (sent, seq), digests apart: the lines of two files (one stamp here), two stdin runs
      function()
        local t = build(40, function(i)
          return { id = "input:" .. (i % 2 == 0 and file or ("ef"):rep(16)) .. ":" .. (i // 2), row = {} }
        end)
        for i = 41, 80 do t[i] = { id = "stdin:" .. (i % 2) .. ":" .. (i // 2), row = {} } end
        return shuffle(t, 4)
      end,
    }
    for b, make in ipairs(batches) do
      local l, db = fake_ledger(QUEUE)
      local items = make()
      local fresh = l:claim(db, items)
      local got = assert(inserted(db), "batch " .. b .. ": nothing inserted")
      assert.are.equal(#items, #got, "batch " .. b)
      assert_sorted(got)
      -- the same entries as the items give, one each
      local want = {}
      for _, item in ipairs(items) do
        local key = item.key or item.id
        local ms = item.sent_ms and item.sent_ms % 1000
        local s = item.sent_ms and (item.sent_ms // 1000 - ledger.EPOCH)
          or (key:find("^input:") and NOW_S - 10 or l.stamp)
        local q, d = reference(l.queue, key, ms)
        local o = item.drop and "d" or (item.reject and "j" or "r")
        local e = table.concat({ math.tointeger(s), q, d, o }, ":")
        want[e] = (want[e] or 0) + 1
      end
      for _, e in ipairs(got) do
        local k = table.concat(e, ":")
        assert.is_truthy(want[k], "batch " .. b .. ": unexpected entry " .. k)
        want[k] = want[k] - 1
      end
      local set, distinct = fresh_set(fresh, items)
      if fresh == true then assert.is_true(distinct, "batch " .. b .. ": true with a key twice") end
      for _, item in ipairs(items) do assert.is_true(set[item.key or item.id]) end
      -- again: every entry taken, nothing fresh
      local again = l:claim(db, make())
      assert.are.same({}, again)
    end
  end)

  it("answers only the keys none of whose entries was taken already", function()
    local l, db = fake_ledger(QUEUE)
    local now_ms = (NOW_S + ledger.EPOCH) * 1000
    local first = {}
    for i = 1, 10 do first[i] = { id = "k-" .. i, sent_ms = now_ms + i, row = {} } end
    l:claim(db, first)
    local second = {}
    for i = 1, 20 do second[i] = { id = "k-" .. i, sent_ms = now_ms + i, row = {} } end
    second[21] = { id = "k-3", sent_ms = now_ms + 5000, row = {} }   -- k-3 again, another entry
    second[22] = { id = "k-4", sent_ms = now_ms - 2 * 3600 * 1000, row = {} } -- k-4 expired
    local fresh = l:claim(db, shuffle(second, 7))
    local want = { ["k-3"] = true, ["k-4"] = true }
    for i = 11, 20 do want["k-" .. i] = true end
    assert.are.same(want, fresh)
  end)

  it("takes an item whose partition expired as fresh without an entry", function()
    local l, db = fake_ledger(QUEUE)
    local now_ms = (NOW_S + ledger.EPOCH) * 1000
    local fresh = l:claim(db, { { id = "old", sent_ms = now_ms - 2 * 3600 * 1000, row = {} },
                                { id = "new", sent_ms = now_ms, row = {} } })
    assert.are.same({ old = true, new = true }, fresh)
    assert.are.equal(1, #inserted(db))
  end)

  -- etlua.ledger_entries.build makes the common batch's entries in C; ledger.lua's Lua loop
  -- takes every other batch. Both make each entry by the one rule in C (entries.entry: the
  -- vectors above hold it); what this compares is the batch-level work of the two paths (which
  -- items, stamps, partitions, expired items, the order, the fresh set). Every batch below is
  -- claimed both ways (l.lua_entries = true: the Lua loop alone), and the statements must get
  -- the same arrays in the same order, and the same keys come back fresh.
  it("makes in C exactly the entries the Lua loop makes, and leaves the other batches to it", function()
    local file, file2 = ("9f"):rep(16), ("0e"):rep(16)
    local now_ms = (NOW_S + ledger.EPOCH) * 1000
    local function build(n, item)
      local t = {}
      for i = 1, n do t[i] = item(i) end
      return t
    end
    local function line(f, i, extra)
      local id = "input:" .. f .. ":" .. i
      local item = { id = id, key = id, row = {}, message = { id = id, input_file = f, input_line = i } }
      for k, v in pairs(extra or {}) do item[k] = v end
      return item
    end
    local common = {
      -- SQS: integer send times, shuffled, outcomes mixed, a key twice
      sqs = function()
        local t = build(200, function(i)
          local item = { id = ("%08x-aaaa-4bbb-8ccc-%012x"):format(i, i * 7919), sent_ms = now_ms - (i * 7919) % 90000 }
          if i % 7 == 0 then item.drop = true elseif i % 5 == 0 then item.reject = {} else item.rows = {} end
          item.key, item.message = item.id, { id = item.id, sent_ms = item.sent_ms }
          return item
        end)
        t[201] = { id = t[9].id, key = t[9].key, sent_ms = t[9].sent_ms, rows = {}, message = t[9].message }
        t[202] = { id = "late", sent_ms = 4000000000000000, rows = {} } -- past 2092: sent clamped
        return shuffle(t, 11)
      end,
      -- --input lines in order, and backwards, a drop and a reject; lines of two files
      input = function()
        local t = build(200, function(i) return line(file, i) end)
        t[3].drop, t[3].row, t[4].reject = true, nil, {}
        return t
      end,
      backwards = function() return build(200, function(i) return line(file, 1000 - i) end) end,
      two_files = function()
        return shuffle(build(100, function(i) return line(i % 3 == 0 and file2 or file, i) end), 12)
      end,
      -- stdin lines with their messages (no file: the queue's stamp, line as seq); SNS keys
      -- (the key is not the message's id) with the envelope's send time; lines with a send time
      stdin = function()
        return shuffle(build(120, function(i)
          local id = "stdin:1700000000000:" .. i
          if i % 3 == 0 then
            return { id = "sqs-" .. i, key = "sns-" .. i, sent_ms = now_ms + i, row = {},
                     message = { id = "sqs-" .. i } }
          elseif i % 3 == 1 then
            return { id = id, key = id, row = {}, message = { id = id, input_line = i } }
          end
          return line(file, i, { sent_ms = now_ms - i })
        end), 13)
      end,
      -- equal (sent, seq), digests apart: line i of two stdin runs; plain SQS ids without a send
      -- time (the queue's stamp, 31 bits of digest as seq); send times far apart (clamped)
      -- one key twice, with two entries (two send times; under the queue's digest and under an
      -- --input file's): the claim answers the set, so the sink lands the key once
      twice = function()
        local t = build(20, function(i) return { id = "t-" .. i, sent_ms = now_ms + i, row = {} } end)
        t[21] = { id = "t-3", sent_ms = now_ms + 5000, row = {} }
        return shuffle(t, 15)
      end,
      twice_prefixes = function()
        return { { id = "x-1", key = "x-1", row = {}, message = { id = "x-1", input_file = file, input_line = 3 } },
                 { id = "x-1", key = "x-1", sent_ms = now_ms, row = {}, message = { id = "x-1" } },
                 { id = "x-2", key = "x-2", sent_ms = now_ms, row = {}, message = { id = "x-2" } } }
      end,
      ties = function()
        local t = build(60, function(i)
          local id = "stdin:" .. (i % 2) .. ":" .. (i // 2)
          return { id = id, key = id, row = {}, message = { id = id, input_line = i // 2 } }
        end)
        for i = 61, 80 do
          t[i] = { id = "plain-" .. i, key = "plain-" .. i, row = {}, message = { id = "plain-" .. i } }
        end
        return shuffle(t, 14)
      end,
    }
    local to_lua = {
      float_time = function()
        return { { id = "f-1", sent_ms = now_ms + 0.5, row = {} }, { id = "f-2", sent_ms = now_ms, row = {} } }
      end,
      input_key = function() return { { id = "input:" .. file .. ":5", row = {} }, line(file, 6) } end,
      stdin_key = function() return { { id = "stdin:7:8", row = {} }, line(file, 9) } end,
      expired = function()
        return { { id = "old", sent_ms = now_ms - 2 * 3600 * 1000, row = {} }, line(file, 10) }
      end,
      far = function() return { { id = "far", sent_ms = now_ms + 86400 * 1000, row = {} }, line(file, 11) } end,
      envelope_line = function() -- an --input line's key under an envelope whose message is another
        return { { id = "q-1", key = "input:" .. file .. ":12", row = {},
                   message = { id = "q-1", input_file = file2, input_line = 1 } } }
      end,
    }
    local all_fresh = { input = true, backwards = true, two_files = true, ties = true }
    local function claim_both(name, make, want_c)
      local ref, ref_db = fake_ledger(QUEUE)
      ref.lua_entries = true
      local ref_fresh = assert(ref:claim(ref_db, make()))
      local want = assert(inserted(ref_db), name .. ": nothing inserted")
      local l, db = fake_ledger(QUEUE)
      for k in pairs(ref.known) do l.known[k] = true end -- the partitions the reference made
      l.known[l:slot((now_ms + 86400 * 1000) // 1000 - ledger.EPOCH)] = nil -- "far": one to make
      local items = make()
      local fresh = assert(l:claim(db, items))
      local got, made_in_c = inserted(db)
      assert.are.same(want, got, name)
      assert.is_true(ref_fresh ~= true, name .. ": the Lua rule answers a set")
      local set, distinct = fresh_set(fresh, items)
      assert.are.same(ref_fresh, set, name)
      -- true only when C made the entries, none was taken and no key is there twice; and then
      -- for the batches of one kind of digest (a mixed one answers the set: checked more cheaply)
      if fresh == true then assert.is_true(want_c and distinct and not ref_db.taken_any, name) end
      assert.are.equal(all_fresh[name] == true, fresh == true, name)
      assert.are.equal(want_c, made_in_c, name .. (want_c and ": not made in C" or ": made in C"))
      -- again: every entry taken (what is fresh now is what expired), both ways
      local again = assert(ref:claim(ref_db, make()))
      assert.are.same(again, assert(l:claim(db, make())), name)
      l.lua_entries = true
      assert.are.same(again, assert(l:claim(db, make())), name)
    end
    for name, make in pairs(common) do claim_both(name, make, true) end
    for name, make in pairs(to_lua) do claim_both(name, make, false) end
  end)
  it("claims the entries l:prepare made ahead for these very items, once, without the connection", function()
    local l, db = fake_ledger(QUEUE)
    local now_ms = (NOW_S + ledger.EPOCH) * 1000
    local items = {}
    for i = 1, 50 do items[i] = { id = "p-" .. i, sent_ms = now_ms - i * 1000, row = {} } end
    for _, item in ipairs(items) do l.known[l:slot(item.sent_ms // 1000 - ledger.EPOCH)] = true end
    local function entries_of(list)
      local ref, ref_db = fake_ledger(QUEUE)
      ref.lua_entries = true
      assert(ref:claim(ref_db, list))
      return inserted(ref_db)
    end
    local want = entries_of(items)
    local calls = #db.calls
    assert.is_true(l:prepare(items))
    assert.are.equal(calls, #db.calls) -- (the wait hook may not use the connection)
    -- made ahead: an item changed since is claimed as it was then (the runner changes none)
    items[1].sent_ms = now_ms - 7
    assert.are.equal(true, l:claim(db, items))
    assert.are.same(want, (inserted(db)))
    -- once: the same items claimed again are made again, as they are now
    l:claim(db, items)
    assert.are.same(entries_of(items), (inserted(db)))
    -- another batch (a split half, a reprocessed one) is made again, not given the ahead ones
    local other = {}
    for i = 1, 50 do other[i] = { id = "q-" .. i, sent_ms = now_ms - i * 1000, row = {} } end
    assert.is_true(l:prepare(other))
    local half = table.move(other, 1, 25, 1, {})
    l:claim(db, half)
    assert.are.same(entries_of(half), (inserted(db)))
    -- an --input line whose file's stamp is not remembered: not made ahead (reading it is a
    -- statement)
    local file = ("ab"):rep(16)
    local id = "input:" .. file .. ":1"
    calls = #db.calls
    local line = { id = id, key = id, row = {}, message = { id = id, input_file = file, input_line = 1 } }
    assert.is_false(l:prepare({ line }))
    assert.are.equal(calls, #db.calls)
  end)
end)
