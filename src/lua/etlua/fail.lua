-- etlua.fail: how the Lua half reports a user mistake. fail.user(...) raises {user_error = line};
-- the host (src/host.c) prints that one line as `etlua: line` and exits 1, without a traceback.
-- Anything else raised is an internal error and gets a traceback. The line passes through
-- etlua.redact, so no piece of a secret reaches it whatever the message quotes.
local redact = require "etlua.redact"

local M = {}

function M.user(fmt, ...)
  error({ user_error = redact.line(string.format(fmt, ...)) }, 0)
end

-- Returns true when err is a user error raised by fail.user.
function M.is_user(err)
  return type(err) == "table" and type(err.user_error) == "string"
end

-- message(err) -> the one line of a user error, or the text of any other error.
function M.message(err)
  if M.is_user(err) then return err.user_error end
  return tostring(err)
end

return M
