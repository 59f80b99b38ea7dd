-- etlua.redact: the invariant, as a property over random secrets from a hostile alphabet.
-- For every registered secret S and every line L that passes through redact.line (log.lua and
-- fail.user do this for every line they write), no substring of S of S's minimum length (4 for
-- a password, 8 for a key) occurs in the result, whatever L held: the whole secret, its pieces
-- as libpq echoes them (split at '@', '/', ':'), percent-encoded, next to the mark "***".
local redact = require "etlua.redact"

local HOSTILE = "@/:?#%&=+ '\"\\;,$!*<>[]{}()|`~^\t"
local LETTERS = "QXZJKWVqxzjkwv0123456789"

local function pick(set) local i = math.random(#set) return set:sub(i, i) end

local function password(n)
  local t = {}
  for i = 1, n do t[i] = math.random() < 0.4 and pick(HOSTILE) or pick(LETTERS) end
  return table.concat(t)
end

local function pieces_left(line, secret, min)
  for i = 1, #secret - min + 1 do
    if line:find(secret:sub(i, i + min - 1), 1, true) then return secret:sub(i, i + min - 1) end
  end
end

local function encode(s)
  return (s:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Lines as libpq and etlua could write them around a secret: whole, split where libpq splits a
-- misread URL, encoded, repeated, glued to its neighbours.
local function lines_around(s)
  local out = {
    "could not translate host name \"" .. (s:match("@(.*)$") or s) .. "@127.0.0.1\" to address",
    "invalid port number: \"" .. (s:match("^([^/]*)/") or s) .. "\"",
    "password " .. s .. " and " .. encode(s) .. s .. s:reverse(),
    s:sub(2) .. "***" .. s:sub(1, -2),
  }
  for piece in s:gmatch("[^@/:]+") do out[#out + 1] = "host \"" .. piece .. "\" port " .. piece end
  return out
end

describe("redact.line", function()
  before_each(redact.reset)
  math.randomseed(11)

  it("leaves a line alone when nothing is registered, or nothing matches", function()
    assert.are.equal("batch committed rows=200", redact.line("batch committed rows=200"))
    redact.add("QzXkJw9v", redact.PASSWORD)
    assert.are.equal("batch committed rows=200", redact.line("batch committed rows=200"))
  end)

  it("ignores secrets shorter than their minimum piece", function()
    redact.add("abc", redact.PASSWORD)
    assert.are.equal("abc", redact.line("abc"))
  end)

  it("holds the invariant for 1,000 random passwords and keys", function()
    for _ = 1, 1000 do
      redact.reset()
      local pw, key = password(math.random(4, 40)), password(math.random(32, 64))
      redact.add(pw, redact.PASSWORD)
      redact.add(encode(pw), redact.PASSWORD)
      redact.add(key, redact.KEY)
      for _, line in ipairs(lines_around(pw)) do
        local got = redact.line(line)
        local left = pieces_left(got, pw, 4)
        assert(not left, ("piece %q of password %q left in %q"):format(tostring(left), pw, got))
      end
      for _, line in ipairs(lines_around(key)) do
        local got = redact.line(line)
        local left = pieces_left(got, key, 8)
        assert(not left, ("piece %q of key %q left in %q"):format(tostring(left), key, got))
      end
    end
  end)

  it("is what log lines and user errors go through", function()
    redact.add("Qz@Xk/Jw9v", redact.PASSWORD)
    local buf = {}
    local stream = { write = function(_, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end end,
                     flush = function() end }
    for _, format in ipairs({ "text", "json" }) do
      require("etlua.log").new(format, "info", stream):warn("host Xk/Jw9v", { error = 'at "Qz@Xk" q' })
    end
    local text = table.concat(buf)
    assert.is_nil(pieces_left(text, "Qz@Xk/Jw9v", 4), text)
    local ok, err = pcall(require("etlua.fail").user, "cannot connect: %s", "Qz@Xk/Jw9v")
    assert.is_false(ok)
    assert.are.equal("cannot connect: ***", err.user_error)
  end)
end)
