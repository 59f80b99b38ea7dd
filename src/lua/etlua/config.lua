-- etlua.config: the run's configuration, from the environment and the script's defaults.
-- The environment wins over the script's `config` table (DESIGN.md "Configuration").
-- It owns the secrets (AWS keys, mask key); config.describe() is the only view of them that may
-- be logged, with every secret redacted.
local fail = require "etlua.fail"

local M = {}

local function is_loopback(url)
  local host = url and url:match("^%a[%w+.-]*://%[?([^/%]:]+)")
  return host == "localhost" or host == "::1" or (host ~= nil and host:match("^127%.") ~= nil)
end

-- "scheme://host[:port]" of a URL.
local function origin(url)
  return url and url:match("^(%a[%w+.-]*://[^/]+)")
end

local function read_key_file(path)
  local f, err = io.open(path, "rb")
  if not f then fail.user("cannot read ETLUA_MASK_KEY_FILE: %s", err) end
  local key = f:read("a")
  f:close()
  return (key:gsub("\r?\n$", ""))
end

local function mask_key(get)
  local value, file = get("ETLUA_MASK_KEY"), get("ETLUA_MASK_KEY_FILE")
  if value and file then
    fail.user("both ETLUA_MASK_KEY and ETLUA_MASK_KEY_FILE are set; set only one")
  end
  local key = value or (file and read_key_file(file))
  if not key or key == "" then
    fail.user("no mask key: set ETLUA_MASK_KEY (or ETLUA_MASK_KEY_FILE) to a secret of at least 32 bytes, e.g. `openssl rand -hex 32`")
  end
  if #key < 32 then
    fail.user("the mask key is %d bytes; it must be at least 32 (e.g. `openssl rand -hex 32`)", #key)
  end
  return key
end

local function number(get, name, default, min, max)
  local v = get(name)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < min or n > max then
    fail.user("%s must be an integer from %d to %d, not '%s'", name, min, max, v)
  end
  return n
end

-- load(script_defaults, getenv) -> cfg. getenv defaults to os.getenv (tests pass a table lookup).
-- need: { sqs = bool, db = bool, mask = bool } says which parts this run needs.
function M.load(defaults, getenv, need)
  getenv = getenv or os.getenv
  defaults = defaults or {}
  need = need or { sqs = true, db = true, mask = true }
  local function get(name)
    local v = getenv(name)
    if v == nil or v == "" then v = defaults[name] end
    if v == "" then v = nil end
    return v
  end

  local cfg = {}
  if need.mask then cfg.mask_key = mask_key(get) end

  if need.sqs then
    cfg.queue_url = get("SQS_QUEUE_URL")
    cfg.queue_name = get("SQS_QUEUE")
    if not cfg.queue_url and not cfg.queue_name then
      fail.user("no queue: set SQS_QUEUE_URL (or SQS_QUEUE with a queue name), or use --input FILE")
    end
    cfg.endpoint = get("AWS_ENDPOINT_URL_SQS") or get("AWS_ENDPOINT_URL") or origin(cfg.queue_url)
    if not cfg.endpoint then
      local region = get("AWS_REGION") or get("AWS_DEFAULT_REGION") or "us-east-1"
      cfg.endpoint = "https://sqs." .. region .. ".amazonaws.com"
    end
    cfg.endpoint = cfg.endpoint:gsub("/+$", "")
    if not cfg.endpoint:match("^https?://[^/]+$") then
      fail.user("the SQS endpoint '%s' is not an http(s)://host[:port] URL; check AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL", cfg.endpoint)
    end
    cfg.region = get("AWS_REGION") or get("AWS_DEFAULT_REGION") or "us-east-1"
    cfg.access_key = get("AWS_ACCESS_KEY_ID")
    cfg.secret_key = get("AWS_SECRET_ACCESS_KEY")
    cfg.session_token = get("AWS_SESSION_TOKEN")
    if not (cfg.access_key and cfg.secret_key) then
      if is_loopback(cfg.endpoint) then
        cfg.access_key, cfg.secret_key = "test", "test"
      else
        fail.user("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
      end
    end
    cfg.protocol = get("ETLUA_SQS_PROTOCOL") or "auto"
    if cfg.protocol ~= "auto" and cfg.protocol ~= "json" and cfg.protocol ~= "query" then
      fail.user("ETLUA_SQS_PROTOCOL must be auto, json or query, not '%s'", cfg.protocol)
    end
    cfg.ca_bundle = get("AWS_CA_BUNDLE")
    cfg.wait_seconds = number(get, "ETLUA_WAIT_SECONDS", 20, 0, 20)
    cfg.drain_wait_seconds = number(get, "ETLUA_DRAIN_WAIT_SECONDS", 1, 0, 20)
    cfg.visibility_seconds = number(get, "ETLUA_VISIBILITY_SECONDS", 0, 0, 43200)
  end

  if need.db then
    cfg.database_url = get("DATABASE_URL") or ""   -- "" = libpq reads PGHOST, PGPORT, ...
  end

  cfg.batch_size = number(get, "ETLUA_BATCH_SIZE", 500, 1, 100000)
  cfg.batch_max_wait_ms = number(get, "ETLUA_BATCH_MAX_WAIT_MS", 500, 0, 600000)
  return cfg
end

-- describe(cfg) -> table safe to log: no secret, no password in a URL.
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
      d[k] = (v:gsub("(//[^:/@]*:)[^@]*@", "%1<redacted>@")
               :gsub("([?&]password=)[^&]*", "%1<redacted>")
               :gsub("(password%s*=%s*)'[^']*'", "%1<redacted>")
               :gsub("(password%s*=%s*)[^%s']+", "%1<redacted>"))
    else
      d[k] = v
    end
  end
  return d
end

return M
