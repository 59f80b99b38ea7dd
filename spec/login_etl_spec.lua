-- spec/login_etl_spec.lua: every rule of the default pipeline, scripts/login_etl.lua,
-- one describe per rule, with the real masking primitive and the contract's test key.
local H = require "spec.helper"

local null, MISSING = H.null, H.MISSING

-- A body with one field set to raw JSON text (for values cjson.encode cannot produce).
local function raw_field(field, json_text)
  local t = H.event({[field] = MISSING})
  local body = H.cjson.encode(t)
  return body:sub(1, -2) .. ',"' .. field .. '":' .. json_text .. "}"
end

describe("script shape", function()
  it("has the contract's table, columns, pii and DDL", function()
    local s = H.script
    assert.are.equal("user_logins", s.table)
    assert.are.same({"user_id", "device_type", "masked_ip", "masked_device_id", "locale",
                     "app_version", "create_date"}, s.columns)
    assert.are.same({{path = "ip", canonical = "ip"}, "device_id"}, s.pii)
    local ddl = s.create_table:format('"user_logins"')
    assert.truthy(ddl:find('CREATE TABLE IF NOT EXISTS "user_logins"', 1, true))
    for _, col in ipairs({"user_id varchar(128)", "device_type varchar(32)",
                          "masked_ip varchar(256)", "masked_device_id varchar(256)",
                          "locale varchar(32)", "app_version integer", "create_date date"}) do
      assert.truthy(ddl:find(col, 1, true), col)
    end
    assert.are.equal("function", type(s.validate))
    assert.are.equal("function", type(s.transform))
  end)

  it("turns the sample event into the documented row", function()
    local r = H.row(H.run({}))
    assert.are.same({
      user_id = "424cdd21-063a-43a7-b91b-7ca1a833afae", device_type = "android",
      masked_ip = "26bcaeea1c777adc99cc49fd0c32b709e6ed63bda6d3f8136104721ec2c13137",
      masked_device_id = "b9569f99f40bff30a09851fbb145345f836b1508936a9ef8b3eb25f20fa9cef0",
      locale = "RU", app_version = 2003000, create_date = H.SENT_DATE,
    }, r)
    assert.are.equal("integer", math.type(r.app_version))
  end)
end)

describe("user_id: required, a non-empty string of at most 128 characters", function()
  it("accepts 1 and 128 ASCII characters, rejects 129", function()
    assert.are.equal("x", H.row(H.run({user_id = "x"})).user_id)
    assert.are.equal(("u"):rep(128), H.row(H.run({user_id = ("u"):rep(128)})).user_id)
    assert.are.equal("invalid_user_id", H.reason({user_id = ("u"):rep(129)}))
  end)

  it("counts characters, not bytes", function()
    assert.are.equal("accepted", H.reason({user_id = ("é"):rep(128)}))      -- 256 bytes
    assert.are.equal("invalid_user_id", H.reason({user_id = ("é"):rep(129)}))
    assert.are.equal("accepted", H.reason({user_id = ("😀"):rep(128)}))     -- 512 bytes
    assert.are.equal("invalid_user_id", H.reason({user_id = ("😀"):rep(129)}))
    -- an escaped surrogate pair is one character
    assert.are.equal("accepted", H.reason(raw_field("user_id", '"' .. ("\\ud83d\\ude00"):rep(128) .. '"')))
  end)

  it("rejects missing, null, empty and non-string values", function()
    for _, v in ipairs({MISSING, null, "", 42, 0, true, false, {}, {"a"}, {a = "b"}}) do
      local out = H.run({user_id = v})
      assert.are.equal("invalid_user_id", H.reject(out).reason, tostring(v))
    end
  end)

  it("accepts blank and SQL-looking text as text", function()
    assert.are.equal(" ", H.row(H.run({user_id = " "})).user_id)
    assert.are.equal("x'); DROP TABLE t;--", H.row(H.run({user_id = "x'); DROP TABLE t;--"})).user_id)
  end)

  -- No rule of the contract covers NUL: the script passes it on and Postgres refuses the row
  -- (db_refused, tests/integration/sink_spec.lua). A body that is not UTF-8 is not JSON text
  -- (RFC 8259 section 8.1): invalid_json, before any rule.
  it("passes NUL on to Postgres; a body with invalid UTF-8 is invalid_json", function()
    assert.are.equal("a\0b", H.row(H.run(raw_field("user_id", '"a\\u0000b"'))).user_id)
    assert.are.equal("invalid_json", H.reason(raw_field("user_id", '"ab\255c"')))
    assert.are.equal("invalid_json", H.reason(raw_field("user_id", '"' .. ("\255"):rep(129) .. '"')))
  end)

  it("reports the rule without the value", function()
    local r = H.reject(H.run({user_id = ("s3cr3t"):rep(30)}))
    assert.are.equal("user_id is longer than 128 characters", r.detail)
  end)
end)

