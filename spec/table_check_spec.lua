-- etlua.table_check.fits: which existing column type takes what the script's type holds
-- (the queries themselves run against Postgres in tests/integration/errors.sh and sink_spec.lua).
local fits = require("etlua.table_check").fits

describe("table_check.fits", function()
  it("takes the same type", function()
    for _, t in ipairs({ "integer", "date", "character varying(128)", "numeric(10,2)", "text" }) do
      assert.is_true(fits(t, t), t)
    end
  end)

  it("takes a text type where the script makes a number (varchar(32) app_version)", function()
    for _, have in ipairs({ "character varying(32)", "text", "character varying", "character(12)" }) do
      for _, want in ipairs({ "integer", "bigint", "smallint", "numeric", "numeric(10,2)", "double precision" }) do
        assert.is_true(fits(have, want), have .. " for " .. want)
      end
    end
  end)

  it("takes a wider varchar or text, refuses a narrower one", function()
    assert.is_true(fits("character varying(256)", "character varying(128)"))
    assert.is_true(fits("text", "character varying(128)"))
    assert.is_true(fits("character varying", "text"))
    assert.is_false(fits("character varying(16)", "character varying(128)"))
    assert.is_false(fits("character varying(128)", "text"))
  end)

  it("refuses every other difference", function()
    for _, case in ipairs({ { "date", "integer" }, { "integer", "character varying(128)" }, { "bigint", "integer" },
                            { "integer", "bigint" }, { "timestamp without time zone", "timestamp with time zone" },
                            { "character(5)", "character varying(5)" }, { "numeric(5,0)", "integer" } }) do
      assert.is_false(fits(case[1], case[2]), case[1] .. " for " .. case[2])
    end
  end)
end)
