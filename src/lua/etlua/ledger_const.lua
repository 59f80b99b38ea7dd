-- etlua.ledger_const: the numbers etlua.ledger and etlua.ledger_maintain both use, in a module
-- that requires neither of them (etlua.ledger calls etlua.ledger_maintain for its DDL; with the
-- numbers read back from etlua.ledger the two modules required each other).
local entries = require "etlua.ledger_entries"

return {
  EPOCH = entries.EPOCH, -- 2024-01-01T00:00:00Z, `sent` = 0 (the entry rule's, in C)
  MARGIN = 3600,         -- added to the queue's retention: clock skew, late commits
  AHEAD = 2,             -- partitions kept made ahead of the current time
}