for _, field in ipairs({"device_type", "locale"}) do
  describe(field .. ": optional, a string of at most 32 characters", function()
    local reason = "invalid_" .. field
    it("accepts 32 characters, rejects 33", function()
      assert.are.equal(("d"):rep(32), H.row(H.run({[field] = ("d"):rep(32)}))[field])
      assert.are.equal(reason, H.reason({[field] = ("d"):rep(33)}))
    end)

    it("counts multi-byte characters as one", function()
      assert.are.equal(("日"):rep(32), H.row(H.run({[field] = ("日"):rep(32)}))[field])
      assert.are.equal(reason, H.reason({[field] = ("日"):rep(33)}))
    end)

    it("stores missing and null as NULL, and keeps an empty string", function()
      assert.is_nil(H.row(H.run({[field] = MISSING}))[field])
      assert.is_nil(H.row(H.run({[field] = null}))[field])
      assert.are.equal("", H.row(H.run({[field] = ""}))[field])
    end)

    it("rejects non-strings", function()
      for _, v in ipairs({1, 1.5, true, false, {}, {"x"}, {a = 1}}) do
        assert.are.equal(reason, H.reason({[field] = v}), tostring(v))
      end
    end)

    it("passes NUL on to Postgres (db_refused there); invalid UTF-8 is invalid_json", function()
      assert.are.equal("invalid_json", H.reason(raw_field(field, '"\255"')))
      assert.are.equal("a\0", H.row(H.run(raw_field(field, '"a\\u0000"')))[field])
    end)
  end)
end

describe("ip: optional, a valid IPv4 or IPv6 address, masked in canonical form", function()
  it("masks IPv4 as given", function()
    assert.are.equal(H.hex("199.172.111.135"), H.row(H.run({ip = "199.172.111.135"})).masked_ip)
    assert.are.equal(H.hex("0.0.0.0"), H.row(H.run({ip = "0.0.0.0"})).masked_ip)
  end)

  it("masks every spelling of one IPv6 address equal", function()
    local want = H.hex("2001:db8::1")
    for _, spelling in ipairs({"2001:db8::1", "2001:DB8::1", "2001:0db8::0001",
                               "2001:db8:0:0:0:0:0:1", "2001:0DB8:0000:0000:0000:0000:0000:0001",
                               "2001:db8::0:0:1"}) do
      assert.are.equal(want, H.row(H.run({ip = spelling})).masked_ip, spelling)
    end
    assert.are.equal(H.hex("::ffff:1.2.3.4"), H.row(H.run({ip = "::FFFF:0102:0304"})).masked_ip)
    assert.are.equal(H.hex("::1"), H.row(H.run({ip = "0:0:0:0:0:0:0:1"})).masked_ip)
  end)

  it("rejects invalid addresses", function()
    for _, v in ipairs({"999.1.1.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4",
                        "1.2.3.4 ", "1.2.3.4\n", "fe80::1%eth0", "1::2::3", "12345::1", "",
                        "localhost", "[::1]", "1.2.3.4/24", 12345, 1.5, true, {}, {"1.2.3.4"}}) do
      assert.are.equal("invalid_ip", H.reason({ip = v}), tostring(v))
    end
    assert.are.equal("invalid_ip", H.reason(raw_field("ip", '"1.2.3.4\\u0000"')))
  end)

  it("gives a detail without the value", function()
    local r = H.reject(H.run({ip = "999.1.1.1"}))
    assert.are.equal("ip is not a valid IPv4 or IPv6 address", r.detail)
  end)

  it("stores missing and null as NULL", function()
    assert.is_nil(H.row(H.run({ip = MISSING})).masked_ip)
    assert.is_nil(H.row(H.run({ip = null})).masked_ip)
  end)
end)

