-- etlua.config: the run's configuration, from the environment and the script's defaults (the
-- environment wins over the script's `config` table). It reads and validates every environment
-- variable etlua uses (other modules hand it os.getenv): a bad value is a one-line error naming
-- the variable and what it allows. The other readers: etlua.cli looks at DATABASE_URL early, to
-- start the Postgres connection while the rest loads (only for a URL M.database accepts);
-- src/http_proxy.c reads the proxy variables in C, as libcurl would; src/pg_text.c reads
-- PGPASSWORD only to redact it from a connection error; libpq reads its own PG* variables. It
-- owns the secrets (AWS secret key and session token, mask key, vault key, the Postgres
-- password): each is registered with etlua.redact as it is read, and config.describe() is the
-- only view of the configuration that is logged.
local fail = require "etlua.fail"
local redact = require "etlua.redact"
local pg = require "etlua.pg"

local M = {}

local function is_loopback(url)
  local host = url and url:match("^%a[%w+.-]*://%[?([^/%]:]+)")
  return host == "localhost" or host == "::1" or (host ~= nil and host:match("^127%.") ~= nil)
end

-- "scheme://host[:port]" of a URL.
local function origin(url)
  return url and url:match("^(%a[%w+.-]*://[^/]+)")
end

-- Shared AWS files (~/.aws/credentials, ~/.aws/config) as the SDKs read them: INI sections,
-- `key = value` lines, `#`/`;` comments. In the config file a profile's section is
-- "[profile NAME]" (but "[default]"); in the credentials file it is "[NAME]".
local function read_ini_section(path, section)
  local f = io.open(path, "r")
  if not f then return nil end
  local values, current = nil, nil
  for line in f:lines() do
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    local name = line:match("^%[%s*(.-)%s*%]$")
    if name then
      current = (name == section)
      if current and not values then values = {} end
    elseif current and line ~= "" and not line:match("^[#;]") then
      local k, v = line:match("^([%w_%-%.]+)%s*=%s*(.-)$")
      if k then values[k:lower()] = v end
    end
  end
  f:close()
  return values
end

-- The profile's settings: credentials file first, then the config file (the SDKs' order).
local function aws_profile(get)
  local home = os.getenv("HOME") or ""
  local profile = get("AWS_PROFILE") or "default"
  local creds_file = get("AWS_SHARED_CREDENTIALS_FILE") or (home .. "/.aws/credentials")
  local config_file = get("AWS_CONFIG_FILE") or (home .. "/.aws/config")
  local creds = read_ini_section(creds_file, profile) or {}
  local conf = read_ini_section(config_file, profile == "default" and "default" or ("profile " .. profile)) or {}
  local found = next(creds) ~= nil or next(conf) ~= nil
  if get("AWS_PROFILE") and not found then
    fail.user("AWS_PROFILE=%s: no such profile in %s or %s", profile, creds_file, config_file)
  end
  local function pick(key) return creds[key] or conf[key] end
  return {
    access_key = pick("aws_access_key_id"), secret_key = pick("aws_secret_access_key"),
    session_token = pick("aws_session_token"), region = conf.region or creds.region,
    name = found and profile or nil,
  }
end

-- The bytes of a key file; a missing file, a directory or an unreadable one is a user error.
local function read_file(name, path)
  local f, err = io.open(path, "rb")
  if not f then fail.user("cannot read %s: %s", name, err) end
  local data, rerr = f:read("a")
  f:close()
  if not data then fail.user("cannot read %s %s: %s (it must name a file)", name, path, rerr) end
  return data
end

