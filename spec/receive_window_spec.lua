-- spec/receive_window_spec.lua: etlua.receive_window, the number of ReceiveMessage long polls the
-- SQS source keeps in flight: grows while full answers meet a waiting consumer, shrinks on empty
-- answers and on a prefetch two batches ahead, stays within 1..ceiling; fixed for FIFO queues.
-- (The source driving it with a fake client: spec/source_spec.lua.)
local window = require "etlua.receive_window"

describe("etlua.receive_window", function()
  it("starts at START, or at the ceiling when that is lower", function()
    assert.equals(window.START, window.new(64):size())
    assert.equals(3, window.new(3):size())
    assert.equals(20, window.new(64, { start = 20 }):size())
    assert.has_error(function() window.new(0) end)
  end)

  it("grows one per full answer while the consumer waits and the buffer is short of a batch", function()
    local w = window.new(64)
    w:wanted(false)
    for _ = 1, 8 do w:answered(10, 10, true) end   -- one round trip of 8 full answers
    assert.equals(16, w:size())                    -- doubled
    for _ = 1, 16 do w:answered(10, 10, true) end
    assert.equals(32, w:size())
  end)

  it("does not grow when the consumer is served, the buffer holds a batch, or the answer is partial", function()
    local w = window.new(64)
    w:wanted(true)                                 -- the buffer held the batch asked for
    w:answered(10, 10, true)
    assert.equals(8, w:size())
    w:wanted(false)
    w:answered(10, 10, false)                      -- a batch is buffered again: no more needed
    w:answered(7, 10, true)                        -- the queue had less than asked: more would not help
    assert.equals(8, w:size())
  end)

  it("never passes the ceiling, never goes below 1", function()
    local w = window.new(12)
    w:wanted(false)
    for _ = 1, 100 do w:answered(10, 10, true) end
    assert.equals(12, w:size())
    assert.equals(12, w.peak)
    for _ = 1, 100 do w:answered(0, 10, true) end
    assert.equals(1, w:size())
  end)

  it("shrinks one per empty answer (an idle queue ends with one long poll)", function()
    local w = window.new(64, { start = 40 })
    for _ = 1, 10 do w:answered(0, 10, true) end
    assert.equals(30, w:size())
  end)

  it("shrinks one per batch taken while two more batches are buffered", function()
    local w = window.new(64, { start = 40 })
    w:took(399, 200)            -- one batch ahead is what the runner needs: kept
    assert.equals(40, w:size())
    w:took(400, 200)
    w:took(650, 200)
    assert.equals(38, w:size())
  end)

  it("a fixed window (FIFO) stays at its ceiling", function()
    local w = window.new(16, { fixed = true })
    assert.equals(16, w:size())
    w:wanted(false)
    w:answered(0, 10, true)
    w:took(1000, 10)
    w:answered(10, 10, true)
    assert.equals(16, w:size())
  end)
end)
