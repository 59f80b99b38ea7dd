--[[ login_etl.lua: the default pipeline for login events. Its rules are the sections below
(spec/login_etl_spec.lua checks each one). This file is meant to be read and changed by analysts.

How etlua uses this file (the hook contract is SCRIPTING.md; src/lua/etlua/record.lua calls it):
  * It returns one table. `table`, `columns`, `create_table` and `pii` are read once at start
    (the one-output form of the contract: one row per message into user_logins; rejects go to
    user_logins_rejects, the default name).
  * For every message etlua decodes the JSON body. A body that is not JSON, or not a JSON object,
    is rejected before this file sees it (`invalid_json`, `not_object`).
  * validate(rec) gets the decoded object. JSON null arrives as `null` (cjson.null), a missing
    field as nil; a JSON integer arrives as a Lua integer (exact over 64 bits), any other
    number as a float (2.0 and 2e0 are floats).
    It returns true, or false, reason, detail. The detail is stored in the rejects table: it
    must never contain an ip or device_id value.
  * Then the analysts' rule files run (--rules DIR); then transform(rec, ctx) builds the row,
    keyed by column name. A column left nil is written as NULL.
      ctx.masked[path]     -> the mask of each declared pii value (computed once per message)
      ctx.mask(s)          -> lowercase hex HMAC-SHA-256 of s with the secret key
      ctx.canonical_ip(s)  -> canonical address text, 4|6   or nil
      ctx.message          -> {id=, sent_ms=, received_ms=, receive_count=, ...} of the message
  * Rejected messages are stored with every path named in `pii` masked.
  * validate and transform should not raise for any input. If one does, that message is
    rejected with reason `script_error` (the error as detail) and the pipeline goes on.

Cost: validate and transform run for every message, so the usual path does little: fields are
tested for the usual type first, text within its limit in bytes is not counted in characters,
each app_version spelling is parsed once, library functions are locals, the checks are plain
calls in a row. spec/login_etl_outcomes_spec.lua pins the outcome of tricky values field by
field: run it after changing how a rule is computed.
]]

local null = require("cjson").null
local canonical_ip = require("etlua.mask").canonical_ip

-- Library functions this file calls for every message, as locals: a local is found faster
-- than a global, and these run tens of thousands of times a second.
local type, tonumber, floor, utf8_len = type, tonumber, math.floor, utf8.len

local MAX_USER_ID_CHARS = 128      -- user_logins.user_id varchar(128)
local MAX_SHORT_TEXT_CHARS = 32    -- device_type, locale: varchar(32)
local MAJOR_LIMIT = 2147           -- MAJOR*1000000 must fit a Postgres integer (max 2147483647)
local PART_LIMIT = 1000            -- MINOR and PATCH each take three decimal digits
local MAX_EPOCH_SECONDS = 253402300799   -- 9999-12-31T23:59:59Z, the last day Postgres' date
                                         -- and os.date both print with a 4-digit year

-- ---- small helpers -------------------------------------------------------------------------
-- The checks below first ask whether a field is a string (the usual case, one type() call) and
-- look at the rarer cases (missing, null, another type) only when it is not.

-- A field counts as absent when it is missing or JSON null.
local function absent(v)
  return v == nil or v == null
end

-- Length in characters (UTF-8 code points). Text that is not valid UTF-8 never comes from a
-- body: the decoder rejects such a body as invalid_json before validate runs. It is counted in
-- bytes here only for a record built some other way (a test calling validate with a table).
-- A NUL character (\u0000) is valid UTF-8 and passes: Postgres refuses it in text and the
-- message lands in the rejects as db_refused.
-- A character takes at least one byte, so the checks count only text with more bytes than
-- the limit: `#v > LIMIT and char_count(v) > LIMIT`.
local function char_count(s)
  return utf8_len(s) or #s
end

-- Value of a run of ASCII digits, or nil when it is `limit` or more. Leading zeros are just
-- zeros: "003" is 3, so "02.003" reads as 2.3.0.
local function digits_below(s, limit)
  if #s > 4 then                         -- every limit here has at most 4 digits, so a longer
    s = s:match("^0*(%d*)$")             -- run is too big unless it starts with zeros
    if #s > 4 then return nil end
  end
  local n = tonumber(s) or 0             -- "" (the run was all zeros) is 0
  if n >= limit then return nil end
  return n
end

-- ---- app_version ---------------------------------------------------------------------------

