-- bench/upsert_etl.lua: the keyed pipeline of bench/upsert.sh. One output keyed by order_id;
-- bench/upsert.sh rewrites the KEYING line for each variant (no key / error / update + order_by).
return {
  table = "bench_orders",
  columns = { "order_id", "status", "total_cents", "ts" },
  create_table = [[CREATE TABLE IF NOT EXISTS %s (order_id text PRIMARY KEY, status text,
    total_cents bigint, ts bigint)]],
  key = { "order_id" }, on_conflict = "update", order_by = "ts", -- KEYING
  validate = function(rec)
    if type(rec.order_id) ~= "string" then return false, "invalid_order_id", "order_id must be a string" end
    return true
  end,
  transform = function(rec)
    return { order_id = rec.order_id, status = rec.status, total_cents = rec.total_cents, ts = rec.ts }
  end,
}
