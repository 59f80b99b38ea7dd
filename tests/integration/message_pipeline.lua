-- tests/integration/message_pipeline.lua: the pipeline of message.sh. Writes what the script
-- sees of each message (ctx.message) next to the body's own group field, so the test can
-- compare them with what it sent.
return {
  table = "seen_messages",
  columns = { "message_id", "g", "group_id", "sequence_number", "receive_count", "sent_ms",
              "received_ms", "attributes", "sent_attributes" },
  create_table = [[CREATE TABLE IF NOT EXISTS %s (message_id text PRIMARY KEY, g text,
    group_id text, sequence_number numeric, receive_count integer, sent_ms bigint,
    received_ms bigint, attributes jsonb, sent_attributes jsonb)]],
  key = { "message_id" }, on_conflict = "ignore",
  validate = function(rec) return type(rec.g) == "string", "invalid_g" end,
  transform = function(rec, ctx)
    local m = ctx.message
    return { message_id = m.id, g = rec.g, group_id = m.group_id,
             sequence_number = m.sequence_number, receive_count = m.receive_count,
             sent_ms = m.sent_ms, received_ms = m.received_ms, attributes = m.attributes,
             sent_attributes = rec.attrs or {} }
  end,
}
