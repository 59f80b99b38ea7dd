--[[ purchases_etl.lua: a second pipeline, for purchase events published to an SNS topic and
delivered to SQS (raw bodies work too). It shows the parts of the script contract that the
login pipeline does not use (SCRIPTING.md): two outputs with fan-out, upserts ordered by the
event's own time, an SNS envelope, nested pii paths, typed values and a jsonb column.

An event (the SNS Message, or the whole body):

  {"order_id": "ord-1001", "updated_at": "2024-05-01T12:30:45.120Z", "status": "paid",
   "user": {"id": "u-17", "email": "Alice@Example.COM", "country": "DE"},
   "currency": "EUR", "total_cents": 12345, "tags": ["gift"],
   "items": [{"sku": "A-1", "qty": 2, "price_cents": 5000, "options": {"size": "M"}},
             {"sku": "B-7", "qty": 1, "price_cents": 2345}]}

What happens to it:
  * purchases: one row per order_id. The publisher re-sends an order whenever it changes
    (a correction, a new status); the row with the latest updated_at wins, and a late
    redelivery of an older version changes nothing (key order_id, order_by updated_at).
  * purchase_items: one row per element of items, key (order_id, line), line = position
    from 1. A correction rewrites the lines it carries; lines it no longer carries stay (an
    upsert never deletes).
  * user.email is masked (lower-cased first, so Alice@Example.COM and alice@example.com mask
    equal); the raw address is stored nowhere.
  * status "draft" is dropped: no row, no reject; the message is done.
  * anything else that breaks a rule below is a reject in purchases_rejects.
]]

local null = require("cjson").null

-- Library functions this file calls for every message, as locals: a local is found faster
-- than a global. (The checks below are written for the usual case to cost little; the
-- outcome of tricky values is pinned by spec/purchases_etl_outcomes_spec.lua.)
local type, next, ipairs, math_type, tointeger = type, next, ipairs, math.type, math.tointeger

local MAX_ID_CHARS = 64
local STATUSES = { placed = true, paid = true, shipped = true, cancelled = true, draft = true }

local function absent(v) return v == nil or v == null end

local function is_object(v) return type(v) == "table" and v[1] == nil end

-- An array: a table that is empty or has a first element ({} and [] decode alike).
local function is_array(v) return type(v) == "table" and (next(v) == nil or v[1] ~= nil) end

-- A whole number (a JSON integer; an integral float such as 2.0 counts as the integer 2), else
-- nil. (math.type is nil for anything but a number: one call for the usual integer.)
local function whole(v)
  local kind = math_type(v)
  if kind == "integer" then return v end
  if kind == "float" then return tointeger(v) end
  return nil
end

-- A non-empty string of at most MAX_ID_CHARS bytes.
local function is_id(v)
  return type(v) == "string" and v ~= "" and #v <= MAX_ID_CHARS
end

-- "YYYY-MM-DDThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm)": what Postgres' timestamptz reads without
-- guessing. Only the shape is checked here; Postgres refuses a date that does not exist
-- (db_refused).
local function is_timestamp(v)
  if type(v) ~= "string" then return false end
  local rest = v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d(.*)$")
  if not rest then return false end
  local zone = rest:match("^%.%d+(.*)$") or rest      -- after the fraction, when there is one
  return zone == "Z" or zone:match("^[+-]%d%d:%d%d$") ~= nil
end

-- ---- one check per rule: each returns nothing when the field is fine, or a detail ----------

local function check_order_id(v)
  if not is_id(v) then return "order_id must be a non-empty string of at most 64 bytes" end
end

local function check_updated_at(v)
  if not is_timestamp(v) then
    return "updated_at must be an ISO-8601 time with a zone (Z or +hh:mm)"
  end
end

local function check_status(v)
  if not STATUSES[v] then return "status must be placed, paid, shipped, cancelled or draft" end
end

local function check_user(u)
  if not is_object(u) then return "user must be an object" end
  if not is_id(u.id) then return "user.id must be a non-empty string of at most 64 bytes" end
  local email, country = u.email, u.country
  if not absent(email) and (type(email) ~= "string" or not email:find("@", 1, true)) then
    return "user.email must be an address with an @"
  end
  if not absent(country) and (type(country) ~= "string" or not country:match("^%u%u$")) then
    return "user.country must be two capital letters"
  end
end

local function check_total(v)
  v = whole(v)
  if not v or v < 0 then return "total_cents must be a non-negative integer" end