describe("device_id: optional, a non-empty string, masked", function()
  it("masks the value", function()
    assert.are.equal(H.hex("593-47-5928"), H.row(H.run({})).masked_device_id)
    local long = ("x"):rep(5000)
    assert.are.equal(H.hex(long), H.row(H.run({device_id = long})).masked_device_id)
    assert.are.equal(H.hex("日本"), H.row(H.run({device_id = "日本"})).masked_device_id)
  end)

  it("rejects empty and non-string values", function()
    for _, v in ipairs({"", 5935928, 0, true, false, {}, {"a"}, {a = "b"}}) do
      assert.are.equal("invalid_device_id", H.reason({device_id = v}), tostring(v))
    end
  end)

  it("masks any text: NUL is fine, only the mask is stored", function()
    assert.are.equal("invalid_json", H.reason(raw_field("device_id", '"\255\254"')))
    assert.are.equal(H.hasher:hex("\0"), H.row(H.run(raw_field("device_id", '"\\u0000"'))).masked_device_id)
  end)

  it("stores missing and null as NULL", function()
    assert.is_nil(H.row(H.run({device_id = MISSING})).masked_device_id)
    assert.is_nil(H.row(H.run({device_id = null})).masked_device_id)
  end)
end)

describe("app_version: MAJOR[.MINOR[.PATCH]] -> MAJOR*1000000 + MINOR*1000 + PATCH", function()
  local function version(v) return H.row(H.run({app_version = v})).app_version end

  it("converts the documented examples", function()
    assert.are.equal(2003000, version("2.3.0"))
    assert.are.equal(2006, version("0.2.6"))
    assert.are.equal(2010001, version("2.10.1"))
    assert.are.equal(2000000, version("2"))
    assert.are.equal(2003000, version("2.3"))
    assert.are.equal(0, version("0"))
    assert.are.equal(0, version("0.0.0"))
  end)

  it("reads leading zeros as digits", function()
    assert.are.equal(2003000, version("02.003"))
    assert.are.equal(2003004, version("0002.3.004"))
    assert.are.equal(1000000, version("000000000000000000001"))
  end)

  it("bounds MINOR and PATCH below 1000", function()
    assert.are.equal(1999999, version("1.999.999"))
    assert.are.equal("invalid_app_version", H.reason({app_version = "1.1000"}))
    assert.are.equal("invalid_app_version", H.reason({app_version = "1.1000.0"}))
    assert.are.equal("invalid_app_version", H.reason({app_version = "1.0.1000"}))
    assert.are.equal("invalid_app_version", H.reason({app_version = "1.0.99999999999999999999"}))
  end)

  it("bounds MAJOR below 2147 (fits a Postgres integer)", function()
    assert.are.equal(2146999999, version("2146.999.999"))
    assert.are.equal(2146000000, version("2146"))
    assert.are.equal("invalid_app_version", H.reason({app_version = "2147"}))
    assert.are.equal("invalid_app_version", H.reason({app_version = "2147.0.0"}))
    assert.are.equal("invalid_app_version", H.reason({app_version = "99999999999999999999"}))
  end)

  it("reads a JSON integer N as \"N\"", function()
    assert.are.equal(2000000, version(2))
    assert.are.equal(0, version(0))
    assert.are.equal(2146000000, version(2146))
    assert.are.equal("invalid_app_version", H.reason({app_version = 2147}))
    assert.are.equal(3000000, H.row(H.run(raw_field("app_version", "3"))).app_version)
    assert.are.equal("integer", math.type(version(2)))
  end)

  it("rejects floats, negatives and huge numbers", function()
    assert.are.equal("invalid_app_version", H.reason({app_version = 2.5}))
    assert.are.equal("invalid_app_version", H.reason({app_version = -1}))
    -- a number past the range of a double is not carried on at all (etlua.json)
    assert.are.equal("invalid_json", H.reason(raw_field("app_version", "1e400")))
    assert.are.equal("invalid_app_version", H.reason(raw_field("app_version", "-3")))
    assert.are.equal("invalid_app_version", H.reason(raw_field("app_version", "0.1")))
  end)

  it("rejects other spellings", function()
    for _, v in ipairs({"abc", "", ".", "1.", ".1", "1..2", "1.2.3.4", "+1", "-1", " 1", "1 ",
                        "1.2.3 ", "1. 2", "v1.2", "1.2-beta", "１", "1e3", "0x10", "1,2",
                        "1.2.3\0", true, false, {}, {1, 2}}) do
      assert.are.equal("invalid_app_version", H.reason({app_version = v}), tostring(v))
    end
  end)

  it("stores missing and null as NULL", function()
    assert.is_nil(H.row(H.run({app_version = MISSING})).app_version)
    assert.is_nil(H.row(H.run({app_version = null})).app_version)
  end)

  it("preserves order", function()
    local ordered = {"0", "0.0.1", "0.0.999", "0.1", "0.999.999", "1", "1.0.1", "2.3.0",
                     "2.10.1", "10", "2146.999.999"}
    for i = 2, #ordered do
      assert.is_true(version(ordered[i - 1]) < version(ordered[i]), ordered[i])
    end
  end)
end)

