-- spec/ledger_spec.lua: the parts of etlua.ledger that need no Postgres: how long an entry lives,
-- the partition width, the queue's recorded name, and the order of entry keys. (The ledger in
-- Postgres: tests/integration/ledger_spec.lua.)
local ledger = require "etlua.ledger"

local function logger()
  local lines = {}
  return { warn = function(_, msg) lines[#lines + 1] = msg end, lines = lines }
end

describe("etlua.ledger retention", function()
  it("is the queue's retention plus the margin, or the --input default", function()
    assert.are.equal(345600 + 3600, ledger.retention(345600, nil))
    assert.are.equal(60 + 3600, ledger.retention(60, nil))
    assert.are.equal(ledger.INPUT_RETENTION, ledger.retention(nil, nil))
    assert.are.equal(4 * 86400 + 3600, ledger.INPUT_RETENTION)
  end)

  it("takes ETLUA_LEDGER_RETENTION as it is, warning on one line when shorter than the queue's", function()
    local log = logger()
    assert.are.equal(60, ledger.retention(345600, 60, log))
    assert.are.equal(1, #log.lines)
    assert.truthy(log.lines[1]:find("ETLUA_LEDGER_RETENTION=60", 1, true))
    assert.is_nil(log.lines[1]:find("\n", 1, true))
    assert.are.equal(400000, ledger.retention(345600, 400000, log))
    assert.are.equal(90, ledger.retention(nil, 90, log))
    assert.are.equal(1, #log.lines)
  end)

  it("picks a partition width of at most an eighth of the retention (60 s at least, a day at most)", function()
    assert.are.equal(43200, ledger.width_for(4 * 86400 + 3600))
    assert.are.equal(86400, ledger.width_for(14 * 86400 + 3600))
    assert.are.equal(60, ledger.width_for(60))
    assert.are.equal(3600, ledger.width_for(8 * 3600))
  end)
end)

describe("etlua.ledger names and keys", function()
  it("records a queue URL by its path, and every --input run as input", function()
    assert.are.equal("123456789012/login-queue",
                     ledger.queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/login-queue"))
    assert.are.equal("000000000000/login-queue", ledger.queue_name("http://localhost:4566/000000000000/login-queue"))
    assert.are.equal("input", ledger.queue_name("input:/data/x.jsonl"))
    assert.are.equal("input", ledger.queue_name("input:-"))
  end)
end)
