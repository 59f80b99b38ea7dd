-- spec/pii_spec.lua: etlua.pii — the pii declaration (paths, canonical forms, errors), the masks
-- of one record, and the same masks reaching ctx.masked, the rows and the reject body.
local H = require "spec.helper"
local pii = require "etlua.pii"

local hex = H.hex

describe("pii.compile", function()
  it("takes strings and {path, canonical} entries", function()
    local spec = pii.compile({{path = "ip", canonical = "ip"}, "device_id", "user.email",
                              {path = "contacts[].phone", canonical = "trim"}})
    assert.are.equal(4, #spec.entries)
    assert.are.same({"ip", "device_id", "email", "phone"}, spec.fields)
    assert.are.equal("ip", spec.field_canonical.ip)
    assert.are.equal(false, spec.field_canonical.device_id)
    assert.are.same({{name = "contacts", each = true}, {name = "phone", each = false}},
                    spec.entries[4].segments)
  end)

  it("takes nil as no pii", function()
    assert.are.equal(0, #pii.compile(nil).entries)
  end)

  it("refuses a bad entry with one line naming it", function()
    local cases = {
      {{42}, "pii%[1%]: must be a path string"},
      {{"ip", {path = "x", canonical = "upper"}}, "pii%[2%]: canonical must be"},
      {{""}, "pii%[1%]: the path is empty"},
      {{"a..b"}, "pii%[1%]: \"a..b\" is not a path"},
      {{"a[0].b"}, "is not a path"},
      {{{canonical = "ip"}}, "pii%[1%]: must be a path string"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(pii.compile, c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2]), tostring(err))
      assert.is_nil(tostring(err):find("\n"))
    end
    assert.has_error(function() pii.compile("ip") end, "pii must be a list of paths")
  end)

  it("record.new reports a bad pii entry as a script error", function()
    local script = H.load_script()
    script.pii = {{path = "ip", canonical = "nope"}}
    local ok, err = pcall(H.record.new, script, {masker = H.hasher})
    assert.is_false(ok)
    local line = type(err) == "table" and err.user_error or tostring(err)
    assert.truthy(line:find("pii[1]: canonical must be", 1, true), line)
    script.pii = {"a..b"}
    ok, err = pcall(H.record.new, script, {masker = H.hasher})
    assert.is_false(ok)
    line = type(err) == "table" and err.user_error or tostring(err)
    assert.truthy(line:find('pii[1]: "a..b" is not a path', 1, true), line)
  end)
end)

describe("spec:masks", function()
  local spec = pii.compile({{path = "ip", canonical = "ip"}, "device_id",
                            {path = "user.email", canonical = "lower"},
                            {path = "contacts[].phone", canonical = "trim"}, "tags[]"})

  it("masks nested paths, list elements, canonical forms first", function()
    local rec = {ip = "2001:DB8::0:1", device_id = "d-1", user = {email = "Bob@Example.COM"},
                 contacts = {{phone = " 555-1 "}, {name = "no phone"}, {phone = "555-2"}},
                 tags = {"t1", H.null, "t2"}}
    local masked, raws, plain = spec:masks(rec, H.hasher)
    assert.are.equal(hex("2001:db8::1"), masked.ip)
    assert.are.equal(hex("d-1"), masked.device_id)
    assert.are.equal(hex("bob@example.com"), masked["user.email"])
    assert.are.same({hex("555-1"), hex("555-2")}, masked["contacts[].phone"])
    assert.are.same({hex("t1"), hex("t2")}, masked["tags[]"])
    -- raws: raw and canonical text, each mapping to the mask
    for _, s in ipairs({"2001:DB8::0:1", "2001:db8::1", "d-1", "Bob@Example.COM", "bob@example.com",
                        " 555-1 ", "555-1", "555-2", "t1", "t2"}) do
      assert.truthy(raws[s], s)
    end
    assert.are.equal(hex("2001:db8::1"), raws["2001:DB8::0:1"])
    assert.are.equal("2001:db8::1", plain.ip)
    assert.are.same({"555-1", "555-2"}, plain["contacts[].phone"])
    assert.are.same({["2001:db8::1"] = hex("2001:db8::1"), ["555-1"] = hex("555-1"),
                     ["555-2"] = hex("555-2"), ["d-1"] = hex("d-1"), t1 = hex("t1"), t2 = hex("t2"),
                     ["bob@example.com"] = hex("bob@example.com")},
                    pii.by_text(select(2, spec:row_masks(rec, H.hasher))))
    local listed = {}
    for _, s in ipairs(raws) do listed[s] = true end
    assert.truthy(listed["Bob@Example.COM"] and listed["bob@example.com"])
  end)

  it("leaves absent and null values out", function()
    local masked, raws = spec:masks({ip = H.null, user = "not an object", contacts = {}}, H.hasher)
    assert.are.same({}, masked)
    assert.are.equal(0, #raws)
    assert.are.same({}, (spec:masks(nil, H.hasher)))
  end)

  it("masks values that are not strings by their JSON text", function()
    local masked, raws = spec:masks({device_id = 5935928, ip = true, tags = "solo"}, H.hasher)
    assert.are.equal(hex("5935928"), masked.device_id)
    assert.are.equal(hex("true"), masked.ip)
    assert.are.same({hex("solo")}, masked["tags[]"]) -- a scalar where a list was declared
    assert.are.equal(hex("5935928"), raws["5935928"])
    assert.is_nil(raws["true"])
  end)

  it("an ip that is not a valid address is masked as it is", function()
    assert.are.equal(hex("999.1.1.1"), (spec:masks({ip = "999.1.1.1"}, H.hasher)).ip)
  end)

  it("keeps empty strings out of the raw values", function()
    local masked, raws = spec:masks({device_id = ""}, H.hasher)
    assert.are.equal(hex(""), masked.device_id)
    assert.are.equal(0, #raws)
  end)

  it("row_masks: the masks of masks(), and their triples no change to the masks reaches", function()
    local recs = {
      {ip = "2001:DB8::0:1", device_id = "d-1", user = {email = "Bob@Example.COM"},
       contacts = {{phone = " 555-1 "}, {name = "no phone"}, {phone = "555-2"}}, tags = {"t1", H.null}},
      {device_id = 5935928, ip = true, tags = "solo", user = "not an object"},
      {ip = "999.1.1.1", device_id = "", contacts = {}, user = {email = H.null}},
      {ip = H.null, device_id = {1, 2}, user = {email = 7}},
      {},
    }
    for i, rec in ipairs(recs) do
      local want_masked, _, want_plain = spec:masks(rec, H.hasher)
      local masked, masks = spec:row_masks(rec, H.hasher)
      assert.are.same(want_masked, masked, "record " .. i)
      -- the triples: every masked value once, in the declaration's order, with its text
      local want = {}
      for _, e in ipairs(spec.entries) do
        local m, t = want_masked[e.path], want_plain[e.path]
        if type(m) == "table" then
          for j = 1, #m do table.move({e.path, m[j], t[j]}, 1, 3, #want + 1, want) end
        elseif m then
          table.move({e.path, m, t}, 1, 3, #want + 1, want)
        end
      end
      assert.are.same(want, masks, "record " .. i)
      for path, v in pairs(masked) do
        if type(v) == "table" then v[1] = "changed" end
        masked[path] = "changed"
      end
      masked.extra = "added"
      assert.are.same(want, masks, "record " .. i)
    end
    local masked, masks = spec:row_masks("not a table", H.hasher)
    assert.are.same({{}, {}}, {masked, masks})
  end)

  it("values: the canonical text of every string value, for the vault", function()
    assert.are.same({{"ip", "2001:db8::1"}, {"contacts[].phone", "555-1"}},
                    spec:values({ip = "2001:DB8::1", device_id = 7, contacts = {{phone = "555-1 "}}}))
  end)
end)

describe("the login script's declaration", function()
  it("masks exactly as the rows' masked_ip and masked_device_id", function()
    local spec = pii.compile(H.script.pii)
    for _, ip in ipairs({"199.172.111.135", "2001:0DB8:0:0::1", "::FFFF:10.1.2.3", "fe80::1"}) do
      local row = H.row(H.run({ip = ip, device_id = "dev-" .. ip}))
      local masked = spec:masks({ip = ip, device_id = "dev-" .. ip}, H.hasher)
      assert.are.equal(row.masked_ip, masked.ip, ip)
      assert.are.equal(row.masked_device_id, masked.device_id)
    end
  end)

  it("ctx.masked holds the same masks, for each message", function()
    local script = H.load_script()
    local seen = {}
    script.transform = function(rec, ctx)
      seen[#seen + 1] = {ctx.masked.ip, ctx.masked.device_id, ctx.masked.ip}
      return {user_id = rec.user_id}
    end
    local p = H.processor({script = script})
    p:process(H.body({ip = "2001:DB8::1"}), H.META)
    p:process(H.body({ip = "10.0.0.1", device_id = H.MISSING}), H.META)
    assert.are.same({hex("2001:db8::1"), hex("593-47-5928"), hex("2001:db8::1")}, seen[1])
    assert.are.equal(hex("10.0.0.1"), seen[2][1]) -- a new message, new masks
    assert.is_nil(seen[2][2])                      -- absent: left out
  end)

  it("the reject body carries the same masks", function()
    local r = H.reject(H.run({user_id = "", ip = "2001:DB8::1", device_id = "d-9"}))
    local stored = H.cjson.decode(r.body)
    assert.are.equal(hex("2001:db8::1"), stored.ip)
    assert.are.equal(hex("d-9"), stored.device_id)
  end)

  it("the old shape (plain strings) still works, without canonical form", function()
    local script = H.load_script()
    script.pii = {"ip", "device_id"}
    local p = H.processor({script = script})
    local r = H.reject(p:process(H.body({user_id = "", ip = "2001:DB8::1"}), H.META))
    assert.are.equal(hex("2001:DB8::1"), H.cjson.decode(r.body).ip)
    assert.is_nil(r.body:find("2001:DB8::1", 1, true))
  end)
end)

describe("the PII vault's writer (etlua.pii_vault), from the masks of row_masks", function()
  local pii_vault = require "etlua.pii_vault"
  local cvault = require "etlua.vault"

  it("seals each masked value once under its path and mask, list elements too, rows only", function()
    local key = assert(cvault.key(("ab"):rep(32)))
    local spec = pii.compile({{path = "ip", canonical = "ip"}, {path = "contacts[].phone", canonical = "trim"}})
    local function item(rec, outcome)
      local _, masks = spec:row_masks(rec, H.hasher)
      local it = {masks = masks}
      it[outcome] = true
      return it
    end
    local landed = {
      item({ip = "2001:DB8::1", contacts = {{phone = " 555-1 "}, {phone = "555-2"}}}, "row"),
      item({ip = "2001:db8::1", contacts = {{phone = "555-2"}}}, "rows"), -- all seen before
      item({ip = "10.0.0.9"}, "reject"),                                 -- no rows: not sealed
    }
    local sent
    local db = {exec = function(_, _, ...) sent = {...}; return {} end}
    assert.is_true(pii_vault.writer(key)(db, landed))
    local key_id, m, f, n, c = table.unpack(sent)
    assert.are.equal(key:id(), key_id)
    assert.are.same({hex("2001:db8::1"), hex("555-1"), hex("555-2")}, {table.unpack(m, 1, m.n)})
    assert.are.same({"ip", "contacts[].phone", "contacts[].phone"}, {table.unpack(f, 1, f.n)})
    local opened = {}
    for i = 1, m.n do
      opened[i] = assert(pii_vault.open_row({[key_id] = key}, {masked = m[i], field = f[i], key_id = key_id,
                                            nonce = cvault.fromhex(n[i]), ciphertext = cvault.fromhex(c[i])}))
    end
    assert.are.same({"2001:db8::1", "555-1", "555-2"}, opened)
  end)
end)
