-- etlua.telemetry: what the runner reports about itself, one named function per event.
-- The runner and the source call these; without --metrics they cost a table lookup and do
-- nothing. telemetry.start(addr, log) (--metrics ADDR) serves Prometheus text at /metrics,
-- /healthz and /readyz through etlua.metrics (C, libmicrohttpd) and makes them count.
local M = {}

local function noop() end

M.received = noop          -- (n)            etlua_messages_received_total
M.written = noop           -- (n)            etlua_rows_written_total
M.rejected = noop          -- (reason, n)    etlua_rejects_total{reason}
M.deleted = noop           -- (n)            etlua_messages_deleted_total
M.retry = noop             -- (target)       etlua_retries_total{target}   target: sqs | postgres
M.error = noop             -- (kind)         etlua_errors_total{kind}
M.in_flight = noop         -- (n)            etlua_messages_in_flight      (received, not yet deleted)
M.prefetched = noop        -- (n)            etlua_messages_prefetched     (buffered, not yet processed)
M.commit_seconds = noop    -- (s)            etlua_batch_commit_seconds    histogram
M.event_lag = noop         -- (s)            etlua_event_lag_seconds       histogram, from SentTimestamp
M.ready = noop             -- (sqs_ok, pg_ok) /readyz answers 200 only while both are true

-- start(addr, log): serve the metrics at addr ("127.0.0.1:9108"). Raises a user error when the
-- address cannot be bound.
function M.start(addr, log)
  local fail = require "etlua.fail"
  fail.user("--metrics %s: metrics are not built yet", addr)
  return log
end

return M
