-- etlua.retry: capped exponential backoff with full jitter for expected, passing failures.
-- retry.call(log, target, fn) calls fn() -> result | nil, msg, code; it retries codes that a
-- later attempt can cure (throttled, server, timeout, network, connection) and returns the last
-- failure when the attempts run out, or at once for any other code. A stop signal ends the wait.
local host = require "etlua.host"
local telemetry = require "etlua.telemetry"

local M = {
  attempts = 8, -- the runner sets ETLUA_RETRY_ATTEMPTS (etlua.config) here at start-up
  base_s = 0.1,
  cap_s = 10,
}

local RETRYABLE = { throttled = true, server = true, timeout = true, network = true, connection = true }

function M.retryable(code) return RETRYABLE[code] == true end

-- The wait before attempt n+1: full jitter under a capped exponential.
function M.delay(attempt)
  return math.random() * math.min(M.cap_s, M.base_s * 2 ^ attempt)
end

function M.call(log, target, fn)
  local attempt = 0
  while true do
    local result, msg, code = fn()
    if result ~= nil then return result end
    attempt = attempt + 1
    if not RETRYABLE[code] or attempt >= M.attempts or host.stopping() then
      return nil, msg, code
    end
    local delay = M.delay(attempt)
    if log then
      log:warn("retrying", { target = target, code = code, attempt = attempt,
                             delay_s = string.format("%.2f", delay), error = msg })
    end
    telemetry.retry(target)
    host.sleep(delay)
  end
end

return M
