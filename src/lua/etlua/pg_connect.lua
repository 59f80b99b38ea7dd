-- etlua.pg_connect: the Postgres connection etlua writes through (the runner's, and
-- `etlua reveal`'s), and the one message when there is none.
-- Every such connection runs its transactions with synchronous_commit = level
-- (ETLUA_SYNCHRONOUS_COMMIT, on by default), whatever the server's default: with `off` a COMMIT
-- returns before its WAL is on disk, so a server crash can lose a batch that etlua has already
-- deleted from the queue.
--   pg_connect.durable(url [, level]) -> db | nil, msg, code
--       level: the runner's validated setting; without it, ETLUA_SYNCHRONOUS_COMMIT is read
--       (config.setting) once connected, so a bad value is reported only after the connection
--       succeeded, as `etlua reveal` always did. code: "connection" when pg.connect failed, else
--       the setting's (SQLSTATE or "connection"); a connection whose setting failed is closed.
--       One attempt: retrying is the caller's.
--   pg_connect.fail(msg)  raises the user error "cannot connect to Postgres: msg; check ..."
local pg = require "etlua.pg"
local fail = require "etlua.fail"
local config = require "etlua.config"

local M = {}

function M.durable(url, level)
  local db, msg = pg.connect(url)
  if not db then return nil, msg, "connection" end
  if level == nil then level = config.setting("ETLUA_SYNCHRONOUS_COMMIT") end
  local ok, err, code = db:exec("SELECT set_config('synchronous_commit', $1, false)", level)
  if not ok then
    db:close()
    return nil, err, code
  end
  return db
end

function M.fail(msg)
  fail.user("cannot connect to Postgres: %s; check DATABASE_URL or PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE", msg)
end

return M
