-- etlua.telemetry: what the runner reports about itself, one named function per event.
-- The runner and the source call these; without --metrics they cost a table lookup and do
-- nothing. telemetry.start(addr, log) (--metrics ADDR or ETLUA_METRICS_ADDR) serves Prometheus
-- text at /metrics, /healthz and /readyz through etlua.metrics (C, libmicrohttpd, its own
-- thread) and swaps the no-ops below for real updates. Counts are per batch, not per message,
-- wherever the caller can: each call is one C call and one uncontended mutex.
--
-- Every etlua_ series carries the constant label pipeline="<the script's file name without
-- .lua>" (scripts/login_etl.lua -> login_etl): it names the pipeline even when the script has
-- several outputs, and two deployments of one script are told apart by Prometheus's own job and
-- instance labels. The standard process metrics (process_cpu_seconds_total,
-- process_resident_memory_bytes, process_start_time_seconds, ...) are read by the C module at
-- scrape time, so they move while the loop is busy, and carry no pipeline label.
local M = {}

local function noop() end

M.received = noop          -- (n)            etlua_messages_received_total
M.written = noop           -- (n)            etlua_rows_written_total
M.rejected = noop          -- (reason, n)    etlua_rejects_total{reason}
M.dropped = noop           -- (n)            etlua_messages_dropped_total  (transform returned false)
M.deleted = noop           -- (n)            etlua_messages_deleted_total
M.retry = noop             -- (target)       etlua_retries_total{target}   target: sqs | postgres
M.error = noop             -- (kind)         etlua_errors_total{kind}
M.in_flight = noop         -- (n)            etlua_messages_in_flight      (received, not yet deleted)
M.prefetched = noop        -- (n)            etlua_messages_prefetched     (buffered, not yet processed)
M.commit_seconds = noop    -- (s)            a batch committed in s seconds: etlua_batch_commit_seconds
                           --                 histogram, etlua_last_commit_timestamp_seconds = now
M.event_lag = noop         -- (s)            etlua_event_lag_seconds       histogram, from SentTimestamp
M.queue_depth = noop       -- (visible, in_flight, delayed)  etlua_queue_messages{state}, from
                           --                 GetQueueAttributes (etlua.queue_depth; SQS only)
M.reasons = noop           -- (list)         etlua_rejects_total{reason} at 0 for each reason known
                           --                 in advance (record's Processor:reasons())
M.ready = noop             -- (sqs_ok, pg_ok) /readyz answers 200 and etlua_ready is 1 only while
                           --                 both are true; nil leaves that side as it was

-- serving() -> true once start() serves metrics (what is only worth asking for then, such as
-- the queue's depth, is asked only then).
function M.serving() return M.registry ~= nil end

-- pipeline_of(script_path) -> the pipeline label: the script's file name without ".lua".
function M.pipeline_of(path)
  local name = tostring(path or ""):match("([^/]*)$"):gsub("%.lua$", "")
  return name ~= "" and name or "etlua"
end

-- Bucket upper bounds, in seconds. A commit is milliseconds to seconds; the lag from
-- SentTimestamp is sub-second when keeping up and hours when catching up on a backlog.
M.COMMIT_BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }
M.LAG_BUCKETS = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 21600, 86400 }

-- The metrics: name, kind, help, label (counters and gauges) or buckets (histograms).
local FAMILIES = {
  { "etlua_build_info", "gauge", "etlua's version (always 1).", "version" },
  { "etlua_messages_received_total", "counter", "Messages received from the source and processed." },
  { "etlua_rows_written_total", "counter", "Rows committed to the target table." },
  { "etlua_rejects_total", "counter", "Messages committed to the rejects table, by reason.", "reason" },
  { "etlua_messages_dropped_total", "counter",
    "Messages the script dropped on purpose (transform returned false), committed to the ledger only." },
  { "etlua_messages_deleted_total", "counter", "Messages deleted from the queue after their commit." },
  { "etlua_retries_total", "counter", "Retries of a call that failed for a passing reason, by target.", "target" },
  { "etlua_errors_total", "counter", "Failures logged, by kind.", "kind" },
  { "etlua_messages_in_flight", "gauge",
    "Messages received and not yet deleted (prefetched, in the batch, being deleted)." },
  { "etlua_messages_prefetched", "gauge", "Messages buffered by the receive pipeline, not yet processed." },
  { "etlua_batch_commit_seconds", "histogram",
    "Time to commit one batch: ledger, COPY of rows and rejects, COMMIT.", M.COMMIT_BUCKETS },
  { "etlua_event_lag_seconds", "histogram", "From a message's SentTimestamp to the commit of its row.", M.LAG_BUCKETS },
  { "etlua_last_commit_timestamp_seconds", "gauge",
    "Unix time of the last successful commit of a batch (0 before the first)." },
  { "etlua_ready", "gauge", "1 while connected to SQS and Postgres (what /readyz answers 200 for), else 0." },
  { "etlua_queue_messages", "gauge", "Messages in the queue by state (visible, in_flight, delayed), "
    .. "as SQS approximates them, polled every ETLUA_QUEUE_DEPTH_SECONDS.", "state" },
}

