--[[ etlua.codec: the one place that chooses etlua's JSON codec for message bodies, rows and
reject bodies, so switching it is one edit.

  codec.decode(s)       -> value | nil, msg    (never raises on bad input; depth limit 1000)
  codec.decode_object(s) -> table | nil       the JSON object s holds; nil when it holds none
                           (not JSON, or another value: codec.decode says which)
  codec.encode(v)       -> text | nil, msg
  codec.number_text(x)  -> the text Postgres reads for a number (digits for an integer, the
                           shortest text that reads back the same for a float)
  codec.null            JSON null (the NULL lightuserdata, equal to cjson.null)
  codec.array_mt        the metatable of decoded arrays
  codec.is_array(t)     -> true when t is a decoded JSON array or a non-empty sequence

The codec is etlua.json (src/json.c): JSON integers decode to Lua integers over the whole signed
64-bit range, other numbers to floats, and an empty array [] stays an array apart from {}.
lua-cjson stays available to scripts (require "cjson"); its null is the same value.
]]
local json = require "etlua.json"

local M = {}

M.decode = json.decode
M.decode_object = json.decode_object
M.encode = json.encode
M.number_text = json.number_text
M.null = json.null
M.array_mt = json.array_mt

local array_mt = json.array_mt
function M.is_array(t)
  return getmetatable(t) == array_mt or t[1] ~= nil
end

return M
