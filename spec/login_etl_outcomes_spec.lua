-- spec/login_etl_outcomes_spec.lua: the exact outcome of scripts/login_etl.lua for tricky values
-- of each field, one table per field: the reject (reason and detail) or the value written.
-- The script takes shortcuts to stay cheap per message (a string is tested first, text within
-- the limit in bytes is not counted, app_version spellings are remembered, each time source is
-- read only when present); these tables fail if one of them changes an outcome.
-- Each value is given as its JSON text, so floats such as 2.0 and 2e0 reach the script as the
-- decoder gives them.
local H = require "spec.helper"

local MISSING = "MISSING"   -- the field left out of the body
local NULL = "NULL"         -- accepted, and the column is NULL

local function rep(s, n) return ("%q"):format(s:rep(n)) end -- JSON text of s repeated n times

-- The sample event with one field set to raw JSON text (or left out).
local function body_with(field, json_text)
  local t = H.event({[field] = H.MISSING})
  local body = H.cjson.encode(t)
  if json_text == MISSING then return body end
  return body:sub(1, -2) .. ',"' .. field .. '":' .. json_text .. "}"
end

-- Checks one case: want is {reason, detail} for a reject, NULL, or the column's value.
local function check(field, column, json_text, want, meta)
  local out = H.run(body_with(field, json_text), meta)
  local label = field .. " = " .. json_text
  if type(want) == "table" then
    assert(out.reject, label .. ": expected a reject, got a row")
    assert.are.same(want, {out.reject.reason, out.reject.detail}, label)
    return
  end
  assert(out.row, label .. ": rejected: " .. (out.reject and out.reject.detail or "dropped"))
  local got = H.row(out)[column]
  if want == NULL then
    assert.is_nil(got, label)
  else
    assert.are.equal(want, got, label)
    assert.are.equal(math.type(want), math.type(got), label)
  end
end

local USER_ID_LONG = {"invalid_user_id", "user_id is longer than 128 characters"}
local USER_ID_TYPE = {"invalid_user_id", "user_id must be a string"}

local USER_ID = {
  {'"x"', "x"},
  {'" "', " "},
  {rep("u", 128), ("u"):rep(128)},
  {rep("u", 129), USER_ID_LONG},
  {rep("é", 64), ("é"):rep(64)},                      -- 128 bytes
  {rep("é", 65), ("é"):rep(65)},                      -- 130 bytes, 65 characters
  {rep("é", 128), ("é"):rep(128)},
  {rep("é", 129), USER_ID_LONG},
  {rep("😀", 128), ("😀"):rep(128)},
  {rep("😀", 129), USER_ID_LONG},
  {'"' .. ("\\ud83d\\ude00"):rep(129) .. '"', USER_ID_LONG},
  {'"' .. ("\\u00e9"):rep(128) .. '"', ("é"):rep(128)},
  {'"a\\u0000b"', "a\0b"},
  {'"' .. ("\\u0000"):rep(129) .. '"', USER_ID_LONG},
  {'""', {"invalid_user_id", "user_id is empty"}},
  {MISSING, {"invalid_user_id", "user_id is missing"}},
  {"null", {"invalid_user_id", "user_id is missing"}},
  {"42", USER_ID_TYPE}, {"0", USER_ID_TYPE}, {"2.0", USER_ID_TYPE}, {"true", USER_ID_TYPE},
  {"false", USER_ID_TYPE}, {"{}", USER_ID_TYPE}, {"[]", USER_ID_TYPE}, {'["a"]', USER_ID_TYPE},
}

-- device_type and locale share the rule; want values are for either.
local function short_text_cases(field)
  local long = {"invalid_" .. field, field .. " is longer than 32 characters"}
  local wrong_type = {"invalid_" .. field, field .. " must be a string"}
  return {
    {'""', ""},
    {rep("d", 32), ("d"):rep(32)},
    {rep("d", 33), long},
    {rep("é", 16), ("é"):rep(16)},                    -- 32 bytes
    {rep("é", 17), ("é"):rep(17)},                    -- 34 bytes, 17 characters
    {rep("é", 32), ("é"):rep(32)},
    {rep("é", 33), long},
    {rep("日", 32), ("日"):rep(32)},                  -- 96 bytes
    {rep("日", 33), long},
    {rep("😀", 32), ("😀"):rep(32)},
    {rep("😀", 33), long},
    {'"' .. ("\\u0000"):rep(32) .. '"', ("\0"):rep(32)},
    {'"' .. ("\\u0000"):rep(33) .. '"', long},
    {MISSING, NULL}, {"null", NULL},
    {"1", wrong_type}, {"1.5", wrong_type}, {"true", wrong_type}, {"false", wrong_type},
    {"{}", wrong_type}, {"[]", wrong_type}, {'["x"]', wrong_type}, {'{"a":1}', wrong_type},
  }