-- start(addr, log [, opts]) -> the bound address ("127.0.0.1:9108"). Declares the metrics,
-- starts the server and makes the functions above count. Raises a user error when addr cannot
-- be bound. Returns nil and does nothing when addr is nil or empty.
-- opts.pipeline: the constant pipeline label (default "etlua"); opts.reasons: M.reasons's list.
function M.start(addr, log, opts)
  opts = opts or {}
  if addr == nil or addr == "" then return nil end
  local metrics = require "etlua.metrics"
  local fail = require "etlua.fail"
  local host = require "etlua.host"
  local reg = metrics.registry()
  reg:constant_label("pipeline", opts.pipeline or "etlua")
  reg:process_metrics()
  local id = {}
  for _, f in ipairs(FAMILIES) do
    local name, kind, help, extra = f[1], f[2], f[3], f[4]
    id[name] = reg[kind](reg, name, help, extra)
  end

  local inc, set, observe = reg.inc, reg.set, reg.observe
  local received, written = id.etlua_messages_received_total, id.etlua_rows_written_total
  local rejects, deleted = id.etlua_rejects_total, id.etlua_messages_deleted_total
  local dropped = id.etlua_messages_dropped_total
  local retries, errors = id.etlua_retries_total, id.etlua_errors_total
  local in_flight, prefetched = id.etlua_messages_in_flight, id.etlua_messages_prefetched
  local commit, lag = id.etlua_batch_commit_seconds, id.etlua_event_lag_seconds
  local last_commit, queue = id.etlua_last_commit_timestamp_seconds, id.etlua_queue_messages
  local now_ms = host.now_ms

  -- The series every dashboard and alert expects exist from the first scrape (at 0), not from
  -- the first event: so they are made before the server answers.
  set(reg, id.etlua_build_info, 1, host.version)
  for _, target in ipairs({ "sqs", "postgres" }) do inc(reg, retries, 0, target) end
  for _, kind in ipairs({ "sqs_receive", "sqs_delete", "sqs_attributes", "postgres_connection" }) do
    inc(reg, errors, 0, kind)
  end
  for _, reason in ipairs(opts.reasons or {}) do inc(reg, rejects, 0, reason) end

  local bound, err = reg:serve(addr)
  if not bound then
    reg:close()
    fail.user("--metrics %s; choose another address (ETLUA_METRICS_ADDR, --metrics HOST:PORT)", err)
  end
  M.registry = reg -- kept referenced: the server lives as long as the process

  M.received = function(n) inc(reg, received, n) end
  M.written = function(n) inc(reg, written, n) end
  M.rejected = function(reason, n) inc(reg, rejects, n or 1, reason) end
  M.dropped = function(n) inc(reg, dropped, n) end
  M.deleted = function(n) inc(reg, deleted, n) end
  M.retry = function(target) inc(reg, retries, 1, target) end
  M.error = function(kind) inc(reg, errors, 1, kind) end
  M.in_flight = function(n) set(reg, in_flight, n) end
  M.prefetched = function(n) set(reg, prefetched, n) end
  M.commit_seconds = function(s)
    observe(reg, commit, s)
    set(reg, last_commit, now_ms() / 1000)
  end
  M.event_lag = function(s) observe(reg, lag, s) end
  M.queue_depth = function(visible, in_flight_n, delayed)
    set(reg, queue, visible, "visible")
    set(reg, queue, in_flight_n, "in_flight")
    set(reg, queue, delayed, "delayed")
  end
  M.reasons = function(list)
    for _, reason in ipairs(list) do inc(reg, rejects, 0, reason) end
  end
  local sqs_ok, pg_ok = false, false
  M.ready = function(s, p)
    if s ~= nil then sqs_ok = s end
    if p ~= nil then pg_ok = p end
    reg:ready(sqs_ok and pg_ok)
    set(reg, id.etlua_ready, (sqs_ok and pg_ok) and 1 or 0)
  end

  if log then log:info("serving metrics", { address = bound, paths = "/metrics /healthz /readyz" }) end
  return bound
end

return M
