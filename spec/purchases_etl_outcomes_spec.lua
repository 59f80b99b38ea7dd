-- spec/purchases_etl_outcomes_spec.lua: the exact outcome of scripts/purchases_etl.lua for tricky
-- values of each field: the reject (reason and detail) or the values written. The script's
-- checks are written to cost little per message (plain calls in a row, one pattern pass for
-- the time's fraction and zone, math.type for whole numbers); these tables fail if that
-- changes an outcome. Values are given as JSON text, so 2.0 reaches the script as a float.
local testing = require "etlua.testing"
local H = require "spec.helper"
local codec = require "etlua.codec"

local pipeline = testing.load("scripts/purchases_etl.lua")

local MISSING = "MISSING"   -- the field left out of the event
local OK = "accepted"

-- The event of the script's header with one field set to raw JSON text (or left out).
local function body_with(field, json_text)
  local e = H.purchase_event()
  e[field] = nil
  local body = codec.encode(e)
  if json_text == MISSING then return body end
  return body:sub(1, -2) .. ',"' .. field .. '":' .. json_text .. "}"
end

local function outcome(field, json_text)
  local out = pipeline:run(body_with(field, json_text))
  if out.reject then return {out.reject.reason, out.reject.detail} end
  if out.drop then return "dropped" end
  return OK, out.rows
end

local ORDER_ID = {"invalid_order_id", "order_id must be a non-empty string of at most 64 bytes"}
local UPDATED_AT = {"invalid_updated_at",
                    "updated_at must be an ISO-8601 time with a zone (Z or +hh:mm)"}
local STATUS = {"invalid_status", "status must be placed, paid, shipped, cancelled or draft"}
local TOTAL = {"invalid_total", "total_cents must be a non-negative integer"}
local CURRENCY = {"invalid_currency", "currency must be three capital letters"}
local TAGS = {"invalid_tags", "tags must be an array"}
local function USER(detail) return {"invalid_user", detail} end
local function ITEMS(detail) return {"invalid_items", detail} end
local USER_ID = USER("user.id must be a non-empty string of at most 64 bytes")
local EMAIL = USER("user.email must be an address with an @")
local COUNTRY = USER("user.country must be two capital letters")

local CASES = {
  order_id = {
    {'"o"', OK}, {'"' .. ("x"):rep(64) .. '"', OK}, {'"' .. ("é"):rep(32) .. '"', OK},
    {'"' .. ("x"):rep(65) .. '"', ORDER_ID}, {'"' .. ("é"):rep(33) .. '"', ORDER_ID},
    {'""', ORDER_ID}, {"5", ORDER_ID}, {"null", ORDER_ID}, {MISSING, ORDER_ID}, {"{}", ORDER_ID},
  },
  updated_at = {
    {'"2024-05-01T12:30:45Z"', OK}, {'"2024-05-01T12:30:45.1Z"', OK},
    {'"2024-05-01T12:30:45.123456789+02:00"', OK}, {'"2024-05-01T12:30:45-05:00"', OK},
    {'"9999-99-99T99:99:99Z"', OK},            -- the shape only: Postgres judges the date
    {'"2024-05-01T12:30:45.Z"', UPDATED_AT}, {'"2024-05-01T12:30:45..1Z"', UPDATED_AT},
    {'"2024-05-01T12:30:45.1.2Z"', UPDATED_AT}, {'"2024-05-01T12:30:45.123"', UPDATED_AT},
    {'"2024-05-01T12:30:45"', UPDATED_AT}, {'"2024-05-01T12:30:45+0200"', UPDATED_AT},
    {'"2024-05-01T12:30:45+02:00x"', UPDATED_AT}, {'"2024-05-01T12:30:45ZZ"', UPDATED_AT},
    {'"2024-05-01T12:30:45.1z"', UPDATED_AT}, {'"2024-05-01T12:30:45Z\\n"', UPDATED_AT},
    {'"2024-05-01 12:30:45Z"', UPDATED_AT}, {'"24-05-01T12:30:45Z"', UPDATED_AT},
    {'"2024-05-01T12:30:45.1 Z"', UPDATED_AT}, {'"2024-05-01T12:30:45.-1Z"', UPDATED_AT},
    {"1714566645", UPDATED_AT}, {"null", UPDATED_AT}, {MISSING, UPDATED_AT},
  },
  status = {
    {'"placed"', OK}, {'"paid"', OK}, {'"shipped"', OK}, {'"cancelled"', OK},
    {'"draft"', "dropped"}, {'"PAID"', STATUS}, {'""', STATUS}, {"1", STATUS}, {"null", STATUS},
    {MISSING, STATUS},
  },
  user = {
    {'{"id":"u"}', OK}, {'{"id":"u","email":null,"country":null}', OK},
    {'{"id":"u","email":"@"}', OK}, {'{"id":"u","country":"ZZ"}', OK},
    {'"u-17"', USER("user must be an object")},
    {"[]", USER_ID},                           -- an empty array reads as an empty object
    {'[{"id":"u"}]', USER("user must be an object")}, {"null", USER("user must be an object")},
    {"{}", USER_ID}, {'{"id":""}', USER_ID}, {'{"id":5}', USER_ID},
    {'{"id":"' .. ("x"):rep(65) .. '"}', USER_ID},
    {'{"id":"u","email":"no-at"}', EMAIL}, {'{"id":"u","email":5}', EMAIL},
    {'{"id":"u","email":""}', EMAIL}, {'{"id":"u","email":"a@b","country":"de"}', COUNTRY},
    {'{"id":"u","country":"DEU"}', COUNTRY}, {'{"id":"u","country":"D"}', COUNTRY},
    {'{"id":"u","country":1}', COUNTRY}, {'{"id":"u","email":"x","country":"de"}', EMAIL},
  },
  total_cents = {
    {"0", OK}, {"2.0", OK}, {"-0.0", OK}, {"9223372036854775807", OK},
    {"-1", TOTAL}, {"1.5", TOTAL}, {'"100"', TOTAL}, {"1e300", TOTAL},
    {"9223372036854775808", TOTAL}, {"null", TOTAL}, {MISSING, TOTAL}, {"true", TOTAL},
  },
  currency = {
    {'"EUR"', OK}, {'"eur"', CURRENCY}, {'"EURO"', CURRENCY}, {'"E"', CURRENCY},
    {"1", CURRENCY}, {"null", CURRENCY}, {MISSING, CURRENCY},
  },
  items = {
    {"[]", OK}, {"{}", OK},
    {'[{"sku":"A","qty":1,"price_cents":0,"options":null}]', OK},
    {'[{"sku":"A","qty":1.0,"price_cents":2.0,"options":{}}]', OK},
    {'"A-1"', ITEMS("items must be an array")}, {'{"a":1}', ITEMS("items must be an array")},
    {"null", ITEMS("items must be an array")}, {MISSING, ITEMS("items must be an array")},
    {'[{"sku":"A","qty":1,"price_cents":1},5]', ITEMS("items[2] must be an object")},
    {'[null]', ITEMS("items[1] must be an object")}, {'[[1]]', ITEMS("items[1] must be an object")},
    {'[[]]', ITEMS("items[1].sku must be a non-empty string of at most 64 bytes")},
    {'[{"qty":1,"price_cents":1}]',
     ITEMS("items[1].sku must be a non-empty string of at most 64 bytes")},
    {'[{"sku":"","qty":1,"price_cents":1}]',
     ITEMS("items[1].sku must be a non-empty string of at most 64 bytes")},
    {'[{"sku":"A","qty":0,"price_cents":1}]', ITEMS("items[1].qty must be a positive integer")},
    {'[{"sku":"A","qty":"1","price_cents":1}]', ITEMS("items[1].qty must be a positive integer")},
    {'[{"sku":"A","qty":1.5,"price_cents":1}]', ITEMS("items[1].qty must be a positive integer")},
    {'[{"sku":"A","qty":1,"price_cents":-1}]',
     ITEMS("items[1].price_cents must be a non-negative integer")},
    {'[{"sku":"A","qty":1,"price_cents":0.5}]',
     ITEMS("items[1].price_cents must be a non-negative integer")},
    {'[{"sku":"A","qty":1,"price_cents":1,"options":"M"}]',
     ITEMS("items[1].options must be an object")},
    {'[{"sku":"A","qty":1,"price_cents":1,"options":[1]}]',
     ITEMS("items[1].options must be an object")},
  },
  tags = {
    {"[]", OK}, {"{}", OK}, {'["a",1,null]', OK}, {"null", OK}, {MISSING, OK},
    {'"gift"', TAGS}, {'{"a":1}', TAGS}, {"1", TAGS}, {"false", TAGS},
  },
}

describe("purchases_etl outcomes, value by value", function()
  for _, field in ipairs({"order_id", "updated_at", "status", "user", "total_cents", "currency",
                          "items", "tags"}) do
    it(field, function()
      for _, case in ipairs(CASES[field]) do
        assert.are.same(case[2], (outcome(field, case[1])), field .. " = " .. case[1])
      end
    end)
  end

  it("writes whole numbers as integers and null options and tags as NULL", function()
    local _, rows = outcome("items",
      '[{"sku":"A","qty":2.0,"price_cents":9007199254740993,"options":null},'
      .. '{"sku":"B","qty":1,"price_cents":-0.0,"options":{"k":[1]}}]')
    local items = rows.purchase_items
    assert.are.same({order_id = "ord-1001", line = 1, sku = "A", qty = 2,
                     price_cents = 9007199254740993, updated_at = "2024-05-01T12:30:45.120Z"},
                    items[1])
    assert.are.equal("integer", math.type(items[1].qty))
    assert.are.equal(0, items[2].price_cents)
    assert.are.equal("integer", math.type(items[2].price_cents))
    assert.are.equal('{"k":[1]}', items[2].options)
    assert.are.equal(2, rows.purchases[1].item_count)
    _, rows = outcome("total_cents", "2.0")
    assert.are.equal(2, rows.purchases[1].total_cents)
    assert.are.equal("integer", math.type(rows.purchases[1].total_cents))
    _, rows = outcome("tags", "null")
    assert.is_nil(rows.purchases[1].tags)
  end)

  it("reports the first rule broken, in the order of the fields", function()
    local fields = {
      {"order_id", '"o"', '""'}, {"updated_at", '"2024-05-01T12:30:45Z"', '"x"'},
      {"status", '"paid"', '"x"'}, {"user", '{"id":"u"}', '"x"'}, {"total_cents", "1", '"x"'},
      {"currency", '"EUR"', '"x"'}, {"items", "[]", '"x"'}, {"tags", "[]", '"x"'},
    }
    for first = 1, #fields do          -- the fields before `first` fine, the others broken
      local parts = {}
      for i, f in ipairs(fields) do parts[i] = '"' .. f[1] .. '":' .. f[i < first and 2 or 3] end
      local name = fields[first][1] == "total_cents" and "total" or fields[first][1]
      assert.are.equal("invalid_" .. name,
                       pipeline:run("{" .. table.concat(parts, ",") .. "}").reject.reason)
    end
  end)
end)
