--[[ etlua.envelope: unwrapping a message body that carries its event inside an envelope.

  local inner, sns, key, sent_ms = envelope.sns(decoded)
    decoded: the decoded body. When it is an SNS notification ("Type": "Notification" with a
    string "Message"), returns the Message text (the event, still to be decoded), the
    ctx.message.sns table {message_id, topic_arn, subject, timestamp}, the ledger key (the SNS
    MessageId, shared by every SQS delivery of one SNS message; nil when absent) and the SNS
    Timestamp in epoch milliseconds (nil when absent or not ISO-8601). Otherwise returns nil:
    the body is the event itself.

  envelope.iso8601_ms(s) -> epoch milliseconds | nil
    "2024-05-01T12:30:45.123Z" and "+hh:mm" / "-hh:mm" offsets; no fraction, or any number of
    fraction digits (the first three count).
]]
local codec = require "etlua.codec"

local M = {}
local null = codec.null

-- Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
-- days_from_civil), so no local time zone is involved.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

function M.iso8601_ms(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  local ms = 0
  local frac, zone = rest:match("^%.(%d+)(.*)$")
  if frac then
    ms = tonumber((frac .. "00"):sub(1, 3))
    rest = zone
  end
  local offset
  if rest == "Z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * (sign == "+" and 1 or -1)
  end
  local secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset * 60
  return secs * 1000 + ms
end

local function text(v)
  if type(v) == "string" then return v end
  return nil
end

function M.sns(decoded)
  if type(decoded) ~= "table" or decoded.Type ~= "Notification"
      or type(decoded.Message) ~= "string" then
    return nil
  end
  local sns = {
    message_id = text(decoded.MessageId),
    topic_arn = text(decoded.TopicArn),
    subject = decoded.Subject ~= null and text(decoded.Subject) or nil,
    timestamp = text(decoded.Timestamp),
  }
  return decoded.Message, sns, sns.message_id, M.iso8601_ms(sns.timestamp)
end

return M
