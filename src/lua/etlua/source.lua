-- etlua.source: where messages come from and where they are acknowledged.
--   source.sqs(cfg, log [, new_client]) : receives from SQS, deletes after commit.
--       new_client(opts) -> client makes the SQS client (default etlua.sqs's sqs.client; the
--       specs pass a fake with the same methods).
--   source.file(path)     : one message body per line (--input FILE, "-" = stdin); nothing to
--       delete (etlua.source_file).
-- Both give messages as {id =, receipt =, body =, sent_ms =, received_ms =} through
-- src:next_batch(max, max_wait_ms, wait_seconds), acknowledge them with src:ack(messages) after
-- the commit, and src:flush() waits for the acknowledgements in flight (after a stop signal it
-- first releases every message received but not committed).
-- While a commit waits on Postgres the runner calls src:tend() (the SQS answers keep coming in,
-- deletes and retries keep going) and src:take_ready(max, later) (a whole batch already at hand,
-- or nil: never waits), so the next batch is processed while the one before commits. Several
-- batches may be in hand at once; each is acknowledged (src:ack) only after its own commit.
-- This file is the SQS half: it owns the receive pipeline and the drain decision; the requests
-- that settle messages are etlua.inflight's, the visibility heartbeat etlua.heartbeat's.
local sqs = require "etlua.sqs"
local host = require "etlua.host"
local fail = require "etlua.fail"
local retry = require "etlua.retry"
local telemetry = require "etlua.telemetry"
local inflight = require "etlua.inflight"
local receive_window = require "etlua.receive_window"
local heartbeat = require "etlua.heartbeat"
local queue_depth = require "etlua.queue_depth"

local M = {}

-- SQS -----------------------------------------------------------------------------------------
local Sqs = {}
Sqs.__index = Sqs

