--[[ etlua.pii_vault: the PII vault's Lua half. The cipher is the C module etlua.vault
(src/vault.c); this file owns the table, what is stored, and the queries of
`etlua reveal`. (It is not named etlua.vault because that name is the C module's: the embedded
Lua modules and the C modules share one package.preload.)

  local pii_vault = require "etlua.pii_vault"
  -- the key: etlua.config reads ETLUA_VAULT_KEY[_FILE] (cfg.vault_key, a etlua.vault key)
  pii_vault.prepare(db)                              -- schema + table, idempotent, race-safe
  local hook = pii_vault.writer(key)                 -- sink.open's opts.in_transaction
  pii_vault.fetch(db, masks, field)                  -- rows for reveal
  pii_vault.open_row(keys, row)                      -- plaintext | nil, msg

The table (etlua_vault.pii): one row per distinct (field, masked value):
  masked      the mask, exactly as in the rows (lowercase hex HMAC-SHA-256)
  field       the script's pii path the value was found at ("ip", "device_id", "user.email")
  key_id      first 8 bytes of SHA-256 of the vault key, hex: which key sealed this row
  nonce       12 random bytes;   ciphertext: AES-256-GCM ciphertext followed by its 16-byte tag
  created_at  when it was first stored
The associated data is field .. "\0" .. masked: a ciphertext moved to another field or row does
not open. The plaintext is the text that was masked: the value in the canonical form its pii
path declares (an ip in canonical form, a device_id as it came). Rows are written in the
batch's own transaction (INSERT ... ON CONFLICT DO NOTHING), so a value is in the vault if and
only if a row that masks it committed.
]]
local cvault = require "etlua.vault"

local M = {}

M.SCHEMA = "etlua_vault"
M.TABLE = "pii"
local QUALIFIED = M.SCHEMA .. "." .. M.TABLE

local DDL = {
  "CREATE SCHEMA IF NOT EXISTS " .. M.SCHEMA,
  "CREATE TABLE IF NOT EXISTS " .. QUALIFIED .. " ("
    .. "masked text NOT NULL, field text NOT NULL, key_id text NOT NULL, "
    .. "nonce bytea NOT NULL, ciphertext bytea NOT NULL, "
    .. "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (masked, field))",
}

-- ---- the table -------------------------------------------------------------------------------

-- prepare(db) -> true | nil, msg, code. Several processes may race on the CREATEs: the loser
-- gets a unique violation (23505) or "already exists" (42P06, 42P07) and finds it made.
-- An existing table is only looked up, so a role without CREATE on the database can write to a
-- vault an administrator made (README "PII vault").
function M.prepare(db)
  local err, code
  for _ = 1, 3 do
    local found
    found, err, code = db:exec("SELECT to_regclass($1) IS NOT NULL", QUALIFIED)
    if not found then return nil, err, code end
    if found[1][1] == "t" then return true end
    local done = true
    for _, ddl in ipairs(DDL) do
      local ok
      ok, err, code = db:exec(ddl)
      if not ok then
        if code ~= "23505" and code ~= "42P06" and code ~= "42P07" then return nil, err, code end
        done = false
      end
    end
    if done then return true end
  end
  return nil, err, code
end

-- ---- writing, in the batch's transaction -----------------------------------------------------

local INSERT = "INSERT INTO " .. QUALIFIED .. " (masked, field, key_id, nonce, ciphertext) "
  .. "SELECT m, f, $1, decode(n, 'hex'), decode(c, 'hex') "
  .. "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(m, f, n, c) "
  .. "ON CONFLICT (masked, field) DO NOTHING"

