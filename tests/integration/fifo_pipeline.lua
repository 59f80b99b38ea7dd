-- tests/integration/fifo_pipeline.lua: the pipeline of the FIFO tests. A body
-- {"g": "<group>", "seq": <n>} becomes the row (g, seq); {"bad": true, ...} is rejected
-- (reason invalid_bad), so a group goes on past a rejected message; {"huge": true, ...} writes
-- 2^40 into an integer column, which Postgres refuses: the batch is split (left half committed
-- before the right) until that row stands alone as a db_refused reject. The table's bigserial `n`
-- records the order in which rows were written: COPY keeps a batch's order and batches commit
-- one after the other, so per group, seq must grow with n.
return {
  table = "fifo_events",
  columns = { "g", "seq", "extra" },
  create_table = "CREATE TABLE IF NOT EXISTS %s (n bigserial, g text, seq integer, extra integer)",
  pii = {},
  validate = function(rec)
    if type(rec.g) ~= "string" then return false, "invalid_g" end
    if type(rec.seq) ~= "number" or rec.seq ~= math.floor(rec.seq) then return false, "invalid_seq" end
    if rec.bad then return false, "invalid_bad", "marked bad by the test" end
    return true
  end,
  transform = function(rec)
    return { g = rec.g, seq = math.tointeger(rec.seq), extra = rec.huge and (1 << 40) or nil }
  end,
}
