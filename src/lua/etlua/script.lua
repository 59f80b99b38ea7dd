-- etlua.script: loads the user's pipeline script and checks its hooks once, at start-up, so the
-- hot path never asks again (DESIGN.md "Rules"; ARCHITECTURE.md "Script contract").
local fail = require "etlua.fail"

local M = {}

local REQUIRED = {
  { "table", "string", "the target table's name" },
  { "columns", "table", "the target table's columns, in order" },
  { "create_table", "string", "the CREATE TABLE IF NOT EXISTS statement (%s = table name)" },
  { "validate", "function", "validate(record) -> true | false, reason, detail" },
  { "transform", "function", "transform(record, ctx) -> row" },
}

function M.load(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then
    if err:find("cannot open", 1, true) then
      fail.user("cannot open script %s; give the path of a pipeline script such as scripts/login_etl.lua", path)
    end
    fail.user("script %s does not load: %s; fix the syntax error and retry", path, err)
  end
  local ok, script = pcall(chunk)
  if not ok then
    fail.user("script %s failed while loading: %s", path, tostring(script))
  end
  if type(script) ~= "table" then
    fail.user("script %s must return a table of hooks (got %s); see ARCHITECTURE.md \"Script contract\"", path, type(script))
  end
  for _, r in ipairs(REQUIRED) do
    local name, kind, what = r[1], r[2], r[3]
    if type(script[name]) ~= kind then
      fail.user("script %s has no %s '%s' (%s); add it and retry", path, kind, name, what)
    end
  end
  if #script.columns == 0 then
    fail.user("script %s: 'columns' is empty", path)
  end
  script.path = path
  return script
end

return M
