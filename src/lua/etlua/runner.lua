-- etlua.runner: the loop, top to bottom as the data flows:
--   receive → process each body (decode → masks → validate → rules → transform) → commit → delete
-- A message is deleted (acknowledged) only after the transaction holding its row or its reject
-- has committed; the ledger in that transaction makes any redelivery land once.
local config = require "etlua.config"
local script_loader = require "etlua.script"
local record = require "etlua.record"
local sink = require "etlua.sink"
local ledger = require "etlua.ledger"
local retry = require "etlua.retry"
local fail = require "etlua.fail"
local mask = require "etlua.mask"
local pg_connect = require "etlua.pg_connect"
local host = require "etlua.host"
local telemetry = require "etlua.telemetry"
local progress = require "etlua.progress"

local M = {}

-- Postgres ------------------------------------------------------------------------------------
-- Connects (etlua.pg_connect: synchronous_commit set on every connection), retrying with
-- backoff. At start-up (no deadline) a few attempts, then a one-line error; mid-run, until the
-- outage deadline (ETLUA_OUTAGE_SECONDS) or a stop signal, since the batch in hand must be
-- committed before anything is deleted.
local function connect(cfg, log, deadline)
  local db, err
  repeat
    db, err = retry.call(log, "postgres", function()
      return pg_connect.durable(cfg.database_url, cfg.synchronous_commit)
    end)
  until db or not deadline or host.mono() > deadline or host.stopping()
  if not db then pg_connect.fail(err) end
  return db
end

local function open_sink(cfg, script, ledger_opts, current_proc, log, deadline)
  local db = connect(cfg, log, deadline)
  local l, lerr = ledger.open(db, ledger_opts)
  if not l then fail.user("cannot prepare the ledger in Postgres: %s", lerr) end
  local s, err, code = sink.open(db, {
    outputs = script.outputs, rejects_table = script.rejects_table, schema = script.schema,
    ledger = l,
    reject_body = function(item, err) return current_proc():stored_body(item, err) end,
    -- the PII vault: raw values sealed in the batch's transaction, when a key is set
    in_transaction = cfg.vault_key and require("etlua.pii_vault").writer(cfg.vault_key) or nil,
  })
  if not s and code == "table_mismatch" then fail.user("%s", err) end
  if not s then fail.user("cannot prepare the tables in Postgres: %s", err) end
  if cfg.vault_key then
    local ok, verr = require("etlua.pii_vault").prepare(db)
    if not ok then fail.user("cannot prepare the PII vault table etlua_vault.pii: %s", verr) end
  end
  return s, db
end

-- A batch and how far its processing got: messages, drained (what the source said with them), the
-- processor, items and ndone (the outcomes so far: items[1..ndone], for messages[1..ndone]), next
-- (the index of the next message to process; past the end once the batch is finished).
-- plain: the source's messages carry none of an SQS message's own fields (src.plain: --input),
-- so the processor's p:item_plain makes their items.
local function batch_of(proc, messages, drained, plain)
  return { messages = messages, drained = drained, proc = proc, items = {}, ndone = 0, next = 1,
           item_of = plain and proc.item_plain or proc.item }
end

