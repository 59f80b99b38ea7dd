-- etlua.source: where messages come from and where they are acknowledged.
--   source.sqs(cfg, log)  : receives from SQS (etlua.sqs), deletes after commit.
--   source.file(path)     : one message body per line (--input FILE, "-" = stdin); nothing to delete.
-- Both give messages as {id =, receipt =, body =, sent_ms =, received_ms =} through
-- src:next_batch(max, max_wait_ms, wait_seconds), acknowledge them with src:ack(messages) after
-- the commit, and src:flush() waits for the acknowledgements in flight.
local sqs = require "etlua.sqs"
local mask = require "etlua.mask"
local host = require "etlua.host"
local fail = require "etlua.fail"
local retry = require "etlua.retry"
local telemetry = require "etlua.telemetry"

local M = {}

-- SQS -----------------------------------------------------------------------------------------
local Sqs = {}
Sqs.__index = Sqs

function M.sqs(cfg, log)
  local client = sqs.client {
    endpoint = cfg.endpoint, queue_url = cfg.queue_url, region = cfg.region,
    access_key = cfg.access_key, secret_key = cfg.secret_key, session_token = cfg.session_token,
    protocol = cfg.protocol, ca_bundle = cfg.ca_bundle, max_inflight = 128,
  }
  local self = setmetatable({ client = client, cfg = cfg, log = log }, Sqs)
  local protocol, err, code = retry.call(log, "sqs", function() return client:detect() end)
  if not protocol then
    fail.user("cannot reach the SQS endpoint %s: %s; check AWS_ENDPOINT_URL / SQS_QUEUE_URL and that the service is up (%s)",
      cfg.endpoint, err, code or "error")
  end
  if not cfg.queue_url then
    local url, uerr, ucode = retry.call(log, "sqs", function() return client:get_queue_url(cfg.queue_name) end)
    if not url then
      if ucode == "no_queue" then
        fail.user("queue '%s' does not exist at %s; create it or fix SQS_QUEUE", cfg.queue_name, cfg.endpoint)
      end
      fail.user("cannot resolve queue '%s': %s", cfg.queue_name, uerr)
    end
    cfg.queue_url = url
    client:close()
    client = sqs.client {
      endpoint = cfg.endpoint, queue_url = url, region = cfg.region,
      access_key = cfg.access_key, secret_key = cfg.secret_key, session_token = cfg.session_token,
      protocol = protocol, ca_bundle = cfg.ca_bundle, max_inflight = 128,
    }
    self.client = client
  end
  -- The queue must exist: ask for an attribute once, so a typo fails at start-up, not later.
  local attrs, aerr, acode = retry.call(log, "sqs", function() return self.client:attributes({ "VisibilityTimeout" }) end)
  if not attrs then
    if acode == "no_queue" then
      fail.user("queue %s does not exist; create it or fix SQS_QUEUE_URL", cfg.queue_url)
    end
    fail.user("cannot use queue %s: %s (%s)", cfg.queue_url, aerr, acode or "error")
  end
  self.visibility = tonumber(attrs.VisibilityTimeout) or 30
  self.protocol = protocol
  self.concurrency = cfg.receive_concurrency or 8
  self.buffer, self.receiving, self.empty_polls, self.failures = {}, 0, 0, 0
  self.deleting, self.deleted = {}, 0
  return self
end

-- The receive pipeline ------------------------------------------------------------------------
-- Up to `concurrency` ReceiveMessage long polls are kept in flight (curl multi, in etlua.sqs) and
-- feed a bounded prefetch buffer; next_batch takes a batch from it. Deletes are started after
-- the commit and complete in the background (pump collects them). One long poll coming back
-- empty, with nothing else in flight or buffered, means the queue is drained.

