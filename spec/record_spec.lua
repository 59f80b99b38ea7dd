-- spec/record_spec.lua: etlua.record — decoding, reject bodies without raw pii, analysts' rules
-- and rule files. Real etlua.mask, the default script.
local H = require "spec.helper"

local function no_raw(s, ...)
  for _, raw in ipairs({...}) do
    assert.is_nil(s:find(raw, 1, true), "raw value " .. raw .. " leaked into: " .. s:sub(1, 300))
  end
end

local function is_clean_text(s)
  return utf8.len(s) ~= nil and not s:find("\0", 1, true)
end

describe("decoding", function()
  it("rejects bodies that are not JSON as invalid_json", function()
    for _, body in ipairs({"hello world", "", "   ", "{", '{"user_id": "abc"', "{'a':1}",
                           '{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}', '{"a":0x10}',
                           '{"a":01}', '{"a":1} x', "\239\187\191{}", '{"a":"\\ud800"}',
                           '{"a":"\\udc00"}', '{"a":"\\ud800x"}', '{"a":"\\x"}'}) do
      local r = H.reject(H.run(body))
      assert.are.equal("invalid_json", r.reason, body)
      assert.is_true(is_clean_text(r.body))
    end
  end)

  it("rejects JSON that is not an object as not_object", function()
    for _, body in ipairs({"[]", "[1,2,3]", '  [{"user_id":"x"}]', '"just a string"', "12",
                           "1.5", "null", "true", "false"}) do
      assert.are.equal("not_object", H.reject(H.run(body)).reason, body)
    end
  end)

  it("tells {} from []", function()
    assert.are.equal("invalid_user_id", H.reject(H.run("{}")).reason)
    assert.are.equal("invalid_user_id", H.reject(H.run(" \n\t{ } ")).reason)
    assert.are.equal("not_object", H.reject(H.run("[]")).reason)
  end)

  it("accepts an object after leading whitespace", function()
    assert.are.equal("accepted", H.reason(" \r\n\t" .. H.body({})))
  end)

  it("rejects 10000 nested arrays or objects cleanly", function()
    local deep = ("["):rep(10000) .. ("]"):rep(10000)
    assert.are.equal("invalid_json", H.reject(H.run(deep)).reason)
    local deep_obj = ('{"a":'):rep(10000) .. "1" .. ("}"):rep(10000)
    assert.are.equal("invalid_json", H.reject(H.run(deep_obj)).reason)
    local in_field = H.body({}):sub(1, -2) .. ',"x":' .. ("["):rep(10000) .. ("]"):rep(10000) .. "}"
    assert.are.equal("invalid_json", H.reject(H.run(in_field)).reason)
    -- moderate nesting in an unknown field is fine
    local ok = H.body({}):sub(1, -2) .. ',"x":' .. ("["):rep(50) .. ("]"):rep(50) .. "}"
    assert.are.equal("accepted", H.reason(ok))
  end)

  it("handles a 200 KB body", function()
    local big = ("x"):rep(200 * 1024)
    assert.are.equal("accepted", H.reason({padding = big}))
    local r = H.reject(H.run({user_id = big}))
    assert.are.equal("invalid_user_id", r.reason)
    assert.is_true(#r.body > 200 * 1024)
    assert.are.equal("invalid_json", H.reject(H.run('{"a":"' .. big)).reason)
  end)

  it("takes the last of duplicate keys", function()
    local body = '{"user_id":"first","user_id":"second"}'
    assert.are.equal("second", H.row(H.run(body)).user_id)
  end)

  it("raises on misuse only", function()
    local p = H.processor()
    assert.has_error(function() p:process(nil, H.META) end)
    assert.has_error(function() p:process({}, H.META) end)
    -- meta is optional
    assert.truthy(p:process(H.body({})).row)
  end)

  it("checks the script's shape once, at new()", function()
    local s = H.load_script()
    assert.has_error(function() H.record.new(s, {}) end)            -- no masker
    assert.has_error(function() H.record.new({columns = {}}, {masker = H.hasher}) end)
    local bad = H.load_script(); bad.transform = nil
    assert.has_error(function() H.record.new(bad, {masker = H.hasher}) end)
    assert.has_error(function() H.processor({rules = {{name = "x"}}}) end)
  end)

  it("rejects with script_error when a hook raises, so one message cannot stall the queue", function()
    local s = H.load_script()
    s.transform = function() error("boom") end
    local r = H.reject(H.processor({script = s}):process(H.body({}), H.META))
    assert.are.equal("script_error", r.reason)
    assert.truthy(r.detail:find("boom", 1, true))
    s = H.load_script()
    s.validate = function() return false end
    assert.are.equal("script_error", H.reject(H.processor({script = s}):process(H.body({}), H.META)).reason)
    s = H.load_script()
    s.transform = function() return "not a table" end
    assert.are.equal("script_error", H.reject(H.processor({script = s}):process(H.body({}), H.META)).reason)
  end)

  it("builds rows in the script's column order, nil for NULL", function()
    local out = H.run({locale = H.null})
    assert.are.equal(H.script.columns[1], "user_id")
    assert.are.equal("424cdd21-063a-43a7-b91b-7ca1a833afae", out.row[1])
    assert.is_nil(out.row[H.COL.locale])
    assert.are.equal(2003000, out.row[H.COL.app_version])
  end)

  it("gives the script ctx.mask, ctx.canonical_ip and ctx.message", function()
    local s = H.load_script()
    local seen
    s.columns = {"a"}
    s.transform = function(rec, ctx)
      seen = {ctx.mask("x"), ctx.canonical_ip("2001:DB8::1"), ctx.message}
      return {a = rec.user_id}
    end
    local meta = {id = "m-9", sent_ms = 1, received_ms = 2}
    local out = H.processor({script = s}):process(H.body({}), meta)
    assert.are.same({"424cdd21-063a-43a7-b91b-7ca1a833afae"}, out.row)
    assert.are.equal(H.hex("x"), seen[1])
    assert.are.equal("2001:db8::1", seen[2])
    assert.are.same(meta, seen[3])  -- a view of the message (never its receipt)
  end)

  it("gives ctx.message every field of an SQS message but its receipt and body, a new table each", function()
    local s = H.load_script()
    local seen = {}
    s.columns = {"a"}
    s.transform = function(_, ctx) seen[#seen + 1] = ctx.message; return {a = "x"} end
    local p = H.processor({script = s})
    local full = {id = "m-1", sent_ms = 1, received_ms = 2, receive_count = 3, group_id = "g",
                  sequence_number = "7", attributes = {k = "v"}}
    local metas = {full, {id = "m-2", received_ms = 2, attributes = {}}, {id = "m-3", receive_count = 1},
                   {id = "m-4", group_id = "g"}, {id = "m-5", sequence_number = "1"}}
    for _, meta in ipairs(metas) do
      local m = {receipt = "secret-receipt", body = H.body({})}
      for k, v in pairs(meta) do m[k] = v end
      p:process(m.body, m)
      p:item(m)
    end
    for i, meta in ipairs(metas) do
      assert.are.same(meta, seen[2 * i - 1])
      assert.are.same(meta, seen[2 * i])
      assert.are_not.equal(seen[2 * i - 1], seen[2 * i])
    end
  end)
end)

-- p:item(m): the runner's form of process(m.body, m): the same outcome, made the sink's item in
-- one table (id, message, and the ledger key and time: the envelope's, else the message's own)
describe("p:item", function()
  local codec = require "etlua.codec"
  local function same_but_item(p, m)
    local want, item = p:process(m.body, m), p:item(m)
    for k, v in pairs(want) do
      if k ~= "key" and k ~= "sent_ms" then assert.are.same(v, item[k], k) end
    end
    assert.are.equal(m.id, item.id)
    assert.are.equal(m, item.message)
    return want, item
  end

  it("is process(m.body, m) with id, message, key and sent_ms of the message", function()
    local p = H.processor()
    for _, body in ipairs({ H.body({}), H.body({ user_id = "" }), "not json", "[]" }) do
      local m = { id = "m-7", sent_ms = 11, received_ms = 12, body = body, receipt = "r" }
      local want, item = same_but_item(p, m)
      assert.is_nil(want.key)
      assert.are.equal("m-7", item.key)
      assert.are.equal(11, item.sent_ms)
    end
  end)

  it("is the message itself for rows without an envelope key: row, key and message set on it", function()
    local p = H.processor()
    local m = { id = "m-9", received_ms = 12, body = H.body({}), input_file = "f", input_line = 3 }
    local item = p:item(m)
    assert.are.equal(m, item)
    assert.are.equal(m, item.message)
    assert.are.equal("m-9", item.key)
    assert.is_table(item.row)
    assert.are.same({ "body", "id", "input_file", "input_line", "key", "masks", "message", "received_ms", "row" },
                    (function() local k = {} for n in pairs(item) do k[#k + 1] = n end table.sort(k) return k end)())
    -- a reject or a drop is a table of its own (the message keeps its fields)
    local r = { id = "m-10", body = "not json" }
    assert.are_not.equal(r, p:item(r))
    assert.is_nil(r.key)
  end)

  it("p:item_plain is p:item for a message with none of the SQS fields (an --input line's)", function()
    local s = H.load_script()
    local seen = {}
    s.columns = {"a"}
    s.transform = function(rec, ctx)
      seen[#seen + 1] = ctx.message
      if rec.drop then return false end
      return {a = "x"}
    end
    local p = H.processor({script = s})
    for _, body in ipairs({ H.body({}), H.body({ drop = true }), "not json", "[]" }) do
      local function line()
        return { id = "input:f:3", body = body, received_ms = 12, input_file = "f", input_line = 3 }
      end
      local a, b = line(), line()
      local want, item = p:item(a), p:item_plain(b)
      assert.are.equal(want == a, item == b)
      want.message, item.message = nil, nil -- (a, b themselves, or the one each item holds)
      assert.are.same(want, item)
    end
    assert.are.same({ id = "input:f:3", received_ms = 12 }, seen[1])
    assert.are.same(seen[1], seen[2])
    assert.are_not.equal(seen[1], seen[2])
  end)

  it("drops as process does", function()
    local s = H.load_script()
    s.transform = function() return false end
    local _, item = same_but_item(H.processor({ script = s }), { id = "m-8", body = H.body({}) })
    assert.is_true(item.drop)
    assert.are.equal("m-8", item.key)
  end)

  it("keeps the envelope's key and time (none: nil, not the message's)", function()
    local s = H.load_script()
    s.envelope = "sns"
    local p = H.processor({ script = s })
    local function note(message, stamp)
      return codec.encode({ Type = "Notification", MessageId = "sns-1", TopicArn = "arn:t",
                            Message = message, Timestamp = stamp })
    end
    for _, body in ipairs({ note(H.body({}), "2024-02-29T23:59:59.5Z"), note(H.body({})), note("[]") }) do
      local m = { id = "sqs-1", sent_ms = 5, body = body }
      local want, item = same_but_item(p, m)
      assert.are.equal("sns-1", want.key)
      assert.are.equal("sns-1", item.key)
      assert.are.equal(want.sent_ms, item.sent_ms)
    end
  end)

  it("is nil and the hook when a stop signal cut it short", function()
    local budget = require "etlua.budget"
    local call = budget.call
    budget.call = function() return false, "stopped", "stopped by a stop signal" end
    local ok, p = pcall(H.processor)
    budget.call = call
    assert(ok, p)
    local m = { id = "m-9", body = H.body({}) }
    assert.are.same({ stopped = "validate" }, p:process(m.body, m))
    assert.are.same({ nil, "validate" }, { p:item(m) })
  end)
end)

describe("reject bodies hold no raw ip or device_id", function()
  it("masks pii fields of a JSON object, ip in canonical form", function()
    local r = H.reject(H.run({user_id = "", ip = "2001:0DB8::0001", device_id = "dev-secret-1"}))
    no_raw(r.body, "2001:0DB8::0001", "2001:db8::1", "dev-secret-1")
    local stored = H.cjson.decode(r.body)
    assert.are.equal(H.hex("2001:db8::1"), stored.ip)
    assert.are.equal(H.hex("dev-secret-1"), stored.device_id)
    assert.are.equal("", stored.user_id)
    assert.are.equal("android", stored.device_type)
  end)

  it("masks invalid and non-string pii values too", function()
    local r = H.reject(H.run({ip = "999.1.1.1", device_id = 5935928}))
    no_raw(r.body, "999.1.1.1", "5935928")
    local stored = H.cjson.decode(r.body)
    assert.are.equal(H.hex("999.1.1.1"), stored.ip)
    assert.are.equal(H.hex("5935928"), stored.device_id)
    local r2 = H.reject(H.run({device_id = {"10.9.8.7", "dev-x"}}))
    no_raw(r2.body, "10.9.8.7", "dev-x")
  end)

  it("keeps null pii fields null", function()
    local r = H.reject(H.run({user_id = H.MISSING, ip = H.null}))
    assert.are.equal(H.null, H.cjson.decode(r.body).ip)
  end)

  it("scrubs a body that is not JSON", function()
    local body = '{"user_id": "u1", "ip": "10.1.2.3", "device_id": "dev-\\"q\\"-77", "n": 1'
    local r = H.reject(H.run(body))
    assert.are.equal("invalid_json", r.reason)
    no_raw(r.body, "10.1.2.3", "dev-", "-77")
    assert.truthy(r.body:find('"ip": "' .. H.hex("10.1.2.3") .. '"', 1, true))
    assert.truthy(r.body:find('"user_id": "u1"', 1, true))
  end)

  it("scrubs bare and truncated pii values", function()
    local r = H.reject(H.run('{"device_id": 88812345, "ip": "2001:db8::'))
    no_raw(r.body, "88812345", "2001:db8")
    assert.truthy(r.body:find(H.hex("88812345"), 1, true))
  end)

  it("scrubs address-shaped text anywhere in an unparseable body", function()
    local r = H.reject(H.run("login from 192.168.0.1 and FE80::1:2 at 12:30:45, v1.2.3 {"))
    no_raw(r.body, "192.168.0.1", "FE80::1:2")
    assert.truthy(r.body:find(H.hex("192.168.0.1"), 1, true))
    assert.truthy(r.body:find(H.hex("fe80::1:2"), 1, true))
    assert.truthy(r.body:find("12:30:45", 1, true))
    assert.truthy(r.body:find("v1.2.3", 1, true))
  end)

  it("scrubs JSON that is not an object", function()
    local r = H.reject(H.run('["10.20.30.40", {"device_id": "d-1"}]'))
    assert.are.equal("not_object", r.reason)
    no_raw(r.body, "10.20.30.40", "d-1")
  end)

  it("stores valid UTF-8 without NUL bytes", function()
    local r = H.reject(H.run("bad \255\254 bytes \0 and NUL {"))
    assert.is_true(is_clean_text(r.body))
    assert.truthy(r.body:find("\u{FFFD}", 1, true))
    local r2 = H.reject(H.run(H.body({user_id = ""}):sub(1, -2) .. ',"junk":"\255\\u0000"}'))
    assert.is_true(is_clean_text(r2.body))
    -- a row Postgres refuses (NUL) gets its stored body the same way
    local p = H.processor()
    assert.is_true(is_clean_text(p:stored_body('{"user_id":"a\\u0000b","ip":"10.1.1.1"}')))
    assert.is_nil(p:stored_body('{"user_id":"a\\u0000b","ip":"10.1.1.1"}'):find("10.1.1.1", 1, true))
    assert.is_nil(p:stored_body('{"ip":"10.1.1.1"'):find("10.1.1.1", 1, true))
  end)

  it("clean_text replaces each invalid byte and drops NUL", function()
    assert.are.equal("a\u{FFFD}b\u{FFFD}\u{FFFD}c", H.record.clean_text("a\255b\237\160c"))
    assert.are.equal("ab", H.record.clean_text("a\0b"))
    assert.are.equal("日本", H.record.clean_text("日本"))
  end)
end)

describe("rules", function()
  local function rule(name, check) return {name = name, check = check} end

  it("pass: the message becomes a row", function()
    local p = H.processor({rules = {rule("always", function() return true end)}})
    assert.truthy(p:process(H.body({}), H.META).row)
  end)

  it("fail: rejects with rule:<name> and the detail", function()
    local p = H.processor({rules = {
      rule("ru_only", function(rec) return rec.locale == "RU", "locale is not RU" end)}})
    assert.truthy(p:process(H.body({}), H.META).row)
    local r = H.reject(p:process(H.body({locale = "FR"}), H.META))
    assert.are.equal("rule:ru_only", r.reason)
    assert.are.equal("locale is not RU", r.detail)
    no_raw(r.body, "199.172.111.135", "593-47-5928")
  end)

  it("fail without a detail gets a default one", function()
    local p = H.processor({rules = {rule("nope", function() return false end)}})
    assert.are.equal("rule nope failed", H.reject(p:process(H.body({}), H.META)).detail)
  end)

  it("a raising rule rejects that message, and the next one goes on", function()
    local p = H.processor({rules = {rule("crashy", function(rec)
      if rec.user_id == "boom" then error("exploded on purpose") end
      return true
    end)}})
    local r = H.reject(p:process(H.body({user_id = "boom"}), H.META))
    assert.are.equal("rule:crashy", r.reason)
    assert.truthy(r.detail:find("exploded on purpose", 1, true))
    assert.truthy(p:process(H.body({}), H.META).row)
  end)

  it("runs after the built-in validation, in order, first failure wins", function()
    local calls = {}
    local p = H.processor({rules = {
      rule("a", function() calls[#calls + 1] = "a"; return false, "a says no" end),
      rule("b", function() calls[#calls + 1] = "b"; return false, "b says no" end)}})
    assert.are.equal("invalid_user_id", H.reject(p:process(H.body({user_id = ""}))).reason)
    assert.are.same({}, calls)
    assert.are.equal("rule:a", H.reject(p:process(H.body({}))).reason)
    assert.are.same({"a"}, calls)
  end)

  it("details never carry the record's raw pii", function()
    local p = H.processor({rules = {rule("leaky", function(rec)
      return false, "bad ip " .. rec.ip .. " for device " .. rec.device_id .. " from 10.0.0.9"
    end)}})
    local r = H.reject(p:process(H.body({}), H.META))
    no_raw(r.detail, "199.172.111.135", "593-47-5928", "10.0.0.9")
    assert.truthy(r.detail:find(H.hex("593-47-5928"), 1, true))
  end)
end)

describe("record.load_rules", function()
  local dir

  local function write(name, text)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end

  before_each(function() dir = H.temp_dir() end)
  after_each(function() H.remove_dir(dir) end)

  it("loads every *.lua in name order and skips other files", function()
    write("20_second.lua", 'return {name = "second", check = function() return true end}')
    write("10_first.lua", 'return {name = "first", check = function() return true end}')
    write("it's odd $x.lua", 'return {name = "odd", check = function() return true end}')
    write("README.txt", "not a rule")
    write("notes.lua.bak", "not a rule")
    write(".hidden.lua", "error('hidden files are skipped')")
    local rules = H.record.load_rules(dir)
    local names = {}
    for i, r in ipairs(rules) do
      names[i] = r.name
      assert.are.equal("function", type(r.check))
    end
    assert.are.same({"first", "second", "odd"}, names)
    assert.truthy(rules[3].file:find("it's odd $x.lua", 1, true))
    -- and they run in that order
    local p = H.processor({rules = rules})
    assert.truthy(p:process(H.body({}), H.META).row)
  end)

  it("returns an empty list for an empty directory", function()
    assert.are.same({}, H.record.load_rules(dir))
  end)

  it("names the file and the Lua error for a syntax error", function()
    write("10_bad.lua", "return {name = ")
    local ok, err = pcall(H.record.load_rules, dir)
    assert.is_false(ok)
    assert.truthy(err:find("10_bad.lua", 1, true), err)
    assert.truthy(err:find("expected", 1, true) or err:find("near", 1, true), err)
  end)

  it("names the file for a runtime error while loading", function()
    write("10_boom.lua", "error('cannot start')")
    local ok, err = pcall(H.record.load_rules, dir)
    assert.is_false(ok)
    assert.truthy(err:find("10_boom.lua", 1, true) and err:find("cannot start", 1, true), err)
  end)

  it("names the file for the wrong shape", function()
    for _, src in ipairs({'return "x"', "return {name = 'x'}", "return {check = function() end}",
                          "return {name = '', check = function() end}", "return nil"}) do
      write("10_shape.lua", src)
      local ok, err = pcall(H.record.load_rules, dir)
      assert.is_false(ok, src)
      assert.truthy(err:find("10_shape.lua", 1, true), err)
    end
  end)

  it("refuses two rules with one name", function()
    write("a.lua", 'return {name = "same", check = function() return true end}')
    write("b.lua", 'return {name = "same", check = function() return true end}')
    local ok, err = pcall(H.record.load_rules, dir)
    assert.is_false(ok)
    assert.truthy(err:find("b.lua", 1, true), err)
  end)

  it("fails for a missing directory or a file", function()
    assert.has_error(function() H.record.load_rules(dir .. "/nope") end)
    write("plain.lua", "return {}")
    assert.has_error(function() H.record.load_rules(dir .. "/plain.lua") end)
  end)
end)
