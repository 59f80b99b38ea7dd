-- etlua.config: environment over script defaults, the mask key rules, AWS credentials as the
-- SDKs find them (environment, then AWS_PROFILE in the shared files), secrets redacted.
local config = require "etlua.config"

local KEY = ("k"):rep(32)

local function env(t)
  return function(name) return t[name] end
end

local function user_error(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  assert.is_table(err, "expected a user error, got " .. tostring(err))
  return err.user_error
end

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local base = { ETLUA_MASK_KEY = KEY, SQS_QUEUE_URL = "http://127.0.0.1:4566/000000000000/q",
               HOME = "/nonexistent" }
local function with(t)
  local e = {}
  for k, v in pairs(base) do e[k] = v end
  for k, v in pairs(t) do e[k] = v ~= false and v or nil end
  return env(e)
end

describe("configuration", function()
  it("lets the environment win over the script's defaults", function()
    local cfg = config.load({ ETLUA_BATCH_SIZE = "7", ETLUA_SQS_PROTOCOL = "query" }, with { ETLUA_BATCH_SIZE = "9" })
    assert.are.equal(9, cfg.batch_size)
    assert.are.equal("query", cfg.protocol)
  end)

  it("takes 200 messages a batch by default, 500 for --input, unless the environment or the script says", function()
    local input = { sqs = false, db = true, mask = true }
    assert.are.equal(200, config.load(nil, with {}).batch_size)
    assert.are.equal(500, config.load(nil, with {}, input).batch_size)
    assert.are.equal(9, config.load(nil, with { ETLUA_BATCH_SIZE = "9" }, input).batch_size)
    assert.are.equal(7, config.load({ ETLUA_BATCH_SIZE = "7" }, with {}, input).batch_size)
  end)

  it("reads ETLUA_LEDGER_RETENTION as whole seconds, unset by default", function()
    assert.is_nil(config.load(nil, with {}).ledger_retention)
    assert.are.equal(60, config.load(nil, with { ETLUA_LEDGER_RETENTION = "60" }).ledger_retention)
    assert.truthy(user_error(function() config.load(nil, with { ETLUA_LEDGER_RETENTION = "4d" }) end)
      :find("ETLUA_LEDGER_RETENTION must be an integer", 1, true))
    assert.truthy(user_error(function() config.load(nil, with { ETLUA_LEDGER_RETENTION = "0" }) end)
      :find("ETLUA_LEDGER_RETENTION", 1, true))
    assert.are.equal(5, config.load(nil, with { ETLUA_LEDGER_PARTITION_SECONDS = "5" }).ledger_partition_seconds)
  end)

  it("derives the endpoint from the queue URL, and takes test/test on loopback", function()
    local cfg = config.load(nil, with {})
    assert.are.equal("http://127.0.0.1:4566", cfg.endpoint)
    assert.are.equal("test", cfg.access_key)
  end)

  it("refuses a missing, short, or doubly given mask key", function()
    assert.truthy(user_error(function() config.load(nil, with { ETLUA_MASK_KEY = false }) end):find("no mask key"))
    assert.truthy(user_error(function() config.load(nil, with { ETLUA_MASK_KEY = "short" }) end):find("5 bytes"))
    local f = tmpfile(KEY .. "\n")
    assert.truthy(user_error(function() config.load(nil, with { ETLUA_MASK_KEY_FILE = f }) end):find("only one"))
    assert.are.equal(KEY, config.load(nil, with { ETLUA_MASK_KEY = false, ETLUA_MASK_KEY_FILE = f }).mask_key)
    os.remove(f)
  end)

  it("requires credentials for a non-loopback endpoint", function()
    local msg = user_error(function()
      config.load(nil, with { SQS_QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/1/q" })
    end)
    assert.truthy(msg:find("no AWS credentials"))
  end)
end)

describe("AWS credentials from the shared files", function()
  local creds = tmpfile([[
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[etl]
aws_access_key_id=AKIAETL
aws_secret_access_key = etl-secret
aws_session_token = etl-token
]])
  local conf = tmpfile([[
[default]
region = eu-central-1
[profile etl]
region = ap-south-1
]])
  local remote = "https://sqs.example.com/1/q"
  teardown(function() os.remove(creds) os.remove(conf) end)

  it("uses AWS_PROFILE's keys, session token and region", function()
    local cfg = config.load(nil, with { SQS_QUEUE_URL = remote, AWS_PROFILE = "etl",
      AWS_SHARED_CREDENTIALS_FILE = creds, AWS_CONFIG_FILE = conf })
    assert.are.same({ "AKIAETL", "etl-secret", "etl-token", "ap-south-1" },
      { cfg.access_key, cfg.secret_key, cfg.session_token, cfg.region })
  end)

  it("uses the default profile when AWS_PROFILE is not set", function()
    local cfg = config.load(nil, with { SQS_QUEUE_URL = remote,
      AWS_SHARED_CREDENTIALS_FILE = creds, AWS_CONFIG_FILE = conf })
    assert.are.same({ "AKIADEFAULT", "eu-central-1" }, { cfg.access_key, cfg.region })
  end)

  it("lets environment credentials and region win over the profile", function()
    local cfg = config.load(nil, with { SQS_QUEUE_URL = remote, AWS_PROFILE = "etl",
      AWS_SHARED_CREDENTIALS_FILE = creds, AWS_CONFIG_FILE = conf,
      AWS_ACCESS_KEY_ID = "AKIAENV", AWS_SECRET_ACCESS_KEY = "env-secret", AWS_REGION = "us-west-2" })
    assert.are.same({ "AKIAENV", "env-secret", "us-west-2" }, { cfg.access_key, cfg.secret_key, cfg.region })
    assert.is_nil(cfg.session_token)
  end)

  it("names a missing profile", function()
    local msg = user_error(function()
      config.load(nil, with { SQS_QUEUE_URL = remote, AWS_PROFILE = "nope",
        AWS_SHARED_CREDENTIALS_FILE = creds, AWS_CONFIG_FILE = conf })
    end)
    assert.truthy(msg:find("AWS_PROFILE=nope"))
  end)

  it("never shows a secret in describe()", function()
    local cfg = config.load(nil, with { SQS_QUEUE_URL = remote, AWS_PROFILE = "etl",
      AWS_SHARED_CREDENTIALS_FILE = creds, AWS_CONFIG_FILE = conf,
      DATABASE_URL = "postgresql://u:pw-secret@h/db" })
    local text = ""
    for k, v in pairs(config.describe(cfg)) do text = text .. k .. "=" .. tostring(v) .. "\n" end
    for _, secret in ipairs({ "etl-secret", "etl-token", "pw-secret", KEY }) do
      assert.is_nil(text:find(secret, 1, true), secret)
    end
  end)
end)

describe("the script's defaults for libpq's PG* variables", function()
  local pg = require "etlua.pg"

  it("are written into the connection string when the environment leaves them unset", function()
    local cfg = config.load({ PGHOST = "db.example", PGPORT = "6432", PGSSLMODE = "require" }, with {})
    assert.are.equal("host='db.example' port='6432' sslmode='require'", cfg.database_url)
    assert.are.same({ host = "db.example", port = "6432", sslmode = "require" },
                    pg.parse_conninfo(cfg.database_url))
  end)

  it("lose to the environment's own PG* (which libpq reads)", function()
    local cfg = config.load({ PGHOST = "db.example", PGUSER = "etl" }, with { PGHOST = "other" })
    assert.are.equal("user='etl'", cfg.database_url)
    assert.are.equal("", config.load({ PGHOST = "db.example" }, with { PGHOST = "other" }).database_url)
  end)

  it("lose to what DATABASE_URL says, and fill in what it does not", function()
    local cfg = config.load({ PGHOST = "db.example", PGSSLMODE = "require", PGDATABASE = "d0" },
                            with { DATABASE_URL = "postgresql://u@h:5433/db" })
    assert.are.same({ host = "h", port = "5433", user = "u", dbname = "db", sslmode = "require" },
                    pg.parse_conninfo(cfg.database_url))
  end)

  it("quote a value as libpq reads it, and keep a password out of describe()", function()
    local cfg = config.load({ PGPASSWORD = [[pw-secret'\q]], PGUSER = "a b" }, with {})
    assert.are.same({ password = [[pw-secret'\q]], user = "a b" }, pg.parse_conninfo(cfg.database_url))
    for k, v in pairs(config.describe(cfg)) do
      assert.is_nil(tostring(v):find("pw-secret", 1, true), k)
    end
  end)
end)

describe("every variable in one table", function()
  it("validates each plain setting with a one-line error naming it and what it allows", function()
    for _, case in ipairs({
      { "ETLUA_RETRY_ATTEMPTS", "abc", "ETLUA_RETRY_ATTEMPTS must be an integer from 1 to 1000, not 'abc'" },
      { "ETLUA_BATCH_SIZE", "0", "ETLUA_BATCH_SIZE must be an integer from 1 to 100000, not '0'" },
      { "ETLUA_DRAIN_WAIT_SECONDS", "0", "ETLUA_DRAIN_WAIT_SECONDS must be an integer from 1 to 20, not '0'" },
      { "ETLUA_SQS_PROTOCOL", "xml", "ETLUA_SQS_PROTOCOL must be auto, json or query, not 'xml'" },
      { "ETLUA_SYNCHRONOUS_COMMIT", "maybe",
        "ETLUA_SYNCHRONOUS_COMMIT must be on, remote_apply, remote_write, local or off, not 'maybe'" },
      { "ETLUA_PROGRESS", "yes", "ETLUA_PROGRESS must be 0 or 1, not 'yes'" },
    }) do
      assert.are.equal(case[3], user_error(function() config.load(nil, with { [case[1]] = case[2] }) end))
    end
  end)

  it("gives every entry its default and reads it as cfg[name without ETLUA_, lower case]", function()
    local cfg = config.load(nil, with {})
    assert.are.same({ 8, "on", 200, "auto" },
                    { cfg.retry_attempts, cfg.synchronous_commit, cfg.batch_size, cfg.protocol })
    cfg = config.load(nil, with { ETLUA_RETRY_ATTEMPTS = "3", ETLUA_SYNCHRONOUS_COMMIT = "off",
      ETLUA_METRICS_ADDR = "127.0.0.1:9", ETLUA_PROGRESS = "1" })
    assert.are.same({ 3, "off", "127.0.0.1:9", "1" },
      { cfg.retry_attempts, cfg.synchronous_commit, cfg.metrics_addr, cfg.progress })
    for _, v in ipairs(config.VARIABLES) do
      assert.truthy(v[1]:match("^ETLUA_[A-Z_]+$"), v[1])
      assert.truthy(({ integer = true, choice = true, string = true })[v[2]], v[1])
    end
  end)

  it("refuses a script default for a variable etlua does not read", function()
    assert.are.equal("the script's config sets ETLUA_BATCHSIZE, which is not a variable etlua reads (see etlua --help)",
      user_error(function() config.load({ ETLUA_BATCHSIZE = "5" }, with {}) end))
  end)

  it("says a mask key file that is a directory is not a file", function()
    local msg = user_error(function()
      config.load(nil, with { ETLUA_MASK_KEY = false, ETLUA_MASK_KEY_FILE = "/tmp" })
    end)
    assert.truthy(msg:find("cannot read ETLUA_MASK_KEY_FILE /tmp: .*it must name a file"), msg)
  end)

  it("says a queue URL that is not a URL is not one (not 'no credentials')", function()
    local msg = user_error(function() config.load(nil, with { SQS_QUEUE_URL = "not a url" }) end)
    assert.truthy(msg:find("SQS_QUEUE_URL 'not a url' is not a queue URL"), msg)
  end)
end)

describe("the Postgres connection string", function()
  local redact = require "etlua.redact"
  before_each(redact.reset)

  it("refuses a URL whose password holds an unencoded @ or /, without quoting it", function()
    for _, pw in ipairs({ "Qz@Xk/Jw9", "QzXk/Jw9", "ab@cd@ef" }) do
      local msg = user_error(function()
        config.load(nil, with { DATABASE_URL = "postgresql://etl:" .. pw .. "@127.0.0.1:5432/etl" })
      end)
      assert.truthy(msg:find("percent-encode", 1, true), msg)
      for i = 1, #pw - 3 do assert.is_nil(msg:find(pw:sub(i, i + 3), 1, true), msg) end
    end
  end)

  it("accepts a percent-encoded password, and ':' '?' '#' as they are", function()
    for _, url in ipairs({ "postgresql://etl:Qz%40Xk%2FJw%25@h:5432/db", "postgresql://etl:Qz:X?k#J@h/db",
                           "host=h password='Qz@X k/J\\'w' dbname=db", "postgresql://h/db" }) do
      local cfg = config.load(nil, with { DATABASE_URL = url })
      assert.are.equal(url, cfg.database_url)
      local shown = config.describe(cfg).database
      assert.is_nil(shown:find("Qz", 1, true), shown)
      assert.truthy(shown:find("host=h", 1, true), shown)
    end
  end)

  it("registers the password, as written and as libpq reads it", function()
    config.load(nil, with { DATABASE_URL = "postgresql://etl:Qz%40Xk%2FJw@h/db" })
    assert.are.equal("host *** and ***", redact.line("host Qz@Xk/Jw and Qz%40Xk%2FJw"))
  end)

  it("refuses an invalid connection string without quoting it", function()
    local msg = user_error(function() config.load(nil, with { DATABASE_URL = "postgresql://etl:Qz%zzXkJw@h/db" }) end)
    assert.truthy(msg:find("not a valid connection string", 1, true), msg)
    assert.is_nil(msg:find("Qz", 1, true), msg)
  end)
end)