end

local BAD_IP = {"invalid_ip", "ip is not a valid IPv4 or IPv6 address"}

-- want: the canonical text whose mask is stored, NULL, or the reject
local IP = {
  {'"199.172.111.135"', "199.172.111.135"},
  {'"0.0.0.0"', "0.0.0.0"},
  {'"255.255.255.255"', "255.255.255.255"},
  {'"2001:db8::1"', "2001:db8::1"},
  {'"2001:DB8:0:0:0:0:0:1"', "2001:db8::1"},
  {'"2001:0db8:0000:0000:0000:0000:0000:0001"', "2001:db8::1"},
  {'"::"', "::"},
  {'"::1"', "::1"},
  {'"::FFFF:1.2.3.4"', "::ffff:1.2.3.4"},
  {'"::ffff:0102:0304"', "::ffff:1.2.3.4"},
  {'"::1.2.3.4"', "::102:304"},
  {'"1:0:0:2:0:0:0:3"', "1:0:0:2::3"},
  {'"fe80::1%eth0"', BAD_IP}, {'"fe80::1%25eth0"', BAD_IP}, {'"fe80::1%"', BAD_IP},
  {'""', BAD_IP}, {'" 1.2.3.4"', BAD_IP}, {'"1.2.3.4 "', BAD_IP},
  {'"1.2.3.4\\n"', BAD_IP}, {'"1.2.3.4\\u0000"', BAD_IP}, {'"256.1.1.1"', BAD_IP},
  {'"01.2.3.4"', BAD_IP}, {'"1.2.3"', BAD_IP}, {'"1.2.3.4.5"', BAD_IP}, {'"1::2::3"', BAD_IP},
  {'"12345::1"', BAD_IP}, {'"[::1]"', BAD_IP}, {'"1.2.3.4/24"', BAD_IP},
  {'"localhost"', BAD_IP}, {rep("1", 100), BAD_IP},
  {"12345", BAD_IP}, {"1.5", BAD_IP}, {"true", BAD_IP}, {"false", BAD_IP}, {"{}", BAD_IP},
  {"[]", BAD_IP}, {'["1.2.3.4"]', BAD_IP},
  {MISSING, NULL}, {"null", NULL},
}

local DEVICE_ID_TYPE = {"invalid_device_id", "device_id must be a string"}

-- want: the text whose mask is stored, NULL, or the reject
local DEVICE_ID = {
  {'"593-47-5928"', "593-47-5928"},
  {'" "', " "},
  {'"\\u0000"', "\0"},
  {rep("x", 5000), ("x"):rep(5000)},
  {'""', {"invalid_device_id", "device_id is empty"}},
  {"5935928", DEVICE_ID_TYPE}, {"0", DEVICE_ID_TYPE}, {"true", DEVICE_ID_TYPE},
  {"false", DEVICE_ID_TYPE}, {"{}", DEVICE_ID_TYPE}, {"[]", DEVICE_ID_TYPE},
  {MISSING, NULL}, {"null", NULL},
}

local SHAPE = {"invalid_app_version", "app_version must be MAJOR[.MINOR[.PATCH]] in digits"}
local MAJOR = {"invalid_app_version", "app_version MAJOR must be below 2147"}
local PARTS = {"invalid_app_version", "app_version MINOR and PATCH must be below 1000"}
local NUMBER = {"invalid_app_version", "app_version number must be a non-negative integer"}
local TYPE = {"invalid_app_version", "app_version must be a string or an integer"}

