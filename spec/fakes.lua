-- spec/fakes.lua: test doubles for the unit specs of the SQS source, the runner and retry (the
-- integration tests in tests/integration use the real services instead).
--   F.host()           an etlua.host whose clock only moves when told (or when sleep is called)
--   F.client(opts)     an SQS client with the concurrent methods of etlua.sqs over an in-memory
--                      queue (standard, or FIFO with message groups as fauxqs runs them)
--   F.log()            a logger that keeps its lines
--   F.with(fakes, fn)  runs fn with package.loaded[name] = fake for each entry, the etlua Lua
--                      modules reloaded on top of them, and everything restored afterwards
local F = {}

function F.host()
  local h = { t = 1000.0, stop = false, slept = 0, sleeps = 0 }
  function h.mono() return h.t end
  function h.now_ms() return math.floor(h.t * 1000) end
  function h.sleep(s) h.slept, h.sleeps, h.t = h.slept + s, h.sleeps + 1, h.t + s end
  function h.stopping() return h.stop end
  function h.take_reload() return false end
  function h.install_signals() end
  function h.isatty() return false end
  h.version = "test"
  function h.advance(s) h.t = h.t + s end
  return h
end

function F.log()
  local l = { lines = {} }
  local function add(level)
    return function(self, msg, fields)
      self.lines[#self.lines + 1] = { level = level, msg = msg, fields = fields or {} }
    end
  end
  l.info, l.warn, l.error, l.debug = add("info"), add("warn"), add("error"), add("debug")
  function l:count(msg)
    local n = 0
    for _, line in ipairs(self.lines) do if line.msg == msg then n = n + 1 end end
    return n
  end
  return l
end

-- F.client{bodies =, groups = fn(i) -> group id (FIFO) , visibility =, max_inflight =, host =}
-- The queue: visible messages in order; receive takes up to 10 of them (FIFO: the head of each
-- unlocked group, one a group, and the group stays locked while that message is in flight).
-- Requests finish at the next poll, in the order they started; once c.hold is set (for the rest of
-- the client's life), at the poll after the one that sends them (an answer that came in while
-- etlua was elsewhere). Scripted faults:
--   c.start_faults[method] = { {nil, msg, code}, ... }   consumed one per call of c[method]
--   c.answer_faults[kind] = { {err =, code =} | {failed = {ids}}, ... }  consumed one per answer
-- c.calls[method] counts the calls; c.visibility_calls lists {receipts, timeout} in order.
function F.client(o)
  o = o or {}
  local c = {
    queue_url = o.queue_url or "http://sqs.test/000000000000/q", visible = {}, flying = {},
    fifo = o.fifo, locked = {}, requests = {}, next_token = 0, max_inflight = o.max_inflight or 256,
    start_faults = {}, answer_faults = {}, calls = {}, visibility_calls = {}, deleted = {}, held = {},
    vis_timeout = o.visibility or 30, receipt_n = 0, host = o.host,
  }
  for i, body in ipairs(o.bodies or {}) do
    c.visible[#c.visible + 1] = { id = "m" .. i, body = body, group = o.groups and o.groups(i) or nil, seq = i }
  end
  local function count(name) c.calls[name] = (c.calls[name] or 0) + 1 end
  local function fault(method)
    local list = c.start_faults[method]
    if list and #list > 0 then return table.remove(list, 1) end
  end
  local function start(kind, payload)
    if #c.requests >= c.max_inflight then return nil, "every request slot is busy", "busy" end
    c.next_token = c.next_token + 1
    c.requests[#c.requests + 1] = { token = c.next_token, kind = kind, payload = payload }
    return c.next_token
  end

  function c:detect() count("detect"); return "json" end
  function c:protocol() return "json" end
  function c:get_queue_url(name) count("get_queue_url"); return "http://sqs.test/000000000000/" .. name end
  function c:close() self.closed = true end
  function c:pending() return #self.requests + #self.held end
  function c:attributes(_)
    count("attributes")
    local nv = 0
    for _ in pairs(self.flying) do nv = nv + 1 end
    return { VisibilityTimeout = tostring(self.vis_timeout), ApproximateNumberOfMessages = tostring(#self.visible),
      ApproximateNumberOfMessagesNotVisible = tostring(nv) }
  end
  function c:start_receive(max, wait_s)
    count("start_receive")
    -- misuse raises, as etlua.sqs's does
    assert(math.type(max) == "integer" and type(wait_s) == "number", "start_receive: bad arguments")
    local f = fault("start_receive")
    if f then return f[1], f[2], f[3] end
    return start("receive", { max = max, wait = wait_s })
  end
  function c:start_delete_batch(entries, by_position)
    count("start_delete_batch")
    local f = fault("start_delete_batch")
    if f then return f[1], f[2], f[3] end
    return start("delete_batch", { entries = entries, by_position = by_position })
  end
  function c:start_attributes(names)
    count("start_attributes")
    local f = fault("start_attributes")
    if f then return f[1], f[2], f[3] end
    return start("attributes", { names = names })
  end
  function c:start_change_visibility_batch(entries, timeout_s, by_position)
    count("start_change_visibility_batch")
    local f = fault("start_change_visibility_batch")
    if f then return f[1], f[2], f[3] end
    return start("change_visibility_batch", { entries = entries, timeout = timeout_s, by_position = by_position })
  end

  local function unlock(m)
    if m.group then c.locked[m.group] = nil end
  end
  local function receive(max)
    local out, taken, keep = {}, {}, {}
    for _, m in ipairs(c.visible) do
      local ok = #out < max
      if ok and m.group then ok = not c.locked[m.group] and not taken[m.group] end
      if ok then
        c.receipt_n = c.receipt_n + 1
        local receipt = "r" .. c.receipt_n
        c.flying[receipt] = m
        if m.group then c.locked[m.group], taken[m.group] = true, true end
        out[#out + 1] = { id = m.id, receipt = receipt, body = m.body, sent_ms = 1, group_id = m.group }
      else
        keep[#keep + 1] = m
      end
    end
    c.visible = keep
    return out
  end
  -- by_position: an entry's id is its position as text (etlua.sqs's entries taken by position)
  local function settle(entries, fn, by_position)
    local failed = {}
    for i, e in ipairs(entries) do
      local m = c.flying[e.receipt]
      if not m then failed[#failed + 1] = { id = by_position and tostring(i) or e.id, code = "ReceiptHandleIsInvalid" }
      else fn(e.receipt, m) end
    end
    return failed
  end

  function c:poll(timeout_ms)
    count("poll")
    local out, waited = {}, false
    local reqs = self.requests
    self.requests = {}
    if self.hold then reqs, self.held = self.held, reqs end
    for _, r in ipairs(reqs) do
      local f = self.answer_faults[r.kind] and table.remove(self.answer_faults[r.kind], 1)
      if f and f.err then
        out[#out + 1] = { token = r.token, kind = r.kind, err = f.err, code = f.code }
      elseif r.kind == "receive" then
        local got = receive(r.payload.max)
        waited = waited or #got == 0   -- an empty answer is a long poll that waited
        out[#out + 1] = { token = r.token, kind = r.kind, result = got }
      elseif r.kind == "attributes" then
        local nv = 0
        for _ in pairs(self.flying) do nv = nv + 1 end
        local all = { ApproximateNumberOfMessages = tostring(#self.visible),
          ApproximateNumberOfMessagesNotVisible = tostring(nv), ApproximateNumberOfMessagesDelayed = "0" }
        local result = {}
        for _, name in ipairs(r.payload.names) do result[name] = all[name] end
        out[#out + 1] = { token = r.token, kind = r.kind, result = result }
      elseif r.kind == "delete_batch" then
        out[#out + 1] = { token = r.token, kind = r.kind, result = settle(r.payload.entries, function(receipt, m)
          self.flying[receipt] = nil
          self.deleted[#self.deleted + 1] = m.id
          unlock(m)
        end, r.payload.by_position) }
      else
        local receipts = {}
        local failed = settle(r.payload.entries, function(receipt, m)
          receipts[#receipts + 1] = receipt
          if r.payload.timeout == 0 then
            self.flying[receipt] = nil
            unlock(m)
            table.insert(self.visible, 1, m)   -- back at the head, as SQS and fauxqs put it
          end
        end, r.payload.by_position)
        self.visibility_calls[#self.visibility_calls + 1] = { receipts = receipts, timeout = r.payload.timeout }
        out[#out + 1] = { token = r.token, kind = r.kind, result = failed }
      end
    end
    if self.host and waited then self.host.advance(0.1) end
    if #out == 0 and self.host and timeout_ms and timeout_ms > 0 then self.host.advance(timeout_ms / 1000) end
    return out
  end
  return c
end

-- Modules that hold references to etlua.host (or to each other) and so are reloaded on fakes.
local RELOAD = { "etlua.retry", "etlua.telemetry", "etlua.inflight", "etlua.heartbeat", "etlua.queue_depth",
  "etlua.source", "etlua.progress", "etlua.config", "etlua.dryrun", "etlua.pg_connect", "etlua.runner" }

function F.with(fakes, fn)
  local saved = {}
  for _, name in ipairs(RELOAD) do saved[name] = package.loaded[name]; package.loaded[name] = nil end
  for name, fake in pairs(fakes) do saved[name] = package.loaded[name]; package.loaded[name] = fake end
  local ok, err = pcall(fn)
  for name in pairs(saved) do package.loaded[name] = saved[name] end
  for _, name in ipairs(RELOAD) do package.loaded[name] = saved[name] end
  if not ok then error(err, 0) end
end

return F
