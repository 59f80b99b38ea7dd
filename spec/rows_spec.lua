-- spec/rows_spec.lua: etlua.rows' converter of one output (named row -> array in column order)
-- and etlua.row's gather under it: the common row (strings, integers, no other key) and every
-- way out of it give the same rows and errors.
local rows = require "etlua.rows"
local row = require "etlua.row"
local script = require "etlua.script"
local codec = require "etlua.codec"

local function noop() return true end

-- The builder of a one-output script with columns k, a, b (k the key when on_conflict is given).
local function builder(on_conflict)
  return rows.builder(script.describe({
    table = "t", columns = { "k", "a", "b" }, create_table = "x", validate = noop, transform = noop,
    key = on_conflict and { "k" } or nil, on_conflict = on_conflict,
  }, "s"))
end

describe("etlua.row gather", function()
  local cols = { "k", "a", "b" }

  it("reads the columns in order, holes for nil, plain for strings and integers only", function()
    local r, plain = row.gather({ b = 2, k = "x" }, cols)
    assert.are.same({ "x", nil, 2 }, r)
    assert.is_true(plain)
    for _, v in ipairs({ 1.5, 2.0, true, false, codec.null, {} }) do
      r, plain = row.gather({ a = v }, cols)
      assert.are.equal(v, r[2])
      assert.is_false(plain, tostring(v))
    end
  end)

  it("is not plain when the row has a key that is not a column", function()
    assert.is_false(select(2, row.gather({ k = "x", z = 1 }, cols)))
    assert.is_false(select(2, row.gather({ [1] = "x" }, cols)))
    assert.is_true(select(2, row.gather({}, cols)))
  end)

  it("reads through __index, counts raw keys only", function()
    local t = setmetatable({ k = "x" }, { __index = function(_, c) return c == "a" and "from index" or nil end })
    local r, plain = row.gather(t, cols)
    assert.are.same({ "x", "from index" }, r)
    assert.is_true(plain)
  end)

  -- A row without a metatable is read by one walk of its keys, each found among the column
  -- names by identity (cached per columns table); these hold it to the rule: row[i] is
  -- t[columns[i]], plain when only strings and integers and no other key.
  it("gives the same row and plain by its walk as the rule, whatever the keys and columns", function()
    local long = ("c"):rep(41) -- a name past 40 bytes: not one string whatever made it
    local many = {}
    for i = 1, 60 do many[i] = "col" .. i end
    local sets = { cols, { "k" }, { long, "a" }, many, { "a", "k" } }
    local values = { "s", 7, 2.5, true, codec.null, {}, "" }
    local x = 3
    local function rnd(m) x = (x * 1103515245 + 12345) % 2147483648; return x % m + 1 end
    for round = 1, 400 do
      local columns = sets[rnd(#sets)]
      local t, want, plain = {}, {}, true
      for i = 1, #columns do
        if rnd(3) > 1 then
          local v = values[rnd(#values)]
          t[("%s"):format(columns[i])], want[i] = v, v -- the key made anew, as a script would
          if type(v) ~= "string" and math.type(v) ~= "integer" then plain = false end
        end
      end
      if rnd(5) == 1 then t[rnd(2) == 1 and "zz" or 1], plain = "other", false end
      local r, p = row.gather(t, columns)
      for i = 1, #columns do assert.are.equal(want[i], r[i], "round " .. round .. " column " .. i) end
      assert.are.equal(#columns, math.max(#columns, #r))
      assert.are.equal(plain, p, "round " .. round)
    end
    assert.are.same({ "x", "y" }, (row.gather({ [long] = "x", a = "y" }, { long, "a" })))
    assert.is_true(select(2, row.gather({ [long] = "x", a = "y" }, { long, "a" })))
    -- a name given twice is read for each of its columns (the walk, one key to one column, is
    -- not used for such columns)
    for _ = 1, 2 do
      assert.are.same({ "x", "y", "x" }, (row.gather({ a = "x", k = "y" }, { "a", "k", "a" })))
      assert.are.same({ "y", "x", "y" }, (row.gather({ a = "x", k = "y" }, { "k", "a", "k" })))
    end
    collectgarbage() -- the cache's entries go with their columns tables
    for _ = 1, 100 do assert.is_true(select(2, row.gather({ k = "x" }, { "k", "a" }))) end
    collectgarbage()
    assert.are.same({ "x", nil, 2 }, (row.gather({ b = 2, k = "x" }, cols)))
  end)

  it("returns nil for what is not a table, raises on misuse", function()
    assert.is_nil(row.gather("row", cols))
    assert.is_nil(row.gather(nil, cols))
    assert.has_error(function() row.gather({}, nil) end)
    assert.has_error(function() row.gather({}, { 1 }) end)
    assert.has_error(function() row.gather({ a = 1 }, { "a", 2 }) end)
  end)
end)

describe("rows.builder, one output", function()
  local build = builder()

  it("gives the rows of the common row as they are", function()
    assert.are.same({ "x", 7 }, build({ k = "x", a = 7 }))
    assert.are.same({}, build({}))
  end)

  it("makes other values writable", function()
    local got = build({ k = 2.0, a = true, b = codec.null })
    assert.are.same({ "2", "true" }, got)
    got = build({ a = setmetatable({ 1, 2 }, codec.array_mt), b = 0.1 })
    assert.are.same({ nil, "[1,2]", "0.1" }, got)
  end)

  it("refuses what cannot be written, naming the column and the output", function()
    local per, err = build({ k = "x", b = 0 / 0 })
    assert.is_nil(per)
    assert.truthy(err:find("column 'b' of output 't' cannot be written", 1, true), err)
    per, err = build({ a = print })
    assert.is_nil(per)
    assert.truthy(err:find("column 'a' of output 't' cannot be written: transform gave it a function", 1, true), err)
  end)

  it("refuses a key that is not a column, with or without other values", function()
    for _, r in ipairs({ { k = "x", z = 1 }, { z = 1 }, { k = 1.5, z = 1 }, { [1] = "x" } }) do
      local per, err = build(r)
      assert.is_nil(per)
      assert.truthy(err:find("which output 't' does not have", 1, true), err)
    end
    local _, err = build({ k = "x", [true] = 1 })
    assert.truthy(err:find("key of type boolean", 1, true), err)
  end)

  it("says what transform returned when it is not a table", function()
    local per, err = build("row")
    assert.is_nil(per)
    assert.are.equal("transform returned string, not a row table or false", err)
  end)
end)

describe("rows.builder, a key column under on_conflict", function()
  it("refuses a NULL key column, absent or JSON null, on either path", function()
    local build = builder("update")
    for _, r in ipairs({ { a = "v" }, { k = codec.null, a = "v" }, { a = 1.5 }, {} }) do
      local per, err = build(r)
      assert.is_nil(per)
      assert.are.equal("key column 'k' of output 't' is NULL", err)
    end
    assert.are.same({ "x", "v" }, build({ k = "x", a = "v" }))
    assert.are.same({ "1", "v" }, build({ k = 1.0, a = "v" }))
  end)

  it("lets the key be NULL when on_conflict is error", function()
    assert.are.same({ nil, "v" }, builder()({ a = "v" }))
  end)
end)

describe("rows.transformer", function()
  local DROP = {}
  local function desc(on_conflict)
    return script.describe({
      table = "t", columns = { "k", "a", "b" }, create_table = "x", validate = noop, transform = noop,
      key = on_conflict and { "k" } or nil, on_conflict = on_conflict,
    }, "s")
  end

  it("is transform then the builder's answer, drop for false (one output)", function()
    for _, on_conflict in ipairs({ false, "update" }) do
      local d = desc(on_conflict or nil)
      local build = rows.builder(d)
      for _, r in ipairs({ { k = "x", a = 7 }, {}, { k = 2.0, a = true }, { k = "x", z = 1 }, { b = 0 / 0 },
                           "row", 5, true }) do
        local run = rows.transformer(d, function(rec, ctx)
          assert.are.equal("rec", rec); assert.are.equal("ctx", ctx); return r
        end, DROP)
        assert.are.same({ build(r) }, { run("rec", "ctx") })
      end
      assert.are.equal(DROP, rows.transformer(d, function() return false end, DROP)("rec", "ctx"))
    end
  end)

  it("is transform then the builder's answer, drop for false (outputs)", function()
    local d = script.describe({
      outputs = { { name = "o", table = "t", columns = { "a" }, create_table = "x" } },
      validate = noop, transform = noop,
    }, "s")
    local build = rows.builder(d)
    for _, r in ipairs({ { o = { a = "v" } }, { p = {} }, "x" }) do
      assert.are.same({ build(r) }, { rows.transformer(d, function() return r end, DROP)() })
    end
    assert.are.equal(DROP, rows.transformer(d, function() return false end, DROP)())
  end)
end)

describe("rows.of", function()
  it("reads an item's rows of one output, whichever shape it holds", function()
    local one = { "x", "v" }
    assert.are.same({ one }, rows.of({ row = one }, 1))      -- a script without outputs
    assert.are.same({}, rows.of({ row = one }, 2))
    local a, b = { { "1" }, { "2" } }, { { "3" } }
    assert.are.equal(a, rows.of({ rows = { a, b } }, 1))     -- per output, as it is
    assert.are.equal(b, rows.of({ rows = { a, b } }, 2))
    assert.are.same({}, rows.of({ rows = { a } }, 2))
  end)
end)