-- writer(key) -> function(db, landed_items) -> true | nil, msg, code   (sink.open's in_transaction)
-- Each landed item with rows carries the masks its message was given when it was processed and
-- the canonical texts they were computed from (item.masks: {path, mask, text, ...} triples,
-- etlua.pii row_masks): each is sealed once per batch under that very mask, so the vault holds
-- exactly what the rows hold, whatever paths and canonical forms the script declares.
function M.writer(key)
  local key_id = key:id()
  local seal, tohex = key.seal, cvault.tohex
  return function(db, landed)
    local seen, m, f, n, c, count = {}, {}, {}, {}, {}, 0
    local function add(path, masked, plain)
      if type(masked) ~= "string" or type(plain) ~= "string" then return end
      local ad = path .. "\0" .. masked
      if seen[ad] then return end
      seen[ad] = true
      local nonce, ct = seal(key, ad, plain)
      count = count + 1
      m[count], f[count], n[count], c[count] = masked, path, tohex(nonce), tohex(ct)
    end
    for i = 1, #landed do
      local item = landed[i]
      local masks = item.masks
      if (item.rows or item.row) and masks then
        for j = 1, #masks, 3 do add(masks[j], masks[j + 1], masks[j + 2]) end
      end
    end
    if count == 0 then return true end
    m.n, f.n, n.n, c.n = count, count, count, count
    local ok, err, code = db:exec(INSERT, key_id, m, f, n, c)
    if not ok then return nil, err, code end
    return true
  end
end

-- ---- reading, for reveal ---------------------------------------------------------------------

-- The columns every reading query selects, and their decoding into sealed rows.
local SEALED_COLUMNS = "masked, field, key_id, encode(nonce, 'hex'), encode(ciphertext, 'hex')"

local function sealed_rows(rows)
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { masked = r[1], field = r[2], key_id = r[3],
               nonce = cvault.fromhex(r[4]) or "", ciphertext = cvault.fromhex(r[5]) or "" }
  end
  return out
end

-- fetch(db, masks, field) -> array of {masked=, field=, key_id=, nonce=, ciphertext=} (bytes)
-- | nil, msg, code. field nil = both fields.
function M.fetch(db, masks, field)
  local sql = "SELECT " .. SEALED_COLUMNS .. " FROM "
    .. QUALIFIED .. " WHERE masked = ANY($1::text[]) AND ($2::text IS NULL OR field = $2) "
    .. "ORDER BY masked, field"
  local rows, err, code = db:exec(sql, masks, field)
  if not rows then return nil, err, code end
  return sealed_rows(rows)
end

-- open_row(keys, row) -> plaintext | nil, msg. keys: {[key_id] = key}.
function M.open_row(keys, row)
  local key = keys[row.key_id]
  if not key then
    local have = {}
    for id in pairs(keys) do have[#have + 1] = id end
    table.sort(have)
    return nil, ("it was sealed with vault key id %s, and the key given has id %s")
      :format(row.key_id, table.concat(have, ", "))
  end
  local plain, err = key:open(row.field .. "\0" .. row.masked, row.nonce, row.ciphertext)
  if not plain then return nil, err end
  return plain
end

-- rows_with_key(db, key_id, limit) -> up to limit rows sealed with key_id, locked (FOR UPDATE) in
-- the caller's transaction, for re-encryption | nil, msg, code
function M.rows_with_key(db, key_id, limit)
  local rows, err, code = db:exec(
    "SELECT " .. SEALED_COLUMNS .. " FROM "
      .. QUALIFIED .. " WHERE key_id = $1 ORDER BY masked, field LIMIT $2 FOR UPDATE", key_id, limit)
  if not rows then return nil, err, code end
  return sealed_rows(rows)
end

-- reseal(db, new_key, rows, keys) -> count | nil, msg, code: rows re-encrypted under new_key,
-- in the caller's transaction. A row that does not open stops everything (nil, msg).
function M.reseal(db, new_key, rows, keys)
  local m, f, n, c = {}, {}, {}, {}
  for i, row in ipairs(rows) do
    local plain, err = M.open_row(keys, row)
    if not plain then return nil, ("%s (%s): %s"):format(row.masked, row.field, err) end
    local ad = row.field .. "\0" .. row.masked
    local nonce, ct = new_key:seal(ad, plain)
    m[i], f[i], n[i], c[i] = row.masked, row.field, cvault.tohex(nonce), cvault.tohex(ct)
  end
  if #rows == 0 then return 0 end
  local ok, err, code = db:exec(
    "UPDATE " .. QUALIFIED .. " AS p SET key_id = $1, nonce = decode(u.n, 'hex'), "
      .. "ciphertext = decode(u.c, 'hex') "
      .. "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(m, f, n, c) "
      .. "WHERE p.masked = u.m AND p.field = u.f", new_key:id(), m, f, n, c)
  if not ok then return nil, err, code end
  return #rows
end

return M
