-- bench/bare_drain.lua: the SQS side of a drain with no database, as a ceiling for the benchmark.
-- Receives until the queue answers empty, deleting every message with DeleteMessageBatch, and
-- prints msgs/s.
--
--   LUA_CPATH='BUILD/?.so;;' lua5.4 bench/bare_drain.lua [pipe] [INFLIGHT] [PROTOCOL]
--     pipe     (the only mode) INFLIGHT receives always in flight (start_receive/poll); each
--              answer's messages are deleted asynchronously (start_delete_batch) while the
--              other receives run
--     INFLIGHT concurrent receives (default 16)
--     PROTOCOL json | query | auto (default auto)
-- Environment: AWS_ENDPOINT_URL, SQS_QUEUE_URL, AWS_REGION (defaults us-east-1), credentials
-- AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default "test").
local sqs = require "etlua.sqs"

local mode = arg[1] or "pipe"
local inflight = tonumber(arg[2]) or 16
local protocol = arg[3] or "auto"

local c = sqs.client {
  endpoint = os.getenv("AWS_ENDPOINT_URL"), queue_url = assert(os.getenv("SQS_QUEUE_URL"), "SQS_QUEUE_URL"),
  region = os.getenv("AWS_REGION") or "us-east-1",
  access_key = os.getenv("AWS_ACCESS_KEY_ID") or "test",
  secret_key = os.getenv("AWS_SECRET_ACCESS_KEY") or "test",
  protocol = protocol, max_inflight = inflight + 16,
}
assert(c:detect())

local host = require "etlua.host"
local function now() return host.now_ms() / 1000 end
local t_last -- the last answer that carried work: the closing empty polls are not timed

local received, delete_failed, errors = 0, 0, 0

local function count_delete(failed)
  t_last = now()
  delete_failed = delete_failed + #failed
end

local t0 = now()
if mode == "pipe" then
  -- At most `cap` requests in flight: INFLIGHT receives, the rest deletes; deletes that find
  -- no free slot wait in a queue (they go first, so receipts do not pile up).
  local cap = inflight + 16
  local draining, receiving, queued = false, 0, {}
  local wait, long_polls = 0, {} -- after an empty short poll, 1 s polls confirm the queue is empty
  local function refill()
    while #queued > 0 and c:pending() < cap do
      -- a receive's messages (at most 10) are the delete's entries as they are, taken by
      -- position (etlua.sqs: each entry's id is its position, only its receipt is read)
      local token, err, code = c:start_delete_batch(queued[#queued], true)
      if not token and code == "busy" then break end
      queued[#queued] = nil
      assert(token, err)
    end
    while not draining and receiving < inflight and c:pending() < cap do
      local token, err, code = c:start_receive(10, wait)
      if not token and code == "busy" then break end
      assert(token, err); receiving = receiving + 1
      long_polls[token] = wait > 0 or nil
    end
  end
  refill()
  while c:pending() > 0 or #queued > 0 do
    for _, r in ipairs(c:poll(1000)) do
      if r.kind == "receive" then
        receiving = receiving - 1
        if not r.result then
          errors = errors + 1
          io.stderr:write("receive: ", r.err, " (", r.code, ")\n")
          draining = true -- a bare benchmark: no retries, stop at the first error
        elseif #r.result == 0 then
          if long_polls[r.token] then draining = true end -- empty: let what is in flight finish
          wait = 1
        else
          received = received + #r.result
          wait = 0
          queued[#queued + 1] = r.result
        end
      elseif r.result then
        count_delete(r.result)
      else
        errors = errors + 1
        io.stderr:write("delete: ", r.err, " (", r.code, ")\n")
      end
    end
    refill()
  end
else
  error("mode must be pipe")
end
local dt = (t_last or now()) - t0
print(string.format("%s inflight=%d protocol=%s: %d received, %d delete failures, %d errors, %.2f s, %.0f msgs/s",
  mode, inflight, c:protocol(), received, delete_failed, errors, dt, received / dt))
c:close()
