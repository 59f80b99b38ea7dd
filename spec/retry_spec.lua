-- spec/retry_spec.lua: etlua.retry on a fake clock (spec/fakes.lua): which codes are retried,
-- the capped exponential backoff with full jitter, the attempt budget, and a stop signal.
local F = require "spec.fakes"

local function with_retry(fn)
  local h = F.host()
  F.with({ ["etlua.host"] = h }, function() fn(require "etlua.retry", h) end)
end

describe("etlua.retry", function()
  it("retries only the codes a later attempt can cure", function()
    with_retry(function(retry)
      for _, code in ipairs({ "throttled", "server", "timeout", "network", "connection" }) do
        assert.is_true(retry.retryable(code), code)
      end
      for _, code in ipairs({ "auth", "no_queue", "protocol", "client", "busy", "stopped", nil }) do
        assert.is_false(retry.retryable(code), tostring(code))
      end
    end)
  end)

  it("waits a full-jitter delay under a capped exponential", function()
    with_retry(function(retry)
      for attempt = 1, 20 do
        for _ = 1, 50 do
          local d = retry.delay(attempt)
          assert.is_true(d >= 0 and d <= math.min(retry.cap_s, retry.base_s * 2 ^ attempt))
        end
      end
    end)
  end)

  it("calls again after a passing failure and returns the result", function()
    with_retry(function(retry, h)
      local n, log = 0, F.log()
      local r = retry.call(log, "sqs", function()
        n = n + 1
        if n < 3 then return nil, "busy server", "server" end
        return "ok"
      end)
      assert.equals("ok", r)
      assert.equals(3, n)
      assert.equals(2, h.sleeps)
      assert.equals(2, log:count("retrying"))
    end)
  end)

  it("returns at once on a code no retry can cure", function()
    with_retry(function(retry, h)
      local n = 0
      local r, msg, code = retry.call(nil, "sqs", function() n = n + 1; return nil, "bad signature", "auth" end)
      assert.is_nil(r)
      assert.equals("bad signature", msg)
      assert.equals("auth", code)
      assert.equals(1, n)
      assert.equals(0, h.sleeps)
    end)
  end)

  it("gives up after retry.attempts and returns the last failure", function()
    with_retry(function(retry)
      local n = 0
      local r, msg, code = retry.call(nil, "postgres", function() n = n + 1; return nil, "down " .. n, "connection" end)
      assert.is_nil(r)
      assert.equals(retry.attempts, n)
      assert.equals("down " .. n, msg)
      assert.equals("connection", code)
    end)
  end)

  it("stops retrying once a stop signal arrived", function()
    with_retry(function(retry, h)
      local n = 0
      local r = retry.call(nil, "sqs", function()
        n = n + 1
        h.stop = true
        return nil, "timeout", "timeout"
      end)
      assert.is_nil(r)
      assert.equals(1, n)
    end)
  end)
end)
