-- etlua.progress: the live progress line of a --drain on a terminal (stderr), redrawn at most
-- once a second: done, rate, rejects, and roughly how many messages are left in the queue
-- (src:approximate_left(): ApproximateNumberOfMessages plus ...NotVisible, visible plus in
-- flight, asked every few seconds, less what was received since). Nothing when stderr is not a terminal.
local host = require "etlua.host"

local M = {}
local Progress = {}
Progress.__index = Progress

-- new(src [, out [, force]]) -> progress; a no-op without a source or when stderr (fd 2) is not
-- a terminal. force is ETLUA_PROGRESS (etlua.config): "1" on even without a terminal (tests),
-- "0" off even on one.
function M.new(src, out, force)
  if not src or force == "0" or not (host.isatty(2) or force == "1") then
    return setmetatable({ off = true }, Progress)
  end
  return setmetatable({ src = src, out = out or io.stderr, started = host.mono(),
    drawn = 0, asked = 0, left = nil }, Progress)
end

function Progress:update(stats)
  if self.off then return end
  local now = host.mono()
  if now - self.drawn < 1 then return end
  self.drawn = now
  if self.src.approximate_left and now - self.asked >= 3 then
    self.asked = now
    local left = self.src:approximate_left()
    if left then self.left, self.done_at_ask = left, stats.received end
  end
  local rate = stats.received / math.max(now - self.started, 1e-3)
  -- between two asks, what was done since the last answer comes off it
  local left = self.left and math.max(0, self.left - (stats.received - self.done_at_ask))
  local line = string.format("etlua: %d done, %.0f msg/s, %d rejected%s", stats.received, rate,
    stats.rejected, left and string.format(", ~%d left", left) or "")
  self.out:write("\r", line, "\27[K")
  self.out:flush()
end

-- finish(): ends the line, so the log lines that follow start on a line of their own.
function Progress:finish()
  if self.off or self.drawn == 0 then return end
  self.out:write("\r\27[K")
  self.out:flush()
end

return M
