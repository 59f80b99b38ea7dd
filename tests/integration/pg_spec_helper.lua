-- pg_spec_helper.lua: what the Postgres specs run by sink.sh (sink_spec, outputs_spec,
-- ledger_spec) share: a schema of their own per test, a connection from DATABASE_URL, one-value
-- and all-rows queries, and a Lua chunk run in a separate lua5.4 process (a second consumer).
local pg = require "etlua.pg"

local M = {}

local seq = 0
-- fresh_schema(prefix) -> a schema name no other test of this run uses
function M.fresh_schema(prefix)
  seq = seq + 1
  return ("%s_%d_%d"):format(prefix, os.time() % 100000, seq)
end

function M.connect()
  local db, err = pg.connect(os.getenv("DATABASE_URL"))
  assert(db, err)
  return db
end

-- the first column of the first row, or nil
function M.one(db, sql, ...)
  local rows, err = db:exec(sql, ...)
  assert(rows, err)
  return rows[1] and rows[1][1]
end

-- every row as its columns joined by "|"
function M.all(db, sql, ...)
  local rows, err = db:exec(sql, ...)
  assert(rows, err)
  local out = {}
  for i, r in ipairs(rows) do out[i] = table.concat(r, "|", 1, r.n or #r) end
  return out
end

-- Runs a Lua chunk in a separate lua5.4 process (same LUA_PATH / LUA_CPATH / DATABASE_URL);
-- finish(p) waits for it and returns its output.
function M.spawn(chunk)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(chunk)
  f:close()
  return { pipe = assert(io.popen("lua5.4 " .. path .. " 2>&1")), path = path }
end

function M.finish(p)
  local out = p.pipe:read("a")
  p.pipe:close()
  os.remove(p.path)
  return out
end

return M
