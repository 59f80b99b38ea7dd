-- etlua.heartbeat: the visibility heartbeat of the SQS source, in one place. While etlua holds
-- messages (the prefetch buffer and the batch being processed and committed), SQS must not hand
-- them to another consumer: once the soonest of them to expire is past half the queue's
-- visibility timeout, every held message gets the full timeout again (ChangeMessageVisibilityBatch,
-- 10 at a time, through etlua.inflight).
--
-- Two callers: the receive loop calls hb:tick(), which only starts the requests (their answers
-- come with the next pump); the commit's wait on Postgres runs hb:commit_hook() (the interval,
-- function and first delay of db:on_wait), which pumps until its requests are answered, since
-- nothing else drives the SQS client while the commit waits.
--
-- A message whose extension SQS refuses (its receipt expired and went to another consumer, or it
-- was deleted meanwhile) is marked `lost` and left out of later extensions and of the release at
-- a stop; it is logged by message id, never by body. The ledger makes a redelivery harmless.
local host = require "etlua.host"

local M = {}

local Heartbeat = {}
Heartbeat.__index = Heartbeat

-- A beat inside the commit waits at most this long for its answers.
M.COMMIT_WAIT_S = 5

-- heartbeat.new{visibility = seconds, held = fn() -> messages, tracker = inflight tracker,
--   pump = fn(timeout_ms), log = logger [, oldest = fn() -> the held message received first, or
--   nil when none is held]} -> hb, or nil when the timeout is too short to beat.
function M.new(o)
  if not o.visibility or o.visibility < 2 then return nil end
  return setmetatable({ vis = o.visibility, held = o.held, oldest = o.oldest, tracker = o.tracker,
    pump = o.pump, log = o.log, extending = 0 }, Heartbeat)
end

-- hb:visible_until(m) -> wall-clock ms at which SQS makes m visible again, as far as we know
-- (commit_hook has the same rule inlined).
function Heartbeat:visible_until(m)
  return m.visible_until_ms or ((m.received_ms or host.now_ms()) + self.vis * 1000)
end

-- hb:due() -> true once a held message is past half its visibility timeout. Looked at no more
-- often than every tenth of the timeout (at most every second): what is held may be large (a
-- long --dry-run keeps all it received), and the receive loop calls this at every pump.
function Heartbeat:due()
  local now, half = host.now_ms(), self.vis * 500
  if self.looked_ms and now - self.looked_ms < math.min(1000, self.vis * 100) then return false end
  self.looked_ms = now
  for _, m in ipairs(self.held()) do
    if not m.lost and not m.extending and self:visible_until(m) - now < half then return true end
  end
  return false
end

function Heartbeat:settled(req, failed, err, code, started_ms)
  self.extending = self.extending - 1
  local refused = {}
  if failed then
    for _, f in ipairs(failed) do
      if f.message then refused[f.message] = true end
      if f.message and not f.message.acked then
        f.message.lost = true
        self.log:warn("visibility extension failed for a message; it may be redelivered and skipped by the ledger",
          { message_id = f.message.id, code = f.code })
      end
    end
  else
    self.log:warn("visibility extension failed; the messages may be redelivered and skipped by the ledger",
      { count = #req.messages, code = code, error = err })
  end
  for _, m in ipairs(req.messages) do
    m.extending = nil
    if failed and not refused[m] then m.visible_until_ms = started_ms + self.vis * 1000 end
  end
  self.extended = (self.extended or 0) + (failed and #req.messages - #failed or 0)
end

-- hb:beat() -> messages whose extension was started (not lost, not already being extended).
function Heartbeat:beat()
  local todo = {}
  for _, m in ipairs(self.held()) do
    if m.receipt and not m.lost and not m.extending and not m.acked then todo[#todo + 1] = m end
  end
  local now = host.now_ms()
  for i = 1, #todo, 10 do
    local chunk = table.move(todo, i, math.min(i + 9, #todo), 1, {})
    for _, m in ipairs(chunk) do m.extending = true end
    self.extending = self.extending + 1
    self.tracker:submit("visibility", chunk, self.vis, function(req, failed, err, code)
      self:settled(req, failed, err, code, now)
    end)
  end
  return #todo
end

-- hb:tick(): from the receive loop; starts a beat when one is due, never waits.
function Heartbeat:tick()
  if self:due() then self:beat() end
end

-- hb:commit_hook() -> interval_s, fn, first_s for db:on_wait: beats every half timeout while the
-- commit waits on Postgres, the first time when the soonest held message is past half its timeout.
function Heartbeat:commit_hook()
  local now, vis_ms, soonest = host.now_ms(), self.vis * 1000, math.huge
  -- Every held message's deadline is at least its receive time plus the timeout (an extension
  -- only moves it later), so when the message received first was never extended, its deadline
  -- is the soonest; else (after a beat) every held message is looked at.
  local first = self.oldest and self.oldest()
  if first and not first.visible_until_ms then
    soonest = (first.received_ms or now) + vis_ms
  else
    local held = self.held()
    if #held == 0 then return nil end
    for i = 1, #held do
      local m = held[i]
      local t = m.visible_until_ms or (m.received_ms or now) + vis_ms
      if t < soonest then soonest = t end
    end
  end
  local function beat()
    self.extended = 0
    local n = self:beat()
    local deadline = host.mono() + M.COMMIT_WAIT_S
    while self.extending > 0 and host.mono() < deadline do self.pump(100) end
    self.log:info("visibility extended while the commit waits",
      { messages = self.extended, of = n, timeout_s = self.vis })
  end
  return self.vis / 2, beat, math.max(0, (soonest - host.now_ms()) / 1000 - self.vis / 2)
end

return M
