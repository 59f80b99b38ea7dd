-- etlua.receive_window: how many ReceiveMessage long polls the SQS source keeps in flight, between
-- 1 and a ceiling (ETLUA_RECEIVE_CONCURRENCY). The number that keeps a consumer fed is the rate it
-- consumes times the round trip of a receive, divided by the 10 messages a receive brings at
-- most: a handful on loopback, dozens at tens of milliseconds. Neither is known in advance, so
-- the window follows what the answers and the consumer say:
--
--   grow by one per full and prompt answer (the queue had at least what was asked, and the
--     server was not kept waiting) while the consumer waits for messages (it asked for a batch
--     the buffer did not hold, and the buffer still holds less): every answer of a round trip
--     adds one, so the window doubles each round trip until the consumer stops waiting;
--   shrink by one per empty answer: the queue holds less than the receives ask for (an idle queue
--     ends with one long poll in flight, not the ceiling's worth of empty answers);
--   halve on a late answer, or when the oldest receive in flight is late, at most once a round
--     trip, and start no receive while one is late (prompt and late: against the fastest round
--     trip seen, below): receives waiting behind each other at the server add nothing;
--   shrink by one per batch taken while two more whole batches are still buffered: the prefetch
--     runs ahead of what processing consumes (the runner takes the next batch while the one
--     before commits, so one batch more is what it needs at hand, not a surplus).
--
-- A consumer that starts waiting gets its receives back within a few round trips. The source
-- derives its prefetch limit from the window (two batches plus 10 messages a receive), so memory
-- and the visibility time spent on prefetched messages follow it too.
local M = {}

local Window = {}
Window.__index = Window

-- The round trip of a receive against the fastest seen (the floor): an answer within twice the
-- floor + 50 ms came from a server that was not kept waiting (growing may help); one past four
-- times the floor + 250 ms waited behind the others at the server (more receives would only
-- queue there, and a stop, which cuts a receive after a second, would strand their messages
-- for the visibility timeout).
local PROMPT_FACTOR, PROMPT_S = 2, 0.050
local LATE_FACTOR, LATE_S = 4, 0.250

-- The window a source starts with (or the ceiling when lower): enough for loopback; a farther
-- queue grows it within a few round trips of the first batch.
M.START = 8

-- receive_window.new(ceiling [, opts]) -> window. opts.start: the first size (default START);
-- opts.fixed: the size stays at the ceiling (a FIFO queue, whose receives follow the messages
-- held instead: etlua.source).
function M.new(ceiling, opts)
  assert(math.type(ceiling) == "integer" and ceiling >= 1, "receive_window: ceiling must be an integer >= 1")
  opts = opts or {}
  local size = opts.fixed and ceiling or math.max(1, math.min(ceiling, opts.start or M.START))
  return setmetatable({ ceiling = ceiling, n = size, hungry = false, peak = size, fixed = opts.fixed,
    floor = math.huge }, Window)
end

-- w:size() -> the receives to keep in flight now
function Window:size() return self.n end

local function set(self, n)
  if self.fixed then return end
  self.n = math.max(1, math.min(self.ceiling, n))
  if self.n > self.peak then self.peak = self.n end
end

-- w:wanted(satisfied): the consumer asked for a batch; satisfied = the buffer held it. An ask the
-- buffer could not meet makes the consumer hungry until one it meets at once.
function Window:wanted(satisfied)
  self.hungry = not satisfied
end

-- w:answered(got, asked, short, seconds, now): a receive came back with got messages (of at most
-- asked); short = the buffer, before them, held less than a batch (a hungry consumer is still
-- waiting); seconds = its round trip, nil when not known (the answer came while etlua was busy
-- elsewhere, so it may have waited for etlua rather than for the server: no verdict either way);
-- now = a monotonic clock in seconds.
function Window:answered(got, asked, short, seconds, now)
  if seconds and seconds < self.floor then self.floor = seconds end
  if seconds and seconds > LATE_FACTOR * self.floor + LATE_S then
    -- halved, at most once a round trip: the answers of receives sent before the cut are late too
    if not self.halved_at or now - self.halved_at > seconds then
      self.halved_at = now
      set(self, self.n // 2)
    end
  elseif got == 0 then
    set(self, self.n - 1)
  elseif got >= asked and self.hungry and short and seconds
      and seconds <= PROMPT_FACTOR * self.floor + PROMPT_S then
    set(self, self.n + 1)
  end
end

-- w:overdue(age, now) -> true when the oldest receive in flight, started age seconds ago, is late:
-- the window is halved (at most once a round trip) and no receive should start now. A fixed
-- window is never overdue (a FIFO queue's long polls wait on locked groups by design).
function Window:overdue(age, now)
  if self.fixed or age <= LATE_FACTOR * self.floor + LATE_S then return false end
  if not self.halved_at or now - self.halved_at > age then
    self.halved_at = now
    set(self, self.n // 2)
  end
  return true
end

-- w:took(left, batch): a batch was taken from the buffer, `left` messages still buffered after it;
-- batch = the consumer's batch size.
function Window:took(left, batch)
  if left >= 2 * batch then set(self, self.n - 1) end
end

return M
