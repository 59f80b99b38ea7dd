-- etlua.inflight: the SQS requests that settle messages etlua holds (DeleteMessageBatch after a
-- commit, ChangeMessageVisibilityBatch for the heartbeat and for the release at a stop), from
-- start to answer. One state machine for every kind of request:
--
--   waiting (for a free request slot, or for its retry time) -> in flight -> settled
--
-- Nothing here sleeps or waits: submit() starts a request at once when it can, tick() starts the
-- waiting ones whose time has come, and settle() takes the client's answers (c:poll records). A
-- request that failed with a passing code (throttled, server, timeout, network) is retried at a
-- scheduled time, with capped exponential backoff and jitter, up to retry.attempts; any other
-- failure is final. Every request ends with exactly one call of its callback:
--   on_settled(request, failed, err, code)
--     failed: array of {message =, code =} for the entries SQS refused (empty when all passed),
--             or nil when the whole request failed for good (err, code say why).
--
-- Client codes: "busy" (every request slot of the client is taken) means "start it later", once
-- a request in flight has finished. With the client's number of slots known, a request is not
-- even tried while they are all taken (t:room()): a try builds the whole request only to drop
-- it, and the source's loop, which waits on the answers, would try again at every round.
-- "client" is a real error (a request that cannot be built or signed): final at once, never
-- retried in a loop.
local host = require "etlua.host"
local retry = require "etlua.retry"

local M = {}

-- kind -> the client method that starts it.
local KINDS = {
  delete = { start = "start_delete_batch" },
  visibility = { start = "start_change_visibility_batch" },
}


local Tracker = {}
Tracker.__index = Tracker

-- inflight.new(client [, slots]) -> tracker. client: an etlua.sqs client (or a fake with the same
-- methods); slots: its max_inflight (nil: unknown, every start is tried).
function M.new(client, slots)
  return setmetatable({ client = client, slots = slots, flying = {}, nflying = 0, waiting = {} }, Tracker)
end

-- t:room() -> false when every request slot of the client is taken (c:pending(): requests in
-- flight and answers not yet polled; a slot frees only when a poll collects its answer).
function Tracker:room()
  return not self.slots or self.client:pending() < self.slots
end

-- t:submit(kind, messages, arg, on_settled): one request for up to 10 messages (each with a
-- receipt). kind "delete", or "visibility" with arg = the new timeout in seconds.
function Tracker:submit(kind, messages, arg, on_settled)
  assert(KINDS[kind], "inflight: unknown kind")
  assert(#messages >= 1 and #messages <= 10, "inflight: 1 to 10 messages a request")
  local req = { kind = kind, messages = messages, arg = arg, on_settled = on_settled, attempt = 1 }
  if #self.waiting > 0 or not self:room() then    -- keep the order: behind those already waiting
    req.due = 0
    self.waiting[#self.waiting + 1] = req
    return
  end
  self:launch(req)
end

-- Starts req now. Returns false when the client had no free slot (req is then waiting).
-- The messages go to the client as they are, taken by position: a batch entry's id is its
-- position as text ("1".."10"), which settle maps a failed entry back by (no table of
-- {id=, receipt=} is made for each message).
function Tracker:launch(req)
  local start = self.client[KINDS[req.kind].start]
  local token, err, code
  if req.kind == "visibility" then
    token, err, code = start(self.client, req.messages, req.arg, true)
  else
    token, err, code = start(self.client, req.messages, true)
  end
  if token then
    self.flying[token] = req
    self.nflying = self.nflying + 1
    return true
  end
  if code == "busy" then
    req.due = 0   -- as soon as a slot frees
    table.insert(self.waiting, 1, req)
    return false
  end
  self:failed(req, err, code)
  return true
end

-- A request that failed as a whole: scheduled again while a later attempt can cure it.
function Tracker:failed(req, err, code)
  if retry.retryable(code) and req.attempt < retry.attempts then
    req.attempt = req.attempt + 1
    req.due = host.mono() + retry.delay(req.attempt - 1)
    self.waiting[#self.waiting + 1] = req
    if self.on_retry then self.on_retry(req, err, code) end
    return
  end
  req.on_settled(req, nil, err, code)
end

-- t:tick(): starts the waiting requests whose time has come, in order, until the client is full.
function Tracker:tick()
  if #self.waiting == 0 then return end
  local now, keep = host.mono(), {}
  local full = false
  for _, req in ipairs(self.waiting) do
    if not full and req.due <= now and not self:room() then full = true end
    if full or req.due > now then
      keep[#keep + 1] = req
    else
      self.waiting = keep   -- launch may put req back (at the front of keep)
      if not self:launch(req) then full = true end
      keep = self.waiting
    end
  end
  self.waiting = keep
end

-- t:settle(done) -> true when done (a c:poll record) answered one of this tracker's requests.
function Tracker:settle(done)
  local req = self.flying[done.token]
  if not req then return false end
  self.flying[done.token] = nil
  self.nflying = self.nflying - 1
  if not done.result then
    self:failed(req, done.err, done.code)
    return true
  end
  local failed = {}
  for _, f in ipairs(done.result) do
    failed[#failed + 1] = { message = req.messages[tonumber(f.id)], code = f.code }
  end
  req.on_settled(req, failed)
  return true
end

-- t:next_due() -> seconds until the first waiting request is due (0: now), or nil when none waits.
function Tracker:next_due()
  local first
  for _, req in ipairs(self.waiting) do
    if not first or req.due < first then first = req.due end
  end
  return first and math.max(0, first - host.mono()) or nil
end

-- t:idle() -> true when nothing is in flight or waiting; t:flying_count() -> requests in flight.
function Tracker:idle() return self.nflying == 0 and #self.waiting == 0 end
function Tracker:flying_count() return self.nflying end

return M