-- Process a batch, from where it got to: every message gets exactly one outcome: rows, a reject
-- or a drop, as its item (etlua.record's p:item: the ledger key is the SNS MessageId under
-- envelope = "sns", else the message id; sent_ms is the time a redelivery shares with its first
-- delivery). until_s (a host.mono() time, or nil: to the end) makes it a slice: it returns after
-- the first message that ends at or past until_s. Returns true once the batch is finished;
-- b.ndone: the messages with an outcome (items[1..ndone]).
-- A stop signal that cuts a hook call short ends the batch there: that message and those after
-- it get no outcome, are neither committed nor acknowledged, and the source releases them (a
-- FIFO group's order is kept).
local function process(b, log, verbose, until_s)
  local proc, messages, items = b.proc, b.messages, b.items
  local item_of = b.item_of
  local n, i, ndone = #messages, b.next, b.ndone
  while i <= n do
    local m = messages[i]
    local item, stopped = item_of(proc, m)
    if not item then
      log:info("stop signal: script hooks stopped; this message and the rest of the batch are not committed (released)",
               { message_id = m.id, hook = stopped, left = n - i + 1 })
      i = n + 1
      break
    end
    items[i], ndone = item, i
    if verbose and item.reject then
      log:info("rejected", { message_id = m.id, reason = item.reject.reason, detail = item.reject.detail })
    end
    i = i + 1
    if until_s and host.mono() >= until_s then break end
  end
  b.next, b.ndone = i, ndone
  return i > n
end

local function count(stats, summary, items)
  stats.written = stats.written + summary.written
  stats.rejected = stats.rejected + summary.rejected
  stats.dropped = stats.dropped + (summary.dropped or 0)
  stats.duplicates = stats.duplicates + (summary.duplicates or 0)
  telemetry.written(summary.written)
  if (summary.dropped or 0) > 0 then telemetry.dropped(summary.dropped) end
  -- per item: the rejects by reason, and the lag only when metrics are served (a batch that
  -- stored no reject, with metrics off, is not looked at again)
  local lag = telemetry.serving() and telemetry.event_lag
  if not lag and summary.rejected == 0 then return end
  local now, by_reason = lag and host.now_ms(), nil
  for i = 1, #items do
    local item = items[i]
    if item.duplicate then -- ledger-skipped: it landed before, and was counted then
    elseif item.reject then
      local r = item.reject.reason
      stats.by_reason[r] = (stats.by_reason[r] or 0) + 1
      by_reason = by_reason or {}
      by_reason[r] = (by_reason[r] or 0) + 1
    elseif lag and not item.drop and item.sent_ms then -- rows, or a row (etlua.record)
      lag((now - item.sent_ms) / 1000)
    end
  end
  if by_reason then
    for r, n in pairs(by_reason) do telemetry.rejected(r, n) end
  end
end

-- How often the commit's wait hook runs while Postgres works and it has nothing else to do (the
-- hook never waits itself), and how long one slice of the next batch's processing runs in it:
-- the server's answer waits that long at most before the commit goes on. A batch's commit
-- waits three times (claim, COPY, its data + COMMIT), and with --input the server is the slower
-- side, so the slice is short: 50 us (a handful of messages), not 200 (its answer waited ~0.1 ms on
-- average, three times a batch; --input of 50,000 was 0.87x the wall time in 12 alternating
-- pairs; one message a slice costs more in hook calls than it saves).
local WAIT_TICK_S = 0.002
local SLICE_S = 0.00005

-- The hook db:on_wait runs while a commit waits on Postgres: the source's heartbeat keeps the
-- messages it holds (the batches in hand and the prefetch) invisible to other consumers
-- (src:commit_hook(), SQS only), the receive pipeline keeps going (src:tend(), once a tick), and
-- `meanwhile(first)` (a slice of the next batch's processing; true while there is more; first:
-- the hook's first call) runs at every call. The hook returns what `meanwhile` did: true calls it
-- again at once, for as long as the server has not answered, in each of the commit's waits (the
-- claim, the COPYs, the COMMIT, when it does not go with the last COPY).
local function wait_hook(src, meanwhile)
  local interval, beat, first
  if src.commit_hook then interval, beat, first = src:commit_hook() end
  local due = beat and host.mono() + first
  local tended, called = -math.huge, false
  return function()
    local first_call = not called
    called = true
    local now = host.mono()
    if due and now >= due then
      beat()
      due = host.mono() + interval
    end
    if src.tend and now - tended >= WAIT_TICK_S then
      tended = now
      src:tend()
    end
    return meanwhile ~= nil and meanwhile(first_call)
  end
end

-- Commit, re-making the connection when it is lost; nothing is acknowledged until this returns.
local function commit(state, items, log, src, meanwhile)
  while true do
    if state.db then state.db:on_wait(WAIT_TICK_S, wait_hook(src, meanwhile), 0) end
    local t0 = host.mono()
    local summary, err, code = state.out:commit(items)
    if summary then telemetry.commit_seconds(host.mono() - t0) end
    if state.db then
      state.db:on_wait(nil)
      -- the hook runs under a protected call that keeps its error: a hook that fails is a bug
      -- (the receives, the heartbeat and the next batch stop overlapping the commit), said once
      local herr = state.db:wait_error()
      if herr and not state.hook_failed then
        state.hook_failed = true
        log:error("the commit's wait hook failed; receiving and processing wait for each commit", { error = herr })
      end
    end
    if summary then return summary end
    if code ~= "connection" then
      fail.user("cannot write the batch to Postgres: %s; nothing was deleted from the queue", err)
    end
    log:warn("lost the Postgres connection; reconnecting", { error = err })
    telemetry.error("postgres_connection")
    telemetry.ready(nil, false)
    if host.stopping() then fail.user("stopped while Postgres was unreachable; nothing was deleted") end
    state.db:close()
    host.sleep(0.5)
    state.out, state.db = state.reopen(host.mono() + state.outage_seconds)
    telemetry.ready(nil, true)
  end
