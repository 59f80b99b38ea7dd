-- spec/queue_depth_spec.lua: the queue-depth poll of the SQS source (etlua.queue_depth) on the
-- fake client and clock of spec/fakes.lua: asked with the concurrent call (never the blocking
-- one), at most once per interval, also from the heartbeat of a commit, its answer into
-- telemetry.queue_depth; a failure counted and
-- asked again an interval later; "busy" tried again at the next pump; nothing without metrics or
-- with an interval of 0. Also the reasons known in advance (record) and the pipeline label.
local F = require "spec.fakes"

-- A telemetry that keeps what it is told and says it is serving (or not).
local function fake_telemetry(serving)
  local t = { depths = {}, errors = {} }
  local function noop() end
  setmetatable(t, { __index = function() return noop end })
  t.serving = function() return serving end
  t.queue_depth = function(v, f, d) t.depths[#t.depths + 1] = { v, f, d } end
  t.error = function(kind) t.errors[#t.errors + 1] = kind end
  return t
end

local function with_source(serving, fn)
  local h, tel = F.host(), fake_telemetry(serving)
  F.with({ ["etlua.host"] = h, ["etlua.telemetry"] = tel }, function() fn(require "etlua.source", h, tel) end)
end

local function bodies(n)
  local t = {}
  for i = 1, n do t[i] = '{"n":' .. i .. '}' end
  return t
end

local function open(source, client, interval)
  local log = F.log()
  local src = source.sqs({ queue_url = client.queue_url, receive_concurrency = 2, outage_seconds = 300,
    queue_depth_seconds = interval }, log, function() return client end)
  return src, log
end

describe("queue depth", function()
  it("is asked with the concurrent call, at most once per interval, into the gauge", function()
    with_source(true, function(source, h, tel)
      local c = F.client { bodies = bodies(35), host = h }
      local src = open(source, c, 15)
      local batch = src:next_batch(10, 50, 1)
      assert.equal(10, #batch)
      assert.equal(1, c.calls.start_attributes)
      assert.equal(1, c.calls.attributes) -- only the start-up check of the queue: never blocks
      local d = tel.depths[1] -- answered after the first two receives (20 messages in flight)
      assert.same({ 15, 20, 0 }, d)
      src:ack(batch)
      for _ = 1, 3 do src:ack(src:next_batch(10, 50, 1)) end
      assert.equal(1, c.calls.start_attributes) -- the fake clock has not moved 15 s
      h.advance(15)
      src:pump(0) -- starts the request
      src:pump(0) -- its answer
      assert.equal(2, c.calls.start_attributes)
      assert.equal(1, c.calls.attributes)
      local last = tel.depths[#tel.depths]
      assert.is_true(last[1] < 35, "visible went down after the batches")
    end)
  end)

  it("is asked from the heartbeat while a commit waits on Postgres", function()
    with_source(true, function(source, h, tel)
      local c = F.client { bodies = bodies(25), host = h, visibility = 10 }
      local src = open(source, c, 5)
      local batch = src:next_batch(10, 0, 1)
      assert.equal(10, #batch)
      local asked = c.calls.start_attributes
      local _, beat = src:commit_hook() -- what db:on_wait runs during the commit
      h.advance(6)
      beat()
      assert.equal(asked + 1, c.calls.start_attributes)
      assert.same({ 5, 20, 0 }, tel.depths[#tel.depths]) -- two receives of 10 held, in flight
    end)
  end)

  it("counts a failed answer and asks again one interval later", function()
    with_source(true, function(source, h, tel)
      local c = F.client { bodies = bodies(5), host = h }
      c.answer_faults.attributes = { { err = "SQS GetQueueAttributes: throttled", code = "throttled" } }
      local src, log = open(source, c, 10)
      src:next_batch(5, 50, 1)
      assert.same({ "sqs_attributes" }, tel.errors)
      assert.equal(1, log:count("queue depth not known; asking again later"))
      assert.equal(0, #tel.depths)
      h.advance(5)
      src:pump(0)
      assert.equal(1, c.calls.start_attributes)
      h.advance(6)
      src:pump(0)
      src:pump(0)
      assert.equal(2, c.calls.start_attributes)
      assert.equal(1, #tel.depths)
    end)
  end)

  it("tries again at the next pump when every slot is busy", function()
    with_source(true, function(source, h, tel)
      local c = F.client { bodies = bodies(3), host = h }
      c.start_faults.start_attributes = { { nil, "every request slot is busy", "busy" } }
      local src = open(source, c, 15)
      src:pump(0)
      assert.equal(1, c.calls.start_attributes)
      assert.equal(0, #tel.errors)
      src:pump(0)
      src:pump(0)
      assert.equal(2, c.calls.start_attributes)
      assert.equal(1, #tel.depths)
    end)
  end)

  it("is never asked without metrics, or with an interval of 0", function()
    with_source(false, function(source, h)
      local c = F.client { bodies = bodies(3), host = h }
      local src = open(source, c, 15)
      src:next_batch(3, 50, 1)
      assert.is_nil(c.calls.start_attributes)
    end)
    with_source(true, function(source, h)
      local c = F.client { bodies = bodies(3), host = h }
      local src = open(source, c, 0)
      src:next_batch(3, 50, 1)
      assert.is_nil(c.calls.start_attributes)
    end)
  end)
end)

describe("reasons known in advance", function()
  it("are etlua's own and one per rule, not the script's validate reasons", function()
    local record = require "etlua.record"
    local mask = require "etlua.mask"
    local p = record.new({
      table = "t", columns = { "a" }, create_table = "CREATE TABLE IF NOT EXISTS %s (a text)",
      validate = function() return false, "custom_reason" end,
      transform = function(r) return { a = r.a } end,
    }, { masker = mask.new(string.rep("k", 32)),
         rules = { { name = "has_a", check = function(r) return r.a ~= nil end } } })
    assert.same({ "invalid_json", "not_object", "script_error", "script_timeout", "db_refused", "rule:has_a" },
      p:reasons())
  end)
end)

describe("the pipeline label", function()
  it("is the script's file name without .lua", function()
    local telemetry = require "etlua.telemetry"
    assert.equal("login_etl", telemetry.pipeline_of("scripts/login_etl.lua"))
    assert.equal("purchases_etl", telemetry.pipeline_of("/opt/etl/purchases_etl.lua"))
    assert.equal("x.v2", telemetry.pipeline_of("x.v2.lua"))
    assert.equal("etlua", telemetry.pipeline_of(nil))
  end)
end)
