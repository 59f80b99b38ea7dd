-- etlua.dryrun: the sink of --dry-run. It prints each row it would write as one JSON object per
-- line on stdout, keys in column order, NULL as null; rejects go to the log; drops print
-- nothing. For a script with `outputs`, each line is {"<output name>": {row}}. Values are
-- printed as they would be written (etlua.rows): a float or a table as its text, for instance.
-- Nothing is written.
local codec = require "etlua.codec"

local M = {}
local Dry = {}
Dry.__index = Dry

-- desc: a script description (etlua.script)
function M.new(out, desc)
  local outputs = {}
  for i, o in ipairs(desc.outputs) do
    local keys = {}
    for j, c in ipairs(o.columns) do keys[j] = codec.encode(c) end
    outputs[i] = { keys = keys, ncols = #o.columns,
                   prefix = desc.multi and ("{" .. codec.encode(o.name) .. ":") or "",
                   suffix = desc.multi and "}\n" or "\n" }
  end
  return setmetatable({ out = out, outputs = outputs }, Dry)
end

-- One line per row into buf; o: the output's keys and affixes.
local function add_line(buf, parts, o, row)
  for j = 1, o.ncols do
    local v = row[j]
    parts[j] = o.keys[j] .. ":" .. (v == nil and "null" or codec.encode(v))
  end
  buf[#buf + 1] = o.prefix .. "{" .. table.concat(parts, ",", 1, o.ncols) .. "}" .. o.suffix
end

function Dry:commit(items)
  local written, rejected, dropped = 0, 0, 0
  local buf, parts = {}, {}
  for _, item in ipairs(items) do
    if item.row then -- the one row of a script without outputs (etlua.record)
      add_line(buf, parts, self.outputs[1], item.row)
      written = written + 1
    elseif item.rows then
      for i, list in ipairs(item.rows) do
        local o = self.outputs[i]
        for _, row in ipairs(list) do
          add_line(buf, parts, o, row)
          written = written + 1
        end
      end
    elseif item.drop then
      dropped = dropped + 1
    else
      rejected = rejected + 1
    end
  end
  self.out:write(table.concat(buf))
  self.out:flush()
  return { written = written, rejected = rejected, dropped = dropped, duplicates = 0, refused = 0 }
end

return M
