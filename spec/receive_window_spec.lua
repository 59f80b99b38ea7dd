-- spec/receive_window_spec.lua: etlua.receive_window, the number of ReceiveMessage long polls the
-- SQS source keeps in flight: grows while prompt full answers meet a waiting consumer, shrinks on
-- empty and slow answers and on a prefetch two batches ahead, halves on late answers or a late
-- receive in flight, stays within 1..ceiling; fixed for FIFO queues.
-- (The source driving it with a fake client: spec/source_spec.lua.)
local window = require "etlua.receive_window"

local T = 100.0   -- a monotonic clock, seconds

describe("etlua.receive_window", function()
  it("starts at START, or at the ceiling when that is lower", function()
    assert.equals(window.START, window.new(64):size())
    assert.equals(3, window.new(3):size())
    assert.equals(20, window.new(64, { start = 20 }):size())
    assert.has_error(function() window.new(0) end)
  end)

  it("grows one per prompt full answer while the consumer waits and the buffer is short of a batch", function()
    local w = window.new(64)
    w:wanted(false)
    for _ = 1, 8 do w:answered(10, 10, true, 0.002, T) end   -- one round trip of 8 full answers
    assert.equals(16, w:size())                              -- doubled
    for _ = 1, 16 do w:answered(10, 10, true, 0.002, T) end
    assert.equals(32, w:size())
  end)

  it("no growth for a served consumer, a buffered batch, a partial answer, an unknown round trip", function()
    local w = window.new(64)
    w:wanted(true)                                 -- the buffer held the batch asked for
    w:answered(10, 10, true, 0.002, T)
    assert.equals(8, w:size())
    w:wanted(false)
    w:answered(10, 10, false, 0.002, T)            -- a batch is buffered again: no more needed
    w:answered(7, 10, true, 0.002, T)              -- the queue had less than asked: more would not help
    w:answered(10, 10, true, nil, T)               -- came while etlua was busy: no verdict
    assert.equals(8, w:size())
  end)

  it("never passes the ceiling, never goes below 1", function()
    local w = window.new(12)
    w:wanted(false)
    for _ = 1, 100 do w:answered(10, 10, true, 0.002, T) end
    assert.equals(12, w:size())
    assert.equals(12, w.peak)
    for _ = 1, 100 do w:answered(0, 10, true, 0.002, T) end
    assert.equals(1, w:size())
  end)

  it("shrinks one per empty answer (an idle queue ends with one long poll)", function()
    local w = window.new(64, { start = 40 })
    for _ = 1, 10 do w:answered(0, 10, true, nil, T) end
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

  it("measures promptness and lateness against the fastest round trip seen", function()
    local w = window.new(64, { start = 20 })
    w:wanted(false)
    w:answered(10, 10, true, 0.002, T)             -- the floor: 2 ms
    assert.equals(21, w:size())
    w:answered(10, 10, true, 0.014, T)             -- within 2 x floor + 10 ms: prompt
    assert.equals(22, w:size())
    w:answered(10, 10, true, 0.150, T)             -- past it, not late: slow, one fewer
    assert.equals(21, w:size())
    local far = window.new(64)                     -- 20 ms of round trip is no lateness
    far:wanted(false)
    for _ = 1, 8 do far:answered(10, 10, true, 0.021, T) end
    for _ = 1, 8 do far:answered(10, 10, true, 0.052, T) end   -- 2 x 21 ms + 10 ms: still prompt
    assert.equals(24, far:size())
    far:answered(10, 10, true, 0.053, T)           -- past it: slow
    assert.equals(23, far:size())
  end)

  it("shrinks one per slow answer, hungry or not: it waited behind the others at the server", function()
    local w = window.new(64, { start = 40 })
    w:wanted(false)
    w:answered(10, 10, true, 0.001, T)             -- the floor: 1 ms; prompt: grows
    assert.equals(41, w:size())
    for _ = 1, 5 do w:answered(10, 10, true, 0.020, T) end   -- past 2 x 1 ms + 10 ms
    assert.equals(36, w:size())
    w:wanted(true)
    w:answered(4, 10, false, 0.020, T)             -- partial or not, served or not
    assert.equals(35, w:size())
    w:answered(10, 10, true, nil, T)               -- an unknown round trip: no verdict
    assert.equals(35, w:size())
    -- where the two meet: with half the answers slow, a waiting consumer keeps its window
    w:wanted(false)
    for _ = 1, 10 do
      w:answered(10, 10, true, 0.004, T)
      w:answered(10, 10, true, 0.030, T)
    end
    assert.equals(35, w:size())
  end)

  it("leaves at least SLOW_MIN after slow answers: a server busy with other clients is slow for all", function()
    local w = window.new(64, { start = window.SLOW_MIN + 3 })
    w:wanted(false)
    w:answered(10, 10, true, 0.001, T)             -- the floor: 1 ms
    for _ = 1, 50 do w:answered(10, 10, true, 0.020, T) end   -- slow, slow, ...
    assert.equals(window.SLOW_MIN, w:size())
    w:answered(10, 10, true, 0.002, T)             -- a prompt answer still grows it
    assert.equals(window.SLOW_MIN + 1, w:size())
    -- below it, slow answers take nothing away; empty and late answers still do
    local s = window.new(64)
    s:answered(10, 10, true, 0.001, T)
    s:answered(10, 10, true, 0.020, T)
    assert.equals(window.START, s:size())
    s:answered(0, 10, true, 0.001, T)
    assert.equals(window.START - 1, s:size())
    s:answered(10, 10, true, 0.300, T)
    assert.equals((window.START - 1) // 2, s:size())
    local low = window.new(4, { start = 4 })       -- a ceiling under it: slow answers keep it
    low:answered(10, 10, true, 0.001, T)
    for _ = 1, 5 do low:answered(10, 10, true, 0.020, T) end
    assert.equals(4, low:size())
  end)

  it("counts as slow only what an answer surely waited (least), not the time etlua looked away", function()
    local w = window.new(64, { start = 30 })
    w:wanted(false)
    w:answered(10, 10, true, 0.001, T)             -- the floor: 1 ms; prompt: grows
    assert.equals(31, w:size())
    w:answered(10, 10, true, 0.050, T, 0.002)      -- seen after 50 ms, surely waited 2: kept
    assert.equals(31, w:size())
    w:answered(10, 10, true, 0.050, T, 0.030)      -- surely waited 30 ms: slow
    assert.equals(30, w:size())
    w:answered(10, 10, true, 0.003, T, 0.001)      -- prompt goes by what etlua saw
    assert.equals(31, w:size())
  end)

  it("halves on a late answer, once a round trip", function()
    local w = window.new(64, { start = 40 })
    w:answered(10, 10, true, 0.002, T)
    w:answered(10, 10, true, 0.260, T)             -- past 4 x floor + 250 ms: late
    assert.equals(20, w:size())
    w:answered(10, 10, true, 0.900, T + 0.5)       -- sent before the cut: no second halving
    assert.equals(20, w:size())
    w:answered(10, 10, true, 0.300, T + 0.5)       -- a round trip after the cut: halved again
    assert.equals(10, w:size())
  end)

  it("a receive in flight past lateness halves the window and holds new receives", function()
    local w = window.new(64, { start = 40 })
    assert.is_false(w:overdue(5, T))               -- nothing measured yet: no floor, never late
    w:answered(10, 10, true, 0.002, T)
    assert.is_false(w:overdue(0.2, T))
    assert.is_true(w:overdue(0.3, T))
    assert.equals(20, w:size())
    assert.is_true(w:overdue(0.4, T + 0.1))        -- the same late ones: held, not halved again
    assert.equals(20, w:size())
  end)

  it("a fixed window (FIFO) stays at its ceiling and is never overdue", function()
    local w = window.new(16, { fixed = true })
    assert.equals(16, w:size())
    w:wanted(false)
    w:answered(10, 10, true, 0.002, T)
    w:answered(0, 10, true, 0.002, T)
    w:answered(10, 10, true, 5, T)
    w:took(1000, 10)
    assert.is_false(w:overdue(20, T))
    assert.equals(16, w:size())
  end)
end)
