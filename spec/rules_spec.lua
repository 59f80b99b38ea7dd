-- The example rule files in scripts/rules/, loaded as etlua loads them (--rules scripts/rules),
-- run through the real record path after the built-in validation.
local H = require "spec.helper"

local rules = H.record.load_rules(H.ROOT .. "scripts/rules")
local p = H.processor({ rules = rules })
local function run(fields) return p:process(H.body(fields), H.META) end

describe("scripts/rules", function()
  it("loads in name order", function()
    assert.are.same({ "known_device_type", "locale_code" }, { rules[1].name, rules[2].name })
  end)

  it("known_device_type: android, ios and web pass; others are rejected with a detail", function()
    for _, t in ipairs({ "android", "ios", "web" }) do assert.truthy(run({ device_type = t }).row, t) end
    local r = H.reject(run({ device_type = "toaster" }))
    assert.are.equal("rule:known_device_type", r.reason)
    assert.are.equal("device_type is not one of android, ios, web", r.detail)
    assert.truthy(run({ device_type = H.null }).row)
  end)

  it("locale_code: two capital letters pass; others are rejected", function()
    assert.truthy(run({ locale = "RU" }).row)
    assert.truthy(run({ locale = H.null }).row)
    for _, l in ipairs({ "ru", "ru_RU", "日本", "R" }) do
      assert.are.equal("rule:locale_code", H.reject(run({ locale = l })).reason, l)
    end
  end)

  it("runs after the built-in validation", function()
    assert.are.equal("invalid_device_type", H.reject(run({ device_type = 5 })).reason)
  end)
end)
