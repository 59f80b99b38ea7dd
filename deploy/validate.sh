#!/usr/bin/env bash
# deploy/validate.sh: checks what can be checked of the deployment files without a cluster.
#  - every YAML document parses (python3-yaml), and the Deployment/ScaledObject say what the
#    README promises: Secret-fed keys and DATABASE_URL, probes on /healthz and /readyz at 9108,
#    a SIGTERM grace longer than a batch, non-root, an aws-sqs-queue trigger on the Deployment;
#  - the systemd unit passes `systemd-analyze verify` with no warning, and keeps its promises
#    (Restart=on-failure, SIGTERM, a stop timeout, LoadCredential, hardening);
#  - the Dockerfile is multi-stage and runs as a non-root user;
#  - the example alert rules pass `promtool check rules` and their unit tests
#    (prometheus/etlua-alerts.test.yaml, `promtool test rules`), and they and the Grafana
#    dashboard use only metrics a real scrape of a running etlua exports (check_monitoring.py on
#    the /metrics of `etlua --input - --dry-run --metrics`, which needs neither SQS nor Postgres).
# usage: validate.sh [ETLUA_BIN]   (default: build/etlua of this checkout)
# Exit 0 all good, 1 a finding. Without systemd-analyze the unit is only read, without promtool
# the rules only parsed, without an etlua binary nothing is scraped (each said on stdout).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
etlua_bin=${1:-$here/../build/etlua}
/usr/bin/python3 - "$here" <<'PY'
import glob, os, sys
import yaml
here = sys.argv[1]
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)
docs = {}
for path in sorted(glob.glob(os.path.join(here, "kubernetes", "*.yaml"))):
    with open(path) as f:
        for d in yaml.safe_load_all(f):
            need(isinstance(d, dict) and "kind" in d and "apiVersion" in d, "%s: a document without kind/apiVersion" % path)
            docs[d["kind"]] = d
for kind in ("Deployment", "ScaledObject", "TriggerAuthentication", "Secret", "ServiceAccount"):
    need(kind in docs, "no %s" % kind)
dep = docs["Deployment"]["spec"]["template"]["spec"]
c = dep["containers"][0]
need(dep.get("terminationGracePeriodSeconds", 30) >= 30, "terminationGracePeriodSeconds shorter than a batch")
need(dep["securityContext"].get("runAsNonRoot") is True and dep["securityContext"].get("runAsUser", 0) != 0, "pod may run as root")
need(c["securityContext"].get("allowPrivilegeEscalation") is False, "privilege escalation allowed")
args = c["args"]
need("--metrics" in args and args[args.index("--metrics") + 1] == "0.0.0.0:9108", "no --metrics 0.0.0.0:9108")
need("--drain" not in args, "a service must not --drain")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
    p = c.get(probe, {}).get("httpGet", {})
    need(p.get("path") == path and p.get("port") in (9108, "metrics"), "%s is not %s on 9108" % (probe, path))
need(any(p.get("containerPort") == 9108 and p.get("name") == "metrics" for p in c["ports"]), "port 9108 not named metrics")
env = {e["name"]: e for e in c["env"]}
need(env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "etlua", "DATABASE_URL not from the Secret")
need(env.get("ETLUA_MASK_KEY_FILE", {}).get("value", "").startswith("/run/secrets/etlua/"), "mask key not from the Secret volume")
vols = {v["name"]: v for v in dep["volumes"]}
need(vols.get("secrets", {}).get("secret", {}).get("secretName") == "etlua", "secret volume not from the Secret")
secret_keys = set(docs["Secret"]["stringData"])
need({"mask-key", "database-url"} <= secret_keys, "Secret lacks mask-key or database-url")
so = docs["ScaledObject"]["spec"]
need(so["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"], "ScaledObject does not target the Deployment")
t = so["triggers"][0]
need(t["type"] == "aws-sqs-queue" and {"queueURL", "queueLength", "awsRegion"} <= set(t["metadata"]), "trigger is not aws-sqs-queue with queueURL/queueLength/awsRegion")
need(t["authenticationRef"]["name"] == docs["TriggerAuthentication"]["metadata"]["name"], "trigger's authenticationRef unknown")
need(so["minReplicaCount"] <= so["maxReplicaCount"], "min > max replicas")
unit = open(os.path.join(here, "systemd", "etlua.service")).read()
for line in ("Restart=on-failure", "KillSignal=SIGTERM", "TimeoutStopSec=", "EnvironmentFile=", "LoadCredential=mask-key:",
             "NoNewPrivileges=yes", "ProtectSystem=strict", "User=etlua"):
    need(line in unit, "etlua.service lacks %s" % line)
docker = open(os.path.join(here, "..", "Dockerfile")).read().splitlines()
froms = [l for l in docker if l.startswith("FROM ")]
users = [l.split()[1] for l in docker if l.startswith("USER ")]
need(len(froms) >= 2, "Dockerfile is not multi-stage")
need(users and users[-1] not in ("root", "0"), "Dockerfile's final stage runs as root")
need(any("COPY --from=build" in l for l in docker), "runtime stage does not copy from the build stage")
for p in problems:
    print("deploy: " + p)
if problems:
    sys.exit(1)
print("ok - %d Kubernetes documents parse and keep their promises; unit and Dockerfile read" % len(docs))
PY
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify "$here/systemd/etlua.service" 2>&1) || { echo "$out"; exit 1; }
  [ -z "$out" ] || { echo "systemd-analyze verify warned:"; echo "$out"; exit 1; }
  echo "ok - systemd-analyze verify: etlua.service clean"
else
  echo "skip - systemd-analyze is not installed: etlua.service only read, not verified"
fi

if command -v promtool >/dev/null 2>&1; then
  promtool check rules "$here/prometheus/etlua-alerts.yaml" >/dev/null || { promtool check rules "$here/prometheus/etlua-alerts.yaml"; exit 1; }
  (cd "$here/prometheus" && promtool test rules etlua-alerts.test.yaml >/dev/null) \
    || { (cd "$here/prometheus" && promtool test rules etlua-alerts.test.yaml); exit 1; }
  echo "ok - promtool: the alert rules are valid and pass their unit tests"
else
  echo "skip - promtool is not installed: the alert rules are only parsed"
fi

if [ -x "$etlua_bin" ]; then
  tmp=$(mktemp -d)
  pid=
  trap 'exec 3>&- 2>/dev/null || true; [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkfifo "$tmp/in"
  # stdin stays open (fd 3) until the scrape is done: etlua waits for input, serving /metrics.
  ETLUA_MASK_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "$etlua_bin" \
    "$here/../scripts/login_etl.lua" --input - --dry-run --rules "$here/../scripts/rules" \
    --metrics "127.0.0.1:$port" <"$tmp/in" >/dev/null 2>"$tmp/log" &
  pid=$!
  exec 3>"$tmp/in"
  for _ in $(seq 100); do curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" -o "$tmp/scrape" && break; sleep 0.05; done
  exec 3>&-
  [ -s "$tmp/scrape" ] || { cat "$tmp/log"; echo "deploy: no scrape of a running etlua"; exit 1; }
  wait "$pid" || { cat "$tmp/log"; echo "deploy: etlua --input - --dry-run --metrics failed"; exit 1; }
  pid=
  /usr/bin/python3 "$here/check_monitoring.py" "$tmp/scrape"
else
  echo "skip - no etlua binary at $etlua_bin: the alert rules and dashboard are not checked against a scrape"
fi
