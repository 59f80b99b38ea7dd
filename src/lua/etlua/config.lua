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
    local profile = aws_profile(get)
    cfg.region = get("AWS_REGION") or get("AWS_DEFAULT_REGION") or profile.region or "us-east-1"
    cfg.endpoint = get("AWS_ENDPOINT_URL_SQS") or get("AWS_ENDPOINT_URL") or origin(cfg.queue_url)
      or ("https://sqs." .. cfg.region .. ".amazonaws.com")
    cfg.endpoint = cfg.endpoint:gsub("/+$", "")
    if not cfg.endpoint:match("^https?://[^/]+$") then
      fail.user("the SQS endpoint '%s' is not an http(s)://host[:port] URL; check AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL", cfg.endpoint)
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
        cfg.access_key, cfg.secret_key = "test", "test"
      else
        fail.user("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials")
      end
    end
    cfg.protocol = get("ETLUA_SQS_PROTOCOL") or "auto"
    if cfg.protocol ~= "auto" and cfg.protocol ~= "json" and cfg.protocol ~= "query" then
      fail.user("ETLUA_SQS_PROTOCOL must be auto, json or query, not '%s'", cfg.protocol)
    end
    cfg.ca_bundle = get("AWS_CA_BUNDLE")
    cfg.wait_seconds = number(get, "ETLUA_WAIT_SECONDS", 20, 0, 20)
    cfg.drain_wait_seconds = number(get, "ETLUA_DRAIN_WAIT_SECONDS", 1, 0, 20)
    -- 64 receives in flight: latency-bound at a distance (20 ms RTT: 3,145 msgs/s at 16,
    -- 5,187 at 32, 6,916 at 64; bench/netem.sh), no cost on loopback (bench/README.md).
    cfg.receive_concurrency = number(get, "ETLUA_RECEIVE_CONCURRENCY", 64, 1, 64)
  end

  if need.db then
    cfg.database_url = get("DATABASE_URL") or ""   -- "" = libpq reads PGHOST, PGPORT, ...
  end

  -- 200: the receive pipeline keeps its long polls in flight while a batch commits only while
  -- the prefetch limit, max(batch, 10 x concurrency), leaves room; 500 left ~14 of 64 in
  -- flight during a commit and drained 100k ~15% slower on loopback (bench/README.md).
  cfg.batch_size = number(get, "ETLUA_BATCH_SIZE", 200, 1, 100000)
  cfg.outage_seconds = number(get, "ETLUA_OUTAGE_SECONDS", 300, 0, 86400)
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
