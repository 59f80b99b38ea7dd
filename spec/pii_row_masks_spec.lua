-- spec/pii_row_masks_spec.lua: spec:row_masks, etlua.mask's C version (src/mask_rows.c), gives
-- exactly what its Lua reference (pii.lua's reference_row_masks) gives: both tables, value by
-- value and in order, over many records of every kind of value a pii path can meet.
local H = require "spec.helper"
local pii = require "etlua.pii"
local json = require "etlua.json"

local null = json.null

-- Both versions on one record: the same masked (lists included) and the same triples; asked
-- for masked alone (masked_only), the same masked again and no masks.
local function same(spec, rec, label)
  local want_masked, want_masks = spec:reference_row_masks(rec, H.hasher)
  local masked, masks = spec:row_masks(rec, H.hasher)
  assert.are.same(want_masked, masked, label)
  assert.are.same(want_masks, masks, label)
  local alone, none = spec:row_masks(rec, H.hasher, true)
  assert.are.same(want_masked, alone, label .. " (masked_only)")
  assert.is_nil(none, label .. " (masked_only)")
  assert.are.same({want_masked}, {spec:reference_row_masks(rec, H.hasher, true)}, label)
  return masked, masks
end

local SPECS = {
  login = {{path = "ip", canonical = "ip"}, "device_id"},
  purchases = {{path = "user.email", canonical = "lower"}},
  every_form = {{path = "ip", canonical = "ip"}, {path = "a", canonical = "lower"},
                {path = "b", canonical = "trim"}, "c", {path = "x.y.z", canonical = "trim"},
                {path = "x.ip", canonical = "ip"}, "x.y"},
  mixed_each = {"c", {path = "list[].v", canonical = "lower"}, {path = "ip", canonical = "ip"},
                {path = "tags[]", canonical = "trim"}, "x.y.z"},
  same_name_twice = {"a", {path = "a", canonical = "lower"}, {path = "a", canonical = "trim"}},
  empty = {},
}

-- Values a pii path may hold: strings for every canonical form, numbers, booleans, tables,
-- null, and the blanks %s matches.
local VALUES = {
  "83.77.202.167", "10.0.0.1", "010.0.0.1", "1.2.3", "255.255.255.255", "256.1.1.1",
  "2001:DB8::0:1", "2001:db8::1", "::FFFF:1.2.3.4", "::1.2.3.4", "::", "::1", "fe80::1%eth0",
  " 10.0.0.1", "10.0.0.1 ", "1.2.3.4\0", "0:0:0:0:0:0:0:1", "1:2:3:4:5:6:7:8:9", "",
  "Bob@Example.COM", "bob@example.com", "ÄÖ Straße", "MiXeD\0CaSe", "UPPER", "lower",
  " padded ", "\t\n\v\f\r x \r\n", "   ", "x", " \t", "no-trim", "a b", "\0 nul \0",
  ("A"):rep(100), (" "):rep(50) .. "long" .. (" "):rep(50), ("Long Mixed Text "):rep(5),
  0, 1, -1, 5935928, math.maxinteger, math.mininteger, 0.5, 1.0, -0.0, 1e300, 0.1,
  1 / 0, -1 / 0, true, false, null,
  {}, {1, 2}, {k = "v"}, setmetatable({}, json.array_mt), {nested = {deeper = "Yes"}},
}

local function pick(rng)
  return VALUES[rng(#VALUES)]
end

-- A record with (or without) each of the spec's names, nested values where paths go deeper,
-- and now and then a value that is not a table where a table was expected.
local function record(rng)
  local rec = {}
  for _, name in ipairs({"ip", "a", "b", "c", "device_id", "tags"}) do
    if rng(4) > 1 then rec[name] = pick(rng) end
  end
  if rng(5) > 1 then rec.tags = {pick(rng), pick(rng), " Tag "} end
  local r = rng(6)
  if r == 1 then rec.x = pick(rng)
  elseif r > 2 then
    rec.x = {ip = pick(rng), y = rng(3) == 1 and pick(rng) or {z = pick(rng)}}
  end
  r = rng(5)
  if r == 1 then rec.user = pick(rng)
  elseif r > 2 then rec.user = {email = pick(rng)} end
  if rng(3) > 1 then
    rec.list = {}
    for i = 1, rng(4) - 1 do rec.list[i] = rng(4) == 1 and pick(rng) or {v = pick(rng)} end
  end
  return rec
end

describe("spec:row_masks in C", function()
  it("is the spec's own row_masks, not the reference", function()
    local spec = pii.compile(SPECS.login)
    assert.are.equal("function", type(spec.row_masks))
    assert.are_not.equal(spec.row_masks, spec.reference_row_masks)
  end)

  for name, list in pairs(SPECS) do
    it("matches the Lua reference on 3,000 generated records (" .. name .. ")", function()
      local spec = pii.compile(list)
      local seed = 16
      local function rng(n) -- a small LCG: the same records on every run
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n + 1
      end
      for i = 1, 3000 do same(spec, record(rng), name .. " record " .. i) end
    end)
  end

  it("matches on every value at every kind of path, one at a time", function()
    local spec = pii.compile(SPECS.every_form)
    for i, v in ipairs(VALUES) do
      for _, rec in ipairs({{ip = v}, {a = v}, {b = v}, {c = v}, {x = {y = {z = v}}},
                            {x = {ip = v}}, {x = {y = v}}, {x = v}}) do
        same(spec, rec, "value " .. i)
      end
    end
  end)

  it("masks what the login script declares as before: canonical ip, the text as it is", function()
    local spec = pii.compile(SPECS.login)
    local masked, masks = same(spec, {ip = "2001:DB8::0:1", device_id = "D-1"}, "login")
    assert.are.same({ip = H.hex("2001:db8::1"), device_id = H.hex("D-1")}, masked)
    assert.are.same({"ip", H.hex("2001:db8::1"), "2001:db8::1",
                     "device_id", H.hex("D-1"), "D-1"}, masks)
  end)

  it("matches on records decoded from JSON (arrays with their metatable, nulls, floats)", function()
    local spec = pii.compile(SPECS.mixed_each)
    for i, text in ipairs({
      '{"c": null, "ip": "::ffff:10.0.0.1", "list": [{"v": "A"}, null, {"v": 1.5}, "B"]}',
      '{"c": [], "ip": 3, "tags": [" x ", null, true], "x": {"y": {"z": {"k": [1, 2.0]}}}}',
      '{"c": 9007199254740993, "x": {"y": []}, "list": {"v": "not a list"}}',
      '{"c": -0.0, "ip": "1.2.3.04", "tags": "  solo  ", "list": []}',
      '[1, 2, 3]', '"a string"', '42', 'null',
    }) do
      same(spec, json.decode(text), "json " .. i)
    end
  end)

  it("reads through a metatable's __index, as rec[name] does", function()
    local spec = pii.compile(SPECS.every_form)
    local rec = setmetatable({}, {__index = function(_, k) return "Via " .. k end})
    local masked = same(spec, rec, "proxy")
    assert.are.equal(H.hex("Via ip"), masked.ip)
  end)

  it("gives two empty tables for a record that is not a table, and touches no hasher", function()
    local spec = pii.compile(SPECS.login)
    for _, rec in ipairs({"text", 1, true, null}) do
      local masked, masks = spec:row_masks(rec, "not a hasher")
      assert.are.same({{}, {}}, {masked, masks})
    end
    local masked, masks = spec:row_masks({other = 1}, "not a hasher")
    assert.are.same({{}, {}}, {masked, masks})
  end)

  it("refuses a closed hasher with the hasher's own error (the position aside)", function()
    local spec = pii.compile(SPECS.login)
    local closed = H.mask.new("a closed key of thirty-two bytes!")
    closed:close()
    local _, lua_err = pcall(spec.reference_row_masks, spec, {ip = "1.2.3.4"}, closed)
    local _, c_err = pcall(spec.row_masks, spec, {ip = "1.2.3.4"}, closed)
    assert.matches("etlua.mask: hasher is closed$", lua_err)
    assert.matches("etlua.mask: hasher is closed$", c_err)
  end)

  it("canonical forms: mask.canonical, their one definition, is string.lower, a %s trim and canonical_ip", function()
    local mask = require "etlua.mask"
    local function trim(v) return (v:match("^%s*(.-)%s*$")) end
    for _, v in ipairs(VALUES) do
      if type(v) == "string" then
        assert.equals(v, mask.canonical(v))
        assert.equals(v:lower(), mask.canonical(v, "lower"))
        assert.equals(trim(v), mask.canonical(v, "trim"))
        assert.equals(mask.canonical_ip(v) or v, mask.canonical(v, "ip"))
      end
    end
    assert.has_error(function() mask.canonical("x", "upper") end)
  end)

  it("leaves a script's changes to masked out of masks", function()
    local spec = pii.compile(SPECS.login)
    local masked, masks = spec:row_masks({ip = "10.0.0.1", device_id = "d"}, H.hasher)
    masked.ip, masked.extra = "changed", "added"
    assert.are.same({"ip", H.hex("10.0.0.1"), "10.0.0.1", "device_id", H.hex("d"), "d"}, masks)
  end)
end)
