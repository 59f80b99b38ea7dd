-- spec/purchases_etl_spec.lua: scripts/purchases_etl.lua through etlua.testing (the same loader,
-- decoder, masking and row building as a real run): fan-out, the SNS envelope, masking of a
-- nested path, drops, typed values, and each rule's reject.
local testing = require "etlua.testing"
local H = require "spec.helper"
local codec = require "etlua.codec"

local pipeline = testing.load("scripts/purchases_etl.lua")

local event = H.purchase_event

local function sns(message, id)
  return codec.encode({
    Type = "Notification", MessageId = id or "6f1c2a4e-sns-0001",
    TopicArn = "arn:aws:sns:us-east-1:000000000000:purchases", Subject = codec.null,
    Message = type(message) == "string" and message or codec.encode(message),
    Timestamp = "2024-05-01T12:30:46.000Z",
  })
end

local function reason(over) local out = pipeline:run(event(over)); return out.reject and out.reject.reason end

describe("purchases_etl: rows", function()
  it("writes one purchases row and one purchase_items row per item", function()
    local out = pipeline:run(event())
    assert.is_nil(out.reject)
    local p = out.rows.purchases
    assert.are.equal(1, #p)
    assert.are.same({
      order_id = "ord-1001", user_id = "u-17", masked_email = pipeline:mask("alice@example.com"),
      country = "DE", status = "paid", currency = "EUR", total_cents = 12345, item_count = 2,
      tags = '["gift"]', updated_at = "2024-05-01T12:30:45.120Z", event_id = "test-1",
    }, p[1])
    assert.are.equal("integer", math.type(p[1].total_cents))
    local items = out.rows.purchase_items
    assert.are.equal(2, #items)
    assert.are.same({ order_id = "ord-1001", line = 1, sku = "A-1", qty = 2, price_cents = 5000,
                      options = '{"size":"M"}', updated_at = "2024-05-01T12:30:45.120Z" }, items[1])
    assert.is_nil(items[2].options)
  end)

  it("keeps an empty tags array as [] and big amounts exact", function()
    local out = pipeline:run('{"order_id":"o","updated_at":"2024-05-01T00:00:00Z","status":"paid",'
      .. '"user":{"id":"u"},"currency":"EUR","total_cents":9223372036854775807,"tags":[],"items":[]}')
    assert.are.equal("[]", out.rows.purchases[1].tags)
    assert.are.equal(9223372036854775807, out.rows.purchases[1].total_cents)
    assert.are.equal(0, #out.rows.purchase_items)
  end)

  it("fans out 0, 1 and many items", function()
    for _, n in ipairs({ 0, 1, 25 }) do
      local items = {}
      for i = 1, n do items[i] = { sku = "S" .. i, qty = i, price_cents = 1 } end
      local out = pipeline:run(event({ items = items }))
      assert.are.equal(n, #out.rows.purchase_items)
      assert.are.equal(n, out.rows.purchases[1].item_count)
      if n > 0 then assert.are.equal(n, out.rows.purchase_items[n].line) end
    end
  end)

  it("masks the email after lower-casing it; the raw address is nowhere in the rows", function()
    local a = pipeline:run(event()).rows.purchases[1].masked_email
    local b = pipeline:run(event({ user = { id = "u", email = "alice@example.com" } })).rows.purchases[1].masked_email
    assert.are.equal(a, b)
    local out = pipeline:run(event({ user = { id = "u" } }))
    assert.is_nil(out.rows.purchases[1].masked_email)
  end)

  it("drops drafts: no row, no reject", function()
    local out = pipeline:run(event({ status = "draft" }))
    assert.is_true(out.drop)
    assert.is_nil(out.rows)
    assert.is_nil(out.reject)
  end)
end)

describe("purchases_etl: SNS envelope", function()
  it("unwraps a notification: the SNS MessageId is the ledger key and the event_id", function()
    local out = pipeline:run(sns(event(), "sns-42"))
    assert.are.equal("sns-42", out.key)
    assert.are.equal(1714566646000, out.sent_ms)
    assert.are.equal("sns-42", out.rows.purchases[1].event_id)
    assert.are.equal(2, #out.rows.purchase_items)
  end)

  it("takes a body that is not an envelope as the event itself", function()
    local out = pipeline:run(event(), { id = "sqs-9" })
    assert.is_nil(out.key)
    assert.are.equal("sqs-9", out.rows.purchases[1].event_id)
    -- an object with Type but no string Message is not an envelope
    out = pipeline:run(event({ Type = "Notification", Message = 7 }))
    assert.truthy(out.rows)
  end)

  it("rejects a notification whose Message is not a JSON object, keyed by the SNS id", function()
    local out = pipeline:run(sns("not json", "sns-bad"))
    assert.are.equal("invalid_json", out.reject.reason)
    assert.are.equal("sns-bad", out.key)
    assert.are.equal("not_object", pipeline:run(sns("[1,2]")).reject.reason)
  end)

  it("stores the event, not the envelope, with the email masked, in a reject", function()
    local out = pipeline:run(sns(event({ currency = "euro" })))
    assert.are.equal("invalid_currency", out.reject.reason)
    assert.is_nil(out.reject.body:find("Alice@Example.COM", 1, true))
    assert.is_nil(out.reject.body:find("TopicArn", 1, true))
    assert.truthy(out.reject.body:find(pipeline:mask("alice@example.com"), 1, true))
  end)
end)

describe("purchases_etl: rules", function()
  it("rejects each broken field with its reason", function()
    local cases = {
      { { order_id = "" }, "invalid_order_id" }, { { order_id = 5 }, "invalid_order_id" },
      { { order_id = ("x"):rep(65) }, "invalid_order_id" },
      { { updated_at = "2024-05-01 12:30:45" }, "invalid_updated_at" },
      { { updated_at = "2024-05-01T12:30:45" }, "invalid_updated_at" },
      { { updated_at = 1714566645 }, "invalid_updated_at" },
      { { status = "lost" }, "invalid_status" },
      { { user = "u-17" }, "invalid_user" }, { { user = { email = "a@b" } }, "invalid_user" },
      { { user = { id = "u", email = "no-at" } }, "invalid_user" },
      { { user = { id = "u", country = "de" } }, "invalid_user" },
      { { total_cents = -1 }, "invalid_total" }, { { total_cents = 1.5 }, "invalid_total" },
      { { total_cents = "100" }, "invalid_total" },
      { { currency = "eur" }, "invalid_currency" },
      { { items = "A-1" }, "invalid_items" }, { { items = { a = 1 } }, "invalid_items" },
      { { items = { { sku = "A", qty = 0, price_cents = 1 } } }, "invalid_items" },
      { { items = { { sku = "A", qty = 1, price_cents = 1, options = "M" } } }, "invalid_items" },
      { { tags = "gift" }, "invalid_tags" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], reason(c[1]), codec.encode(c[1]))
    end
    assert.is_nil(reason({ updated_at = "2024-05-01T12:30:45+02:00" }))
    assert.is_nil(reason({ total_cents = 0, tags = codec.null }))
  end)
end)
