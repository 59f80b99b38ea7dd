-- spec/contract_spec.lua: the script contract at its boundaries, with small scripts of its own
-- (SCRIPTING.md): the description made at start-up, transform's results (rows per output,
-- fan-out, drop), typed values, ctx.message and ctx.masked, the SNS envelope.
local testing = require "etlua.testing"
local script = require "etlua.script"
local codec = require "etlua.codec"
local mask = require "etlua.mask"

local function noop() return true end

-- A two-output script whose transform is fn.
local function two(fn, extra)
  local s = {
    outputs = {
      { name = "a", table = "ta", columns = { "k", "v" }, create_table = "x", key = { "k" },
        on_conflict = "update" },
      { name = "b", table = "tb", columns = { "k", "n" }, create_table = "x" },
    },
    validate = noop, transform = fn,
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return testing.new(s)
end

-- A one-output script with a single column v holding whatever fn(rec, ctx) returns.
local function one(fn, extra)
  local s = { table = "t", columns = { "v" }, create_table = "x", validate = noop,
              transform = function(rec, ctx) return { v = fn(rec, ctx) } end }
  for k, v in pairs(extra or {}) do s[k] = v end
  return testing.new(s)
end

local function err_of(f)
  local ok, e = pcall(f)
  assert.is_false(ok)
  return type(e) == "table" and e.user_error or tostring(e)
end

describe("the description made at start-up", function()
  it("turns the one-output form into one output, rejects table <table>_rejects", function()
    local d = testing.load("scripts/login_etl.lua").desc
    assert.are.equal(1, #d.outputs)
    assert.are.equal("user_logins", d.outputs[1].table)
    assert.are.equal("user_logins", d.outputs[1].name)
    assert.are.equal("error", d.outputs[1].on_conflict)
    assert.are.equal("user_logins_rejects", d.rejects_table)
    assert.is_false(d.multi)
    assert.are.same({ { path = "ip", canonical = "ip" }, { path = "device_id" } }, d.pii)
  end)

  it("keeps outputs in order, defaults the name to the table and honours rejects_table", function()
    local d = script.describe({ outputs = { { table = "x1", columns = { "a" }, create_table = "" },
                                            { name = "n2", table = "x2", columns = { "b" }, create_table = "" } },
                                rejects_table = "problems", validate = noop, transform = noop }, "s")
    assert.are.same({ "x1", "n2" }, { d.outputs[1].name, d.outputs[2].name })
    assert.are.equal("problems", d.rejects_table)
    assert.is_true(d.multi)
  end)

  it("refuses a script that breaks the contract in one line naming the field", function()
    local base = { table = "t", columns = { "a", "b" }, create_table = "", validate = noop, transform = noop }
    local function with(over)
      local s = {}
      for k, v in pairs(base) do s[k] = v end
      for k, v in pairs(over) do s[k] = v end
      return function() script.describe(s, "s.lua") end
    end
    local cases = {
      { { outputs = { { table = "u", columns = { "a" }, create_table = "" } } }, "either 'outputs' or" },
      { { on_conflict = "update" }, "on_conflict = \"update\" needs a 'key'" },
      { { on_conflict = "merge", key = { "a" } }, "'on_conflict' must be" },
      { { key = { "c" } }, "key column 'c' is not in 'columns'" },
      { { key = { "a" }, on_conflict = "ignore", order_by = "b" }, "'order_by' needs on_conflict = \"update\"" },
      { { key = { "a" }, on_conflict = "update", order_by = "z" }, "'order_by' must name one of its columns" },
      { { key = { "a" }, on_conflict = "update", order_by = "a" }, "'order_by' must not be a key column" },
      { { columns = { "a", "a" } }, "column 'a' is listed twice" },
      { { columns = {} }, "needs 'columns'" },
      { { envelope = "sqs" }, "'envelope' must be \"sns\"" },
      { { pii = { { path = "a", canonical = "upper" } } }, "canonical must be" },
      { { pii = { 5 } }, "pii[1]: must be a path" },
      { { rejects_table = "" }, "'rejects_table' must be a table name" },
      { { transform = "x" }, "has no function 'transform'" },
    }
    for _, c in ipairs(cases) do
      local e = err_of(with(c[1]))
      assert.truthy(e:find(c[2], 1, true), e)
      assert.truthy(e:find("^script s%.lua: "), e)
      assert.is_nil(e:find("\n"), e)
    end
    local dup = err_of(function() script.describe({ outputs = {
      { name = "x", table = "t1", columns = { "a" }, create_table = "" },
      { name = "x", table = "t2", columns = { "a" }, create_table = "" } },
      validate = noop, transform = noop }, "s") end)
    assert.truthy(dup:find("two outputs are named 'x'", 1, true))
  end)
end)

describe("a reload's description", function()
  it("may change hooks and pii, not tables, columns, keys or conflict rules", function()
    local function d(over)
      local s = { outputs = { { name = "a", table = "ta", columns = { "k", "v" }, create_table = "x",
                                key = { "k" }, on_conflict = "update", order_by = "v" } },
                  validate = noop, transform = noop }
      for k, v in pairs(over or {}) do s[k] = v end
      return script.describe(s, "s")
    end
    local base = d()
    assert.is_true(script.same_tables(base, d({ pii = { "v" }, transform = function() return false end })))
    local changed = {
      d({ rejects_table = "other" }),
      d({ outputs = { { name = "a", table = "tb", columns = { "k", "v" }, create_table = "x",
                        key = { "k" }, on_conflict = "update", order_by = "v" } } }),
      d({ outputs = { { name = "a", table = "ta", columns = { "k", "v" }, create_table = "x",
                        key = { "k" }, on_conflict = "update" } } }),
      d({ outputs = { { name = "a", table = "ta", columns = { "v", "k" }, create_table = "x",
                        key = { "k" }, on_conflict = "update", order_by = "v" } } }),
    }
    for i, c in ipairs(changed) do assert.is_false(script.same_tables(base, c), i) end
  end)
end)

describe("transform's result", function()
  it("fans out: a row, a list of 0, 1 or many rows, or nothing per output", function()
    local p = two(function(rec)
      local list = {}
      for i = 1, rec.n do list[i] = { k = "k", n = i } end
      return { a = { k = "x", v = "one row" }, b = list }
    end)
    for _, n in ipairs({ 0, 1, 7 }) do
      local out = p:run({ n = n })
      assert.are.same({ { k = "x", v = "one row" } }, out.rows.a)
      assert.are.equal(n, #out.rows.b)
    end
    local out = two(function() return {} end):run({})
    assert.are.same({ a = {}, b = {} }, out.rows)
    out = two(function() return { b = {} } end):run({})
    assert.are.same({ a = {}, b = {} }, out.rows)
  end)

  it("drops the message when transform returns false", function()
    local out = two(function() return false end):run({})
    assert.is_true(out.drop)
    assert.is_nil(out.rows)
    assert.is_nil(out.reject)
    assert.is_true(one(function() return 1 end, { transform = function() return false end }):run({}).drop)
  end)

  it("rejects as script_error what is not rows: nil, a string, an unknown output or column", function()
    local cases = {
      { function() return nil end, "transform returned nil" },
      { function() return "row" end, "transform returned string" },
      { function() return { c = {} } end, "rows for 'c', which is not an output" },
      { function() return { a = { k = "x", w = 1 } } end, "column 'w', which output 'a' does not have" },
      { function() return { b = { { k = "x" }, "row" } } end, "row 2 for output 'b' is a string" },
      { function() return { a = 5 } end, "returned number for output 'a'" },
      { function() return { b = { [1] = { k = "x" }, [3] = { k = "y" } } } end, "not a sequence" },
      { function() return { a = { v = "no key" } } end, "key column 'k' of output 'a' is NULL" },
    }
    for _, c in ipairs(cases) do
      local out = two(c[1]):run({})
      assert.are.equal("script_error", out.reject and out.reject.reason, c[2])
      assert.truthy(out.reject.detail:find(c[2], 1, true), out.reject.detail)
    end
  end)
end)

describe("values as Postgres reads them", function()
  local function written(v) return one(function() return v end):run({}).row.v end

  it("writes integers as digits, across the whole 64-bit range", function()
    assert.are.equal(0, written(0))
    assert.are.equal(math.maxinteger, written(math.maxinteger))
    assert.are.equal(math.mininteger, written(math.mininteger))
    assert.are.equal("integer", math.type(written(9007199254740993)))
    assert.are.equal(9007199254740993, written(9007199254740993))
  end)

  it("writes floats as the shortest text that reads back the same, integral ones without a fraction", function()
    assert.are.equal("2", written(2.0))
    assert.are.equal("-3", written(-3.0))
    assert.are.equal("-0", written(-0.0))
    assert.are.equal("0.1", written(0.1))
    assert.are.equal("2.5", written(2.5))
    assert.are.equal("1e+300", written(1e300))
    assert.are.equal("9007199254740992", written(2.0 ^ 53))
    assert.are.equal("-9223372036854775808", written(-2.0 ^ 63))
    assert.are.equal("9.223372036854776e+18", written(2.0 ^ 63))
    assert.are.equal("0.30000000000000004", written(0.1 + 0.2))
    for _, x in ipairs({ 0.1, 1 / 3, 123456.789, 5e-324, 1.7976931348623157e308 }) do
      assert.are.equal(x, tonumber(written(x)))
    end
  end)

  it("writes booleans as true/false, tables as JSON text, nil and JSON null as NULL", function()
    assert.are.equal("true", written(true))
    assert.are.equal("false", written(false))
    assert.is_nil(written(nil))
    assert.is_nil(written(codec.null))
    assert.are.equal('{"a":1}', written({ a = 1 }))
    assert.are.equal('[1,"x",true]', written({ 1, "x", true }))
    assert.are.equal('"tab\\t"', codec.encode("tab\t"))
  end)

  it("keeps an empty array [] and an empty object {} apart, nested too", function()
    local p = one(function(rec) return rec.x end)
    assert.are.equal("[]", p:run('{"x":[]}').row.v)
    assert.are.equal("{}", p:run('{"x":{}}').row.v)
    local nested = p:run('{"x":{"a":[],"b":{},"c":[[]]}}').row.v   -- keys in any order
    for _, part in ipairs({ '"a":[]', '"b":{}', '"c":[[]]' }) do
      assert.truthy(nested:find(part, 1, true), nested)
    end
  end)

  it("decodes JSON integers to exact Lua integers at the ends of the 64-bit range", function()
    local p = one(function(rec) return rec.x end)
    for _, text in ipairs({ "9223372036854775807", "-9223372036854775808", "9007199254740993",
                            "-9007199254740993", "0", "-0", "2" }) do
      local v = p:run('{"x":' .. text .. '}').row.v
      assert.are.equal("integer", math.type(v), text)
      assert.are.equal(text == "-0" and "0" or text, tostring(v))
    end
    -- one past either end is a float: written as the shortest text of that float
    assert.are.equal("9.223372036854776e+18", p:run('{"x":9223372036854775808}').row.v)
    assert.are.equal("-9223372036854775808", p:run('{"x":-9223372036854775809}').row.v)
    assert.are.equal("2", p:run('{"x":2.0}').row.v)
    assert.are.equal("0.1", p:run('{"x":0.1}').row.v)
  end)

  it("refuses every value it cannot write, naming the column and the type", function()
    local cases = {
      { function() end, "a function" }, { coroutine.create(function() end), "a thread" },
      { mask.new(testing.KEY), "a userdata" }, { 0 / 0, "not finite" },
      { math.huge, "not finite" }, { -math.huge, "not finite" },
      { { f = print }, "a table that is not JSON" },
    }
    for _, c in ipairs(cases) do
      local out = one(function() return c[1] end):run({})
      assert.are.equal("script_error", out.reject and out.reject.reason, c[2])
      assert.truthy(out.reject.detail:find("column 'v' of output 't' cannot be written", 1, true), out.reject.detail)
      assert.truthy(out.reject.detail:find(c[2], 1, true), out.reject.detail)
    end
  end)
end)

describe("ctx.message and ctx.masked", function()
  it("gives the script the message's fields, never its receipt or body", function()
    local seen
    local p = one(function(_, ctx) seen = ctx.message; return 1 end)
    p:run({}, { id = "m", receipt = "secret-receipt", body = "{}", sent_ms = 1, received_ms = 2,
                receive_count = 3, group_id = "g", sequence_number = "18", attributes = { k = "v" } })
    assert.are.same({ id = "m", sent_ms = 1, received_ms = 2, receive_count = 3, group_id = "g",
                      sequence_number = "18", attributes = { k = "v" } }, seen)
  end)

  it("masks every declared path once, canonical form first; [] paths give a list", function()
    local seen
    local p = one(function(_, ctx) seen = ctx.masked; return 1 end, {
      pii = { { path = "user.email", canonical = "lower" }, { path = "contacts[].phone", canonical = "trim" },
              { path = "ip", canonical = "ip" }, "missing", "n" } })
    local out = p:run({ user = { email = "A@B.C" }, contacts = { { phone = " 1 " }, { phone = "2" }, {} },
                        ip = "2001:DB8::1", n = 5 })
    assert.truthy(out.rows)
    assert.are.equal(p:mask("a@b.c"), seen["user.email"])
    assert.are.same({ p:mask("1"), p:mask("2") }, seen["contacts[].phone"])
    assert.are.equal(p:mask("2001:db8::1"), seen["ip"])
    assert.is_nil(seen["missing"])
    assert.are.equal(p:mask(codec.encode(5)), seen["n"])
  end)

  it("stores a reject body with every declared path masked, nested and in arrays", function()
    local p = one(function() return 1 end, {
      pii = { "user.email", "contacts[].phone" },
      validate = function() return false, "nope" end })
    local out = p:run({ user = { email = "raw@mail.example" }, contacts = { { phone = "555-0100" } } })
    assert.are.equal("nope", out.reject.reason)
    assert.is_nil(out.reject.body:find("raw@mail.example", 1, true))
    assert.is_nil(out.reject.body:find("555-0100", 1, true))
    assert.truthy(out.reject.body:find(p:mask("555-0100"), 1, true))
  end)
end)

describe("envelope = \"sns\"", function()
  local function note(message, over)
    local t = { Type = "Notification", MessageId = "sns-1", TopicArn = "arn:t", Subject = "s",
                Message = message, Timestamp = "2024-02-29T23:59:59.5Z" }
    for k, v in pairs(over or {}) do t[k] = v end
    return codec.encode(t)
  end

  it("unwraps a notification: record from Message, ledger key and time from SNS, ctx.message.sns", function()
    local seen
    local p = one(function(rec, ctx) seen = ctx.message.sns; return rec.x end, { envelope = "sns" })
    local out = p:run(note('{"x":"inner"}'), { id = "sqs-1", sent_ms = 5 })
    assert.are.equal("inner", out.row.v)
    assert.are.equal("sns-1", out.key)
    assert.are.equal(1709251199500, out.sent_ms)
    assert.are.same({ message_id = "sns-1", topic_arn = "arn:t", subject = "s",
                      timestamp = "2024-02-29T23:59:59.5Z" }, seen)
  end)

  it("decodes a body that is not an envelope as it is", function()
    local p = one(function(rec) return rec.x end, { envelope = "sns" })
    for _, body in ipairs({ '{"x":"plain"}', note(nil, { x = "plain" }), note(7, { x = "plain" }),
                            note('{"x":1}', { Type = "SubscriptionConfirmation", x = "plain" }) }) do
      local out = p:run(body)
      assert.are.equal("plain", out.row and out.row.v, body)
      assert.is_nil(out.key)
    end
  end)

  it("is off unless the script asks for it", function()
    local out = one(function(rec) return rec.Type end):run(note('{"x":1}'))
    assert.are.equal("Notification", out.row.v)
    assert.is_nil(out.key)
  end)

  it("rejects a Message that is not a JSON object; the SNS key still applies", function()
    local p = one(function() return 1 end, { envelope = "sns" })
    local out = p:run(note("[]"))
    assert.are.equal("not_object", out.reject.reason)
    assert.are.equal("sns-1", out.key)
    assert.are.equal("invalid_json", p:run(note("{")).reject.reason)
  end)
end)

describe("--dry-run output", function()
  local dryrun = require "etlua.dryrun"
  local function sink_for(desc)
    local buf = {}
    local out = { write = function(_, s) buf[#buf + 1] = s end, flush = function() end }
    return dryrun.new(out, desc), function() return table.concat(buf) end
  end

  it("prints one JSON line per row: the row itself for one output, {output: row} for several", function()
    local one_out = testing.load("scripts/login_etl.lua").desc
    local d, text = sink_for(one_out)
    local sum = d:commit({ { rows = { { { "u", nil, "m", nil, "RU", 2003000, "2024-01-02" } } } },
                           { drop = true }, { reject = { reason = "x" } } })
    assert.are.same({ written = 1, rejected = 1, dropped = 1, duplicates = 0, refused = 0 }, sum)
    assert.are.equal('{"user_id":"u","device_type":null,"masked_ip":"m","masked_device_id":null,'
      .. '"locale":"RU","app_version":2003000,"create_date":"2024-01-02"}\n', text())

    local multi = testing.load("scripts/purchases_etl.lua").desc
    d, text = sink_for(multi)
    d:commit({ { rows = { {}, { { "o", 1, "s", 2, 5, nil, "t" }, { "o", 2, "s", 1, 5, "{}", "t" } } } } })
    local lines = {}
    for l in text():gmatch("[^\n]+") do lines[#lines + 1] = codec.decode(l) end
    assert.are.equal(2, #lines)
    assert.are.equal(2, lines[2].purchase_items.line)
    assert.are.equal("{}", lines[2].purchase_items.options)
  end)
end)
