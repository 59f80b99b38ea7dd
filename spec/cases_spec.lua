-- spec/cases_spec.lua: every line of spec/data/cases.jsonl, the contract's own cases: accepts
-- give exactly the expected row (masks with the contract's test key), rejects are rejects.
local H = require "spec.helper"

-- The reason each reject case must get, by its note.
local REASON = {
  ["wrong message format"] = "invalid_user_id",
  ["not JSON"] = "invalid_json",
  ["JSON array"] = "not_object",
  ["JSON string"] = "not_object",
  ["truncated JSON"] = "invalid_json",
  ["empty user_id"] = "invalid_user_id",
  ["user_id longer than 128"] = "invalid_user_id",
  ["unparseable app_version"] = "invalid_app_version",
  ["invalid IPv4"] = "invalid_ip",
  ["device_type longer than 32"] = "invalid_device_type",
  ["empty device_id"] = "invalid_device_id",
}

describe("spec/data/cases.jsonl", function()
  local n = 0
  for line in io.lines(H.ROOT .. "spec/data/cases.jsonl") do
    n = n + 1
    local case = H.cjson.decode(line)
    it(("line %d: %s (%s)"):format(n, case.note, case.expect), function()
      local out = H.run(case.body)
      if case.expect == "accept" then
        local row = H.row(out)
        for col, want in pairs(case.row) do
          if want == H.null then
            assert.is_nil(row[col], col)
          else
            assert.are.equal(want, row[col], col)
          end
        end
        for col in pairs(row) do
          assert.is_true(case.row[col] ~= nil or col == "create_date", "unexpected column " .. col)
        end
        assert.are.equal(H.SENT_DATE, row.create_date)
      else
        assert.are.equal("reject", case.expect)
        local r = H.reject(out)
        assert.are.equal(REASON[case.note] or "a reason for " .. case.note, r.reason)
        assert.is_nil(r.body:find("199.172.111.135", 1, true))
        assert.is_nil(r.body:find("593-47-5928", 1, true))
      end
    end)
  end

  it("has all its lines", function()
    assert.is_true(n >= 22)
  end)
end)