end

local function check_currency(v)
  if type(v) ~= "string" or not v:match("^%u%u%u$") then
    return "currency must be three capital letters"
  end
end

local function check_items(items)
  if not is_array(items) then return "items must be an array" end
  for i, it in ipairs(items) do
    if not is_object(it) then return ("items[%d] must be an object"):format(i) end
    if not is_id(it.sku) then
      return ("items[%d].sku must be a non-empty string of at most 64 bytes"):format(i)
    end
    local qty, price = whole(it.qty), whole(it.price_cents)
    if not qty or qty < 1 then return ("items[%d].qty must be a positive integer"):format(i) end
    if not price or price < 0 then
      return ("items[%d].price_cents must be a non-negative integer"):format(i)
    end
    local options = it.options
    if not absent(options) and not is_object(options) then
      return ("items[%d].options must be an object"):format(i)
    end
  end
end

local function check_tags(v)
  if not absent(v) and not is_array(v) then return "tags must be an array" end
end

-- ---- the script ------------------------------------------------------------------------------

local function optional(v)
  if v == null then return nil end
  return v
end

return {
  outputs = {
    { name = "purchases", table = "purchases",
      columns = { "order_id", "user_id", "masked_email", "country", "status", "currency",
                  "total_cents", "item_count", "tags", "updated_at", "event_id" },
      create_table = [[CREATE TABLE IF NOT EXISTS %s (
        order_id varchar(64) PRIMARY KEY, user_id varchar(64) NOT NULL,
        masked_email varchar(64), country char(2), status varchar(16) NOT NULL,
        currency char(3) NOT NULL, total_cents bigint NOT NULL, item_count integer NOT NULL,
        tags jsonb, updated_at timestamptz NOT NULL, event_id text NOT NULL)]],
      key = { "order_id" }, on_conflict = "update", order_by = "updated_at" },
    { name = "purchase_items", table = "purchase_items",
      columns = { "order_id", "line", "sku", "qty", "price_cents", "options", "updated_at" },
      create_table = [[CREATE TABLE IF NOT EXISTS %s (
        order_id varchar(64) NOT NULL, line integer NOT NULL, sku varchar(64) NOT NULL,
        qty integer NOT NULL, price_cents bigint NOT NULL, options jsonb,
        updated_at timestamptz NOT NULL, PRIMARY KEY (order_id, line))]],
      key = { "order_id", "line" }, on_conflict = "update", order_by = "updated_at" },
  },
  -- rejects_table: the default, purchases_rejects

  pii = { { path = "user.email", canonical = "lower" } },

  envelope = "sns",

  -- The checks in the order they run; the first failure is the reason.
  validate = function(rec)
    local detail = check_order_id(rec.order_id)
    if detail then return false, "invalid_order_id", detail end
    detail = check_updated_at(rec.updated_at)
    if detail then return false, "invalid_updated_at", detail end
    detail = check_status(rec.status)
    if detail then return false, "invalid_status", detail end
    detail = check_user(rec.user)
    if detail then return false, "invalid_user", detail end
    detail = check_total(rec.total_cents)
    if detail then return false, "invalid_total", detail end
    detail = check_currency(rec.currency)
    if detail then return false, "invalid_currency", detail end
    detail = check_items(rec.items)
    if detail then return false, "invalid_items", detail end
    detail = check_tags(rec.tags)
    if detail then return false, "invalid_tags", detail end
    return true
  end,

  transform = function(rec, ctx)
    if rec.status == "draft" then return false end
    local msg = ctx.message
    local items = {}
    for i, it in ipairs(rec.items) do
      items[i] = { order_id = rec.order_id, line = i, sku = it.sku, qty = whole(it.qty),
                   price_cents = whole(it.price_cents), options = optional(it.options),
                   updated_at = rec.updated_at }
    end
    return {
      purchases = {
        order_id = rec.order_id, user_id = rec.user.id,
        masked_email = ctx.masked["user.email"], country = optional(rec.user.country),
        status = rec.status, currency = rec.currency, total_cents = whole(rec.total_cents),
        item_count = #rec.items, tags = optional(rec.tags), updated_at = rec.updated_at,
        -- the SNS MessageId when the event came through SNS, else the SQS message id
        event_id = msg.sns and msg.sns.message_id or msg.id,
      },
      purchase_items = items,
    }
  end,
}
