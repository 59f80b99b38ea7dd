-- spec/scrub_spec.lua: the reject scrubber — etlua.scrub (the C scanner) case by case, then the
-- hostile corpus (spec/data/pii_corpus.jsonl) through the real processor with an oracle: no
-- secret of a body appears in its stored body, its detail or its `rejected` log line; then a
-- property test on random bodies; then the time of 1 MiB bodies of every shape.
local H = require "spec.helper"
local scrub = require "etlua.scrub"
local cjson = require "cjson"

local hex = H.hex
local KEYS = {"ip", "device_id", "email"}
local sc = scrub.new(H.hasher, KEYS, {ip = "ip", email = "lower"})

-- ---- the oracle --------------------------------------------------------------------------------

-- A secret made only of lowercase hex digits may appear inside a mask by chance: it is looked for
-- with every run of 64 or more hex digits taken out. Any other secret is looked for as it is.
local function leak_in(text, secrets)
  local stripped
  for _, s in ipairs(secrets) do
    if not s:find("[^0-9a-f]") then
      stripped = stripped or text:gsub("[0-9a-f]+", function(run)
        if #run >= 64 then return "#" end
      end)
      if stripped:find(s, 1, true) then return s end
    elseif text:find(s, 1, true) then
      return s
    end
  end
end