-- The value of a spelling MAJOR[.MINOR[.PATCH]], or nil, detail.
local function parse_app_version(s)
  -- ASCII digits only ([0-9], not %d: that would follow the C locale); no signs, blanks or
  -- empty parts.
  local major, minor, patch = s:match("^([0-9]+)%.([0-9]+)%.([0-9]+)$")
  if not major then major, minor = s:match("^([0-9]+)%.([0-9]+)$") end
  if not major then major = s:match("^([0-9]+)$") end
  if not major then
    return nil, "app_version must be MAJOR[.MINOR[.PATCH]] in digits"
  end
  local M = digits_below(major, MAJOR_LIMIT)
  if M == nil then return nil, "app_version MAJOR must be below 2147" end
  local m = digits_below(minor or "0", PART_LIMIT)
  local p = digits_below(patch or "0", PART_LIMIT)
  if m == nil or p == nil then
    return nil, "app_version MINOR and PATCH must be below 1000"
  end
  return M * 1000000 + m * 1000 + p
end

-- The value of each valid spelling seen lately. A few app releases are in the field at a
-- time, and transform needs the value validate has just computed, so each spelling is parsed
-- once rather than twice per message. Parsing again would give the same value: this only
-- saves the work. At most KNOWN_VERSIONS spellings of at most KNOWN_VERSION_BYTES bytes are
-- kept; when full, all are forgotten at once.
local KNOWN_VERSIONS, KNOWN_VERSION_BYTES = 1000, 32
local known_versions, known_count = {}, 0

-- MAJOR*1000000 + MINOR*1000 + PATCH (missing parts are 0), or nil, detail.
--   "2.3.0" -> 2003000, "0.2.6" -> 2006, "2.10.1" -> 2010001, "2" -> 2000000
-- A JSON integer N reads as "N". Only the value counts, not its spelling, so 2, 2.0 and
-- 2e0 all read as 2; 2.5 and negatives are refused.
local function app_version_value(v)
  local known = known_versions[v]
  if known then return known end
  if type(v) == "number" then
    local n = math.tointeger(v)
    if n == nil or n < 0 then
      return nil, "app_version number must be a non-negative integer"
    end
    if n >= MAJOR_LIMIT then return nil, "app_version MAJOR must be below 2147" end
    return n * 1000000
  end
  if type(v) ~= "string" then
    return nil, "app_version must be a string or an integer"
  end
  local value, detail = parse_app_version(v)
  if value and #v <= KNOWN_VERSION_BYTES then
    if known_count >= KNOWN_VERSIONS then known_versions, known_count = {}, 0 end
    known_versions[v], known_count = value, known_count + 1
  end
  return value, detail
end

-- ---- one check per rule: each returns nothing when the field is fine, or reason, detail ---

-- user_id is required: a non-empty string of at most 128 characters.
local function check_user_id(v)
  if type(v) ~= "string" then
    if absent(v) then return "invalid_user_id", "user_id is missing" end
    return "invalid_user_id", "user_id must be a string"
  end
  if v == "" then return "invalid_user_id", "user_id is empty" end
  if #v > MAX_USER_ID_CHARS and char_count(v) > MAX_USER_ID_CHARS then
    return "invalid_user_id", "user_id is longer than 128 characters"
  end
end

-- device_type and locale are optional: when present, a string of at most 32 characters.
-- (An empty string is allowed: the contract only limits the length.)
local function check_short_text(v, field)
  if type(v) ~= "string" then
    if absent(v) then return end
    return "invalid_" .. field, field .. " must be a string"
  end
  if #v > MAX_SHORT_TEXT_CHARS and char_count(v) > MAX_SHORT_TEXT_CHARS then
    return "invalid_" .. field, field .. " is longer than 32 characters"
  end
end

-- ip is optional: when present, a valid IPv4 or IPv6 address (no zone id, no blanks).
local function check_ip(v)
  if type(v) == "string" then
    if canonical_ip(v) then return end
  elseif absent(v) then
    return
  end
  return "invalid_ip", "ip is not a valid IPv4 or IPv6 address"
end

-- device_id is optional: when present, a non-empty string.
local function check_device_id(v)
  if type(v) ~= "string" then
    if absent(v) then return end
    return "invalid_device_id", "device_id must be a string"
  end
  if v == "" then return "invalid_device_id", "device_id is empty" end
end