-- Request slots of the client: every receive in flight (<= 128, the ceiling of the receive window)
-- plus room for the deletes and visibility changes of a batch and its prefetch (a DeleteMessageBatch
-- may take as long as a receive: on fauxqs, 55-90 of them were in flight at once, and with 128
-- slots the receives found none free on a third to two thirds of their tries). Deletes are not
-- held to a number of their own: each starts as soon as its batch has committed, on any slot the
-- receives do not hold, and a freed slot goes to a waiting delete before any new receive (pump
-- starts the tracker's waiting requests before the next fill).
local MAX_INFLIGHT = 256
-- Messages a ReceiveMessage asks for: SQS's most.
local RECEIVE_MAX = 10
-- A receive's round trip is measured (for the receive window) only when etlua polled within this
-- long before its answer was collected (an answer may have waited that long for etlua).
local ATTENTIVE_S = 0.100
-- A poll that took longer than this waited for its answers (the first look at the sockets
-- never waits, and brings whatever is already in).
local POLL_WAITED_S = 0.001
-- FIFO: a batch is taken once a poll of this long brings nothing more (see next_batch).
local QUIET_MS = 1

-- A FIFO queue's messages of one group must be committed in order; the queue kind is told by
-- its name (SQS requires the .fifo suffix of every FIFO queue).
local function is_fifo(url)
  return type(url) == "string" and url:match("%.fifo$") ~= nil
end

function M.sqs(cfg, log, new_client)
  new_client = new_client or sqs.client
  local function open(url, protocol)
    return new_client {
      endpoint = cfg.endpoint, queue_url = url, region = cfg.region,
      access_key = cfg.access_key, secret_key = cfg.secret_key, session_token = cfg.session_token,
      protocol = protocol, ca_bundle = cfg.ca_bundle, max_inflight = MAX_INFLIGHT,
    }
  end
  local client = open(cfg.queue_url, cfg.protocol)
  local self = setmetatable({ client = client, cfg = cfg, log = log }, Sqs)
  local protocol, err, code = retry.call(log, "sqs", function() return client:detect() end)
  if not protocol then
    fail.user("cannot reach the SQS endpoint %s: %s; "
      .. "check AWS_ENDPOINT_URL / SQS_QUEUE_URL and that the service is up (%s)",
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
    self.client = open(url, protocol)
  end
  -- The queue must exist: ask for its attributes once, so a typo fails at start-up, not later.
  local attrs, aerr, acode = retry.call(log, "sqs", function()
    return self.client:attributes({ "VisibilityTimeout", "MessageRetentionPeriod" })
  end)
  if not attrs then
    if acode == "no_queue" then
      fail.user("queue %s does not exist; create it or fix SQS_QUEUE_URL", cfg.queue_url)
    end
    fail.user("cannot use queue %s: %s (%s)", cfg.queue_url, aerr, acode or "error")
  end
  self.visibility = tonumber(attrs.VisibilityTimeout) or 30
  self.retention = M.retention_of(attrs)
  self.protocol = protocol
  self.fifo = is_fifo(cfg.queue_url)
  self.window = receive_window.new(cfg.receive_concurrency or 8, { fixed = self.fifo })
  self.buffer, self.kept, self.receiving, self.empty_polls, self.failures = {}, {}, 0, 0, 0
  self.sent = {}   -- receive token -> when it was sent (host.mono), for the window
  self.unsent = {} -- tokens of receives started since the last poll (the next poll sends them)
  self.deleted = 0
  self.tracker = inflight.new(self.client, MAX_INFLIGHT)
  self.tracker.on_retry = function(req, rerr, rcode)
    telemetry.retry("sqs")
    self.log:warn("retrying", { target = "sqs", request = req.kind, code = rcode, attempt = req.attempt,
      error = rerr })
  end
  self.heartbeat = heartbeat.new {
    visibility = self.visibility, tracker = self.tracker, log = log,
    held = function() return self:held() end,
    oldest = function() return self:oldest_held() end,
    pump = function(timeout_ms) self:pump(timeout_ms) end,
  }
  self.depth = queue_depth.new(self.client, cfg.queue_depth_seconds, log) -- nil without --metrics
  return self
end

-- The receive pipeline ------------------------------------------------------------------------
-- Up to the receive window's size of ReceiveMessage long polls are kept in flight (curl multi, in
-- etlua.sqs; the size adapts, etlua.receive_window) and feed a bounded prefetch buffer (two
-- batches plus 10 messages a receive of the window); next_batch takes a batch from it. Deletes are
-- started after the commit and complete in the background (pump collects them).
--
-- Drained: on a standard queue, one long poll coming back empty, with nothing else in flight or
-- buffered, means the queue is empty. A FIFO queue answers empty also while every group with
-- messages left is locked (a message of the group is in flight: SQS hands out a group's next
-- message only once the one before is deleted), so there the queue must also report nothing
-- visible and nothing in flight (GetQueueAttributes), once our own deletes have completed.
--
-- FIFO order: SQS gives a group's messages in order and no later one while an earlier one is
-- in flight; the buffer keeps the order of arrival and batches are committed one after the
-- other, each in one transaction with its items in that order, and deleted only after the
-- commit. So the messages of a group commit in sequence order, groups in parallel. A batch is
-- taken as soon as no more messages come (nothing more can come before these are deleted):
-- waiting for a full batch would wait on locked groups.

-- Messages we hold and may release: those kept unacknowledged (--dry-run), the batches in hand
-- (self.in_hand: every message taken by next_batch or take_ready and not yet acknowledged, in
-- the order taken) and the buffer, in the order they were received.
function Sqs:held()
  local held = table.move(self.kept, 1, #self.kept, 1, {})
  for _, m in ipairs(self.in_hand or {}) do
    if not m.acked then held[#held + 1] = m end
  end
  for _, m in ipairs(self.buffer) do held[#held + 1] = m end
  return held
end

-- The held message received first (held() keeps the order of arrival), or nil.
function Sqs:oldest_held()
  if self.kept[1] then return self.kept[1] end
  for _, m in ipairs(self.in_hand or {}) do
    if not m.acked then return m end
  end
  return self.buffer[1]
end

-- A batch still unacknowledged when the next is asked for: the caller deletes nothing
-- (--dry-run; also the rest of a batch a stop signal cut short). Its messages are kept (id and
-- receipt only), so the heartbeat keeps them out of other consumers' way and flush releases
-- them at the end: a dry run leaves the queue as it found it, at once rather than after the
-- visibility timeout. Without deletes a FIFO queue never reports itself empty (its groups stay
-- locked by what we hold), so such a run drains by the standard queue's rule.
function Sqs:keep_unacknowledged()
  local hand = self.in_hand
  if not hand then return end
  self.in_hand = nil
  for _, m in ipairs(hand) do
    if not m.acked then
      if not host.stopping() then self.no_ack = true end
      self.kept[#self.kept + 1] = { id = m.id, receipt = m.receipt, received_ms = m.received_ms,
        visible_until_ms = m.visible_until_ms, lost = m.lost }
    end
  end
end

-- pump(timeout_ms) -> messages received | nil, msg, code when receives keep failing past the
-- retry budget. Collects finished requests (messages into the buffer, the rest to the tracker)
-- and starts the tracker's requests that are due. With nothing in flight it waits (sleeps) up
-- to timeout_ms, or until the next scheduled retry.
function Sqs:pump(timeout_ms)
  if self.depth then self.depth:tick() end
  self.tracker:tick()
  local due = self.tracker:next_due()
  if due then timeout_ms = math.min(timeout_ms, math.ceil(due * 1000)) end
  local got = 0
  if self.client:pending() == 0 then
    if timeout_ms > 0 then host.sleep(timeout_ms / 1000) end
  else
    -- a round trip is known when the last poll was recent: an answer may have waited that long
    -- for etlua (processing a batch, say), which says nothing about the server
    local before, start = self.polled_at, host.mono()
    local attentive = before and start - before <= ATTENTIVE_S
    local unsent, sent = self.unsent, self.sent
    for i = #unsent, 1, -1 do   -- this poll sends them (every poll of the client is made here)
      local token = unsent[i]
      unsent[i] = nil
      if sent[token] then sent[token] = start end
    end
    local answers = self.client:poll(timeout_ms)
    self.polled_at = host.mono()
    -- A poll returns as soon as an answer is in, so one that waited found none at its start:
    -- what it brings came just now. One that returned at once brings answers that came in while
    -- etlua was elsewhere, at some time after the poll before (which did not find them): only
    -- the wait until then surely counts against the server (the window's slow verdict).
    local waited = self.polled_at - start > POLL_WAITED_S
    for _, done in ipairs(answers) do
      if done.kind == "receive" then
        self.receiving = self.receiving - 1
        local at = sent[done.token]
        local took = attentive and at and self.polled_at - at or nil
        local least = took and (waited and took or math.max(0, before - at))
        sent[done.token] = nil
        if done.result then
          if self.failures > 0 then telemetry.ready(true) end
          self.failures = 0
          local now, result, buffer = host.now_ms(), done.result, self.buffer
          local k, nb = #result, #buffer
          self.window:answered(k, RECEIVE_MAX, nb < (self.batch_max or 0), took, self.polled_at, least)
          for i = 1, k do
            local m = result[i]
            m.received_ms = now
            buffer[nb + i] = m
          end
          got = got + k
          if k == 0 then self.empty_polls = self.empty_polls + 1 else self.empty_polls = 0 end
        elseif done.code ~= "stopped" then
          local ok, err, code = self:failed(done.err, done.code)
          if not ok then return nil, err, code end
        end
      elseif done.kind == "attributes" then
        if self.depth then self.depth:settle(done) end
      else
        self.tracker:settle(done)
      end
    end
    self.tracker:tick()
  end
  self:report()
  return got
end

-- Gauges for etlua.telemetry: prefetched = the buffer; in flight = received and not yet
-- deleted (the buffer, the batch in hand, the deletes under way).
function Sqs:report(in_hand)
  telemetry.prefetched(#self.buffer)
  telemetry.in_flight(#self.buffer + (self.deleting or 0) + (in_hand or 0))
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

-- Starts receives until the window's size are in flight or the buffer and the receives in flight
-- reach the prefetch limit: two batches (the next one, and the one after it that the runner takes
-- while the next commits) plus 10 messages a receive of the window.
-- "busy" (every request slot taken): try again at the next round; any other code is an error.
--
-- On a FIFO queue the window stays at its ceiling and fewer receives are useful: SQS hands out a
-- group's next message only once the one before is deleted, so each message we hold (buffered,
-- in hand, being deleted) stands for at most one message to come, and a receive brings up to 10.
-- Two more than those keep finding the groups not yet seen. More would only come back empty:
-- every delete wakes every waiting long poll (one group and 64 receives: 64 empty answers a message).
function Sqs:receives_wanted()
  if not self.fifo then return self.window:size() end
  local held = #self.buffer + (self.deleting or 0)
  for _, m in ipairs(self.in_hand or {}) do
    if not m.acked then held = held + 1 end
  end
  return math.min(self.window:size(), 2 + (held + 9) // 10)
end

function Sqs:fill(wait_seconds)
  if self.retry_at and host.mono() < self.retry_at then return true end  -- backing off
  local want = self:receives_wanted()
  -- room for whole batches plus every receive of the window, so the long polls keep running
  -- while a batch is being committed (a limit of max(batch, 10 x receives) starved them)
  local limit = 2 * self.batch_max + RECEIVE_MAX * self.window:size()
  if self.receiving < want and self.receiving > 0 then   -- none starts while one is late
    local now, oldest = host.mono(), math.huge
    for _, t in pairs(self.sent) do if t < oldest then oldest = t end end
    if self.window:overdue(now - oldest, now) then return true end
  end
  while self.receiving < want and #self.buffer + RECEIVE_MAX * self.receiving < limit
      and self.tracker:room() do   -- a slot free (a receive tried on none is built for nothing)
    local token, err, code = self.client:start_receive(RECEIVE_MAX, wait_seconds)
    if not token then
      if code == "busy" then return true end
      return nil, err, code
    end
    self.receiving = self.receiving + 1
    self.sent[token] = host.mono()
    self.unsent[#self.unsent + 1] = token
  end
  return true
end

-- The FIFO half of the drain decision: the queue reports nothing visible and nothing in flight.
-- Asked at most every 200 ms; a failed call means "not known to be drained".
function Sqs:queue_is_empty()
  local now = host.mono()
  if self.asked_at and now - self.asked_at < 0.2 then return false end
  self.asked_at = now
  local visible, in_flight = self:queue_counts()
  return visible == 0 and in_flight == 0
end

-- next_batch(max, max_wait_ms, wait_seconds) -> messages, drained | nil, msg, code
-- Returns up to max messages once max are buffered, max_wait_ms after the first arrived (on a
-- FIFO queue: as soon as no more arrive), or when the queue proved empty (drained = true).
-- After a stop signal it returns no messages (the buffer is released by flush).
function Sqs:next_batch(max, max_wait_ms, wait_seconds)
  if self.fatal then return nil, self.fatal[1], self.fatal[2] end
  self.wait_seconds, self.batch_max = wait_seconds, max   -- tend's, between batches
  self.window:wanted(#self.buffer >= max)
  self:keep_unacknowledged()
  local fifo_rule = self.fifo and not self.no_ack
  local first, quiet
  while true do
    if host.stopping() then return {}, false end
    local n = #self.buffer
    if n >= max then break end
    if n > 0 then
      first = first or host.now_ms()
      if quiet or host.now_ms() - first >= max_wait_ms then break end
    end
    -- When one poll came back empty, let the others finish before asking again: an empty
    -- answer with nothing in flight and nothing buffered is the proof of an empty queue
    -- (on a FIFO queue, once the queue also says so; until then the receives go on).
    if self.empty_polls > 0 and n == 0 then
      if fifo_rule and not self.closing and self.tracker:idle() and self:queue_is_empty() then
        self.closing = true
      end
      if self.receiving == 0 and (self.closing or not fifo_rule) then
        self.empty_polls, self.closing = 0, nil
        return {}, true
      end
    end
    if fifo_rule and self.empty_polls > 0 and not self.closing then self.empty_polls = 0 end
    if self.empty_polls == 0 and not self.closing then
      local ok, err, code = self:fill(wait_seconds)
      if not ok then return nil, err, code end
    end
    local got, err, code = self:pump(n > 0 and (self.fifo and QUIET_MS or 10) or 100)
    if not got then return nil, err, code end
    if got > 0 then self.closing = nil end
    quiet = self.fifo and n > 0 and got == 0
    if self.heartbeat then self.heartbeat:tick() end
  end
  return self:take(math.min(max, #self.buffer)), false
end

-- The first n buffered messages, in the order received, as a batch in hand.
function Sqs:take(n)
  local batch = table.move(self.buffer, 1, n, 1, {})
  table.move(self.buffer, n + 1, #self.buffer + n, 1)  -- shift the rest down (nils past the end)
  self.window:took(#self.buffer, self.batch_max)
  local in_hand = self.in_hand or {}
  table.move(batch, 1, n, #in_hand + 1, in_hand)
  self.in_hand = in_hand
  self:report(#in_hand)
  return batch
end

-- take_ready(max, later) -> a batch of max messages when the buffer already holds them, else nil;
-- never waits and never decides the drain (next_batch does). The runner calls it while a commit
-- waits, to process the next batch meanwhile: at the commit's first wait, and again at its later
-- ones (later = true) while none was taken. On a FIFO queue the order holds: batches are taken in
-- the order received and committed one after the other.
-- On a FIFO queue whatever is buffered is a batch: those messages are of groups the batch being
-- committed does not hold (its groups stay locked until it is deleted), and no more of theirs
-- can come before they are themselves committed and deleted. So there it is taken at the first
-- wait or not at all: a later try would take the first few messages that came in meanwhile.
function Sqs:take_ready(max, later)
  if host.stopping() or self.fatal or (later and self.fifo) then return nil end
  self.batch_max = max
  local n = self.fifo and math.min(max, #self.buffer) or max
  local ready = n > 0 and #self.buffer >= n
  self.window:wanted(ready)
  if not ready then return nil end
  return self:take(n), false
end

-- tend([wait_seconds]): one round of the receive pipeline that never waits (from the commit's wait
-- hook): answers collected, receives and due retries started (long polls of wait_seconds, by
-- default those of the last next_batch). A receive failure past the retry budget is kept and
-- returned by the next next_batch.
function Sqs:tend(wait_seconds)
  if self.fatal then return end
  wait_seconds = wait_seconds or self.wait_seconds
  if not wait_seconds then return end   -- before the first next_batch: nothing to keep going
  if self.empty_polls == 0 and not self.closing and not host.stopping() then
    local ok, err, code = self:fill(wait_seconds)
    if not ok then self.fatal = { err, code } return end
  end
  local got, err, code = self:pump(0)
  if not got then self.fatal = { err, code } end
end

-- ack: DeleteMessageBatch, 10 at a time, started only after the commit that holds the messages.
-- The deletes complete in the background; a failed entry is logged by id (never by body): SQS
-- redelivers that message and the ledger makes the redelivery harmless.
function Sqs:ack(messages)
  local n, hand = #messages, self.in_hand
  for i = 1, n do messages[i].acked = true end
  if hand == messages then  -- the whole hand itself (its table: shifting it would empty messages)
    self.in_hand = nil
  elseif hand then
    -- batches are acknowledged in the order they were taken: the usual case is the head of
    -- the batches in hand, shifted out in one move (nils past the end)
    local head = n <= #hand
    for i = 1, head and n or 0 do
      if hand[i] ~= messages[i] then head = false break end
    end
    if head then
      table.move(hand, n + 1, #hand + n, 1)
    else
      local left = {}
      for _, m in ipairs(hand) do
        if not m.acked then left[#left + 1] = m end
      end
      hand = left
    end
    self.in_hand = hand[1] and hand or nil
  end
  local deleted = self.on_deleted
  if not deleted then   -- one callback for every delete of this source (not a closure a request)
    deleted = function(req, failed, err, code) self:deleted_batch(req, failed, err, code) end
    self.on_deleted = deleted
  end
  self.deleting = (self.deleting or 0) + n
  for i = 1, n, 10 do
    self.tracker:submit("delete", table.move(messages, i, math.min(i + 9, n), 1, {}), nil, deleted)
  end
  return n
end

-- A DeleteMessageBatch settled (etlua.inflight's on_settled).
function Sqs:deleted_batch(req, failed, err, code)
  self.deleting = self.deleting - #req.messages
  if not failed then
    telemetry.error("sqs_delete")
    self.log:warn("delete failed; the messages will be redelivered and skipped by the ledger",
      { count = #req.messages, code = code, error = err })
    return
  end
  for _, f in ipairs(failed) do
    telemetry.error("sqs_delete")
    self.log:warn("delete failed; the message will be redelivered and skipped by the ledger",
      { message_id = f.message and f.message.id, code = f.code })
  end
  self.deleted = self.deleted + #req.messages - #failed
  telemetry.deleted(#req.messages - #failed)
end

-- commit_hook() -> interval_s, fn, first_s for db:on_wait (the heartbeat while a commit waits),
-- or nil.
function Sqs:commit_hook()
  if not self.heartbeat then return nil end
  return self.heartbeat:commit_hook()
end

-- release(): visibility 0 for every message held and not committed (the batch in hand if it was
-- not acknowledged, the buffer), so SQS hands them out again at once instead of after the
-- visibility timeout. Latest first: a FIFO group's earlier message then ends up at its head.
function Sqs:release()
  local held = self:held()
  self.buffer, self.in_hand, self.kept = {}, nil, {}
  local todo = {}
  for i = #held, 1, -1 do
    local m = held[i]
    if m.receipt and not m.lost then todo[#todo + 1] = m end
  end
  for i = 1, #todo, 10 do
    local chunk = table.move(todo, i, math.min(i + 9, #todo), 1, {})
    self.tracker:submit("visibility", chunk, 0, function(req, failed, err, code)
      local n = failed and #req.messages - #failed or 0
      self.released = (self.released or 0) + n
      if not failed then
        self.log:warn("release failed; the messages come back after the visibility timeout",
          { count = #req.messages, code = code, error = err })
      end
    end)
  end
  return #todo
end

-- flush: waits for the requests in flight (at exit). After a stop signal, or when nothing was
-- acknowledged (--dry-run), it first releases what is held, and also what receives still bring
-- in; the receives themselves are cut short at a stop.
function Sqs:flush()
  self:keep_unacknowledged()
  if host.stopping() or self.no_ack then
    local n = self:release()
    while self.receiving > 0 or not self.tracker:idle() do
      self:pump(100)
      if #self.buffer > 0 then n = n + self:release() end
    end
    if n > 0 then self.log:info("released", { messages = n, back_now = self.released or 0 }) end
  end
  while not self.tracker:idle() do self:pump(100) end
  return self.deleted
end

-- The queue's MessageRetentionPeriod in seconds (how long the ledger must remember a message);
-- SQS's longest, 14 days, when the queue does not say.
function M.retention_of(attrs)
  return math.tointeger(tonumber(attrs.MessageRetentionPeriod)) or 14 * 86400
end

-- retention_period() -> the queue's retention now (re-read about hourly by the ledger), or nil.
function Sqs:retention_period()
  local attrs = self.client:attributes({ "MessageRetentionPeriod" })
  return attrs and M.retention_of(attrs) or nil
end

-- queue_counts() -> visible, in flight: the queue's approximate counts (GetQueueAttributes,
-- blocking), or nil when the call failed.
function Sqs:queue_counts()
  local attrs = self.client:attributes({ "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible" })
  if not attrs then return nil end
  return tonumber(attrs.ApproximateNumberOfMessages) or 0, tonumber(attrs.ApproximateNumberOfMessagesNotVisible) or 0
end

-- approximate_left() -> messages in the queue (visible + in flight), approximately, or nil.
function Sqs:approximate_left()
  local visible, in_flight = self:queue_counts()
  return visible and visible + in_flight
end

function Sqs:close() self.client:close() end

-- File: the --input source, in etlua.source_file --------------------------------------------
M.file = require("etlua.source_file").open

return M
