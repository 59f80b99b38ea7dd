-- etlua.dryrun: the sink of --dry-run. It prints each row it would write as one JSON object per
-- line on stdout, keys in column order, NULL as null; rejects go to the log. Nothing is written.
local cjson = require "cjson"

local M = {}
local Dry = {}
Dry.__index = Dry

function M.new(out, columns)
  local json = cjson.new()
  json.encode_invalid_numbers(false)
  local keys = {}
  for i, c in ipairs(columns) do keys[i] = json.encode(c) end
  return setmetatable({ out = out, columns = columns, keys = keys, json = json }, Dry)
end

function Dry:commit(items)
  local written, rejected = 0, 0
  local buf, parts = {}, {}
  for _, item in ipairs(items) do
    if item.row then
      for i = 1, #self.columns do
        local v = item.row[i]
        parts[i] = self.keys[i] .. ":" .. (v == nil and "null" or self.json.encode(v))
      end
      buf[#buf + 1] = "{" .. table.concat(parts, ",", 1, #self.columns) .. "}\n"
      written = written + 1
    else
      rejected = rejected + 1
    end
  end
  self.out:write(table.concat(buf))
  self.out:flush()
  return { written = written, rejected = rejected, duplicates = 0, refused = 0 }
end

return M