-- app_version is optional: when present, see app_version_value.
local function check_app_version(v)
  local value, detail = app_version_value(v)
  if value == nil and not absent(v) then return "invalid_app_version", detail end
end

-- ---- create_date -----------------------------------------------------------------------------

-- Whole epoch seconds when secs (a number) is a usable time: not negative, not past year
-- 9999. Else nil.
local function usable_seconds(secs)
  if secs >= 0 and secs <= MAX_EPOCH_SECONDS then return floor(secs) end
end

-- Epoch seconds when v is a usable number of seconds, else nil.
local function epoch_seconds(v)
  if type(v) == "number" then return usable_seconds(v) end
end

-- Epoch seconds from a millisecond count (a number or a numeric string), else nil.
local function epoch_from_ms(ms)
  ms = tonumber(ms)
  if ms == nil then return nil end
  return usable_seconds(ms / 1000)
end

-- os.date for one day's seconds, remembered: messages of a batch mostly share a day.
local cached_day, cached_date
local function utc_date(secs)
  local day = secs // 86400
  if day ~= cached_day then
    cached_day, cached_date = day, os.date("!%Y-%m-%d", secs)
  end
  return cached_date
end

-- The UTC date of a millisecond count (a number or a numeric string), or nil when it is not a
-- usable time. The last count's date is remembered: the messages of an --input batch share
-- the moment they were received.
local last_ms, last_ms_date
local function date_from_ms(ms)
  if ms ~= last_ms then
    local secs = epoch_from_ms(ms)
    if secs == nil then return nil end
    last_ms, last_ms_date = ms, utc_date(secs)
  end
  return last_ms_date
end

-- create_date: the UTC date of the body's `timestamp` (epoch seconds) when present, else of
-- the SQS SentTimestamp, else of the moment the message was received. A `timestamp` that is
-- there but unusable (a string, negative, past year 9999, milliseconds) is not a reject reason
-- in the contract, so it falls back like a missing one. (Each source is looked at only when
-- it is there: most bodies carry no timestamp, and --input gives no SentTimestamp.)
local function create_date(rec, message)
  local secs, date
  if rec.timestamp ~= nil then secs = epoch_seconds(rec.timestamp) end
  if secs ~= nil then return utc_date(secs) end
  if message.sent_ms ~= nil then date = date_from_ms(message.sent_ms) end
  if date == nil and message.received_ms ~= nil then date = date_from_ms(message.received_ms) end
  return date or utc_date(os.time())
end

-- ---- the script ------------------------------------------------------------------------------

return {
  table = "user_logins",

  columns = {"user_id", "device_type", "masked_ip", "masked_device_id", "locale",
             "app_version", "create_date"},

  -- The take-home's DDL. An existing table with app_version varchar(32) also works: the value
  -- is written as the text of the integer.
  create_table = [[CREATE TABLE IF NOT EXISTS %s(
    user_id varchar(128), device_type varchar(32),
    masked_ip varchar(256), masked_device_id varchar(256),
    locale varchar(32), app_version integer, create_date date)]],

  -- masked once per message: ctx.masked["ip"] (of the canonical address), ctx.masked["device_id"]
  pii = {{path = "ip", canonical = "ip"}, "device_id"},

  rules = nil,

  -- The checks in the order they run; the first failure is the reason.
  validate = function(rec)
    local reason, detail = check_user_id(rec.user_id)
    if not reason then reason, detail = check_short_text(rec.device_type, "device_type") end
    if not reason then reason, detail = check_short_text(rec.locale, "locale") end
    if not reason then reason, detail = check_ip(rec.ip) end
    if not reason then reason, detail = check_device_id(rec.device_id) end
    if not reason then reason, detail = check_app_version(rec.app_version) end
    if reason then return false, reason, detail end
    return true
  end,

  transform = function(rec, ctx)
    -- JSON null is written as NULL, like a missing field
    local device_type, locale = rec.device_type, rec.locale
    if device_type == null then device_type = nil end
    if locale == null then locale = nil end
    return {
      user_id = rec.user_id,
      device_type = device_type,
      -- equal addresses mask equal: IPv6 is put in RFC 5952 form first (canonical = "ip")
      masked_ip = ctx.masked["ip"],
      masked_device_id = ctx.masked["device_id"],
      locale = locale,
      app_version = (app_version_value(rec.app_version)),   -- nil (NULL) when absent
      create_date = create_date(rec, ctx.message),
    }
  end,
}
