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

local MAX_ID_CHARS = 64
local STATUSES = { placed = true, paid = true, shipped = true, cancelled = true, draft = true }

local function absent(v) return v == nil or v == null end

local function is_object(v) return type(v) == "table" and v[1] == nil end

-- A whole number (a JSON integer; an integral float such as 2.0 counts as the integer 2).
local function whole(v)
  return type(v) == "number" and math.tointeger(v) or nil
end

-- "YYYY-MM-DDThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm)": what Postgres' timestamptz reads without
-- guessing. Only the shape is checked here; Postgres refuses a date that does not exist
-- (db_refused).
local function is_timestamp(v)
  if type(v) ~= "string" then return false end
  local rest = v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d(.*)$")
  if not rest then return false end
  rest = rest:gsub("^%.%d+", "", 1)
  return rest == "Z" or rest:match("^[+-]%d%d:%d%d$") ~= nil
end

local function check_items(items)
  if type(items) ~= "table" or (next(items) ~= nil and items[1] == nil) then
    return "items must be an array"
  end
  for i, it in ipairs(items) do
    if not is_object(it) then return ("items[%d] must be an object"):format(i) end
    if type(it.sku) ~= "string" or it.sku == "" or #it.sku > MAX_ID_CHARS then
      return ("items[%d].sku must be a non-empty string of at most 64 bytes"):format(i)
    end
    local qty, price = whole(it.qty), whole(it.price_cents)
    if not qty or qty < 1 then return ("items[%d].qty must be a positive integer"):format(i) end
    if not price or price < 0 then
      return ("items[%d].price_cents must be a non-negative integer"):format(i)
    end
    if not absent(it.options) and not is_object(it.options) then
      return ("items[%d].options must be an object"):format(i)
    end
  end
end

-- The checks in the order they run: reason, and a function returning a detail when it fails.
local CHECKS = {
  { "invalid_order_id", function(r)
      local v = r.order_id
      if type(v) ~= "string" or v == "" or #v > MAX_ID_CHARS then
        return "order_id must be a non-empty string of at most 64 bytes"
      end
    end },
  { "invalid_updated_at", function(r)
      if not is_timestamp(r.updated_at) then
        return "updated_at must be an ISO-8601 time with a zone (Z or +hh:mm)"
      end
    end },
  { "invalid_status", function(r)
      if not STATUSES[r.status] then
        return "status must be placed, paid, shipped, cancelled or draft"
      end
    end },
  { "invalid_user", function(r)
      local u = r.user
      if not is_object(u) then return "user must be an object" end
      if type(u.id) ~= "string" or u.id == "" or #u.id > MAX_ID_CHARS then
        return "user.id must be a non-empty string of at most 64 bytes"
      end
      if not absent(u.email) and (type(u.email) ~= "string" or not u.email:find("@", 1, true)) then
        return "user.email must be an address with an @"
      end
      if not absent(u.country) and (type(u.country) ~= "string" or not u.country:match("^%u%u$")) then
        return "user.country must be two capital letters"
      end
    end },
  { "invalid_total", function(r)
      local v = whole(r.total_cents)
      if not v or v < 0 then return "total_cents must be a non-negative integer" end
    end },
  { "invalid_currency", function(r)
      if type(r.currency) ~= "string" or not r.currency:match("^%u%u%u$") then
        return "currency must be three capital letters"
      end
    end },
  { "invalid_items", function(r) return check_items(r.items) end },
  { "invalid_tags", function(r)
      if not absent(r.tags) and (type(r.tags) ~= "table" or (next(r.tags) ~= nil and r.tags[1] == nil)) then
        return "tags must be an array"
      end
    end },
}

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

  validate = function(rec)
    for i = 1, #CHECKS do
      local detail = CHECKS[i][2](rec)
      if detail then return false, CHECKS[i][1], detail end
    end
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
