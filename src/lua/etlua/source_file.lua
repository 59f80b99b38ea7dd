-- etlua.source_file: the --input source (etlua.source's file half, source.file): one message
-- body per line of a file, or of stdin ("-"); nothing to delete. The same interface as the SQS
-- source (etlua.source says it): src:next_batch(max), src:take_ready(max) while a commit waits,
-- src:ack(messages), src:flush(), src:close(); each message {id, body, received_ms, input_file,
-- input_line}.
local host = require "etlua.host"
local fail = require "etlua.fail"
local lines = require "etlua.lines"

local M = {}

local File = {}
local byte, sub = string.byte, string.sub
File.__index = File
-- its messages carry none of an SQS message's sent_ms, receive_count, group_id, sequence_number
-- and attributes (the runner then makes their items with etlua.record's p:item_plain)
File.plain = true

-- A file's lines come from etlua.lines (read 64 KiB at a time into a buffer of its own, each line
-- without its \n or \r\n: only the lines become Lua strings, not the chunks they were read in).
-- stdin keeps f:read("l"): a pipe's lines are taken as they come, not once a chunk is full.
local next_message = lines.message

-- The decimal text of 0..999, bare and padded to three digits: a stdin line's number in its id is
-- made from these (one or two lookups), as Lua's own integer to text is a snprintf (~0.9 k
-- instructions a line, as much as the rest of the id). Each made when first needed. (A file's
-- lines come with their number and id from lines.message.)
local DIGITS = setmetatable({}, { __index = function(t, k)
  local s = tostring(k); t[k] = s; return s
end })
local DIGITS3 = setmetatable({}, { __index = function(t, k)
  local s = ("%03d"):format(k); t[k] = s; return s
end })

-- A file is its content: lines.digest (etlua.lines) of its bytes, read once before the first line
-- (1 MiB at a time, each step hashed with the digest so far, so a large file never sits in memory).
local function content_digest(f, path)
  local digest, err = lines.digest(f)
  if not digest then fail.user("cannot read --input %s: %s (it must name a file, or - for stdin)", path, err) end
  f:seek("set", 0)
  return digest
end

function M.open(path)
  local f, err
  if path == "-" then
    return setmetatable({ f = io.stdin, line = 0, path = path }, File)
  end
  f, err = io.open(path, "rb")
  if not f then fail.user("cannot read --input %s", err) end
  local digest = content_digest(f, path)
  return setmetatable({ f = f, line = 0, path = path, digest = digest:sub(1, 32), reader = lines.reader(f) },
                      File)
end

-- The next line (without its line end), or nil at the end, nil, err on a read error.
local function stdin_line(f)
  local body, err = f:read("l")
  -- the \r of a \r\n line end, by its byte: a pattern anchored at the end is tried at every
  -- position of the line
  if body and byte(body, -1) == 13 then body = sub(body, 1, -2) end
  return body, err
end

-- A line's id is "input:<digest of the file's content>:<line>": loading the same file again (or
-- a copy of it) lands each line once, while two files that differ anywhere are two sets of
-- messages, even where their lines are equal. A file that has changed since (lines appended) is
-- another file: its lines land again. stdin lines are numbered within this run only.
function File:next_batch(max)
  local batch = {}
  if host.stopping() then return batch, true end
  local now = host.now_ms()
  local line, n, digest = self.line, 0, self.digest
  -- the ids' common part, made once a batch (a format per line cost more than its line's read)
  local prefix = self.path == "-" and ("stdin:" .. now .. ":") or ("input:" .. digest .. ":")
  local reader, f = self.reader, self.f
  if reader then -- a file: its next line that is not empty, its number and its id, in one call
    while n < max do
      local body, at, id = next_message(reader, prefix, line)
      line = at
      if not body then
        self.line = line
        if id then fail.user("cannot read --input %s: %s", self.path, id) end
        return batch, true
      end
      n = n + 1
      -- input_file, input_line: what the id spells, for the ledger (no parsing per message)
      batch[n] = { id = id, body = body, received_ms = now, input_file = digest, input_line = line }
    end
    self.line = line
    return batch, false
  end
  while n < max do
    local body, err = stdin_line(f)
    if not body then
      self.line = line
      if err then fail.user("cannot read --input %s: %s", self.path, err) end
      return batch, true
    end
    line = line + 1
    if body ~= "" then
      n = n + 1
      local id
      if line < 1000 then id = prefix .. DIGITS[line]
      elseif line < 1000000 then id = prefix .. DIGITS[line // 1000] .. DIGITS3[line % 1000]
      else id = prefix .. line end
      batch[n] = { id = id, body = body, received_ms = now, input_file = digest, input_line = line }
    end
  end
  self.line = line
  return batch, false
end

-- While a commit waits: the next lines (reading a file never waits long), or nil at its end.
function File:take_ready(max)
  if self.eof or host.stopping() then return nil end
  local batch, eof = self:next_batch(max)
  self.eof = eof
  return batch, eof
end
function File:tend() end

function File:ack(messages) return #messages end
function File:flush() return 0 end

function File:close()
  if self.reader then self.reader:close() end
  if self.f ~= io.stdin then self.f:close() end
end

return M