local APP_VERSION = {
  {'"2.3.0"', 2003000}, {'"0.2.6"', 2006}, {'"2.10.1"', 2010001}, {'"2"', 2000000},
  {'"2.3"', 2003000}, {'"0"', 0}, {'"0.0.0"', 0}, {'"00000"', 0}, {'"0000.0000.0000"', 0},
  {'"02.003"', 2003000}, {'"0002.3.004"', 2003004}, {'"000000000000000000001"', 1000000},
  {'"' .. ("0"):rep(40) .. '2146.0999.000999"', 2146999999},
  {'"1.999.999"', 1999999}, {'"0.0999"', 999000}, {'"00002146"', 2146000000},
  {'"2146.999.999"', 2146999999}, {'"2146"', 2146000000},
  {'"1.1000"', PARTS}, {'"1.1000.0"', PARTS}, {'"1.0.1000"', PARTS}, {'"1.01000"', PARTS},
  {'"1.0.99999999999999999999"', PARTS}, {'"1.2.' .. ("0"):rep(40) .. '1000"', PARTS},
  {'"2147"', MAJOR}, {'"2147.0.0"', MAJOR}, {'"00002147"', MAJOR}, {'"10000"', MAJOR},
  {'"99999999999999999999"', MAJOR}, {'"2147.1000"', MAJOR},
  {"2", 2000000}, {"0", 0}, {"-0", 0}, {"2146", 2146000000},
  {"2.0", 2000000}, {"2e0", 2000000}, {"0.2e1", 2000000}, {"-0.0", 0}, {"2146.0", 2146000000},
  {"2147", MAJOR}, {"2147.0", MAJOR}, {"9223372036854775807", MAJOR}, {"1e300", NUMBER},
  {"99999999999999999999", NUMBER}, {"9223372036854775808", NUMBER},
  {"-1", NUMBER}, {"-3", NUMBER}, {"-9223372036854775808", NUMBER}, {"-1.0", NUMBER},
  {"2.5", NUMBER}, {"0.1", NUMBER}, {"5e-324", NUMBER},
  {'""', SHAPE}, {'"."', SHAPE}, {'"1."', SHAPE}, {'".1"', SHAPE}, {'"1..2"', SHAPE},
  {'"1.2.3.4"', SHAPE}, {'"+1"', SHAPE}, {'"-1"', SHAPE}, {'" 1"', SHAPE}, {'"1 "', SHAPE},
  {'"1.2.3 "', SHAPE}, {'"1. 2"', SHAPE}, {'"v1.2"', SHAPE}, {'"1.2-beta"', SHAPE},
  {'"１"', SHAPE}, {'"1e3"', SHAPE}, {'"0x10"', SHAPE}, {'"1,2"', SHAPE},
  {'"1.2.3\\u0000"', SHAPE}, {'"2.0"', 2000000}, {'"2e0"', SHAPE},
  {"true", TYPE}, {"false", TYPE}, {"{}", TYPE}, {"[]", TYPE}, {"[1,2]", TYPE},
  {MISSING, NULL}, {"null", NULL},
}

-- create_date from the body's timestamp, with the helper's message (sent 2023-11-14)
local TIMESTAMP = {
  {"1709251200", "2024-03-01"}, {"1709251199.9", "2024-02-29"}, {"0", "1970-01-01"},
  {"-0.0", "1970-01-01"}, {"0.5", "1970-01-01"}, {"86399.99999999999", "1970-01-01"},
  {"86400", "1970-01-02"}, {"253402300799", "9999-12-31"}, {"253402300798.5", "9999-12-31"},
  {"2.534023007990e11", "9999-12-31"},
  {"253402300799.5", H.SENT_DATE}, {"253402300800", H.SENT_DATE}, {"-1", H.SENT_DATE},
  {"-0.5", H.SENT_DATE},
  {"1709251200000", H.SENT_DATE}, {"1e300", H.SENT_DATE}, {'"1709251200"', H.SENT_DATE},
  {"true", H.SENT_DATE}, {"{}", H.SENT_DATE}, {"[]", H.SENT_DATE},
  {MISSING, H.SENT_DATE}, {"null", H.SENT_DATE},
}