-- Collects finished requests: messages into the buffer, delete results into the log.
-- Returns nil, msg, code when receives keep failing past the retry budget.
function Sqs:pump(timeout_ms)
  for _, done in ipairs(self.client:poll(timeout_ms)) do
    if done.kind == "receive" then
      self.receiving = self.receiving - 1
      if done.result then
        if self.failures > 0 then telemetry.ready(true) end
        self.failures = 0
        local now = host.now_ms()
        for _, m in ipairs(done.result) do
          m.received_ms = now
          self.buffer[#self.buffer + 1] = m
        end
        if #done.result == 0 then self.empty_polls = self.empty_polls + 1 else self.empty_polls = 0 end
      elseif done.code ~= "stopped" then
        local ok, err, code = self:failed(done.err, done.code)
        if not ok then return nil, err, code end
      end
    elseif done.kind == "change_visibility_batch" then
      self:extend_done(done)
    else
      self:delete_done(done)
    end
  end
  self:report()
  return true
end

-- Gauges for etlua.telemetry: prefetched = the buffer; in flight = received and not yet
-- deleted (the buffer, the batch in hand, the deletes under way).
function Sqs:report(in_hand)
  local deleting = 0
  for _, d in pairs(self.deleting) do deleting = deleting + #d.entries end
  telemetry.prefetched(#self.buffer)
  telemetry.in_flight(#self.buffer + deleting + (in_hand or 0))
end

-- A failed receive: retried with capped exponential backoff and jitter while the code is a
-- passing one (throttled, server, timeout, network) and the outage is shorter than
-- ETLUA_OUTAGE_SECONDS; anything else ends the run (nothing in hand is lost: only committed
-- messages are ever deleted).
function Sqs:failed(err, code)
  self.failures = self.failures + 1
  telemetry.error("sqs_receive")
  if self.failures == 1 then self.failing_since = host.mono() end
  if not retry.retryable(code) or host.mono() - self.failing_since > self.cfg.outage_seconds then
    return nil, err, code
  end
  -- Back off without blocking: the receives already in flight go on (a blocking sleep would
  -- let them time out undriven, each adding its own sleep); no new receive starts before
  -- retry_at. The delay grows with the failures in a row, capped.
  local delay = retry.delay(math.min(self.failures, 10))
  self.retry_at = math.max(self.retry_at or 0, host.mono() + delay)
  self.log:warn("retrying", { target = "sqs", code = code, attempt = self.failures,
    delay_s = string.format("%.2f", delay), error = err })
  telemetry.retry("sqs")
  telemetry.ready(false)
  return true
end

-- Starts receives until `concurrency` are in flight or the buffer holds `limit` messages.
function Sqs:fill(wait_seconds)
  if self.retry_at and host.mono() < self.retry_at then return true end  -- backing off
  while self.receiving < self.concurrency and #self.buffer + 10 * self.receiving < self.limit
        and not host.stopping() do
    local token, err, code = self.client:start_receive(10, wait_seconds)
    if not token then
      if code == "client" then return true end  -- every slot busy (deletes): fill again later
      return nil, err, code
    end
    self.receiving = self.receiving + 1
  end
  return true
end

-- next_batch(max, max_wait_ms, wait_seconds) -> messages, drained | nil, msg, code
-- Returns up to max messages once max are buffered, max_wait_ms after the first arrived, or
-- when the queue proved empty (drained = true: a long poll came back empty with nothing else in
-- flight or buffered). After a stop signal it returns what is buffered and receives no more.
function Sqs:next_batch(max, max_wait_ms, wait_seconds)
  -- room for a whole batch plus every receive in flight, so the long polls keep running while
  -- a batch is being committed (with max(batch, 10 x concurrency) a large batch starved them)
  self.limit = max + 10 * self.concurrency
  local first
  while true do
    if #self.buffer >= max then break end
    if #self.buffer > 0 then
      first = first or host.now_ms()
      if host.now_ms() - first >= max_wait_ms then break end
    end
    if host.stopping() then
      if self.receiving == 0 then break end
    else
      -- When one poll came back empty, let the others finish before asking again: an empty
      -- answer with nothing in flight and nothing buffered is the proof of an empty queue.
      if self.empty_polls > 0 and self.receiving == 0 and #self.buffer == 0 then
        self.empty_polls = 0
        return {}, true
      end
      if self.empty_polls == 0 then
        local ok, err, code = self:fill(wait_seconds)
        if not ok then return nil, err, code end
      end
    end
    if self.receiving == 0 and not next(self.deleting) then
      host.sleep(0.05)   -- backing off with nothing in flight: wait, do not spin
    end
    local ok, err, code = self:pump(#self.buffer > 0 and 10 or 100)
    if not ok then return nil, err, code end
    self:keep_alive()
  end
  local n = math.min(max, #self.buffer)
  local batch = table.move(self.buffer, 1, n, 1, {})
  table.move(self.buffer, n + 1, #self.buffer + n, 1)  -- shift the rest down (nils past the end)
  self:report(n)
  return batch, false
end

-- ack: DeleteMessageBatch, 10 at a time, started only after the commit that holds the messages.
-- The deletes complete in the background; a failed entry is logged by id (never by body): SQS
-- redelivers that message and the ledger makes the redelivery harmless.
function Sqs:ack(messages)
  for i = 1, #messages, 10 do
    local entries, ids = {}, {}
    for j = i, math.min(i + 9, #messages) do
      entries[#entries + 1] = { id = tostring(j - i + 1), receipt = messages[j].receipt }
      ids[#ids + 1] = messages[j].id
    end
    self:start_delete(entries, ids, 1)
  end
  return #messages
end

function Sqs:start_delete(entries, ids, attempt)
  local token, err, code = self.client:start_delete_batch(entries)
  while not token and code == "client" do  -- every slot busy: let some finish
    self:pump(100)
    token, err, code = self.client:start_delete_batch(entries)
  end
  if not token then
    telemetry.error("sqs_delete")
    self.log:warn("delete failed; the messages will be redelivered and skipped by the ledger",
      { count = #entries, error = err })
    return
  end
  self.deleting[token] = { entries = entries, ids = ids, attempt = attempt }
end

function Sqs:delete_done(done)
  local d = self.deleting[done.token]
  if not d then return end
  self.deleting[done.token] = nil
  if not done.result then
    if retry.retryable(done.code) and d.attempt < retry.attempts then
      telemetry.retry("sqs")
      host.sleep(math.min(1, retry.delay(d.attempt)))  -- short: receives are in flight
      return self:start_delete(d.entries, d.ids, d.attempt + 1)
    end
    telemetry.error("sqs_delete")
    self.log:warn("delete failed; the messages will be redelivered and skipped by the ledger",
      { count = #d.entries, code = done.code, error = done.err })
    return
  end
  for _, f in ipairs(done.result) do
    telemetry.error("sqs_delete")
    self.log:warn("delete failed; the message will be redelivered and skipped by the ledger",
      { message_id = d.ids[tonumber(f.id)], code = f.code })
  end
  self.deleted = self.deleted + #d.entries - #done.result
  telemetry.deleted(#d.entries - #done.result)
end

-- extend(messages, timeout_s) -> count extended: the visibility heartbeat. Sets the visibility
-- timeout of the messages to timeout_s from now with ChangeMessageVisibilityBatch, 10 at a time,
-- all in flight at once, and waits for the answers. Entries are handled one by one: a failed
-- entry (ReceiptHandleIsInvalid: deleted, or its receipt expired and handed to another consumer)
-- is logged by message id (never by body) and the message is left out of later extensions; the
-- ledger makes a redelivery harmless. A failed call is retried while its code is a passing one.
function Sqs:extend(messages, timeout_s)
  self.extending, self.extended = self.extending or {}, 0
  local todo = {}
  for _, m in ipairs(messages) do
    if m.receipt and not m.no_extend then todo[#todo + 1] = m end
  end
  for i = 1, #todo, 10 do
    self:start_extend(table.move(todo, i, math.min(i + 9, #todo), 1, {}), timeout_s, 1)
  end
  while next(self.extending) do self:pump(100) end
  return self.extended
end

function Sqs:start_extend(chunk, timeout_s, attempt)
  local entries = {}
  for k, m in ipairs(chunk) do entries[k] = { id = tostring(k), receipt = m.receipt } end
  local token, err, code = self.client:start_change_visibility_batch(entries, timeout_s)
  while not token and code == "client" do  -- every slot busy: let some finish
    self:pump(100)
    token, err, code = self.client:start_change_visibility_batch(entries, timeout_s)
  end
  if not token then
    self.log:warn("visibility extension failed; the messages may be redelivered and skipped by the ledger",
      { count = #chunk, code = code, error = err })
    return
  end
  self.extending[token] = { chunk = chunk, timeout = timeout_s, attempt = attempt }
end

function Sqs:extend_done(done)
  local d = self.extending and self.extending[done.token]
  if not d then return end
  self.extending[done.token] = nil
  if not done.result then
    if retry.retryable(done.code) and d.attempt < 3 then
      host.sleep(math.min(1, retry.delay(d.attempt)))  -- short: receives are in flight
      return self:start_extend(d.chunk, d.timeout, d.attempt + 1)
    end
    self.log:warn("visibility extension failed; the messages may be redelivered and skipped by the ledger",
      { count = #d.chunk, code = done.code, error = done.err })
    return
  end
  for _, f in ipairs(done.result) do
    local m = d.chunk[tonumber(f.id)]
    if m then m.no_extend = true end
    self.log:warn("visibility extension failed for a message; it may be redelivered and skipped by the ledger",
      { message_id = m and m.id, code = f.code })
  end
  local now = host.now_ms()
  for _, m in ipairs(d.chunk) do
    if not m.no_extend then m.visible_until_ms = now + d.timeout * 1000 end
  end
  self.extended = self.extended + #d.chunk - #done.result
end

-- visible_until(m) -> wall-clock ms at which SQS makes m visible again (as far as we know).
function Sqs:visible_until(m)
  return m.visible_until_ms or ((m.received_ms or host.now_ms()) + (self.visibility or 30) * 1000)
end

-- keep_alive(): the heartbeat of the prefetch buffer, called while next_batch waits for a batch
-- to fill: once a buffered message is past half its visibility timeout, the buffer is extended.
function Sqs:keep_alive()
  local vis = self.visibility
  if not vis or vis < 2 then return end
  local now = host.now_ms()
  for _, m in ipairs(self.buffer) do
    if not m.no_extend and self:visible_until(m) - now < vis * 500 then
      self:extend(self.buffer, vis)
      return
    end
  end
end

-- flush: waits for the deletes in flight (at exit). Receives still in flight are abandoned:
-- SQS makes their messages visible again after the visibility timeout.
function Sqs:flush()
  while next(self.deleting) do self:pump(100) end
  return self.deleted
end

-- approximate_left() -> messages in the queue (visible + in flight), approximately, or nil.
function Sqs:approximate_left()
  local attrs = self.client:attributes({ "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible" })
  if not attrs then return nil end
  return (tonumber(attrs.ApproximateNumberOfMessages) or 0)
    + (tonumber(attrs.ApproximateNumberOfMessagesNotVisible) or 0)
end

function Sqs:close() self.client:close() end

-- File ----------------------------------------------------------------------------------------
local File = {}
File.__index = File

-- A file is its content: the digest of its bytes, read once before the first line (1 MiB at a
-- time, each chunk hashed with the digest so far, so a large file never sits in memory).
local function content_digest(f, path)
  local digest, n = "", 0
  while true do
    local chunk, err = f:read(1048576)
    if not chunk then
      if err then fail.user("cannot read --input %s: %s (it must name a file, or - for stdin)", path, err) end
      break
    end
    digest, n = mask.sha256_hex(digest .. chunk), n + #chunk
  end
  f:seek("set", 0)
  return mask.sha256_hex(digest .. ":" .. n)
end

function M.file(path)
  local f, err
  if path == "-" then
    return setmetatable({ f = io.stdin, line = 0, path = path }, File)
  end
  f, err = io.open(path, "rb")
  if not f then fail.user("cannot read --input %s", err) end
  local digest = content_digest(f, path)
  return setmetatable({ f = f, line = 0, path = path, digest = digest:sub(1, 32) }, File)
end

-- A line's id is "input:<digest of the file's content>:<line>": loading the same file again (or
-- a copy of it) lands each line once, while two files that differ anywhere are two sets of
-- messages, even where their lines are equal. A file that has changed since (lines appended) is
-- another file: its lines land again. stdin lines are numbered within this run only.
function File:next_batch(max)
  local batch = {}
  if host.stopping() then return batch, true end
  local now = host.now_ms()
  while #batch < max do
    local body, err = self.f:read("L")
    if not body then
      if err then fail.user("cannot read --input %s: %s", self.path, err) end
      return batch, true
    end
    body = body:gsub("\r?\n$", "")
    self.line = self.line + 1
    if body ~= "" then
      local id
      if self.path == "-" then
        id = string.format("stdin:%d:%d", now, self.line)
      else
        id = string.format("input:%s:%d", self.digest, self.line)
      end
      batch[#batch + 1] = { id = id, body = body, received_ms = now }
    end
  end
  return batch, false
end

function File:ack(messages) return #messages end
function File:flush() return 0 end

function File:close()
  if self.f ~= io.stdin then self.f:close() end
end

return M