describe("create_date: UTC date of timestamp, else SentTimestamp, else receipt", function()
  local function date(over, meta) return H.row(H.run(over, meta)).create_date end

  it("uses the body's timestamp (epoch seconds)", function()
    assert.are.equal("2024-03-01", date({timestamp = 1709251200}))
    assert.are.equal("2024-02-29", date({timestamp = 1709251199.9}))
    assert.are.equal("1970-01-01", date({timestamp = 0}))
    assert.are.equal("9999-12-31", date({timestamp = 253402300799}))
  end)

  it("falls back to SentTimestamp when timestamp is missing, null or unusable", function()
    for _, v in ipairs({MISSING, null, "1709251200", -1, 253402300800, 1709251200000, true, {}}) do
      assert.are.equal(H.SENT_DATE, date({timestamp = v}), tostring(v))
    end
  end)

  it("accepts sent_ms as a number or a numeric string", function()
    assert.are.equal(H.SENT_DATE, date({}, {id = "m", sent_ms = "1700000000000"}))
  end)

  it("falls back to the moment of receipt", function()
    assert.are.equal(H.RECEIVED_DATE, date({}, {id = "m", received_ms = 1600000000000}))
    assert.are.equal(H.RECEIVED_DATE, date({}, {id = "m", sent_ms = "bad", received_ms = 1600000000000}))
  end)

  it("falls back to now when the message carries no time", function()
    local before = os.date("!%Y-%m-%d")
    local d = date({}, {id = "m"})
    assert.is_true(d == before or d == os.date("!%Y-%m-%d"))
    assert.are.equal(os.date("!%Y-%m-%d"), H.row(H.processor():process(H.body({}))).create_date)
  end)
end)

describe("unknown fields", function()
  it("are ignored, whatever their type or depth", function()
    local r = H.row(H.run({extra = {nested = {1, 2, {deep = "x"}}}, foo = "bar", n = 1.5,
                           z = null, IP = "not checked"}))
    assert.are.equal("424cdd21-063a-43a7-b91b-7ca1a833afae", r.user_id)
  end)

  it("may hold any JSON text, but a body with invalid UTF-8 is not JSON", function()
    assert.are.equal("accepted", H.reason(H.body({}):sub(1, -2) .. ',"junk":"\\u0000\\ud83d\\ude00"}'))
    assert.are.equal("invalid_json", H.reason(H.body({}):sub(1, -2) .. ',"junk":"\255"}'))
  end)
end)
