-- spec/helper.lua: shared set-up for the specs: the real etlua.mask (build/etlua.so), the
-- default script, the contract's test key, small builders for message bodies, a temporary directory.
local H = {}

H.KEY = "etlua-test-key-0123456789abcdef0123456789"
H.mask = require "etlua.mask"
H.record = require "etlua.record"
H.cjson = require "cjson"
H.null = H.cjson.null
H.hasher = H.mask.new(H.KEY)

-- The repository root, from where this file lives (works for relative and absolute LUA_PATH).
local src = debug.getinfo(1, "S").source
H.ROOT = src:match("^@(.*)spec/helper%.lua$") or "./"
if H.ROOT == "" then H.ROOT = "./" end

function H.load_script()
  return dofile(H.ROOT .. "scripts/login_etl.lua")
end
H.script = H.load_script()

H.COL = {}
for i, name in ipairs(H.script.columns) do H.COL[name] = i end

-- sent 2023-11-14T22:13:20Z, received 2020-09-13T12:26:40Z
H.META = {id = "m-1", sent_ms = 1700000000000, received_ms = 1600000000000}
H.SENT_DATE = "2023-11-14"
H.RECEIVED_DATE = "2020-09-13"

function H.hex(s) return H.hasher:hex(s) end

function H.processor(opts)
  opts = opts or {}
  opts.masker = opts.masker or H.hasher
  return H.record.new(opts.script or H.script, opts)
end

local default = H.processor()

-- Removes a field when given as an override.
H.MISSING = setmetatable({}, {__tostring = function() return "MISSING" end})

-- The take-home's sample event with fields overridden (H.MISSING removes one).
function H.event(over)
  local t = {user_id = "424cdd21-063a-43a7-b91b-7ca1a833afae", app_version = "2.3.0",
             device_type = "android", ip = "199.172.111.135", locale = "RU",
             device_id = "593-47-5928"}
  for k, v in pairs(over or {}) do
    if v == H.MISSING then t[k] = nil else t[k] = v end
  end
  return t
end

function H.body(over) return H.cjson.encode(H.event(over)) end

-- Processes a body (string) or an event override table with the default processor.
function H.run(body_or_over, meta, p)
  local body = body_or_over
  if type(body) ~= "string" then body = H.body(body_or_over) end
  return (p or default):process(body, meta or H.META)
end

-- The row of an outcome as a map column -> value (fails the test when it is a reject).
function H.row(out)
  assert(out.row, out.reject and ("rejected: " .. out.reject.reason .. ": " .. out.reject.detail)
         or "dropped")
  local row = out.row
  local m = {}
  for name, i in pairs(H.COL) do m[name] = row[i] end
  return m
end

-- The reject of an outcome (fails the test when it is a row).
function H.reject(out)
  assert(out.reject, "expected a reject, got a row")
  assert(out.row == nil and out.rows == nil)
  return out.reject
end

function H.reason(body_or_over, meta)
  local out = H.run(body_or_over, meta)
  return out.reject and out.reject.reason or "accepted"
end

-- The sample event of scripts/purchases_etl.lua's header, a fresh table each call, with the
-- fields of `over` replacing its own.
function H.purchase_event(over)
  local e = {
    order_id = "ord-1001", updated_at = "2024-05-01T12:30:45.120Z", status = "paid",
    user = { id = "u-17", email = "Alice@Example.COM", country = "DE" },
    currency = "EUR", total_cents = 12345, tags = { "gift" },
    items = { { sku = "A-1", qty = 2, price_cents = 5000, options = { size = "M" } },
              { sku = "B-7", qty = 1, price_cents = 2345 } },
  }
  for k, v in pairs(over or {}) do e[k] = v end
  return e
end

-- A fresh empty directory (a spec's before_each), and its removal with what it holds (after_each).
function H.temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  return dir
end

function H.remove_dir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

return H
