-- spec/runner_spec.lua: the loop of etlua.runner (receive -> process -> commit -> delete, the
-- stop, the heartbeat during a commit) with fakes in place of SQS, Postgres and the sink
-- (spec/fakes.lua); the same loop against the real services is in tests/integration.
local F = require "spec.fakes"
local H = require "spec.helper"

local ENV = {
  SQS_QUEUE_URL = "http://127.0.0.1:9/000000000000/login-queue",
  ETLUA_MASK_KEY = H.KEY,
  DATABASE_URL = "postgresql://etlua@127.0.0.1:9/etlua",
  ETLUA_RECEIVE_CONCURRENCY = "4",
  ETLUA_BATCH_SIZE = "10",
  ETLUA_BATCH_MAX_WAIT_MS = "0",
}

local function logins(n)
  local t = {}
  for i = 1, n do t[i] = string.format('{"user_id":"u-%d","locale":"RU"}', i) end
  return t
end

-- run{n =, visibility =, on_commit = fn(items, ctx), mono_step = s, fakes =} -> ctx {client, host,
-- commits, log, rc}; mono_step: the fake clock also moves by s at each host.mono() (work takes
-- time); fakes: more modules to replace
local function run(o)
  local h = F.host()
  if o.mono_step then
    function h.mono() h.t = h.t + o.mono_step; return h.t end
  end
  local ctx = { host = h, commits = {}, log = F.log() }
  ctx.client = F.client { bodies = logins(o.n), host = h, visibility = o.visibility,
    queue_url = o.queue_url or ENV.SQS_QUEUE_URL, fifo = o.groups ~= nil, groups = o.groups }
  local db = { hooks = {} }
  function db:on_wait(interval, fn, first)
    self.hook = interval and { interval = interval, fn = fn, first = first } or nil
  end
  function db:wait_error() local e = self.err; self.err = nil; return e end
  function db:close() end
  function db:status() return "ok" end
  function db:exec() return {}, 0 end
  ctx.db = db
  local fake_sink = {
    open = function() return {
      prune = function() return 0 end,
      commit = function(_, items)
        ctx.commits[#ctx.commits + 1] = items
        if o.on_commit then o.on_commit(items, ctx) end
        return { written = #items, rejected = 0, duplicates = 0, refused = 0 }
      end,
    } end,
  }
  local fakes = {
    ["etlua.host"] = h,
    ["etlua.sqs"] = { client = function() return ctx.client end },
    ["etlua.pg"] = setmetatable({ connect = function() return db end }, { __index = require "etlua.pg" }),
    ["etlua.sink"] = fake_sink,
    ["etlua.ledger"] = { retention = function() return 3600 end,
      open = function() return { maintain = function() end } end },
  }
  for name, fake in pairs(o.fakes or {}) do fakes[name] = fake end
  local getenv = os.getenv
  os.getenv = function(k)
    if k == "SQS_QUEUE_URL" and o.queue_url then return o.queue_url end
    return ENV[k]
  end
  local stdout = io.stdout
  ctx.printed = {}
  io.stdout = { write = function(self, ...)
      for _, v in ipairs({ ... }) do ctx.printed[#ctx.printed + 1] = v end
      return self
    end,
    flush = function() end, setvbuf = function() end }
  local ok, err = pcall(F.with, fakes, function()
    ctx.rc = require("etlua.runner").run({ script = H.ROOT .. "scripts/login_etl.lua", drain = o.drain,
      dry_run = o.dry_run, input = o.input }, ctx.log)
    ctx.loaded_source = package.loaded["etlua.source"] ~= nil
  end)
  io.stdout = stdout
  os.getenv = getenv
  if not ok then error(err, 0) end
  return ctx
end

local function committed_ids(ctx)
  local ids = {}
  for _, items in ipairs(ctx.commits) do
    for _, item in ipairs(items) do ids[#ids + 1] = item.id end
  end
  return ids
end

describe("etlua.runner with fake SQS and sink", function()
  it("drains: every message committed once, then deleted, exit 0", function()
    local ctx = run { n = 45, drain = true }
    assert.equals(0, ctx.rc)
    assert.equals(45, #committed_ids(ctx))
    assert.equals(45, #ctx.client.deleted)
    assert.same({}, ctx.client.visible)
    assert.is_nil(next(ctx.client.flying))
  end)

  it("deletes no message before the commit that holds it", function()
    run { n = 30, drain = true, on_commit = function(items, ctx)
      local deleted = {}
      for _, id in ipairs(ctx.client.deleted) do deleted[id] = true end
      for _, item in ipairs(items) do assert.is_nil(deleted[item.id]) end
    end }
  end)

  it("on a stop: finishes the batch in hand, releases the prefetch, exits 0", function()
    local ctx = run { n = 100, on_commit = function(_, c) c.host.stop = true end }
    assert.equals(0, ctx.rc)
    assert.equals(1, #ctx.commits)
    assert.equals(#ctx.commits[1], #ctx.client.deleted)
    assert.is_nil(next(ctx.client.flying))          -- nothing left invisible
    assert.equals(100 - #ctx.commits[1], #ctx.client.visible)
    assert.equals(1, ctx.log:count("released"))
  end)

  it("arms the heartbeat while a commit waits, covering the batch and the prefetch", function()
    local ctx = run { n = 60, drain = true, visibility = 10, on_commit = function(_, c)
      if #c.commits > 1 then return end
      assert.is_table(c.db.hook)
      assert.is_true(c.db.hook.interval <= 0.01)  -- the hook ticks often; it beats when due
      c.host.advance(6)       -- the commit waits past half the visibility timeout
      c.db.hook.fn()
    end }
    local call = ctx.client.visibility_calls[1]
    assert.is_table(call)
    assert.equals(10, call.timeout)
    local n = 0
    for _, v in ipairs(ctx.client.visibility_calls) do n = n + #v.receipts end
    assert.is_true(n > 10)    -- more than the batch in hand: the prefetch too
    assert.equals(60, #ctx.client.deleted)
    assert.is_nil(ctx.db.hook) -- disarmed after the commit
  end)

  it("says once when the commit's wait hook failed (the error its protected call kept)", function()
    local ctx = run { n = 30, drain = true, on_commit = function(_, c) c.db.err = "hook: boom" end }
    assert.equals(30, #ctx.client.deleted)
    assert.equals(1, ctx.log:count("the commit's wait hook failed; receiving and processing wait for each commit"))
  end)

  it("--dry-run --drain deletes nothing and releases everything it received at the end", function()
    local ctx = run { n = 35, drain = true, dry_run = true }
    assert.equals(0, ctx.rc)
    assert.equals(0, #ctx.client.deleted)
    assert.is_nil(next(ctx.client.flying))   -- nothing left invisible
    assert.equals(35, #ctx.client.visible)
    local _, lines = table.concat(ctx.printed):gsub("\n", "")
    assert.equals(35, lines)                 -- one JSON line a row
  end)

  it("--input loads the file source alone: not etlua.source (the SQS source and its modules)", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(table.concat(logins(3), "\n"), "\n")
    f:close()
    local ctx = run { n = 0, input = path, dry_run = true }
    os.remove(path)
    assert.equals(0, ctx.rc)
    local _, lines = table.concat(ctx.printed):gsub("\n", "")
    assert.equals(3, lines)
    assert.is_false(ctx.loaded_source)
  end)

  it("--dry-run --drain on a FIFO queue ends (its groups stay locked) and releases the heads", function()
    local ctx = run { n = 40, drain = true, dry_run = true, groups = function(i) return "g" .. (i % 4) end,
      queue_url = "http://127.0.0.1:9/000000000000/login-queue.fifo" }
    assert.equals(0, ctx.rc)
    assert.equals(0, #ctx.client.deleted)
    assert.is_nil(next(ctx.client.flying))
    assert.equals(40, #ctx.client.visible)
  end)

  it("processes the next batch while a commit waits; commits it next, deletes none before its commit", function()
    local ahead = 0
    local ctx = run { n = 95, drain = true, on_commit = function(items, c)
      local deleted = {}
      for _, id in ipairs(c.client.deleted) do deleted[id] = true end
      for _, item in ipairs(items) do assert.is_nil(deleted[item.id]) end
      local before = #c.client.visible
      for _ = 1, 20 do c.db.hook.fn() end  -- the commit waits: receives go on, the next batch is processed
      if #c.client.visible < before then ahead = ahead + 1 end
    end }
    local ids = committed_ids(ctx)
    assert.equals(95, #ids)
    for i, id in ipairs(ids) do assert.equals("m" .. i, id) end  -- once each, in the order received
    assert.is_true(ahead > 1)  -- receives went on during commits
    assert.equals(95, #ctx.client.deleted)
    assert.equals(1, ctx.log:count("done"))
  end)

  it("takes the next batch at a later wait of the commit when the first had none at hand", function()
    ENV.ETLUA_RECEIVE_CONCURRENCY = "1"   -- one receive of 10: nothing buffered after a batch of 10
    local late, calls = {}, 0
    local ok, err = pcall(run, { n = 30, drain = true, mono_step = 0.001, on_commit = function(_, c)
      if #c.commits ~= 1 then return end
      local poll = c.client.poll
      c.client.poll = function(self, ...)   -- the first wait: the receive it starts has not answered
        calls = calls + 1
        if calls == 1 then return {} end
        return poll(self, ...)
      end
      for i = 1, 6 do late[i] = c.db.hook.fn() and "+" or "-" end
      c.client.poll = poll
    end })
    ENV.ETLUA_RECEIVE_CONCURRENCY = "4"
    assert(ok, err)
    local r = table.concat(late)
    assert.truthy(r:find("^%-+%+"), r)   -- nothing at the first wait; taken and sliced at a later one
  end)

  -- The commit's waits (the claim, the COPYs, the COMMIT) each call the hook; it processes the
  -- next batch a slice at a time and says "more" (true) while some is left, so the wait calls it
  -- again at once; what the commit leaves undone is processed after it.
  it("processes the next batch in slices over the commit's waits; the rest after the commit", function()
    local runs = {}
    local ctx = run { n = 95, drain = true, mono_step = 0.00005, on_commit = function(_, c)
      local r, k = {}, #c.commits
      for i = 1, 60 do
        r[i] = c.db.hook.fn() and "+" or "-"
        -- odd commits end while the hook still has more to do: the loop finishes that batch
        if k % 2 == 1 and r[i] == "+" then break end
      end
      runs[k] = table.concat(r)
    end }
    local sliced, cut = 0, 0
    for k, r in ipairs(runs) do
      if k % 2 == 0 and r:find("^%-*%+%++%-+$") then sliced = sliced + 1 end  -- several slices, then done
      if k % 2 == 1 and r:find("^%-*%+$") then cut = cut + 1 end
      assert.is_nil(r:find("%+%-+%+"), r)     -- done means done: no slice after the batch finished
    end
    assert.is_true(sliced >= 2, table.concat(runs, " "))
    assert.is_true(cut >= 2, table.concat(runs, " "))
    local ids = committed_ids(ctx)
    assert.equals(95, #ids)
    for i, id in ipairs(ids) do assert.equals("m" .. i, id) end  -- once each, in the order received
    for _, items in ipairs(ctx.commits) do
      for _, item in ipairs(items) do assert.is_table(item.row or item.rows or item.reject or item.drop) end
    end
    assert.equals(95, #ctx.client.deleted)
  end)

  it("a slice that raised in the hook: the batch is processed again from its start after the commit", function()
    local record = require "etlua.record"
    local raising, processed = false, {}
    local fake_record = setmetatable({ new = function(...)
      local p = record.new(...)
      local item = p.item -- what the runner calls for each message
      function p.item(self, m)
        processed[m.id] = (processed[m.id] or 0) + 1
        if raising and m.id == "m12" and processed[m.id] == 1 then error("processing bug") end
        return item(self, m)
      end
      return p
    end }, { __index = record })
    local ctx = run { n = 50, drain = true, mono_step = 0.0000125, fakes = { ["etlua.record"] = fake_record },
      on_commit = function(_, c)
        if #c.commits ~= 1 then return end
        -- what pg_wait.c does: the hook under a protected call, its error kept for wait_error
        raising = true
        local err
        for _ = 1, 30 do -- until the receives brought the next batch and its first slice raised
          local ok, more = pcall(c.db.hook.fn)
          if not ok then err = more break end
          assert.is_false(more) -- (the clock moves 12.5 us a call: m11 and m12 are one 50 us slice)
        end
        raising = false
        assert.truthy(tostring(err):find("processing bug", 1, true))
        c.db.err = err
        assert.is_false(c.db.hook.fn())  -- no slice after one raised
      end }
    local ids = committed_ids(ctx)
    assert.equals(50, #ids)
    for i, id in ipairs(ids) do assert.equals("m" .. i, id) end
    -- the next batch's first message processed in the slice, its second raised: both again after
    assert.equals(2, processed.m11)
    assert.equals(2, processed.m12)
    assert.equals(1, processed.m13)
    assert.equals(1, ctx.log:count("the commit's wait hook failed; receiving and processing wait for each commit"))
    assert.equals(50, #ctx.client.deleted)
  end)
end)
