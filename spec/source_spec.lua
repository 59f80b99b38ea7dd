-- spec/source_spec.lua: the SQS source (etlua.source, etlua.inflight, etlua.heartbeat) against a
-- fake client (spec/fakes.lua): receive and drain, deletes after ack, the "busy" and "client"
-- codes, scheduled retries that never sleep while requests are in flight, the heartbeat, the
-- release at a stop, and FIFO queues (locked groups are not "drained"; a batch does not wait on them).
local F = require "spec.fakes"

local function bodies(n)
  local t = {}
  for i = 1, n do t[i] = '{"n":' .. i .. '}' end
  return t
end

-- Runs fn(source, host) with the source modules loaded on a fake host.
local function with_source(fn)
  local h = F.host()
  F.with({ ["etlua.host"] = h }, function() fn(require "etlua.source", h) end)
end

local function open(source, client, cfg)
  cfg = cfg or {}
  cfg.queue_url = cfg.queue_url or client.queue_url
  cfg.receive_concurrency = cfg.receive_concurrency or 4
  cfg.outage_seconds = cfg.outage_seconds or 300
  local log = F.log()
  return source.sqs(cfg, log, function() return client end), log
end

-- Runs fn(src, client, h, log): a source opened (cfg: as open's) on a fake client on a fake host;
-- settings are the fake client's, with bodies a count ({ bodies = 30, visibility = 10 }).
local function with_queue(settings, cfg, fn)
  with_source(function(source, h)
    settings.host = h
    if settings.bodies then settings.bodies = bodies(settings.bodies) end
    local client = F.client(settings)
    local src, log = open(source, client, cfg)
    fn(src, client, h, log)
  end)
end

-- Takes batches until drained; acks each. Returns the ids in the order they were taken.
local function drain(src, max, wait_ms)
  local ids = {}
  for _ = 1, 1000 do
    local batch, drained = src:next_batch(max or 10, wait_ms or 50, 1)
    assert(batch, drained)
    for _, m in ipairs(batch) do ids[#ids + 1] = m.id end
    if #batch > 0 then src:ack(batch) end
    if drained then return ids end
  end
  error("never drained")
end

describe("etlua.source (SQS) with a fake client", function()
  it("uses the client it is given, resolves a queue name, reads the visibility timeout", function()
    with_source(function(source)
      local client = F.client { visibility = 40 }
      local src = source.sqs({ queue_name = "login-queue", receive_concurrency = 2, outage_seconds = 1 },
        F.log(), function() return client end)
      assert.equals(1, client.calls.get_queue_url)
      assert.equals(40, src.visibility)
      assert.is_false(src.fifo)
    end)
  end)

  it("drains a standard queue and deletes every message after ack", function()
    with_queue({ bodies = 35 }, nil, function(src, client)
      local ids = drain(src, 10)
      assert.equals(35, #ids)
      assert.equals(35, src:flush())
      assert.equals(35, #client.deleted)
      assert.same({}, client.visible)
      assert.is_nil(next(client.flying))
    end)
  end)

  it("waits for a free slot on 'busy' without sleeping and without losing a delete", function()
    with_source(function(source, h)
      local client = F.client { bodies = bodies(30), host = h }
      client.start_faults.start_delete_batch = { { nil, "full", "busy" }, { nil, "full", "busy" } }
      local src = open(source, client)
      drain(src, 30)
      assert.equals(30, src:flush())
      assert.equals(30, #client.deleted)
      assert.is_true(client.calls.start_delete_batch >= 5)
    end)
  end)

  it("tries no request while every slot of the client is taken, and starts it once one frees", function()
    with_source(function(_, h)
      local inflight = require "etlua.inflight"
      local client = F.client { host = h, max_inflight = 2 }
      for i = 1, 3 do client.flying["r" .. i] = { id = "m" .. i } end
      local t = inflight.new(client, 2)
      local settled = 0
      local function done() settled = settled + 1 end
      for i = 1, 3 do t:submit("delete", { { id = "m" .. i, receipt = "r" .. i } }, nil, done) end
      assert.equals(2, client.calls.start_delete_batch)   -- the third waits: not built, not tried
      t:tick()
      assert.equals(2, client.calls.start_delete_batch)
      for _, answer in ipairs(client:poll(0)) do t:settle(answer) end
      t:tick()
      assert.equals(3, client.calls.start_delete_batch)
      for _, answer in ipairs(client:poll(0)) do t:settle(answer) end
      assert.equals(3, settled)
      assert.is_true(t:idle())
      assert.equals(3, #client.deleted)
    end)
  end)

  it("starts no request while every slot is taken (each would be built for nothing), and drains", function()
    with_queue({ bodies = 2600 }, { receive_concurrency = 128 }, function(src, client)
      local tries, busy = 0, 0
      local start = client.start_receive
      client.start_receive = function(c, ...)
        tries = tries + 1
        if c:pending() >= 256 then busy = busy + 1 end
        return start(c, ...)
      end
      local held = {}
      for _ = 1, 400 do   -- 260 deletes held back, then started at once: more than the 256 slots
        local batch = src:next_batch(10, 0, 1)
        if #batch == 0 then break end
        held[#held + 1] = batch
      end
      for _, b in ipairs(held) do src:ack(b) end
      local ids = drain(src, 10)
      assert.equals(2600, #held * 10 + #ids)
      assert.equals(2600, src:flush())
      assert.equals(0, busy)
      assert.equals(260, client.calls.start_delete_batch)   -- each delete tried once
      assert.is_true(tries > 0)
    end)
  end)

  it("takes 'client' with nothing else in flight as a real error, not as busy", function()
    with_queue({ bodies = 5 }, nil, function(src, client, _, log)
      local batch = src:next_batch(5, 0, 1)
      assert.equals(5, #batch)
      client.start_faults.start_delete_batch = { { nil, "cannot sign the request", "client" } }
      src:ack(batch)
      assert.equals(0, src:flush())   -- ends: no endless retry loop
      assert.equals(1, log:count("delete failed; the messages will be redelivered and skipped by the ledger"))
      assert.equals(1, client.calls.start_delete_batch)
    end)
  end)

  it("takes 'client' as a real error also while other requests are in flight", function()
    with_source(function(_, h)
      local inflight = require "etlua.inflight"
      local client = F.client { host = h }
      client.flying.r0 = { id = "x" }
      local t = inflight.new(client)
      local settled = {}
      local function done(_, failed, _, code) settled[#settled + 1] = { failed = failed, code = code } end
      t:submit("delete", { { id = "a", receipt = "r0" } }, nil, done)   -- in flight
      client.start_faults.start_delete_batch = { { nil, "signing failed", "client" } }
      t:submit("delete", { { id = "b", receipt = "rb" } }, nil, done)
      assert.equals(1, #settled)
      assert.is_nil(settled[1].failed)
      assert.equals("client", settled[1].code)
      assert.equals(2, client.calls.start_delete_batch)
    end)
  end)

  it("ends the run on a 'client' code when starting a receive, instead of spinning", function()
    with_queue({ bodies = 5 }, nil, function(src, client)
      local always = {}
      for i = 1, 100 do always[i] = { nil, "signing failed", "client" } end
      client.start_faults.start_receive = always
      local batch, err, code = src:next_batch(5, 0, 1)
      assert.is_nil(batch)
      assert.equals("signing failed", err)
      assert.equals("client", code)
      assert.equals(1, client.calls.start_receive)
    end)
  end)

  it("waits for a free slot when a receive finds the client busy", function()
    with_queue({ bodies = 5 }, nil, function(src, client)
      client.start_faults.start_receive = { { nil, "full", "busy" }, { nil, "full", "busy" } }
      local batch = src:next_batch(5, 1000, 1)
      assert.equals(5, #batch)
    end)
  end)

  it("schedules the retry of a failed delete instead of sleeping", function()
    with_source(function(source, h)
      local client = F.client { bodies = bodies(10), host = h }
      client.answer_faults.delete_batch = { { err = "503", code = "server" } }
      local src = open(source, client)
      local batch = src:next_batch(10, 0, 1)
      src:ack(batch)
      local sleeps = h.sleeps
      src:pump(0)                      -- the delete fails: scheduled, not slept on
      assert.equals(sleeps, h.sleeps)
      assert.is_false(src.tracker:idle())
      assert.equals(0, #client.deleted)
      assert.equals(10, src:flush())   -- waits for the retry's time, then it succeeds
      assert.equals(10, #client.deleted)
      assert.equals(2, client.calls.start_delete_batch)
    end)
  end)

  it("gives up a delete after retry.attempts and says so once", function()
    with_source(function(source, h)
      local retry = require "etlua.retry"
      local client = F.client { bodies = bodies(3), host = h }
      local faults = {}
      for i = 1, retry.attempts do faults[i] = { err = "503", code = "server" } end
      client.answer_faults.delete_batch = faults
      local src, log = open(source, client)
      src:ack(src:next_batch(3, 0, 1))
      assert.equals(0, src:flush())
      assert.equals(retry.attempts, client.calls.start_delete_batch)
      assert.equals(1, log:count("delete failed; the messages will be redelivered and skipped by the ledger"))
    end)
  end)

  it("extends the visibility of everything held once the soonest is past half its timeout", function()
    with_queue({ bodies = 25, visibility = 10 }, nil, function(src, client, h)
      local batch = src:next_batch(10, 0, 1)     -- 10 in hand, the rest buffered
      assert.equals(10, #batch)
      assert.is_true(#src.buffer > 0)
      local held = #batch + #src.buffer
      local interval, beat, first = src:commit_hook()
      assert.equals(5, interval)
      assert.is_true(first > 0 and first <= 5)
      h.advance(6)
      beat()
      local extended = 0
      for _, call in ipairs(client.visibility_calls) do
        assert.equals(10, call.timeout)
        extended = extended + #call.receipts
      end
      assert.equals(held, extended)
      assert.is_true(batch[1].visible_until_ms > h.now_ms())
      -- the oldest held message was extended: the soonest deadline is looked for among all held
      -- (the extension's), so the next beat is half a timeout after this one
      local _, _, again = src:commit_hook()
      assert.is_true(again > 4 and again <= 5)
    end)
  end)

  it("extends the prefetch while a batch waits to fill, without waiting for the answers", function()
    with_queue({ bodies = 25, visibility = 10 }, nil, function(src, client, h)
      local batch = src:next_batch(30, 8000, 1)   -- never full: taken after 8 s
      assert.equals(25, #batch)
      assert.is_true(#client.visibility_calls >= 3)
      for _, call in ipairs(client.visibility_calls) do assert.equals(10, call.timeout) end
      for _, m in ipairs(batch) do assert.is_true(m.visible_until_ms > h.now_ms() + 4000) end
    end)
  end)

  it("take_ready: a whole batch already buffered, else nil; two batches in hand, each acked alone", function()
    with_queue({ bodies = 30 }, { receive_concurrency = 4 }, function(src)
      local first = src:next_batch(10, 0, 1)
      assert.equals(10, #first)
      for _ = 1, 5 do src:tend(1) end          -- as the commit's wait hook does: never waits
      assert.equals(20, #src.buffer)
      local second = src:take_ready(10)
      assert.equals(10, #second)
      assert.equals("m11", second[1].id)       -- in the order received, after the first batch
      assert.is_nil(src:take_ready(11))        -- not a whole batch at hand: nothing taken
      assert.equals(30, #src:held())           -- both batches in hand and the buffer
      src:ack(first)                           -- the first commits first
      local held = src:held()
      assert.equals(20, #held)                 -- the second batch and the buffer
      assert.equals("m11", held[1].id)
      src:ack(second)
      assert.equals(10, #src:held())
      assert.same({ "m21", "m22", "m23", "m24", "m25", "m26", "m27", "m28", "m29", "m30" }, drain(src, 10))
      assert.equals(30, src:flush())
    end)
  end)

  it("acknowledging the later batch in hand first leaves the earlier one held", function()
    with_queue({ bodies = 30 }, { receive_concurrency = 4 }, function(src)
      local first = src:next_batch(10, 0, 1)
      for _ = 1, 5 do src:tend(1) end
      local second = src:take_ready(10)
      src:ack(second)
      local held = src:held()
      assert.equals(20, #held)                 -- the first batch, then the buffer
      assert.equals("m1", held[1].id)
      assert.equals("m21", held[11].id)
      src:ack(first)
      assert.equals(10, #src:held())
      assert.is_nil(src.in_hand)
    end)
  end)

  it("tend() as the commit's wait hook calls it (no argument): long polls of the last next_batch", function()
    with_queue({ bodies = 100 }, { receive_concurrency = 4 }, function(src, client)
      src:tend()                               -- before any next_batch: nothing started, no error
      assert.equals(0, client.calls.start_receive or 0)
      local first = src:next_batch(10, 0, 1)
      assert.equals(10, #first)
      local before, buffered = client.calls.start_receive, #src.buffer
      for _ = 1, 5 do src:tend() end
      assert.is_true(client.calls.start_receive > before)
      assert.is_true(#src.buffer > buffered)
      assert.equals(10, #src:take_ready(10))
    end)
  end)

  -- The receive window (etlua.receive_window) as the source drives it.
  local function receives_in_flight(client)
    local n = 0
    for _, r in ipairs(client.requests) do if r.kind == "receive" then n = n + 1 end end
    return n
  end

  it("grows the receives in flight while a waiting consumer gets full answers, up to the ceiling", function()
    with_source(function(source, h)
      local client = F.client { bodies = bodies(3000), host = h }
      local most = 0
      local start = client.start_receive
      function client.start_receive(c, ...)
        local token, err, code = start(c, ...)
        most = math.max(most, receives_in_flight(c))
        return token, err, code
      end
      local src = open(source, client, { receive_concurrency = 20 })
      local window = require "etlua.receive_window"
      assert.equals(window.START, src.window:size())
      for _ = 1, 3 do src:ack(src:next_batch(200, 500, 1)) end
      assert.equals(20, src.window.peak)
      assert.equals(20, most)                 -- the ceiling, never more
    end)
  end)

  it("counts no time etlua spends between polls against the server", function()
    -- receives started, then etlua busy 50 ms (a batch, a commit) before it polls: the poll sends
    -- them, so their round trips start there, and nothing waited at the server
    with_queue({ bodies = 6000 }, { receive_concurrency = 40 }, function(src, client, h)
      src:ack(src:next_batch(200, 500, 1))   -- grows past the slow verdict's least
      local size = src.window:size()
      assert.is_true(size > require("etlua.receive_window").SLOW_MIN)
      src:ack(src:take_ready(#src.buffer))
      assert.is_true(src:fill(1))
      local started = receives_in_flight(client)
      assert.is_true(started > 0)
      h.advance(0.05)
      src:pump(0)
      assert.equals(started, #src.buffer // 10)
      assert.is_true(src.window:size() >= size)
    end)
  end)

  -- Answers a poll finds at once came in at some time after the poll before: only the wait until
  -- that poll surely counts against the server (the client holds each answer one poll).
  local function held_answers(busy_s, first_poll_ms, check)
    with_queue({ bodies = 6000 }, { receive_concurrency = 40 }, function(src, client, h)
      src:ack(src:next_batch(200, 500, 1))   -- grows past the slow verdict's least; floor 0
      local size = src.window:size()
      assert.is_true(size > require("etlua.receive_window").SLOW_MIN)
      src:ack(src:take_ready(#src.buffer))
      client.hold = true
      assert.is_true(src:fill(1))
      local started = receives_in_flight(client)
      assert.is_true(started > 0)
      assert.equals(0, src:pump(first_poll_ms))   -- sends them; nothing has come back yet
      h.advance(busy_s)
      assert.equals(started * 10, src:pump(0))     -- returns at once with every answer
      check(src.window:size(), size)
    end)
  end

  it("counts no time an answer waited for etlua's next poll against the server", function()
    -- etlua busy 50 ms after the poll that sent the receives: the answers came in at some time
    -- in those 50 ms, and the poll that sent them returned at once, so none surely waited
    held_answers(0.05, 0, function(after, before) assert.equals(before, after) end)
  end)

  it("judges answers slow by the poll before when that poll waited for them in vain", function()
    -- the poll that sent the receives waited 60 ms (the fake's clock) and none came back: each
    -- answer the next poll finds at once waited at least that long at the server
    held_answers(0, 60, function(after, before)
      assert.is_true(after < before)
      assert.is_true(after >= require("etlua.receive_window").SLOW_MIN)
    end)
  end)

  it("shrinks to one long poll while the queue answers empty", function()
    with_queue({}, { receive_concurrency = 64 }, function(src, client)
      for _ = 1, 10 do
        local batch, drained = src:next_batch(10, 50, 1)
        assert.same({}, batch)
        assert.is_true(drained)
      end
      assert.equals(1, src.window:size())
      local before = client.calls.start_receive
      src:next_batch(10, 50, 1)
      assert.equals(1, client.calls.start_receive - before)
    end)
  end)

  it("shrinks the receives while the prefetch stays two batches ahead of what is taken", function()
    with_queue({ bodies = 3000 }, { receive_concurrency = 20 }, function(src)
      src:ack(src:next_batch(200, 500, 1))    -- a consumer of 200 at a time: grows to the ceiling
      local peak = src.window:size()
      assert.equals(20, peak)
      for _ = 1, 10 do                        -- then one of 10 a round
        src:tend()
        src:ack(src:take_ready(10))
      end
      assert.is_true(src.window:size() < peak)
      assert.is_true(#src.buffer >= 20)       -- still two batches at hand: nothing starved
    end)
  end)

  it("deletes that wait for a request slot get the freed slots before any new receive", function()
    with_queue({ bodies = 600, max_inflight = 10 }, { receive_concurrency = 10 }, function(src, client)
      local batch = src:next_batch(200, 500, 1)
      assert.equals(200, #batch)
      src:ack(batch)                          -- 20 deletes: 10 slots, the rest wait
      assert.equals(10, #src.tracker.waiting)
      src:tend()                              -- the first 10 answered: their slots go to the rest
      assert.equals(100, #client.deleted)
      assert.equals(0, #src.tracker.waiting)
      assert.equals(10, src.tracker:flying_count())
      assert.equals(0, receives_in_flight(client))
      src:tend()
      assert.equals(200, #client.deleted)
      local buffered = #src.buffer
      src:tend()                              -- then the receives go on
      assert.is_true(#src.buffer > buffered)
    end)
  end)

  it("on a stop, releases the prefetch and an unacknowledged batch (visibility 0), latest first", function()
    with_queue({ bodies = 30 }, nil, function(src, client, h, log)
      local batch = src:next_batch(10, 0, 1)
      src:ack(batch)                          -- committed and acknowledged: deleted, not released
      local second = src:next_batch(5, 0, 1)  -- in hand, never committed
      assert.equals(5, #second)
      h.stop = true
      local again = src:next_batch(10, 0, 1)
      assert.same({}, again)
      src:flush()
      assert.equals(10, #client.deleted)
      assert.is_nil(next(client.flying))       -- nothing left invisible
      assert.equals(20, #client.visible)
      assert.equals("m11", client.visible[1].id)  -- back in their order
      for _, call in ipairs(client.visibility_calls) do assert.equals(0, call.timeout) end
      assert.equals(1, log:count("released"))
    end)
  end)
end)

describe("etlua.source on a FIFO queue (fake client with message groups)", function()
  local function fifo_client(h, n, groups)
    return F.client { bodies = bodies(n), host = h, fifo = true,
      queue_url = "http://sqs.test/000000000000/q.fifo",
      groups = function(i) return "g" .. (i % groups) end }
  end

  it("is told by the .fifo name", function()
    with_source(function(source, h)
      assert.is_true(open(source, fifo_client(h, 1, 1)).fifo)
    end)
  end)

  it("does not take an empty receive while groups are locked for the end of the drain", function()
    with_source(function(source, h)
      local client = fifo_client(h, 60, 3)
      local src = open(source, client)
      local ids = drain(src, 10, 500)
      assert.equals(60, #ids)
      assert.is_true(client.calls.attributes >= 2)   -- start-up + the drain's check
      assert.same({}, client.visible)
    end)
  end)

  it("keeps each group's order and does not wait for a full batch on locked groups", function()
    with_source(function(source, h)
      local client = fifo_client(h, 40, 4)
      local src = open(source, client)
      local t0 = h.mono()
      local batch = src:next_batch(200, 500, 1)
      assert.equals(4, #batch)                 -- one message a group is all SQS hands out
      assert.is_true(h.mono() - t0 < 0.5)      -- taken without waiting out max_wait_ms
      src:ack(batch)
      local seen = {}
      for _, id in ipairs(drain(src, 200, 500)) do
        local n = tonumber(id:sub(2))
        local g = n % 4
        assert.is_true((seen[g] or 0) < n)
        seen[g] = n
      end
    end)
  end)

  it("take_ready: whatever is buffered at the commit's first wait, nothing at a later one", function()
    with_source(function(source, h)
      local client = fifo_client(h, 40, 8)
      local src = open(source, client)
      local batch = src:next_batch(3, 500, 1)
      assert.equals(3, #batch)
      src:tend(1)
      assert.is_true(#src.buffer > 0)
      assert.is_nil(src:take_ready(200, true))     -- later: the few that came in meanwhile stay
      local second = src:take_ready(200)
      assert.is_true(#second > 0)                  -- first: whatever is buffered is a batch
    end)
  end)

  it("does not end the drain while another consumer holds a message in flight", function()
    with_source(function(source, h)
      local client = fifo_client(h, 0, 1)
      client.flying.other, client.locked.g9 = { id = "m-other", body = "{}", group = "g9" }, true
      local src = open(source, client)
      local polls, poll = 0, client.poll
      client.poll = function(self, t)   -- later, the other consumer's visibility timeout ends
        polls = polls + 1
        if polls == 20 then
          local m = self.flying.other
          self.flying.other, self.locked.g9 = nil, nil
          self.visible[#self.visible + 1] = m
        end
        return poll(self, t)
      end
      assert.same({ "m-other" }, drain(src, 10, 50))
      assert.is_true(polls > 20)
    end)
  end)

  it("keeps only the receives a FIFO queue can answer in flight", function()
    with_source(function(source, h)
      local client = fifo_client(h, 50, 1)
      local src = open(source, client, { receive_concurrency = 64 })
      local batch = src:next_batch(10, 500, 1)
      assert.equals(1, #batch)
      assert.is_true(client.calls.start_receive < 10, client.calls.start_receive)
      src:ack(batch)
      assert.equals(50, 1 + #drain(src, 10, 500))
    end)
  end)
end)

describe("etlua.source.file (--input)", function()
  local function lines_of(content)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb")); f:write(content); f:close()
    local got
    with_source(function(source)
      local src = source.file(path)
      local batch, eof = src:next_batch(100)
      assert.is_true(eof)
      src:close()
      got = batch
    end)
    os.remove(path)
    return got
  end

  it("takes a body per line without its line end (\\n or \\r\\n), skips blank lines, numbers lines", function()
    local batch = lines_of('{"a":1}\r\n\n{"b":2}\n\r\n{"c":3}\r{"d":4}')
    local got, lines = {}, {}
    for i, m in ipairs(batch) do got[i], lines[i] = m.body, m.input_line end
    assert.are.same({ '{"a":1}', '{"b":2}', '{"c":3}\r{"d":4}' }, got)
    assert.are.same({ 1, 3, 5 }, lines)
    assert.are.equal(batch[1].id, "input:" .. batch[1].input_file .. ":1")
  end)

  it("numbers lines across batches", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb")); f:write("a\n\nb\nc\nd"); f:close()
    with_source(function(source)
      local src = source.file(path)
      local one, eof1 = src:next_batch(2)
      local two, eof2 = src:next_batch(2)
      local three, eof3 = src:next_batch(2)
      src:close()
      assert.are.same({ false, false, true }, { eof1, eof2, eof3 })
      assert.are.same({ 1, 3, 4, 5 }, { one[1].input_line, one[2].input_line, two[1].input_line, two[2].input_line })
      assert.are.same({ "a", "b", "c", "d" }, { one[1].body, one[2].body, two[1].body, two[2].body })
      assert.are.equal(0, #three)
      assert.are.equal("input:" .. one[1].input_file .. ":5", two[2].id)
    end)
    os.remove(path)
  end)

  -- the file is read in chunks of 64 KiB: lines across their edges, longer than one, a \r\n cut
  -- between two, a last line without \n, read as io.lines reads them
  it("reads lines across chunk edges as io.lines does", function()
    local parts, seed = {}, 7
    local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    for i = 1, 400 do
      local len = ({ 0, 1, 170, 4000, 65535, 65536, 70000, 200000 })[rand(8) + 1]
      parts[#parts + 1] = ("%06d"):format(i) .. ("x"):rep(len) .. (rand(3) == 0 and "\r\n" or "\n")
    end
    parts[#parts + 1] = "last line without a line end"
    local content = table.concat(parts)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb")); f:write(content); f:close()
    local want, number = {}, 0
    for l in io.lines(path) do
      number = number + 1
      l = l:gsub("\r$", "")
      if l ~= "" then want[#want + 1] = number .. ":" .. l end
    end
    local got = {}
    with_source(function(source)
      local src = source.file(path)
      repeat
        local batch, eof = src:next_batch(7)
        for _, m in ipairs(batch) do got[#got + 1] = m.input_line .. ":" .. m.body end
      until eof
      src:close()
    end)
    os.remove(path)
    assert.are.equal(#want, #got)
    for i = 1, #want do
      if want[i] ~= got[i] then assert.are.equal(want[i]:sub(1, 80), got[i]:sub(1, 80)) end
      assert.are.equal(#want[i], #got[i])
    end
  end)

  it("spells each line's number in its id in decimal", function()
    local at = { 1, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1099, 1100, 9999, 10000, 100001, 999999, 1000000, 1000001 }
    local lines, want = {}, {}
    for _, l in ipairs(at) do lines[l] = "x" .. l end
    local parts = {}
    for l = 1, at[#at] do parts[l] = lines[l] or "" end
    local batch = lines_of(table.concat(parts, "\n"))
    for i, l in ipairs(at) do want[i] = "input:" .. batch[1].input_file .. ":" .. tostring(l) end
    local got = {}
    for i, m in ipairs(batch) do got[i] = m.id end
    assert.are.same(want, got)
  end)

  -- stdin's ids are spelled in Lua (source_file.lua), a file's in C (etlua.lines): the same number
  -- text after "stdin:<ms of the batch>:", which the ledger's entry rule reads back as the line
  it("spells a stdin line's number in its id as a file's, after stdin:<ms>:", function()
    local at = { 1, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1099, 1100, 9999, 10000, 100001, 999999, 1000000, 1000001 }
    local lines = {}
    for _, l in ipairs(at) do lines[l] = "x" .. l end
    local tmp = assert(io.tmpfile())
    for l = 1, at[#at] do tmp:write(lines[l] or "", l < at[#at] and "\n" or "") end
    tmp:seek("set", 0)
    local batch
    with_source(function(source)
      local src = source.file("-")
      src.f = tmp   -- stdin, as the process would have it
      local eof
      batch, eof = src:next_batch(100)
      assert.is_true(eof)
    end)
    tmp:close()
    local prefix = assert(batch[1].id:match("^(stdin:%d+:)1$"))
    local want, got, numbers = {}, {}, {}
    for i, l in ipairs(at) do want[i] = prefix .. tostring(l) end
    for i, m in ipairs(batch) do got[i], numbers[i] = m.id, m.input_line end
    assert.are.same(want, got)
    assert.are.same(at, numbers)
    local entries = require "etlua.ledger_entries"
    for _, m in ipairs(batch) do   -- the ledger's rule reads the line back from the id alone
      local seq = entries.entry("q", m.id)
      assert.are.equal(m.input_line, seq)
    end
  end)

  it("gives the same ids to the same content read again", function()
    local a, b = lines_of("x\ny\n"), lines_of("x\ny\n")
    assert.are.same({ a[1].id, a[2].id }, { b[1].id, b[2].id })
    assert.are_not.equal(a[1].id, lines_of("x\nz\n")[1].id)
  end)
end)
