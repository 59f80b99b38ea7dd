-- etlua.reveal: `etlua reveal [--field ip|device_id] MASKED...` — PII recovery for holders of
-- the vault key (issue 6). Not built yet.
local M = {}

function M.main(argv)
  local _ = argv
  io.stderr:write("etlua: reveal is not built yet (the PII vault is issue 6)\n")
  return 2
end

return M