-- The text, and when it is JSON every string in it (keys and values), hold no secret.
local function leak(text, secrets)
  local found = leak_in(text, secrets)
  if found then return found end
  local ok, v = pcall(cjson.decode, text)
  if not ok or type(v) ~= "table" then return nil end
  local stack = {v}
  while #stack > 0 do
    local t = table.remove(stack)
    for k, x in pairs(t) do
      if type(k) == "string" then found = found or leak_in(k, secrets) end
      if type(x) == "string" then found = found or leak_in(x, secrets) end
      if type(x) == "table" then stack[#stack + 1] = x end
    end
    if found then return found end
  end
end

local function is_clean(s)
  return utf8.len(s) ~= nil and not s:find("\0", 1, true)
end

-- The `rejected` log line the runner writes for a reject, in both formats.
local function log_lines(r)
  local lines = {}
  for _, format in ipairs({"text", "json"}) do
    local out = {write = function(_, ...) lines[#lines + 1] = table.concat({...}) end,
                 flush = function() end}
    require("etlua.log").new(format, "info", out)
      :info("rejected", {message_id = "m-1", reason = r.reason, detail = r.detail})
  end
  return lines
end

local function corpus()
  local list = {}
  for line in io.lines(H.ROOT .. "spec/data/pii_corpus.jsonl") do
    local c = cjson.decode(line)
    if c["repeat"] then
      local r = c["repeat"]
      c.body = r.prefix .. r.unit:rep(r.times) .. r.suffix
    end
    list[#list + 1] = c
  end
  return list
end

-- ---- etlua.scrub -------------------------------------------------------------------------------

describe("etlua.scrub: address-shaped text", function()
  local masked = {
    {"10.1.2.3", "10.1.2.3"}, {"x192.168.0.1y", "192.168.0.1"}, {"a 1.2.3.4.", "1.2.3.4"},
    {"2001:db8::1", "2001:db8::1"}, {"2001:DB8::1", "2001:db8::1"},
    {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
    {"2001:db8:0:0:0:0:0:1", "2001:db8::1"}, {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
    {"::FFFF:1.2.3.4", "::ffff:1.2.3.4"}, {"0:0:0:0:0:ffff:1.2.3.4", "::ffff:1.2.3.4"},
    {"fe80::1%eth0", "fe80::1"}, {"[2001:db8::7]:443", "2001:db8::7"}, {"::1", "::1"},
    {"ip:2001:db8::2", "2001:db8::2"}, {"FE80::ABCD:1.", "fe80::abcd:1"},
  }
  for _, c in ipairs(masked) do
    it("masks " .. c[1], function()
      local out = sc:text(c[1])
      assert.truthy(out:find(hex(c[2]), 1, true), out)
      local raw = c[1]:match("[%x:%.]*[:%.][%x:%.]*[%x]")
      assert.is_nil(out:find(raw, 1, true), out)
    end)
  end

  it("keeps times, versions, MAC addresses and plain numbers", function()
    for _, s in ipairs({"12:30:45", "v1.2.3", "00:1a:2b:3c:4d:5e", "3.14", "1234567",
                        "deadbeef", "a:b"}) do
      assert.are.equal(s, sc:text(s))
    end
  end)

  it("masks an invalid address-shaped run by its text", function()
    assert.are.equal(hex("999.1.1.1"), sc:text("999.1.1.1"))
    assert.are.equal(hex("1.2.3.4.5"), sc:text("1.2.3.4.5"))
  end)
end)

describe("etlua.scrub: values after keys naming a pii field", function()
  local cases = {
    {'{"device_id": "d-secret-1"}', "d-secret-1"},
    {"{'device_id': 'd-secret-2'}", "d-secret-2"},
    {'{"device\\u005fid": "d-secret-3"}', "d-secret-3"},
    {'{"\\u0064evice_id":"d-secret-4"}', "d-secret-4"},
    {'{\\"device_id\\": \\"d-secret-5\\"}', "d-secret-5"},
    {'{\\"device\\\\u005fid\\": \\"d-secret-6\\"}', "d-secret-6"},
    {"device_id=d-secret-7&x=1", "d-secret-7"},
    {"DEVICE_ID: d-secret-8, next", "d-secret-8"},
    {'{"device_id" : 12345678}', "12345678"},
    {'{"device_id": "d-secret-9', "d-secret-9"},
    {'{"device_id": "esc \\"q\\" d-secret-10"}', "d-secret-10"},
    {"{'device_id': \"it's d-secret-11\"}", "d-secret-11"},
    {'"x": "open, "device_id": "d-secret-12"}', "d-secret-12"},
    {"device_id => d-secret-13", "d-secret-13"},
    {'{"email": "Bob@X.org"}', "Bob@X.org"},
  }
  for _, c in ipairs(cases) do
    it("masks the value in " .. c[1], function()
      local out = sc:text(c[1])
      assert.is_nil(out:find(c[2], 1, true), out)
    end)
  end

  it("masks with the field's canonical form", function()
    assert.truthy(sc:text('{"ip": "2001:DB8::1"}'):find(hex("2001:db8::1"), 1, true))
    assert.truthy(sc:text('{"email": "Bob@X.org"}'):find(hex("bob@x.org"), 1, true))
    assert.truthy(sc:text('{"device_id": "Dev"}'):find(hex("Dev"), 1, true))
  end)

  it("keeps null, None, booleans and other keys", function()
    for _, s in ipairs({'{"device_id": null}', "{'device_id': None}", '{"ip": true}',
                        '{"user_id": "u-1"}', "android_device_id: x", "ip_count: 3",
                        "device_id must be a string", "ip is not a valid address"}) do
      assert.are.equal(s, sc:text(s))
    end
  end)
end)

describe("etlua.scrub: raw values", function()
  local function pats(list)
    local raws = {}
    for _, s in ipairs(list) do
      raws[#raws + 1] = s
      raws[s] = hex(s)
    end
    return scrub.patterns(raws)
  end

  it("masks every occurrence of any length, in order", function()
    local p = pats({"a1", "Q", "dev-9"})
    assert.are.equal("x" .. hex("a1") .. "y " .. hex("a1") .. hex("a1") .. " " .. hex("Q")
                     .. " (" .. hex("dev-9") .. ")", sc:text("xa1y a1a1 Q (dev-9)", p))
  end)

  it("an overlap becomes one mask, the longest value's", function()
    local p = pats({"abc", "bcde", "c"})
    assert.are.equal("<" .. hex("bcde") .. ">", sc:text("<abcde>", p))
  end)

  it("leaves the text alone when nothing matches (the same string)", function()
    local s = "nothing to see here"
    assert.are.equal(s, sc:text(s, pats({"zzz"})))
  end)

  it("matches after cleaning: a NUL inside a value does not hide it", function()
    assert.are.equal(hex("nul-dev"), sc:text("nul\0-dev", pats({"nul-dev"})))
  end)

  it("refuses misuse", function()
    assert.has_error(function() scrub.patterns({"x"}) end)
    assert.has_error(function() scrub.patterns({1}) end)
    assert.has_error(function() sc:text(nil) end)
    assert.has_error(function() scrub.new(H.hasher, {""}) end)
    assert.has_error(function() scrub.new(H.hasher, {"ip"}, {ip = "upper"}) end)
    assert.has_error(function() scrub.new("not a masker", {"ip"}) end)
  end)

  it("closes twice safely, and refuses use after close", function()
    local s2 = scrub.new(H.hasher, {"ip"})
    local p = pats({"x"})
    s2:close(); s2:close(); p:close(); p:close()
    assert.has_error(function() s2:text("x") end)
    assert.has_error(function() sc:text("x", p) end)
  end)
end)

describe("etlua.scrub.clean", function()
  it("replaces each invalid byte and drops NUL, keeps valid text as it is", function()
    assert.are.equal("a\u{FFFD}b\u{FFFD}\u{FFFD}c", scrub.clean("a\255b\237\160c"))
    assert.are.equal("ab", scrub.clean("a\0b"))
    local s = "日本 😀"
    assert.are.equal(s, scrub.clean(s))
    assert.are.equal("\u{FFFD}\u{FFFD}", scrub.clean("\xC0\xAF")) -- overlong
    assert.are.equal("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}", scrub.clean("\xF4\x90\x80\x80"))
    assert.are.equal("x\u{FFFD}\u{FFFD}", scrub.clean("x\xE2\x82")) -- one per byte
  end)
end)

-- ---- the hostile corpus ------------------------------------------------------------------------

describe("hostile corpus: no raw pii in any stored body, detail or log line", function()
  local p = H.processor()
  for _, c in ipairs(corpus()) do
    it(c.note, function()
      local t0 = os.clock()
      local out = p:process(c.body, H.META)
      local seconds = os.clock() - t0
      local r = H.reject(out)
      if c.reason then assert.are.equal(c.reason, r.reason) end
      for what, text in pairs({body = r.body, detail = r.detail}) do
        assert.is_true(is_clean(text), what .. " is not clean text")
        local found = leak(text, c.secrets)
        assert.is_nil(found, ("%s leaks %q: %s"):format(what, tostring(found), text:sub(1, 300)))
      end
      for _, line in ipairs(log_lines(r)) do
        assert.is_nil(leak_in(line, c.secrets), line:sub(1, 300))
      end
      -- the same masking for a row Postgres refuses (db_refused)
      assert.is_nil(leak(p:stored_body(c.body), c.secrets))
      assert.is_true(seconds < 3, ("%.2f s"):format(seconds))
    end)
  end
end)

describe("rejects of JSON objects", function()
  it("masks declared paths with the canonical form, and keys named like them at any depth", function()
    local r = H.reject(H.run('{"user_id": "", "ip": "2001:DB8::1", "meta": {"device_id": "m-d",'
                             .. ' "list": [{"ip": "fe80::1"}]}}'))
    local stored = cjson.decode(r.body)
    assert.are.equal(hex("2001:db8::1"), stored.ip)
    assert.are.equal(hex("m-d"), stored.meta.device_id)
    assert.are.equal(hex("fe80::1"), stored.meta.list[1].ip)
  end)

  it("stores an object nested to the depth limit", function()
    local body = '{"user_id": "", "device_id": "deep", "d": ' .. ("["):rep(998)
                 .. '"deep at 10.1.2.3"' .. ("]"):rep(998) .. "}"
    local r = H.reject(H.run(body))
    assert.are.equal("invalid_user_id", r.reason)
    assert.is_nil(leak(r.body, {"deep", "10.1.2.3"}))
    assert.truthy(r.body:find(hex("10.1.2.3"), 1, true))
  end)

  it("builds the stored body from the message, not from what a hook did to the record", function()
    local script = H.load_script()
    script.validate = function(rec)
      rec.note, rec.device_id = rec.device_id, nil
      return false, "nope", "moved " .. rec.note
    end
    local r = H.reject(H.processor({script = script}):process(H.body({}), H.META))
    assert.is_nil(r.body:find("593-47-5928", 1, true))
    assert.is_nil(r.detail:find("593-47-5928", 1, true))
    assert.are.equal(hex("593-47-5928"), cjson.decode(r.body).device_id)
  end)

  it("a row Postgres refuses: body and Postgres' error stored without raw pii", function()
    local p = H.processor()
    local body = H.body({device_id = "dv-1"})
    local out = p:process(body, H.META)
    local item = {row = out.row, masks = out.masks,
                  message = {body = body}}
    local stored, detail = p:stored_body(item, 'invalid input syntax for type integer: "dv-1"')
    assert.are.equal('invalid input syntax for type integer: "' .. hex("dv-1") .. '"', detail)
    assert.are.equal(hex("dv-1"), cjson.decode(stored).device_id)
    assert.is_nil(leak(stored, {"dv-1", "199.172.111.135"}))
    assert.are.equal(hex("10.0.0.1") .. " x", select(2, p:stored_body({message = {body = "{"}},
                                                                        "10.0.0.1 x")))
  end)

  it("a reason a script makes up is scrubbed too, without touching the usual ones", function()
    local script = H.load_script()
    script.validate = function(rec) return false, "bad_" .. rec.device_id .. "_from_" .. rec.ip end
    local r = H.reject(H.processor({script = script}):process(H.body({}), H.META))
    assert.are.equal("bad_" .. hex("593-47-5928") .. "_from_" .. hex("199.172.111.135"), r.reason)
    local r2 = H.reject(H.run({user_id = "", device_id = "d", ip = "1.1.1.1"}))
    assert.are.equal("invalid_user_id", r2.reason)
    assert.is_nil(leak(r2.detail, {"d"}))
  end)

  it("masks the record's raw values in details, whatever their length", function()
    local p = H.processor({rules = {{name = "leaky", check = function(rec)
      return false, "device " .. rec.device_id .. " at " .. rec.ip
    end}}})
    local r = H.reject(p:process(H.body({device_id = "a1", ip = "2001:DB8::1"}), H.META))
    assert.are.equal("device " .. hex("a1") .. " at " .. hex("2001:db8::1"), r.detail)
  end)
end)

-- ---- property test -----------------------------------------------------------------------------

describe("property: random bodies with planted pii", function()
  it("never keep a planted value (2000 bodies)", function()
    local p = H.processor()
    local rng = 12345
    local function rand(n) -- a small LCG: the same bodies on every run
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n + 1
    end
    local NOISE = {"{", "}", "[", "]", '"', "'", ":", ",", " ", "=", "\\", "ip", "device_id",
                   "x", "1", ".", "::", "a", "\0", "\255", "null", '"note": "', "\\u005f",
                   "login from ", "12:30", "1.2.3", "\\\""}
    local KEYFORMS = {'"%s": "%s"', "'%s': '%s'", '%s=%s', '"%s" : %s', '\\"%s\\": \\"%s\\"'}
    local NAMES = {"ip", "device_id", "device\\u005fid", "IP", "Device_Id"}
    for n = 1, 2000 do
      local parts, secrets = {}, {}
      for _ = 1, rand(12) do
        local k = rand(10)
        if k <= 6 then
          parts[#parts + 1] = NOISE[rand(#NOISE)]
        elseif k <= 8 then
          local secret = ("s%dq%d"):format(n, rand(1000))
          secrets[#secrets + 1] = secret
          local form = KEYFORMS[rand(#KEYFORMS)]
          -- a key is a word of its own: a separator before it
          parts[#parts + 1] = ({",", " ", "&", "{", ";"})[rand(5)]
          parts[#parts + 1] = form:format(NAMES[rand(#NAMES)], secret)
          parts[#parts + 1] = ({",", " ", "&", "}", ";"})[rand(5)]
        else
          local a = ("%d.%d.%d.%d"):format(rand(255), rand(255), rand(255), rand(255))
          local b = ("2001:db8:%x::%x"):format(rand(65535), rand(65535))
          secrets[#secrets + 1] = a
          secrets[#secrets + 1] = b
          parts[#parts + 1] = " " .. a .. " " .. b .. " "
        end
      end
      local body = table.concat(parts)
      local r = H.reject(p:process(body, H.META))
      assert.is_true(is_clean(r.body))
      local found = leak(r.body, secrets)
      assert.is_nil(found, ("body %q keeps %q: %q"):format(body, tostring(found), r.body))
    end
  end)
end)

-- ---- time --------------------------------------------------------------------------------------

describe("linear time", function()
  it("1 MiB of any shape costs about 8 times 128 KiB", function()
    local p = H.processor()
    local function cost(body)
      local best = math.huge
      for _ = 1, 2 do
        local t0 = os.clock()
        p:process(body, H.META)
        best = math.min(best, os.clock() - t0)
      end
      return best
    end
    -- (every shape is timed in C by tests/c/test_scrub.c; these go through the whole reject path)
    for _, unit in ipairs({"1", ":", "1.2.3.4 ", "'ip': ", "\\\"", "\255"}) do
      local small = ("{\"ip\": \"%s"):format(unit:rep((128 * 1024) // #unit))
      local big = ("{\"ip\": \"%s"):format(unit:rep((1024 * 1024) // #unit))
      local a, b = cost(small), cost(big)
      -- linear is 8x; quadratic would be 64x. Generous for a busy machine.
      assert.is_true(b < 20 * a + 0.05, ("%q: 128 KiB %.4f s, 1 MiB %.4f s"):format(unit, a, b))
    end
  end)
end)
