-- spec/json_spec.lua: etlua.json (src/json*.c), table-driven: exact values (with their Lua
-- subtype), exact texts and exact error strings, for decode, encode and number_text.
local json = require "etlua.json"
local cjson = require "cjson"

-- Deep equality that also tells integers from floats, arrays from objects and -0.0 from 0.0.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    if a ~= a then return b ~= b end
    return a == b and (a ~= 0 or 1 / a == 1 / b)
  end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function show(v)
  if type(v) == "number" then return math.type(v) .. " " .. string.format("%.17g", v) end
  if type(v) == "table" then
    return (getmetatable(v) == json.array_mt and "array " or "object ") .. (json.encode(v) or "?")
  end
  return tostring(v)
end

local function arr(...) return setmetatable({...}, json.array_mt) end
local null = json.null

describe("json.decode", function()
  local cases = {
    -- numbers: integers exact over the signed 64-bit range, floats otherwise
    {"2", 2}, {"2.0", 2.0}, {"2e0", 2.0}, {"2E+0", 2.0}, {"-2", -2}, {"0", 0},
    {"-0", 0}, {"-0.0", -0.0}, {"0.5", 0.5}, {"-0.5e-3", -0.0005}, {"1.5e300", 1.5e300},
    {"1e-400", 0.0},
    {"9223372036854775807", math.maxinteger},
    {"-9223372036854775808", math.mininteger},
    {"9223372036854775808", 9223372036854775808.0},
    {"-9223372036854775809", -9223372036854775809.0},
    {"18446744073709551616", 18446744073709551616.0},
    {"9007199254740993", 9007199254740993},
    {"9007199254740993.0", 9007199254740992.0},
    {"123456789012345678901234567890", 1.2345678901234568e29},
    -- literals
    {"true", true}, {"false", false}, {"null", null}, {" \t\r\n null \n", null},
    -- strings: every escape, surrogate pairs, UTF-8 kept
    {[["a\"b\\c\/d\be\ff\ng\rh\ti"]], "a\"b\\c/d\be\ff\ng\rh\ti"},
    {[["\u0041\u00e9\u20AC\uffff"]], "Aé€\u{FFFF}"},
    {[["\ud83d\ude00 \uD834\uDD1E"]], "😀 𝄞"},
    {[["\u0000"]], "\0"},
    {'"é€😀\u{10FFFF}"', "é€😀\u{10FFFF}"},
    {'""', ""},
    -- arrays and objects
    {"[]", arr()}, {"{}", {}}, {"[[]]", arr(arr())}, {"[{}]", arr({})},
    {'{"a":[],"b":{},"c":[[],{}]}', {a = arr(), b = {}, c = arr(arr(), {})}},
    {"[1,null,3]", arr(1, null, 3)},
    {'{"a":null}', {a = null}},
    {'{"a":1,"a":2}', {a = 2}},
    {'{"1":"x"}', {["1"] = "x"}},
    {'{"":0}', {[""] = 0}},
    {' [ 1 , 2.5 , "x" , true , false , null ] ', arr(1, 2.5, "x", true, false, null)},
  }
  for _, c in ipairs(cases) do
    it("reads " .. c[1], function()
      local v, err = json.decode(c[1])
      assert.is_nil(err)
      assert.is_true(same(v, c[2]), "got " .. show(v) .. ", want " .. show(c[2]))
    end)
  end

  local refused = {
    {"", "unexpected end of input at byte 1"},
    {"   ", "unexpected end of input at byte 4"},
    {"[", "unexpected end of input at byte 2"},
    {"[1", "unexpected end of input at byte 3"},
    {'{"a"', "unexpected end of input at byte 5"},
    {'{"a":', "unexpected end of input at byte 6"},
    {'"abc', "unexpected end of input at byte 5"},
    {'"ab\\', "unexpected end of input at byte 4"},
    {"-", "unexpected end of input at byte 2"},
    {"1.", "unexpected end of input at byte 3"},
    {"1e", "unexpected end of input at byte 3"},
    {"[1,]", "expected a value at byte 4"},
    {'{"a":1,}', "expected a string key at byte 8"},
    {"{a:1}", "expected a string key at byte 2"},
    {"{'a':1}", "expected a string key at byte 2"},
    {'{"a" 1}', "expected ':' at byte 6"},
    {"[1 2]", "expected ',' or ']' at byte 4"},
    {'{"a":1 "b":2}', "expected ',' or '}' at byte 8"},
    {"[1] x", "unexpected data after the value at byte 5"},
    {"1 2", "unexpected data after the value at byte 3"},
    {"NaN", "expected a value at byte 1"},
    {"Infinity", "expected a value at byte 1"},
    {"-Infinity", "invalid number at byte 1"},
    {"nul", "expected a value at byte 1"},
    {"True", "expected a value at byte 1"},
    {"+1", "expected a value at byte 1"},
    {"01", "invalid number (leading zero) at byte 1"},
    {"-01", "invalid number (leading zero) at byte 1"},
    {"0x10", "unexpected data after the value at byte 2"},
    {".5", "expected a value at byte 1"},
    {"1.e5", "invalid number at byte 1"},
    {"[1e+]", "invalid number at byte 2"},
    {"1e400", "number out of range at byte 1"},
    {"[0, -1e400]", "number out of range at byte 5"},
    {"/* c */ 1", "expected a value at byte 1"},
    {"[1] // c", "unexpected data after the value at byte 5"},
    {"\239\187\191{}", "expected a value at byte 1"},
    {'"a\nb"', "control character in string at byte 3"},
    {'"a\tb"', "control character in string at byte 3"},
    {'"a\0b"', "control character in string at byte 3"},
    {'"\\x"', "invalid escape at byte 2"},
    {'"\\u12"', "invalid \\u escape at byte 2"},
    {'"\\u12G4"', "invalid \\u escape at byte 2"},
    {'"\\ud800"', "lone surrogate in \\u escape at byte 2"},
    {'"\\ud800x"', "lone surrogate in \\u escape at byte 2"},
    {'"\\ud800\\u0041"', "lone surrogate in \\u escape at byte 2"},
    {'"ab\\udc00\\ud800"', "lone surrogate in \\u escape at byte 4"},
    {'"\255"', "invalid UTF-8 in string at byte 2"},
    {'"a\192\175"', "invalid UTF-8 in string at byte 3"},         -- overlong '/'
    {'"\237\160\128"', "invalid UTF-8 in string at byte 2"},      -- encoded surrogate
    {'"\244\144\128\128"', "invalid UTF-8 in string at byte 2"},  -- past U+10FFFF
    {'"\226\130"', "invalid UTF-8 in string at byte 2"},          -- truncated
    {'{"\255":1}', "invalid UTF-8 in string at byte 3"},
    {'"\\n\255"', "invalid UTF-8 in string at byte 4"},
    {'"\\n\1"', "control character in string at byte 4"},
  }
  for _, c in ipairs(refused) do
    it(("refuses %q"):format(c[1]), function()
      local v, err = json.decode(c[1])
      assert.is_nil(v)
      assert.are.equal(c[2], err)
    end)
  end

  it("nests 1000 deep and refuses 1001 with an error, not a crash", function()
    local ok = json.decode(("["):rep(1000) .. ("]"):rep(1000))
    assert.are.equal(json.array_mt, getmetatable(ok))
    local v, err = json.decode(("["):rep(1001) .. ("]"):rep(1001))
    assert.is_nil(v)
    assert.are.equal("nesting deeper than 1000 at byte 1001", err)
    v, err = json.decode(('{"a":'):rep(1001) .. "1" .. ("}"):rep(1001))
    assert.is_nil(v)
    assert.are.equal("nesting deeper than 1000 at byte 5001", err)
    v, err = json.decode(("["):rep(100000))
    assert.is_nil(v)
    assert.are.equal("nesting deeper than 1000 at byte 1001", err)
  end)

  it("raises only on misuse", function()
    local ok, err = pcall(json.decode, nil)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '.*decode' %(string expected, got nil%)", err)
    assert.has_error(function() json.decode({}) end)
  end)

  it("null is the NULL light userdata, the same as cjson.null", function()
    assert.are.equal(cjson.null, json.null)
    assert.are.equal(cjson.null, json.decode("null"))
    assert.are.equal("userdata", type(json.null))
  end)

  it("reads a big document", function()
    local parts = {}
    for i = 1, 20000 do
      parts[i] = ('{"i":%d,"f":%d.25,"s":"x\\u00e9\\n%d","a":[],"o":{},"n":null}'):format(i, i, i)
    end
    local v = assert(json.decode("[" .. table.concat(parts, ",") .. "]"))
    assert.are.equal(20000, #v)
    assert.are.equal(12345, v[12345].i)
    assert.are.equal("float", math.type(v[12345].f))
    assert.are.equal("xé\n12345", v[12345].s)
    assert.are.equal(json.array_mt, getmetatable(v[20000].a))
    local long = ("é"):rep(300000)
    assert.are.equal(long, json.decode('"' .. long .. '"'))
    assert.are.equal(long .. "\n", json.decode('"' .. long .. '\\n"'))
  end)

  -- The decoder keeps the last key of each of 64 slots (picked by length and three bytes) and
  -- pushes a key found there from its own table: whatever the keys, each object must still hold
  -- exactly its own keys, as a decoder without that cache gives them.
  it("gives every object its own keys, whichever keys came before (the key cache)", function()
    local keys = { "", "a", "ab", "ba", ("k"):rep(31), ("k"):rep(32), ("k"):rep(33), "user_id", "ip" }
    for i = 1, 300 do -- same length, same first, middle and last bytes: one slot, other keys
      keys[#keys + 1] = ("a%02dx%03dz"):format(i % 7, i):gsub("x", "m")
      keys[#keys + 1] = ("a%sb%sc"):format(string.char(65 + i % 26), string.char(65 + (i * 7) % 26))
    end
    local x = 7
    for round = 1, 80 do -- decode and decode_object in turn: each has a cache of its own
      local want, parts = {}, {}
      for j = 1, 1 + round % 9 do
        x = (x * 1103515245 + 12345) % 2147483648
        local k = keys[x % #keys + 1]
        want[k] = j
        parts[#parts + 1] = ('"%s":%d'):format(k, j) -- a key twice: the last one wins
      end
      local got = assert((round % 2 == 0 and json.decode or json.decode_object)(
        "{" .. table.concat(parts, ",") .. "}"))
      assert.is_true(same(want, got), "round " .. round .. ": " .. show(got))
      for k in pairs(got) do assert.are.equal("string", type(k)) end
    end
    -- an escaped key is the same string as the plain one, cached or not
    local v = assert(json.decode('[{"ab":1},{"a\\u0062":2},{"ab":3,"a\\u0062":4}]'))
    assert.are.equal(1, v[1].ab)
    assert.are.equal(2, v[2].ab)
    assert.is_true(same({ ab = 4 }, v[3]))
    -- a key with UTF-8 or past 32 bytes is read as before
    v = assert(json.decode('{"é":1,"' .. ("k"):rep(40) .. '":2}'))
    assert.is_true(same({ ["é"] = 1, [("k"):rep(40)] = 2 }, v))
    assert.are.same({ nil, "invalid UTF-8 in string at byte 4" }, { json.decode('{"a\255":1}') })
    assert.are.same({ nil, "unexpected end of input at byte 5" }, { json.decode('{"ab') })
    collectgarbage() -- the cached strings stay alive: the same keys again after a collection
    assert.is_true(same({ user_id = 1, ip = 2 }, json.decode('{"user_id":1,"ip":2}')))
  end)
end)

describe("json.decode_object", function()
  it("gives the object a text holds, as json.decode does, and nil for anything else", function()
    for _, text in ipairs({'{"user_id":"u1","app_version":2,"ip":null}', ' \t\r\n{}', '{"a":[1,{}]} ',
                           '{"a\\u0062":"\\u00e9"}'}) do
      local got = json.decode_object(text)
      assert.are.equal("table", type(got), text)
      assert.is_nil(getmetatable(got), text)
      assert.is_true(same(json.decode(text), got), text .. ": " .. show(got))
    end
    for _, text in ipairs({"[]", "[1]", "2", '"{}"', "null", "true", "", "  ", "{", '{"a":1}x',
                           '{"a":1,}', "{} {}", " [{}]"}) do
      assert.is_nil(json.decode_object(text), text)
      assert.are.same({ nil }, { json.decode_object(text) }, text) -- one value, not nil, msg
    end
    assert.has_error(function() json.decode_object({}) end)
  end)
end)

describe("json.encode", function()
  local cases = {
    {nil, "null"}, {null, "null"}, {true, "true"}, {false, "false"},
    {2, "2"}, {-2, "-2"}, {math.maxinteger, "9223372036854775807"},
    {math.mininteger, "-9223372036854775808"},
    {2.0, "2.0"}, {-0.0, "-0.0"}, {0.1, "0.1"}, {1 / 3, "0.3333333333333333"},
    {1e15, "1e+15"}, {1e300, "1e+300"}, {2 ^ 53, "9007199254740992.0"}, {5e-324, "4.94065645841247e-324"},
    {1 / 0, "null"}, {-1 / 0, "null"}, {0 / 0, "null"},
    {"", '""'}, {"a\"b\\c/d", [["a\"b\\c/d"]]},
    {"\b\f\n\r\t\0\1\31\127", [["\b\f\n\r\t\u0000\u0001\u001f]] .. "\127\""},
    {"é€😀", '"é€😀"'},
    {"a\255b", '"a\u{FFFD}b"'}, {"\226\130", '"\u{FFFD}"'}, {"\192\175", '"\u{FFFD}\u{FFFD}"'},
    {"\237\160\128", '"\u{FFFD}\u{FFFD}\u{FFFD}"'},
    {{}, "{}"}, {arr(), "[]"}, {{1, 2, 3}, "[1,2,3]"}, {arr(1, "x", null), '[1,"x",null]'},
    {setmetatable({1, nil, 3}, json.array_mt), "[1,null,3]"},
    {{a = arr()}, '{"a":[]}'}, {{a = {}}, '{"a":{}}'}, {{[5] = "x"}, '{"5":"x"}'},
    {{[-1] = 1}, '{"-1":1}'}, {{{}}, "[{}]"}, {arr(arr()), "[[]]"},
  }
  for i, c in ipairs(cases) do
    it(("writes case %d as %s"):format(i, c[2]), function()
      local text, err = json.encode(c[1])
      assert.is_nil(err)
      assert.are.equal(c[2], text)
    end)
  end

  local refused = {
    {print, "cannot encode a function"},
    {{f = print}, "cannot encode a function"},
    {io.stdout, "cannot encode a userdata"},
    {coroutine.create(print), "cannot encode a thread"},
    {{[1.5] = 1}, "cannot encode a table key of type float"},
    {{[true] = 1}, "cannot encode a table key of type boolean"},
    {{[{}] = 1}, "cannot encode a table key of type table"},
  }
  for i, c in ipairs(refused) do
    it(("refuses case %d: %s"):format(i, c[2]), function()
      local text, err = json.encode(c[1])
      assert.is_nil(text)
      assert.are.equal(c[2], err)
    end)
  end

  it("refuses cycles and nesting past 1000, without raising", function()
    local t = {}
    t.self = t
    assert.are.same({nil, "cannot encode a table that contains itself"}, {json.encode(t)})
    local a = arr()
    a[1] = {x = a}
    assert.are.same({nil, "cannot encode a table that contains itself"}, {json.encode(a)})
    local deep = {}
    local c = deep
    for _ = 2, 1000 do c[1] = {}; c = c[1] end
    assert.are.equal(("["):rep(999) .. "{}" .. ("]"):rep(999), json.encode(deep))
    c[1] = {}
    assert.are.same({nil, "cannot encode tables nested deeper than 1000"}, {json.encode(deep)})
    local shared = {1}
    assert.are.equal("[[1],[1]]", json.encode({shared, shared}))
  end)

  it("writes objects with every key", function()
    local text = json.encode({a = 1, b = "x", [3] = true, c = arr()})
    local back = json.decode(text)
    assert.is_true(same(back, {a = 1, b = "x", ["3"] = true, c = arr()}), text)
  end)

  it("round-trips values read from text", function()
    for _, s in ipairs({'{"a":[],"b":{},"c":[[],{"d":[]}]}', '[1,2.0,-0.0,"\\u0000",null,true]',
                        '{"big":9223372036854775807,"neg":-9223372036854775808,"f":1e-7}',
                        '[0.1,0.2,0.30000000000000004,123456789.123456789,5e-324,1.7976931348623157e308]'}) do
      local v = assert(json.decode(s))
      local again = assert(json.decode(assert(json.encode(v))))
      assert.is_true(same(v, again), s)
    end
  end)
end)

describe("json.number_text", function()
  local cases = {
    {2, "2"}, {2.0, "2"}, {-2.0, "-2"}, {0.0, "0"}, {-0.0, "-0"}, {0.1, "0.1"},
    {1e15, "1000000000000000"}, {2 ^ 53, "9007199254740992"},
    {-2 ^ 63, "-9223372036854775808"}, {2 ^ 63, "9.223372036854776e+18"},
    {1e300, "1e+300"}, {1.5e-7, "1.5e-07"}, {123456789.125, "123456789.125"},
    {math.maxinteger, "9223372036854775807"}, {math.mininteger, "-9223372036854775808"},
    {1 / 0, "Infinity"}, {-1 / 0, "-Infinity"}, {0 / 0, "NaN"},
  }
  for _, c in ipairs(cases) do
    it(("writes %s %.17g as %s"):format(math.type(c[1]), c[1], c[2]), function()
      assert.are.equal(c[2], json.number_text(c[1]))
    end)
  end

  it("reads back as the same number", function()
    for _, x in ipairs({0.1, 1 / 3, math.pi, 2 ^ -1074, 1.7976931348623157e308, 123.456}) do
      assert.are.equal(x, tonumber(json.number_text(x)))
    end
  end)

  it("raises when given anything but a number", function()
    local ok, err = pcall(json.number_text, "1")
    assert.is_false(ok)
    assert.matches("bad argument #1 to '.*number_text' %(number expected, got string%)", err)
  end)
end)

describe("json.encode called again from a __gc finalizer while it writes", function()
  it("gives both calls their own buffer", function()
    local inner = {}
    local big = {}
    for i = 1, 2000 do big[i] = ("x"):rep(40) .. i end -- 90 KB: the buffer grows, allocations run GC
    local want = json.encode(big)
    collectgarbage("incremental", 1, 1000, 0) -- a collection always running, in tiny steps
    for _ = 1, 60 do
      for _ = 1, 20 do
        setmetatable({}, {__gc = function()
          inner[#inner + 1] = json.encode({a = ("y"):rep(300)})
        end})
      end
      assert.are.equal(want, json.encode(big))
    end
    collectgarbage("incremental", 200, 100, 13) -- Lua 5.4's defaults
    collectgarbage()
    assert.is_true(#inner > 0)
    for _, text in ipairs(inner) do
      assert.are.equal('{"a":"' .. ("y"):rep(300) .. '"}', text)
    end
  end)
end)

describe("json under a locale whose decimal point is a comma", function()
  -- Runs when such a locale is installed (e.g. `localedef -i de_DE -f UTF-8 DIR/de_DE.UTF-8`
  -- and LOCPATH=DIR); strtod and snprintf follow LC_NUMERIC, the codec must not.
  local names = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8"}
  local found
  for _, name in ipairs(names) do
    if os.setlocale(name, "numeric") then found = name; break end
  end
  os.setlocale("C", "numeric")
  local test = found and it or pending
  test("reads and writes '.' whatever the locale", function()
    os.setlocale(found, "numeric")
    local ok, err = pcall(function()
      assert.are.equal(1.5, json.decode("1.5"))
      assert.are.equal(1500.0, json.decode("[1.5e3]")[1])
      assert.are.equal("unexpected data after the value at byte 2", select(2, json.decode("1,5")))
      assert.are.equal("[0.1,2.5,2.0]", json.encode({0.1, 2.5, 2.0}))
      assert.are.equal("1.25", json.number_text(1.25))
    end)
    os.setlocale("C", "numeric")
    assert(ok, err)
  end)
end)
