#!/usr/bin/env bash
# tests/integration/batch_entries.sh [json|query]: partial failures of batch calls are handled
# entry by entry. Against local-aws-sqs (which, unlike fauxqs, checks receipt handles): 20
# messages received through etlua.source; two of them carry a receipt handle SQS does not know.
#   the heartbeat (ChangeMessageVisibilityBatch, one beat as while a commit waits): 18 extended;
#     the 2 are logged by message id with code ReceiptHandleIsInvalid and left out of later
#     extensions; no body in any log line.
#   Sqs:ack (DeleteMessageBatch): 18 deleted; the 2 logged by message id, the rest unaffected.
. "$(dirname "$0")/lib.sh"
protocol=${1:-json}
build=$(cd "$(dirname "$ETLUA_BIN")" && pwd)
[ -f "$build/etlua.so" ] || fail "no etlua.so next to $ETLUA_BIN"
start_sqs local-aws-sqs
python3 "$ROOT/tests/harness/gen_logins.py" 20 --seed 3 >"$WORK/input.jsonl"
send "$WORK/input.jsonl"

preload=
if ldd "$build/etlua.so" | grep libasan >/dev/null; then preload=$(gcc -print-file-name=libasan.so); fi
LD_PRELOAD=$preload ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
LUA_PATH="$ROOT/src/lua/?.lua;;" LUA_CPATH="$build/?.so;;" PROTOCOL=$protocol \
  lua5.4 - >"$WORK/out.txt" 2>&1 <<'LUA' || { cat "$WORK/out.txt" >&2; fail "batch entry checks ($protocol)"; }
local source = require "etlua.source"
local lines = {}
local function record(level)
  return function(_, msg, f)
    local parts = { level, msg }
    for k, v in pairs(f or {}) do parts[#parts + 1] = k .. "=" .. tostring(v) end
    lines[#lines + 1] = table.concat(parts, " ")
  end
end
local log = { warn = record("WARN"), info = record("INFO"), error = record("ERROR") }
local src = source.sqs({
  endpoint = os.getenv("AWS_ENDPOINT_URL"), queue_url = os.getenv("SQS_QUEUE_URL"), region = "us-east-1",
  access_key = os.getenv("AWS_ACCESS_KEY_ID"), secret_key = os.getenv("AWS_SECRET_ACCESS_KEY"),
  protocol = os.getenv("PROTOCOL"), outage_seconds = 10, receive_concurrency = 2,
}, log)
local got = {}
for _ = 1, 20 do
  local batch, drained = src:next_batch(20, 300, 1)
  assert(batch, drained)
  for _, m in ipairs(batch) do got[#got + 1] = m end
  if #got >= 20 or drained then break end
end
assert(#got == 20, "received " .. #got)

local function invalid(m) -- a well-formed receipt of a message SQS never issued
  return { id = m.id, body = m.body, receipt = m.receipt:sub(1, -9) .. "AAAAAAAA" }
end
local held = table.move(got, 1, 20, 1, {})
held[3], held[7] = invalid(got[3]), invalid(got[7])
local function count(pat) local n = 0 for _, l in ipairs(lines) do if l:find(pat) then n = n + 1 end end return n end

src.in_hand = held   -- the batch in hand: what the heartbeat extends, with the (empty) buffer
local function beat()  -- one beat, as while a commit waits on Postgres
  local _, fn = src:commit_hook()
  fn()
  return src.heartbeat.extended
end
local n = beat()
assert(n == 18, "extended " .. n)
for _, i in ipairs({ 3, 7 }) do
  assert(count("visibility extension failed for a message.*message_id=" .. got[i].id:gsub("%-", "%%-")) == 1, "no log line for " .. i)
  assert(held[i].lost, "entry " .. i .. " still extended")
end
assert(count("ReceiptHandleIsInvalid") == 2, table.concat(lines, "\n"))
assert(beat() == 18)       -- the two are left out from now on
assert(count("ReceiptHandleIsInvalid") == 2, table.concat(lines, "\n"))

held[5] = invalid(got[5])
src:ack(held)
local deleted = src:flush()
assert(deleted == 17, "deleted " .. deleted)
for _, i in ipairs({ 3, 5, 7 }) do
  assert(count("delete failed; the message will be redelivered.*message_id=" .. got[i].id:gsub("%-", "%%-")) == 1, "no delete log line for " .. i)
end
for _, m in ipairs(got) do
  for _, l in ipairs(lines) do assert(not l:find(m.body, 1, true), "a body in a log line") end
end
print(("extended 18/20 (2 ReceiptHandleIsInvalid, logged by id), deleted 17/20 (3 logged by id): %d log lines"):format(#lines))
LUA
ok "$protocol: $(cat "$WORK/out.txt")"
