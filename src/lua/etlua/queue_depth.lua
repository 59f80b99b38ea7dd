-- etlua.queue_depth: the queue's depth by state for the etlua_queue_messages gauge, so a stalled
-- consumer can be told from an idle one (messages waiting, no commit). SQS's approximations:
--   visible   ApproximateNumberOfMessages            waiting to be received
--   in_flight ApproximateNumberOfMessagesNotVisible  received by some consumer, not yet deleted
--   delayed   ApproximateNumberOfMessagesDelayed     sent with a delay, not yet visible
-- Asked every ETLUA_QUEUE_DEPTH_SECONDS (0: never) while metrics are served, with
-- GetQueueAttributes on a request slot of the source's client (c:start_attributes): the answer
-- comes back through the same poll as the receives and deletes, so the loop never waits for it.
-- The source calls d:tick() on each pump and d:settle(done) with the answer; between pumps (a
-- long commit) nothing is asked and the gauge keeps its last values. A failed request keeps the
-- last values too, counts etlua_errors_total{kind="sqs_attributes"} and is asked again one
-- interval later. Nothing of this exists for --input.
local host = require "etlua.host"
local telemetry = require "etlua.telemetry"

local M = {}

local NAMES = { "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed" }

local Depth = {}
Depth.__index = Depth

-- new(client, interval_s, log) -> poller, or nil when there is nothing to do (no interval, or
-- metrics not served). The first request goes out on the first tick.
function M.new(client, interval_s, log)
  if not interval_s or interval_s <= 0 or not telemetry.serving() then return nil end
  return setmetatable({ client = client, interval = interval_s, log = log, due = 0 }, Depth)
end

-- tick(): starts the request when it is due and none is in flight; never waits. "busy" (every
-- slot taken): tried again on the next tick.
function Depth:tick()
  if self.token then return end
  local now = host.mono()
  if now < self.due then return end
  local token, err, code = self.client:start_attributes(NAMES)
  if not token then
    if code ~= "busy" then self:failed(err, code, now) end
    return
  end
  self.token, self.due = token, now + self.interval
end

function Depth:failed(err, code, now)
  self.due = now + self.interval
  telemetry.error("sqs_attributes")
  self.log:warn("queue depth not known; asking again later",
    { code = code, error = err, retry_in_s = self.interval })
end

-- settle(done): the answer ({token, kind = "attributes", result | err, code}) -> the gauge.
function Depth:settle(done)
  if done.token ~= self.token then return end
  self.token = nil
  if not done.result then return self:failed(done.err, done.code, host.mono()) end
  local r = done.result
  telemetry.queue_depth(tonumber(r.ApproximateNumberOfMessages) or 0,
    tonumber(r.ApproximateNumberOfMessagesNotVisible) or 0,
    tonumber(r.ApproximateNumberOfMessagesDelayed) or 0)
end

return M
