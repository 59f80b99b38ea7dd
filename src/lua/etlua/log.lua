-- etlua.log: one event per line on stderr, as text (default) or JSON lines.
--   local log = require("etlua.log").new("text")
--   log:info("batch committed", {rows = 10, rejects = 1})
-- Callers never pass secrets or raw message bodies; as the last guard, the message, every string
-- value and the finished line go through etlua.redact (values first: JSON and %q escaping could
-- split a secret's characters).
local cjson = require "cjson"
local redact = require "etlua.redact"

local M = {}
local Logger = {}
Logger.__index = Logger

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function text_value(v)
  v = tostring(v)
  if v:find("[%s\"=]") or v == "" then return string.format("%q", v):gsub("\\\n", "\\n") end
  return v
end

function M.new(format, min_level, stream)
  if format ~= "text" and format ~= "json" then
    error({ user_error = "--log-format must be text or json, not '" .. tostring(format) .. "'" })
  end
  return setmetatable({
    format = format,
    min = LEVELS[min_level or "info"] or LEVELS.info,
    out = stream or io.stderr,
    json = cjson.new(),
  }, Logger)
end

function Logger:write(level, msg, fields)
  if LEVELS[level] < self.min then return end
  local ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
  msg = redact.line(msg)
  if fields then
    local clean = {}
    for k, v in pairs(fields) do clean[k] = type(v) == "string" and redact.line(v) or v end
    fields = clean
  end
  local line
  if self.format == "json" then
    local ev = { ts = ts, level = level, msg = msg }
    for k, v in pairs(fields or {}) do
      if ev[k] == nil then ev[k] = v end
    end
    line = self.json.encode(ev)
  else
    local parts = { ts, level:upper(), msg }
    if fields then
      for _, k in ipairs(sorted_keys(fields)) do
        parts[#parts + 1] = k .. "=" .. text_value(fields[k])
      end
    end
    line = table.concat(parts, " ")
  end
  self.out:write(redact.line(line), "\n")
  self.out:flush()
end

function Logger:debug(msg, fields) self:write("debug", msg, fields) end
function Logger:info(msg, fields) self:write("info", msg, fields) end
function Logger:warn(msg, fields) self:write("warn", msg, fields) end
function Logger:error(msg, fields) self:write("error", msg, fields) end

return M
