-- etlua.redact: the last guard between a secret and a line of text. config.lua registers every
-- secret it reads (redact.add); log.lua and fail.user pass every line they write through
-- redact.line, the one place that scrubs.
--
-- The invariant: no line etlua writes holds a piece of a registered secret of `min` characters
-- or more (redact.PASSWORD = 4 for Postgres passwords, redact.KEY = 8 for the mask key, the
-- vault key and the AWS secret key and session token). Pieces, not only the whole secret: libpq
-- splits a connection string it misreads at '@', '/', ':' and echoes the parts as a host name or
-- a port. Keys get a longer piece because they are random and long (a 4-character piece of a
-- hex key would hit unrelated hex in a line). A secret shorter than its `min` is not registered
-- (config.describe never shows one; a line that happens to hold 3 such characters is no leak).
-- Each run of the line that is a piece of a secret (leftmost first, grown as long as it stays
-- one) becomes "***"; this repeats until nothing matches, since "***" and its neighbours could
-- form a new piece.
-- (Below this, etlua.pg's connect errors already lose the password libpq read, before they leave
-- C: src/pg_text.c. This file is the one that knows every secret, as the user wrote it.)
local M = { PASSWORD = 4, KEY = 8, MARK = "***" }

local secrets = {} -- array of {text =, min =}

-- add(secret, min): registers a secret (nil, "" and secrets shorter than min are ignored).
function M.add(secret, min)
  assert(min and min >= 1, "redact.add: min is required")
  if type(secret) ~= "string" or #secret < min then return end
  for _, s in ipairs(secrets) do
    if s.text == secret then
      s.min = math.min(s.min, min)
      return
    end
  end
  secrets[#secrets + 1] = { text = secret, min = min }
end

-- reset(): forgets every secret (specs).
function M.reset() secrets = {} end

-- One pass: returns the line with every maximal piece of `secret` replaced, and whether any was.
local function pass(line, secret, min)
  local out, i, n, changed = {}, 1, #line, false
  local from = 1
  while i <= n - min + 1 do
    if secret:find(line:sub(i, i + min - 1), 1, true) then
      local j = i + min -- grow the match while it is still a piece of the secret
      while j <= n and secret:find(line:sub(i, j), 1, true) do j = j + 1 end
      out[#out + 1] = line:sub(from, i - 1)
      out[#out + 1] = M.MARK
      i, from, changed = j, j, true
    else
      i = i + 1
    end
  end
  if not changed then return line, false end
  out[#out + 1] = line:sub(from)
  return table.concat(out), true
end

-- line(text) -> text without any piece of a registered secret (see the invariant above).
function M.line(text)
  if #secrets == 0 or type(text) ~= "string" then return text end
  local again = true
  while again do
    again = false
    for _, s in ipairs(secrets) do
      local changed
      text, changed = pass(text, s.text, s.min)
      again = again or changed
    end
  end
  return text
end

return M