end

-- SIGHUP: re-read the script and the rule files, between batches. A new version that fails to
-- load, or that would write another table or other columns (that needs a restart), is refused
-- with the error logged, and the old one keeps running. Returns script, processor or nil.
local function reload(opts, current, masker, budget_ms, keep_masks, log)
  local function refuse(why)
    log:error("reload refused; the running script and rules stay", { error = why })
  end
  local ok, script = pcall(script_loader.load, opts.script)
  if not ok then return refuse(fail.message(script)) end
  if not script_loader.same_tables(script, current) then
    return refuse("the new script writes other tables, columns or keys; restart etlua for that")
  end
  local rules_dir, rules = opts.rules or script.rules, {}
  if rules_dir then
    ok, rules = pcall(record.load_rules, rules_dir)
    if not ok then return refuse(fail.message(rules)) end
  end
  local proc
  ok, proc = pcall(record.new, script, { masker = masker, rules = rules, budget_ms = budget_ms,
                                          masks = keep_masks })
  if not ok then return refuse(fail.message(proc)) end
  log:info("reloaded", { script = opts.script, rules = #rules })
  return script, proc
end

-- run(opts, log) -> exit status. opts: script, drain, dry_run, input, rules.
function M.run(opts, log)
  host.install_signals() -- first: SIGHUP's default action would end the process
  local script = script_loader.load(opts.script)
  local cfg = config.load(script.config, os.getenv,
    { sqs = opts.input == nil, db = not opts.dry_run, mask = true, vault = not opts.dry_run })
  retry.attempts = cfg.retry_attempts
  local masker = mask.new(cfg.mask_key)
  local desc = config.describe(cfg)
  cfg.mask_key = nil -- the key lives only in the masker from here on
  desc.vault = cfg.vault_key and ("on, key id " .. cfg.vault_key:id()) or "off"
  desc.script = opts.script
  desc.mode = (opts.dry_run and "dry-run " or "") .. (opts.drain and "drain" or (opts.input and "input" or "service"))

  -- Everything that can be a user mistake is checked before the first log line, so such a
  -- mistake is one line on stderr.
  local rules_dir = opts.rules or script.rules
  local rules = {}
  if rules_dir then
    local ok, loaded = pcall(record.load_rules, rules_dir)
    if not ok then fail.user("%s; fix the rule file and retry", tostring(loaded)) end
    rules = loaded
    desc.rules = rules_dir .. " (" .. #rules .. " files)"
  end
  -- each outcome keeps its masks only for the PII vault, their one reader (a db_refused reject
  -- computes them again): without it, a table a message fewer
  local keep_masks = cfg.vault_key ~= nil
  local proc = record.new(script, { masker = masker, rules = rules, budget_ms = cfg.script_budget_ms,
                                    masks = keep_masks })
  -- Metrics before connecting, so /healthz answers during start-up (/readyz: 503 until ready).
  telemetry.start(opts.metrics or cfg.metrics_addr, log,
    { pipeline = telemetry.pipeline_of(opts.script), reasons = proc:reasons() })
  -- the source's module only: --input loads neither etlua.source (the SQS source, its requests
  -- in flight, receive window, heartbeat, queue depth: ~40 KB of Lua) nor the SQS client's
  local src = opts.input and require("etlua.source_file").open(opts.input)
    or require("etlua.source").sqs(cfg, log)
  local plain = src.plain == true -- its messages: none of sent_ms, receive_count, ... (batch_of)
  local queue = opts.input and ("input:" .. opts.input) or cfg.queue_url
  desc.protocol = src.protocol or desc.protocol

  local state = { outage_seconds = cfg.outage_seconds }
  if opts.dry_run then
    state.out = require("etlua.dryrun").new(io.stdout, script)
  else
    -- the ledger keeps an entry as long as the queue may redeliver its message (etlua.ledger)
    local ledger_opts = { schema = script.schema, queue = queue, log = log,
      retention = ledger.retention(src.retention, cfg.ledger_retention, log),
      partition_seconds = cfg.ledger_partition_seconds,
      refresh = src.retention_period and function()
        return ledger.retention(src:retention_period(), cfg.ledger_retention)
      end }
    state.reopen = function(deadline)
      return open_sink(cfg, script, ledger_opts, function() return proc end, log, deadline)
    end
    state.out, state.db = state.reopen()
  end
  log:info("starting etlua " .. host.version, desc)
  telemetry.ready(true, true)
  if src.protocol then log:info("sqs ready", { protocol = src.protocol, queue_url = cfg.queue_url }) end

  local stats = { received = 0, written = 0, rejected = 0, dropped = 0, duplicates = 0, deleted = 0,
                  by_reason = {} }
  local bar = progress.new(opts.drain and src or nil, nil, cfg.progress) -- a --drain on a terminal only
  local started = host.mono()
  local stop_when_drained = opts.drain or opts.input ~= nil
  local wait = stop_when_drained and cfg.drain_wait_seconds or cfg.wait_seconds
  -- The next batch, when a whole one is at hand while the commit before it waits on Postgres:
  -- taken then (at any of the commit's waits: the receives go on during them, so a batch the
  -- first wait did not have may come in before the COMMIT's) and processed a slice at a time from
  -- the commit's wait hook, the rest after the commit; never committed or acknowledged before the
  -- batch before it. One batch ahead at most.
  local ahead
  local function process_ahead(first) -- -> true while a slice is left to do
    if not ahead then
      local m, d = src:take_ready(cfg.batch_size, not first)
      if not m then return false end
      ahead = batch_of(proc, m, d, plain)
    end
    -- finished, or a slice raised (the hook's error): the rest waits for the loop
    if ahead.next > #ahead.messages or ahead.slicing then return false end
    ahead.slicing = true
    local finished = process(ahead, log, opts.dry_run, host.mono() + SLICE_S)
    ahead.slicing = nil
    -- processed: its claim's entries made now, so its commit's first statement goes out at once
    if finished and state.out.prepare then state.out:prepare(ahead.items) end
    return not finished
  end
  while true do
    if host.take_reload() then
      local new_script, new_proc = reload(opts, script, masker, cfg.script_budget_ms, keep_masks, log)
      if new_script then
        script, proc = new_script, new_proc
        telemetry.reasons(proc:reasons()) -- a new rule's reason at 0 from now on
      end
    end
    local b
    if ahead then
      b, ahead = ahead, nil
      -- processed again from its start by the reloaded script, or after a slice that raised
      if b.proc ~= proc or b.slicing then b = batch_of(proc, b.messages, b.drained, plain) end
    else
      local messages, drained = src:next_batch(cfg.batch_size, cfg.batch_max_wait_ms, wait)
      if not messages then
        fail.user("cannot receive from SQS: %s; nothing in hand was lost", drained)
      end
      b = batch_of(proc, messages, drained, plain)
    end
    local messages, drained = b.messages, b.drained
    if #messages > 0 then
      process(b, log, opts.dry_run) -- the whole batch, or what the commit's waits left of it
      local items, ndone = b.items, b.ndone
      stats.received = stats.received + ndone
      telemetry.received(ndone)
      local summary = commit(state, items, log, src, not drained and process_ahead or nil)
      count(stats, summary, items)
      if not opts.dry_run then
        src:ack(ndone == #messages and messages or table.move(messages, 1, ndone, 1, {}))
      end
      bar:update(stats)
    end
    if state.out.ledger then state.out.ledger:maintain() end -- a bounded pruning step, if due
    -- A stop signal ends the loop once the messages in hand are committed and acknowledged;
    -- src:flush() then releases what the source still holds (the prefetch).
    if (drained and stop_when_drained) or (host.stopping() and #messages == 0) then break end
  end
  local deleted = src:flush()   -- under --dry-run: releases what it received, deletes nothing
  stats.deleted = opts.dry_run and 0 or deleted
  bar:finish()

  local seconds = host.mono() - started
  local summary = {
    received = stats.received, written = stats.written, rejected = stats.rejected,
    dropped = stats.dropped, duplicates = stats.duplicates, deleted = stats.deleted,
    seconds = string.format("%.2f", seconds),
    rate = string.format("%.0f", stats.received / math.max(seconds, 1e-3)),
  }
  for reason, n in pairs(stats.by_reason) do summary["rejected." .. reason] = n end
  log:info(host.stopping() and "stopped" or "done", summary)
  src:close()
  if state.db then state.db:close() end
  return 0
end

return M