-- create_date of a body without timestamp, from the message's times: {sent_ms, received_ms, want}
local MESSAGE_TIMES = {
  {1700000000000, 1600000000000, "2023-11-14"},
  {"1700000000000", nil, "2023-11-14"},
  {" 1700000000000 ", nil, "2023-11-14"},
  {"0x18BCFE56800", nil, "2023-11-14"},
  {"1.7e12", nil, "2023-11-14"},
  {0, 1600000000000, "1970-01-01"},
  {999, 1600000000000, "1970-01-01"},
  {253402300799000, nil, "9999-12-31"},
  {"253402300799000", nil, "9999-12-31"},
  {253402300799001, 1600000000000, "2020-09-13"},     -- a millisecond past the last second
  {253402300800000, 1600000000000, "2020-09-13"},
  {-1, 1600000000000, "2020-09-13"},
  {"bad", 1600000000000, "2020-09-13"},
  {"", "1600000000000", "2020-09-13"},
  {true, 1600000000000, "2020-09-13"},
  {nil, 1600000000000, "2020-09-13"},
  {nil, 253402300799000, "9999-12-31"},
}

describe("login_etl outcomes, value by value", function()
  local tables = {
    {"user_id", "user_id", USER_ID},
    {"device_type", "device_type", short_text_cases("device_type")},
    {"locale", "locale", short_text_cases("locale")},
    {"device_id", "masked_device_id", DEVICE_ID},
    {"app_version", "app_version", APP_VERSION},
    {"timestamp", "create_date", TIMESTAMP},
  }
  for _, t in ipairs(tables) do
    local field, column, cases = t[1], t[2], t[3]
    it(field, function()
      for _, case in ipairs(cases) do
        local want = case[2]
        if column == "masked_device_id" and type(want) == "string" and want ~= NULL then
          want = H.hex(want)
        end
        check(field, column, case[1], want)
      end
    end)
  end

  it("ip (the mask of the canonical text)", function()
    for _, case in ipairs(IP) do
      local want = case[2]
      if type(want) == "string" and want ~= NULL then want = H.hex(want) end
      check("ip", "masked_ip", case[1], want)
    end
  end)

  it("create_date from SentTimestamp, else the moment of receipt", function()
    for _, case in ipairs(MESSAGE_TIMES) do
      local meta = {id = "m", sent_ms = case[1], received_ms = case[2]}
      check("timestamp", "create_date", MISSING, case[3], meta)
    end
  end)

  it("reports the first rule broken, in the order of the fields", function()
    local body = '{"user_id":"","device_type":1,"locale":1,"ip":"x","device_id":"","app_version":"x"}'
    local order = {
      {"user_id", '"u"', "invalid_device_type"}, {"device_type", '"d"', "invalid_locale"},
      {"locale", '"l"', "invalid_ip"}, {"ip", '"1.2.3.4"', "invalid_device_id"},
      {"device_id", '"x"', "invalid_app_version"}, {"app_version", '"1"', "accepted"},
    }
    assert.are.equal("invalid_user_id", H.reason(body))
    for _, step in ipairs(order) do
      body = body:gsub('"' .. step[1] .. '":[^,}]*', '"' .. step[1] .. '":' .. step[2], 1)
      assert.are.equal(step[3], H.reason(body), step[1])
    end
  end)
end)

describe("login_etl app_version: a spelling seen before reads the same", function()
  it("whatever came in between, past the number of spellings remembered", function()
    local function version(text)
      local out = H.run(body_with("app_version", text))
      return out.row and H.row(out).app_version or out.reject.detail
    end
    local first = {}
    for round = 1, 2 do
      for major = 0, 2199, 1 do           -- 2,200 spellings, 53 of them refused (MAJOR)
        local text = ('"%d.%d.%d"'):format(major, major % 1000, (major * 7) % 1000)
        local got = version(text)
        if round == 1 then
          first[major] = got
          if major < 2147 then
            assert.are.equal(major * 1000000 + (major % 1000) * 1000 + (major * 7) % 1000, got)
          else
            assert.are.equal(MAJOR[2], got)
          end
        else
          assert.are.equal(first[major], got, text)
        end
        assert.are.equal(2003000, version('"2.3.0"'))
        assert.are.equal(2000000, version("2"))
      end
    end
  end)
end)
