-- etlua.source: where messages come from and where they are acknowledged.
--   source.sqs(cfg, log)  : receives from SQS (etlua.sqs), deletes after commit.
--   source.file(path)     : one message body per line (--input FILE, "-" = stdin); nothing to delete.
-- Both give messages as {id =, receipt =, body =, sent_ms =, received_ms =} through
-- src:next_batch(max, max_wait_ms, wait_seconds) and acknowledge them with src:ack(messages).
local sqs = require "etlua.sqs"
local mask = require "etlua.mask"
local host = require "etlua.host"
local fail = require "etlua.fail"
local retry = require "etlua.retry"

local M = {}

-- SQS -----------------------------------------------------------------------------------------
local Sqs = {}
Sqs.__index = Sqs

function M.sqs(cfg, log)
  local client = sqs.client {
    endpoint = cfg.endpoint, queue_url = cfg.queue_url, region = cfg.region,
    access_key = cfg.access_key, secret_key = cfg.secret_key, session_token = cfg.session_token,
    protocol = cfg.protocol, ca_bundle = cfg.ca_bundle,
  }
  local self = setmetatable({ client = client, cfg = cfg, log = log }, Sqs)
  local protocol, err, code = client:detect()
  if not protocol then
    fail.user("cannot reach the SQS endpoint %s: %s; check AWS_ENDPOINT_URL / SQS_QUEUE_URL and that the service is up (%s)",
      cfg.endpoint, err, code or "error")
  end
  if not cfg.queue_url then
    local url, uerr, ucode = client:get_queue_url(cfg.queue_name)
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
      protocol = protocol, ca_bundle = cfg.ca_bundle,
    }
    self.client = client
  end
  -- The queue must exist: ask for an attribute once, so a typo fails at start-up, not later.
  local attrs, aerr, acode = client:attributes({ "VisibilityTimeout" })
  if not attrs then
    if acode == "no_queue" then
      fail.user("queue %s does not exist; create it or fix SQS_QUEUE_URL", cfg.queue_url)
    end
    fail.user("cannot use queue %s: %s (%s)", cfg.queue_url, aerr, acode or "error")
  end
  self.visibility = tonumber(attrs.VisibilityTimeout) or 30
  self.protocol = protocol
  return self
end

-- One ReceiveMessage, retried on throttling, 5xx, timeouts and network errors.
function Sqs:receive(max, wait_seconds)
  return retry.call(self.log, "sqs", function()
    return self.client:receive(max, wait_seconds)
  end)
end

-- next_batch: a long poll for the first messages, then short polls until max messages,
-- max_wait_ms since the first one, or an empty answer. Returns messages, drained: drained is
-- true only when the long poll itself came back empty (a short poll may miss messages).
function Sqs:next_batch(max, max_wait_ms, wait_seconds)
  local batch, first = {}, nil
  while #batch < max and not host.stopping() do
    local msgs, err = self:receive(math.min(10, max - #batch), first and 0 or wait_seconds)
    if not msgs then return nil, err end
    if #msgs == 0 then return batch, first == nil end
    local now = host.now_ms()
    for _, m in ipairs(msgs) do
      m.received_ms = now
      batch[#batch + 1] = m
    end
    first = first or now
    if now - first >= max_wait_ms then break end
  end
  return batch, false
end

-- ack: DeleteMessageBatch, 10 at a time, only after the commit that holds the messages.
-- Entries that fail are logged by id (never by body); SQS will redeliver them and the ledger
-- makes the redelivery harmless.
function Sqs:ack(messages)
  local deleted = 0
  for i = 1, #messages, 10 do
    local entries = {}
    for j = i, math.min(i + 9, #messages) do
      entries[#entries + 1] = { id = tostring(j), receipt = messages[j].receipt }
    end
    local failed, err = retry.call(self.log, "sqs", function()
      return self.client:delete_batch(entries)
    end)
    if not failed then return nil, err end
    for _, f in ipairs(failed) do
      self.log:warn("delete failed; the message will be redelivered and skipped by the ledger",
        { message_id = messages[tonumber(f.id)].id, code = f.code })
    end
    deleted = deleted + #entries - #failed
  end
  return deleted
end

function Sqs:close() self.client:close() end

-- File ----------------------------------------------------------------------------------------
local File = {}
File.__index = File

function M.file(path)
  local f, err
  if path == "-" then
    f = io.stdin
  else
    f, err = io.open(path, "rb")
    if not f then fail.user("cannot read --input %s", err) end
  end
  return setmetatable({ f = f, line = 0, path = path }, File)
end

-- A line's id is stable across runs ("input:<line>:<hash of body>"), so loading the same file
-- twice lands each line once; stdin lines are numbered within this run only.
function File:next_batch(max)
  local batch = {}
  local now = host.now_ms()
  while #batch < max do
    local body = self.f:read("L")
    if not body then return batch, true end
    body = body:gsub("\r?\n$", "")
    self.line = self.line + 1
    if body ~= "" then
      local id
      if self.path == "-" then
        id = string.format("stdin:%d:%d", now, self.line)
      else
        id = string.format("input:%d:%s", self.line, mask.sha256_hex(body):sub(1, 32))
      end
      batch[#batch + 1] = { id = id, body = body, received_ms = now }
    end
  end
  return batch, false
end

function File:ack(messages) return #messages end

function File:close()
  if self.f ~= io.stdin then self.f:close() end
end

return M
