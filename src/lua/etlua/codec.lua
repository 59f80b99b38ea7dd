--[[ etlua.codec: the one place that chooses etlua's JSON codec, so switching it is one edit.

  codec.decode(s)   -> value | nil, msg      (never raises on bad input; depth limit 1000)
  codec.encode(v)   -> text | nil, msg
  codec.null        JSON null (the NULL lightuserdata, equal to cjson.null)
  codec.array_mt    metatable the decoder gives arrays (nil while the codec cannot tell)
  codec.is_array(t) -> true when t is a decoded JSON array (or a non-empty sequence)

Today: lua-cjson (a dedicated instance, so other users of cjson cannot change its settings).
It decodes every number as a float and [] like {}; the C codec etlua.json keeps 64-bit integers
and empty arrays, and replaces it here once it is in the tree.
]]
local cjson = require "cjson"

local M = {}

local MAX_DEPTH = 1000 -- nesting bound (cjson's own default): deeper is invalid JSON, not a crash

local json = cjson.new()
json.decode_invalid_numbers(false) -- NaN, Infinity, hex numbers are not JSON
json.decode_max_depth(MAX_DEPTH)
json.encode_invalid_numbers("null") -- 1e400 decodes to inf; store it as null, do not fail
json.encode_sparse_array(true)
json.encode_max_depth(MAX_DEPTH)

local raw_decode, raw_encode = json.decode, json.encode

function M.decode(s)
  local ok, v = pcall(raw_decode, s)
  if ok then return v end
  return nil, tostring(v)
end

function M.encode(v)
  local ok, text = pcall(raw_encode, v)
  if ok then return text end
  return nil, tostring(text)
end

M.null = cjson.null
M.array_mt = nil

function M.is_array(t)
  if M.array_mt and getmetatable(t) == M.array_mt then return true end
  return t[1] ~= nil
end

return M
