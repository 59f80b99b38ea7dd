-- etlua.cli: the command line (README "Running it"). Parses argv, answers --help and
-- --version, hands `etlua reveal ...` to etlua.reveal, starts the Postgres connection early (in
-- a thread, while the rest loads: prestart below) and hands everything else to the runner.
local host = require "etlua.host"

local M = {}

M.usage = [[
usage: etlua SCRIPT [--drain] [--dry-run] [--input FILE|-] [--rules DIR] [--log-format text|json]
                    [--metrics HOST:PORT]
       etlua reveal [--field PATH] MASKED...   (PII vault key holders; see etlua reveal --help)
       etlua --version | --help | -h

Drains an SQS queue of JSON events into PostgreSQL through a Lua pipeline script: the tables
it writes, validation, the rows of each event, which fields are personal data (SCRIPTING.md;
scripts/login_etl.lua for login events, scripts/purchases_etl.lua for SNS-published purchases).
--dry-run prints {"<output>": row} lines for a script with `outputs`.

options:
  --drain              exit 0 once the queue is empty (after the last commit and delete; on a
                       FIFO queue, *.fifo, also once it reports nothing visible and nothing in
                       flight); without it etlua runs as a service until SIGTERM/SIGINT
  --dry-run            print the rows it would write as JSON lines on stdout; write and delete
                       nothing (what it received from SQS is released when it ends)
  --input FILE|-       read message bodies, one per line, from FILE or stdin instead of SQS;
                       the run ends at the end of its input, with or without --drain
  --rules DIR          load analysts' rule files (DIR/*.lua, in name order)
  --log-format FORMAT  text (default) or json lines, on stderr
  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics, with /healthz (200 while
                       running) and /readyz (200 while connected to SQS and Postgres, else 503);
                       a numeric address: 127.0.0.1:9108, 0.0.0.0:9108, [::1]:9108
  --version, --help (-h)

environment (a script's `config` may give each a default, the proxy ones aside; the environment wins):
  SQS_QUEUE_URL | SQS_QUEUE         the queue (a name is resolved with GetQueueUrl)
  AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL   endpoint override (emulators); else from the queue URL
  AWS_REGION | AWS_DEFAULT_REGION   SigV4 region (default us-east-1)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                                    credentials; else AWS_PROFILE (or default) in ~/.aws/credentials
                                    and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE);
                                    test/test for a loopback endpoint with none set
  AWS_CA_BUNDLE                     CA file for https endpoints
  http_proxy, https_proxy | HTTPS_PROXY, all_proxy | ALL_PROXY, no_proxy | NO_PROXY
                                    proxy for SQS, by curl's rules (HTTP_PROXY is never read)
  ETLUA_SQS_PROTOCOL                auto (default), json or query
  DATABASE_URL | PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLMODE   Postgres (in a URL,
                                    percent-encode @ / % in the password: %40 %2F %25)
  ETLUA_SYNCHRONOUS_COMMIT          on (default, whatever the server says); remote_apply,
                                    remote_write, local or off give up the guarantee that a
                                    committed batch survives a Postgres crash
  ETLUA_MASK_KEY | ETLUA_MASK_KEY_FILE   HMAC key, at least 32 bytes (required)
  ETLUA_VAULT_KEY | ETLUA_VAULT_KEY_FILE AES-256 key (64 hex digits; the file: those or 32 raw bytes):
                                    when set, the raw values of the script's pii paths are stored
                                    encrypted in etlua_vault.pii
  ETLUA_BATCH_SIZE                  messages per transaction (default 200; 500 with --input)
  ETLUA_BATCH_MAX_WAIT_MS           longest a received message waits for its batch (default 500)
  ETLUA_RECEIVE_CONCURRENCY         most ReceiveMessage long polls in flight; the number adapts
                                    below it (default 128)
  ETLUA_WAIT_SECONDS                long-poll wait as a service (default 20)
  ETLUA_DRAIN_WAIT_SECONDS          long-poll wait that proves the queue empty with --drain (1-20, default 1)
  ETLUA_RETRY_ATTEMPTS              attempts for a call that fails for a passing reason (default 8)
  ETLUA_OUTAGE_SECONDS              how long an SQS or Postgres outage is waited out mid-run (default 300)
  ETLUA_LEDGER_RETENTION            seconds a ledger entry is kept, margin included (default: the
                                    queue's MessageRetentionPeriod + 3600; --input: 349200)
  ETLUA_LEDGER_PARTITION_SECONDS    for tests: the partition width of a ledger made now
  ETLUA_METRICS_ADDR                HOST:PORT for the metrics server when --metrics is not given
  ETLUA_QUEUE_DEPTH_SECONDS         with metrics on, how often the queue's depth is asked
                                    (etlua_queue_messages; default 15, 0: never)
  ETLUA_PROGRESS                    1: the --drain progress line even off a terminal; 0: never
  ETLUA_SCRIPT_BUDGET_MS            CPU time of the hook: milliseconds of CPU one script hook call
                                    (validate, a rule, transform) may use, not wall time (default
                                    100); past it the message is a script_timeout reject
A bad value is a one-line error naming the variable; no line etlua writes holds a piece of a
secret (password, keys).

signals: SIGTERM/SIGINT stop receiving, commit and delete the batch in hand, release every
  other message received (visibility 0: SQS hands it out again at once), exit 0 (a script hook
  running at that moment is cut short: its message and the rest of its batch are released too;
  a second signal exits at once: the ledger makes that harmless); SIGHUP re-reads the script and
  the rule files between batches (a version that fails to load, or that writes other tables,
  columns or keys, is refused and the old one keeps running; the script's config table is not
  applied again: settings are read at start-up only).
A --drain on a terminal shows a progress line on stderr: done, rate, rejects, ~messages left.

exit status: 0 done; 1 a run that could not finish (one line on stderr says why); 2 usage.
]]

local function usage_error(fmt, ...)
  io.stderr:write("etlua: ", string.format(fmt, ...), " (see etlua --help)\n")
  return 2
end

function M.parse(argv)
  local opts = { log_format = "text" }
  local i = 1
  local function value(flag)
    i = i + 1
    local v = argv[i]
    if v == nil then return nil, flag .. " needs a value" end
    return v
  end
  while i <= #argv do
    local a = argv[i]
    local err
    if a == "--help" or a == "-h" then opts.help = true
    elseif a == "--version" then opts.version = true
    elseif a == "--drain" then opts.drain = true
    elseif a == "--dry-run" then opts.dry_run = true
    elseif a == "--input" then opts.input, err = value(a)
    elseif a == "--rules" then opts.rules, err = value(a)
    elseif a == "--log-format" then opts.log_format, err = value(a)
    elseif a == "--metrics" then opts.metrics, err = value(a)
    elseif a:sub(1, 2) == "--" then err = "unknown option " .. a
    elseif opts.script == nil then opts.script = a
    else err = "unexpected argument " .. a
    end
    if err then return nil, err end
    i = i + 1
  end
  return opts
end

-- The Postgres connection started now, in a thread (etlua.pg's prestart), while the modules,
-- the script and the configuration load; the runner's pg.connect takes it when its connection
-- string is this one. Only for a run that connects, when DATABASE_URL is set (else the script's
-- config may supply it) and passes config's checks (a URL libpq would misread is never tried):
-- a URL config refuses is refused later, at its usual place, with its usual line.
local function prestart(opts)
  if opts.dry_run then return end
  local url = os.getenv("DATABASE_URL")
  if url == nil or url == "" then return end
  local ok, conninfo = pcall(require("etlua.config").database, os.getenv)
  if ok and conninfo == url then require("etlua.pg").prestart(conninfo) end
end

function M.main(argv)
  if argv[1] == "reveal" then return require("etlua.reveal").main(argv) end
  local opts, err = M.parse(argv)
  if not opts then return usage_error("%s", err) end
  if opts.help then io.stdout:write(M.usage) return 0 end
  if opts.version then io.stdout:write("etlua ", host.version, "\n") return 0 end
  if not opts.script then return usage_error("no script given (e.g. etlua scripts/login_etl.lua --drain)") end
  if opts.log_format ~= "text" and opts.log_format ~= "json" then
    return usage_error("--log-format must be text or json, not '%s'", opts.log_format)
  end
  prestart(opts)
  local log = require("etlua.log").new(opts.log_format)
  return require("etlua.runner").run(opts, log)
end

return M
