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
--   shrink by one per slow answer (past the prompt mark, below): it waited behind other receives
--     at the server, so more of them would only wait longer there. The window settles where
--     receives start to queue at the server, not at the ceiling: on loopback the emulator
--     answers 64 receives in flight no faster than a score of them, and every receive more
--     costs CPU on both sides; at a distance the round trip is mostly the network's, the mark
--     (twice the floor) grows with it, and the window with the mark. A slow answer never takes
--     the window below SLOW_MIN: a server shared with other clients (a producer sending to the
--     same emulator) is slow for all of them, and a delay rule alone would hand it to them;
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
-- floor + 10 ms came from a server that was not kept waiting (growing may help); one past that
-- is slow: it waited behind other receives at the server (one fewer); one past four times the
-- floor + 250 ms is late: receives are piling up there (half as many: more would only queue,
-- and a stop, which cuts a receive after a second, would strand their messages for the
-- visibility timeout). The 10 ms: draining fauxqs into a durable Postgres on 2 cores, 50 ms
-- (no slow answer then) let the window sit at the ceiling with round trips of 17 ms at the
-- median; 5 ms held it near 20 and cost 4-9% of the rate; 10 ms, 0.86 of the CPU at the same
-- rate (bench/README.md, issue 16's ninth round).
local PROMPT_FACTOR, PROMPT_S = 2, 0.010
local LATE_FACTOR, LATE_S = 4, 0.250

-- The least a slow answer leaves (or the ceiling when lower). On one process serving a producer
-- too (fauxqs fed as etlua drains it: bench/rss.sh), every round trip was ~12 ms whatever the
-- window, so slow answers alone held it near 8 receives: etlua's share of the server fell, the
-- backlog grew, and fauxqs slows with its depth (1M messages at 4,800-5,700 msgs/s against
-- 10,000-15,000 with a window of 64). With 16 at the least: no collapse in 17 runs (1M at
-- 13,700-17,100), and a window that still settles near a score of receives on loopback.
M.SLOW_MIN = 16

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

-- w:answered(got, asked, short, seconds, now [, least]): a receive came back with got messages (of
-- at most asked); short = the buffer, before them, held less than a batch (a hungry consumer is
-- still waiting); seconds = its round trip as etlua saw it, nil when not known (the answer came
-- while etlua was busy elsewhere, so it may have waited for etlua rather than for the server: no
-- verdict either way); least = the least the round trip can have been (default seconds: the
-- answer may have come in at any time since etlua last looked, and only what it surely waited
-- counts as slow); now = a monotonic clock in seconds.
function Window:answered(got, asked, short, seconds, now, least)
  if seconds and seconds < self.floor then self.floor = seconds end
  -- a verdict that takes receives away goes by what the answer surely waited; growing, by what
  -- etlua saw
  local surely = least or seconds
  if surely and surely > LATE_FACTOR * self.floor + LATE_S then
    -- halved, at most once a round trip: the answers of receives sent before the cut are late too
    if not self.halved_at or now - self.halved_at > seconds then
      self.halved_at = now
      set(self, self.n // 2)
    end
  elseif got == 0 then
    set(self, self.n - 1)
  elseif seconds then   -- else no verdict on the server
    local mark = PROMPT_FACTOR * self.floor + PROMPT_S
    if surely > mark then
      -- slow: it waited behind the others
      if self.n > M.SLOW_MIN then set(self, self.n - 1) end
    elseif seconds <= mark and got >= asked and self.hungry and short then
      set(self, self.n + 1)
    end
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