local function mask_key(get)
  local value, file = get("ETLUA_MASK_KEY"), get("ETLUA_MASK_KEY_FILE")
  if value and file then
    fail.user("both ETLUA_MASK_KEY and ETLUA_MASK_KEY_FILE are set; set only one")
  end
  local key = value or (file and read_file("ETLUA_MASK_KEY_FILE", file):gsub("\r?\n$", ""))
  if not key or key == "" then
    fail.user("no mask key: set ETLUA_MASK_KEY (or ETLUA_MASK_KEY_FILE) to a secret of at least 32 bytes, "
      .. "e.g. `openssl rand -hex 32`")
  end
  if #key < 32 then
    fail.user("the mask key is %d bytes; it must be at least 32 (e.g. `openssl rand -hex 32`)", #key)
  end
  return key
end

-- vault_key(get [, prefix]) -> key userdata (etlua.vault), "ETLUA_VAULT_KEY"|"..._FILE" | nil.
-- ETLUA_VAULT_KEY: 64 hex digits. ETLUA_VAULT_KEY_FILE: a file of 32 raw bytes, or of 64 hex
-- digits with one optional trailing newline. prefix (default "ETLUA_VAULT_KEY") reads
-- ETLUA_VAULT_OLD_KEY[_FILE] the same way (etlua reveal --reencrypt).
local function vault_key(get, prefix)
  prefix = prefix or "ETLUA_VAULT_KEY"
  local value, file = get(prefix), get(prefix .. "_FILE")
  if value and file then fail.user("both %s and %s_FILE are set; set only one", prefix, prefix) end
  if not value and not file then return nil end
  local source = value and prefix or (prefix .. "_FILE")
  local material = value or read_file(source, file)
  redact.add(material, redact.KEY)
  local key = require("etlua.vault").key(material)
  if not key then
    fail.user("%s must hold 64 hex digits%s (e.g. `openssl rand -hex 32`)", source,
              file and " or 32 raw bytes" or "")
  end
  return key, source
end

-- Every plain setting is one entry here: name, kind, default, bounds (integer: min, max; choice:
-- the allowed values; string: nothing to check), and `input`: its default for an --input run
-- when that differs. cfg[key] holds the value, key being the name in
-- lower case without ETLUA_ unless given. A bad value is a one-line error naming the variable and
-- what it allows. The variables with rules of their own (queue, endpoint, credentials, Postgres,
-- keys) are read by the functions below, and KNOWN lists every name for the script's defaults.
M.VARIABLES = {
  -- 200: the receive pipeline keeps its long polls in flight while a batch commits only while
  -- the prefetch limit (two batches + 10 x the receives in flight, etlua.source) leaves room.
  -- --input has no receive pipeline: 500 (`input`), whose per-transaction costs (round trips,
  -- the COMMIT's WAL flush, each statement's start) cost Postgres ~15% less CPU per message
  -- than 200's, and the run ~15% less wall time; 1000 saved the server no more and cost etlua
  -- more (50,000 login bodies, durable Postgres, alternating runs).
  { "ETLUA_BATCH_SIZE", "integer", 200, 1, 100000, input = 500 },
  { "ETLUA_BATCH_MAX_WAIT_MS", "integer", 500, 0, 600000 },
  { "ETLUA_OUTAGE_SECONDS", "integer", 300, 0, 86400 },
  { "ETLUA_RETRY_ATTEMPTS", "integer", 8, 1, 1000 },
  { "ETLUA_WAIT_SECONDS", "integer", 20, 0, 20 },
  -- at least 1: a --drain ends on an empty long poll; a short poll (0) can come back empty
  -- from a queue that still holds messages (SQS samples a subset of its servers)
  { "ETLUA_DRAIN_WAIT_SECONDS", "integer", 1, 1, 20 },
  -- The most ReceiveMessage long polls in flight: the number in flight adapts below it
  -- (etlua.receive_window: grows while prompt full answers meet a waiting batch, shrinks on
  -- empty, slow or late answers and on a prefetch two batches ahead); 128 leaves room at 20 ms
  -- of round trip (bench/netem.sh: 64 held etlua to 0.79 of its own rate there).
  { "ETLUA_RECEIVE_CONCURRENCY", "integer", 128, 1, 128 },
  { "ETLUA_SQS_PROTOCOL", "choice", "auto", { "auto", "json", "query" }, key = "protocol" },
  { "ETLUA_SYNCHRONOUS_COMMIT", "choice", "on", { "on", "remote_apply", "remote_write", "local", "off" } },
  { "ETLUA_METRICS_ADDR", "string", nil },
  -- how often the queue's depth is asked for the etlua_queue_messages gauge (0: never)
  { "ETLUA_QUEUE_DEPTH_SECONDS", "integer", 15, 0, 3600 },
  -- seconds a ledger entry lives, margin included (unset: the queue's retention + 1 h, etlua.ledger);
  -- the partition width of a ledger made now (for tests; unset: from the retention)
  { "ETLUA_LEDGER_RETENTION", "integer", nil, 1, 400 * 86400 },
  { "ETLUA_LEDGER_PARTITION_SECONDS", "integer", nil, 1, 7 * 86400 },
  { "ETLUA_PROGRESS", "choice", nil, { "0", "1" } },
  -- the CPU time of the hook: what one script hook call (validate, a rule's check, transform) may use
  { "ETLUA_SCRIPT_BUDGET_MS", "integer", 100, 1, 3600000 },
}

local KNOWN = {}
for _, v in ipairs(M.VARIABLES) do KNOWN[v[1]] = true end
for name in ([[SQS_QUEUE_URL SQS_QUEUE AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL AWS_REGION
  AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
  AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_CA_BUNDLE DATABASE_URL ETLUA_MASK_KEY
  ETLUA_MASK_KEY_FILE ETLUA_VAULT_KEY ETLUA_VAULT_KEY_FILE]]):gmatch("%S+") do KNOWN[name] = true end

-- libpq's own variables a script's config may give defaults for, and the connection keyword
-- each stands for. libpq reads them from the environment itself; a default is written into the
-- connection string instead (see database).
local PG_DEFAULTS = { PGHOST = "host", PGPORT = "port", PGUSER = "user", PGPASSWORD = "password",
                      PGDATABASE = "dbname", PGSSLMODE = "sslmode" }
for name in pairs(PG_DEFAULTS) do KNOWN[name] = true end

local function setting(get, v, input)
  local name, kind, default = v[1], v[2], v[3]
  if input and v.input ~= nil then default = v.input end
  local raw = get(name)
  if raw == nil then return default end
  raw = tostring(raw)
  if kind == "integer" then
    local n = math.tointeger(tonumber(raw))
    if not n or n < v[4] or n > v[5] then
      fail.user("%s must be an integer from %d to %d, not '%s'", name, v[4], v[5], raw)
    end
    return n
  elseif kind == "choice" then
    for _, c in ipairs(v[4]) do if raw == c then return raw end end
    fail.user("%s must be %s, not '%s'", name,
      table.concat(v[4], ", ", 1, #v[4] - 1) .. " or " .. v[4][#v[4]], raw)
  end
  return raw
end

-- A connection string of keyword='value' pairs (libpq's quoting: \\ and \' inside quotes).
local function keyword_string(params)
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do
    names[i] = k .. "='" .. params[k]:gsub("[\\']", "\\%0") .. "'"
  end
  return table.concat(names, " ")
end

-- The Postgres connection string: DATABASE_URL, or "" (libpq then reads PGHOST, PGPORT, ...).
-- Its password, as libpq reads it and as it is written, is registered with etlua.redact. A URL
-- whose password holds a character a URL must percent-encode (an unencoded '@' or '/') is
-- refused: libpq would read part of the password as the host name or the port, and echo it.
-- from_script: {keyword = value} of the script's PG* defaults whose variable the environment
-- leaves unset. They go into the string as keyword='value' pairs, under what DATABASE_URL says:
-- the URL's own parts win, then libpq's reading of the environment's PG* for what neither sets.
local function database(get, from_script)
  redact.add(get("PGPASSWORD"), redact.PASSWORD)
  local url = get("DATABASE_URL")
  if not url then
    if next(from_script) == nil then return "", nil end
    return keyword_string(from_script), from_script
  end
  local parsed = pg.parse_conninfo(url)
  if parsed then
    redact.add(parsed.password, redact.PASSWORD)
    redact.add(parsed.sslpassword, redact.PASSWORD)
  end
  local written = url:match("^%a[%w+.-]*://[^:@]*:(.*)@") -- user:PASSWORD@, up to the last '@'
  local decoded = written and written:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  redact.add(written, redact.PASSWORD)
  redact.add(decoded, redact.PASSWORD)
  if not parsed then
    fail.user("DATABASE_URL is not a valid connection string: postgresql://USER:PASSWORD@HOST:PORT/DB"
      .. " (percent-encode %%, @, / in the password: %%25 %%40 %%2F) or key=value pairs")
  end
  if written and parsed.password ~= decoded then
    fail.user("DATABASE_URL: the password holds a character a URL must percent-encode"
      .. " (@ / %% as %%40 %%2F %%25); Postgres would read part of it as the host or the port")
  end
  if next(from_script) == nil then return url, parsed end
  local params = {}
  for k, v in pairs(from_script) do params[k] = v end
  for k, v in pairs(parsed) do params[k] = v end
  return keyword_string(params), params
end

-- {keyword = value} of the script's PG* defaults that the environment does not set.
local function pg_defaults(defaults, getenv)
  local params = {}
  for name, keyword in pairs(PG_DEFAULTS) do
    local v = defaults[name]
    local env = getenv(name)
    if v ~= nil and v ~= "" and (env == nil or env == "") then params[keyword] = tostring(v) end
  end
  return params
end

-- load(script_defaults, getenv, need) -> cfg. getenv defaults to os.getenv (tests pass a table
-- lookup). need = { sqs =, db =, mask =, vault = } says which parts this run needs.
function M.load(defaults, getenv, need)
  getenv = getenv or os.getenv
  defaults = defaults or {}
  need = need or { sqs = true, db = true, mask = true }
  for name in pairs(defaults) do
    if not KNOWN[name] then
      fail.user("the script's config sets %s, which is not a variable etlua reads (see etlua --help)", tostring(name))
    end
  end
  local function get(name)
    local v = getenv(name)
    if v == nil or v == "" then v = defaults[name] end
    if v == "" then v = nil end
    return v
  end

  local cfg = {}
  for _, v in ipairs(M.VARIABLES) do
    cfg[v.key or v[1]:gsub("^ETLUA_", ""):lower()] = setting(get, v, not need.sqs)
  end
  if need.mask then
    cfg.mask_key = mask_key(get)
    redact.add(cfg.mask_key, redact.KEY)
  end
  if need.vault then cfg.vault_key = vault_key(get) end

  if need.sqs then
    cfg.queue_url = get("SQS_QUEUE_URL")
    cfg.queue_name = get("SQS_QUEUE")
    if not cfg.queue_url and not cfg.queue_name then
      fail.user("no queue: set SQS_QUEUE_URL (or SQS_QUEUE with a queue name), or use --input FILE")
    end
    if cfg.queue_url and not cfg.queue_url:match("^https?://[^/%s]+/[^%s]+$") then
      fail.user("SQS_QUEUE_URL '%s' is not a queue URL: it must look like "
        .. "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME", cfg.queue_url)
    end
    local profile = aws_profile(get)
    cfg.region = get("AWS_REGION") or get("AWS_DEFAULT_REGION") or profile.region or "us-east-1"
    cfg.endpoint = get("AWS_ENDPOINT_URL_SQS") or get("AWS_ENDPOINT_URL") or origin(cfg.queue_url)
      or ("https://sqs." .. cfg.region .. ".amazonaws.com")
    cfg.endpoint = cfg.endpoint:gsub("/+$", "")
    if not cfg.endpoint:match("^https?://[^/]+$") then
      fail.user("the SQS endpoint '%s' is not an http(s)://host[:port] URL; "
        .. "check AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL", cfg.endpoint)
    end
    -- Credentials as the SDKs find them: the environment, then the profile's files.
    cfg.access_key = get("AWS_ACCESS_KEY_ID")
    cfg.secret_key = get("AWS_SECRET_ACCESS_KEY")
    cfg.session_token = get("AWS_SESSION_TOKEN")
    if not (cfg.access_key and cfg.secret_key) and profile.access_key and profile.secret_key then
      cfg.access_key, cfg.secret_key = profile.access_key, profile.secret_key
      cfg.session_token = profile.session_token
      cfg.aws_profile = profile.name
    end
    if not (cfg.access_key and cfg.secret_key) then
      if is_loopback(cfg.endpoint) then
        cfg.access_key, cfg.secret_key = "test", "test" -- the emulators' convention, no secret
      else
        fail.user("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
          .. "or AWS_PROFILE with a profile in ~/.aws/credentials")
      end
    else
      redact.add(cfg.secret_key, redact.KEY)
    end
    redact.add(cfg.session_token, redact.KEY)
    cfg.ca_bundle = get("AWS_CA_BUNDLE")
  end

  if need.db then cfg.database_url, cfg.database = database(get, pg_defaults(defaults, getenv)) end
  return cfg
end

local function nonempty(getenv)
  return function(name)
    local v = (getenv or os.getenv)(name)
    if v ~= "" then return v end
  end
end

-- setting(name [, getenv]) -> the value of one variable of M.VARIABLES alone (etlua reveal).
function M.setting(name, getenv)
  for _, v in ipairs(M.VARIABLES) do
    if v[1] == name then return setting(nonempty(getenv), v) end
  end
  error("config.setting: unknown variable " .. tostring(name))
end

-- vault_key(getenv [, prefix]) -> key, source | nil: the vault key alone (etlua reveal).
function M.vault_key(getenv, prefix)
  return vault_key(nonempty(getenv), prefix)
end

-- database(getenv) -> conninfo: the Postgres connection string alone (etlua reveal).
function M.database(getenv)
  return (database(nonempty(getenv), {}))
end

-- The connection's parts that may be logged.
local function describe_database(cfg)
  local p = cfg.database
  if not p then return "from PGHOST, PGPORT, PGUSER, PGDATABASE" end
  local parts = {}
  for _, k in ipairs({ "host", "hostaddr", "port", "dbname", "user", "sslmode" }) do
    if p[k] then parts[#parts + 1] = k .. "=" .. p[k] end
  end
  return table.concat(parts, " ")
end

-- describe(cfg) -> table safe to log: no secret, no password (the connection string shown by
-- its non-secret parts only).
function M.describe(cfg)
  local d = {}
  for k, v in pairs(cfg) do
    if k == "mask_key" then
      d.mask_key = "<" .. #v .. " bytes, redacted>"
    elseif k == "secret_key" or k == "session_token" then
      d[k] = "<redacted>"
    elseif k == "access_key" then
      d[k] = v:sub(1, 4) .. "…"
    elseif k == "database_url" then
      d.database = describe_database(cfg)
    elseif k == "database" or k == "vault_key" then -- database: shown above; vault: by the runner
    else
      d[k] = v
    end
  end
  return d
end

return M
