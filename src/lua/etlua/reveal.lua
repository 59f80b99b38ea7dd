-- etlua.reveal: PII recovery for holders of the vault key (the vault: etlua.pii_vault).
--
--   etlua reveal [--field PATH] MASKED...     (PATH: a pii path of the script, e.g. ip)
--       prints "MASKED<TAB>FIELD<TAB>ORIGINAL" per stored value (a mask found under both fields
--       prints two lines), and "etlua: MASKED: not found in the vault" on stderr per mask absent.
--   etlua reveal --reencrypt
--       re-seals every row sealed with ETLUA_VAULT_OLD_KEY[_FILE] under ETLUA_VAULT_KEY[_FILE].
--
-- Needs DATABASE_URL (or PG*), the vault key, and the right to read etlua_vault.pii. Every value
-- is decrypted before anything is printed: a wrong key or a tampered row is one line on stderr,
-- exit 1, and no plaintext at all. Exit: 0 all found; 1 a failure or a mask not found; 2 usage.
local pii_vault = require "etlua.pii_vault"
local pg_connect = require "etlua.pg_connect"
local fail = require "etlua.fail"
local config = require "etlua.config"

local M = {}

M.usage = [[
usage: etlua reveal [--field PATH] MASKED...
       etlua reveal --reencrypt
Prints MASKED<TAB>FIELD<TAB>ORIGINAL for each masked value found in the PII vault.
FIELD is the script's pii path the value was found at (ip, device_id, user.email, ...);
--field PATH shows only values found at that path.
Needs DATABASE_URL (or PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE), read access to the
etlua_vault schema, and ETLUA_VAULT_KEY (64 hex digits) or ETLUA_VAULT_KEY_FILE.
--reencrypt re-seals the rows of the key in ETLUA_VAULT_OLD_KEY[_FILE] under ETLUA_VAULT_KEY.
]]

local function usage_error(fmt, ...)
  io.stderr:write("etlua reveal: ", string.format(fmt, ...), " (see etlua reveal --help)\n")
  return 2
end

local function parse(argv)
  local opts, masks = {}, {}
  local i = 2 -- argv[1] is "reveal"
  while i <= #argv do
    local a = argv[i]
    if a == "--help" or a == "-h" then opts.help = true
    elseif a == "--reencrypt" then opts.reencrypt = true
    elseif a == "--field" then
      i = i + 1
      opts.field = argv[i]
      if opts.field == nil or opts.field == "" or opts.field:sub(1, 2) == "--" then
        return nil, "--field needs a pii path (e.g. ip, device_id, user.email)"
      end
    elseif a:sub(1, 2) == "--" then return nil, "unknown option " .. a
    else
      local m = a:lower()
      if not m:match("^" .. ("%x"):rep(64) .. "$") then
        return nil, ("'%s' is not a masked value (64 hex digits)"):format(#a > 80 and a:sub(1, 80) .. "…" or a)
      end
      masks[#masks + 1] = m
    end
    i = i + 1
  end
  if not opts.help and not opts.reencrypt and #masks == 0 then return nil, "no masked value given" end
  if opts.reencrypt and #masks > 0 then return nil, "--reencrypt takes no masked values" end
  return opts, masks
end

local function connect() -- --reencrypt writes: durable whatever the server's default
  local db, err = pg_connect.durable(config.database(os.getenv))
  if not db then pg_connect.fail(err) end
  return db
end

local function vault_error(err, code)
  if code == "42P01" or code == "3F000" then
    fail.user("there is no PII vault in this database (etlua_vault.pii): "
      .. "etlua stores one only when ETLUA_VAULT_KEY is set")
  elseif code == "42501" then
    fail.user("no permission to read the PII vault (etlua_vault.pii): %s", err)
  end
  fail.user("cannot read the PII vault: %s", err)
end

local function required_key()
  local key = config.vault_key(os.getenv)
  if not key then
    fail.user("no vault key: set ETLUA_VAULT_KEY (64 hex digits) or ETLUA_VAULT_KEY_FILE "
      .. "to the key etlua stored the values with")
  end
  return key
end

local function reveal(masks, field)
  local key = required_key()
  local db = connect()
  local rows, err, code = pii_vault.fetch(db, masks, field)
  db:close()
  if not rows then vault_error(err, code) end

  -- Decrypt everything first: on any failure nothing is printed.
  local keys = { [key:id()] = key }
  local by_mask = {}
  for _, row in ipairs(rows) do
    local plain, why = pii_vault.open_row(keys, row)
    if not plain then
      key:close()
      fail.user("cannot decrypt %s (%s): %s; nothing was printed", row.masked, row.field, why)
    end
    local list = by_mask[row.masked] or {}
    list[#list + 1] = { field = row.field, plain = plain }
    by_mask[row.masked] = list
  end
  key:close()

  local out, missing = {}, 0
  for _, m in ipairs(masks) do
    local list = by_mask[m]
    if list then
      for _, r in ipairs(list) do
        -- A control character would break the line format: print it escaped (%q style).
        local text = r.plain:find("[%c\\]") and ("%q"):format(r.plain):gsub("\\\n", "\\n") or r.plain
        out[#out + 1] = m .. "\t" .. r.field .. "\t" .. text .. "\n"
      end
    else
      missing = missing + 1
      io.stderr:write("etlua: ", m, ": not found in the vault",
                      field and (" (field " .. field .. ")") or "", "\n")
    end
  end
  io.stdout:write(table.concat(out))
  return missing == 0 and 0 or 1
end

local BATCH = 1000

local function reencrypt()
  local new_key = required_key()
  local old_key = config.vault_key(os.getenv, "ETLUA_VAULT_OLD_KEY")
  if not old_key then
    fail.user("--reencrypt needs the old key in ETLUA_VAULT_OLD_KEY (or ETLUA_VAULT_OLD_KEY_FILE) "
      .. "and the new one in ETLUA_VAULT_KEY")
  end
  if old_key:id() == new_key:id() then fail.user("ETLUA_VAULT_OLD_KEY and ETLUA_VAULT_KEY are the same key") end
  local keys = { [old_key:id()] = old_key }
  local db = connect()
  local total = 0
  while true do
    -- One transaction per BATCH rows: a failure leaves every row readable with one of the keys.
    local ok, err, code = db:exec("BEGIN")
    if not ok then vault_error(err, code) end
    local rows
    rows, err, code = pii_vault.rows_with_key(db, old_key:id(), BATCH)
    if not rows then db:exec("ROLLBACK") vault_error(err, code) end
    local n
    n, err = pii_vault.reseal(db, new_key, rows, keys)
    if not n then
      db:exec("ROLLBACK")
      fail.user("re-encryption stopped, nothing of this batch changed: %s", err)
    end
    ok, err = db:exec("COMMIT")
    if not ok then fail.user("re-encryption stopped at COMMIT: %s", err) end
    total = total + n
    if n < BATCH then break end
  end
  db:close()
  io.stdout:write(("re-encrypted %d values from key id %s to key id %s\n"):format(total, old_key:id(), new_key:id()))
  old_key:close()
  new_key:close()
  return 0
end

function M.main(argv)
  local opts, masks = parse(argv)
  if not opts then return usage_error("%s", masks) end
  if opts.help then io.stdout:write(M.usage) return 0 end
  if opts.reencrypt then return reencrypt() end
  return reveal(masks, opts.field)
end

return M
